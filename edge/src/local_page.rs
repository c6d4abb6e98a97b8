//! The store-local page (issue #21 item 5): `GET /local` on the store's
//! LAN shows the store manager, in a browser, what head office applied and
//! when, what the store overrides and owns, and the local audit log with
//! its chain's state — the original plan's "visible in the store local
//! audit log" for a person, not only an API.
//!
//! A browser has no bearer token: the manager signs in with their user id
//! and PIN (`POST /local/login`, a form), checked and counted like a
//! register's login (lockout, audit), and needs a role granting
//! `reports.view`. The session is a staff session bound to `local:web`,
//! kept in an `HttpOnly`, `SameSite=Strict` cookie for `/local`.

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use schemas::diff::EntityKind;
use serde::Deserialize;
use wire::edge::{AuditEntry, Unavailable};

use crate::api::App;
use crate::staff::{self, StaffError};

/// Newest audit entries the page shows.
pub const AUDIT_SHOWN: usize = 100;
/// The credential browser sessions are bound to.
const WEB: &str = "local:web";
/// The permission the page needs.
const PERMISSION: &str = "reports.view";
const COOKIE: &str = "fleet_session";

/// The page's routes: outside the bearer token, behind a staff session.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/local", get(page))
        .route("/local/login", post(login))
        .route("/local/logout", post(logout))
}

/// The signed-in view.
#[derive(Debug)]
pub struct View {
    pub user: String,
    pub role: String,
    pub applied: Option<crate::audit::ReconcilerWrite>,
    /// (kind, id) of users and roles under a local override.
    pub overrides: Vec<(&'static str, String)>,
    pub unavailable: Vec<Unavailable>,
    pub audit: Vec<AuditEntry>,
    pub chain_ok: bool,
    pub chain_entries: u64,
    pub chain_problem: String,
}

#[derive(Template)]
#[template(path = "local.html")]
struct LocalPage {
    store: String,
    view: Option<View>,
    message: Option<String>,
}

fn html(status: StatusCode, page: LocalPage) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => crate::api::error::AppError::internal(e).into_response(),
    }
}

async fn store_name(app: &App) -> String {
    let mut conn = match app.db.reader.acquire().await {
        Ok(c) => c,
        Err(_) => return "this store".to_owned(),
    };
    match crate::store::body(&mut conn, EntityKind::Setting, "store.name").await {
        Ok(Some(serde_json::Value::String(s))) => s,
        _ => "this store".to_owned(),
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

async fn page(State(app): State<App>, headers: HeaderMap) -> Response {
    let store = store_name(&app).await;
    let sign_in = |status, message: Option<String>| {
        html(
            status,
            LocalPage {
                store: store.clone(),
                view: None,
                message,
            },
        )
    };
    let Some(token) = session_cookie(&headers) else {
        return sign_in(StatusCode::OK, None);
    };
    let s = match staff::session(&app.db, &token, WEB).await {
        Ok(s) => s,
        Err(StaffError::BadSession) => {
            return sign_in(
                StatusCode::OK,
                Some("Your session ended: sign in again.".to_owned()),
            );
        }
        Err(e @ StaffError::LockedOut { .. }) => {
            return sign_in(StatusCode::TOO_MANY_REQUESTS, Some(e.to_string()));
        }
        Err(e) => return crate::api::error::AppError::internal(e).into_response(),
    };
    if !s.may(PERMISSION) {
        return sign_in(
            StatusCode::FORBIDDEN,
            Some(format!(
                "{}'s role `{}` does not grant {PERMISSION}: ask a manager.",
                s.user, s.role
            )),
        );
    }
    match view(&app, s).await {
        Ok(v) => html(
            StatusCode::OK,
            LocalPage {
                store,
                view: Some(v),
                message: None,
            },
        ),
        Err(e) => crate::api::error::AppError::internal(e).into_response(),
    }
}

async fn view(app: &App, s: staff::Staff) -> Result<View, sqlx::Error> {
    let mut conn = app.db.reader.acquire().await?;
    let applied = crate::audit::last_reconciler_write(&mut conn).await?;
    let overrides = crate::store::overridden(&mut conn)
        .await?
        .into_iter()
        .map(|(kind, id)| (crate::model::kind_name(kind), id))
        .collect();
    let unavailable = crate::availability::list(&mut conn).await?;
    drop(conn);
    let head = {
        let mut conn = app.db.reader.acquire().await?;
        crate::audit::head(&mut conn).await?
    };
    let after = head.seq.saturating_sub(AUDIT_SHOWN as u64);
    let mut audit = crate::audit::page(&app.db.reader, after, AUDIT_SHOWN as u32)
        .await?
        .entries;
    audit.reverse();
    let report = crate::audit::verify(&app.db.reader).await?;
    Ok(View {
        user: s.user,
        role: s.role,
        applied,
        overrides,
        unavailable,
        audit,
        chain_ok: report.ok,
        chain_entries: report.entries,
        chain_problem: match (report.first_bad_seq, report.reason) {
            (Some(seq), Some(r)) => format!("entry {seq}: {r}"),
            (_, Some(r)) => r,
            _ => "unknown".to_owned(),
        },
    })
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    user: String,
    pin: String,
}

async fn login(
    State(app): State<App>,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let store = store_name(&app).await;
    let again = |status, message: String| {
        html(
            status,
            LocalPage {
                store: store.clone(),
                view: None,
                message: Some(message),
            },
        )
    };
    let Ok(Form(form)) = form else {
        return again(
            StatusCode::BAD_REQUEST,
            "Sign in with the form: a user and a PIN.".to_owned(),
        );
    };
    let s = match staff::check_pin(&app.db, form.user.trim(), form.pin.trim(), WEB, "login").await {
        Ok(s) => s,
        Err(StaffError::WrongPin) => {
            return again(StatusCode::UNAUTHORIZED, "Wrong user or PIN.".to_owned());
        }
        Err(e @ StaffError::LockedOut { .. }) => {
            return again(StatusCode::TOO_MANY_REQUESTS, e.to_string());
        }
        Err(e) => return crate::api::error::AppError::internal(e).into_response(),
    };
    if !s.may(PERMISSION) {
        return again(
            StatusCode::FORBIDDEN,
            format!(
                "{}'s role `{}` does not grant {PERMISSION}: this page is for store managers.",
                s.user, s.role
            ),
        );
    }
    let answer = match staff::open_session(&app.db, &s).await {
        Ok(a) => a,
        Err(e) => return crate::api::error::AppError::internal(e).into_response(),
    };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/local; Max-Age={}",
        answer.session,
        staff::SESSION_SECS
    );
    let mut r = Redirect::to("/local").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(token) = session_cookie(&headers) {
        let _ = staff::close_session(&app.db, &token).await;
    }
    let mut r = Redirect::to("/local").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "fleet_session=; HttpOnly; SameSite=Strict; Path=/local; Max-Age=0",
        ),
    );
    r
}
