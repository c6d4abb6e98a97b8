//! The one error type of the HTTP API and its JSON body:
//! `{"error": {"code", "message", "field"?}}`.
//!
//! Bad input keeps its status and message; anything internal answers a
//! generic 500 and is logged with its cause, never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use wire::edge::{ErrorBody, ErrorDetail};

use crate::model::Invalid;
use crate::orders::OrderError;
use crate::store::{BatchError, WriteError};

/// An API failure.
#[derive(Debug)]
pub enum AppError {
    /// A client error with its status.
    Client {
        status: StatusCode,
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// Something broke on our side: logged, answered as a generic 500.
    Internal(anyhow::Error),
}

impl AppError {
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError::Client {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

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
            other => other,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::client(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized() -> Self {
        Self::client(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        )
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

impl From<Invalid> for AppError {
    fn from(e: Invalid) -> Self {
        AppError::client(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.message).with_field(e.field)
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::internal(e)
    }
}

impl From<WriteError> for AppError {
    fn from(e: WriteError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        match e {
            WriteError::Invalid(i) => i.into(),
            WriteError::MissingReference { field, .. } => {
                AppError::client(S::CONFLICT, "missing_reference", message).with_field(field)
            }
            WriteError::InUse { .. } => AppError::client(S::CONFLICT, "in_use", message),
            WriteError::Duplicate { field, .. } => {
                AppError::client(S::CONFLICT, "duplicate", message).with_field(field)
            }
            WriteError::LocallyOverridden { .. } => {
                AppError::client(S::CONFLICT, "locally_overridden", message)
            }
            WriteError::OverrideIsLocal => {
                AppError::client(S::CONFLICT, "override_is_local", message)
            }
            WriteError::PreconditionFailed { .. } => {
                AppError::client(S::PRECONDITION_FAILED, "version_mismatch", message)
                    .with_field("If-Match")
            }
            WriteError::PreconditionRequired { .. } => {
                AppError::client(S::PRECONDITION_REQUIRED, "precondition_required", message)
                    .with_field("If-Match")
            }
            WriteError::NotFound { .. } => AppError::not_found(message),
            WriteError::Db(e) => AppError::internal(e),
        }
    }
}

impl From<BatchError> for AppError {
    fn from(e: BatchError) -> Self {
        AppError::from(e.error)
    }
}

impl From<OrderError> for AppError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Invalid(i) => i.into(),
            other => AppError::internal(other),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, detail) = match self {
            AppError::Client {
                status,
                code,
                message,
                field,
            } => (
                status,
                ErrorDetail {
                    code: code.to_owned(),
                    message,
                    field,
                },
            ),
            AppError::Internal(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "Request failed on an internal error."
                );
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorDetail {
                        code: "internal".to_owned(),
                        message: "internal error; the cause is in the fleet-edge log".to_owned(),
                        field: None,
                    },
                )
            }
        };
        (status, axum::Json(ErrorBody { error: detail })).into_response()
    }
}
