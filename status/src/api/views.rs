//! What operators read and do: the fleet overview, one store, one tenant's
//! rollout, revoking a store's node keys.
//!
//! Each read is a typed view struct that the JSON routes serialize and the
//! dashboard's templates render, so a page shows nothing the API would not
//! and both say it with the same field names. The tenant scope is checked
//! here, once: another tenant's store or tenant answers 404 like one that
//! does not exist (THREATS.md row 16). No HTML here: how a view looks is
//! the templates' business ([`crate::dashboard`]).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use schemas::diff::{Change, Domain, EntityChange, EntityKind};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use tracing::info;

use super::actions::ActionView;
use super::error::no_such_store;
use super::{ApiResult, AppError, AppState, Operator, audit};
use crate::listing::{self, ListQuery, RawQuery};
use crate::state::{DesiredInfo, LastReport, StateInputs, SyncState, store_state};
use crate::store::{Node, ReportRow, StoreRow};
use crate::support::Bundle;

// ------------------------------------------------------------ small types

/// A time in the API: RFC 3339, UTC, to the second (`2026-01-02T03:04:05Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Seconds since the epoch; `None` outside what a date can hold.
    pub fn from_unix(secs: i64) -> Option<Timestamp> {
        DateTime::from_timestamp(secs, 0).map(Timestamp)
    }

    /// `2026-01-02 03:04:05 UTC`: the exact time, for people.
    pub fn exact(&self) -> String {
        self.0.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }

    /// How long ago (or until) this is at `now`, for people: `just now`,
    /// `42 s ago`, `3 min ago`, `5 h ago`, `2 d ago`, `in 3 d`.
    pub fn relative(&self, now: impl Borrow<DateTime<Utc>>) -> String {
        let secs = (*now.borrow() - self.0).num_seconds();
        let (n, future) = (secs.unsigned_abs(), secs < 0);
        let span = match n {
            0..10 => return "just now".to_owned(),
            10..60 => format!("{n} s"),
            60..3_600 => format!("{} min", n / 60),
            3_600..86_400 => format!("{} h", n / 3_600),
            _ => format!("{} d", n / 86_400),
        };
        if future {
            format!("in {span}")
        } else {
            format!("{span} ago")
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Stores per state, every state present (zeros included), keyed by the
/// state's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StateCounts(BTreeMap<&'static str, u64>);

impl StateCounts {
    fn zeros() -> StateCounts {
        StateCounts(SyncState::ALL.iter().map(|s| (s.as_str(), 0)).collect())
    }

    fn add(&mut self, s: SyncState) {
        *self.0.entry(s.as_str()).or_default() += 1;
    }

    /// The stores in state `s`.
    pub fn get(&self, s: SyncState) -> u64 {
        self.0.get(s.as_str()).copied().unwrap_or(0)
    }

    /// Every store counted.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

// ------------------------------------------------------------ store rows

/// The state of a store row at `now`.
pub fn row_state(state: &AppState, row: &StoreRow, now: DateTime<Utc>) -> SyncState {
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

/// One store as the overview lists it (`GET /api/v1/stores`, the `/`
/// table) and as the store page heads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreSummary {
    /// `<tenant>/<store>`.
    pub store: String,
    pub tenant: String,
    pub state: SyncState,
    pub desired_revision: Option<u64>,
    pub applied_revision: Option<u64>,
    pub last_seen: Option<Timestamp>,
    /// The outcome of the last report, as the node sent it.
    pub last_outcome: Option<String>,
    pub desired_commit: Option<String>,
    /// [`commit_url`] of `desired_commit`.
    pub desired_commit_url: Option<String>,
    pub release_valid: bool,
    pub release_error: Option<String>,
    pub release_expires_at: Option<Timestamp>,
    pub in_repo: bool,
    pub enrolled: bool,
    pub reconciler_version: Option<String>,
    /// The trust root version of the last report (none: bare keys).
    pub root_version: Option<u64>,
    /// The release apiVersions the last report's reconciler reads
    /// (DESIGN.md §9); `["fleet/v1"]` for a reconciler that does not say,
    /// empty before the first report.
    pub release_api_versions: Vec<String>,
    /// The desired revision the store's last report named: the release it
    /// verified (and may hold for its effective time or a window).
    pub reported_revision: Option<u64>,
}

impl StoreSummary {
    fn new(state: &AppState, row: &StoreRow, s: SyncState) -> StoreSummary {
        StoreSummary {
            store: row.store.clone(),
            tenant: row.tenant.clone(),
            state: s,
            desired_revision: row.desired_revision,
            applied_revision: row.applied_revision,
            last_seen: row.last_seen.and_then(Timestamp::from_unix),
            last_outcome: row.last_outcome.clone(),
            desired_commit: row.desired_commit.clone(),
            desired_commit_url: row
                .desired_commit
                .as_deref()
                .and_then(|c| commit_url(state, c)),
            release_valid: row.release_valid,
            release_error: row.release_error.clone(),
            release_expires_at: row.expires_at.and_then(Timestamp::from_unix),
            in_repo: row.in_repo,
            enrolled: row.active_nodes > 0,
            reconciler_version: row.reconciler_version.clone(),
            root_version: row.root_version,
            release_api_versions: match (&row.release_api, row.last_seen) {
                (Some(list), _) => list.split_whitespace().map(str::to_owned).collect(),
                (None, Some(_)) => vec!["fleet/v1".to_owned()],
                (None, None) => Vec::new(),
            },
            reported_revision: row.reported_revision,
        }
    }
}

/// Whether a store runs the revision the repo offers it.
fn at_desired(row: &StoreRow) -> bool {
    row.desired_revision.is_some() && row.applied_revision >= row.desired_revision
}

// ------------------------------------------------------------ the overview

/// The fleet overview: `GET /api/v1/stores` and the `/` page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// The stores the query selects, in its order (one page if it asked
    /// for one).
    pub stores: Vec<StoreSummary>,
    /// Per state, the stores passing the tenant and search filters,
    /// whatever the state filter.
    pub counts: StateCounts,
    /// Rollout progress per tenant the operator sees.
    pub tenants: BTreeMap<String, TenantProgress>,
    /// Stores passing every filter.
    pub total: u64,
    pub page: Option<u64>,
    pub per_page: Option<u64>,
    pub pages: u64,
}

/// How far a tenant's rollout is on the overview.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TenantProgress {
    pub stores: u64,
    /// Stores whose applied revision is their desired one.
    pub at_desired_revision: u64,
}

/// The fleet overview an operator may see, for `GET /api/v1/stores` and
/// the `/` page: the stores `q` selects (every one unless a page is asked
/// for), the total they are, the counts per state (of the stores passing
/// the tenant and search filters, whatever the state filter) and per-tenant
/// rollout progress (stores whose applied revision is the desired one).
/// Only the operator's tenants are ever looked at.
pub async fn overview(state: &AppState, op: &Operator, q: &ListQuery) -> ApiResult<Overview> {
    let t = state.clock.now();
    let mut tenants: BTreeMap<String, TenantProgress> = BTreeMap::new();
    let mut rows = Vec::new();
    for row in state.store.list_stores().await? {
        if !op.sees_store(&row.store) || q.tenant.as_deref().is_some_and(|x| x != row.tenant) {
            continue;
        }
        let r = tenants.entry(row.tenant.clone()).or_default();
        r.stores += 1;
        if at_desired(&row) {
            r.at_desired_revision += 1;
        }
        let s = row_state(state, &row, t);
        rows.push((row, s));
    }
    let selection = listing::select(rows, q);
    Ok(Overview {
        stores: selection
            .rows
            .iter()
            .map(|(row, s)| StoreSummary::new(state, row, *s))
            .collect(),
        counts: StateCounts(selection.counts),
        tenants,
        total: selection.total,
        page: q.page.map(|p| p.number),
        per_page: q.page.map(|p| p.size),
        pages: selection.pages,
    })
}

pub(super) async fn list_stores(
    op: Operator,
    State(state): State<AppState>,
    Query(raw): Query<RawQuery>,
) -> ApiResult<Json<Overview>> {
    let q = ListQuery::parse(&raw).map_err(|e| AppError::bad_request(e.to_string()))?;
    Ok(Json(overview(&state, &op, &q).await?))
}

// ------------------------------------------------------------ one store

/// A store the operator may see, or 404 (another tenant's store, or one
/// outside a store-scoped token, is indistinguishable from a missing one:
/// THREATS.md rows 16 and 28).
pub async fn visible_store(
    state: &AppState,
    op: &Operator,
    tenant: &str,
    store: &str,
) -> ApiResult<StoreRow> {
    if !op.sees_store(&format!("{tenant}/{store}")) {
        return Err(no_such_store());
    }
    state
        .store
        .get_store(&format!("{tenant}/{store}"))
        .await?
        .ok_or_else(no_such_store)
}

/// Reports on the store page and in `GET /api/v1/stores/{tenant}/{store}`.
pub const STORE_REPORTS: i64 = 100;

/// One store: `GET /api/v1/stores/{tenant}/{store}` and the store page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreDetail {
    #[serde(flatten)]
    pub summary: StoreSummary,
    pub explanation: Explanation,
    /// The store's age recipient (`age1…`), from its active node key: what
    /// `fleet secret recipients` writes into its store.yaml (DESIGN.md §11).
    pub recipient: Option<String>,
    /// Every node key ever enrolled for the store.
    pub nodes: Vec<NodeKey>,
    /// Newest first.
    pub reports: Vec<ReportEntry>,
    /// Uploaded support bundles, newest first.
    pub support_bundles: Vec<Bundle>,
    /// The newest operator actions asked of the store, newest first.
    pub actions: Vec<ActionView>,
}

