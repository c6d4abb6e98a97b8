//! The dashboard: server-rendered HTML pages over the same view functions
//! and typed view structs as the JSON API ([`api::overview`],
//! [`api::store_detail`], [`api::tenant_rollout`], [`api::revoke_for`]), so
//! a page can show nothing the API would not and tenant scoping is enforced
//! in one place. Operators sign in with their tenant-scoped token, kept in
//! an `HttpOnly`, `SameSite=Strict` cookie; every page takes the
//! [`SignedIn`] extractor, which sends anyone else to `/login`. Another
//! tenant's store or tenant page answers 404 like the API (THREATS row 16).
//!
//! Pages: `/` (counts, rollout per tenant, the filterable, sortable, paged
//! store table), `/stores/{tenant}/{store}` (summary, node keys, revoke,
//! report timeline), `/tenants/{tenant}` (rollout progress), `/login`.
//! They work without JavaScript; one inline `onchange` submits the filter
//! form sooner where scripts run. The stylesheet is
//! `status/assets/dashboard.css`, served at [`STYLESHEET_PATH`].
//!
//! The HTML comes from askama templates (`status/templates/`, one base
//! layout), which escape every value: store names, report texts and diffs
//! come from nodes and the repo, and no template marks any of it safe.
//! This module builds the page structs (the API's view plus the page's own
//! links) and the small helpers the templates call; it must not query the
//! store or decide who sees what.

use std::borrow::Borrow;
use std::fmt;

use askama::Template;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::api::{
    self, AppError, AppState, OPERATOR_COOKIE, Operator, Overview, PendingStore, SignedIn,
    StoreDetail, TenantRollout,
};
use crate::listing::{self, DEFAULT_PAGE_SIZE, ListQuery, Page, RawQuery, SortKey};
use crate::state::SyncState;

/// Reports on the store page (the API gives [`api::STORE_REPORTS`]).
pub const PAGE_REPORTS: i64 = 50;

/// Entity changes listed per domain and report before "and N more".
pub const CHANGES_SHOWN: usize = 25;

/// Domains with more changes than this start folded on the store page.
pub const CHANGES_OPEN: usize = 8;

/// Stores listed per group on the tenant page before a link to the overview.
pub const PENDING_SHOWN: usize = 100;

/// Where the stylesheet is served.
pub const STYLESHEET_PATH: &str = "/assets/dashboard.css";

/// The stylesheet, built into the binary.
const STYLESHEET: &str = include_str!("../assets/dashboard.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/stores/{tenant}/{store}", get(store_page))
        .route("/stores/{tenant}/{store}/revoke", post(revoke))
        .route("/stores/{tenant}/{store}/actions", post(ask_action))
        .route(
            "/stores/{tenant}/{store}/support-bundles/{id}",
            get(bundle_download),
        )
        .route("/tenants/{tenant}", get(tenant_page))
        .route("/tenants/{tenant}/rollouts", get(rollouts_page))
        .route(STYLESHEET_PATH, get(stylesheet))
}

// ------------------------------------------------------------ template helpers

/// The escaper of the dashboard's templates (`status/askama.toml`):
/// askama's five characters, `&`, `<`, `>`, `"` and `'`, written as `&amp;`,
/// `&lt;`, `&gt;`, `&quot;` and `&#39;` rather than askama's numeric
/// `&#38;`…, so a page reads as it did before templates (ADR 31).
#[derive(Debug, Clone, Copy, Default)]
pub struct HtmlEntities;

impl askama::filters::Escaper for HtmlEntities {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, b) in text.bytes().enumerate() {
            let entity = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            // `i` is an ASCII byte, so both slices end on a char boundary.
            dest.write_str(&text[plain..i])?;
            dest.write_str(entity)?;
            plain = i + 1;
        }
        dest.write_str(&text[plain..])
    }
}

