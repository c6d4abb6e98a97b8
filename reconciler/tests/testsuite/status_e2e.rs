//! The reconciler and the status service together (DESIGN.md §5–§6,
//! issue #7 items 3–5): the real `fleet-reconciler` enrolls with the real
//! `fleet-status`, delivers its report outbox with signed requests, keeps
//! reports through outages and delivers them in order, says so when the
//! outbox bound dropped some, sets aside reports the service refuses for
//! good, and in daemon mode long-polls the service so that a signed change
//! applies in seconds although the pass interval is an hour. The status
//! service reads the same real Git host (`git daemon`) as the store. See
//! `e2e/mod.rs` for the fixture and how the binaries are found or built.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::e2e::{self, Fixture, STORE, StatusService, VARIATION, run_process};
use serde_json::Value;

/// The reports of a store view, oldest first.
fn timeline(view: &Value) -> Vec<Value> {
    let mut reports = view["reports"].as_array().cloned().unwrap_or_default();
    reports.reverse();
    reports
}

fn outcomes(view: &Value) -> Vec<(String, Option<u64>)> {
    timeline(view)
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap_or("").to_owned(),
                r["desired_revision"].as_u64(),
            )
        })
        .collect()
}

/// A fixture enrolled with a running status service.
fn enrolled(extra_config: &str) -> (Fixture, StatusService, String) {
    let fx = Fixture::new();
    let status = StatusService::for_fixture(&fx);
    fx.write_config_with_status(&status, extra_config);
    fx.enroll(&status);
    let operator = status.operator("acme");
    (fx, status, operator)
}

