//! The dashboard: server-rendered HTML over the same functions as the JSON
//! API ([`api::overview`], [`api::visible_store`], [`api::revoke_for`]), so
//! a page can show nothing the API would not. Operators sign in with their
//! tenant-scoped token, kept in an `HttpOnly`, `SameSite=Strict` cookie;
//! another tenant's store page answers 404 like the API (THREATS row 16).
//!
//! Every value is HTML-escaped: store names, report texts and diffs come
//! from nodes and the repo.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{self, AppError, AppState, Operator};
use crate::state::StoreState;

const COOKIE: &str = "fleet_operator";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/stores/{tenant}/{store}", get(store_page))
        .route("/stores/{tenant}/{store}/revoke", post(revoke))
}

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

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{} · fleet-status</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}pre{{background:#f6f6f6;padding:.5em}}</style>\
         </head><body><nav><a href=\"/\">Fleet</a> \
         <form method=\"post\" action=\"/logout\" style=\"display:inline\"><button>Sign out</button></form></nav>\
         <h1>{}</h1>{body}</body></html>",
        esc(title),
        esc(title)
    ))
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The signed-in operator, or a redirect to the sign-in page.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Operator, Response> {
    let token = cookie_token(headers);
    match api::operator_for_token(state, token.as_deref()).await {
        Ok(op) => Ok(op),
        Err(AppError::Client { .. }) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(e.into_response()),
    }
}

async fn login_page() -> Html<String> {
    Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · fleet-status</title></head>\
         <body><h1>Sign in</h1><form method=\"post\" action=\"/login\">\
         <label>Operator token <input type=\"password\" name=\"token\" autocomplete=\"off\"></label> \
         <button>Sign in</button></form></body></html>"
            .to_owned(),
    )
}

#[derive(Debug)]
struct LoginForm {
    token: String,
}

