//! What operators read and do: the fleet overview, one store, one tenant's
//! rollout, revoking a store's node keys. The dashboard renders the same
//! functions, so a page shows nothing the API would not, and the tenant
//! scope is checked here, once: another tenant's store or tenant answers
//! 404 like one that does not exist (THREATS.md row 16).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tracing::info;

use super::{ApiResult, AppError, AppState, Operator, audit, now};
use crate::listing::{self, ListQuery, RawQuery};
use crate::state::{DesiredInfo, LastReport, StateInputs, StoreState, store_state};
use crate::store::StoreRow;

fn ts(t: Option<i64>) -> Value {
    t.and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|d| Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(Value::Null)
}

/// The state of a store row at `now`.
pub fn row_state(state: &AppState, row: &StoreRow, now: DateTime<Utc>) -> StoreState {
    let desired = DesiredInfo {
        revision: row.release_valid.then_some(row.desired_revision).flatten(),
        expires_at: row.expires_at.and_then(|t| DateTime::from_timestamp(t, 0)),
        valid: row.release_valid,
    };
    let outcome = row
        .last_outcome
        .as_deref()
        .and_then(|o| serde_json::from_value(Value::String(o.to_owned())).ok());
    let last = outcome.map(|outcome| LastReport {
        outcome,
        applied_revision: row.applied_revision,
        drift: row.last_drift as usize,
        overridden: row.last_overridden as usize,
    });
    store_state(&StateInputs {
        enrolled: row.active_nodes > 0,
        desired: &desired,
        last_report: last.as_ref(),
        last_seen: row.last_seen.and_then(|t| DateTime::from_timestamp(t, 0)),
        now,
        interval: state.report_interval,
        stale_within: state.stale_within,
    })
}

/// The web address of `commit` on the Git host, from
/// `--commit-url-template`; `None` without a template or for a value that
/// is not a commit id (the id is put into a link, so only hex passes).
pub fn commit_url(state: &AppState, commit: &str) -> Option<String> {
    let template = state.commit_url_template.as_deref()?;
    let hex = (7..=64).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| template.replace("{commit}", commit))
}

fn commit_url_json(state: &AppState, commit: Option<&str>) -> Value {
    commit
        .and_then(|c| commit_url(state, c))
        .map(Value::String)
        .unwrap_or(Value::Null)
}

fn store_json(state: &AppState, row: &StoreRow, s: StoreState) -> Value {
    json!({
        "store": row.store,
        "tenant": row.tenant,
        "state": s.as_str(),
        "desired_revision": row.desired_revision,
        "applied_revision": row.applied_revision,
        "last_seen": ts(row.last_seen),
        "last_outcome": row.last_outcome,
        "desired_commit": row.desired_commit,
        "desired_commit_url": commit_url_json(state, row.desired_commit.as_deref()),
        "release_valid": row.release_valid,
        "release_error": row.release_error,
        "release_expires_at": ts(row.expires_at),
        "in_repo": row.in_repo,
        "enrolled": row.active_nodes > 0,
        "reconciler_version": row.reconciler_version,
    })
}

/// Whether a store runs the revision the repo offers it.
fn at_desired(row: &StoreRow) -> bool {
    row.desired_revision.is_some() && row.applied_revision >= row.desired_revision
}

/// The fleet overview an operator may see, for `GET /api/v1/stores` and
/// the `/` page: the stores `q` selects (every one unless a page is asked
/// for), the total they are, the counts per state (of the stores passing
/// the tenant and search filters, whatever the state filter) and per-tenant
/// rollout progress (stores whose applied revision is the desired one).
/// Only the operator's tenants are ever looked at.
pub async fn overview(state: &AppState, op: &Operator, q: &ListQuery) -> ApiResult<Value> {
    let t = now();
    let mut rollout: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut rows = Vec::new();
    for row in state.store.list_stores().await? {
        if !op.sees(&row.tenant) || q.tenant.as_deref().is_some_and(|x| x != row.tenant) {
            continue;
        }
        let r = rollout.entry(row.tenant.clone()).or_default();
        r.0 += 1;
        if at_desired(&row) {
            r.1 += 1;
        }
        let s = row_state(state, &row, t);
        rows.push((row, s));
    }
    let selection = listing::select(rows, q);
    let stores: Vec<Value> = selection
        .rows
        .iter()
        .map(|(row, s)| store_json(state, row, *s))
        .collect();
    let tenants: BTreeMap<String, Value> = rollout
        .into_iter()
        .map(|(k, (n, at))| (k, json!({"stores": n, "at_desired_revision": at})))
        .collect();
    Ok(json!({
        "stores": stores,
        "counts": selection.counts,
        "tenants": tenants,
        "total": selection.total,
        "page": q.page.map(|p| p.number),
        "per_page": q.page.map(|p| p.size),
        "pages": selection.pages,
    }))
}

pub(super) async fn list_stores(
    op: Operator,
    State(state): State<AppState>,
    Query(raw): Query<RawQuery>,
) -> ApiResult<Response> {
    let q = ListQuery::parse(&raw).map_err(|e| AppError::bad_request(e.to_string()))?;
    let body = overview(&state, &op, &q).await?;
    Ok(axum::Json(body).into_response())
}

/// A store the operator may see, or 404 (another tenant's store is
/// indistinguishable from a missing one: THREATS.md row 16).
pub async fn visible_store(
    state: &AppState,
    op: &Operator,
    tenant: &str,
    store: &str,
) -> ApiResult<StoreRow> {
    if !op.sees(tenant) {
        return Err(AppError::not_found());
    }
    state
        .store
        .get_store(&format!("{tenant}/{store}"))
        .await?
        .ok_or_else(AppError::not_found)
}

