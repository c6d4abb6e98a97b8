//! The HTTP API of the status service (DESIGN.md §6).
//!
//! Three kinds of caller, three kinds of proof:
//! - nodes (store reconcilers) sign every request with their enrolled key
//!   ([`crate::node_auth`]); the store is the key's, never the body's;
//! - operators send a tenant-scoped bearer token; another tenant's store
//!   answers 404, exactly like a store that does not exist;
//! - the Git host calls the hook with an HMAC-SHA256 of the body.
//!
//! Errors are `{"error": {"code", "message"}}`; internal errors answer a
//! generic 500 and are logged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};
use wire::report::Report;

use crate::listing::{self, ListQuery, RawQuery};
use crate::node_auth::{self, SignedHeaders};
use crate::state::{DesiredInfo, LastReport, StateInputs, StoreState, store_state};
use crate::store::{Ingested, NewAudit, NewReport, Node, Store, StoreError, StoreRow};
use crate::tokens;

/// Largest request body (a report) accepted.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Longest a `GET /api/v1/desired` long-poll waits.
pub const MAX_WAIT_SECS: u64 = 60;

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Bumped after every fetch that recorded desired revisions; long-polls wait on it.
    pub desired_changed: watch::Sender<u64>,
    /// Turns true when the server is asked to stop: long-polls answer at once.
    pub stopping: watch::Receiver<bool>,
    /// Asks the fetch loop for a fetch now (the Git hook).
    pub fetch_now: Arc<Notify>,
    pub hook_secret: Option<Arc<Vec<u8>>>,
    /// The reconcilers' pass interval (offline after three).
    pub report_interval: chrono::Duration,
    /// Releases expiring within this are `stale`.
    pub stale_within: chrono::Duration,
    pub metrics: Arc<Metrics>,
    /// `--commit-url-template`: a web address with `{commit}`; commit ids
    /// are links on the dashboard when set.
    pub commit_url_template: Option<Arc<str>>,
    /// Where uploaded support bundles are kept ([`crate::support`]).
    pub support_bundles: Option<Arc<std::path::PathBuf>>,
}

/// Counters for `GET /metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub reports_ingested: AtomicU64,
    pub fetches: AtomicU64,
    pub fetch_errors: AtomicU64,
    /// Latency per method and route.
    pub requests: Arc<crate::http_metrics::RequestLatencies>,
}

// ------------------------------------------------------------ errors

/// An API failure.
#[derive(Debug)]
pub enum AppError {
    Client {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    Internal(anyhow::Error),
}

impl AppError {
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError::Client {
            status,
            code,
            message: message.into(),
        }
    }

    fn unauthorized(message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn not_found() -> Self {
        Self::client(StatusCode::NOT_FOUND, "not_found", "no such store")
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            AppError::Client {
                status,
                code,
                message,
            } => (status, code, message),
            AppError::Internal(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "Request failed on an internal error."
                );
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log".to_owned(),
                )
            }
        };
        (
            status,
            axum::Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<T, AppError>;

// ------------------------------------------------------------ router

pub fn router(state: AppState) -> Router {
    let latencies = state.metrics.requests.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/enroll", post(enroll))
        .route("/api/v1/reports", post(post_report))
        .route("/api/v1/desired", get(desired))
        .route("/api/v1/stores", get(list_stores))
        .route("/api/v1/stores/{tenant}/{store}", get(get_store))
        .route("/api/v1/stores/{tenant}/{store}/revoke", post(revoke_store))
        .route("/api/v1/tenants/{tenant}", get(get_tenant))
        .route("/api/v1/hooks/git", post(git_hook))
        .route("/api/v1/support-bundles", post(crate::support::post_bundle))
        .merge(crate::dashboard::routes())
        // A first converge of a 5,000-item menu reports ~1 MiB of changes.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(
            latencies,
            crate::http_metrics::track,
        ))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

async fn audit(
    state: &AppState,
    actor: &str,
    action: &str,
    store: Option<&str>,
    result: &str,
    detail: &str,
) -> ApiResult<()> {
    state
        .store
        .audit(NewAudit {
            at: now().timestamp(),
            actor,
            action,
            store,
            result,
            detail,
        })
        .await?;
    Ok(())
}

// ------------------------------------------------------------ enrollment

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollBody {
    token: String,
    node_public_key: String,
    /// Optional: the store the node believes it is; a token of another
    /// store is then refused (and stays unused).
    #[serde(default)]
    store: Option<String>,
}

