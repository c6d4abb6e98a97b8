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
//! generic 500 and are logged ([`AppError`]).
//!
//! One module per concern: `error` (the one error type), `auth` (operator
//! tokens, and the extractors every operator route takes), `enroll`,
//! `reports` (node request signatures and report ingest), `desired` (the
//! nodes' long-poll), `relay` (the release relay), `views` (what operators
//! read and do), `hook` (the Git hook) and `metrics` (Prometheus text).
//! This module holds the router and the state every handler shares.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use crate::store::{NewAudit, Store};

pub mod actions;
mod auth;
mod desired;
mod enroll;
mod error;
mod hook;
mod metrics;
mod relay;
mod reports;
mod rollouts;
mod rotate;
mod views;

pub use auth::{OPERATOR_COOKIE, Operator, Role, SignedIn, bearer_token, operator_for_token};
pub use error::{ApiResult, AppError};
pub use hook::hook_signature_ok;
pub use relay::Relay;
pub(crate) use reports::authenticate_node;
pub use rollouts::read as rollouts_read;
pub use rollouts::{
    RolloutEntry, RolloutView, Rollouts, RolloutsView, WaveStore, WaveView, rollouts_view,
};
pub use views::{
    ChangeLine, DiffLine, DomainChanges, DriftEntry, Explanation, NodeKey, Overview, PendingStore,
    Refusal, ReportDetails, ReportEntry, RevisionProgress, Revoked, STORE_REPORTS, StateCounts,
    StoreDetail, StoreSummary, TenantProgress, TenantRollout, Timestamp, commit_url, overview,
    revoke_for, row_state, store_detail, tenant_rollout, visible_store,
};

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
    /// Wakes a store's long-polls held here when an operator action is
    /// asked of it ([`actions`]).
    pub actions: Arc<actions::Wakers>,
    /// The time, for every handler and view.
    pub clock: Clock,
    /// The rollout files of the last scanned commit (DESIGN.md §12).
    pub rollouts: Rollouts,
    /// The release relay's mirror and commit; `None` without `--repo-url`.
    pub relay: Option<Arc<Relay>>,
    /// Alert conditions holding now, by kind ([`crate::alerts`]).
    pub alert_counts: crate::alerts::Counts,
    /// What this replica's last fetch recorded, for the long-polls it
    /// wakes: they answer from it instead of reading their row each.
    pub scanned: Scanned,
    /// Active node keys already looked up, for reports only
    /// ([`reports::KnownKeys`]).
    pub known_keys: reports::KnownKeys,
}

/// The verified desired revision of each store at this replica's last
/// recorded fetch, and that commit. Written after the rows are committed,
/// so it never says more than the database; a store it does not name (or
/// names at an older revision) is read from the database as before.
#[derive(Debug, Clone, Default)]
pub struct Scanned(Arc<std::sync::RwLock<Option<Arc<ScannedRows>>>>);

#[derive(Debug)]
pub struct ScannedRows {
    pub commit: Arc<str>,
    pub revisions: std::collections::HashMap<String, u64>,
}

impl Scanned {
    /// Whether a fetch was recorded since the service started.
    pub fn any(&self) -> bool {
        self.0.read().map(|s| s.is_some()).unwrap_or(false)
    }

    /// Remember the rows of a fetch just recorded.
    pub fn set(&self, commit: &str, rows: &[crate::store::DesiredRow]) {
        let revisions = rows
            .iter()
            .filter(|r| r.valid)
            .filter_map(|r| Some((r.store.clone(), r.revision?)))
            .collect();
        let scanned = Arc::new(ScannedRows {
            commit: Arc::from(commit),
            revisions,
        });
        if let Ok(mut s) = self.0.write() {
            *s = Some(scanned);
        }
    }

    /// The revision and commit of `store` at the last fetch, when it is
    /// newer than `after`.
    pub fn newer(&self, store: &str, after: Option<u64>) -> Option<(u64, Arc<str>)> {
        let s = self.0.read().ok()?.clone()?;
        let rev = *s.revisions.get(store)?;
        after
            .is_none_or(|a| rev > a)
            .then(|| (rev, s.commit.clone()))
    }
}

