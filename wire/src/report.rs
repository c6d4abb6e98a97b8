//! What a reconcile pass reports: outcome, revisions, changes, drift,
//! overrides, refusals, errors and durations (DESIGN.md §6 reports).

use chrono::{DateTime, Utc};
use schemas::diff::{Change, EntityChange};
use serde::{Deserialize, Serialize};

/// The outcome of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new revision was applied.
    Converged,
    /// Nothing to do.
    NoChange,
    /// The revision was already applied but local edits were reverted.
    DriftCorrected,
    /// Something failed; the pass will be retried.
    Failed,
    /// The release was refused; the last applied state stays.
    Refused,
    /// A verified release waits for its effective time (DESIGN.md §12);
    /// the last applied state stays until then.
    Scheduled,
    /// A verified release waits for a deny window to close.
    WaitingWindow,
}

impl Outcome {
    /// The process exit code of `fleet-reconciler once` (DESIGN.md §5).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Converged
            | Outcome::NoChange
            | Outcome::DriftCorrected
            | Outcome::Scheduled
            | Outcome::WaitingWindow => 0,
            Outcome::Failed => 1,
            Outcome::Refused => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Converged => "converged",
            Outcome::NoChange => "no_change",
            Outcome::DriftCorrected => "drift_corrected",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Scheduled => "scheduled",
            Outcome::WaitingWindow => "waiting_window",
        }
    }
}

/// A refusal as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalReport {
    pub code: String,
    pub message: String,
}

/// One drifted entity: what the store had, what the repo says, and a
/// human-readable diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    #[serde(flatten)]
    pub change: EntityChange,
    /// Unified diff of the entity, store's version → repo's version.
    pub diff: String,
}

/// A report of one pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub store: schemas::StoreId,
    pub outcome: Outcome,
    /// The revision the repo offers (if a release was read).
    pub desired_revision: Option<u64>,
    /// The revision applied at the end of the pass.
    pub applied_revision: Option<u64>,
    /// The commit the release was rendered from.
    pub commit: Option<String>,
    /// The commit fetched.
    pub fetched_commit: Option<String>,
    /// Entities written, applied → desired.
    pub changes: Vec<EntityChange>,
    pub drift: Vec<Drift>,
    /// Users and roles left alone under a local override.
    pub overridden: Vec<EntityChange>,
    pub refusal: Option<RefusalReport>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub reconciler_version: String,
    /// Reports lost before this one because the outbox was full while the
    /// status service was unreachable (DESIGN.md §5: a loss is reported).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_reports: u64,
    /// The trust root version the store trusts after this pass's walk
    /// (DESIGN.md §10); absent for a store that pins bare `*.pub` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_version: Option<u64>,
    /// Entities left out of this pass because their secret value could not
    /// be decrypted here; everything else converged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<HeldBack>,
    /// The release `apiVersion`s this reconciler reads (DESIGN.md §9), so
    /// `fleet sign --status-url` can warn before it signs a release the
    /// store would refuse. Absent from reports of reconcilers that read only
    /// `fleet/v1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_api_versions: Vec<String>,
    /// With `scheduled` or `waiting_window`: when the store will apply the
    /// release it holds (its effective time, or when the window closes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_until: Option<DateTime<Utc>>,
    /// The operator actions (`reconcile`, [`crate::desired`]) this pass
    /// answers: it started after the store got them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<u64>,
    /// What the store's staff marked unavailable (86) there, as the edge
    /// said at this pass: store-owned, never reverted (DESIGN.md §14).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<crate::edge::Unavailable>,
}

/// An entity the store left out of a pass because it could not decrypt
/// its secret value (DESIGN.md §11): a new Pi before its rewrap, a value
/// encrypted for other stores. The entity keeps what the store had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBack {
    pub kind: schemas::diff::EntityKind,
    pub id: String,
    /// Why, for people; never the value.
    pub reason: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A unified diff of one entity change for people.
pub fn human_diff(change: &EntityChange) -> String {
    let (before, after) = match &change.change {
        Change::Added { value } => (String::new(), pretty(value)),
        Change::Removed { value } => (pretty(value), String::new()),
        Change::Changed { fields } => {
            let mut b = String::new();
            let mut a = String::new();
            for f in fields {
                if let Some(v) = &f.before {
                    b.push_str(&format!("{}: {}\n", f.field, v));
                }
                if let Some(v) = &f.after {
                    a.push_str(&format!("{}: {}\n", f.field, v));
                }
            }
            (b, a)
        }
    };
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .header(
            &format!("{} {} (store)", change.kind, change.id),
            &format!("{} {} (repo)", change.kind, change.id),
        )
        .to_string()
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}
