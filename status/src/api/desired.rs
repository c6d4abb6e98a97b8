//! `GET /api/v1/desired?after=<rev>&wait=<s>`: the node's long-poll. It
//! answers as soon as a newer verified revision exists for the calling
//! store, when `wait` runs out, or at once when the server stops.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ApiResult, AppState, MAX_WAIT_SECS, authenticate_node};

#[derive(Debug, Deserialize)]
pub(super) struct DesiredQuery {
    after: Option<u64>,
    wait: Option<u64>,
}

pub(super) async fn desired(
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