#[test]
fn an_enrolled_store_reports_each_pass_and_the_service_shows_it() {
    let fx = Fixture::new();
    let status = StatusService::for_fixture(&fx);
    fx.write_config_with_status(&status, "");
    let run = fx.enroll(&status);
    assert!(
        run.stdout
            .contains(&format!("enrolled {STORE} with {}", status.url())),
        "{run}"
    );
    // The key is the node's secret: readable by its owner only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(fx.state.join("node.key"))
        .expect("node.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "node.key mode {mode:o}");
    // So is the store's age identity (DESIGN.md §11), made at enrollment.
    let identity = std::fs::read_to_string(fx.state.join("age.key")).expect("age.key");
    assert!(identity.contains("AGE-SECRET-KEY-1"), "{identity}");
    let mode = std::fs::metadata(fx.state.join("age.key"))
        .expect("age.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "age.key mode {mode:o}");

    let run = fx.once();
    run.expect_code(0, "first pass");
    assert_eq!(run.outcome(), "converged", "{run}");
    assert!(run.stdout.contains("reports: 1 delivered"), "{run}");
    assert!(fx.outbox().is_empty(), "delivered reports leave the outbox");

    let operator = status.operator("acme");
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "the store shows synced at revision 1",
        |v| v["state"] == "synced" && v["applied_revision"] == 1 && v["desired_revision"] == 1,
    );
    let reports = timeline(&view);
    assert_eq!(reports.len(), 1, "{view:#}");
    let report = &reports[0]["report"];
    assert_eq!(report["outcome"], "converged");
    assert!(
        report["changes"].as_array().is_some_and(|c| !c.is_empty()),
        "the first converge lists its changes: {report:#}"
    );
    assert_eq!(
        reports[0]["commit"],
        fx.release("soho")["source_commit"],
        "the report names the commit the release was rendered from"
    );

    let run = fx.reconciler(&["status"]);
    run.expect_code(0, "status");
    assert!(
        run.stdout.contains(&format!("node: enrolled as {STORE}")),
        "{run}"
    );
    assert!(run.stdout.contains("pending reports: 0"), "{run}");
    // The recipient the node sent is the store's, on the API and the page.
    let recipient = view["recipient"].as_str().expect("a recipient").to_owned();
    assert!(recipient.starts_with("age1"), "{view:#}");
    assert!(
        run.stdout.contains(&format!("age recipient: {recipient}")),
        "{run}"
    );
    let page = status.page(&operator, &format!("/stores/{STORE}"));
    assert!(page.contains(&recipient), "the store page shows it");
    assert!(!page.contains("AGE-SECRET-KEY"), "never the identity");
}

#[test]
fn enrollment_refusals_are_clear_and_keep_the_enrolled_key() {
    let fx = Fixture::new();
    // No status service anywhere: the message names the config in use.
    let run = fx.reconciler(&["enroll", "--token", "fsb_x"]);
    run.expect_code(2, "no status_url");
    assert!(
        run.stderr
            .contains(&format!("set status_url in {}", fx.config.display())),
        "{run}"
    );
    let status = StatusService::for_fixture(&fx);
    fx.write_config_with_status(&status, "");
    let token = status.bootstrap_token(STORE);
    let url = status.url();
    fx.reconciler(&["enroll", "--status-url", &url, "--token", &token])
        .expect_code(0, "first enrollment");
    let key = std::fs::read(fx.state.join("node.key")).expect("node.key");

    // THREATS row 12: a used token, another store's token, a made-up one.
    let other = status.bootstrap_token("acme/brooklyn");
    for (token, what) in [
        (token.as_str(), "a used token"),
        (other.as_str(), "another store's token"),
        ("fsb_made-up-token", "an unknown token"),
    ] {
        let run = fx.reconciler(&["enroll", "--status-url", &url, "--token", token]);
        run.expect_code(1, what);
        assert!(
            run.stderr.contains("enrollment failed")
                && run.stderr.contains("401")
                && run.stderr.contains("bootstrap token"),
            "{what}: {run}"
        );
        assert_eq!(
            std::fs::read(fx.state.join("node.key")).expect("node.key"),
            key,
            "{what}: a refused enrollment keeps the enrolled key"
        );
    }

    // The service unreachable, no token, a bad URL.
    let closed = format!("http://127.0.0.1:{}", e2e::free_port());
    let run = fx.reconciler(&["enroll", "--status-url", &closed, "--token", "x"]);
    run.expect_code(1, "unreachable service");
    assert!(run.stderr.contains("cannot reach"), "{run}");
    fx.reconciler(&["enroll", "--status-url", &url])
        .expect_code(2, "no token");
    fx.reconciler(&["enroll", "--status-url", "ftp://x", "--token", "x"])
        .expect_code(2, "not an http URL");

    // The key enrolled first still works.
    fx.once().expect_code(0, "pass with the first key");
    let view = status.wait_for_store(
        &status.operator("acme"),
        STORE,
        Duration::from_secs(20),
        "the report of the first key arrives",
        |v| v["applied_revision"] == 1,
    );
    assert_eq!(timeline(&view).len(), 1);
}

#[test]
fn reports_queue_while_the_service_is_down_and_arrive_in_order() {
    let (fx, mut status, operator) = enrolled("");
    fx.once().expect_code(0, "revision 1");
    status.kill();

    fx.set_base_price(VARIATION, 1399);
    fx.sign(&[]);
    let run = fx.once();
    run.expect_code(0, "revision 2 while the service is down");
    assert!(
        run.stdout.contains("0 delivered") && run.stdout.contains("1 pending"),
        "{run}"
    );
    assert!(run.stdout.contains("will retry"), "{run}");
    fx.set_base_price(VARIATION, 1449);
    fx.sign(&[]);
    fx.once()
        .expect_code(0, "revision 3 while the service is down");
    assert_eq!(fx.outbox().len(), 2, "both reports wait in the outbox");

    status.restart();
    let run = fx.once();
    run.expect_code(0, "a pass once the service is back");
    assert!(run.stdout.contains("reports: 3 delivered"), "{run}");
    assert!(fx.outbox().is_empty());
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "synced at revision 3",
        |v| v["state"] == "synced" && v["applied_revision"] == 3 && v["desired_revision"] == 3,
    );
    assert_eq!(
        outcomes(&view),
        [
            ("converged".to_owned(), Some(1)),
            ("converged".to_owned(), Some(2)),
            ("converged".to_owned(), Some(3)),
            ("no_change".to_owned(), Some(3)),
        ],
        "every report arrived, in the order of the passes"
    );
}