async fn enroll(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let body: EnrollBody = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("enroll body: {e}")))?;
    if let Some(store) = &body.store
        && !tokens::is_store_id(store)
    {
        return Err(AppError::bad_request(
            "store: write <tenant>/<store>, both slugs",
        ));
    }
    let key = node_auth::decode_public_key(&body.node_public_key)
        .map_err(|e| AppError::bad_request(format!("node_public_key: {e}")))?;
    let key_id = node_auth::key_id(&key);
    let actor = format!("node-key:{key_id}");
    if state.store.find_node(&key_id).await?.is_some() {
        audit(
            &state,
            &actor,
            "enroll",
            body.store.as_deref(),
            "refused",
            "key already enrolled",
        )
        .await?;
        return Err(AppError::client(
            StatusCode::CONFLICT,
            "already_enrolled",
            "this node key is already enrolled; make a new key",
        ));
    }
    let t = now().timestamp();
    let hash = tokens::hash(&body.token);
    match state
        .store
        .consume_bootstrap_token(&hash, body.store.as_deref(), t)
        .await?
    {
        Err(problem) => {
            warn!(key_id, problem = problem.as_str(), "Enrollment refused.");
            audit(
                &state,
                &actor,
                "enroll",
                body.store.as_deref(),
                "refused",
                problem.as_str(),
            )
            .await?;
            Err(AppError::unauthorized(
                "invalid, used or expired bootstrap token",
            ))
        }
        Ok(store) => {
            let node = Node {
                key_id: key_id.clone(),
                public_key: node_auth::encode_public_key(&key),
                store: store.clone(),
                enrolled_at: t,
                revoked_at: None,
            };
            if !state.store.enroll_node(&node).await? {
                return Err(AppError::client(
                    StatusCode::CONFLICT,
                    "already_enrolled",
                    "this node key is already enrolled; make a new key",
                ));
            }
            audit(
                &state,
                &actor,
                "enroll",
                Some(&store),
                "ok",
                "node key enrolled",
            )
            .await?;
            info!(%store, key_id, "Node enrolled.");
            Ok((
                StatusCode::CREATED,
                axum::Json(json!({"store": store, "key_id": key_id})),
            )
                .into_response())
        }
    }
}

// ------------------------------------------------------------ node auth

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> ApiResult<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::unauthorized(format!("missing header {name}")))
}

