//! Effective time and windows at a real store (DESIGN.md §12, issue #19
//! item 3): `fleet sign --effective-at` and `--urgent`, the real
//! `fleet-reconciler` holding a verified release (`scheduled`,
//! `waiting_window`) and applying it on time from its mirror with the Git
//! host and the status service unreachable, and the same passes driven
//! through a daylight-saving change with the library's clock.

use std::time::{Duration, Instant};

use chrono::{Datelike as _, NaiveDateTime, Utc};
use serde_json::Value;

use crate::e2e::{Fixture, VARIATION, free_port};

/// The fixture's store time zone (the template's soho).
const ZONE: chrono_tz::Tz = chrono_tz::America::New_York;

/// Store-local now plus `secs`, as `--effective-at` takes it.
fn local_in(secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(secs))
        .with_timezone(&ZONE)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// The reconciler's config with a status service nobody listens on.
fn with_dead_status(fx: &Fixture) {
    let text = format!(
        "{}status_url = \"http://127.0.0.1:{}\"\n",
        fx.config_text(),
        free_port()
    );
    std::fs::write(&fx.config, text).expect("write config");
}

fn menu_differs(fx: &Fixture) -> bool {
    fx.edge.pos_state()["menu"] != fx.render()["menu"]
}

#[test]
fn an_effective_time_release_applies_on_time_with_the_git_host_and_status_down() {
    let mut fx = Fixture::converged();
    // Hourly passes: only the held release's time can wake the daemon.
    fx.interval_secs = 3600;
    with_dead_status(&fx);
    fx.set_base_price(VARIATION, 1234);
    let at = local_in(25);
    fx.sign(&["--effective-at", &at]).expect_code(0, "sign");
    let release = fx.release("soho");
    assert_eq!(release["apiVersion"], "fleet/v2", "{release:#?}");
    assert_eq!(release["effective_at"], Value::String(at.clone()));
    // Valid for the normal 90 days after it takes effect.
    let expires: chrono::DateTime<Utc> = release["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("a time");
    assert!(expires > Utc::now() + chrono::Duration::days(89));

    let run = fx.once();
    run.expect_code(0, "a scheduled release is not a failure");
    assert_eq!(run.outcome(), "scheduled", "{run}");
    let report = fx.newest_report();
    assert_eq!(report["outcome"], "scheduled");
    assert_eq!(report["desired_revision"], 2);
    assert_eq!(report["applied_revision"], 1);
    let until: chrono::DateTime<Utc> = report["waiting_until"]
        .as_str()
        .expect("waiting_until")
        .parse()
        .expect("a time");
    let wanted = schemas::rollout::local_instant(
        NaiveDateTime::parse_from_str(&at, "%Y-%m-%dT%H:%M:%S").expect("local"),
        ZONE,
    );
    assert_eq!(until, wanted);
    assert!(menu_differs(&fx), "nothing applied before its time");
    assert_eq!(fx.applied_revision(), Some(1));

    // The WAN goes down; the daemon (hourly passes, no long-poll answer)
    // applies it at its time from the mirror.
    fx.daemon.stop();
    let mut daemon = fx.spawn_reconciler(&["run"], "daemon");
    let deadline = Instant::now()
        + (wanted - Utc::now()).to_std().unwrap_or_default()
        + Duration::from_secs(30);
    while fx.applied_revision() != Some(2) {
        assert!(
            Instant::now() < deadline,
            "not applied 30 s after its time: {:?}",
            fx.spawned_output("daemon")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let applied_at = Utc::now();
    assert!(
        applied_at >= wanted,
        "applied at {applied_at}, before its time {wanted}"
    );
    daemon.terminate();
    daemon.wait_timeout(Duration::from_secs(20));
    fx.assert_converged();
    let (stdout, stderr) = fx.spawned_output("daemon");
    assert!(
        format!("{stdout}{stderr}").contains("continuing with the release held"),
        "the log says it used the mirror: {stdout}{stderr}"
    );
}

#[test]
fn a_release_waits_for_an_open_window_and_an_urgent_one_does_not() {
    let fx = Fixture::converged();
    // A deny window around now, store-local, today (and yesterday, for a
    // window that runs past midnight).
    let now = Utc::now().with_timezone(&ZONE);
    let day = |d: chrono::Weekday| d.to_string().to_lowercase();
    let from = (now - chrono::Duration::hours(1))
        .format("%H:%M")
        .to_string();
    let to = (now + chrono::Duration::hours(1))
        .format("%H:%M")
        .to_string();
    let days = format!("[{}, {}]", day(now.weekday()), day(now.weekday().pred()));
    let store_yaml = fx.store_file("soho", "store.yaml");
    let mut text = std::fs::read_to_string(&store_yaml).expect("store.yaml");
    text.push_str(&format!(
        "windows:\n  deny:\n    - {{days: {days}, from: \"{from}\", to: \"{to}\"}}\n"
    ));
    std::fs::write(&store_yaml, text).expect("store.yaml");
    fx.commit("soho: no changes around now");
    fx.sign(&[]).expect_code(0, "sign");
    let release = fx.release("soho");
    assert!(
        release["windows"]["deny"].is_array(),
        "the release carries the windows: {release:#?}"
    );
    let run = fx.once();
    run.expect_code(0, "waiting is not a failure");
    assert_eq!(run.outcome(), "waiting_window", "{run}");
    let report = fx.newest_report();
    assert!(
        report["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w
                .as_str()
                .is_some_and(|w| w.contains(&format!("{from}–{to}")))),
        "{report:#}"
    );
    assert_eq!(fx.applied_revision(), Some(1));

    // A wrong price must go now: --urgent ignores the window.
    fx.set_base_price(VARIATION, 999);
    fx.sign(&["--urgent"]).expect_code(0, "urgent sign");
    assert_eq!(fx.release("soho")["urgent"], true);
    let run = fx.once();
    run.expect_code(0, "urgent");
    assert_eq!(run.outcome(), "converged", "{run}");
    fx.assert_converged();
    assert_eq!(fx.applied_revision(), Some(3));
}

/// The same store through a spring-forward night: a release effective at
/// 02:30 on 2027-03-14 (a time New York clocks skip) is scheduled at 01:59
/// EST and applied at 03:00 EDT, by the library's passes with a given
/// clock against the real edge and Git host.
#[test]
fn an_effective_time_in_the_skipped_hour_applies_when_the_clocks_jump() {
    let fx = Fixture::converged();
    fx.set_base_price(VARIATION, 1777);
    fx.sign(&["--effective-at", "2027-03-14T02:30"])
        .expect_code(0, "sign");
    let config = reconciler::config::Config::load(&fx.config).expect("config");
    let agent = reconciler::agent::Agent::new(config).expect("agent");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("time")
            .to_utc()
    };
    let (r, _) = runtime.block_on(agent.pass(at("2027-03-14T06:59:00Z"), true));
    assert_eq!(r.outcome, wire::report::Outcome::Scheduled, "{r:#?}");
    assert_eq!(r.waiting_until, Some(at("2027-03-14T07:00:00Z")));
    assert!(menu_differs(&fx));
    let (r, _) = runtime.block_on(agent.pass(at("2027-03-14T07:00:00Z"), true));
    assert_eq!(r.outcome, wire::report::Outcome::Converged, "{r:#?}");
    fx.assert_converged();
}