impl StoreDetail {
    /// Whether an action is still open: the page refreshes itself then.
    pub fn action_open(&self) -> bool {
        self.actions.iter().any(|a| a.state.open())
    }
}

/// What a store's state means and what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub meaning: &'static str,
    pub action: &'static str,
}

/// One node key of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeKey {
    pub key_id: String,
    pub public_key: String,
    pub enrolled_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub active: bool,
}

impl From<Node> for NodeKey {
    fn from(n: Node) -> NodeKey {
        NodeKey {
            active: n.revoked_at.is_none(),
            enrolled_at: Timestamp::from_unix(n.enrolled_at),
            revoked_at: n.revoked_at.and_then(Timestamp::from_unix),
            key_id: n.key_id,
            public_key: n.public_key,
        }
    }
}

/// One report of a store's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportEntry {
    pub id: i64,
    pub received_at: Option<Timestamp>,
    /// The node key that signed it.
    pub key_id: String,
    pub outcome: String,
    pub desired_revision: Option<u64>,
    pub applied_revision: Option<u64>,
    /// [`commit_url`] of `commit`.
    pub commit_url: Option<String>,
    pub commit: Option<String>,
    /// The report as the node sent it (`null` if the stored text is not JSON).
    pub report: Value,
}

impl ReportEntry {
    fn new(state: &AppState, r: ReportRow) -> ReportEntry {
        ReportEntry {
            id: r.id,
            received_at: Timestamp::from_unix(r.received_at),
            key_id: r.key_id,
            outcome: r.outcome,
            desired_revision: r.desired_revision,
            applied_revision: r.applied_revision,
            commit_url: r.commit.as_deref().and_then(|c| commit_url(state, c)),
            commit: r.commit,
            report: serde_json::from_str(&r.body).unwrap_or(Value::Null),
        }
    }

