//! Support bundles: `POST /api/v1/support-bundles` takes a node-signed
//! `.tar.gz` (from `fleet-reconciler diagnose --upload`, or collected by the
//! reconciler for a "collect support bundle" action, `?action=<id>`);
//! editors download it from the store page or
//! `GET /api/v1/stores/{tenant}/{store}/support-bundles/{id}`.
//!
//! Bundles are kept in the database (`status_support_bundles`), the
//! newest [`KEEP_PER_STORE`] per store, so every replica serves every
//! bundle (DESIGN.md §13). The service never unpacks a bundle: it checks
//! the size and the gzip magic and keeps the bytes; operators download and
//! read them. A download needs an editor: a bundle holds the store's logs
//! and configuration (secrets redacted), more than the pages show.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use crate::api::{ApiResult, AppError, AppState, Operator, authenticate_node, visible_store};
use crate::store::{ActionAnswer, BundleRow, NewBundle};

/// Largest bundle accepted.
pub const MAX_BUNDLE_BYTES: usize = 8 * 1024 * 1024;

/// Bundles kept per store; older ones are deleted as new ones arrive.
pub const KEEP_PER_STORE: i64 = 20;

/// The query of an upload: the action it answers, if any.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    action: Option<u64>,
}

/// `POST /api/v1/support-bundles[?action=<id>]`.
pub async fn post_bundle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, AppError> {
    let node = authenticate_node(&state, &method, &uri, &headers, &body).await?;
    let Query(q) = query.map_err(|e| {
        AppError::bad_request(format!(
            "support bundle query: {} (it is ?action=<the action's id>)",
            e.body_text()
        ))
    })?;
    let action = q.action.and_then(|a| i64::try_from(a).ok());
    let refused = if body.len() > MAX_BUNDLE_BYTES {
        Some((
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "a support bundle may be {MAX_BUNDLE_BYTES} bytes at most; this one is {}",
                body.len()
            ),
        ))
    } else if !body.starts_with(&[0x1f, 0x8b]) {
        Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_gzip",
            "a support bundle is a .tar.gz".to_owned(),
        ))
    } else {
        None
    };
    if let Some((status, code, message)) = refused {
        // The operator who asked for it sees why on the store page.
        if let Some(id) = action {
            let detail = format!("the bundle was refused: {message}");
            let answer = ActionAnswer {
                kind: wire::desired::ActionKind::SupportBundle,
                at: state.clock.now().timestamp(),
                result: "failed",
                detail: &detail,
                report_id: None,
                bundle_id: None,
            };
            state.store.answer_action(&node.store, id, answer).await?;
        }
        warn!(store = %node.store, bytes = body.len(), error = %message, "Support bundle refused.");
        return Err(AppError::client(status, code, message));
    }
    let now = state.clock.now();
    // Sorts by time; the random part keeps two uploads of one
    // millisecond apart.
    let id = format!(
        "{}-{}-{}.tar.gz",
        now.format("%Y%m%dT%H%M%S%.3fZ"),
        node.key_id,
        &crate::tokens::nonce()[..8]
    );
    state
        .store
        .put_bundle(
            NewBundle {
                id: &id,
                store: &node.store,
                key_id: &node.key_id,
                received_at: now.timestamp(),
                action_id: action,
                body: &body,
            },
            KEEP_PER_STORE,
        )
        .await?;
    let bytes = body.len();
    info!(store = %node.store, key_id = %node.key_id, id = %id, bytes, action, "Support bundle received.");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "store": node.store, "bytes": bytes})),
    )
        .into_response())
}

/// One support bundle of a store, in the store's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bundle {
    /// `<time>-<key id>-<random>.tar.gz`.
    pub id: String,
    pub bytes: u64,
    /// The node key that uploaded it.
    pub key_id: String,
    pub received_at: Option<crate::api::Timestamp>,
    /// The operator action it answers, if any.
    pub action_id: Option<i64>,
}

impl From<BundleRow> for Bundle {
    fn from(r: BundleRow) -> Bundle {
        Bundle {
            id: r.id,
            bytes: r.size,
            key_id: r.key_id,
            received_at: crate::api::Timestamp::from_unix(r.received_at),
            action_id: r.action_id,
        }
    }
}

/// The store's bundles, newest first, for the store JSON.
pub async fn list(state: &AppState, store: &str) -> ApiResult<Vec<Bundle>> {
    Ok(state
        .store
        .bundles(store)
        .await?
        .into_iter()
        .map(Bundle::from)
        .collect())
}

/// The bytes of bundle `id` of a store visible to `op`, as a download.
pub async fn download(
    state: &AppState,
    op: &Operator,
    tenant: &str,
    store: &str,
    id: &str,
) -> ApiResult<Response> {
    let row = visible_store(state, op, tenant, store).await?;
    op.must_edit("downloading a support bundle")?;
    let Some(bytes) = state.store.bundle(&row.store, id).await? else {
        return Err(AppError::not_found("no such support bundle"));
    };
    // Ids are `<time>-<key id>-<random>.tar.gz` as made above; anything else was
    // not found, so the name below holds no quote or path.
    let name = format!("{tenant}-{store}-{id}");
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    info!(store = %row.store, operator = %op.id(), id, "Support bundle downloaded.");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/gzip"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/v1/stores/{tenant}/{store}/support-bundles/{id}`.
pub async fn get_bundle(
    op: Operator,
    State(state): State<AppState>,
    Path((tenant, store, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    download(&state, &op, &tenant, &store, &id).await
}