/// Counters for `GET /metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub reports_ingested: AtomicU64,
    pub fetches: AtomicU64,
    pub fetch_errors: AtomicU64,
    /// Release relay answers: with a body, and 304.
    pub relay_answers: AtomicU64,
    pub relay_not_modified: AtomicU64,
    /// Long-polls held now.
    pub long_polls: AtomicU64,
    /// The trust root version the service walked to at its last fetch (0:
    /// none, the service pins release keys), and when it expires (unix
    /// seconds; 0: none).
    pub trust_root_version: AtomicU64,
    pub trust_root_expires_at: std::sync::atomic::AtomicI64,
    /// Latency per method and route.
    pub requests: Arc<crate::http_metrics::RequestLatencies>,
}

pub fn router(state: AppState) -> Router {
    let latencies = state.metrics.requests.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/enroll", post(enroll::enroll))
        .route("/api/v1/reports", post(reports::post_report))
        .route("/api/v1/nodes/rotate", post(rotate::rotate))
        .route(wire::desired::PATH, get(desired::desired))
        .route(wire::relay::PATH, get(relay::release))
        .route("/api/v1/stores", get(views::list_stores))
        .route("/api/v1/stores/{tenant}/{store}", get(views::get_store))
        .route(
            "/api/v1/stores/{tenant}/{store}/revoke",
            post(views::revoke_store),
        )
        .route(
            "/api/v1/stores/{tenant}/{store}/actions",
            post(actions::post_action),
        )
        .route(
            "/api/v1/stores/{tenant}/{store}/support-bundles/{id}",
            get(crate::support::get_bundle),
        )
        .route("/api/v1/tenants/{tenant}", get(views::get_tenant))
        .route("/api/v1/rollouts", get(rollouts::list_rollouts))
        .route("/api/v1/hooks/git", post(hook::git_hook))
        .route(
            wire::desired::SUPPORT_BUNDLES_PATH,
            post(crate::support::post_bundle),
        )
        .merge(crate::dashboard::routes())
        // A first converge of a 5,000-item menu reports ~1 MiB of changes.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(crate::http_metrics::Track(latencies))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// The service's clock. Handlers and views read the time only here, so a
/// test can fix it; production uses the system clock.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(Utc::now))
    }

    /// A clock that always says `at`.
    pub fn fixed(at: DateTime<Utc>) -> Clock {
        Clock(Arc::new(move || at))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

/// One audit entry, now.
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
            at: state.clock.now().timestamp(),
            actor,
            action,
            store,
            result,
            detail,
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Scanned;
    use crate::store::DesiredRow;

    fn row(store: &str, revision: Option<u64>, valid: bool) -> DesiredRow {
        DesiredRow {
            store: store.to_owned(),
            revision,
            commit: "c0ffee".to_owned(),
            expires_at: None,
            valid,
            error: (!valid).then(|| "signature/invalid: bad".to_owned()),
            checked_at: 0,
        }
    }

    #[test]
    fn a_fetchs_rows_answer_only_newer_verified_revisions() {
        let s = Scanned::default();
        assert_eq!(s.newer("acme/soho", None), None, "nothing fetched yet");
        s.set(
            "c0ffee",
            &[
                row("acme/soho", Some(3), true),
                row("acme/tribeca", Some(5), false),
                row("acme/bare", None, false),
            ],
        );
        let commit = |c: Option<(u64, std::sync::Arc<str>)>| c.map(|(r, c)| (r, c.to_string()));
        assert_eq!(
            commit(s.newer("acme/soho", None)),
            Some((3, "c0ffee".into()))
        );
        assert_eq!(
            commit(s.newer("acme/soho", Some(2))),
            Some((3, "c0ffee".into()))
        );
        assert_eq!(s.newer("acme/soho", Some(3)), None, "not newer");
        assert_eq!(s.newer("acme/tribeca", None), None, "does not verify");
        assert_eq!(s.newer("acme/bare", None), None, "no release");
        assert_eq!(s.newer("globex/x", None), None, "not in the repo");
    }
}
