//! Alerts (DESIGN.md §13): what needs a person, as webhook events and as
//! Prometheus gauges.
//!
//! Every `--alert-interval-secs` a task reads the store summaries and the
//! rollout files of the last fetch and works out which conditions hold:
//! a store refused, failed or offline, a store's release expiring within
//! 30 days, a rollout aborted, the trust root expiring within 30 days. A
//! condition that starts holding is posted once as a `firing` event, one
//! that stops as a `resolved` event, to `--alert-webhook`. Events queue in
//! memory in order and are retried at each round while the receiver is
//! down (the oldest dropped past [`MAX_QUEUED`], with a log line). The task
//! only reads the database, so a slow receiver never holds up a report.
//! A restarted service posts the conditions that hold again, once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::api::{AppState, RolloutEntry, row_state};
use crate::state::SyncState;

/// Releases and roots expiring within this are alerted on.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Most events waiting for the receiver.
pub const MAX_QUEUED: usize = 10_000;

/// The kinds of event, as `event` in the JSON and the gauge label.
pub const KINDS: [&str; 6] = [
    "store_refused",
    "store_failed",
    "store_offline",
    "release_expiring",
    "rollout_aborted",
    "root_expiring",
];

/// Conditions that hold now, by kind: the gauges of `/metrics`.
pub type Counts = Arc<RwLock<BTreeMap<&'static str, u64>>>;

/// A condition that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: &'static str,
    /// The store (`tenant/store`), the rollout (`tenant/id`) or `trust/root`.
    pub subject: String,
    pub message: String,
}

/// What is posted to the webhook.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    pub event: &'static str,
    /// `firing` or `resolved`.
    pub status: &'static str,
    pub subject: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// Every condition that holds at `now`, keyed by kind and subject.
pub fn evaluate(
    state: &AppState,
    rows: &[crate::store::StoreRow],
    now: DateTime<Utc>,
) -> BTreeMap<(&'static str, String), Condition> {
    let mut out = BTreeMap::new();
    let mut add = |kind: &'static str, subject: String, message: String| {
        out.insert(
            (kind, subject.clone()),
            Condition {
                kind,
                subject,
                message,
            },
        );
    };
    let soon = now + chrono::Duration::days(EXPIRY_WARNING_DAYS);
    for row in rows.iter().filter(|r| r.in_repo) {
        let store = row.store.clone();
        match row_state(state, row, now) {
            SyncState::Refused => add(
                "store_refused",
                store.clone(),
                format!("{store} refused its release; its last report says why"),
            ),
            SyncState::Failed => add(
                "store_failed",
                store.clone(),
                format!("{store}'s last pass failed"),
            ),
            SyncState::Offline => add(
                "store_offline",
                store.clone(),
                format!("{store} has not reported for three pass intervals"),
            ),
            _ => {}
        }
        if let Some(at) = row
            .expires_at
            .filter(|_| row.release_valid)
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .filter(|at| *at <= soon)
        {
            add(
                "release_expiring",
                store.clone(),
                format!(
                    "{store}'s release expires {}: run fleet sign (it re-signs releases that expire soon)",
                    at.format("%Y-%m-%d %H:%M UTC")
                ),
            );
        }
    }
    if let Ok(files) = state.rollouts.read() {
        for entry in files.iter() {
            if let RolloutEntry::Read(f) = entry
                && f.state == schemas::rollout::RolloutState::Aborted
            {
                add(
                    "rollout_aborted",
                    format!("{}/{}", f.tenant, f.id),
                    format!(
                        "rollout {} of {} aborted: {}",
                        f.id,
                        f.tenant,
                        f.abort_reason.as_deref().unwrap_or("(no reason recorded)")
                    ),
                );
            }
        }
    }
    let root = state
        .metrics
        .trust_root_expires_at
        .load(std::sync::atomic::Ordering::Relaxed);
    if let Some(at) = (root > 0)
        .then(|| DateTime::from_timestamp(root, 0))
        .flatten()
        .filter(|at| *at <= soon)
    {
        add(
            "root_expiring",
            "trust/root".to_owned(),
            format!(
                "the trust root expires {}: sign a new version (fleet root), or the fleet freezes",
                at.format("%Y-%m-%d %H:%M UTC")
            ),
        );
    }
    out
}

