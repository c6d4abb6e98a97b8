//! How the status service's errors answer: the shared error type of both
//! services ([`wire::http::AppError`]: a client error keeps its status and
//! message; an internal error answers a generic 500 and is logged, never
//! shown; body `{"error": {"code", "message"}}`), with the store's errors
//! mapped onto it here.

pub use wire::http::{ApiResult, AppError};

use crate::store::StoreError;

/// The answer for a store the operator may not see, or that does not
/// exist: the same 404 either way (THREATS row 16).
pub(crate) fn no_such_store() -> AppError {
    AppError::not_found("no such store")
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Internal(e.into())
    }
}
