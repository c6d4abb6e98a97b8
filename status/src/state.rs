//! A store's state on the dashboard (DESIGN.md §6), computed by a pure
//! function of what the repo offers, what the store last reported, when it
//! was last seen and the time. No IO, no clock.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use wire::report::Outcome;

/// The states of DESIGN.md §6: how a store stands against its desired
/// release (not to be confused with `schemas::StoreState`, a store's
/// rendered configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    Synced,
    OutOfSync,
    Scheduled,
    WaitingWindow,
    Drifted,
    Overridden,
    Failed,
    Refused,
    Offline,
    Stale,
    Unenrolled,
}

impl SyncState {
    pub const ALL: [SyncState; 11] = [
        SyncState::Synced,
        SyncState::OutOfSync,
        SyncState::Scheduled,
        SyncState::WaitingWindow,
        SyncState::Drifted,
        SyncState::Overridden,
        SyncState::Failed,
        SyncState::Refused,
        SyncState::Offline,
        SyncState::Stale,
        SyncState::Unenrolled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "synced",
            SyncState::OutOfSync => "out_of_sync",
            SyncState::Scheduled => "scheduled",
            SyncState::WaitingWindow => "waiting_window",
            SyncState::Drifted => "drifted",
            SyncState::Overridden => "overridden",
            SyncState::Failed => "failed",
            SyncState::Refused => "refused",
            SyncState::Offline => "offline",
            SyncState::Stale => "stale",
            SyncState::Unenrolled => "unenrolled",
        }
    }

    /// The state in words: `out of sync`.
    pub fn label(self) -> &'static str {
        match self {
            SyncState::OutOfSync => "out of sync",
            SyncState::WaitingWindow => "waiting for window",
            other => other.as_str(),
        }
    }

    /// What the state means, for the store page.
    pub fn meaning(self) -> &'static str {
        match self {
            SyncState::Synced => {
                "The store runs its desired revision, and its last pass found no drift and no overrides."
            }
            SyncState::OutOfSync => {
                "The store has not applied its desired revision yet: its applied revision is below the one the repo offers."
            }
            SyncState::Scheduled => {
                "The store verified its new release and keeps it until its effective time (store-local), when it applies it, WAN or not."
            }
            SyncState::WaitingWindow => {
                "The store verified its new release and holds it while one of its deny windows is open (store-local); it applies it when the window closes."
            }
            SyncState::Drifted => {
                "The last pass found local edits on the store's POS and put the repo's version back."
            }
            SyncState::Overridden => {
                "Some users or roles are under a local override: the reconciler leaves them as the store set them."
            }
            SyncState::Failed => {
                "The last pass failed; the store keeps its last applied configuration and retries."
            }
            SyncState::Refused => {
                "The reconciler refused the release (signature, expiry, rollback or store mismatch) and keeps its last applied configuration."
            }
            SyncState::Offline => {
                "No report for three report intervals, or never since it was enrolled."
            }
            SyncState::Stale => {
                "The store's release in the repo has expired or expires soon; stores refuse expired releases."
            }
            SyncState::Unenrolled => {
                "No active node key: the store was never enrolled, or its key was revoked."
            }
        }
    }

    /// What an operator should do about it.
    pub fn action(self) -> &'static str {
        match self {
            SyncState::Synced => "Nothing to do.",
            SyncState::OutOfSync => {
                "It usually catches up on its next pass. If it stays behind, read the errors of its latest report."
            }
            SyncState::Scheduled => {
                "Nothing to do: it applies on time. To apply now, sign again with fleet sign --urgent."
            }
            SyncState::WaitingWindow => {
                "Nothing to do: it applies when the window closes. A fix that cannot wait: fleet sign --urgent."
            }
            SyncState::Drifted => {
                "Read the drift diffs below. If the local edit was wanted, make it in the fleet repo instead."
            }
            SyncState::Overridden => {
                "Check the overrides below: end the override on the store, or move the change into the fleet repo."
            }
            SyncState::Failed => {
                "Read the errors of the latest report; check the store's edge backend and its network."
            }
            SyncState::Refused => {
                "Read the refusal below. Usually: re-sign the release (fleet sign) and push, or fix the store's pinned keys."
            }
            SyncState::Offline => {
                "Check that the store's server and reconciler run and can reach fleet-status."
            }
            SyncState::Stale => "Refresh the release: run fleet sign and push.",
            SyncState::Unenrolled => {
                "Create a bootstrap token (fleet-status token create TENANT/STORE) and enroll the store's reconciler with it."
            }
        }
    }
}