    /// What the store page shows of the report body.
    pub fn details(&self) -> ReportDetails {
        ReportDetails::read(&self.report)
    }
}

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
) -> ApiResult<StoreDetail> {
    let row = visible_store(state, op, tenant, store).await?;
    let s = row_state(state, &row, state.clock.now());
    let nodes = state.store.store_nodes(&row.store).await?;
    let reports = state.store.reports(&row.store, reports).await?;
    Ok(StoreDetail {
        summary: StoreSummary::new(state, &row, s),
        explanation: Explanation {
            meaning: s.meaning(),
            action: s.action(),
        },
        recipient: nodes
            .iter()
            .find(|n| n.revoked_at.is_none())
            .and_then(|n| n.recipient.clone()),
        nodes: nodes.into_iter().map(NodeKey::from).collect(),
        reports: reports
            .into_iter()
            .map(|r| ReportEntry::new(state, r))
            .collect(),
        support_bundles: crate::support::list(state, &row.store).await?,
        actions: super::actions::recent(state, &row.store).await?,
    })
}

pub(super) async fn get_store(
    op: Operator,
    State(state): State<AppState>,
    Path((tenant, store)): Path<(String, String)>,
) -> ApiResult<Json<StoreDetail>> {
    let view = store_detail(&state, &op, &tenant, &store, STORE_REPORTS).await?;
    Ok(Json(view))
}

