//! `GET /api/v1/desired?after=<rev>&wait=<s>`: the node's long-poll
//! ([`wire::desired`]). It answers as soon as a newer verified revision
//! exists for the calling store or an operator action waits for it, when
//! `wait` runs out, or at once when the server stops.
//!
//! Actions are looked for when the poll starts and when one is asked of
//! this store (not at every fetch), so a change to the repo that wakes
//! every long-poll costs no extra query per store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wire::desired::{Action, Desired};

use crate::store::StoreRow;

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
    // A held poll keeps only what it needs: not the request's headers, and
    // not the room of the database's futures in its own state (each await
    // of the database is boxed, freed when it is done: a held poll's state
    // is then a few hundred bytes, not 3 KB; docs/BENCHMARKS.md).
    let node = Box::pin(authenticate_node(&state, &method, &uri, &headers, &[])).await?;
    drop((headers, uri));
    let _held = Held::new(&state.metrics.long_polls);
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let mut deadline = tokio::time::Instant::now() + wait;
    let mut changes = state.desired_changed.subscribe();
    let asked = state.actions.subscribe(&node.store);
    let mut look_for_actions = true;
    loop {
        // Subscribed before reading, so a change in between is not lost.
        changes.borrow_and_update();
        let notified = asked.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if std::mem::take(&mut look_for_actions) {
            let actions = Box::pin(super::actions::deliver(&state, &node.store)).await?;
            if !actions.is_empty() {
                let row = Box::pin(state.store.get_store(&node.store)).await?;
                return Ok(axum::Json(answer(&node.store, row, q.after, actions)).into_response());
            }
        }
        // Woken by this replica's fetch: its rows say it without a query.
        if let Some((revision, commit)) = state.scanned.newer(&node.store, q.after) {
            return Ok(axum::Json(Desired {
                store: node.store.clone(),
                desired_revision: Some(revision),
                commit: Some(commit.to_string()),
                changed: true,
                actions: Vec::new(),
            })
            .into_response());
        }
        let row = Box::pin(state.store.get_store(&node.store)).await?;
        let timed_out = tokio::time::Instant::now() >= deadline;
        let d = answer(&node.store, row, q.after, Vec::new());
        if d.changed || timed_out {
            return Ok(axum::Json(d).into_response());
        }
        let mut stopping = state.stopping.clone();
        if *stopping.borrow_and_update() {
            deadline = tokio::time::Instant::now();
            continue;
        }
        tokio::select! {
            () = &mut notified => look_for_actions = true,
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

/// The answer for `store`, whose row is `row`, to a poll `after`.
fn answer(store: &str, row: Option<StoreRow>, after: Option<u64>, actions: Vec<Action>) -> Desired {
    let revision = row
        .as_ref()
        .filter(|r| r.release_valid)
        .and_then(|r| r.desired_revision);
    Desired {
        store: store.to_owned(),
        desired_revision: revision,
        changed: revision.is_some_and(|d| after.is_none_or(|a| d > a)),
        commit: row.and_then(|r| r.desired_commit),
        actions,
    }
}

/// Counts a long-poll as held while it lives (also when the client goes
/// away and the handler is dropped): `fleet_status_long_polls`.
struct Held<'a>(&'a AtomicU64);

impl<'a> Held<'a> {
    fn new(n: &'a AtomicU64) -> Held<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        Held(n)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