/// `10000` → `10,000`.
pub fn thousands(n: impl Borrow<u64>) -> String {
    let digits = n.borrow().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `done` of `of` in whole percent (0 of nothing).
pub fn percent(done: impl Borrow<u64>, of: impl Borrow<u64>) -> u64 {
    (done.borrow().saturating_mul(100))
        .checked_div(*of.borrow())
        .unwrap_or(0)
}

/// A machine name in words: `drift_corrected` → `drift corrected`.
pub fn label(s: &str) -> String {
    s.replace('_', " ")
}

/// The badge class of a report outcome; `unknown` for a value this build
/// does not know (the outcome comes from the node).
pub fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "converged" => "converged",
        "no_change" => "no_change",
        "drift_corrected" => "drift_corrected",
        "failed" => "failed",
        "refused" => "refused",
        "scheduled" => "scheduled",
        "waiting_window" => "waiting_window",
        _ => "unknown",
    }
}

/// A unix time as a UTC date and minute for people (`2027-03-01 12:00
/// UTC`), or `never`.
pub fn date(at: Option<i64>) -> String {
    match at.and_then(|t| chrono::DateTime::from_timestamp(t, 0)) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "never".to_owned(),
    }
}

/// The first 10 characters of a commit id.
pub fn short_commit(commit: &str) -> String {
    commit.chars().take(10).collect()
}

/// A pass's duration for people: `850 ms`, `1.5 s`; `—` when not reported.
pub fn duration(ms: &Option<u64>) -> String {
    match *ms {
        Some(ms) if ms >= 1000 => format!("{}.{} s", ms / 1000, (ms % 1000) / 100),
        Some(ms) => format!("{ms} ms"),
        None => "—".to_owned(),
    }
}

/// The link to a store's page; each path segment percent-encoded.
/// The download link of support bundle `id` of `store`.
pub fn bundle_href(store: &str, id: &str) -> String {
    format!(
        "{}/support-bundles/{}",
        store_href(store),
        listing::encode_component(id)
    )
}

/// A size for people: `812 B`, `14.2 KiB`, `3.1 MiB`.
pub fn bytes(n: impl Borrow<u64>) -> String {
    let n = *n.borrow();
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

pub fn store_href(store: &str) -> String {
    let (t, s) = store.split_once('/').unwrap_or((store, ""));
    format!(
        "/stores/{}/{}",
        listing::encode_component(t),
        listing::encode_component(s)
    )
}

/// The link to a tenant's page.
pub fn tenant_href(tenant: &str) -> String {
    format!("/tenants/{}", listing::encode_component(tenant))
}

/// The stylesheet's address, with a version that changes with its content
/// so a browser never keeps an old one across an upgrade.
pub fn stylesheet_href() -> String {
    format!("{STYLESHEET_PATH}?v={:016x}", fnv1a(STYLESHEET.as_bytes()))
}

/// FNV-1a, 64 bits: a cache key, not a security measure.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

// ------------------------------------------------------------ pages

/// A page as a response; a template that fails to render is the API's
/// internal error.
fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            AppError::Internal(anyhow::Error::new(e).context("rendering a page")).into_response()
        }
    }
}

/// A client error of the API as a page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    operator: Option<&'a Operator>,
    title: &'static str,
    message: String,
}

/// An API error as a page: a client error keeps its status and message
/// (404 reads like a missing store); an internal one is the API's 500.
fn error_page(op: &Operator, e: AppError) -> Response {
    match e {
        AppError::Client {
            status, message, ..
        } => {
            let title = if status == StatusCode::NOT_FOUND {
                "Not found"
            } else {
                "Cannot show this"
            };
            let page = ErrorPage {
                operator: Some(op),
                title,
                message: capitalized(&message),
            };
            render(status, &page)
        }
        e => e.into_response(),
    }
}

/// A link among a page's choices: the count of one state (or of all, with
/// no state) as a filter.
#[derive(Debug, Clone)]
struct CountLink {
    state: Option<SyncState>,
    n: u64,
    /// The filter in force.
    on: bool,
    href: String,
}