/// The node that signed this request, after every check of THREATS.md
/// rows 14 and 15. Each refusal leaves an audit entry.
pub(crate) async fn authenticate_node(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Node> {
    let (node, signed) = verify_node(state, method, uri, headers, body).await?;
    if !state
        .store
        .use_nonce(&node.key_id, &signed.nonce, now().timestamp())
        .await?
    {
        return refuse_nonce(
            state,
            &signed.key,
            &format!("{method} {}", uri.path()),
            &node,
        )
        .await;
    }
    Ok(node)
}

/// The node that signed this request, if its key is known and not revoked
/// and the signature and timestamp verify; the nonce is the caller's to
/// record ([`authenticate_node`], or with the report in
/// [`Store::ingest_report`]). Each refusal leaves an audit entry.
async fn verify_node(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<(Node, SignedHeaders)> {
    let signed = SignedHeaders {
        key: header(headers, node_auth::HEADER_KEY)?.to_owned(),
        timestamp: header(headers, node_auth::HEADER_TIMESTAMP)?.to_owned(),
        nonce: header(headers, node_auth::HEADER_NONCE)?.to_owned(),
        signature: header(headers, node_auth::HEADER_SIGNATURE)?.to_owned(),
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let action = format!("{method} {}", uri.path());
    let Some(node) = state.store.find_node(&signed.key).await? else {
        return refuse(
            state,
            &signed.key,
            &action,
            None,
            "unknown node key".to_owned(),
        )
        .await;
    };
    if node.revoked_at.is_some() {
        return refuse_revoked(state, &signed.key, &action, &node).await;
    }
    let key = node_auth::decode_public_key(&node.public_key)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored key of {}: {e}", node.key_id)))?;
    if let Err(e) = node_auth::verify_request(&key, method.as_str(), path, body, &signed, now()) {
        return refuse(
            state,
            &signed.key,
            &action,
            Some(&node.store),
            e.to_string(),
        )
        .await;
    }
    Ok((node, signed))
}

async fn refuse_revoked<T>(state: &AppState, key: &str, action: &str, node: &Node) -> ApiResult<T> {
    refuse(
        state,
        key,
        action,
        Some(&node.store),
        "node key revoked".to_owned(),
    )
    .await
}

async fn refuse_nonce<T>(state: &AppState, key: &str, action: &str, node: &Node) -> ApiResult<T> {
    refuse(
        state,
        key,
        action,
        Some(&node.store),
        "nonce reused (replayed request)".to_owned(),
    )
    .await
}

/// Log, audit and answer 401 for a refused node request.
async fn refuse<T>(
    state: &AppState,
    key: &str,
    action: &str,
    store: Option<&str>,
    why: String,
) -> ApiResult<T> {
    // The header is the caller's text: keep what is logged and stored short.
    let key: String = key.chars().take(64).collect();
    let key = key.as_str();
    warn!(key, reason = %why, "Node request refused.");
    audit(
        state,
        &format!("node-key:{key}"),
        action,
        store,
        "refused",
        &why,
    )
    .await?;
    Err(AppError::unauthorized(why))
}

// ------------------------------------------------------------ reports

/// `POST /api/v1/reports`. The signature is checked first; the nonce is
/// recorded together with the report, in one transaction
/// ([`Store::ingest_report`]), which also checks once more, as it writes,
/// that the key is not revoked.
async fn post_report(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (node, signed) = verify_node(&state, &method, &uri, &headers, &body).await?;
    let report: Report = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("report body: {e}")))?;
    if report.store != node.store {
        // THREATS.md row 13: the key decides the store; a body naming
        // another store is refused, not silently re-labelled.
        let why = format!(
            "the report names store {} but this node is enrolled for {}",
            report.store, node.store
        );
        warn!(key_id = %node.key_id, store = %node.store, claimed = %report.store, "Report for another store refused.");
        audit(
            &state,
            &format!("node-key:{}", node.key_id),
            "POST /api/v1/reports",
            Some(&node.store),
            "refused",
            &why,
        )
        .await?;
        return Err(AppError::client(StatusCode::FORBIDDEN, "wrong_store", why));
    }
    let new = NewReport {
        store: node.store.clone(),
        key_id: node.key_id.clone(),
        received_at: now().timestamp(),
        outcome: report.outcome.as_str().to_owned(),
        desired_revision: report.desired_revision,
        applied_revision: report.applied_revision,
        commit: report.commit,
        drift: report.drift.len(),
        overridden: report.overridden.len(),
        reconciler_version: report.reconciler_version,
        // Valid UTF-8: it just parsed as JSON.
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let action = "POST /api/v1/reports";
    let id = match state.store.ingest_report(&signed.nonce, &new).await? {
        Ingested::Stored(id) => id,
        Ingested::NonceReused => return refuse_nonce(&state, &signed.key, action, &node).await,
        Ingested::NodeRevoked => return refuse_revoked(&state, &signed.key, action, &node).await,
    };
    tracing::debug!(store = %node.store, outcome = %new.outcome, id, "Report stored.");
    state
        .metrics
        .reports_ingested
        .fetch_add(1, Ordering::Relaxed);
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "store": node.store})),
    )
        .into_response())
}

// ------------------------------------------------------------ long-poll

#[derive(Debug, Deserialize)]
struct DesiredQuery {
    after: Option<u64>,
    wait: Option<u64>,
}

async fn desired(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<DesiredQuery>,
) -> ApiResult<Response> {
    let node = authenticate_node(&state, &method, &uri, &headers, &[]).await?;
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let mut deadline = tokio::time::Instant::now() + wait;
    let mut changes = state.desired_changed.subscribe();
    loop {
        // Subscribed before reading, so a change in between is not lost.
        changes.borrow_and_update();
        let row = state.store.get_store(&node.store).await?;
        let revision = row
            .as_ref()
            .filter(|r| r.release_valid)
            .and_then(|r| r.desired_revision);
        let newer = revision.is_some_and(|d| q.after.is_none_or(|a| d > a));
        let timed_out = tokio::time::Instant::now() >= deadline;
        if newer || timed_out {
            return Ok(axum::Json(json!({
                "store": node.store,
                "desired_revision": revision,
                "commit": row.and_then(|r| r.desired_commit),
                "changed": newer,
            }))
            .into_response());
        }
        let mut stopping = state.stopping.clone();
        if *stopping.borrow_and_update() {
            deadline = tokio::time::Instant::now();
            continue;
        }
        tokio::select! {
            changed = tokio::time::timeout_at(deadline, changes.changed()) => {
                // The sender lives as long as the state: an error means the
                // server is going away, so answer now.
                if let Ok(Err(_)) = changed {
                    deadline = tokio::time::Instant::now();
                }
            }
            // Shutting down: answer now instead of holding the stop up.
            _ = stopping.changed() => deadline = tokio::time::Instant::now(),
        }
    }
}

