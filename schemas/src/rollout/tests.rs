use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use proptest::prelude::*;

use super::*;

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn local(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").expect("a local time")
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const NEW_YORK: Tz = chrono_tz::America::New_York;

#[test]
fn the_design_example_decodes_and_assigns_canary_east_and_the_rest() {
    let r: Rollout = yaml(
        "waves:\n\
         - {name: canary, select: {labels: {canary: \"true\"}}}\n\
         - {name: east, select: {labels: {region: east}}, max_stores: 25%}\n\
         - {name: rest}\n\
         bake: 30m\n\
         abort: {failed_percent: 10, min_stores: 3, rollback: true}\n",
    );
    assert_eq!(r.bake, Some(Bake(std::time::Duration::from_secs(1800))));
    assert_eq!(r.waves[1].max_stores, Some(MaxStores::Percent(25)));
    assert!(r.waves[2].is_catch_all());
    let canary = labels(&[("canary", "true"), ("region", "east")]);
    let east = labels(&[("region", "east")]);
    let west = labels(&[("region", "west")]);
    let ids: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    let stores: Vec<StoreRef<'_>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| StoreRef {
            id,
            labels: match i {
                0 => &canary,
                1..=4 => &east,
                _ => &west,
            },
        })
        .collect();
    let (waves, unselected) = assign_waves(&r, &stores);
    assert!(unselected.is_empty());
    // 25% of 8 is 2: two of the four east stores spill into the rest.
    assert_eq!(waves[0], ["s0"]);
    assert_eq!(waves[1], ["s1", "s2"]);
    assert_eq!(waves[2], ["s3", "s4", "s5", "s6", "s7"]);
    // It serializes back to what it read.
    let again: Rollout = yaml(&serde_saphyr::to_string(&r).expect("yaml"));
    assert_eq!(again, r);
}

#[test]
fn bad_values_name_their_rule() {
    let err = |text: &str| match serde_saphyr::from_str::<Rollout>(text) {
        Ok(r) => panic!("{text} decoded: {r:?}"),
        Err(e) => e.to_string(),
    };
    assert!(err("waves: [{name: a, max_stores: 25 percent}]").contains("[rollout/max-stores]"));
    assert!(err("waves: [{name: a, max_stores: -1}]").contains("[rollout/max-stores]"));
    assert!(err("waves: [{name: a}]\nbake: soon").contains("[rollout/duration]"));
    assert!(err("waves: [{name: a}]\nbake: 90d").contains("[rollout/duration]"));
    let err = |text: &str| match serde_saphyr::from_str::<Windows>(text) {
        Ok(r) => panic!("{text} decoded: {r:?}"),
        Err(e) => e.to_string(),
    };
    assert!(
        err("deny: [{days: [mon], from: \"25:00\", to: \"26:00\"}]").contains("[windows/time]")
    );
    assert!(err("deny: [{days: [mon], from: \"9:00\", to: \"10:00\"}]").contains("[windows/time]"));
    assert!(err("deny: [{days: [monday], from: \"09:00\", to: \"10:00\"}]").contains("monday"));
}