/// The answer of `POST /api/v1/stores/{tenant}/{store}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub store: String,
    /// Node keys revoked now (0 when none was active).
    pub revoked: u64,
}

/// Revoke a store's node keys on an operator's behalf.
pub async fn revoke_for(state: &AppState, op: &Operator, store: &str) -> ApiResult<u64> {
    op.must_edit("revoking node keys")?;
    let revoked = state
        .store
        .revoke_store_nodes(store, state.clock.now().timestamp())
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

pub(super) async fn revoke_store(
    op: Operator,
    State(state): State<AppState>,
    Path((tenant, store)): Path<(String, String)>,
) -> ApiResult<Json<Revoked>> {
    let row = visible_store(&state, &op, &tenant, &store).await?;
    let revoked = revoke_for(&state, &op, &row.store).await?;
    Ok(Json(Revoked {
        store: row.store,
        revoked,
    }))
}

// ------------------------------------------------------------ report bodies

/// What the store page shows of a report body (the node's
/// `reconciler::report::Report`). Read leniently: a field that is missing
/// or of another shape is left empty, so a report stored by an older or a
/// newer reconciler still shows what it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportDetails {
    pub duration_ms: Option<u64>,
    pub reconciler_version: Option<String>,
    /// The trust root version the store trusted after the pass (absent
    /// for a store pinning bare keys, or an older reconciler).
    pub root_version: Option<u64>,
    pub refusal: Option<Refusal>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Entities written, applied → desired.
    pub changes: Vec<ChangeLine>,
    /// Local edits reverted, each with its diff.
    pub drift: Vec<DriftEntry>,
    /// Entities left alone under a local override.
    pub overridden: Vec<ChangeLine>,
    /// Entities left out of the pass because their secret value could not
    /// be decrypted at the store (DESIGN.md §11).
    pub held_back: Vec<HeldBackLine>,
    /// With `scheduled` or `waiting_window`: when the store applies the
    /// release it holds (RFC 3339, as the node sent it).
    pub waiting_until: Option<String>,
    /// What the store's staff marked unavailable (86) there: store-owned,
    /// never reverted (DESIGN.md §14).
    pub unavailable: Vec<UnavailableLine>,
}

/// A variation the store marked unavailable, as its report says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UnavailableLine {
    pub variation: String,
    pub set_by: String,
    pub device: String,
    pub until: String,
}

/// One entity a store held back, as its report says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct HeldBackLine {
    pub kind: String,
    pub id: String,
    pub reason: String,
}

/// Why a release was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

/// One entity change, in words.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "Value")]
pub struct ChangeLine {
    /// The entity kind (`item`); `—` when the report has none.
    pub kind: String,
    pub id: String,
    /// `added`, `removed`, or the fields changed (`price: 1099 → 1199`);
    /// `None` when the entry does not read as an entity change.
    pub what: Option<String>,
    /// The domain of the entity kind (`item` → menu); `None` for a kind
    /// this build does not know.
    pub domain: Option<Domain>,
}