/// One `<option>` of a filter.
#[derive(Debug, Clone)]
struct Choice {
    value: String,
    shown: String,
    selected: bool,
}

impl Choice {
    fn new(value: &str, shown: &str, selected: bool) -> Choice {
        Choice {
            value: value.to_owned(),
            shown: shown.to_owned(),
            selected,
        }
    }
}

/// A sortable column head of the store table.
#[derive(Debug, Clone)]
struct Column {
    title: &'static str,
    class: &'static str,
    /// `none`, `ascending` or `descending`.
    aria_sort: &'static str,
    /// ` ▲`, ` ▼` or nothing.
    arrow: &'static str,
    /// The table sorted by this column (reversed if it already is).
    href: String,
}

/// The overview's pager.
#[derive(Debug, Clone)]
struct Pager {
    number: u64,
    /// The rows shown, 1-based (0–0 of none).
    first: u64,
    last: u64,
    prev: Option<String>,
    next: Option<String>,
}

/// `/`.
#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage<'a> {
    operator: Option<&'a Operator>,
    now: DateTime<Utc>,
    view: &'a Overview,
    counts: Vec<CountLink>,
    tenants: Vec<Choice>,
    states: Vec<Choice>,
    search: &'a str,
    /// The `root_below` filter as typed (empty: none).
    root_below: String,
    sorts: Vec<Choice>,
    dirs: Vec<Choice>,
    columns: Vec<Column>,
    pager: Pager,
    /// The trust root expires within 30 days, or has: what to do.
    root_warning: Option<String>,
}

/// A warning when the trust root the service walked to expires within 30
/// days (or has: the fleet is frozen), from its version and expiry.
pub fn root_warning(version: u64, expires_at: i64, now: DateTime<Utc>) -> Option<String> {
    if version == 0 {
        return None;
    }
    let left = expires_at - now.timestamp();
    let day = date(Some(expires_at));
    if left <= 0 {
        Some(format!(
            "Trust root version {version} expired on {day}: stores refuse every new release and show stale until a new root version is signed (fleet root propose, then sign; docs/operations/signing.md)."
        ))
    } else if left <= 30 * 86_400 {
        Some(format!(
            "Trust root version {version} expires on {day} (in {} days): propose and sign the next version before then, or every store freezes (docs/operations/signing.md).",
            left / 86_400
        ))
    } else {
        None
    }
}

/// `q` with `change` applied, back on page 1, as a link to `/`.
fn overview_href(q: &ListQuery, change: impl FnOnce(&mut ListQuery)) -> String {
    let mut q = q.clone();
    change(&mut q);
    if let Some(p) = &mut q.page {
        p.number = 1;
    }
    format!("/{}", q.to_query_string())
}

fn column_title(key: SortKey) -> &'static str {
    match key {
        SortKey::Store => "Store",
        SortKey::State => "State",
        SortKey::Desired => "Desired",
        SortKey::Applied => "Applied",
        SortKey::LastSeen => "Last seen",
        SortKey::Reconciler => "Reconciler",
    }
}

impl Column {
    fn new(q: &ListQuery, key: SortKey, class: &'static str) -> Column {
        let on = q.sort == key;
        let (aria_sort, arrow) = match (on, q.desc) {
            (false, _) => ("none", ""),
            (true, false) => ("ascending", " ▲"),
            (true, true) => ("descending", " ▼"),
        };
        Column {
            title: column_title(key),
            class,
            aria_sort,
            arrow,
            href: overview_href(q, |q| {
                q.desc = on && !q.desc;
                q.sort = key;
            }),
        }
    }
}

