//! How the edge's errors answer: the shared error type of both services
//! ([`wire::http::AppError`], body `{"error": {"code", "message",
//! "field"?}}`), with the edge's own errors mapped onto it here — each
//! refusal of a write to one HTTP status and stable code.

use axum::http::StatusCode;
pub use wire::edge::{ErrorBody, ErrorDetail};
pub use wire::http::AppError;

use crate::model::Invalid;
use crate::orders::OrderError;
use crate::store::{BatchError, WriteError};

impl From<Invalid> for AppError {
    fn from(e: Invalid) -> Self {
        AppError::client(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.message).with_field(e.field)
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