/// The events that take `before` to `now`: `firing` for new conditions,
/// `resolved` for ones gone, in key order.
pub fn changes(
    before: &BTreeMap<(&'static str, String), Condition>,
    now: &BTreeMap<(&'static str, String), Condition>,
    at: DateTime<Utc>,
) -> Vec<Event> {
    let mut out = Vec::new();
    for (key, c) in now {
        if !before.contains_key(key) {
            out.push(Event {
                event: c.kind,
                status: "firing",
                subject: c.subject.clone(),
                message: c.message.clone(),
                at,
            });
        }
    }
    for (key, c) in before {
        if !now.contains_key(key) {
            out.push(Event {
                event: c.kind,
                status: "resolved",
                subject: c.subject.clone(),
                message: c.message.clone(),
                at,
            });
        }
    }
    out
}

/// Evaluate every `interval`, keep the gauges, post changes to `webhook`.
pub async fn run(state: AppState, webhook: Option<String>, interval: Duration, counts: Counts) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut holding = BTreeMap::new();
    let mut queue: VecDeque<Event> = VecDeque::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let rows = match state.store.list_stores().await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "Cannot read the stores for alerts; trying again next round.");
                continue;
            }
        };
        let now = state.clock.now();
        let current = evaluate(&state, &rows, now);
        if let Ok(mut c) = counts.write() {
            c.clear();
            for kind in KINDS {
                c.insert(kind, 0);
            }
            for (kind, _) in current.keys() {
                *c.entry(kind).or_insert(0) += 1;
            }
        }
        if let Some(url) = &webhook {
            queue.extend(changes(&holding, &current, now));
            let over = queue.len().saturating_sub(MAX_QUEUED);
            if over > 0 {
                queue.drain(..over);
                warn!(
                    dropped = over,
                    "The alert receiver is unreachable and too many events wait; the oldest were dropped."
                );
            }
            deliver(&http, url, &mut queue).await;
        }
        holding = current;
    }
}

/// Post queued events in order until one fails; it and the rest wait.
async fn deliver(http: &reqwest::Client, url: &str, queue: &mut VecDeque<Event>) {
    while let Some(event) = queue.front() {
        match http.post(url).json(event).send().await {
            Ok(r) if r.status().is_success() => {
                info!(event = event.event, status = event.status, subject = %event.subject, "Alert sent.");
                queue.pop_front();
            }
            Ok(r) => {
                warn!(
                    status = r.status().as_u16(),
                    waiting = queue.len(),
                    "The alert receiver refused an event; retrying next round."
                );
                return;
            }
            Err(e) => {
                warn!(error = %e, waiting = queue.len(), "The alert receiver is unreachable; retrying next round.");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(kind: &'static str, subject: &str) -> ((&'static str, String), Condition) {
        (
            (kind, subject.to_owned()),
            Condition {
                kind,
                subject: subject.to_owned(),
                message: format!("{kind} {subject}"),
            },
        )
    }

    #[test]
    fn a_condition_fires_once_and_resolves_once() {
        let at = Utc::now();
        let none = BTreeMap::new();
        let one: BTreeMap<_, _> = [c("store_refused", "acme/soho")].into();
        let fired = changes(&none, &one, at);
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].event, fired[0].status),
            ("store_refused", "firing")
        );
        assert!(
            changes(&one, &one, at).is_empty(),
            "still holding: nothing new"
        );
        let moved: BTreeMap<_, _> = [c("store_offline", "acme/soho")].into();
        let e = changes(&one, &moved, at);
        assert_eq!(
            e.iter().map(|e| (e.event, e.status)).collect::<Vec<_>>(),
            vec![("store_offline", "firing"), ("store_refused", "resolved")]
        );
    }
}
