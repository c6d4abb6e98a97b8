//! Who an operator is: a tenant-scoped token, sent as
//! `Authorization: Bearer` to the JSON API.

use axum::http::HeaderMap;

use super::{ApiResult, AppError, AppState};
use crate::tokens;

/// An authenticated operator.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The first 12 hex digits of the token's hash: names the operator in
    /// audit entries without revealing the token.
    pub id: String,
    pub tenants: Vec<String>,
}

impl Operator {
    pub fn sees(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == tenant)
    }
}

/// The operator whose token this is.
pub async fn operator_for_token(state: &AppState, token: Option<&str>) -> ApiResult<Operator> {
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AppError::unauthorized("missing operator bearer token"))?;
    let hash = tokens::hash(token);
    let tenants = state
        .store
        .operator_tenants(&hash)
        .await?
        .ok_or_else(|| AppError::unauthorized("unknown operator token"))?;
    Ok(Operator {
        id: hash[..12].to_owned(),
        tenants,
    })
}

/// The operator whose bearer token this request carries.
pub(super) async fn operator(state: &AppState, headers: &HeaderMap) -> ApiResult<Operator> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    operator_for_token(state, token).await
}