#[test]
fn windows_cover_lunch_nights_and_whole_dates_in_local_time() {
    let w: Windows = yaml(
        "deny:\n\
         - {days: [mon, tue, wed, thu, fri], from: \"11:30\", to: \"14:00\"}\n\
         - {days: [fri], from: \"22:00\", to: \"02:00\"}\n\
         - {dates: [2026-12-24], from: \"00:00\", to: \"23:59\"}\n",
    );
    // 2026-12-07 is a Monday.
    assert!(w.open_at(local("2026-12-07T11:30")).is_some());
    assert!(w.open_at(local("2026-12-07T13:59")).is_some());
    assert!(
        w.open_at(local("2026-12-07T14:00")).is_none(),
        "to is exclusive"
    );
    assert!(w.open_at(local("2026-12-07T11:29")).is_none());
    assert!(w.open_at(local("2026-12-12T12:00")).is_none(), "Saturday");
    // Friday night runs into Saturday morning, not Friday morning.
    assert!(w.open_at(local("2026-12-11T23:00")).is_some());
    assert!(w.open_at(local("2026-12-12T01:59")).is_some());
    assert!(w.open_at(local("2026-12-12T02:00")).is_none());
    assert!(w.open_at(local("2026-12-11T01:00")).is_none());
    // 23:59 is the end of the day: the whole of Christmas Eve.
    assert!(w.open_at(local("2026-12-24T23:59")).is_some());
    assert!(w.open_at(local("2026-12-25T00:00")).is_none());
    assert!(!w.always_closed());
    let every_minute: Windows =
        yaml("deny: [{days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"24:00\"}]");
    assert!(every_minute.always_closed());
    let overnight: Windows = yaml(
        "deny: [{days: [mon, tue, wed, thu, fri, sat, sun], from: \"12:00\", to: \"12:01\"},\n\
         {days: [mon, tue, wed, thu, fri, sat, sun], from: \"12:01\", to: \"12:00\"}]",
    );
    assert!(
        overnight.always_closed(),
        "two windows that meet cover the week"
    );
}

#[test]
fn a_window_lasts_wall_clock_time_across_daylight_saving_changes() {
    // New York: clocks go back at 02:00 on 2026-11-01 (a Sunday) and
    // forward at 02:00 on 2026-03-08 (a Sunday).
    let w: Windows = yaml("deny: [{days: [sun], from: \"01:00\", to: \"03:00\"}]");
    let utc = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    };
    // Fall back: 01:00 EDT (05:00Z) to 03:00 EST (08:00Z) is three hours.
    let opened = utc("2026-11-01T05:00:00Z");
    assert!(
        w.open_at(opened.with_timezone(&NEW_YORK).naive_local())
            .is_some()
    );
    assert_eq!(
        w.next_clear(opened, NEW_YORK),
        Some(utc("2026-11-01T08:00:00Z"))
    );
    // Spring forward: 01:00 EST (06:00Z) to 03:00 EDT (07:00Z) is one hour.
    let opened = utc("2026-03-08T06:00:00Z");
    assert_eq!(
        w.next_clear(opened, NEW_YORK),
        Some(utc("2026-03-08T07:00:00Z"))
    );
    // Closed now: now.
    let now = utc("2026-03-09T12:00:00Z");
    assert_eq!(w.next_clear(now, NEW_YORK), Some(now));
}

#[test]
fn local_instants_across_daylight_saving_changes() {
    let utc = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    };
    // An ordinary morning.
    assert_eq!(
        local_instant(local("2026-12-07T06:00"), NEW_YORK),
        utc("2026-12-07T11:00:00Z")
    );
    // 01:30 happens twice on 2026-11-01: the first time.
    assert_eq!(
        local_instant(local("2026-11-01T01:30"), NEW_YORK),
        utc("2026-11-01T05:30:00Z")
    );
    // 02:30 never happens on 2026-03-08: when the clocks jump to 03:00.
    assert_eq!(
        local_instant(local("2026-03-08T02:30"), NEW_YORK),
        utc("2026-03-08T07:00:00Z")
    );
    assert_eq!(time_zone("America/New_York"), Some(NEW_YORK));
    assert_eq!(time_zone("America/Gotham"), None);
}

/// Zones with one-hour, half-hour and southern-hemisphere changes.
fn zones() -> impl Strategy<Value = Tz> {
    prop_oneof![
        Just(chrono_tz::America::New_York),
        Just(chrono_tz::Europe::Berlin),
        Just(chrono_tz::Australia::Lord_Howe),
        Just(chrono_tz::America::Sao_Paulo),
        Just(chrono_tz::UTC),
    ]
}

