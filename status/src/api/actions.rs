//! Operator actions (DESIGN.md §13): "reconcile now" and "collect a
//! support bundle", asked for on the store page or with
//! `POST /api/v1/stores/{tenant}/{store}/actions`, and handed to the store
//! in its long-poll answer ([`wire::desired`]).
//!
//! An action lives in the database (`status_actions`), so any replica can
//! hand it out and show its result. Asking wakes the store's long-poll on
//! this replica at once ([`Wakers`]) and, on PostgreSQL, on every other
//! replica (the insert's trigger notifies `fleet_status_actions` with the
//! store id when it commits; `crate::cluster::listen` wakes it here).
//! The store answers with a report naming the action ([`answer_reports`])
//! or with an uploaded bundle (`crate::support`).
//!
//! What state an action is in is [`ActionState::of`], a pure function of
//! its row and the time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::info;
use wire::desired::{Action, ActionKind, EXPIRES_AFTER_SECS, REDELIVER_AFTER_SECS};

use super::views::{Timestamp, visible_store};
use super::{ApiResult, AppError, AppState, Operator, audit};
use crate::store::{ActionAnswer, ActionRow};

/// Actions listed on the store page and in the store's JSON.
pub const SHOWN: i64 = 10;

/// Report actions a store may answer at once; more are ignored.
pub const MAX_ANSWERED: usize = 16;

/// One [`Notify`] per store with a long-poll waiting on this replica:
/// asking an action for a store wakes its long-polls, and only theirs.
///
/// A `Notify` (about 50 bytes) rather than a `watch` channel (about 400,
/// with its eight inner notifiers): one is kept per held long-poll's
/// store, 10,000 of them on a busy replica (docs/BENCHMARKS.md,
/// distribution). A poll enables its `Notified` before it looks for
/// actions, so an ask in between still wakes it.
#[derive(Debug, Default)]
pub struct Wakers {
    map: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wakers {
    /// What to wait on to hear of new actions of `store`.
    pub fn subscribe(&self, store: &str) -> Arc<Notify> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(store) {
            return n.clone();
        }
        // Forget the stores nobody waits for any more, now and then.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, n| Arc::strong_count(n) > 1);
        }
        let n = Arc::new(Notify::new());
        map.insert(store.to_owned(), n.clone());
        n
    }

    /// Wake the long-polls of `store` held here, if any.
    pub fn wake(&self, store: &str) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(store) {
            n.notify_waiters();
        }
    }

    /// Wake every long-poll held here (a lost notification connection may
    /// have missed some).
    pub fn wake_all(&self) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        for n in map.values() {
            n.notify_waiters();
        }
    }
}

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Asked for; the store has not picked it up yet.
    Waiting,
    /// Handed to the store; its answer has not come yet.
    Delivered,
    /// The store answered: a report, or a bundle to download.
    Done,
    /// The store tried and could not (the detail says why).
    Failed,
    /// Not answered within [`EXPIRES_AFTER_SECS`]: the store was offline
    /// or could not do it.
    Expired,
}

impl ActionState {
    /// The state of `row` at `now` (unix seconds).
    pub fn of(row: &ActionRow, now: i64) -> ActionState {
        match (row.done_at, row.result.as_deref()) {
            (Some(_), Some("failed")) => ActionState::Failed,
            (Some(_), _) => ActionState::Done,
            (None, _) if now - row.requested_at >= EXPIRES_AFTER_SECS => ActionState::Expired,
            (None, _) if row.delivered_at.is_some() => ActionState::Delivered,
            (None, _) => ActionState::Waiting,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Waiting => "waiting",
            ActionState::Delivered => "delivered",
            ActionState::Done => "done",
            ActionState::Failed => "failed",
            ActionState::Expired => "expired",
        }
    }

    /// Still to be answered: the page refreshes itself while one is.
    pub fn open(self) -> bool {
        matches!(self, ActionState::Waiting | ActionState::Delivered)
    }

    /// The dashboard's badge colour: a store state's of the same sense.
    pub fn badge_class(self) -> &'static str {
        match self {
            ActionState::Waiting => "s-scheduled",
            ActionState::Delivered => "s-out_of_sync",
            ActionState::Done => "s-synced",
            ActionState::Failed => "s-failed",
            ActionState::Expired => "s-offline",
        }
    }

    /// For people, on the store page.
    pub fn meaning(self) -> &'static str {
        match self {
            ActionState::Waiting => "waiting for the store to pick it up",
            ActionState::Delivered => "the store has it and is working on it",
            ActionState::Done => "the store answered",
            ActionState::Failed => "the store could not do it",
            ActionState::Expired => "the store did not answer within an hour (offline?)",
        }
    }
}

