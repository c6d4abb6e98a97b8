//! Who an operator is. An operator holds a tenant-scoped token (stored
//! hashed, [`crate::tokens`]) and sends it as `Authorization: Bearer` to
//! the JSON API, or signs in to the dashboard, which keeps it in a cookie.
//!
//! Both are extractors: a handler that takes an [`Operator`] (API) or a
//! [`SignedIn`] (pages) runs only for a known token, so no handler can
//! forget the check; and an [`Operator`] can be had only from a token, so
//! the view functions that take one cannot be called for nobody.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::{ApiResult, AppError, AppState};
use crate::tokens;

/// The dashboard's sign-in cookie: the operator token itself, `HttpOnly`
/// and `SameSite=Strict`.
pub const OPERATOR_COOKIE: &str = "fleet_operator";

pub use wire::bearer::bearer_token;

/// An authenticated operator.
#[derive(Debug, Clone)]
pub struct Operator {
    id: String,
    tenants: Vec<String>,
}

impl Operator {
    /// The first 12 hex digits of the token's hash: names the operator in
    /// audit entries and logs without revealing the token.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tenants whose stores this operator sees.
    pub fn tenants(&self) -> &[String] {
        &self.tenants
    }

    pub fn sees(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == tenant)
    }

    /// An operator of `tenants` without a token, for unit tests of what
    /// takes one.
    #[cfg(test)]
    pub(crate) fn for_tests(tenants: &[&str]) -> Operator {
        Operator {
            id: "test".to_owned(),
            tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
        }
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
        id: hash.chars().take(12).collect(),
        tenants,
    })
}

/// The operator of the request's bearer token; without a known one, 401
/// with the API's error body.
impl FromRequestParts<AppState> for Operator {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Operator> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        operator_for_token(state, token).await
    }
}

/// The operator signed in to the dashboard (the [`OPERATOR_COOKIE`]).
/// Without a known token, a page answers a redirect to `/login`.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Operator);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<SignedIn, Response> {
        match operator_for_token(state, cookie_token(&parts.headers)).await {
            Ok(op) => Ok(SignedIn(op)),
            Err(AppError::Client { .. }) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The value of the [`OPERATOR_COOKIE`] among the request's cookies.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == OPERATOR_COOKIE)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(cookie_token(&h), None);
        h.append(
            header::COOKIE,
            "a=1; fleet_operator=fso_x".parse().expect("ascii"),
        );
        assert_eq!(cookie_token(&h), Some("fso_x"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "other=1".parse().expect("ascii"));
        h.append(
            header::COOKIE,
            "fleet_operator=fso_y".parse().expect("ascii"),
        );
        assert_eq!(cookie_token(&h), Some("fso_y"));
    }
}