impl Pager {
    fn new(q: &ListQuery, view: &Overview) -> Pager {
        let Page { number, size } = q.page.unwrap_or(Page {
            number: 1,
            size: DEFAULT_PAGE_SIZE,
        });
        let skipped = (number - 1).saturating_mul(size);
        let step = |to: u64| {
            let mut other = q.clone();
            other.page = Some(Page { number: to, size });
            format!("/{}", other.to_query_string())
        };
        Pager {
            number,
            first: if view.total == 0 { 0 } else { skipped + 1 },
            last: (skipped + view.stores.len() as u64).min(view.total),
            prev: (number > 1).then(|| step(number - 1)),
            next: (number < view.pages).then(|| step(number + 1)),
        }
    }
}

impl<'a> OverviewPage<'a> {
    fn new(
        op: &'a Operator,
        q: &'a ListQuery,
        view: &'a Overview,
        now: DateTime<Utc>,
    ) -> OverviewPage<'a> {
        // Counts per state, each a filter (a second click clears it).
        let mut counts = vec![CountLink {
            state: None,
            n: view.counts.total(),
            on: q.state.is_none(),
            href: overview_href(q, |q| q.state = None),
        }];
        counts.extend(SyncState::ALL.into_iter().map(|s| {
            let on = q.state == Some(s);
            CountLink {
                state: Some(s),
                n: view.counts.get(s),
                on,
                href: overview_href(q, |q| q.state = if on { None } else { Some(s) }),
            }
        }));
        let tenants = std::iter::once(Choice::new("", "all tenants", q.tenant.is_none()))
            .chain(
                op.tenants()
                    .iter()
                    .map(|t| Choice::new(t, t, q.tenant.as_deref() == Some(t))),
            )
            .collect();
        let states = std::iter::once(Choice::new("", "all states", q.state.is_none()))
            .chain(
                SyncState::ALL
                    .into_iter()
                    .map(|s| Choice::new(s.as_str(), s.label(), q.state == Some(s))),
            )
            .collect();
        let sorts = SortKey::ALL
            .into_iter()
            .map(|k| Choice::new(k.as_str(), column_title(k), q.sort == k))
            .collect();
        let dirs = vec![
            Choice::new("asc", "ascending", !q.desc),
            Choice::new("desc", "descending", q.desc),
        ];
        let columns = [
            (SortKey::Store, ""),
            (SortKey::State, ""),
            (SortKey::Desired, "num"),
            (SortKey::Applied, "num"),
            (SortKey::LastSeen, ""),
            (SortKey::Reconciler, ""),
        ]
        .into_iter()
        .map(|(k, class)| Column::new(q, k, class))
        .collect();
        OverviewPage {
            operator: Some(op),
            now,
            view,
            counts,
            tenants,
            states,
            search: q.search.as_deref().unwrap_or(""),
            root_below: q.root_below.map(|n| n.to_string()).unwrap_or_default(),
            sorts,
            dirs,
            columns,
            pager: Pager::new(q, view),
            root_warning: None,
        }
    }
}

async fn overview_page(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Query(raw): Query<RawQuery>,
) -> Result<Response, Response> {
    let q = ListQuery::parse(&raw)
        .map_err(|e| error_page(&op, AppError::bad_request(e.to_string())))?
        .paged();
    let view = api::overview(&state, &op, &q)
        .await
        .map_err(|e| error_page(&op, e))?;
    let mut page = OverviewPage::new(&op, &q, &view, state.clock.now());
    page.root_warning = root_warning(
        state
            .metrics
            .trust_root_version
            .load(std::sync::atomic::Ordering::Relaxed),
        state
            .metrics
            .trust_root_expires_at
            .load(std::sync::atomic::Ordering::Relaxed),
        state.clock.now(),
    );
    Ok(render(StatusCode::OK, &page))
}

/// `/stores/{tenant}/{store}`.
#[derive(Template)]
#[template(path = "store.html")]
struct StorePage<'a> {
    operator: Option<&'a Operator>,
    now: DateTime<Utc>,
    view: &'a StoreDetail,
}

