//! The acceptance scenario of the first release (issue #8 item 6), end to
//! end with the real binaries: `fleet` (sign), `git daemon` (the Git host),
//! `fleet-status` (with the Git hook), `fleet-edge` and the
//! `fleet-reconciler run` daemon, enrolled and long-polling.
//!
//! 1. An operator changes a setting in the fleet repo, commits, signs and
//!    pushes; within 30 s the store's edge shows it, and the change is in
//!    `git log` on the Git host, in the status service's store timeline and
//!    in the edge's audit log with the commit.
//! 2. The Git host and the status service become unreachable: orders keep
//!    working at the store and the reconciler keeps retrying. Meanwhile head
//!    office makes another change. When both return, the store converges to
//!    it and every report queued during the outage reaches the service.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::e2e::{Fixture, STORE, StatusService, VARIATION, git};
use reqwest::Method;
use serde_json::{Value, json};

const FOOTER: &str = "Thanks for visiting Acme SoHo!";
const NEW_FOOTER: &str = "Welcome back to Acme SoHo: show this receipt for 10% off";

/// Poll `check` until it answers `Some`, or panic after `timeout`.
fn wait<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn footer(fx: &Fixture) -> Value {
    fx.edge.get("/settings/receipt.footer")["value"].clone()
}

/// A real order at the store's register: one bacon cheeseburger.
fn order(fx: &Fixture) -> Value {
    let r = fx.edge.call(
        Method::POST,
        "/orders",
        &[],
        Some(&json!({"lines": [{"variation": VARIATION, "quantity": 1, "modifiers": []}]})),
    );
    assert_eq!(r.status, 201, "POST /orders: {}", r.text);
    r.json()
}

/// `started_at` of every report in the status service's store timeline.
fn reported(view: &Value) -> BTreeSet<String> {
    view["reports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["report"]["started_at"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn acceptance_change_outage_and_recovery() {
    let mut fx = Fixture::new();
    let mut status = StatusService::with_hook(&fx);
    // Passes every 10 s, so retries during the outage are seen quickly;
    // the long-poll does the fast path.
    fx.write_config_with_status(&status, "");
    let config = std::fs::read_to_string(&fx.config).expect("config");
    std::fs::write(
        &fx.config,
        config.replace("interval_secs = 60", "interval_secs = 10"),
    )
    .expect("config");
    fx.enroll(&status);
    let operator = status.operator("acme");
    status.hook();
    let _daemon = fx.spawn_reconciler(&["run"], "daemon");
    status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(60),
        "revision 1 applied and reported",
        |v| v["applied_revision"] == 1 && v["state"] == "synced",
    );
    assert_eq!(footer(&fx), FOOTER);

    // ---- 1. A setting changes through Git.
    fx.edit(
        "tenants/acme/stores/soho/store.yaml",
        &format!("receipt.footer: \"{FOOTER}\""),
        &format!("receipt.footer: \"{NEW_FOOTER}\""),
    );
    fx.commit("SoHo: receipt footer for the loyalty campaign");
    let source_commit = fx.head();
    fx.sign(&[]);
    let pushed = Instant::now();
    status.hook();
    let took = wait(
        Duration::from_secs(30),
        "the edge shows the new footer",
        || (footer(&fx) == NEW_FOOTER).then(|| pushed.elapsed()),
    );
    eprintln!("push to applied: {took:?}");

    // In `git log` of the Git host.
    let log = git(&fx.served, &["log", "--format=%H %s", "main"]);
    assert!(
        log.contains(&format!(
            "{source_commit} SoHo: receipt footer for the loyalty campaign"
        )),
        "{log}"
    );
    // In the status service's timeline, with its commit.
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "revision 2 reported",
        |v| v["applied_revision"] == 2 && v["state"] == "synced",
    );
    let applied = view["reports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["outcome"] == "converged" && r["applied_revision"] == 2)
        .unwrap_or_else(|| panic!("no converged report of revision 2: {view:#}"));
    assert_eq!(applied["commit"], source_commit.as_str());
    let changes = applied["report"]["changes"].as_array().expect("changes");
    assert!(
        changes
            .iter()
            .any(|c| c["kind"] == "setting" && c["id"] == "receipt.footer"),
        "{changes:#?}"
    );
    // In the edge's audit log, by the reconciler, with revision and commit.
    let audit = fx.edge.audit();
    let entry = audit
        .iter()
        .find(|e| e["entity_id"] == "receipt.footer" && e["revision"] == 2)
        .unwrap_or_else(|| panic!("no audit entry of the footer: {audit:#?}"));
    assert_eq!(entry["commit"], source_commit.as_str(), "{entry:#}");
    assert!(
        entry["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("reconciler")),
        "{entry:#}"
    );
    fx.edge.assert_audit_verifies();

    // ---- 2. The WAN goes: Git host and status service unreachable.
    fx.daemon.stop();
    status.kill();
    let before = order(&fx);
    assert!(
        before["total"].as_u64().is_some_and(|t| t > 0),
        "{before:#}"
    );
    let price_before = before["lines"][0]["unit_price"].clone();
    // Head office changes a price meanwhile (the push reaches the Git
    // host; the store cannot reach it).
    fx.set_base_price(VARIATION, 1499);
    fx.sign(&[]);
    // The reconciler keeps retrying, and its reports queue.
    wait(
        Duration::from_secs(60),
        "two failed passes queued during the outage",
        || {
            let failed: Vec<Value> = fx
                .outbox()
                .iter()
                .filter_map(|(_, p)| std::fs::read(p).ok())
                .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
                .filter(|r| r["outcome"] == "failed")
                .collect();
            (failed.len() >= 2).then_some(())
        },
    );
    // Orders keep working on the LAN, at the price the store has.
    let during = order(&fx);
    assert_eq!(during["lines"][0]["unit_price"], price_before);
    let waiting: BTreeSet<String> = fx
        .outbox()
        .iter()
        .filter_map(|(_, p)| std::fs::read(p).ok())
        .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter_map(|r| r["started_at"].as_str().map(str::to_owned))
        .collect();
    assert!(waiting.len() >= 2, "{waiting:?}");

    // ---- Both return.
    let old_url = fx.daemon.url();
    if !fx.daemon.restart() {
        // Another port: the store's config follows (the daemon reloads it).
        let config = std::fs::read_to_string(&fx.config).expect("config");
        std::fs::write(&fx.config, config.replace(&old_url, &fx.daemon.url())).expect("config");
    }
    status.restart();
    status.hook();
    let render = fx.render();
    wait(
        Duration::from_secs(90),
        "the store converges to the change made meanwhile",
        || (fx.edge.pos_state() == render).then_some(()),
    );
    let after = order(&fx);
    assert_eq!(after["lines"][0]["unit_price"], 1499, "{after:#}");
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(60),
        "every report queued during the outage arrives",
        |v| v["applied_revision"] == 3 && reported(v).is_superset(&waiting),
    );
    assert_eq!(view["state"], "synced", "{view:#}");
    let (_, stderr) = fx.spawned_output("daemon");
    assert!(stderr.contains("Report delivery failed"), "{stderr}");
    fx.edge.assert_audit_verifies();
}