/// One drifted entity and its unified diff (store → repo).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "Value")]
pub struct DriftEntry {
    pub kind: String,
    pub id: String,
    pub diff: String,
}

/// The changes of one domain of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainChanges<'a> {
    pub domain: Domain,
    pub changes: Vec<&'a ChangeLine>,
}

/// One line of a unified diff and what kind of line it is: `file`
/// (`---`/`+++`), `hunk` (`@@`), `add`, `del` or `ctx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffLine<'a> {
    pub class: &'static str,
    pub text: &'a str,
}

/// A JSON value as text: a string as itself, `null` as `—`, anything else
/// as JSON.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

impl From<Value> for ChangeLine {
    fn from(v: Value) -> ChangeLine {
        match serde_json::from_value::<EntityChange>(v.clone()) {
            Ok(ec) => ChangeLine {
                kind: ec.kind.as_str().to_owned(),
                domain: Some(ec.kind.domain()),
                what: Some(match &ec.change {
                    Change::Added { .. } => "added".to_owned(),
                    Change::Removed { .. } => "removed".to_owned(),
                    Change::Changed { fields } => fields
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                }),
                id: ec.id,
            },
            Err(_) => ChangeLine {
                domain: v
                    .get("kind")
                    .and_then(Value::as_str)
                    .and_then(EntityKind::from_code)
                    .map(EntityKind::domain),
                kind: text(v.get("kind")),
                id: text(v.get("id")),
                what: None,
            },
        }
    }
}

impl From<Value> for DriftEntry {
    fn from(v: Value) -> DriftEntry {
        DriftEntry {
            kind: text(v.get("kind")),
            id: text(v.get("id")),
            diff: v
                .get("diff")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

impl DriftEntry {
    /// The diff's lines, each with its kind.
    pub fn lines(&self) -> Vec<DiffLine<'_>> {
        self.diff
            .lines()
            .map(|line| DiffLine {
                class: if line.starts_with("+++") || line.starts_with("---") {
                    "file"
                } else if line.starts_with("@@") {
                    "hunk"
                } else if line.starts_with('+') {
                    "add"
                } else if line.starts_with('-') {
                    "del"
                } else {
                    "ctx"
                },
                text: line,
            })
            .collect()
    }
}

impl ReportDetails {
    /// The details of a report body; empty where it does not read.
    pub fn read(body: &Value) -> ReportDetails {
        match body {
            Value::Object(fields) => {
                // Field by field, so one odd field leaves only itself empty.
                let field = |name: &str| fields.get(name).cloned().unwrap_or(Value::Null);
                fn or_default<T: serde::de::DeserializeOwned + Default>(v: Value) -> T {
                    serde_json::from_value(v).unwrap_or_default()
                }
                ReportDetails {
                    duration_ms: or_default(field("duration_ms")),
                    reconciler_version: or_default(field("reconciler_version")),
                    root_version: or_default(field("root_version")),
                    refusal: or_default(field("refusal")),
                    errors: or_default(field("errors")),
                    warnings: or_default(field("warnings")),
                    changes: or_default(field("changes")),
                    drift: or_default(field("drift")),
                    overridden: or_default(field("overridden")),
                    held_back: or_default(field("held_back")),
                    waiting_until: or_default(field("waiting_until")),
                    unavailable: or_default(field("unavailable")),
                }
            }
            _ => ReportDetails::default(),
        }
    }

    /// The changes per domain, in [`Domain::ALL`] order; domains without
    /// changes left out.
    pub fn changes_by_domain(&self) -> Vec<DomainChanges<'_>> {
        Domain::ALL
            .into_iter()
            .map(|domain| DomainChanges {
                domain,
                changes: self
                    .changes
                    .iter()
                    .filter(|c| c.domain == Some(domain))
                    .collect(),
            })
            .filter(|d| !d.changes.is_empty())
            .collect()
    }

    /// The changes of kinds without a known domain.
    pub fn other_changes(&self) -> Vec<&ChangeLine> {
        self.changes.iter().filter(|c| c.domain.is_none()).collect()
    }
}

// ------------------------------------------------------------ one tenant

/// One tenant's rollout: `GET /api/v1/tenants/{tenant}` and the tenant page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantRollout {
    pub tenant: String,
    pub stores: u64,
    /// Stores running their desired (latest verified) revision.
    pub applied: u64,
    pub counts: StateCounts,
    /// Newest desired revision first; stores without a verified release last.
    pub revisions: Vec<RevisionProgress>,
    /// Stores with a verified release they do not run yet (neither failing
    /// nor refused).
    pub behind: Vec<PendingStore>,
    pub failing: Vec<PendingStore>,
    pub refused: Vec<PendingStore>,
}

