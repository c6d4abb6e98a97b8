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

/// What an operator may do (DESIGN.md §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads every page and API of its scope.
    Viewer,
    /// Also revokes node keys (and later: reconcile now, support bundles).
    Editor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            _ => None,
        }
    }
}

/// An authenticated operator: a token that exists, is not revoked and has
/// not expired.
#[derive(Debug, Clone)]
pub struct Operator {
    id: String,
    tenants: Vec<String>,
    /// Store ids it is limited to; empty: every store of its tenants.
    stores: Vec<String>,
    role: Role,
    expires_at: Option<i64>,
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

    /// Whether the operator sees anything of `tenant`.
    pub fn sees(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == tenant)
    }

    /// Whether the operator sees the store `store` (`tenant/store`): one
    /// of its tenants and, for a store-scoped token, one of its stores.
    pub fn sees_store(&self, store: &str) -> bool {
        let tenant = store.split_once('/').map(|(t, _)| t).unwrap_or(store);
        self.sees(tenant) && (self.stores.is_empty() || self.stores.iter().any(|s| s == store))
    }

    /// The stores a store-scoped token is limited to (empty: all of its
    /// tenants' stores).
    pub fn stores(&self) -> &[String] {
        &self.stores
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// When the token stops working (unix seconds); `None` for a token
    /// made before expiry existed.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// Whether the operator may change things (revoke node keys, …).
    pub fn can_edit(&self) -> bool {
        self.role == Role::Editor
    }

    /// Refuse (403) an operator who may only read.
    pub fn must_edit(&self, action: &str) -> ApiResult<()> {
        match self.role {
            Role::Editor => Ok(()),
            Role::Viewer => Err(AppError::client(
                axum::http::StatusCode::FORBIDDEN,
                "viewer",
                format!(
                    "operator {} is a viewer: {action} needs an editor token",
                    self.id
                ),
            )),
        }
    }

    /// An operator of `tenants` without a token, for unit tests of what
    /// takes one.
    #[cfg(test)]
    pub(crate) fn for_tests(tenants: &[&str]) -> Operator {
        Operator {
            id: "test".to_owned(),
            tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
            stores: Vec::new(),
            role: Role::Editor,
            expires_at: None,
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
    let row = state
        .store
        .operator_by_hash(&hash)
        .await?
        .ok_or_else(|| AppError::unauthorized("unknown operator token"))?;
    if row.revoked_at.is_some() {
        return Err(AppError::unauthorized(format!(
            "operator token {} is revoked",
            row.id
        )));
    }
    if let Some(expires_at) = row.expires_at
        && expires_at <= state.clock.now().timestamp()
    {
        return Err(AppError::unauthorized(format!(
            "operator token {} expired; ask for a new one (fleet-status operator create)",
            row.id
        )));
    }
    // A role this build does not know reads as the lesser one.
    let role = Role::parse(&row.role).unwrap_or(Role::Viewer);
    Ok(Operator {
        id: row.id,
        tenants: row.tenants,
        stores: row.stores,
        role,
        expires_at: row.expires_at,
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