async fn login(State(state): State<AppState>, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded_form(&body) else {
        return (StatusCode::BAD_REQUEST, "expected a form with `token`").into_response();
    };
    match api::operator_for_token(&state, Some(&form.token)).await {
        Ok(_) => {
            let cookie = format!(
                "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                form.token.trim()
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(AppError::Client { .. }) => (
            StatusCode::UNAUTHORIZED,
            Html(
                "<!doctype html><p>Unknown operator token. <a href=\"/login\">Try again</a>.</p>"
                    .to_owned(),
            ),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `token=<value>` of an `application/x-www-form-urlencoded` body.
fn serde_urlencoded_form(body: &[u8]) -> Result<LoginForm, ()> {
    let text = std::str::from_utf8(body).map_err(|_| ())?;
    for pair in text.split('&') {
        if let Some(v) = pair.strip_prefix("token=") {
            return Ok(LoginForm {
                token: percent_decode(v).ok_or(())?,
            });
        }
    }
    Err(())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

async fn logout() -> Response {
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct Filter {
    tenant: Option<String>,
    state: Option<String>,
}

async fn overview_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<Filter>,
) -> Response {
    let op = match signed_in(&state, &headers).await {
        Ok(op) => op,
        Err(r) => return r,
    };
    let tenant = f.tenant.as_deref().filter(|s| !s.is_empty());
    let only = f.state.as_deref().filter(|s| !s.is_empty());
    let view = match api::overview(&state, &op, tenant, only).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut body = String::from("<h2>Stores per state</h2><p>");
    if let Some(counts) = view["counts"].as_object() {
        for (s, n) in counts {
            body.push_str(&format!("{}: {} · ", esc(s), text(n)));
        }
    }
    body.push_str("</p><h2>Rollout</h2><table><tr><th>tenant</th><th>stores</th><th>at desired revision</th></tr>");
    if let Some(tenants) = view["tenants"].as_object() {
        for (t, r) in tenants {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(t),
                text(&r["stores"]),
                text(&r["at_desired_revision"])
            ));
        }
    }
    body.push_str("</table><h2>Stores</h2><form method=\"get\" action=\"/\"><select name=\"tenant\"><option value=\"\">all tenants</option>");
    for t in &op.tenants {
        let sel = if Some(t.as_str()) == tenant {
            " selected"
        } else {
            ""
        };
        body.push_str(&format!("<option{sel}>{}</option>", esc(t)));
    }
    body.push_str("</select> <select name=\"state\"><option value=\"\">all states</option>");
    for s in StoreState::ALL {
        let sel = if Some(s.as_str()) == only {
            " selected"
        } else {
            ""
        };
        body.push_str(&format!("<option{sel}>{}</option>", s.as_str()));
    }
    body.push_str("</select> <button>Filter</button></form><table><tr><th>store</th><th>state</th><th>desired</th><th>applied</th><th>last seen</th><th>reconciler</th></tr>");
    for s in view["stores"].as_array().into_iter().flatten() {
        let id = s["store"].as_str().unwrap_or("");
        body.push_str(&format!(
            "<tr><td><a href=\"/stores/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(id),
            esc(id),
            text(&s["state"]),
            text(&s["desired_revision"]),
            text(&s["applied_revision"]),
            text(&s["last_seen"]),
            text(&s["reconciler_version"]),
        ));
    }
    body.push_str("</table>");
    page("Fleet", &body).into_response()
}

async fn store_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((tenant, store)): Path<(String, String)>,
) -> Response {
    let op = match signed_in(&state, &headers).await {
        Ok(op) => op,
        Err(r) => return r,
    };
    let row = match api::visible_store(&state, &op, &tenant, &store).await {
        Ok(r) => r,
        Err(AppError::Client { status, .. }) => {
            return (status, page("Not found", "<p>No such store.</p>")).into_response();
        }
        Err(e) => return e.into_response(),
    };
    let reports = match state.store.reports(&row.store, 100).await {
        Ok(r) => r,
        Err(e) => return AppError::from(e).into_response(),
    };
    let now = chrono::Utc::now();
    let mut body = format!(
        "<table><tr><th>state</th><td>{}</td></tr><tr><th>desired revision</th><td>{}</td></tr>\
         <tr><th>applied revision</th><td>{}</td></tr><tr><th>release</th><td>{}</td></tr>\
         <tr><th>node</th><td>{}</td></tr></table>",
        api::row_state(&state, &row, now).as_str(),
        text(&serde_json::json!(row.desired_revision)),
        text(&serde_json::json!(row.applied_revision)),
        if row.release_valid {
            "verifies".to_owned()
        } else {
            esc(row.release_error.as_deref().unwrap_or("unknown"))
        },
        if row.active_nodes > 0 {
            "enrolled"
        } else {
            "none"
        },
    );
    body.push_str(&format!(
        "<form method=\"post\" action=\"/stores/{}/revoke\"><button>Revoke node key</button></form>",
        esc(&row.store)
    ));
    body.push_str("<h2>Reports</h2>");
    for r in reports {
        let report: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        body.push_str(&format!(
            "<h3>{} · {} · desired {} · applied {} · commit {}</h3>",
            text(&serde_json::json!(
                chrono::DateTime::from_timestamp(r.received_at, 0).map(|d| d.to_rfc3339())
            )),
            esc(&r.outcome),
            text(&serde_json::json!(r.desired_revision)),
            text(&serde_json::json!(r.applied_revision)),
            esc(r.commit.as_deref().unwrap_or("—")),
        ));
        for d in report["drift"].as_array().into_iter().flatten() {
            body.push_str(&format!(
                "<p>drift: {} {}</p><pre>{}</pre>",
                text(&d["kind"]),
                text(&d["id"]),
                text(&d["diff"])
            ));
        }
        for c in report["changes"].as_array().into_iter().flatten() {
            body.push_str(&format!(
                "<p>changed: {} {}</p>",
                text(&c["kind"]),
                text(&c["id"])
            ));
        }
        if let Some(refusal) = report["refusal"].as_object() {
            body.push_str(&format!(
                "<p>refused: {}</p>",
                text(refusal.get("message").unwrap_or(&Value::Null))
            ));
        }
    }
    page(&row.store, &body).into_response()
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((tenant, store)): Path<(String, String)>,
) -> Response {
    let op = match signed_in(&state, &headers).await {
        Ok(op) => op,
        Err(r) => return r,
    };
    let row = match api::visible_store(&state, &op, &tenant, &store).await {
        Ok(r) => r,
        Err(AppError::Client { status, .. }) => {
            return (status, page("Not found", "<p>No such store.</p>")).into_response();
        }
        Err(e) => return e.into_response(),
    };
    match api::revoke_for(&state, &op, &row.store).await {
        Ok(_) => Redirect::to(&format!("/stores/{}", row.store)).into_response(),
        Err(e) => e.into_response(),
    }
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
        assert_eq!(
            serde_urlencoded_form(b"token=fso_a%2Bb+c").map(|f| f.token),
            Ok("fso_a+b c".to_owned())
        );
        assert!(serde_urlencoded_form(b"nope=1").is_err());
    }
}
