//! The long-poll, `GET /api/v1/desired?after=<rev>&wait=<s>` (DESIGN.md
//! §6, §13): its answer, and the operator actions it hands to the store.
//!
//! The answer comes as soon as a newer verified revision exists for the
//! calling store or an operator action waits for it, when the wait runs
//! out, or at once when the service stops. A store answers an action:
//! - `reconcile`: with the report of a pass started after it got the
//!   action, naming the action's id in [`crate::report::Report::actions`];
//! - `support_bundle`: by uploading a bundle to
//!   [`SUPPORT_BUNDLES_PATH`]`?action=<id>`.
//!
//! An action handed out and not answered is handed out again after
//! [`REDELIVER_AFTER_SECS`]; one not answered within [`EXPIRES_AFTER_SECS`]
//! of being requested expires. A store may therefore get an action twice,
//! and doing it twice is harmless for both kinds.

use serde::{Deserialize, Serialize};

/// The long-poll's path.
pub const PATH: &str = "/api/v1/desired";

/// Where a store uploads a support bundle (a node-signed `.tar.gz`).
pub const SUPPORT_BUNDLES_PATH: &str = "/api/v1/support-bundles";

/// An action delivered and not answered is handed out again after this.
pub const REDELIVER_AFTER_SECS: i64 = 120;

/// An action not answered this long after it was requested expires.
pub const EXPIRES_AFTER_SECS: i64 = 3600;

/// What an operator can ask of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Run a pass now, whatever the interval says.
    Reconcile,
    /// Collect a support bundle (`fleet-reconciler diagnose`) and upload it.
    SupportBundle,
}

impl ActionKind {
    pub const ALL: [ActionKind; 2] = [ActionKind::Reconcile, ActionKind::SupportBundle];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Reconcile => "reconcile",
            ActionKind::SupportBundle => "support_bundle",
        }
    }

    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// For people: what the button says.
    pub fn label(self) -> &'static str {
        match self {
            ActionKind::Reconcile => "Reconcile now",
            ActionKind::SupportBundle => "Collect support bundle",
        }
    }
}

/// An operator action handed to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub id: u64,
    pub kind: ActionKind,
}

/// The long-poll's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// The calling store (from its key, never from the request).
    pub store: String,
    /// The newest revision whose release verifies; none before a fetch.
    pub desired_revision: Option<u64>,
    /// The commit it was read at.
    pub commit: Option<String>,
    /// A revision newer than the one asked `after` exists.
    pub changed: bool,
    /// Operator actions waiting for this store, oldest first. Absent from
    /// the answers of services older than actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_refused() {
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::parse(k.as_str()), Some(k));
            let json = serde_json::to_string(&k).expect("json");
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(ActionKind::parse("reboot"), None);
        assert!(serde_json::from_str::<ActionKind>("\"reboot\"").is_err());
    }

    #[test]
    fn an_answer_without_actions_reads_as_before() {
        let old = r#"{"store":"acme/soho","desired_revision":3,"commit":"ab","changed":true}"#;
        let d: Desired = serde_json::from_str(old).expect("old answer");
        assert!(d.actions.is_empty());
        assert_eq!(serde_json::to_string(&d).expect("json"), old);
    }
}
