//! `POST /api/v1/enroll`: a single-use bootstrap token binds a node's
//! Ed25519 key to the token's store (DESIGN.md §6). Every refusal leaves an
//! audit entry.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use super::{ApiResult, AppError, AppState, audit};
use crate::node_auth;
use crate::store::Node;
use crate::tokens;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollBody {
    token: String,
    node_public_key: String,
    /// Optional: the store the node believes it is; a token of another
    /// store is then refused (and stays unused).
    #[serde(default)]
    store: Option<String>,
    /// Optional: the store's age recipient (`age1…`, DESIGN.md §11), made
    /// on the node; shown as the store's `recipient`.
    #[serde(default)]
    recipient: Option<String>,
}

pub(super) async fn enroll(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
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
    if let Some(r) = &body.recipient
        && r.parse::<age::x25519::Recipient>().is_err()
    {
        return Err(
            AppError::bad_request("recipient: not an age X25519 recipient (age1…)")
                .with_field("recipient"),
        );
    }
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
    let t = state.clock.now().timestamp();
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
                recipient: body.recipient.clone(),
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