/// Times within a few hours of a 2026 daylight-saving change or anywhere.
fn instants() -> impl Strategy<Value = DateTime<Utc>> {
    let changes = [
        "2026-03-08T07:00:00Z",
        "2026-11-01T06:00:00Z",
        "2026-03-29T01:00:00Z",
        "2026-10-25T01:00:00Z",
        "2026-04-04T15:00:00Z",
        "2026-10-03T15:30:00Z",
    ];
    prop_oneof![
        (0usize..changes.len(), -300i64..300).prop_map(move |(i, m)| {
            DateTime::parse_from_rfc3339(changes[i])
                .expect("rfc3339")
                .with_timezone(&Utc)
                + Duration::minutes(m)
        }),
        (0i64..525_600).prop_map(|m| Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("a time")
            + Duration::minutes(m)),
    ]
}

fn window() -> impl Strategy<Value = DenyWindow> {
    (
        proptest::sample::subsequence(Day::ALL.to_vec(), 1..=3),
        0u16..48,
        0u16..48,
    )
        .prop_filter("not empty", |(_, f, t)| f != t)
        .prop_map(|(days, f, t)| DenyWindow {
            days,
            dates: Vec::new(),
            from: LocalTime(f * 30),
            to: LocalTime(t * 30),
        })
}

proptest! {
    /// The second model: the first UTC minute whose wall clock shows `t`
    /// or later, found by walking minutes.
    #[test]
    fn local_instant_is_the_first_minute_the_clock_shows_it(
        tz in zones(),
        around in instants(),
        offset in -90i64..90,
    ) {
        let t = (around.with_timezone(&tz).naive_local() + Duration::minutes(offset))
            .with_second(0)
            .expect("a minute");
        let mut m = around - Duration::hours(30);
        while m.with_timezone(&tz).naive_local() < t {
            m += Duration::minutes(1);
        }
        let first = m.with_second(0).expect("a minute");
        prop_assert_eq!(local_instant(t, tz), first);
    }

    /// `next_clear` answers a closed minute, and every minute before it from
    /// `now` is inside a window.
    #[test]
    fn next_clear_is_the_first_closed_minute(
        tz in zones(),
        now in instants(),
        deny in proptest::collection::vec(window(), 1..4),
    ) {
        let w = Windows { deny };
        let now = now.with_second(0).expect("a minute");
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();
        let clear = w.next_clear(now, tz).expect("three days of windows close within the horizon");
        prop_assert!(w.open_at(local(clear)).is_none());
        let mut m = now;
        while m < clear {
            prop_assert!(w.open_at(local(m)).is_some(), "open at {} before {}", m, clear);
            m += Duration::minutes(1);
        }
    }

    /// Every store lands in exactly one wave when the last is a catch-all,
    /// a capped wave keeps at most its cap, and waves keep the order.
    #[test]
    fn waves_partition_the_stores(
        n in 0usize..60,
        caps in proptest::collection::vec(proptest::option::of(1u64..20), 3),
        percent in proptest::bool::ANY,
    ) {
        let regions = ["east", "west", "north"];
        let all_labels: Vec<BTreeMap<String, String>> = (0..n)
            .map(|i| labels(&[("region", regions[i % 3]), ("canary", if i % 7 == 0 { "true" } else { "false" })]))
            .collect();
        let ids: Vec<String> = (0..n).map(|i| format!("store-{i:03}")).collect();
        let stores: Vec<StoreRef<'_>> = ids.iter().zip(&all_labels).map(|(id, l)| StoreRef { id, labels: l }).collect();
        let cap = |c: Option<u64>| c.map(|c| if percent { MaxStores::Percent(c * 5) } else { MaxStores::Count(c) });
        let r = Rollout {
            waves: vec![
                Wave { name: Id::new("canary"), select: Some(Selector { labels: labels(&[("canary", "true")]) }), stores: Vec::new(), max_stores: cap(caps[0]) },
                Wave { name: Id::new("east"), select: Some(Selector { labels: labels(&[("region", "east")]) }), stores: vec![Id::new("store-001")], max_stores: cap(caps[1]) },
                Wave { name: Id::new("rest"), select: None, stores: Vec::new(), max_stores: cap(caps[2]) },
            ],
            bake: None,
            abort: None,
        };
        let (waves, unselected) = assign_waves(&r, &stores);
        prop_assert!(unselected.is_empty());
        let mut seen: Vec<&String> = waves.iter().flatten().collect();
        prop_assert_eq!(seen.len(), n);
        seen.sort();
        seen.dedup();
        prop_assert_eq!(seen.len(), n, "no store twice");
        for (i, wave) in waves.iter().enumerate().take(2) {
            if let Some(max) = r.waves[i].max_stores {
                prop_assert!(wave.len() <= max.cap(n));
            }
        }
        // A canary store is in the first wave unless the cap spilled it.
        if caps[0].is_none() {
            for (id, l) in ids.iter().zip(&all_labels) {
                if l["canary"] == "true" {
                    prop_assert!(waves[0].contains(id));
                }
            }
        }
    }
}