/// One action, for the store page and `GET /api/v1/stores/{tenant}/{store}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionView {
    pub id: i64,
    pub kind: String,
    pub state: ActionState,
    pub requested_by: String,
    pub requested_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub done_at: Option<Timestamp>,
    pub detail: Option<String>,
    /// The report that answered a `reconcile`.
    pub report_id: Option<i64>,
    /// The bundle that answered a `support_bundle`.
    pub bundle_id: Option<String>,
}

impl ActionView {
    pub fn new(row: ActionRow, now: i64) -> ActionView {
        ActionView {
            state: ActionState::of(&row, now),
            id: row.id,
            kind: row.kind,
            requested_by: row.requested_by,
            requested_at: Timestamp::from_unix(row.requested_at),
            delivered_at: row.delivered_at.and_then(Timestamp::from_unix),
            done_at: row.done_at.and_then(Timestamp::from_unix),
            detail: row.detail,
            report_id: row.report_id,
            bundle_id: row.bundle_id,
        }
    }

    /// What the button said, for people.
    pub fn label(&self) -> &str {
        ActionKind::parse(&self.kind).map_or(&self.kind, |k| k.label())
    }
}

/// The newest actions of a store, for its page.
pub async fn recent(state: &AppState, store: &str) -> ApiResult<Vec<ActionView>> {
    let now = state.clock.now().timestamp();
    Ok(state
        .store
        .store_actions(store, SHOWN)
        .await?
        .into_iter()
        .map(|r| ActionView::new(r, now))
        .collect())
}

/// The body of `POST /api/v1/stores/{tenant}/{store}/actions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// `reconcile` or `support_bundle`.
    pub kind: String,
}

/// Its answer (202: the store does it when it next long-polls).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requested {
    pub id: i64,
    pub store: String,
    pub kind: &'static str,
}

/// Ask `store` (visible to `op`) for an action on the operator's behalf.
pub async fn request_for(
    state: &AppState,
    op: &Operator,
    store: &str,
    kind: &str,
) -> ApiResult<Requested> {
    let Some(kind) = ActionKind::parse(kind) else {
        return Err(AppError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_action",
            format!("unknown action {kind:?}: it is \"reconcile\" or \"support_bundle\""),
        ));
    };
    op.must_edit(&format!("\"{}\"", kind.label()))?;
    let active = state.store.get_store(store).await?.map(|r| r.active_nodes);
    if active.unwrap_or(0) == 0 {
        return Err(AppError::client(
            StatusCode::CONFLICT,
            "not_enrolled",
            format!(
                "{store} has no enrolled node to do it: enroll the store's reconciler first \
                 (docs/operations/enroll.md)"
            ),
        ));
    }
    let actor = format!("operator:{}", op.id());
    let now = state.clock.now().timestamp();
    let id = state
        .store
        .request_action(store, kind.as_str(), &actor, now)
        .await?;
    audit(
        state,
        &actor,
        kind.as_str(),
        Some(store),
        "ok",
        &format!("action {id} asked of the store"),
    )
    .await?;
    state.actions.wake(store);
    info!(%store, operator = %op.id(), action = id, kind = kind.as_str(), "Operator action asked of a store.");
    Ok(Requested {
        id,
        store: store.to_owned(),
        kind: kind.as_str(),
    })
}

/// `POST /api/v1/stores/{tenant}/{store}/actions`.
pub(super) async fn post_action(
    op: Operator,
    State(state): State<AppState>,
    Path((tenant, store)): Path<(String, String)>,
    body: Result<Json<ActionRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Requested>)> {
    let row = visible_store(&state, &op, &tenant, &store).await?;
    let Json(req) = body.map_err(|e| AppError::bad_request(format!("action body: {e}")))?;
    let requested = request_for(&state, &op, &row.store, &req.kind).await?;
    Ok((StatusCode::ACCEPTED, Json(requested)))
}

