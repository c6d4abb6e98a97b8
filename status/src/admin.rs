//! The admin commands: `token create`, `operator create | list | revoke`,
//! `node revoke`.
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
    #[error("--store {store} is not a store of the tenants given ({tenants})")]
    StoreOutsideTenants { store: String, tenants: String },
    #[error("no active operator token {0}: `fleet-status operator list` shows the ids")]
    NoSuchOperator(String),
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

/// What `operator create` makes.
#[derive(Debug, Clone)]
pub struct OperatorSpec {
    pub tenants: Vec<String>,
    /// Limit to these stores (each of one of `tenants`); empty: all.
    pub stores: Vec<String>,
    pub role: crate::api::Role,
    pub ttl: std::time::Duration,
}

/// A new operator token: answers (id, token).
pub async fn operator_create(
    database_url: &str,
    spec: &OperatorSpec,
) -> Result<(String, String), AdminError> {
    if spec.tenants.is_empty() {
        return Err(AdminError::NoTenant);
    }
    if let Some(bad) = spec
        .tenants
        .iter()
        .find(|t| !schemas::primitives::is_slug(t))
    {
        return Err(AdminError::BadTenant(bad.clone()));
    }
    for store in &spec.stores {
        if !tokens::is_store_id(store) {
            return Err(AdminError::BadStore(store.clone()));
        }
        let tenant = store.split_once('/').map(|(t, _)| t).unwrap_or_default();
        if !spec.tenants.iter().any(|t| t == tenant) {
            return Err(AdminError::StoreOutsideTenants {
                store: store.clone(),
                tenants: spec.tenants.join(","),
            });
        }
    }
    let ttl = Duration::from_std(spec.ttl).map_err(|_| AdminError::BadTtl)?;
    if ttl <= Duration::zero() || ttl > Duration::days(3650) {
        return Err(AdminError::BadTtl);
    }
    let db = store::open_existing(database_url).await?;
    let token = tokens::generate(tokens::OPERATOR_PREFIX);
    let hash = tokens::hash(&token);
    let now = Utc::now().timestamp();
    let expires_at = now + ttl.num_seconds();
    db.create_operator(&store::NewOperator {
        hash: &hash,
        role: spec.role.as_str(),
        tenants: &spec.tenants,
        stores: &spec.stores,
        created_at: now,
        expires_at: Some(expires_at),
    })
    .await?;
    let id: String = hash.chars().take(12).collect();
    db.audit(NewAudit {
        at: now,
        actor: "admin",
        action: "operator create",
        store: None,
        result: "ok",
        detail: &format!(
            "operator {id}, {} of tenants {}{}, valid for {} s",
            spec.role.as_str(),
            spec.tenants.join(","),
            if spec.stores.is_empty() {
                String::new()
            } else {
                format!(" stores {}", spec.stores.join(","))
            },
            ttl.num_seconds()
        ),
    })
    .await?;
    db.close().await?;
    Ok((id, token))
}

/// Every operator token (never the tokens themselves).
pub async fn operator_list(database_url: &str) -> Result<Vec<store::OperatorRow>, AdminError> {
    let db = store::open_existing(database_url).await?;
    let rows = db.operators().await?;
    db.close().await?;
    Ok(rows)
}

/// Revoke the operator token `id` at once (its next request gets 401).
pub async fn operator_revoke(database_url: &str, id: &str) -> Result<(), AdminError> {
    let db = store::open_existing(database_url).await?;
    let now = Utc::now().timestamp();
    if !db.revoke_operator(id, now).await? {
        db.close().await?;
        return Err(AdminError::NoSuchOperator(id.to_owned()));
    }
    db.audit(NewAudit {
        at: now,
        actor: "admin",
        action: "operator revoke",
        store: None,
        result: "ok",
        detail: &format!("operator {id}"),
    })
    .await?;
    db.close().await?;
    Ok(())
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