async fn store_page(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Path((tenant, store)): Path<(String, String)>,
) -> Result<Response, Response> {
    let view = api::store_detail(&state, &op, &tenant, &store, PAGE_REPORTS)
        .await
        .map_err(|e| error_page(&op, e))?;
    let page = StorePage {
        operator: Some(&op),
        now: state.clock.now(),
        view: &view,
    };
    Ok(render(StatusCode::OK, &page))
}

async fn revoke(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Path((tenant, store)): Path<(String, String)>,
) -> Result<Response, Response> {
    let row = api::visible_store(&state, &op, &tenant, &store)
        .await
        .map_err(|e| error_page(&op, e))?;
    api::revoke_for(&state, &op, &row.store)
        .await
        .map_err(|e| error_page(&op, e))?;
    Ok(Redirect::to(&store_href(&row.store)).into_response())
}

/// The form of an action button: which action.
#[derive(Debug, Deserialize)]
struct ActionForm {
    kind: String,
}

/// An action button on the store page: ask, then back to the page, which
/// shows the action and refreshes itself until the store answers.
async fn ask_action(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Path((tenant, store)): Path<(String, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, Response> {
    let row = api::visible_store(&state, &op, &tenant, &store)
        .await
        .map_err(|e| error_page(&op, e))?;
    let Ok(Form(form)) = form else {
        return Err(error_page(
            &op,
            AppError::bad_request("the action form was incomplete; press the button again"),
        ));
    };
    api::actions::request_for(&state, &op, &row.store, &form.kind)
        .await
        .map_err(|e| error_page(&op, e))?;
    Ok(Redirect::to(&store_href(&row.store)).into_response())
}

/// A support bundle's download link on the store page.
async fn bundle_download(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Path((tenant, store, id)): Path<(String, String, String)>,
) -> Result<Response, Response> {
    crate::support::download(&state, &op, &tenant, &store, &id)
        .await
        .map_err(|e| error_page(&op, e))
}

/// Stores of one kind on the tenant page: failing, refused or behind.
#[derive(Debug, Clone)]
struct PendingGroup<'a> {
    title: &'static str,
    stores: &'a [PendingStore],
    /// The overview filtered to them (or as near as its filters come).
    more_href: String,
}

impl PendingGroup<'_> {
    fn count(&self) -> u64 {
        self.stores.len() as u64
    }
}

/// `/tenants/{tenant}`.
#[derive(Template)]
#[template(path = "tenant.html")]
struct TenantPage<'a> {
    operator: Option<&'a Operator>,
    now: DateTime<Utc>,
    view: &'a TenantRollout,
    counts: Vec<CountLink>,
    pending: Vec<PendingGroup<'a>>,
}

impl<'a> TenantPage<'a> {
    fn new(op: &'a Operator, view: &'a TenantRollout, now: DateTime<Utc>) -> TenantPage<'a> {
        let overview = |state: Option<SyncState>| {
            let q = ListQuery {
                tenant: Some(view.tenant.clone()),
                state,
                ..ListQuery::default()
            };
            format!("/{}", q.to_query_string())
        };
        let counts = SyncState::ALL
            .into_iter()
            .map(|s| CountLink {
                state: Some(s),
                n: view.counts.get(s),
                on: false,
                href: overview(Some(s)),
            })
            .collect();
        let pending = vec![
            PendingGroup {
                title: "Failing",
                stores: &view.failing,
                more_href: overview(Some(SyncState::Failed)),
            },
            PendingGroup {
                title: "Refused",
                stores: &view.refused,
                more_href: overview(Some(SyncState::Refused)),
            },
            PendingGroup {
                title: "Behind (not yet at the desired revision)",
                stores: &view.behind,
                more_href: overview(None),
            },
        ];
        TenantPage {
            operator: Some(op),
            now,
            view,
            counts,
            pending,
        }
    }
}

