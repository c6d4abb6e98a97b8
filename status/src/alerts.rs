//! Alerts (DESIGN.md §13): what needs a person, as webhook events and as
//! Prometheus gauges.
//!
//! Every `--alert-interval-secs` a task reads the store summaries and the
//! rollout files of the last fetch and works out which conditions hold:
//! a store refused, failed or offline, a store's release expiring within
//! 30 days, a rollout aborted, the trust root expiring within 30 days. A
//! condition that starts holding is posted once as a `firing` event, one
//! that stops as a `resolved` event, to `--alert-webhook`. The held
//! conditions and the queued events are in the database (migration 0009):
//! events are retried in order at each round while the receiver is down
//! (the oldest dropped past [`MAX_QUEUED`], with a log line), and a
//! restarted service or another replica posts nothing twice. Of several
//! replicas one runs each round (an advisory lock, [`crate::cluster`]).
//! The task never takes the report writers' path, so a slow receiver never
//! holds up a report. An event is posted at least once: a crash between
//! the receiver's answer and forgetting the event posts it again.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::api::{AppState, RolloutEntry, row_state};
use crate::state::SyncState;
use crate::store::AlertEvent;

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

/// Conditions keyed by kind and subject.
pub type Conditions = BTreeMap<(&'static str, String), Condition>;

/// One store as the conditions judge it: its id, its state, and when its
/// verified release expires (none without one).
#[derive(Debug, Clone)]
pub struct StoreSeen {
    pub store: String,
    pub state: SyncState,
    pub release_expires_at: Option<DateTime<Utc>>,
}

/// Every condition that holds at `now` for the service behind `state`.
pub fn evaluate(
    state: &AppState,
    rows: &[crate::store::StoreRow],
    now: DateTime<Utc>,
) -> Conditions {
    let stores: Vec<StoreSeen> = rows
        .iter()
        .filter(|r| r.in_repo)
        .map(|row| StoreSeen {
            store: row.store.clone(),
            state: row_state(state, row, now),
            release_expires_at: row
                .expires_at
                .filter(|_| row.release_valid)
                .and_then(|t| DateTime::from_timestamp(t, 0)),
        })
        .collect();
    let rollouts = state.rollouts.read().map(|r| r.clone()).unwrap_or_default();
    let root = state
        .metrics
        .trust_root_expires_at
        .load(std::sync::atomic::Ordering::Relaxed);
    let root = (root > 0)
        .then(|| DateTime::from_timestamp(root, 0))
        .flatten();
    conditions(&stores, &rollouts, root, now)
}

/// The conditions that hold at `now`, from the stores, the rollout files
/// of the last fetch and the trust root's expiry (none without a root).
/// Pure: the table of DESIGN.md §13's alerts.
pub fn conditions(
    stores: &[StoreSeen],
    rollouts: &[RolloutEntry],
    root_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Conditions {
    let mut out = Conditions::new();
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
    let when = |at: DateTime<Utc>| at.format("%Y-%m-%d %H:%M UTC").to_string();
    for s in stores {
        let store = &s.store;
        let (kind, what) = match s.state {
            SyncState::Refused => (
                "store_refused",
                "refused its release; its last report says why",
            ),
            SyncState::Failed => ("store_failed", "failed its last pass"),
            SyncState::Offline => ("store_offline", "has not reported for three pass intervals"),
            _ => ("", ""),
        };
        if !kind.is_empty() {
            add(kind, store.clone(), format!("{store} {what}"));
        }
        if let Some(at) = s.release_expires_at.filter(|at| *at <= soon) {
            add(
                "release_expiring",
                store.clone(),
                format!(
                    "{store}'s release expires {}: run fleet sign (it re-signs releases that expire soon)",
                    when(at)
                ),
            );
        }
    }
    for entry in rollouts {
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
    if let Some(at) = root_expires_at.filter(|at| *at <= soon) {
        add(
            "root_expiring",
            "trust/root".to_owned(),
            format!(
                "the trust root expires {}: sign a new version (fleet root), or the fleet freezes",
                when(at)
            ),
        );
    }
    out
}

/// The events that take `before` to `now`: `firing` for new conditions,
/// then `resolved` for ones gone, each in key order, as they are queued.
pub fn changes(before: &Conditions, now: &Conditions, at: DateTime<Utc>) -> Vec<AlertEvent> {
    let event = |c: &Condition, status: &str| AlertEvent {
        kind: c.kind.to_owned(),
        status: status.to_owned(),
        subject: c.subject.clone(),
        message: c.message.clone(),
        at: at.timestamp(),
    };
    let fired = now
        .iter()
        .filter(|(k, _)| !before.contains_key(*k))
        .map(|(_, c)| event(c, "firing"));
    let resolved = before
        .iter()
        .filter(|(k, _)| !now.contains_key(*k))
        .map(|(_, c)| event(c, "resolved"));
    fired.chain(resolved).collect()
}

/// The conditions the database says held at the last round.
fn held(rows: Vec<crate::store::HeldAlert>) -> Conditions {
    rows.into_iter()
        .filter_map(|h| {
            // A kind this version does not know (a newer replica's) is
            // left to the replica that knows it.
            let kind = KINDS.iter().find(|k| **k == h.kind).copied()?;
            Some((
                (kind, h.subject.clone()),
                Condition {
                    kind,
                    subject: h.subject,
                    message: h.message,
                },
            ))
        })
        .collect()
}

/// Evaluate every `interval` and keep the gauges; with a `webhook`, record
/// the changes and post them. Where several replicas share the database
/// (`cluster`), one of them runs each round: the held conditions and the
/// queue are in the database, so a restart or another replica posts
/// nothing twice.
pub async fn run(
    state: AppState,
    webhook: Option<String>,
    interval: Duration,
    counts: Counts,
    cluster: Option<Arc<crate::cluster::Cluster>>,
    fetching: bool,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
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
        let Some(url) = &webhook else { continue };
        // Before this replica's first fetch it knows no rollouts and no
        // trust root: it would resolve what still holds.
        if fetching && !state.scanned.any() {
            continue;
        }
        let lock = match &cluster {
            None => None,
            Some(c) => match c.try_lock_alerts().await {
                Ok(Some(lock)) => Some(lock),
                // Another replica runs this round.
                Ok(None) => continue,
                Err(e) => {
                    warn!(error = %e, "Cannot take the alert lock; trying again next round.");
                    continue;
                }
            },
        };
        if let Err(e) = round(&state, &http, url, &current, now).await {
            warn!(error = %e, "The alert round failed; trying again next round.");
        }
        if let Some(lock) = lock {
            lock.release().await;
        }
    }
}

/// One round: record what changed since the held conditions, drop what
/// is queued beyond [`MAX_QUEUED`], then post the queue in order.
async fn round(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
    current: &Conditions,
    now: DateTime<Utc>,
) -> Result<(), crate::store::StoreError> {
    let before = held(state.store.held_alerts().await?);
    let events = changes(&before, current, now);
    if !events.is_empty() {
        state.store.queue_alerts(&events).await?;
    }
    let dropped = state.store.trim_alerts(MAX_QUEUED as i64).await?;
    if dropped > 0 {
        warn!(
            dropped,
            "The alert receiver is unreachable and too many events wait; the oldest were dropped."
        );
    }
    deliver(state, http, url).await
}

/// What is posted to the webhook for a queued event.
#[derive(Debug, Serialize)]
struct Posted<'a> {
    event: &'a str,
    status: &'a str,
    subject: &'a str,
    message: &'a str,
    at: DateTime<Utc>,
}

/// Post queued events in order until one fails; it and the rest wait for
/// the next round. An event is forgotten once the receiver took it.
async fn deliver(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
) -> Result<(), crate::store::StoreError> {
    loop {
        let queued = state.store.queued_alerts(100).await?;
        if queued.is_empty() {
            return Ok(());
        }
        for q in queued {
            let e = &q.event;
            let posted = Posted {
                event: &e.kind,
                status: &e.status,
                subject: &e.subject,
                message: &e.message,
                at: DateTime::from_timestamp(e.at, 0).unwrap_or_default(),
            };
            match http.post(url).json(&posted).send().await {
                Ok(r) if r.status().is_success() => {
                    info!(event = %e.kind, status = %e.status, subject = %e.subject, "Alert sent.");
                    state.store.alert_delivered(q.id).await?;
                }
                Ok(r) => {
                    warn!(
                        status = r.status().as_u16(),
                        "The alert receiver refused an event; retrying next round."
                    );
                    return Ok(());
                }
                Err(e) => {
                    warn!(error = %e, "The alert receiver is unreachable; retrying next round.");
                    return Ok(());
                }
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
        let none = Conditions::new();
        let one: Conditions = [c("store_refused", "acme/soho")].into();
        let fired = changes(&none, &one, at);
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].kind.as_str(), fired[0].status.as_str()),
            ("store_refused", "firing")
        );
        assert!(
            changes(&one, &one, at).is_empty(),
            "still holding: nothing new"
        );
        let moved: Conditions = [c("store_offline", "acme/soho")].into();
        let e = changes(&one, &moved, at);
        assert_eq!(
            e.iter()
                .map(|e| (e.kind.as_str(), e.status.as_str()))
                .collect::<Vec<_>>(),
            vec![("store_offline", "firing"), ("store_refused", "resolved")]
        );
    }

    /// Every kind of DESIGN.md §13, and what does not alert.
    #[test]
    fn every_kind_of_condition() {
        let now = Utc::now();
        let days = |d| Some(now + chrono::Duration::days(d));
        let seen = |store: &str, state, expires| StoreSeen {
            store: store.to_owned(),
            state,
            release_expires_at: expires,
        };
        let stores = [
            seen("acme/a", SyncState::Refused, days(90)),
            seen("acme/b", SyncState::Failed, days(90)),
            seen("acme/c", SyncState::Offline, days(90)),
            seen("acme/d", SyncState::Synced, days(29)),
            seen("acme/e", SyncState::Synced, days(31)),
            seen("acme/f", SyncState::OutOfSync, None),
        ];
        let rollout = |id: &str, state| {
            let text = format!(
                "apiVersion: fleet/v1\nkind: Rollout\nid: {id}\ntenant: acme\nstate: {state}\nsource_commit: abc\nbase_commit: abc\nsources_digest: d\nstarted_at: 2026-12-04T10:00:00Z\ncurrent_wave: 0\nabort_reason: 2 of 2 failed\nwaves: []\n"
            );
            RolloutEntry::Read(Box::new(
                schemas::yaml::decode("rollout.yaml", &text).expect("a rollout file"),
            ))
        };
        let rollouts = [rollout("r1", "aborted"), rollout("r2", "in_progress")];
        let got = conditions(&stores, &rollouts, days(10), now);
        let keys: Vec<(&str, &str)> = got.keys().map(|(k, s)| (*k, s.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                ("release_expiring", "acme/d"),
                ("rollout_aborted", "acme/r1"),
                ("root_expiring", "trust/root"),
                ("store_failed", "acme/b"),
                ("store_offline", "acme/c"),
                ("store_refused", "acme/a"),
            ]
        );
        assert!(
            got[&("rollout_aborted", "acme/r1".to_owned())]
                .message
                .contains("2 of 2 failed")
        );
        assert!(conditions(&stores[4..], &[], days(31), now).is_empty());
    }
}
