//! The release relay (DESIGN.md §13, issue #20 item 1, threat row 27):
//! a store with `source = "status"` reads its release from the real
//! `fleet-status`, which alone fetches the fleet repo from the real Git
//! host (`git daemon`); an unchanged store gets `304 Not Modified`; a store
//! that also has a `repo_url` falls back to Git when the relay fails and
//! says so; and a rogue relay (a real HTTP server answering with real
//! signed files, as a compromised service could) cannot make a store apply
//! an altered release, an older one or another store's: each is refused as
//! the same bytes from Git would be (rows 1, 3, 6).

use std::time::{Duration, Instant};

use crate::e2e::{Fixture, STORE, StandIn, StatusService, VARIATION, assert_refused, git};
use wire::relay::{RelayedRelease, RelayedRoot};

/// `reconciler.toml` reading releases from `status_url`'s relay; with
/// `git`, the fixture's Git host stays configured as the fallback.
fn relay_config(fx: &Fixture, status_url: &str, git: bool) -> String {
    let text: String = fx
        .config_text()
        .lines()
        .filter(|l| git || !l.starts_with("repo_url"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{text}status_url = \"{status_url}\"\nsource = \"status\"\n")
}

fn metric(status: &StatusService, name: &str) -> u64 {
    status
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{}", status.metrics()))
}

/// Pass until the store applied `revision` (the service fetches every
/// second, so a push takes a moment to reach the relay).
fn once_until_applied(fx: &Fixture, revision: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = fx.once();
        if fx.applied_revision() == Some(revision) {
            run.expect_code(0, "the pass that applied");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "revision {revision} not applied through the relay within 30 s\n{run}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_store_on_the_relay_needs_no_git_host_and_unchanged_stores_get_304() {
    let fx = Fixture::new();
    let status = StatusService::for_fixture(&fx);
    std::fs::write(&fx.config, relay_config(&fx, &status.url(), false)).expect("config");
    fx.enroll(&status);

    once_until_applied(&fx, 1);
    assert!(
        fx.state.join("relay/answer.json").is_file(),
        "the answer is cached"
    );
    assert!(
        !fx.state.join("mirror.git").exists(),
        "a store on the relay keeps no Git mirror"
    );
    let answers = metric(&status, "fleet_status_relay_answers_total");
    assert!(answers >= 1, "the relay answered");

    // Nothing changed: the relay answers 304 and the pass changes nothing.
    let before = fx.snapshot();
    let run = fx.once();
    run.expect_code(0, "an unchanged pass");
    assert_eq!(run.outcome(), "no_change", "{run}");
    assert_eq!(fx.edge.audit(), before.audit);
    assert!(metric(&status, "fleet_status_relay_not_modified_total") >= 1);
    assert_eq!(
        metric(&status, "fleet_status_relay_answers_total"),
        answers,
        "no second full answer for an unchanged store"
    );

    // A new revision reaches the store through the relay; the Git host is
    // then stopped, and the store does not notice.
    fx.set_base_price(VARIATION, 1234);
    fx.sign(&[]);
    once_until_applied(&fx, 2);
    let pos = fx.edge.pos_state();
    let price = pos["menu"]["items"].as_array().and_then(|items| {
        items.iter().find_map(|item| {
            item["variations"]
                .as_array()?
                .iter()
                .find(|v| v["id"] == VARIATION)
                .map(|v| v["price"].clone())
        })
    });
    assert_eq!(
        price,
        Some(serde_json::json!(1234)),
        "the new price is applied"
    );
    let mut fx = fx;
    fx.daemon.stop();
    let run = fx.once();
    run.expect_code(0, "a pass with the Git host down");
    assert_eq!(run.outcome(), "no_change", "{run}");
    assert_eq!(fx.applied_revision(), Some(2));
}

#[test]
fn a_failing_relay_falls_back_to_git_and_the_report_says_so() {
    let fx = Fixture::new();
    let mut status = StatusService::for_fixture(&fx);
    std::fs::write(&fx.config, relay_config(&fx, &status.url(), true)).expect("config");
    fx.enroll(&status);
    status.kill();

    let run = fx.once();
    run.expect_code(0, "a pass with the relay down and Git up");
    assert_eq!(run.outcome(), "converged", "{run}");
    let report = fx.newest_report();
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("release relay") && warnings.contains("from Git instead"),
        "the report says the release came from Git: {report:#}"
    );
    assert_eq!(report["applied_revision"], 1);
}

/// A relay that answers whatever the test sets, and 503 to anything else
/// (reports stay queued in the store's outbox).
struct RogueRelay(StandIn);

impl RogueRelay {
    fn start() -> RogueRelay {
        RogueRelay(StandIn::start(
            "/api/v1/release",
            "",
            (
                "503 Service Unavailable",
                r#"{"error":{"code":"rogue","message":"not here"}}"#,
            ),
        ))
    }

    fn url(&self) -> String {
        self.0.base()
    }

    fn serve(&self, release: &[u8], signature: &[u8], commit: &str) {
        let a = RelayedRelease {
            store: STORE.to_owned(),
            commit: commit.to_owned(),
            release: Some(release.to_vec()),
            signature: Some(signature.to_vec()),
            root: Vec::<RelayedRoot>::new(),
        };
        *self.0.answer.lock().expect("answer") = serde_json::to_string(&a).expect("JSON");
    }
}

/// What a rogue relay serves, and the refusals it must meet.
type Case = (&'static str, Vec<u8>, Vec<u8>, &'static [&'static str]);

/// THREATS row 27: an altered, an older and another store's release from
/// a relay are each refused as rows 1, 3 and 6, and change nothing.
#[test]
fn row_27_a_rogue_relay_cannot_make_a_store_apply_what_was_not_signed_for_it() {
    let fx = Fixture::new();
    let status = StatusService::for_fixture(&fx);
    std::fs::write(&fx.config, relay_config(&fx, &status.url(), false)).expect("config");
    fx.enroll(&status);
    once_until_applied(&fx, 1);
    let first = git(&fx.work, &["rev-parse", "HEAD"]).trim().to_owned();
    fx.set_base_price(VARIATION, 1234);
    fx.sign(&[]);
    once_until_applied(&fx, 2);
    let head = fx.head();

    // The rogue has every signed file the Git host has.
    let at = |commit: &str, store: &str, file: &str| {
        git(
            &fx.work,
            &[
                "show",
                &format!("{commit}:tenants/acme/stores/{store}/{file}"),
            ],
        )
        .into_bytes()
    };
    let rogue = RogueRelay::start();
    std::fs::write(&fx.config, relay_config(&fx, &rogue.url(), false)).expect("config");

    let mut altered = at(&head, "soho", "release.yaml");
    let middle = altered.len() / 2;
    altered[middle] ^= 0x01;
    let cases: [Case; 3] = [
        (
            "altered",
            altered,
            at(&head, "soho", "release.yaml.minisig"),
            &["signature/invalid"],
        ),
        (
            "older",
            at(&first, "soho", "release.yaml"),
            at(&first, "soho", "release.yaml.minisig"),
            &["release/rollback"],
        ),
        (
            "another store's",
            at(&head, "brooklyn", "release.yaml"),
            at(&head, "brooklyn", "release.yaml.minisig"),
            &["release/wrong-store"],
        ),
    ];
    for (what, release, signature, codes) in cases {
        rogue.serve(&release, &signature, &head);
        let before = fx.snapshot();
        let run = fx.once();
        let code = assert_refused(&fx, &before, &run, codes);
        assert_eq!(fx.applied_revision(), Some(2), "{what}: {code}");
    }

    // Garbage instead of the wire type: a failed pass that says why, and
    // nothing changed (no Git to fall back to in this config).
    *rogue.0.answer.lock().expect("answer") =
        "{\"store\": \"acme/soho\", \"release\": 7".to_owned();
    let before = fx.snapshot();
    let run = fx.once();
    assert_eq!(run.outcome(), "failed", "{run}");
    let report = fx.newest_report();
    assert!(
        report["errors"].to_string().contains("the release relay"),
        "{report:#}"
    );
    assert_eq!(fx.edge.state_text(), before.state);
    assert_eq!(fx.edge.audit(), before.audit);
    assert_eq!(fx.applied_text(), before.applied);
}