/// Reports on the store page and in `GET /api/v1/stores/{tenant}/{store}`.
pub const STORE_REPORTS: i64 = 100;

/// Everything known of one store the operator may see, for
/// `GET /api/v1/stores/{tenant}/{store}` and the store page: the overview
/// fields, what its state means and what to do, its node keys, and its
/// newest `reports` reports (newest first) with links to their commits.
pub async fn store_detail(
    state: &AppState,
    op: &Operator,
    tenant: &str,
    store: &str,
    reports: i64,
) -> ApiResult<Value> {
    let row = visible_store(state, op, tenant, store).await?;
    let s = row_state(state, &row, now());
    let mut j = store_json(state, &row, s);
    j["explanation"] = json!({"meaning": s.meaning(), "action": s.action()});
    let nodes: Vec<Value> = state
        .store
        .store_nodes(&row.store)
        .await?
        .into_iter()
        .map(|n| {
            json!({
                "key_id": n.key_id,
                "public_key": n.public_key,
                "enrolled_at": ts(Some(n.enrolled_at)),
                "revoked_at": ts(n.revoked_at),
                "active": n.revoked_at.is_none(),
            })
        })
        .collect();
    j["nodes"] = Value::Array(nodes);
    let reports: Vec<Value> = state
        .store
        .reports(&row.store, reports)
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "received_at": ts(Some(r.received_at)),
                "key_id": r.key_id,
                "outcome": r.outcome,
                "desired_revision": r.desired_revision,
                "applied_revision": r.applied_revision,
                "commit_url": commit_url_json(state, r.commit.as_deref()),
                "commit": r.commit,
                "report": serde_json::from_str::<Value>(&r.body).unwrap_or(Value::Null),
            })
        })
        .collect();
    j["reports"] = Value::Array(reports);
    j["support_bundles"] = crate::support::list_json(state, &row.store).await;
    Ok(j)
}

fn no_such_tenant() -> AppError {
    AppError::client(StatusCode::NOT_FOUND, "not_found", "no such tenant")
}

/// The rollout of one tenant the operator may see, for
/// `GET /api/v1/tenants/{tenant}` and the tenant page: how many of its
/// stores run their desired (latest verified) revision, the same per
/// desired revision, the counts per state, and the stores still behind,
/// failing or refused. Another tenant, or one without stores, is 404.
pub async fn tenant_rollout(state: &AppState, op: &Operator, tenant: &str) -> ApiResult<Value> {
    if !op.sees(tenant) {
        return Err(no_such_tenant());
    }
    let t = now();
    let mut counts: BTreeMap<&'static str, u64> =
        StoreState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    // Verified desired revision (None: no release verifies) → (stores, applied).
    let mut by_revision: BTreeMap<Option<u64>, (u64, u64)> = BTreeMap::new();
    let (mut stores, mut applied) = (0u64, 0u64);
    let (mut behind, mut failing, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    for row in state.store.list_stores().await? {
        if row.tenant != tenant {
            continue;
        }
        let s = row_state(state, &row, t);
        *counts.entry(s.as_str()).or_default() += 1;
        stores += 1;
        let desired = row.release_valid.then_some(row.desired_revision).flatten();
        let g = by_revision.entry(desired).or_default();
        g.0 += 1;
        let done = desired.is_some() && row.applied_revision >= desired;
        if done {
            g.1 += 1;
            applied += 1;
        }
        let entry = || {
            json!({
                "store": row.store,
                "state": s.as_str(),
                "desired_revision": desired,
                "applied_revision": row.applied_revision,
                "last_seen": ts(row.last_seen),
            })
        };
        match s {
            StoreState::Failed => failing.push(entry()),
            StoreState::Refused => refused.push(entry()),
            _ if desired.is_some() && !done => behind.push(entry()),
            _ => {}
        }
    }
    if stores == 0 {
        return Err(no_such_tenant());
    }
    // Newest revision first; stores without a verified release last.
    let revisions: Vec<Value> = by_revision
        .into_iter()
        .rev()
        .map(|(rev, (n, at))| json!({"desired_revision": rev, "stores": n, "applied": at}))
        .collect();
    Ok(json!({
        "tenant": tenant,
        "stores": stores,
        "applied": applied,
        "counts": counts,
        "revisions": revisions,
        "behind": behind,
        "failing": failing,
        "refused": refused,
    }))
}

pub(super) async fn get_tenant(
    op: Operator,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> ApiResult<Response> {
    Ok(axum::Json(tenant_rollout(&state, &op, &tenant).await?).into_response())
}

/// Revoke a store's node keys on an operator's behalf.
pub async fn revoke_for(state: &AppState, op: &Operator, store: &str) -> ApiResult<u64> {
    let revoked = state
        .store
        .revoke_store_nodes(store, now().timestamp())
        .await?;
    audit(
        state,
        &format!("operator:{}", op.id()),
        "revoke",
        Some(store),
        "ok",
        &format!("{revoked} node key(s) revoked"),
    )
    .await?;
    info!(%store, operator = %op.id(), revoked, "Node keys revoked by an operator.");
    Ok(revoked)
}

pub(super) async fn get_store(
    op: Operator,
    State(state): State<AppState>,
    Path((tenant, store)): Path<(String, String)>,
) -> ApiResult<Response> {
    let j = store_detail(&state, &op, &tenant, &store, STORE_REPORTS).await?;
    Ok(axum::Json(j).into_response())
}

pub(super) async fn revoke_store(
    op: Operator,
    State(state): State<AppState>,
    Path((tenant, store)): Path<(String, String)>,
) -> ApiResult<Response> {
    let row = visible_store(&state, &op, &tenant, &store).await?;
    let revoked = revoke_for(&state, &op, &row.store).await?;
    Ok(axum::Json(json!({"store": row.store, "revoked": revoked})).into_response())
}