/// How many stores of one desired revision run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RevisionProgress {
    /// `None`: stores without a release that verifies.
    pub desired_revision: Option<u64>,
    pub stores: u64,
    pub applied: u64,
}

/// A store not (yet) at its desired revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingStore {
    pub store: String,
    pub state: SyncState,
    pub desired_revision: Option<u64>,
    pub applied_revision: Option<u64>,
    pub last_seen: Option<Timestamp>,
}

fn no_such_tenant() -> AppError {
    AppError::client(StatusCode::NOT_FOUND, "not_found", "no such tenant")
}

/// The rollout of one tenant the operator may see, for
/// `GET /api/v1/tenants/{tenant}` and the tenant page: how many of its
/// stores run their desired (latest verified) revision, the same per
/// desired revision, the counts per state, and the stores still behind,
/// failing or refused. Another tenant, or one without stores, is 404.
pub async fn tenant_rollout(
    state: &AppState,
    op: &Operator,
    tenant: &str,
) -> ApiResult<TenantRollout> {
    if !op.sees(tenant) {
        return Err(no_such_tenant());
    }
    let t = state.clock.now();
    let mut counts = StateCounts::zeros();
    // Verified desired revision (None: no release verifies) → (stores, applied).
    let mut by_revision: BTreeMap<Option<u64>, (u64, u64)> = BTreeMap::new();
    let (mut stores, mut applied) = (0u64, 0u64);
    let (mut behind, mut failing, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    for row in state.store.list_stores().await? {
        if row.tenant != tenant || !op.sees_store(&row.store) {
            continue;
        }
        let s = row_state(state, &row, t);
        counts.add(s);
        stores += 1;
        let desired = row.release_valid.then_some(row.desired_revision).flatten();
        let g = by_revision.entry(desired).or_default();
        g.0 += 1;
        let done = desired.is_some() && row.applied_revision >= desired;
        if done {
            g.1 += 1;
            applied += 1;
        }
        let entry = || PendingStore {
            store: row.store.clone(),
            state: s,
            desired_revision: desired,
            applied_revision: row.applied_revision,
            last_seen: row.last_seen.and_then(Timestamp::from_unix),
        };
        match s {
            SyncState::Failed => failing.push(entry()),
            SyncState::Refused => refused.push(entry()),
            _ if desired.is_some() && !done => behind.push(entry()),
            _ => {}
        }
    }
    if stores == 0 {
        return Err(no_such_tenant());
    }
    Ok(TenantRollout {
        tenant: tenant.to_owned(),
        stores,
        applied,
        counts,
        revisions: by_revision
            .into_iter()
            .rev()
            .map(|(rev, (n, at))| RevisionProgress {
                desired_revision: rev,
                stores: n,
                applied: at,
            })
            .collect(),
        behind,
        failing,
        refused,
    })
}

pub(super) async fn get_tenant(
    op: Operator,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> ApiResult<Json<TenantRollout>> {
    Ok(Json(tenant_rollout(&state, &op, &tenant).await?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn timestamps_read_for_people_and_for_machines() {
        let t = Timestamp::from_unix(1_800_000_000).unwrap();
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            json!("2027-01-15T08:00:00Z")
        );
        assert_eq!(t.to_string(), "2027-01-15T08:00:00Z");
        assert_eq!(t.exact(), "2027-01-15 08:00:00 UTC");
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("valid time");
        let ago = |s: i64| Timestamp(now - chrono::Duration::seconds(s)).relative(now);
        assert_eq!(ago(3), "just now");
        assert_eq!(ago(42), "42 s ago");
        assert_eq!(ago(180), "3 min ago");
        assert_eq!(ago(5 * 3600 + 10), "5 h ago");
        assert_eq!(ago(2 * 86_400), "2 d ago");
        assert_eq!(ago(-3 * 86_400), "in 3 d");
    }

    #[test]
    fn state_counts_serialize_as_a_map_of_every_state() {
        let mut c = StateCounts::zeros();
        c.add(SyncState::OutOfSync);
        c.add(SyncState::OutOfSync);
        c.add(SyncState::Synced);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v.as_object().unwrap().len(), SyncState::ALL.len());
        assert_eq!(v["out_of_sync"], 2);
        assert_eq!(v["unenrolled"], 0);
        assert_eq!((c.get(SyncState::Synced), c.total()), (1, 3));
    }

    #[test]
    fn report_details_read_leniently() {
        let body = json!({
            "duration_ms": 1530,
            "reconciler_version": "0.1.0",
            "refusal": {"code": "release/expired", "message": "the release expired"},
            "errors": ["edge unreachable"],
            "warnings": "not a list",
            "changes": [
                {"kind": "item", "id": "classic-burger", "change": "changed",
                 "fields": [{"field": "price", "before": 1099, "after": 1199}]},
                {"kind": "user", "id": "maria", "change": "added", "value": {}},
                {"kind": "gizmo", "id": 7},
            ],
            "drift": [{"kind": "item", "id": "x", "change": "changed", "fields": [],
                       "diff": "--- a\n+++ b\n@@ -1 +1 @@\n-<old>\n+new\n same\n"}],
        });
        let d = ReportDetails::read(&body);
        assert_eq!(d.duration_ms, Some(1530));
        assert_eq!(d.refusal.as_ref().unwrap().code, "release/expired");
        assert_eq!(d.errors, ["edge unreachable"]);
        assert!(d.warnings.is_empty(), "an odd field is left empty alone");
        assert_eq!(d.changes[0].what.as_deref(), Some("price: 1099 → 1199"));
        assert_eq!(d.changes[1].what.as_deref(), Some("added"));
        assert_eq!(
            (d.changes[2].kind.as_str(), d.changes[2].id.as_str()),
            ("gizmo", "7")
        );
        assert_eq!(d.changes[2].what, None);
        let domains: Vec<Domain> = d.changes_by_domain().iter().map(|g| g.domain).collect();
        assert_eq!(domains, [Domain::Menu, Domain::Access]);
        assert_eq!(d.other_changes().len(), 1);
        let classes: Vec<&str> = d.drift[0].lines().iter().map(|l| l.class).collect();
        assert_eq!(classes, ["file", "file", "hunk", "del", "add", "ctx"]);
        assert_eq!(d.drift[0].lines()[3].text, "-<old>");
        assert_eq!(ReportDetails::read(&Value::Null), ReportDetails::default());
    }

    #[test]
    fn change_domains() {
        let domain = |kind: &str| {
            ChangeLine::from(json!({"kind": kind, "id": "x", "change": "added", "value": {}}))
                .domain
        };
        assert_eq!(domain("modifier_group"), Some(Domain::Menu));
        assert_eq!(domain("routing"), Some(Domain::Kitchen));
        assert_eq!(domain("gizmo"), None);
        let odd = ChangeLine::from(json!({"kind": "modifier_group", "id": 1}));
        assert_eq!((odd.domain, odd.what), (Some(Domain::Menu), None));
    }
}