/// What the fleet repo offers a store, as the status service verified it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredInfo {
    /// Revision of a release that verified; `None` if none did.
    pub revision: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the release verified (signature, store, expiry…).
    pub valid: bool,
}

/// The parts of the last report that decide the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastReport {
    pub outcome: Outcome,
    pub applied_revision: Option<u64>,
    pub drift: usize,
    pub overridden: usize,
}

/// Everything the state depends on.
#[derive(Debug, Clone)]
pub struct StateInputs<'a> {
    /// Whether a node key that is not revoked is enrolled for the store.
    pub enrolled: bool,
    pub desired: &'a DesiredInfo,
    pub last_report: Option<&'a LastReport>,
    pub last_seen: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// The reconcilers' pass interval: a store is offline after three
    /// intervals without a report.
    pub interval: Duration,
    /// A release expiring within this window makes the store `stale`.
    pub stale_within: Duration,
}

/// The state of one store. The first rule that holds wins:
///
/// 1. no enrolled node → `unenrolled`;
/// 2. no report ever, or none for 3 intervals → `offline`;
/// 3. the release expired or expires within `stale_within` → `stale`;
/// 4. last outcome `refused` / `failed` → `refused` / `failed`;
/// 5. applied revision below the desired one → `out_of_sync`;
/// 6. overrides reported → `overridden`; drift reported → `drifted`;
/// 7. otherwise `synced`.
pub fn store_state(i: &StateInputs<'_>) -> SyncState {
    if !i.enrolled {
        return SyncState::Unenrolled;
    }
    let (Some(report), Some(seen)) = (i.last_report, i.last_seen) else {
        return SyncState::Offline;
    };
    if i.now - seen > i.interval * 3 {
        return SyncState::Offline;
    }
    if let Some(expires) = i.desired.expires_at
        && expires - i.now <= i.stale_within
    {
        return SyncState::Stale;
    }
    match report.outcome {
        Outcome::Refused => return SyncState::Refused,
        Outcome::Failed => return SyncState::Failed,
        Outcome::Scheduled => return SyncState::Scheduled,
        Outcome::WaitingWindow => return SyncState::WaitingWindow,
        Outcome::Converged | Outcome::NoChange | Outcome::DriftCorrected => {}
    }
    if let Some(desired) = i.desired.revision
        && report.applied_revision.is_none_or(|a| a < desired)
    {
        return SyncState::OutOfSync;
    }
    if report.overridden > 0 {
        return SyncState::Overridden;
    }
    if report.drift > 0 || report.outcome == Outcome::DriftCorrected {
        return SyncState::Drifted;
    }
    SyncState::Synced
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("valid time")
    }

    fn report(
        outcome: Outcome,
        applied: Option<u64>,
        drift: usize,
        overridden: usize,
    ) -> LastReport {
        LastReport {
            outcome,
            applied_revision: applied,
            drift,
            overridden,
        }
    }

    /// (name, enrolled, desired, last report, seen secs ago, expected)
    type Row = (
        &'static str,
        bool,
        DesiredInfo,
        Option<LastReport>,
        Option<i64>,
        SyncState,
    );

    #[test]
    fn state_table() {
        let day = 86_400;
        let desired = |rev: Option<u64>, expires_in: i64| DesiredInfo {
            revision: rev,
            expires_at: Some(t(expires_in)),
            valid: true,
        };
        let fresh = desired(Some(5), 90 * day);
        let no_release = DesiredInfo::default();
        use Outcome as O;
        use SyncState as S;
        // (name, enrolled, desired, last report, seen secs ago, expected)
        let rows: Vec<Row> = vec![
            ("no node", false, fresh.clone(), None, None, S::Unenrolled),
            (
                "no node but old reports",
                false,
                fresh.clone(),
                Some(report(O::Converged, Some(5), 0, 0)),
                Some(10),
                S::Unenrolled,
            ),
            (
                "enrolled, never reported",
                true,
                fresh.clone(),
                None,
                None,
                S::Offline,
            ),
            (
                "silent for 3 intervals and a second",
                true,
                fresh.clone(),
                Some(report(O::Converged, Some(5), 0, 0)),
                Some(181),
                S::Offline,
            ),
            (
                "silent for exactly 3 intervals",
                true,
                fresh.clone(),
                Some(report(O::Converged, Some(5), 0, 0)),
                Some(180),
                S::Synced,
            ),
            (
                "synced",
                true,
                fresh.clone(),
                Some(report(O::Converged, Some(5), 0, 0)),
                Some(10),
                S::Synced,
            ),
            (
                "no change at desired",
                true,
                fresh.clone(),
                Some(report(O::NoChange, Some(5), 0, 0)),
                Some(10),
                S::Synced,
            ),
            (
                "behind",
                true,
                fresh.clone(),
                Some(report(O::NoChange, Some(4), 0, 0)),
                Some(10),
                S::OutOfSync,
            ),
            (
                "nothing applied yet",
                true,
                fresh.clone(),
                Some(report(O::NoChange, None, 0, 0)),
                Some(10),
                S::OutOfSync,
            ),
            (
                "refused",
                true,
                fresh.clone(),
                Some(report(O::Refused, Some(4), 0, 0)),
                Some(10),
                S::Refused,
            ),
            (
                "holding a release for its effective time",
                true,
                fresh.clone(),
                Some(report(O::Scheduled, Some(4), 0, 0)),
                Some(10),
                S::Scheduled,
            ),
            (
                "holding a release while a window is open",
                true,
                fresh.clone(),
                Some(report(O::WaitingWindow, Some(4), 0, 0)),
                Some(10),
                S::WaitingWindow,
            ),
            (
                "scheduled but silent for long: offline first",
                true,
                fresh.clone(),
                Some(report(O::Scheduled, Some(4), 0, 0)),
                Some(181),
                S::Offline,
            ),
            (
                "failed",
                true,
                fresh.clone(),
                Some(report(O::Failed, Some(4), 0, 0)),
                Some(10),
                S::Failed,
            ),
            (
                "drift corrected",
                true,
                fresh.clone(),
                Some(report(O::DriftCorrected, Some(5), 2, 0)),
                Some(10),
                S::Drifted,
            ),
            (
                "overridden",
                true,
                fresh.clone(),
                Some(report(O::NoChange, Some(5), 0, 1)),
                Some(10),
                S::Overridden,
            ),
            (
                "overridden wins over drift",
                true,
                fresh.clone(),
                Some(report(O::DriftCorrected, Some(5), 1, 1)),
                Some(10),
                S::Overridden,
            ),
            (
                "expired release",
                true,
                desired(Some(5), -10),
                Some(report(O::NoChange, Some(5), 0, 0)),
                Some(10),
                S::Stale,
            ),
            (
                "expires within 14 days",
                true,
                desired(Some(5), 13 * day),
                Some(report(O::NoChange, Some(5), 0, 0)),
                Some(10),
                S::Stale,
            ),
            (
                "expires in 15 days",
                true,
                desired(Some(5), 15 * day),
                Some(report(O::NoChange, Some(5), 0, 0)),
                Some(10),
                S::Synced,
            ),
            (
                "stale wins over refused",
                true,
                desired(None, -10),
                Some(report(O::Refused, Some(5), 0, 0)),
                Some(10),
                S::Stale,
            ),
            (
                "offline wins over stale",
                true,
                desired(Some(5), -10),
                Some(report(O::NoChange, Some(5), 0, 0)),
                Some(1000),
                S::Offline,
            ),
            (
                "not released yet",
                true,
                no_release,
                Some(report(O::NoChange, None, 0, 0)),
                Some(10),
                S::Synced,
            ),
        ];
        for (name, enrolled, desired, last, seen_ago, expected) in rows {
            let inputs = StateInputs {
                enrolled,
                desired: &desired,
                last_report: last.as_ref(),
                last_seen: seen_ago.map(|s| t(-s)),
                now: t(0),
                interval: Duration::seconds(60),
                stale_within: Duration::days(14),
            };
            assert_eq!(store_state(&inputs), expected, "{name}");
        }
    }
}
