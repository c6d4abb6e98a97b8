//! Store-owned availability (DESIGN.md §14): staff with `menu.sold_out`
//! mark a variation unavailable (86) at the store; it stays so until the
//! store's business day ends (`store.day_end`, local time in
//! `store.timezone`, 04:00 when unset), when it is available again without
//! anyone writing. The reconciler never plans or reverts it: `/state` shows
//! it under `store_owned`, orders refuse it, and the reconciler reports it.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use schemas::diff::EntityKind;
use serde_json::{Value, json};
use sqlx::{Row, SqliteConnection};
use wire::edge::Unavailable;

use crate::audit::Actor;
use crate::db::Db;
use crate::model::MemberKind;
use crate::store;

/// When the business day ends when `store.day_end` is not set.
pub const DEFAULT_DAY_END: (u32, u32) = (4, 0);

/// The first end of the business day after `now`: `day_end` local time in
/// `tz` (a day-end that falls in a daylight-saving gap is taken at the
/// first valid minute after it).
pub fn next_day_end<Tz: TimeZone>(
    now: DateTime<Utc>,
    tz: &Tz,
    day_end: (u32, u32),
) -> DateTime<Utc> {
    let end = NaiveTime::from_hms_opt(day_end.0, day_end.1, 0).unwrap_or(NaiveTime::MIN);
    let local = now.with_timezone(tz).naive_local();
    let mut day = local.date();
    for _ in 0..3 {
        let mut at = day.and_time(end);
        // Skip forward over a gap (at most a few hours).
        for _ in 0..(24 * 60) {
            if let Some(t) = tz.from_local_datetime(&at).earliest() {
                let t = t.with_timezone(&Utc);
                if t > now {
                    return t;
                }
                break;
            }
            at += Duration::minutes(1);
        }
        day = day.succ_opt().unwrap_or(day);
    }
    now + Duration::days(1)
}

/// Why availability could not be set.
#[derive(Debug, thiserror::Error)]
pub enum AvailabilityError {
    #[error("`{0}` is no variation on the menu")]
    NotFound(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// The store's day end and time zone, from the applied settings.
async fn day_end_of(
    conn: &mut SqliteConnection,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, sqlx::Error> {
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    let end = text(store::body(conn, EntityKind::Setting, "store.day_end").await?)
        .and_then(|s| schemas::registry::time_of_day(&s))
        .unwrap_or(DEFAULT_DAY_END);
    let tz = text(store::body(conn, EntityKind::Setting, "store.timezone").await?)
        .and_then(|s| s.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(chrono_tz::UTC);
    Ok(next_day_end(now, &tz, end))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Mark `variation` unavailable (until the day ends) or available again,
/// recorded in the audit chain with who and where, in one transaction.
pub async fn set(
    db: &Db,
    variation: &str,
    available: bool,
    actor: &Actor,
    device: &str,
) -> Result<Option<Unavailable>, AvailabilityError> {
    let now = Utc::now();
    let mut tx = db.writer.begin().await?;
    if store::member_parent(&mut tx, MemberKind::Variation, variation)
        .await?
        .is_none()
    {
        return Err(AvailabilityError::NotFound(variation.to_owned()));
    }
    let entry = if available {
        sqlx::query("DELETE FROM unavailable WHERE variation = ?")
            .bind(variation)
            .execute(&mut *tx)
            .await?;
        None
    } else {
        let until = day_end_of(&mut tx, now).await?;
        let entry = Unavailable {
            variation: variation.to_owned(),
            set_by: actor.name.clone(),
            device: device.to_owned(),
            set_at: rfc3339(now),
            until: rfc3339(until),
        };
        sqlx::query(
            "INSERT INTO unavailable (variation, set_by, device, set_at, until) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (variation) DO UPDATE SET set_by = excluded.set_by, device = excluded.device, \
             set_at = excluded.set_at, until = excluded.until",
        )
        .bind(variation)
        .bind(&entry.set_by)
        .bind(device)
        .bind(&entry.set_at)
        .bind(until.timestamp())
        .execute(&mut *tx)
        .await?;
        Some(entry)
    };
    crate::staff::record(
        &mut tx,
        actor,
        "availability",
        variation,
        &json!({"device": device, "available": available, "until": entry.as_ref().map(|e| e.until.clone())}),
    )
    .await?;
    tx.commit().await?;
    Ok(entry)
}

/// Every variation unavailable now, by variation.
pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<Unavailable>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT variation, set_by, device, set_at, until FROM unavailable WHERE until > ? ORDER BY variation",
    )
    .bind(Utc::now().timestamp())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let until: i64 = r.try_get("until")?;
            Ok(Unavailable {
                variation: r.try_get("variation")?,
                set_by: r.try_get("set_by")?,
                device: r.try_get("device")?,
                set_at: r.try_get("set_at")?,
                until: rfc3339(DateTime::<Utc>::from_timestamp(until, 0).unwrap_or_default()),
            })
        })
        .collect()
}

/// When `variation` is available again, if it is unavailable now.
pub async fn unavailable_until(
    conn: &mut SqliteConnection,
    variation: &str,
) -> Result<Option<String>, sqlx::Error> {
    let until: Option<i64> =
        sqlx::query_scalar("SELECT until FROM unavailable WHERE variation = ? AND until > ?")
            .bind(variation)
            .bind(Utc::now().timestamp())
            .fetch_optional(conn)
            .await?;
    Ok(until.map(|u| rfc3339(DateTime::<Utc>::from_timestamp(u, 0).unwrap_or_default())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Europe::Berlin};
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    #[test]
    fn the_next_day_end_is_local_time_in_the_stores_zone() {
        // 22:00 in New York (EST, UTC-5): the next 04:00 is tomorrow's.
        assert_eq!(
            next_day_end(utc("2026-12-05T03:00:00Z"), &New_York, (4, 0)),
            utc("2026-12-05T09:00:00Z")
        );
        // 03:59 local: today's 04:00, a minute later.
        assert_eq!(
            next_day_end(utc("2026-12-05T08:59:00Z"), &New_York, (4, 0)),
            utc("2026-12-05T09:00:00Z")
        );
        // Exactly 04:00 local: the next day's.
        assert_eq!(
            next_day_end(utc("2026-12-05T09:00:00Z"), &New_York, (4, 0)),
            utc("2026-12-06T09:00:00Z")
        );
        // 02:30 does not exist in Berlin on 2026-03-29 (clocks go 02:00 → 03:00).
        assert_eq!(
            next_day_end(utc("2026-03-28T23:00:00Z"), &Berlin, (2, 30)),
            utc("2026-03-29T01:00:00Z")
        );
    }

    proptest! {
        /// The day end is after now, within a day and an hour (a DST
        /// change), and at the asked local time unless that time did not
        /// exist that day.
        #[test]
        fn the_day_end_is_the_next_local_occurrence(secs in 1_700_000_000i64..1_900_000_000, h in 0u32..24, m in 0u32..60) {
            let now = DateTime::<Utc>::from_timestamp(secs, 0).expect("a time");
            for tz in [New_York, Berlin] {
                let end = next_day_end(now, &tz, (h, m));
                prop_assert!(end > now);
                prop_assert!(end - now <= Duration::hours(25), "{now} {end}");
                let local = end.with_timezone(&tz);
                let asked = NaiveTime::from_hms_opt(h, m, 0).expect("a time");
                if local.time() != asked {
                    // Only when the asked time fell in a gap: then the
                    // first minute after it.
                    prop_assert!(tz.from_local_datetime(&local.date_naive().and_time(asked)).earliest().is_none());
                }
            }
        }
    }
}