#[test]
fn dates_in_windows_are_calendar_dates() {
    let w: Windows = yaml("deny: [{dates: [2026-12-31], from: \"18:00\", to: \"02:00\"}]");
    assert_eq!(
        w.deny[0].dates,
        [NaiveDate::from_ymd_opt(2026, 12, 31).expect("a date")]
    );
    assert!(
        w.open_at(local("2027-01-01T01:00")).is_some(),
        "New Year's night"
    );
    assert!(w.open_at(local("2026-12-31T01:00")).is_none());
}

fn seen(state: &str, applied: Option<u64>, reported: Option<u64>) -> Option<Seen<'_>> {
    Some(Seen {
        state,
        applied_revision: applied,
        reported_revision: reported,
    })
}

#[test]
fn standings_follow_the_gate_arithmetic() {
    use Standing::*;
    assert_eq!(standing(seen("synced", Some(5), Some(5)), 5), AtTarget);
    assert_eq!(standing(seen("drifted", Some(6), Some(6)), 5), AtTarget);
    assert_eq!(standing(seen("scheduled", Some(4), Some(5)), 5), AtTarget);
    assert_eq!(
        standing(seen("waiting_window", Some(4), Some(5)), 5),
        AtTarget
    );
    // Holding an older release says nothing of this one.
    assert_eq!(standing(seen("scheduled", Some(4), Some(4)), 5), Pending);
    assert_eq!(
        standing(seen("waiting_window", Some(3), Some(4)), 5),
        Pending
    );
    assert_eq!(standing(seen("failed", Some(4), Some(5)), 5), Failed);
    assert_eq!(standing(seen("refused", Some(4), Some(5)), 5), Failed);
    // A failure before the store saw this release (a fetch that failed
    // before the wave was signed) is not a failure of it.
    assert_eq!(standing(seen("failed", Some(4), Some(4)), 5), Pending);
    assert_eq!(standing(seen("failed", Some(4), None), 5), Pending);
    assert_eq!(standing(seen("offline", Some(4), Some(5)), 5), Offline);
    assert_eq!(standing(seen("unenrolled", None, Some(5)), 5), Offline);
    assert_eq!(standing(None, 5), Offline);
    assert_eq!(standing(seen("out_of_sync", Some(4), Some(5)), 5), Pending);
}

#[test]
fn thresholds_count_only_stores_that_report() {
    let abort = AbortPolicy {
        failed_percent: 10,
        min_stores: 3,
        rollback: true,
    };
    let t = |failed, offline, at_target| Tally {
        stores: 40,
        at_target,
        failed,
        offline,
        pending: 40 - failed - offline - at_target,
    };
    // 3 of 30 reporting is 10 %: abort. 3 of 40 would not be.
    assert!(t(3, 10, 27).past_threshold(&abort));
    assert!(!t(3, 0, 37).past_threshold(&abort));
    // At least min_stores.
    assert!(!t(2, 35, 3).past_threshold(&abort));
    // Complete: every reporting store at target, offline aside.
    assert!(t(0, 10, 30).complete());
    assert!(
        !t(0, 40, 0).complete(),
        "a wave nobody reports never passes"
    );
    assert!(!t(1, 0, 39).complete());
}