#[test]
fn a_full_outbox_reports_how_many_reports_were_lost() {
    let (fx, mut status, operator) = enrolled("outbox_max_reports = 2\n");
    fx.once().expect_code(0, "revision 1");
    status.kill();
    for _ in 0..4 {
        fx.once().expect_code(0, "a pass while the service is down");
    }
    assert_eq!(fx.outbox().len(), 2, "the bound holds");
    let run = fx.reconciler(&["status"]);
    assert!(run.stdout.contains("dropped: 2"), "{run}");

    // This pass queues a fifth report while two wait: one more is dropped.
    status.restart();
    let run = fx.once();
    assert!(run.stdout.contains("reports: 2 delivered"), "{run}");
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "the queued reports arrive",
        |v| v["reports"].as_array().is_some_and(|r| r.len() == 3),
    );
    let reports = timeline(&view);
    let first_after = &reports[1]["report"];
    assert_eq!(
        first_after["dropped_reports"], 3,
        "the first report after the outage carries the loss: {first_after:#}"
    );
    assert!(
        first_after["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| w
                .as_str()
                .is_some_and(|w| w.contains("3 earlier report(s) were dropped"))),
        "{first_after:#}"
    );
    assert!(
        reports[2]["report"].get("dropped_reports").is_none(),
        "the loss is reported once"
    );
    let run = fx.reconciler(&["status"]);
    assert!(run.stdout.contains("dropped: 0"), "{run}");
}

#[test]
fn a_report_the_service_refuses_for_good_is_set_aside_not_retried() {
    // The node was enrolled as soho; then someone edits the config to say
    // brooklyn. The service refuses reports naming another store (403,
    // THREATS row 13); retrying would block the queue forever.
    let (fx, status, operator) = enrolled("");
    fx.once().expect_code(0, "soho converges and reports");
    let config = std::fs::read_to_string(&fx.config).expect("config");
    std::fs::write(
        &fx.config,
        config.replace("store = \"acme/soho\"", "store = \"acme/brooklyn\""),
    )
    .expect("edit config");
    let run = fx.once();
    // soho's applied record says revision 1 with other bytes: refused.
    run.expect_code(3, "a brooklyn pass");
    assert!(
        run.stdout.contains("0 delivered") && run.stdout.contains("1 refused by the service"),
        "{run}"
    );
    assert!(fx.outbox().is_empty(), "nothing is left to block the queue");
    let rejected = std::fs::read_dir(fx.state.join("outbox/rejected"))
        .expect("outbox/rejected")
        .count();
    assert_eq!(rejected, 1, "the refused report is kept for a person");
    let view = status.store_view(&operator, STORE);
    assert_eq!(timeline(&view).len(), 1, "only soho's own report is stored");
    let log = status.log();
    assert!(log.contains("Report for another store refused"), "{log}");
}

#[test]
fn a_refused_release_reaches_the_status_service() {
    // THREATS.md: after an attack the refusal reaches the status service.
    let (fx, status, operator) = enrolled("");
    fx.once().expect_code(0, "revision 1");
    fx.set_base_price(VARIATION, 1399);
    fx.sign_files(&[]);
    fx.flip_release_byte();
    fx.commit_and_publish("tampered release");
    let run = fx.once();
    run.expect_code(3, "tampered release");
    assert!(run.stdout.contains("reports: 1 delivered"), "{run}");
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "the store shows refused",
        |v| v["state"] == "refused",
    );
    let newest = &view["reports"][0]["report"];
    assert_eq!(newest["refusal"]["code"], "signature/invalid", "{newest:#}");
    assert_eq!(view["applied_revision"], 1);
}