/// The actions to hand to `store` in a long-poll answer now, marked as
/// handed out. Reads first, so a long-poll with nothing to hand out
/// writes nothing.
pub async fn deliver(state: &AppState, store: &str) -> ApiResult<Vec<Action>> {
    let now = state.clock.now().timestamp();
    let (redeliver, expire) = (now - REDELIVER_AFTER_SECS, now - EXPIRES_AFTER_SECS);
    if !state.store.has_actions(store, redeliver, expire).await? {
        return Ok(Vec::new());
    }
    let rows = state
        .store
        .deliver_actions(store, now, redeliver, expire)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(Action {
                id: u64::try_from(r.id).ok()?,
                kind: ActionKind::parse(&r.kind)?,
            })
        })
        .collect())
}

/// Record that report `report_id` of `store` answers the `reconcile`
/// actions it names (at most [`MAX_ANSWERED`]); an id that is not an open
/// action of this store changes nothing.
pub async fn answer_reports(
    state: &AppState,
    store: &str,
    report_id: i64,
    outcome: &str,
    ids: &[u64],
) -> ApiResult<()> {
    let at = state.clock.now().timestamp();
    let detail = format!("pass {outcome}");
    for id in ids.iter().take(MAX_ANSWERED) {
        let Ok(id) = i64::try_from(*id) else { continue };
        let answer = ActionAnswer {
            kind: ActionKind::Reconcile,
            at,
            result: "done",
            detail: &detail,
            report_id: Some(report_id),
            bundle_id: None,
        };
        if state.store.answer_action(store, id, answer).await? {
            info!(%store, action = id, report = report_id, "Operator action answered by a report.");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(requested_at: i64, delivered_at: Option<i64>, done: Option<&str>) -> ActionRow {
        ActionRow {
            id: 1,
            store: "acme/soho".into(),
            kind: "reconcile".into(),
            requested_by: "operator:abc".into(),
            requested_at,
            delivered_at,
            done_at: done.map(|_| requested_at + 5),
            result: done.map(str::to_owned),
            detail: None,
            report_id: None,
            bundle_id: None,
        }
    }

    #[test]
    fn states_follow_the_row_and_the_clock() {
        let t = 1_000_000;
        assert_eq!(
            ActionState::of(&row(t, None, None), t),
            ActionState::Waiting
        );
        assert_eq!(
            ActionState::of(&row(t, Some(t + 1), None), t + 2),
            ActionState::Delivered
        );
        assert_eq!(
            ActionState::of(&row(t, Some(t), Some("done")), t + 9),
            ActionState::Done
        );
        assert_eq!(
            ActionState::of(&row(t, Some(t), Some("failed")), t + 9),
            ActionState::Failed
        );
        // Not answered within the hour: expired, delivered or not.
        let late = t + EXPIRES_AFTER_SECS;
        assert_eq!(
            ActionState::of(&row(t, None, None), late),
            ActionState::Expired
        );
        assert_eq!(
            ActionState::of(&row(t, Some(t + 1), None), late),
            ActionState::Expired
        );
        assert_eq!(
            ActionState::of(&row(t, None, None), late - 1),
            ActionState::Waiting
        );
        // An answer counts even after the hour.
        assert_eq!(
            ActionState::of(&row(t, Some(t), Some("done")), late + 9),
            ActionState::Done
        );
        assert!(ActionState::Waiting.open() && ActionState::Delivered.open());
        assert!(!ActionState::Done.open() && !ActionState::Expired.open());
    }

    #[test]
    fn a_wake_reaches_only_that_stores_long_polls() {
        use std::future::Future as _;
        use std::task::{Context, Poll, Waker};
        let w = Wakers::default();
        let (a, b) = (w.subscribe("acme/a"), w.subscribe("acme/b"));
        let mut cx = Context::from_waker(Waker::noop());
        // Enabled before the wake, as a long-poll does before it looks.
        let mut on_a = std::pin::pin!(a.notified());
        let mut on_b = std::pin::pin!(b.notified());
        on_a.as_mut().enable();
        on_b.as_mut().enable();
        w.wake("acme/a");
        assert_eq!(on_a.as_mut().poll(&mut cx), Poll::Ready(()));
        assert_eq!(on_b.as_mut().poll(&mut cx), Poll::Pending);
        w.wake_all();
        assert_eq!(on_b.as_mut().poll(&mut cx), Poll::Ready(()));
        // One waker per store, shared by its polls.
        assert!(Arc::ptr_eq(&a, &w.subscribe("acme/a")));
        // A store nobody waits for is not an error.
        w.wake("acme/none");
    }
}