async fn tenant_page(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Response, Response> {
    let view = api::tenant_rollout(&state, &op, &tenant)
        .await
        .map_err(|e| error_page(&op, e))?;
    Ok(render(
        StatusCode::OK,
        &TenantPage::new(&op, &view, state.clock.now()),
    ))
}

/// `/tenants/{tenant}/rollouts`.
#[derive(Template)]
#[template(path = "rollouts.html")]
struct RolloutsPage<'a> {
    operator: Option<&'a Operator>,
    tenant: &'a str,
    view: &'a api::RolloutsView,
}

async fn rollouts_page(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Response, Response> {
    // The tenant page's 404 for a tenant the operator does not see.
    api::tenant_rollout(&state, &op, &tenant)
        .await
        .map_err(|e| error_page(&op, e))?;
    let view = api::rollouts_view(&state, &op, Some(&tenant))
        .await
        .map_err(|e| error_page(&op, e))?;
    Ok(render(
        StatusCode::OK,
        &RolloutsPage {
            operator: Some(&op),
            tenant: &tenant,
            view: &view,
        },
    ))
}

// ------------------------------------------------------------ sign-in

/// `/login`.
#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    operator: Option<&'static Operator>,
    problem: Option<String>,
}

async fn login_page() -> Response {
    let page = LoginPage {
        operator: None,
        problem: None,
    };
    render(StatusCode::OK, &page)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AppState>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return (StatusCode::BAD_REQUEST, "expected a form with `token`").into_response();
    };
    match api::operator_for_token(&state, Some(&form.token)).await {
        Ok(_) => {
            let cookie = format!(
                "{OPERATOR_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                form.token.trim()
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(AppError::Client { message, .. }) => {
            // "unknown operator token", "… is revoked", "… expired; …".
            let mut problem = message;
            if let Some(first) = problem.get(..1) {
                problem.replace_range(..1, &first.to_uppercase());
            }
            let page = LoginPage {
                operator: None,
                problem: Some(format!("{problem}. Try again.")),
            };
            render(StatusCode::UNAUTHORIZED, &page)
        }
        Err(e) => e.into_response(),
    }
}

async fn logout() -> Response {
    (
        [(
            header::SET_COOKIE,
            format!("{OPERATOR_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

/// The stylesheet: cached for a day; pages link it with a version
/// ([`stylesheet_href`]), so a new one is fetched at once after an upgrade.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::{
        Explanation, NodeKey, ReportEntry, RevisionProgress, StateCounts, StoreSummary,
        TenantProgress, Timestamp,
    };

    /// Text a node or the repo controls, with every character that means
    /// something in HTML.
    const NASTY: &str = "<script>alert('x')</script>\"&";

    /// What `NASTY` must never appear as, and what it must appear as.
    fn assert_escaped(html: &str) {
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("alert('x')"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"),
            "{html}"
        );
    }

    #[test]
    fn the_root_warning_comes_30_days_ahead_and_says_frozen_once_expired() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        let t = now.timestamp();
        assert_eq!(root_warning(0, t - 10, now), None, "no root, no warning");
        assert_eq!(root_warning(3, t + 31 * 86_400, now), None);
        let soon = root_warning(3, t + 29 * 86_400 + 5, now).expect("a warning");
        assert!(
            soon.contains("version 3 expires on") && soon.contains("(in 29 days)"),
            "{soon}"
        );
        let gone = root_warning(3, t, now).expect("a warning");
        assert!(
            gone.contains("expired on") && gone.contains("show stale"),
            "{gone}"
        );
    }

    fn summary(store: &str) -> StoreSummary {
        StoreSummary {
            store: store.to_owned(),
            tenant: "acme".to_owned(),
            state: SyncState::Drifted,
            desired_revision: Some(2),
            applied_revision: Some(2),
            last_seen: Timestamp::from_unix(1_800_000_000),
            last_outcome: Some(NASTY.to_owned()),
            desired_commit: Some(NASTY.to_owned()),
            desired_commit_url: None,
            release_valid: false,
            release_error: Some(NASTY.to_owned()),
            release_expires_at: None,
            in_repo: true,
            enrolled: true,
            reconciler_version: Some(NASTY.to_owned()),
            root_version: Some(3),
            release_api_versions: vec![NASTY.to_owned()],
            reported_revision: Some(2),
        }
    }

    /// Regression test for the stored XSS one missed `esc()` call made
    /// possible before templates: every page escapes store names and
    /// report texts, whatever they hold.
    #[test]
    fn every_page_escapes_node_and_repo_text() {
        let op = Operator::for_tests(&["acme"]);
        let store = format!("acme/{NASTY}");
        let now = DateTime::from_timestamp(1_800_000_100, 0).unwrap();

        let overview = Overview {
            stores: vec![summary(&store)],
            counts: StateCounts::default(),
            tenants: [(
                "acme".to_owned(),
                TenantProgress {
                    stores: 1,
                    at_desired_revision: 0,
                },
            )]
            .into(),
            total: 1,
            page: Some(1),
            per_page: Some(100),
            pages: 1,
        };
        let q = ListQuery {
            search: Some(NASTY.to_owned()),
            ..ListQuery::default()
        }
        .paged();
        let page = OverviewPage::new(&op, &q, &overview, now);
        let html = page.render().unwrap();
        assert_escaped(&html);
        assert!(html.contains("value=\"&lt;script&gt;"), "the search box");

        let body = json!({
            "reconciler_version": NASTY,
            "refusal": {"code": NASTY, "message": NASTY},
            "errors": [NASTY],
            "warnings": [NASTY],
            "changes": [{"kind": "item", "id": NASTY, "change": "changed",
                         "fields": [{"field": "name", "before": NASTY, "after": "x"}]},
                        {"kind": NASTY, "id": NASTY}],
            "drift": [{"kind": "item", "id": NASTY, "change": "changed", "fields": [],
                       "diff": format!("-{NASTY}\n+{NASTY}\n")}],
            "overridden": [{"kind": "user", "id": NASTY, "change": "added", "value": {}}],
            "held_back": [{"kind": NASTY, "id": NASTY, "reason": NASTY}],
            "unavailable": [{"variation": NASTY, "set_by": NASTY, "device": NASTY,
                             "set_at": NASTY, "until": NASTY}],
        });
        let detail = StoreDetail {
            summary: summary(&store),
            explanation: Explanation {
                meaning: "m",
                action: "a",
            },
            recipient: Some(NASTY.to_owned()),
            nodes: vec![NodeKey {
                key_id: NASTY.to_owned(),
                public_key: NASTY.to_owned(),
                enrolled_at: Timestamp::from_unix(1_800_000_000),
                revoked_at: None,
                active: true,
            }],
            reports: vec![ReportEntry {
                id: 1,
                received_at: Timestamp::from_unix(1_800_000_000),
                key_id: NASTY.to_owned(),
                outcome: NASTY.to_owned(),
                desired_revision: Some(2),
                applied_revision: Some(2),
                commit_url: Some(format!("https://git.example.com/{NASTY}")),
                commit: Some(NASTY.to_owned()),
                report: body,
            }],
            support_bundles: vec![crate::support::Bundle {
                id: NASTY.to_owned(),
                bytes: 2048,
                key_id: NASTY.to_owned(),
                received_at: Timestamp::from_unix(1_800_000_000),
                action_id: Some(7),
            }],
            actions: vec![api::actions::ActionView::new(
                crate::store::ActionRow {
                    id: 7,
                    store: NASTY.to_owned(),
                    kind: NASTY.to_owned(),
                    requested_by: NASTY.to_owned(),
                    requested_at: 1_800_000_000,
                    delivered_at: None,
                    done_at: Some(1_800_000_001),
                    result: Some("failed".to_owned()),
                    detail: Some(NASTY.to_owned()),
                    report_id: None,
                    bundle_id: None,
                },
                1_800_000_002,
            )],
        };
        let html = StorePage {
            operator: Some(&op),
            now,
            view: &detail,
        }
        .render()
        .unwrap();
        assert_escaped(&html);
        assert!(
            html.contains("<span class=\"del\">-&lt;script&gt;"),
            "{html}"
        );
        assert!(html.contains("class=\"badge o-unknown\""), "{html}");
        assert!(
            html.contains("id=\"unavailable\""),
            "the store-owned availability: {html}"
        );
        assert!(
            html.contains("id=\"held-back\""),
            "the held-back section: {html}"
        );
        assert!(
            !html.contains("=\"https://git.example.com/<"),
            "no raw text in an attribute: {html}"
        );

        let pending = crate::api::PendingStore {
            store: store.clone(),
            state: SyncState::Failed,
            desired_revision: Some(2),
            applied_revision: Some(1),
            last_seen: None,
        };
        let rollout = TenantRollout {
            tenant: NASTY.to_owned(),
            stores: 1,
            applied: 0,
            counts: StateCounts::default(),
            revisions: vec![RevisionProgress {
                desired_revision: Some(2),
                stores: 1,
                applied: 0,
            }],
            behind: vec![pending.clone()],
            failing: vec![pending.clone()],
            refused: vec![pending],
        };
        let html = TenantPage::new(&op, &rollout, now).render().unwrap();
        assert_escaped(&html);

        let html = ErrorPage {
            operator: Some(&op),
            title: "Not found",
            message: NASTY.to_owned(),
        }
        .render()
        .unwrap();
        assert_escaped(&html);
    }

    #[test]
    fn escaping() {
        let esc = |s: &str| {
            let mut out = String::new();
            askama::filters::Escaper::write_escaped_str(&HtmlEntities, &mut out, s)
                .expect("a String takes every write");
            out
        };
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(esc("plain · text →"), "plain · text →");
        assert_eq!(esc("é<ü>"), "é&lt;ü&gt;");
        assert_eq!(esc(""), "");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn percents() {
        assert_eq!(percent(10, 250), 4);
        assert_eq!(percent(3, 3), 100);
        assert_eq!(percent(0, 0), 0, "nothing of nothing");
    }

    #[test]
    fn labels_and_outcome_classes() {
        assert_eq!(label("drift_corrected"), "drift corrected");
        assert_eq!(outcome_class("no_change"), "no_change");
        assert_eq!(outcome_class("<x>"), "unknown", "only a known class");
    }

    #[test]
    fn short_commits_and_durations() {
        assert_eq!(
            short_commit("3f2c000000000000000000000000000000000000"),
            "3f2c000000"
        );
        assert_eq!(short_commit("abc"), "abc");
        assert_eq!(duration(&Some(850)), "850 ms");
        assert_eq!(duration(&Some(1530)), "1.5 s");
        assert_eq!(duration(&None), "—");
    }

    #[test]
    fn links() {
        assert_eq!(store_href("acme/soho"), "/stores/acme/soho");
        assert_eq!(store_href("acme/a b"), "/stores/acme/a%20b");
        assert_eq!(store_href("acme/\"><x"), "/stores/acme/%22%3E%3Cx");
        assert_eq!(tenant_href("acme"), "/tenants/acme");
        let q = ListQuery {
            state: Some(SyncState::Failed),
            page: Some(Page {
                number: 3,
                size: DEFAULT_PAGE_SIZE,
            }),
            ..ListQuery::default()
        };
        assert_eq!(
            overview_href(&q, |q| q.tenant = Some("acme".into())),
            "/?tenant=acme&state=failed",
            "back on page 1"
        );
    }

    #[test]
    fn stylesheet_address_follows_its_content() {
        assert!(stylesheet_href().starts_with("/assets/dashboard.css?v="));
        assert_eq!(stylesheet_href().len(), STYLESHEET_PATH.len() + 3 + 16);
        assert_ne!(fnv1a(b"a{}"), fnv1a(b"b{}"));
    }

    #[test]
    fn capitals() {
        assert_eq!(capitalized("no such store"), "No such store");
        assert_eq!(capitalized(""), "");
    }
}