/// Wait until the edge's state equals `fleet render` of the work repo.
fn wait_converged(fx: &Fixture, timeout: Duration) -> Duration {
    let want = fx.render();
    let started = Instant::now();
    loop {
        if fx.edge.pos_state() == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "the edge did not converge within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_daemon_applies_a_signed_change_within_seconds_by_long_poll() {
    // The status service fetches Git only when the hook says so (else
    // hourly), as behind a Git host that calls it on every push.
    let fx = Fixture::new();
    let status = StatusService::with_hook(&fx);
    fx.write_config_with_status(&status, "");
    fx.enroll(&status);
    let operator = status.operator("acme");
    status.hook();
    // An hour between passes: only the long-poll can explain a fast apply.
    let config = std::fs::read_to_string(&fx.config).expect("config");
    std::fs::write(
        &fx.config,
        config.replace("interval_secs = 60", "interval_secs = 3600"),
    )
    .expect("edit config");
    let mut daemon = fx.spawn_reconciler(&["run"], "daemon");
    let started = Instant::now();
    status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(30),
        "the daemon's first pass is reported",
        |v| v["applied_revision"] == 1,
    );

    eprintln!("first pass reported after {:?}", started.elapsed());
    fx.set_base_price(VARIATION, 1399);
    let published = Instant::now();
    fx.sign(&[]);
    eprintln!("signed and published in {:?}", published.elapsed());
    status.hook();
    let took = wait_converged(&fx, Duration::from_secs(30));
    eprintln!("converged {took:?} after the hook");
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "the daemon reports revision 2",
        |v| v["applied_revision"] == 2 && v["state"] == "synced",
    );
    assert!(
        published.elapsed() < Duration::from_secs(30),
        "push to applied took {took:?}"
    );
    // Revision 2 was applied by one pass; a pass the long-poll woke while
    // another was already applying it may follow, and finds nothing to do.
    let seen = outcomes(&view);
    let applied = seen
        .iter()
        .position(|o| *o == ("converged".to_owned(), Some(2)))
        .unwrap_or_else(|| panic!("no pass converged to revision 2: {seen:?}"));
    assert!(
        seen[applied + 1..]
            .iter()
            .all(|o| *o == ("no_change".to_owned(), Some(2))),
        "after the converge: {seen:?}"
    );
    daemon.terminate();
    assert!(
        daemon.wait_timeout(Duration::from_secs(20)).is_some(),
        "the daemon stops on SIGTERM"
    );
    let (_, stderr) = fx.spawned_output("daemon");
    assert!(
        stderr.contains("announced a newer revision"),
        "the long-poll woke the pass:\n{stderr}"
    );
}

