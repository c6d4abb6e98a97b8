//! The admin commands: `token create`, `operator create`, `node revoke`.
//! Each works on the database directly and returns what to print. They
//! refuse a database the service has not set up ([`store::open_existing`]),
//! so a forgotten `--database-url` cannot hand out a token the service will
//! never accept.

use chrono::{Duration, Utc};

use crate::store::{self, NewAudit, StoreError};
use crate::tokens;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0:?} is not a store id: write <tenant>/<store>, both slugs")]
    BadStore(String),
    #[error("{0:?} is not a tenant id (a slug)")]
    BadTenant(String),
    #[error("name at least one --tenant")]
    NoTenant,
    #[error("the TTL must be positive and under 10 years")]
    BadTtl,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new single-use bootstrap token for `store`, valid for `ttl`.
pub async fn token_create(
    database_url: &str,
    store_id: &str,
    ttl: std::time::Duration,
) -> Result<String, AdminError> {
    if !tokens::is_store_id(store_id) {
        return Err(AdminError::BadStore(store_id.to_owned()));
    }
    let ttl = Duration::from_std(ttl).map_err(|_| AdminError::BadTtl)?;
    if ttl <= Duration::zero() || ttl > Duration::days(3650) {
        return Err(AdminError::BadTtl);
    }
    let db = store::open_existing(database_url).await?;
    let token = tokens::generate(tokens::BOOTSTRAP_PREFIX);
    let now = Utc::now().timestamp();
    db.create_bootstrap_token(
        &tokens::hash(&token),
        store_id,
        now,
        now + ttl.num_seconds(),
    )
    .await?;
    db.audit(NewAudit {
        at: now,
        actor: "admin",
        action: "token create",
        store: Some(store_id),
        result: "ok",
        detail: &format!("bootstrap token valid for {} s", ttl.num_seconds()),
    })
    .await?;
    db.close().await?;
    Ok(token)
}

/// A new operator token scoped to `tenants`.
pub async fn operator_create(database_url: &str, tenants: &[String]) -> Result<String, AdminError> {
    if tenants.is_empty() {
        return Err(AdminError::NoTenant);
    }
    if let Some(bad) = tenants.iter().find(|t| !schemas::primitives::is_slug(t)) {
        return Err(AdminError::BadTenant(bad.clone()));
    }
    let db = store::open_existing(database_url).await?;
    let token = tokens::generate(tokens::OPERATOR_PREFIX);
    let now = Utc::now().timestamp();
    db.create_operator(&tokens::hash(&token), tenants, now)
        .await?;
    db.audit(NewAudit {
        at: now,
        actor: "admin",
        action: "operator create",
        store: None,
        result: "ok",
        detail: &format!("tenants {}", tenants.join(",")),
    })
    .await?;
    db.close().await?;
    Ok(token)
}

/// Revoke every node key of `store`; answers how many were active.
pub async fn node_revoke(database_url: &str, store_id: &str) -> Result<u64, AdminError> {
    if !tokens::is_store_id(store_id) {
        return Err(AdminError::BadStore(store_id.to_owned()));
    }
    let db = store::open_existing(database_url).await?;
    let now = Utc::now().timestamp();
    let n = db.revoke_store_nodes(store_id, now).await?;
    db.audit(NewAudit {
        at: now,
        actor: "admin",
        action: "node revoke",
        store: Some(store_id),
        result: "ok",
        detail: &format!("{n} node key(s) revoked"),
    })
    .await?;
    db.close().await?;
    Ok(n)
}
