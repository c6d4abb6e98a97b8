//! `POST /api/v1/nodes/rotate`: a node replaces its key (DESIGN.md §10).
//! The request is signed by the current key (every check of an ordinary
//! node request: known, active, signature, skew, nonce) and carries the new
//! public key with a proof that the sender holds it; the new key is bound
//! to the same store and the old one revoked in one transaction.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::info;

use super::reports::authenticate_node;
use super::{ApiResult, AppError, AppState, audit};
use crate::store::Node;
use wire::node_auth;

pub(super) async fn rotate(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let node = authenticate_node(&state, &method, &uri, &headers, &body).await?;
    let actor = format!("node-key:{}", node.key_id);
    let action = "POST /api/v1/nodes/rotate";
    let req: node_auth::RotateRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("rotation body: {e}")))?;
    let new_key = node_auth::decode_public_key(&req.node_public_key).map_err(|e| {
        AppError::client(
            StatusCode::BAD_REQUEST,
            "bad_key",
            format!("node_public_key: {e}"),
        )
        .with_field("node_public_key")
    })?;
    if let Err(e) = node_auth::verify_rotation(&new_key, &node.key_id, &req.proof) {
        let why = format!("the proof of the new key does not verify: {e}");
        audit(&state, &actor, action, Some(&node.store), "refused", &why).await?;
        return Err(AppError::client(StatusCode::BAD_REQUEST, "bad_proof", why).with_field("proof"));
    }
    let new = Node {
        key_id: node_auth::key_id(&new_key),
        public_key: node_auth::encode_public_key(&new_key),
        store: node.store.clone(),
        enrolled_at: state.clock.now().timestamp(),
        revoked_at: None,
        // The store's age identity stays when its node key changes.
        recipient: node.recipient.clone(),
    };
    if !state.store.rotate_node(&node.key_id, &new).await? {
        let why = "the current key was revoked meanwhile, or the new key is already enrolled";
        audit(&state, &actor, action, Some(&node.store), "refused", why).await?;
        return Err(AppError::client(StatusCode::CONFLICT, "not_rotated", why));
    }
    let detail = format!("node key {} replaced by {}", node.key_id, new.key_id);
    audit(&state, &actor, action, Some(&node.store), "ok", &detail).await?;
    info!(store = %node.store, old = %node.key_id, new = %new.key_id, "Node key rotated.");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"store": node.store, "key_id": new.key_id})),
    )
        .into_response())
}
