//! Holding a verified release until it may apply (DESIGN.md §12): its
//! effective time, then the store's deny windows, both in store-local time
//! (`store.timezone` of the release, read from the time zone database built
//! into the binary). Urgent releases apply at once.
//!
//! A held release is remembered in `pending.json` (its revision and the
//! commit it was fetched at), so a later pass applies it on time from the
//! local mirror when the Git host cannot be reached.

use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use schemas::Release;
use schemas::model::SettingValue;
use serde::{Deserialize, Serialize};
use wire::report::Outcome;

/// The held release's record in the state directory.
pub const PENDING_FILE: &str = "pending.json";

/// Why a verified release is not applied yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// [`Outcome::Scheduled`] or [`Outcome::WaitingWindow`].
    pub outcome: Outcome,
    /// When it will apply; `None` when no window closes within
    /// [`schemas::rollout::CLEAR_HORIZON_DAYS`].
    pub until: Option<DateTime<Utc>>,
    /// For the log and the report.
    pub why: String,
}

/// The store's time zone as the release names it; UTC (with a warning for
/// the report) when it names none this build knows.
pub fn store_zone(release: &Release) -> (Tz, Option<String>) {
    match release.state.settings.get("store.timezone") {
        Some(SettingValue::Str(name)) => match schemas::rollout::time_zone(name) {
            Some(tz) => (tz, None),
            None => (
                chrono_tz::UTC,
                Some(format!(
                    "time zone {name} is not in this reconciler's time zone database: effective time and windows are read as UTC; upgrade the reconciler"
                )),
            ),
        },
        _ => (chrono_tz::UTC, None),
    }
}

/// Whether `release` must wait at `now`, and until when.
pub fn hold(release: &Release, tz: Tz, now: DateTime<Utc>) -> Option<Hold> {
    if release.urgent {
        return None;
    }
    if let Some(at) = release.effective_at {
        let instant = schemas::rollout::local_instant(at, tz);
        if now < instant {
            return Some(Hold {
                outcome: Outcome::Scheduled,
                until: Some(instant),
                why: format!(
                    "revision {} is scheduled for {} store time ({} UTC)",
                    release.revision,
                    at.format("%Y-%m-%d %H:%M"),
                    instant.format("%Y-%m-%d %H:%M")
                ),
            });
        }
    }
    let windows = release.windows.as_ref()?;
    let local = now.with_timezone(&tz).naive_local();
    let open = windows.open_at(local)?;
    let until = windows.next_clear(now, tz);
    Some(Hold {
        outcome: Outcome::WaitingWindow,
        until,
        why: format!(
            "revision {} waits for the deny window {}–{} (store time) to close{}",
            release.revision,
            open.from,
            open.to,
            match until {
                Some(t) => format!(" at {}", t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")),
                None => String::new(),
            }
        ),
    })
}

/// What `pending.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub revision: u64,
    /// The fleet repo commit the release was read from (in the mirror).
    pub commit: String,
    pub until: Option<DateTime<Utc>>,
}

/// The held release, if one is recorded and readable.
pub fn read_pending(state_dir: &Path) -> Option<Pending> {
    let bytes = std::fs::read(state_dir.join(PENDING_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Record the held release.
pub fn write_pending(state_dir: &Path, pending: &Pending) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(pending).expect("plain data");
    release::applied::write_atomically(&state_dir.join(PENDING_FILE), &bytes)
}

/// Forget the held release (applied, or no longer the newest).
pub fn clear_pending(state_dir: &Path) {
    match std::fs::remove_file(state_dir.join(PENDING_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "Cannot remove pending.json."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;
    use schemas::rollout::Windows;

    fn release(effective_at: Option<&str>, windows: Option<&str>, urgent: bool) -> Release {
        let mut state = schemas::StoreState::default();
        state.settings.insert(
            "store.timezone".into(),
            SettingValue::Str("America/New_York".into()),
        );
        Release {
            api_version: schemas::state::ReleaseApiVersion::V2,
            kind: schemas::model::StoreReleaseKind,
            store: "acme/soho".into(),
            revision: 7,
            source_commit: "c".into(),
            issued_at: Utc::now(),
            expires_at: Utc::now(),
            tenant_key: None,
            windows: windows.map(|w| serde_saphyr::from_str::<Windows>(w).expect("windows")),
            effective_at: effective_at
                .map(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M").expect("time")),
            urgent,
            state,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    #[test]
    fn effective_time_then_windows_then_urgent() {
        let r = release(
            Some("2026-12-07T06:00"),
            Some("deny: [{days: [mon], from: \"06:00\", to: \"07:00\"}]"),
            false,
        );
        let (tz, warning) = store_zone(&r);
        assert!(warning.is_none());
        // Before 06:00 New York time (11:00Z): scheduled until then.
        let h = hold(&r, tz, utc("2026-12-07T10:59:00Z")).expect("held");
        assert_eq!(h.outcome, Outcome::Scheduled);
        assert_eq!(h.until, Some(utc("2026-12-07T11:00:00Z")));
        assert!(h.why.contains("2026-12-07 06:00 store time"), "{}", h.why);
        // At 06:00 Monday the deny window is open: it waits until 07:00.
        let h = hold(&r, tz, utc("2026-12-07T11:00:00Z")).expect("held");
        assert_eq!(h.outcome, Outcome::WaitingWindow);
        assert_eq!(h.until, Some(utc("2026-12-07T12:00:00Z")));
        assert!(hold(&r, tz, utc("2026-12-07T12:00:00Z")).is_none());
        // Urgent: nothing holds it.
        let r = release(
            Some("2026-12-07T06:00"),
            Some("deny: [{days: [mon], from: \"06:00\", to: \"07:00\"}]"),
            true,
        );
        assert!(hold(&r, tz, utc("2026-12-07T10:00:00Z")).is_none());
        // An unknown zone: UTC, said.
        let mut r = release(Some("2026-12-07T06:00"), None, false);
        r.state.settings.insert(
            "store.timezone".into(),
            SettingValue::Str("Mars/Olympus_Mons".into()),
        );
        let (tz, warning) = store_zone(&r);
        assert_eq!(tz, chrono_tz::UTC);
        assert!(warning.expect("a warning").contains("Mars/Olympus_Mons"));
    }

    #[test]
    fn pending_round_trips_and_clears() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_pending(dir.path()), None);
        let p = Pending {
            revision: 3,
            commit: "abc".into(),
            until: Some(utc("2026-12-07T11:00:00Z")),
        };
        write_pending(dir.path(), &p).expect("write");
        assert_eq!(read_pending(dir.path()), Some(p));
        clear_pending(dir.path());
        assert_eq!(read_pending(dir.path()), None);
        clear_pending(dir.path());
    }
}