#[test]
fn the_daemon_delivers_queued_reports_when_the_service_returns() {
    let (fx, mut status, operator) = enrolled("");
    let config = std::fs::read_to_string(&fx.config).expect("config");
    std::fs::write(
        &fx.config,
        config.replace("interval_secs = 60", "interval_secs = 2"),
    )
    .expect("edit config");
    let _daemon = fx.spawn_reconciler(&["run"], "daemon");
    status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(30),
        "the daemon's first pass is reported",
        |v| v["applied_revision"] == 1,
    );
    status.kill();
    fx.set_base_price(VARIATION, 1399);
    fx.sign(&[]);
    wait_converged(&fx, Duration::from_secs(30));
    // Passes go on and queue their reports.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fx.outbox().len() < 2 {
        assert!(Instant::now() < deadline, "reports did not queue");
        std::thread::sleep(Duration::from_millis(100));
    }
    status.restart();
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(60),
        "the queued reports arrive after the outage",
        |v| v["applied_revision"] == 2 && v["state"] == "synced",
    );
    let seen = outcomes(&view);
    assert!(
        seen.contains(&("converged".to_owned(), Some(2))),
        "the report of the pass that applied revision 2 arrived: {seen:?}"
    );
    // The service stores a report before the daemon logs that it was
    // delivered: wait for the line rather than read the log once.
    let deadline = Instant::now() + Duration::from_secs(15);
    let stderr = loop {
        let (_, stderr) = fx.spawned_output("daemon");
        if stderr.contains("reachable again") || Instant::now() > deadline {
            break stderr;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(stderr.contains("Report delivery failed"), "{stderr}");
    assert!(stderr.contains("reachable again"), "{stderr}");
}

/// Issue #17 item 4: `fleet-reconciler rotate-key` binds a new node key
/// with a request the current key signs; the old key is revoked in the same
/// transaction and refused from then on; reports flow with the new key and
/// the store page lists both. A rotation whose answer was lost (the service
/// bound the new key, the node kept the old one) is recovered by running it
/// again.
#[test]
fn rotate_key_replaces_the_node_key_and_recovers_a_lost_answer() {
    let (fx, status, operator) = enrolled("");
    fx.once().expect_code(0, "revision 1");
    let node_json = || std::fs::read_to_string(fx.state.join("node.json")).expect("node.json");
    let key_id = || {
        serde_json::from_str::<serde_json::Value>(&node_json()).expect("node.json")["key_id"]
            .as_str()
            .expect("key_id")
            .to_owned()
    };
    let old_id = key_id();
    let old_key = std::fs::read(fx.state.join("node.key")).expect("node.key");
    let old_node = node_json();

    let recipient = status.store_view(&operator, STORE)["recipient"].clone();
    assert!(recipient.as_str().is_some_and(|r| r.starts_with("age1")));
    let run = fx.reconciler(&["rotate-key"]);
    run.expect_code(0, "rotate-key");
    let new_id = key_id();
    assert_eq!(
        status.store_view(&operator, STORE)["recipient"],
        recipient,
        "the store's age recipient stays when its node key changes"
    );
    assert_ne!(new_id, old_id);
    assert!(
        run.stdout.contains(&format!("{old_id} → {new_id}")),
        "{run}"
    );
    assert!(!fx.state.join("node.key.next").exists());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(fx.state.join("node.key"))
        .expect("node.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Reports go through with the new key; the store page lists both.
    fx.set_base_price(VARIATION, 1299);
    fx.sign(&[]);
    fx.once().expect_code(0, "revision 2 with the new key");
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "revision 2 reported with the new key",
        |v| v["applied_revision"] == 2,
    );
    let nodes = view["nodes"].to_string();
    assert!(
        nodes.contains(&old_id) && nodes.contains(&new_id),
        "{view:#}"
    );
    let page = status.page(&operator, &format!("/stores/{STORE}"));
    assert!(page.contains(&new_id) && page.contains(&old_id), "{page}");

    // The old key is refused: put it back and try to report.
    let new_key = std::fs::read(fx.state.join("node.key")).expect("new key");
    std::fs::write(fx.state.join("node.key"), &old_key).expect("old key back");
    std::fs::write(fx.state.join("node.json"), &old_node).expect("old node.json back");
    let run = fx.once();
    assert!(
        run.stdout.contains("0 delivered") || run.stderr.contains("revoked"),
        "the revoked key delivers nothing: {run}"
    );

    // A lost answer: the node holds the old (revoked) key and the new one
    // as pending. Running rotate-key again recovers the bound key.
    std::fs::write(fx.state.join("node.key.next"), &new_key).expect("pending key");
    let run = fx.reconciler(&["rotate-key"]);
    run.expect_code(0, "recovering the lost rotation");
    assert_eq!(key_id(), new_id, "{run}");
    assert_eq!(
        std::fs::read(fx.state.join("node.key")).expect("node.key"),
        new_key
    );
    assert!(!fx.state.join("node.key.next").exists());
    let run = fx.once();
    assert!(run.stdout.contains("delivered"), "{run}");
    assert!(fx.outbox().is_empty(), "queued reports delivered: {run}");

    // A revoked node cannot rotate its way back in.
    status.admin(&["node", "revoke", STORE]);
    let run = fx.reconciler(&["rotate-key"]);
    run.expect_code(1, "rotate-key with a revoked key");
    assert!(run.stderr.contains("revoked"), "{run}");
    assert_eq!(key_id(), new_id, "nothing changed on the node");
}

/// Issue #18: `fleet secret recipients` writes into each store.yaml the
/// age recipient its node reported at enrollment (read from the real
/// status service with an operator token); the repo still validates, signs
/// and converges; a second run changes nothing; stores without a recipient
/// are listed and left alone.
#[test]
fn fleet_secret_recipients_writes_the_reported_recipient_into_store_yaml() {
    let (fx, status, operator) = enrolled("");
    fx.once().expect_code(0, "revision 1");
    let recipient = status.store_view(&operator, STORE)["recipient"]
        .as_str()
        .expect("a recipient")
        .to_owned();
    // The fixture wrote soho's recipient itself (Fixture::new): start from
    // the store.yaml without it, as before `fleet secret recipients`.
    let soho_yaml = fx.store_file("soho", "store.yaml");
    let text = std::fs::read_to_string(&soho_yaml).expect("store.yaml");
    std::fs::write(&soho_yaml, cli::ops::secret::remove_store_recipient(&text)).expect("write");
    let token_file = fx.root.join("operator.token");
    std::fs::write(&token_file, format!("{operator}\n")).expect("token file");
    let repo = fx.work.display().to_string();
    let url = status.url();
    let token_path = token_file.display().to_string();
    let args = [
        "secret",
        "recipients",
        "--status-url",
        url.as_str(),
        "--token-file",
        token_path.as_str(),
        "--repo",
        repo.as_str(),
    ];
    let run = e2e::fleet(&fx.root, &args);
    assert!(
        run.stdout
            .contains(&format!("{STORE}: recipient {recipient} written")),
        "{run}"
    );
    assert!(
        run.stdout.contains("acme/brooklyn: no recipient reported")
            || run.stdout.contains("acme/brooklyn: not known"),
        "{run}"
    );
    let text = std::fs::read_to_string(fx.store_file("soho", "store.yaml")).expect("store.yaml");
    assert!(
        text.contains(&format!("  recipient: {recipient}")),
        "{text}"
    );
    e2e::fleet(&fx.root, &["validate", "--repo", &repo]).expect_code(0, "still valid");
    let again = e2e::fleet(&fx.root, &args);
    assert!(
        again.stdout.contains(&format!("{STORE}: unchanged")),
        "{again}"
    );
    // The change signs and converges like any other.
    fx.commit("the stores' age recipients");
    fx.sign(&[]);
    fx.once().expect_code(0, "after the recipient was written");
    fx.assert_converged();
    // A wrong token: refused, nothing written.
    std::fs::write(&token_file, "fso_wrong\n").expect("token file");
    let before = std::fs::read_to_string(fx.store_file("soho", "store.yaml")).expect("store.yaml");
    let run = run_process(
        Command::new(e2e::fleet_bin())
            .args(args)
            .current_dir(&fx.root),
        Duration::from_secs(60),
    );
    run.expect_code(2, "a wrong token");
    assert_eq!(
        std::fs::read_to_string(fx.store_file("soho", "store.yaml")).expect("store.yaml"),
        before
    );
    assert!(run.stderr.contains("401"), "{run}");
}

/// DESIGN.md §9: `fleet sign --status-url` warns, per store, when it signs
/// `fleet/v2` for a store whose last report came from a reconciler that
/// reads only `fleet/v1` (a part-one reconciler sends no
/// `release_api_versions`); a store whose reconciler reads v2 gets no
/// warning; the releases are signed either way, and an unreachable status
/// service is a warning, not a failed release job.
#[test]
fn sign_warns_before_a_fleet_v2_release_reaches_an_older_reconciler() {
    let (fx, status, operator) = enrolled("");
    fx.once().expect_code(0, "revision 1");
    assert_eq!(
        fx.release("soho")["apiVersion"],
        "fleet/v2",
        "the fixture's soho has encrypted PINs"
    );
    let view = status.store_view(&operator, STORE);
    assert_eq!(
        view["release_api_versions"],
        serde_json::json!(["fleet/v1", "fleet/v2"]),
        "{view:#}"
    );
    let token_file = fx.root.join("operator.token");
    std::fs::write(&token_file, format!("{operator}\n")).expect("token file");
    let url = status.url();
    let token = token_file.display().to_string();
    let with_status = ["--status-url", url.as_str(), "--token-file", token.as_str()];

    // This reconciler reads fleet/v2: no warning.
    fx.set_base_price(VARIATION, 451);
    let run = fx.sign(&with_status);
    run.expect_code(0, "sign");
    assert!(run.stderr.contains("signed acme/soho revision 2"), "{run}");
    assert!(!run.stderr.contains("warning:"), "{run}");

    // Its last report now comes from an older reconciler: what a part-one
    // reconciler sends, through the node's real client and key.
    let mut old = reconciler::agent::blank_report(
        &STORE.parse().expect("store id"),
        chrono::Utc::now(),
        wire::report::Outcome::NoChange,
    );
    old.reconciler_version = "0.0.9".to_owned();
    old.release_api_versions.clear();
    let client = reconciler::status_client::StatusClient::open(&fx.state, Some(&url))
        .expect("the node's client");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(client.send_report(&old))
        .expect("the old-style report is accepted");
    let view = status.store_view(&operator, STORE);
    assert_eq!(
        view["release_api_versions"],
        serde_json::json!(["fleet/v1"]),
        "{view:#}"
    );

    fx.set_base_price(VARIATION, 452);
    let run = fx.sign(&with_status);
    run.expect_code(0, "a warning does not fail the release job");
    assert!(run.stderr.contains("signed acme/soho revision 3"), "{run}");
    assert!(
        run.stderr.contains(
            "warning: acme/soho: signed fleet/v2 but its last report came from reconciler 0.0.9, which reads only fleet/v1"
        ),
        "{run}"
    );
    assert!(run.stderr.contains("upgraded"), "{run}");
    // A store without a report yet is not guessed about.
    assert!(!run.stderr.contains("warning: acme/brooklyn"), "{run}");

    // The status service unreachable: signed, with a warning naming it.
    fx.set_base_price(VARIATION, 453);
    let gone = format!("http://127.0.0.1:{}", e2e::free_port());
    let run = fx.sign(&[
        "--status-url",
        gone.as_str(),
        "--token-file",
        token.as_str(),
    ]);
    run.expect_code(0, "sign without the status service");
    assert!(run.stderr.contains("signed acme/soho revision 4"), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "warning: could not check the stores' reconcilers at {gone}"
        )),
        "{run}"
    );
    // --status-url without a token is a usage error before anything is signed.
    let key = fx.keys.join("minisign.key").display().to_string();
    let repo = fx.work.display().to_string();
    let run = run_process(
        Command::new(e2e::fleet_bin())
            .args(["sign", "--key", &key, "--repo", &repo, "--status-url", &url])
            .current_dir(&fx.root),
        Duration::from_secs(60),
    );
    run.expect_code(2, "--status-url needs --token-file");
    assert!(run.stderr.contains("--token-file"), "{run}");
}

