//! The one error type of Fleet's HTTP services (`fleet-edge` and
//! `fleet-status`), and its answer: `{"error": {"code", "message",
//! "field"?}}` ([`crate::edge::ErrorBody`]).
//!
//! Bad input keeps its status and message; anything internal answers a
//! generic 500 and is logged with its cause, never sent to the client.
//! Each service converts its own domain errors with `From` impls in its own
//! crate. Compiled with the `axum` feature (the servers); the clients only
//! read the body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::edge::ErrorBody;

/// An API failure.
#[derive(Debug)]
pub enum AppError {
    /// A client error with its status.
    Client {
        status: StatusCode,
        /// Stable machine-readable code (see [`crate::edge::ErrorDetail`]).
        code: &'static str,
        message: String,
        /// The offending field or header, when there is one.
        field: Option<String>,
    },
    /// Something broke on our side: logged, answered as a generic 500.
    Internal(anyhow::Error),
}

/// What handlers answer.
pub type ApiResult<T> = Result<T, AppError>;

impl AppError {
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError::Client {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Name the offending field (a client error only). An empty name is
    /// the body as a whole: the answer then carries no `field`.
    pub fn with_field(self, f: impl Into<String>) -> Self {
        match self {
            AppError::Client {
                status,
                code,
                message,
                ..
            } => {
                let f = f.into();
                AppError::Client {
                    status,
                    code,
                    message,
                    field: (!f.is_empty()).then_some(f),
                }
            }
            internal => internal,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::client(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(e.into())
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Client { status, .. } => *status,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            AppError::Client {
                status,
                code,
                message,
                field,
            } => (status, ErrorBody::new(code, message, field)),
            AppError::Internal(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "Request failed on an internal error."
                );
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody::new(
                        "internal",
                        "internal error; the cause is in the server's log",
                        None,
                    ),
                )
            }
        };
        (status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: AppError) -> (StatusCode, serde_json::Value) {
        let r = e.into_response();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("a small body");
        (status, serde_json::from_slice(&bytes).expect("JSON"))
    }

    #[tokio::test]
    async fn client_errors_keep_status_code_message_and_field() {
        let (s, b) = body_of(AppError::bad_request("no body").with_field("ops[2]")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            b,
            serde_json::json!({"error": {"code": "bad_request", "message": "no body", "field": "ops[2]"}})
        );
        // Regression: the edge's "the body as a whole" (an empty field)
        // answered `"field": ""` once the error type was shared.
        let (_, b) = body_of(AppError::bad_request("not an object").with_field("")).await;
        assert!(b["error"].get("field").is_none(), "{b}");
        let (s, b) = body_of(AppError::not_found("no such store")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(b["error"].get("field").is_none(), "{b}");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let (s, b) = body_of(AppError::internal(anyhow::anyhow!("disk /var/secret full"))).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(b["error"]["code"], "internal");
        assert!(!b.to_string().contains("secret"), "{b}");
    }
}
