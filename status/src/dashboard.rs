//! The dashboard: server-rendered HTML over the same functions as the JSON
//! API ([`api::overview`], [`api::store_detail`], [`api::tenant_rollout`],
//! [`api::revoke_for`]), so a page can show nothing the API would not and
//! tenant scoping is enforced in one place. Operators sign in with their
//! tenant-scoped token, kept in an `HttpOnly`, `SameSite=Strict` cookie;
//! another tenant's store or tenant page answers 404 like the API
//! (THREATS row 16).
//!
//! Pages: `/` (counts, rollout per tenant, the filterable, sortable, paged
//! store table), `/stores/{tenant}/{store}` (summary, node keys, revoke,
//! report timeline), `/tenants/{tenant}` (rollout progress). They work
//! without JavaScript; one inline `onchange` submits the filter form
//! sooner where scripts run.
//!
//! Every value is HTML-escaped: store names, report texts and diffs come
//! from nodes and the repo. This module renders; it must not query the
//! store or decide who sees what.

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use schemas::diff::{Domain, EntityChange, EntityKind};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{self, AppError, AppState, OPERATOR_COOKIE, Operator, SignedIn};
use crate::listing::{self, ListQuery, Page, RawQuery, SortKey};
use crate::state::StoreState;

/// Reports on the store page (the API gives [`api::STORE_REPORTS`]).
pub const PAGE_REPORTS: i64 = 50;

/// Entity changes listed per domain and report before "and N more".
const CHANGES_SHOWN: usize = 25;

/// Domains with more changes than this start folded on the store page.
const CHANGES_OPEN: usize = 8;

/// Stores listed per group on the tenant page before a link to the overview.
const PENDING_SHOWN: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/stores/{tenant}/{store}", get(store_page))
        .route("/stores/{tenant}/{store}/revoke", post(revoke))
        .route("/tenants/{tenant}", get(tenant_page))
}

// ------------------------------------------------------------ escaping and small parts

/// `&`, `<`, `>`, `"` and `'` escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

/// `10000` → `10,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The link to a store's page; each path segment percent-encoded.
fn store_href(store: &str) -> String {
    let (t, s) = store.split_once('/').unwrap_or((store, ""));
    format!(
        "/stores/{}/{}",
        listing::encode_component(t),
        listing::encode_component(s)
    )
}

fn tenant_href(tenant: &str) -> String {
    format!("/tenants/{}", listing::encode_component(tenant))
}

/// How long ago (or until) `t` is, for people: `just now`, `42 s ago`,
/// `3 min ago`, `5 h ago`, `2 d ago`, `in 3 d`.
pub fn relative(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
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

/// An RFC 3339 time of the API as relative time, the exact time in a title.
fn time_html(now: DateTime<Utc>, v: &Value, never: &str) -> String {
    let Some(s) = v.as_str() else {
        return format!("<span class=\"muted\">{}</span>", esc(never));
    };
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => format!(
            "<time datetime=\"{}\" title=\"{}\">{}</time>",
            esc(s),
            esc(&t
                .with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()),
            esc(&relative(now, t.with_timezone(&Utc)))
        ),
        Err(_) => esc(s),
    }
}

fn label(s: &str) -> String {
    esc(&s.replace('_', " "))
}

/// A coloured state badge; the class is only ever a known state.
fn state_badge(state: &str) -> String {
    let class = StoreState::ALL
        .iter()
        .find(|s| s.as_str() == state)
        .map(|s| s.as_str())
        .unwrap_or("unknown");
    format!("<span class=\"badge s-{class}\">{}</span>", label(state))
}

fn outcome_badge(outcome: &str) -> String {
    let class = match outcome {
        "converged" | "no_change" | "drift_corrected" | "failed" | "refused" => outcome,
        _ => "unknown",
    };
    format!("<span class=\"badge o-{class}\">{}</span>", label(outcome))
}

/// A commit id: a link to the Git host when the API gave a URL, else the
/// short id with the full one in a title.
fn commit_html(commit: &Value, url: &Value) -> String {
    let Some(c) = commit.as_str() else {
        return "<span class=\"muted\">—</span>".to_owned();
    };
    let short: String = c.chars().take(10).collect();
    match url.as_str() {
        Some(u) => format!(
            "<a class=\"commit\" href=\"{}\" title=\"{}\"><code>{}</code></a>",
            esc(u),
            esc(c),
            esc(&short)
        ),
        None => format!(
            "<code class=\"commit\" title=\"{}\">{}</code>",
            esc(c),
            esc(&short)
        ),
    }
}

/// A unified diff, each line coloured by its first character.
fn diff_html(diff: &str) -> String {
    let mut out = String::from("<pre class=\"diff\">");
    for line in diff.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") {
            "file"
        } else if line.starts_with("@@") {
            "hunk"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else {
            "ctx"
        };
        // Block spans, one per line: no newline between them (it would
        // show as an empty line inside `<pre>`).
        out.push_str(&format!("<span class=\"{class}\">{}</span>", esc(line)));
    }
    out.push_str("</pre>");
    out
}