/// Availability set at the store (DESIGN.md §14, issue #21 item 4) reaches
/// head office: the pass reports it and the store page shows it.
#[test]
fn an_item_marked_unavailable_at_the_store_is_shown_on_the_store_page() {
    let (fx, status, operator) = enrolled("");
    let run = fx.once();
    run.expect_code(0, "first pass");
    let r = fx.edge.call(
        reqwest::Method::POST,
        "/sessions",
        &[],
        Some(&serde_json::json!({"user": "priya-shah", "pin": "303030"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let session = r.json()["session"].as_str().expect("a session").to_owned();
    let r = fx.edge.call(
        reqwest::Method::PUT,
        "/menu/availability/fries-regular",
        &[("X-Fleet-Session", session)],
        Some(&serde_json::json!({"available": false})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let run = fx.once();
    run.expect_code(0, "second pass");
    assert_eq!(
        run.outcome(),
        "no_change",
        "the 86 is not a change to revert: {run}"
    );
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "the second report arrived",
        |v| timeline(v).len() == 2,
    );
    let newest = &timeline(&view)[1]["report"];
    assert_eq!(
        newest["unavailable"][0]["variation"], "fries-regular",
        "{view:#}"
    );
    let page = status.page(&operator, &format!("/stores/{STORE}"));
    assert!(page.contains("id=\"unavailable\""), "{page}");
    assert!(
        page.contains("<b>fries-regular</b> by staff:priya-shah@admin"),
        "{page}"
    );
}