// ------------------------------------------------------------ operators

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
async fn operator(state: &AppState, headers: &HeaderMap) -> ApiResult<Operator> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    operator_for_token(state, token).await
}

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

async fn list_stores(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(raw): Query<RawQuery>,
) -> ApiResult<Response> {
    let op = operator(&state, &headers).await?;
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

async fn get_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult<Response> {
    let op = operator(&state, &headers).await?;
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
        &format!("operator:{}", op.id),
        "revoke",
        Some(store),
        "ok",
        &format!("{revoked} node key(s) revoked"),
    )
    .await?;
    info!(%store, operator = %op.id, revoked, "Node keys revoked by an operator.");
    Ok(revoked)
}

async fn get_store(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((tenant, store)): Path<(String, String)>,
) -> ApiResult<Response> {
    let op = operator(&state, &headers).await?;
    let j = store_detail(&state, &op, &tenant, &store, STORE_REPORTS).await?;
    Ok(axum::Json(j).into_response())
}

async fn revoke_store(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((tenant, store)): Path<(String, String)>,
) -> ApiResult<Response> {
    let op = operator(&state, &headers).await?;
    let row = visible_store(&state, &op, &tenant, &store).await?;
    let revoked = revoke_for(&state, &op, &row.store).await?;
    Ok(axum::Json(json!({"store": row.store, "revoked": revoked})).into_response())
}

// ------------------------------------------------------------ git hook

/// Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`.
pub fn hook_signature_ok(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

async fn git_hook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let Some(secret) = &state.hook_secret else {
        return Err(AppError::client(
            StatusCode::NOT_FOUND,
            "not_found",
            "the Git hook is off: start with --hook-secret-file",
        ));
    };
    let signature = headers
        .get("X-Hub-Signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !hook_signature_ok(secret, &body, signature) {
        warn!("Git hook with a bad signature refused.");
        audit(
            &state,
            "git-hook",
            "hook",
            None,
            "refused",
            "bad X-Hub-Signature-256",
        )
        .await?;
        return Err(AppError::unauthorized("bad X-Hub-Signature-256"));
    }
    state.fetch_now.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"fetch": "scheduled"})),
    )
        .into_response())
}

// ------------------------------------------------------------ metrics

async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let t = now();
    let mut counts: BTreeMap<&'static str, u64> =
        StoreState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for row in state.store.list_stores().await? {
        *counts
            .entry(row_state(&state, &row, t).as_str())
            .or_default() += 1;
    }
    let mut out = String::new();
    out.push_str(
        "# HELP fleet_status_stores Stores per state.\n# TYPE fleet_status_stores gauge\n",
    );
    for (s, n) in &counts {
        out.push_str(&format!("fleet_status_stores{{state=\"{s}\"}} {n}\n"));
    }
    let m = &state.metrics;
    out.push_str(&format!(
        "# HELP fleet_status_reports_ingested_total Reports accepted since start.\n\
         # TYPE fleet_status_reports_ingested_total counter\n\
         fleet_status_reports_ingested_total {}\n\
         # HELP fleet_status_fetches_total Fleet repo fetches since start.\n\
         # TYPE fleet_status_fetches_total counter\n\
         fleet_status_fetches_total {}\n\
         # HELP fleet_status_fetch_errors_total Failed fleet repo fetches since start.\n\
         # TYPE fleet_status_fetch_errors_total counter\n\
         fleet_status_fetch_errors_total {}\n",
        m.reports_ingested.load(Ordering::Relaxed),
        m.fetches.load(Ordering::Relaxed),
        m.fetch_errors.load(Ordering::Relaxed),
    ));
    out.push_str(&m.requests.render());
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_signatures() {
        // GitHub's documented example: secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(hook_signature_ok(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            sig
        ));
        assert!(!hook_signature_ok(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            sig
        ));
        assert!(!hook_signature_ok(b"other", b"Hello, World!", sig));
        assert!(!hook_signature_ok(b"x", b"y", "sha1=00"));
        assert!(!hook_signature_ok(b"x", b"y", "sha256=zz"));
    }
}