fn progress_html(done: u64, of: u64) -> String {
    let pct = (done * 100).checked_div(of).unwrap_or(0);
    format!(
        "<div class=\"progress\" role=\"progressbar\" aria-valuenow=\"{pct}\" aria-valuemin=\"0\" \
         aria-valuemax=\"100\"><div style=\"width:{pct}%\"></div></div>\
         <span class=\"progress-label\">{} of {} ({pct}%)</span>",
        thousands(done),
        thousands(of)
    )
}

fn duration_html(ms: &Value) -> String {
    match ms.as_u64() {
        Some(ms) if ms >= 1000 => format!("{}.{} s", ms / 1000, (ms % 1000) / 100),
        Some(ms) => format!("{ms} ms"),
        None => "—".to_owned(),
    }
}

// ------------------------------------------------------------ the frame

const CSS: &str = r#"
:root{--fg:#1f2328;--muted:#59636e;--bg:#f6f8fa;--card:#fff;--line:#d1d9e0;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
header.top{background:#1f2328;color:#fff;padding:.55rem 1rem;display:flex;align-items:center;gap:1rem}
header.top a{color:#fff;text-decoration:none;font-weight:600}
header.top a{white-space:nowrap}
header.top .who{margin-left:auto;color:#d1d9e0;font-size:.85rem;min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
header.top form{flex:none}
header.top button{background:transparent;color:#fff;border:1px solid #59636e;border-radius:6px;padding:.2rem .6rem;cursor:pointer}
main{max-width:1240px;margin:0 auto;padding:1rem}
h1{font-size:1.45rem;margin:.2rem 0 .8rem;display:flex;align-items:center;gap:.6rem;flex-wrap:wrap;word-break:break-all}
h2{font-size:1.1rem;margin:1.4rem 0 .6rem}
.muted{color:var(--muted)}
.crumbs{font-size:.9rem;margin:0 0 .3rem;color:var(--muted)}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.8rem 1rem}
.counts{display:grid;grid-template-columns:repeat(auto-fill,minmax(6.9rem,1fr));gap:.5rem;margin:0 0 1rem}
.count{display:block;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.45rem .7rem;text-decoration:none;color:inherit}
.count .n{display:block;font-size:1.35rem;font-weight:650;font-variant-numeric:tabular-nums}
.count.on{outline:2px solid var(--accent);outline-offset:-1px}
.count.zero{opacity:.55}
.badge{display:inline-block;padding:.08em .55em;border-radius:999px;font-size:.78rem;font-weight:600;white-space:nowrap;border:1px solid transparent;vertical-align:middle}
.s-synced,.o-converged{background:#dafbe1;color:#116329;border-color:#aceebb}
.o-no_change{background:#eef6ee;color:#2f6f3e;border-color:#c9e6cf}
.s-out_of_sync{background:#ddf4ff;color:#0550ae;border-color:#b6e3ff}
.s-drifted,.o-drift_corrected{background:#fff8c5;color:#7d4e00;border-color:#f5e0a0}
.s-overridden{background:#fbefff;color:#6e40c9;border-color:#ecd8ff}
.s-failed,.o-failed{background:#ffebe9;color:#a40e26;border-color:#ffcecb}
.s-refused,.o-refused{background:#ffe4d6;color:#9b2c00;border-color:#ffc9a9}
.s-offline{background:#eaeef2;color:#424a53;border-color:#d1d9e0}
.s-stale{background:#fff1e5;color:#953800;border-color:#ffd8b5}
.s-unenrolled,.s-unknown,.o-unknown{background:#f6f8fa;color:#59636e;border-color:#d1d9e0}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:0 0 .7rem}
form.filters label{display:flex;flex-direction:column;font-size:.78rem;color:var(--muted);gap:.15rem}
input,select,button{font:inherit}
form.filters input,form.filters select{padding:.3rem .45rem;border:1px solid var(--line);border-radius:6px;background:#fff;min-width:7rem}
button.primary{background:#1f883d;color:#fff;border:1px solid #1a7f37;border-radius:6px;padding:.32rem .9rem;cursor:pointer}
button.danger{background:#cf222e;color:#fff;border:1px solid #a40e26;border-radius:6px;padding:.32rem .9rem;cursor:pointer}
.tablewrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%}
th,td{padding:.42rem .65rem;border-bottom:1px solid #eaeef2;text-align:left;white-space:nowrap;vertical-align:top}
th{font-size:.8rem;color:var(--muted);font-weight:600;background:#f6f8fa}
th a{color:inherit;text-decoration:none}
th a:hover{text-decoration:underline}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr:last-child td{border-bottom:0}
code{font:.85em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.pager{display:flex;flex-wrap:wrap;gap:.8rem;align-items:center;justify-content:space-between;margin:.6rem 0}
.pager a,.pager span.off{padding:.25rem .7rem;border:1px solid var(--line);border-radius:6px;background:#fff;text-decoration:none}
.pager span.off{color:#aab2bb}
.progress{display:inline-block;width:12rem;max-width:60vw;height:.7rem;background:#eaeef2;border-radius:999px;overflow:hidden;vertical-align:middle}
.progress>div{height:100%;background:#1f883d}
.progress-label{margin-left:.5rem;font-variant-numeric:tabular-nums}
.big .progress{width:100%;max-width:none;height:1rem;display:block;margin:.3rem 0}
.big .progress-label{margin:0}
.explain{border-left:4px solid var(--line)}
.explain p{margin:.2rem 0}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:.6rem 1.2rem;margin:1rem 0 0}
.facts div{min-width:0}
.facts dt{font-size:.78rem;color:var(--muted)}
.facts dd{margin:0;overflow-wrap:anywhere}
.bad{color:#a40e26}
.good{color:#116329}
ol.timeline{list-style:none;padding:0;margin:0}
ol.timeline>li{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:0 0 .7rem;padding:.6rem .9rem}
.rhead{display:flex;flex-wrap:wrap;gap:.3rem .9rem;align-items:center}
.rhead .when{font-weight:600}
.rbody h4{margin:.7rem 0 .25rem;font-size:.85rem;color:var(--muted);font-weight:600}
details.domain summary{cursor:pointer}
details.domain summary h4{display:inline-block}
.rbody ul{margin:.1rem 0;padding-left:1.2rem}
.rbody li{overflow-wrap:anywhere}
.refusal,.errors{background:#fff5f5;border:1px solid #ffcecb;border-radius:6px;padding:.4rem .6rem;margin:.5rem 0 0}
.warnings{background:#fffbeb;border:1px solid #f5e0a0;border-radius:6px;padding:.4rem .6rem;margin:.5rem 0 0}
pre.diff{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:.4rem 0;overflow-x:auto;margin:.2rem 0 .5rem;font:.82rem/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre.diff span{display:block;padding:0 .7rem;white-space:pre}
pre.diff .add{background:#dafbe1;color:#116329}
pre.diff .del{background:#ffebe9;color:#a40e26}
pre.diff .hunk{color:#8250df;background:#f5f0ff}
pre.diff .file{color:#59636e;font-weight:600}
details.revoke{margin-top:.7rem}
details.revoke summary{cursor:pointer;color:#cf222e;font-weight:600}
details.revoke p{margin:.4rem 0}
.login{max-width:26rem;margin:12vh auto;padding:1.4rem}
.login input{width:100%;padding:.45rem;border:1px solid var(--line);border-radius:6px;margin:.3rem 0 .8rem}
@media (max-width:700px){
 main{padding:.6rem}
 table.stores thead{display:none}
 table.stores,table.stores tbody,table.stores tr,table.stores td{display:block;width:100%}
 table.stores tr{border-bottom:1px solid var(--line);padding:.45rem .3rem}
 table.stores td{display:flex;justify-content:space-between;gap:1rem;border:0;padding:.12rem .4rem;white-space:normal;text-align:right}
 table.stores td::before{content:attr(data-label);color:var(--muted);font-size:.8rem;text-align:left}
 table.stores td.store{font-weight:600;font-size:1.02rem}
 table.stores td.store::before{content:none}
 .facts{grid-template-columns:1fr 1fr}
 .progress{width:35vw}
 h1{font-size:1.25rem}
 form.filters label{flex:1 1 45%}
 form.filters input,form.filters select{min-width:0;width:100%}
 .counts{grid-template-columns:repeat(3,1fr);gap:.35rem}
 .count{padding:.3rem .5rem}
 .count .n{font-size:1.1rem}
}
"#;

fn frame(title: &str, op: Option<&Operator>, body: &str) -> String {
    let who = match op {
        Some(op) => format!(
            "<span class=\"who\">tenants: {}</span>\
             <form method=\"post\" action=\"/logout\"><button>Sign out</button></form>",
            esc(&op.tenants().join(", "))
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · fleet-status</title><style>{CSS}</style></head><body>\
         <header class=\"top\"><a href=\"/\">Fleet status</a>{who}</header>\
         <main>{body}</main></body></html>",
        esc(title)
    )
}

fn page(title: &str, op: &Operator, body: &str) -> Response {
    Html(frame(title, Some(op), body)).into_response()
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
            let body = format!(
                "<h1>{}</h1><p>{}.</p><p><a href=\"/\">Back to the fleet</a></p>",
                esc(title),
                esc(&capitalized(&message))
            );
            (status, Html(frame(title, Some(op), &body))).into_response()
        }
        e => e.into_response(),
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

// ------------------------------------------------------------ sign-in

fn login_html(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p class=\"bad\">{}</p>", esc(p)))
        .unwrap_or_default();
    frame(
        "Sign in",
        None,
        &format!(
            "<div class=\"card login\"><h1>Sign in</h1>{problem}\
             <form method=\"post\" action=\"/login\">\
             <label for=\"token\">Operator token</label>\
             <input id=\"token\" type=\"password\" name=\"token\" autocomplete=\"off\" \
             placeholder=\"fso_…\" required>\
             <button class=\"primary\">Sign in</button></form>\
             <p class=\"muted\">Ask an administrator for a token \
             (<code>fleet-status operator create --tenant T</code>).</p></div>"
        ),
    )
}

async fn login_page() -> Html<String> {
    Html(login_html(None))
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
        Err(AppError::Client { .. }) => (
            StatusCode::UNAUTHORIZED,
            Html(login_html(Some("Unknown operator token. Try again."))),
        )
            .into_response(),
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

// ------------------------------------------------------------ overview

/// `q` with `change` applied, back on page 1, as a link to `/`.
fn link(q: &ListQuery, change: impl FnOnce(&mut ListQuery)) -> String {
    let mut q = q.clone();
    change(&mut q);
    if let Some(p) = &mut q.page {
        p.number = 1;
    }
    esc(&format!("/{}", q.to_query_string()))
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

fn sort_header(q: &ListQuery, key: SortKey, class: &str) -> String {
    let on = q.sort == key;
    let arrow = match (on, q.desc) {
        (false, _) => "",
        (true, false) => " ▲",
        (true, true) => " ▼",
    };
    let href = link(q, |q| {
        q.desc = on && !q.desc;
        q.sort = key;
    });
    let aria = match (on, q.desc) {
        (false, _) => "none",
        (true, false) => "ascending",
        (true, true) => "descending",
    };
    format!(
        "<th class=\"{class}\" aria-sort=\"{aria}\"><a href=\"{href}\">{}{arrow}</a></th>",
        column_title(key)
    )
}

fn option(value: &str, shown: &str, selected: bool) -> String {
    format!(
        "<option value=\"{}\"{}>{}</option>",
        esc(value),
        if selected { " selected" } else { "" },
        esc(shown)
    )
}

async fn overview_page(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Query(raw): Query<RawQuery>,
) -> Response {
    let q = match ListQuery::parse(&raw) {
        Ok(q) => q.paged(),
        Err(e) => {
            return error_page(
                &op,
                AppError::client(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
            );
        }
    };
    let view = match api::overview(&state, &op, &q).await {
        Ok(v) => v,
        Err(e) => return error_page(&op, e),
    };
    let now = Utc::now();
    let total = view["total"].as_u64().unwrap_or(0);
    let pages = view["pages"].as_u64().unwrap_or(1);
    let Page { number, size } = q.page.unwrap_or(Page {
        number: 1,
        size: listing::DEFAULT_PAGE_SIZE,
    });
    let mut body = String::from("<h1>Fleet</h1>");

    // Counts per state, each a filter (a second click clears it).
    let all: u64 = view["counts"]
        .as_object()
        .map(|c| c.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    body.push_str("<nav class=\"counts\" aria-label=\"Stores per state\">");
    body.push_str(&format!(
        "<a class=\"count{}\" href=\"{}\"><span class=\"n\">{}</span>all stores</a>",
        if q.state.is_none() { " on" } else { "" },
        link(&q, |q| q.state = None),
        thousands(all)
    ));
    for s in StoreState::ALL {
        let n = view["counts"][s.as_str()].as_u64().unwrap_or(0);
        let on = q.state == Some(s);
        body.push_str(&format!(
            "<a class=\"count{}{}\" href=\"{}\" data-state=\"{}\"><span class=\"n\">{}</span>{}</a>",
            if on { " on" } else { "" },
            if n == 0 { " zero" } else { "" },
            link(&q, |q| q.state = if on { None } else { Some(s) }),
            s.as_str(),
            thousands(n),
            state_badge(s.as_str())
        ));
    }
    body.push_str("</nav>");

    // Rollout per tenant.
    if let Some(tenants) = view["tenants"].as_object()
        && !tenants.is_empty()
    {
        body.push_str(
            "<div class=\"tablewrap\"><table class=\"rollout\"><thead><tr><th>Tenant</th>\
             <th>Stores at their desired revision</th></tr></thead><tbody>",
        );
        for (t, r) in tenants {
            body.push_str(&format!(
                "<tr><td><a href=\"{}\">{}</a></td><td>{}</td></tr>",
                esc(&tenant_href(t)),
                esc(t),
                progress_html(
                    r["at_desired_revision"].as_u64().unwrap_or(0),
                    r["stores"].as_u64().unwrap_or(0)
                )
            ));
        }
        body.push_str("</tbody></table></div>");
    }

    // Filters: plain GET form; the selects submit on change where scripts run.
    body.push_str("<h2>Stores</h2><form class=\"filters\" method=\"get\" action=\"/\">");
    body.push_str("<label>Tenant<select name=\"tenant\" onchange=\"this.form.submit()\">");
    body.push_str(&option("", "all tenants", q.tenant.is_none()));
    for t in op.tenants() {
        body.push_str(&option(t, t, q.tenant.as_deref() == Some(t)));
    }
    body.push_str(
        "</select></label><label>State<select name=\"state\" onchange=\"this.form.submit()\">",
    );
    body.push_str(&option("", "all states", q.state.is_none()));
    for s in StoreState::ALL {
        body.push_str(&option(
            s.as_str(),
            &s.as_str().replace('_', " "),
            q.state == Some(s),
        ));
    }
    body.push_str(&format!(
        "</select></label><label>Store id contains<input type=\"search\" name=\"q\" value=\"{}\" \
         placeholder=\"e.g. soho\"></label>",
        esc(q.search.as_deref().unwrap_or(""))
    ));
    body.push_str("<label>Sort by<select name=\"sort\">");
    for k in SortKey::ALL {
        body.push_str(&option(k.as_str(), column_title(k), q.sort == k));
    }
    body.push_str("</select></label><label>Order<select name=\"dir\">");
    body.push_str(&option("asc", "ascending", !q.desc));
    body.push_str(&option("desc", "descending", q.desc));
    body.push_str(
        "</select></label><button class=\"primary\">Apply</button> <a href=\"/\">Reset</a></form>",
    );

    // The table: one page.
    let stores = view["stores"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if stores.is_empty() {
        body.push_str("<div class=\"card\"><p class=\"muted\">No store matches.</p></div>");
    } else {
        body.push_str("<div class=\"tablewrap\"><table class=\"stores\"><thead><tr>");
        for (k, class) in [
            (SortKey::Store, ""),
            (SortKey::State, ""),
            (SortKey::Desired, "num"),
            (SortKey::Applied, "num"),
            (SortKey::LastSeen, ""),
            (SortKey::Reconciler, ""),
        ] {
            body.push_str(&sort_header(&q, k, class));
        }
        body.push_str("</tr></thead><tbody>");
        for s in stores {
            let id = s["store"].as_str().unwrap_or("");
            body.push_str(&format!(
                "<tr><td class=\"store\" data-label=\"Store\"><a href=\"{}\">{}</a></td>\
                 <td data-label=\"State\">{}</td><td class=\"num\" data-label=\"Desired\">{}</td>\
                 <td class=\"num\" data-label=\"Applied\">{}</td><td data-label=\"Last seen\">{}</td>\
                 <td data-label=\"Reconciler\">{}</td></tr>",
                esc(&store_href(id)),
                esc(id),
                state_badge(s["state"].as_str().unwrap_or("")),
                text(&s["desired_revision"]),
                text(&s["applied_revision"]),
                time_html(now, &s["last_seen"], "never"),
                text(&s["reconciler_version"]),
            ));
        }
        body.push_str("</tbody></table></div>");
    }
    let first = if total == 0 {
        0
    } else {
        (number - 1) * size + 1
    };
    let last = ((number - 1) * size + stores.len() as u64).min(total);
    let step = |to: u64, text: &str| {
        let mut next = q.clone();
        next.page = Some(Page { number: to, size });
        format!(
            "<a href=\"{}\" rel=\"{}\">{text}</a>",
            esc(&format!("/{}", next.to_query_string())),
            if to < number { "prev" } else { "next" }
        )
    };
    body.push_str("<nav class=\"pager\" aria-label=\"Pages\">");
    body.push_str(&if number > 1 {
        step(number - 1, "‹ Previous")
    } else {
        "<span class=\"off\">‹ Previous</span>".to_owned()
    });
    body.push_str(&format!(
        "<span class=\"muted\">{}–{} of <b class=\"total\">{}</b> stores · page {} of {}</span>",
        thousands(first),
        thousands(last),
        thousands(total),
        thousands(number),
        thousands(pages)
    ));
    body.push_str(&if number < pages {
        step(number + 1, "Next ›")
    } else {
        "<span class=\"off\">Next ›</span>".to_owned()
    });
    body.push_str("</nav>");
    page("Fleet", &op, &body)
}

// ------------------------------------------------------------ store page

/// The domain of a reported entity kind (`item` → menu).
fn domain_of(kind: &str) -> Option<Domain> {
    EntityKind::from_code(kind).map(EntityKind::domain)
}

/// One entity change in words: `item classic-burger: price: 1099 → 1199`.
fn change_text(c: &Value) -> String {
    match serde_json::from_value::<EntityChange>(c.clone()) {
        Ok(ec) => {
            let what = match &ec.change {
                schemas::diff::Change::Added { .. } => "added".to_owned(),
                schemas::diff::Change::Removed { .. } => "removed".to_owned(),
                schemas::diff::Change::Changed { fields } => fields
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            format!(
                "{} <b>{}</b>: {}",
                esc(ec.kind.as_str()),
                esc(&ec.id),
                esc(&what)
            )
        }
        Err(_) => format!("{} <b>{}</b>", text(&c["kind"]), text(&c["id"])),
    }
}

fn report_html(now: DateTime<Utc>, r: &Value) -> String {
    let rep = &r["report"];
    let mut out = String::from("<li class=\"report\"><div class=\"rhead\">");
    out.push_str(&outcome_badge(r["outcome"].as_str().unwrap_or("")));
    out.push_str(&format!(
        "<span class=\"when\">{}</span><span>desired <b>{}</b> · applied <b>{}</b></span>\
         <span class=\"muted\">took {}</span><span>commit {}</span>\
         <span class=\"muted\">reconciler {} · key <code>{}</code></span></div><div class=\"rbody\">",
        time_html(now, &r["received_at"], "—"),
        text(&r["desired_revision"]),
        text(&r["applied_revision"]),
        duration_html(&rep["duration_ms"]),
        commit_html(&r["commit"], &r["commit_url"]),
        text(&rep["reconciler_version"]),
        text(&r["key_id"]),
    ));
    if let Some(refusal) = rep["refusal"].as_object() {
        out.push_str(&format!(
            "<div class=\"refusal\"><b>Refused</b> (<code>{}</code>): {}</div>",
            text(refusal.get("code").unwrap_or(&Value::Null)),
            text(refusal.get("message").unwrap_or(&Value::Null))
        ));
    }
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| format!("<li>{}</li>", text(e)))
            .collect()
    };
    let errors = list(&rep["errors"]);
    if !errors.is_empty() {
        out.push_str(&format!(
            "<div class=\"errors\"><b>Errors</b><ul>{}</ul></div>",
            errors.concat()
        ));
    }
    let warnings = list(&rep["warnings"]);
    if !warnings.is_empty() {
        out.push_str(&format!(
            "<div class=\"warnings\"><b>Warnings</b><ul>{}</ul></div>",
            warnings.concat()
        ));
    }
    // Changes per domain, each linked to the commit the release came from.
    let changes = rep["changes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut other: Vec<&Value> = Vec::new();
    for d in Domain::ALL {
        let of: Vec<&Value> = changes
            .iter()
            .filter(|c| c["kind"].as_str().and_then(domain_of) == Some(d))
            .collect();
        if of.is_empty() {
            continue;
        }
        // Long lists (a first converge writes everything) start folded.
        out.push_str(&format!(
            "<details class=\"domain\"{}><summary><h4>{} · {} change{} from {}</h4></summary><ul>",
            if of.len() <= CHANGES_OPEN {
                " open"
            } else {
                ""
            },
            d.as_str(),
            of.len(),
            if of.len() == 1 { "" } else { "s" },
            commit_html(&r["commit"], &r["commit_url"])
        ));
        for c in of.iter().take(CHANGES_SHOWN) {
            out.push_str(&format!("<li>{}</li>", change_text(c)));
        }
        if of.len() > CHANGES_SHOWN {
            out.push_str(&format!(
                "<li class=\"muted\">and {} more (all in the JSON API)</li>",
                of.len() - CHANGES_SHOWN
            ));
        }
        out.push_str("</ul></details>");
    }
    other.extend(
        changes
            .iter()
            .filter(|c| c["kind"].as_str().and_then(domain_of).is_none()),
    );
    if !other.is_empty() {
        out.push_str("<h4>other changes</h4><ul>");
        for c in other.iter().take(CHANGES_SHOWN) {
            out.push_str(&format!("<li>{}</li>", change_text(c)));
        }
        out.push_str("</ul>");
    }
    let drift = rep["drift"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if !drift.is_empty() {
        out.push_str(&format!(
            "<h4>drift corrected · {} entit{} (store → repo)</h4>",
            drift.len(),
            if drift.len() == 1 { "y" } else { "ies" }
        ));
        for d in drift.iter().take(CHANGES_SHOWN) {
            out.push_str(&format!(
                "<div class=\"drift\">{} <b>{}</b>{}</div>",
                text(&d["kind"]),
                text(&d["id"]),
                diff_html(d["diff"].as_str().unwrap_or(""))
            ));
        }
    }
    let overridden = rep["overridden"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if !overridden.is_empty() {
        out.push_str("<h4>left alone under a local override</h4><ul>");
        for c in overridden.iter().take(CHANGES_SHOWN) {
            out.push_str(&format!("<li>{}</li>", change_text(c)));
        }
        out.push_str("</ul>");
    }
    out.push_str("</div></li>");
    out
}

async fn store_page(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Path((tenant, store)): Path<(String, String)>,
) -> Response {
    let v = match api::store_detail(&state, &op, &tenant, &store, PAGE_REPORTS).await {
        Ok(v) => v,
        Err(e) => return error_page(&op, e),
    };
    let now = Utc::now();
    let id = v["store"].as_str().unwrap_or("");
    let st = v["state"].as_str().unwrap_or("");
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/\">Fleet</a> › <a href=\"{}\">{}</a></p>\
         <h1>{} {}</h1>",
        esc(&tenant_href(&tenant)),
        esc(&tenant),
        esc(id),
        state_badge(st)
    );
    let release = if v["release_valid"] == true {
        "<span class=\"good\">verifies</span>".to_owned()
    } else if v["desired_revision"].is_null() && v["release_error"].is_null() {
        "<span class=\"muted\">no release read yet</span>".to_owned()
    } else {
        format!(
            "<span class=\"bad\">does not verify: {}</span>",
            text(&v["release_error"])
        )
    };
    body.push_str(&format!(
        "<section class=\"card explain s-{}\"><p><b>{}</b></p><p>{}</p>\
         <dl class=\"facts\">\
         <div><dt>Desired revision</dt><dd class=\"desired\">{} <span class=\"muted\">at</span> {}</dd></div>\
         <div><dt>Applied revision</dt><dd class=\"applied\">{}</dd></div>\
         <div><dt>Release in the repo</dt><dd>{}</dd></div>\
         <div><dt>Release expires</dt><dd>{}</dd></div>\
         <div><dt>Last seen</dt><dd>{}</dd></div>\
         <div><dt>Last outcome</dt><dd>{}</dd></div>\
         <div><dt>Reconciler version</dt><dd>{}</dd></div>\
         </dl></section>",
        esc(st),
        text(&v["explanation"]["meaning"]),
        text(&v["explanation"]["action"]),
        text(&v["desired_revision"]),
        commit_html(&v["desired_commit"], &v["desired_commit_url"]),
        text(&v["applied_revision"]),
        release,
        time_html(now, &v["release_expires_at"], "—"),
        time_html(now, &v["last_seen"], "never"),
        v["last_outcome"]
            .as_str()
            .map(outcome_badge)
            .unwrap_or_else(|| "<span class=\"muted\">—</span>".to_owned()),
        text(&v["reconciler_version"]),
    ));

    // Node keys and revoke.
    body.push_str("<h2>Node keys</h2>");
    let nodes = v["nodes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if nodes.is_empty() {
        body.push_str("<div class=\"card\"><p class=\"muted\">No node key was ever enrolled for this store.</p></div>");
    } else {
        body.push_str(
            "<div class=\"tablewrap\"><table class=\"stores nodes\"><thead><tr><th>Key id</th><th>Status</th>\
             <th>Enrolled</th><th>Revoked</th></tr></thead><tbody>",
        );
        for n in nodes {
            body.push_str(&format!(
                "<tr><td class=\"store\"><code>{}</code></td><td data-label=\"Status\">{}</td>\
                 <td data-label=\"Enrolled\">{}</td><td data-label=\"Revoked\">{}</td></tr>",
                text(&n["key_id"]),
                if n["active"] == true {
                    "<span class=\"badge s-synced\">active</span>"
                } else {
                    "<span class=\"badge s-offline\">revoked</span>"
                },
                time_html(now, &n["enrolled_at"], "—"),
                time_html(now, &n["revoked_at"], "—"),
            ));
        }
        body.push_str("</tbody></table></div>");
    }
    if v["enrolled"] == true {
        // <details> is the confirmation step and needs no script.
        body.push_str(&format!(
            "<details class=\"revoke\"><summary>Revoke node key…</summary>\
             <p>The store's reconciler will be refused (401) until it is enrolled again with a \
             new bootstrap token. The store keeps running its last applied configuration.</p>\
             <form method=\"post\" action=\"{}/revoke\"><button class=\"danger\">Yes, revoke the node key of {}</button></form></details>",
            esc(&store_href(id)),
            esc(id)
        ));
    }

    // The timeline.
    let reports = v["reports"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    body.push_str(&format!(
        "<h2>Reports <span class=\"muted\">(newest first, at most {PAGE_REPORTS})</span></h2>"
    ));
    if reports.is_empty() {
        body.push_str("<div class=\"card\"><p class=\"muted\">No report yet.</p></div>");
    } else {
        body.push_str("<ol class=\"timeline\">");
        for r in reports {
            body.push_str(&report_html(now, r));
        }
        body.push_str("</ol>");
    }
    page(id, &op, &body)
}

async fn revoke(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Path((tenant, store)): Path<(String, String)>,
) -> Response {
    let row = match api::visible_store(&state, &op, &tenant, &store).await {
        Ok(r) => r,
        Err(e) => return error_page(&op, e),
    };
    match api::revoke_for(&state, &op, &row.store).await {
        Ok(_) => Redirect::to(&store_href(&row.store)).into_response(),
        Err(e) => error_page(&op, e),
    }
}

// ------------------------------------------------------------ tenant page

fn pending_table(now: DateTime<Utc>, title: &str, rows: &[Value], more_href: &str) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "<h2>{} <span class=\"muted\">({})</span></h2><div class=\"tablewrap\"><table class=\"stores pending\">\
         <thead><tr><th>Store</th><th>State</th><th class=\"num\">Applied</th><th class=\"num\">Desired</th>\
         <th>Last seen</th></tr></thead><tbody>",
        esc(title),
        thousands(rows.len() as u64)
    );
    for s in rows.iter().take(PENDING_SHOWN) {
        let id = s["store"].as_str().unwrap_or("");
        out.push_str(&format!(
            "<tr><td class=\"store\" data-label=\"Store\"><a href=\"{}\">{}</a></td><td data-label=\"State\">{}</td>\
             <td class=\"num\" data-label=\"Applied\">{}</td><td class=\"num\" data-label=\"Desired\">{}</td>\
             <td data-label=\"Last seen\">{}</td></tr>",
            esc(&store_href(id)),
            esc(id),
            state_badge(s["state"].as_str().unwrap_or("")),
            text(&s["applied_revision"]),
            text(&s["desired_revision"]),
            time_html(now, &s["last_seen"], "never"),
        ));
    }
    out.push_str("</tbody></table></div>");
    if rows.len() > PENDING_SHOWN {
        out.push_str(&format!(
            "<p><a href=\"{}\">All {} on the overview</a></p>",
            esc(more_href),
            thousands(rows.len() as u64)
        ));
    }
    out
}

async fn tenant_page(
    SignedIn(op): SignedIn,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Response {
    let v = match api::tenant_rollout(&state, &op, &tenant).await {
        Ok(v) => v,
        Err(e) => return error_page(&op, e),
    };
    let now = Utc::now();
    let stores = v["stores"].as_u64().unwrap_or(0);
    let applied = v["applied"].as_u64().unwrap_or(0);
    let overview = |state: Option<StoreState>| {
        let q = ListQuery {
            tenant: Some(tenant.clone()),
            state,
            ..ListQuery::default()
        };
        format!("/{}", q.to_query_string())
    };
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/\">Fleet</a></p><h1>Tenant {}</h1>\
         <section class=\"card big\"><b>Rollout</b>: stores running their desired revision{}</section>",
        esc(&tenant),
        progress_html(applied, stores)
    );
    body.push_str("<h2>Stores per state</h2><nav class=\"counts\">");
    for s in StoreState::ALL {
        let n = v["counts"][s.as_str()].as_u64().unwrap_or(0);
        body.push_str(&format!(
            "<a class=\"count{}\" href=\"{}\"><span class=\"n\">{}</span>{}</a>",
            if n == 0 { " zero" } else { "" },
            esc(&overview(Some(s))),
            thousands(n),
            state_badge(s.as_str())
        ));
    }
    body.push_str(
        "</nav><h2>Per desired revision</h2><div class=\"tablewrap\"><table class=\"revisions\">\
                   <thead><tr><th>Desired revision</th><th>Stores applied</th></tr></thead><tbody>",
    );
    for r in v["revisions"].as_array().into_iter().flatten() {
        let rev = match r["desired_revision"].as_u64() {
            Some(n) => format!("<b>{n}</b>"),
            None => "<span class=\"muted\">no release that verifies</span>".to_owned(),
        };
        body.push_str(&format!(
            "<tr><td>{rev}</td><td>{}</td></tr>",
            progress_html(
                r["applied"].as_u64().unwrap_or(0),
                r["stores"].as_u64().unwrap_or(0)
            )
        ));
    }
    body.push_str("</tbody></table></div>");
    let rows = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    body.push_str(&pending_table(
        now,
        "Failing",
        &rows("failing"),
        &overview(Some(StoreState::Failed)),
    ));
    body.push_str(&pending_table(
        now,
        "Refused",
        &rows("refused"),
        &overview(Some(StoreState::Refused)),
    ));
    body.push_str(&pending_table(
        now,
        "Behind (not yet at the desired revision)",
        &rows("behind"),
        &overview(None),
    ));
    if v["failing"].as_array().is_none_or(Vec::is_empty)
        && v["refused"].as_array().is_none_or(Vec::is_empty)
        && v["behind"].as_array().is_none_or(Vec::is_empty)
    {
        body.push_str("<div class=\"card\" style=\"margin-top:1rem\"><p class=\"good\">No store is behind, failing or refused.</p></div>");
    }
    page(&format!("Tenant {tenant}"), &op, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_forms() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn relative_times() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("valid time");
        let ago = |s: i64| relative(now, now - chrono::Duration::seconds(s));
        assert_eq!(ago(3), "just now");
        assert_eq!(ago(42), "42 s ago");
        assert_eq!(ago(180), "3 min ago");
        assert_eq!(ago(5 * 3600 + 10), "5 h ago");
        assert_eq!(ago(2 * 86_400), "2 d ago");
        assert_eq!(ago(-3 * 86_400), "in 3 d");
    }

    #[test]
    fn small_parts() {
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(store_href("acme/soho"), "/stores/acme/soho");
        assert_eq!(store_href("acme/a b"), "/stores/acme/a%20b");
        let d = diff_html("--- a\n+++ b\n@@ -1 +1 @@\n-<old>\n+new\n same\n");
        assert!(d.contains("<span class=\"del\">-&lt;old&gt;</span>"), "{d}");
        assert!(d.contains("<span class=\"add\">+new</span>"));
        assert!(d.contains("<span class=\"file\">--- a</span>"));
        assert!(d.contains("<span class=\"hunk\">"));
        assert_eq!(
            commit_html(&Value::String("3f2c0000".into()), &Value::Null),
            "<code class=\"commit\" title=\"3f2c0000\">3f2c0000</code>"
        );
        assert!(state_badge("<x>").contains("s-unknown"));
        assert_eq!(domain_of("modifier_group"), Some(Domain::Menu));
        assert_eq!(domain_of("routing"), Some(Domain::Kitchen));
    }
}
