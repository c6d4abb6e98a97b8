//! The status service's story, told once and run on SQLite and on
//! PostgreSQL: a real fleet repo signed by the real `fleet sign`, the real
//! `fleet-status` binary, a node that enrolls and reports, state
//! transitions, and a long-poll woken by a new signed commit and the hook.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::common::{self, FleetRepo, Node, Server, ServerOpts, TestDb, entity_change, report};
use serde_json::{Value, json};

const STORE: &str = "acme/soho";

fn state(v: &Value) -> &str {
    v["state"].as_str().unwrap_or("")
}

async fn story(db: TestDb) {
    let repo = FleetRepo::new();
    let server = Server::start(
        &db.url,
        ServerOpts {
            extra: vec!["--fetch-interval-secs".into(), "3600".into()],
            ..ServerOpts::fetching(&repo)
        },
    );
    let op = server.operator(&["acme"]);

    // The first fetch records every store's verified release, revision 1.
    let v = server
        .wait_for(&op, STORE, "desired revision 1", |v| {
            v["desired_revision"] == 1
        })
        .await;
    assert_eq!(v["release_valid"], true, "{v:#}");
    assert_eq!(state(&v), "unenrolled");
    let list = server.get_as(&op, "/api/v1/stores").await;
    assert_eq!(list.status, 200);
    let stores: Vec<&str> = list.body["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["store"].as_str().unwrap())
        .collect();
    assert_eq!(stores, ["acme/brooklyn", "acme/jfk-airport", "acme/soho"]);
    assert_eq!(list.body["counts"]["unenrolled"], 3);

    // Enrolled but silent: offline.
    let node = server.enrolled_node(STORE).await;
    assert_eq!(state(&server.store_view(&op, STORE).await), "offline");

    // Each outcome moves the state.
    let steps: Vec<(Value, &str)> = vec![
        (report(STORE, "no_change", Some(1), None), "out_of_sync"),
        (report(STORE, "converged", Some(1), Some(1)), "synced"),
        (report(STORE, "failed", Some(1), Some(1)), "failed"),
        (report(STORE, "refused", Some(1), Some(1)), "refused"),
        (
            {
                let mut r = report(STORE, "drift_corrected", Some(1), Some(1));
                let mut d = entity_change("item", "classic-burger");
                d["diff"] = json!("-price: 1199\n+price: 1099\n");
                r["drift"] = json!([d]);
                r
            },
            "drifted",
        ),
        (
            {
                let mut r = report(STORE, "no_change", Some(1), Some(1));
                r["overridden"] = json!([entity_change("user", "maria")]);
                r
            },
            "overridden",
        ),
        (report(STORE, "no_change", Some(1), Some(1)), "synced"),
    ];
    for (i, (r, expected)) in steps.iter().enumerate() {
        let resp = server.report(&node, r).await;
        assert_eq!(resp.status, 201, "report {i}: {:?}", resp.body);
        let v = server.store_view(&op, STORE).await;
        assert_eq!(
            state(&v),
            *expected,
            "after report {i} ({}): {v:#}",
            r["outcome"]
        );
        assert!(v["last_seen"].is_string(), "{v:#}");
    }
    let v = server.store_view(&op, STORE).await;
    let timeline = v["reports"].as_array().unwrap();
    assert_eq!(timeline.len(), steps.len());
    assert_eq!(timeline[0]["outcome"], "no_change", "newest first");
    assert_eq!(timeline[2]["report"]["drift"][0]["id"], "classic-burger");

    // Nothing newer than 1: the long-poll waits, then answers "no change".
    let started = Instant::now();
    let r = server
        .signed(&node, "GET", "/api/v1/desired?after=1&wait=1", b"")
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["changed"], false);
    assert_eq!(r.body["desired_revision"], 1);
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Without `after`, it answers at once with the current revision.
    let r = server
        .signed(&node, "GET", "/api/v1/desired?wait=30", b"")
        .await;
    assert_eq!(
        (
            r.body["changed"].clone(),
            r.body["desired_revision"].clone()
        ),
        (json!(true), json!(1))
    );

    // A long-poll is waiting when a new signed commit lands and the hook fires.
    let poll = {
        let base = server.base.clone();
        let headers = node.sign(
            "GET",
            "/api/v1/desired?after=1&wait=60",
            b"",
            chrono::Utc::now(),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            let mut rb =
                reqwest::Client::new().get(format!("{base}/api/v1/desired?after=1&wait=60"));
            for (k, v) in headers.pairs() {
                rb = rb.header(k, v);
            }
            let r = rb.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap(),
                started.elapsed(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    repo.sign(&["--all"]);
    let hook = server
        .hook(br#"{"ref":"refs/heads/main"}"#, common::HOOK_SECRET)
        .await;
    assert_eq!(hook.status, 202, "{:?}", hook.body);
    let (status, body, waited) = tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .expect("the long-poll answered after the hook")
        .unwrap();
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(body["changed"], true, "{body:?}");
    assert_eq!(body["desired_revision"], 2, "{body:?}");
    assert!(
        waited < Duration::from_secs(30),
        "woken by the fetch, not the timeout"
    );
    // The polls are woken before the fetch is recorded (ADR 54): the
    // store page shows revision 2 a moment later.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let v = loop {
        let v = server.store_view(&op, STORE).await;
        if v["desired_revision"] == 2 || std::time::Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(v["desired_revision"], 2, "recorded after the wake: {v}");
    assert_eq!(state(&v), "out_of_sync", "applied 1, desired 2");

    let r = server
        .report(&node, &report(STORE, "converged", Some(2), Some(2)))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(state(&server.store_view(&op, STORE).await), "synced");

    // Rollout progress and filters.
    let list = server.get_as(&op, "/api/v1/stores").await;
    assert_eq!(
        list.body["tenants"]["acme"],
        json!({"stores": 3, "at_desired_revision": 1})
    );
    let synced = server
        .get_as(&op, "/api/v1/stores?state=synced&tenant=acme")
        .await;
    assert_eq!(synced.body["stores"].as_array().unwrap().len(), 1);
    assert_eq!(synced.body["stores"][0]["store"], STORE);
    let none = server.get_as(&op, "/api/v1/stores?tenant=globex").await;
    assert_eq!(none.body["stores"].as_array().unwrap().len(), 0);

    // A hook with the wrong secret changes nothing.
    let bad = server.hook(b"{}", "not-the-secret").await;
    assert_eq!(bad.status, 401);

    // Releases that expire within the stale window: stale.
    repo.sign(&["--all", "--expires-in", "3d", "--refresh-within", "1d"]);
    assert_eq!(server.hook(b"{}", common::HOOK_SECRET).await.status, 202);
    let v = server
        .wait_for(&op, STORE, "revision 3", |v| v["desired_revision"] == 3)
        .await;
    assert_eq!(state(&v), "stale", "{v:#}");

    // Metrics count what happened.
    let m = common::send(server.client.get(format!("{}/metrics", server.base))).await;
    let text = m.body.as_str().unwrap().to_owned();
    assert!(
        text.contains("fleet_status_reports_ingested_total 8"),
        "{text}"
    );
    assert!(
        text.contains("fleet_status_stores{state=\"stale\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("fleet_status_stores{state=\"unenrolled\"} 2"),
        "{text}"
    );
    assert!(text.contains("fleet_status_fetch_errors_total 0"), "{text}");
    // Latencies per route template: eight reports were posted, and no
    // store name appears in a label.
    assert!(
        text.contains(
            "fleet_status_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/reports\"} 8"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"/api/v1/stores/{tenant}/{store}\""),
        "{text}"
    );
    assert!(!text.contains(STORE), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn story_on_sqlite() {
    story(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn story_on_postgres() {
    story(TestDb::postgres()).await;
}

/// Three report intervals without a report: offline (and back on the next).
#[tokio::test(flavor = "multi_thread")]
async fn offline_after_three_silent_intervals() {
    let db = TestDb::sqlite();
    let server = Server::start(
        &db.url,
        ServerOpts {
            extra: vec!["--report-interval-secs".into(), "2".into()],
            ..ServerOpts::default()
        },
    );
    let op = server.operator(&["acme"]);
    let node = server.enrolled_node(STORE).await;
    let r = server
        .report(&node, &report(STORE, "converged", None, None))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(state(&server.store_view(&op, STORE).await), "synced");
    tokio::time::sleep(Duration::from_millis(6500)).await;
    assert_eq!(state(&server.store_view(&op, STORE).await), "offline");
    let r = server
        .report(&node, &report(STORE, "no_change", None, None))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(state(&server.store_view(&op, STORE).await), "synced");
}

/// Enrollment edge cases: a key enrolls once; a bad key or body is a 400;
/// a new enrollment for the store retires the old key.
#[tokio::test(flavor = "multi_thread")]
async fn enrollment_rules() {
    let db = TestDb::sqlite();
    let server = Server::start(&db.url, ServerOpts::default());
    let node = server.enrolled_node(STORE).await;
    let again = server.enroll(&server.token(STORE), &node).await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    let bad = server
        .post_json(
            "/api/v1/enroll",
            &json!({"token": server.token(STORE), "node_public_key": "AAAA"}),
        )
        .await;
    assert_eq!(bad.status, 400);
    let bad = server
        .post_json("/api/v1/enroll", &json!({"nope": 1}))
        .await;
    assert_eq!(bad.status, 400);

    // The key header may carry the public key instead of the key id.
    let body = serde_json::to_vec(&report(STORE, "converged", None, None)).unwrap();
    let mut h = node.sign("POST", "/api/v1/reports", &body, chrono::Utc::now());
    h.key = node.public_key();
    let r = server
        .send_signed("POST", "/api/v1/reports", &body, &h)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // A malformed store claim is a 400.
    let bad = server
        .post_json(
            "/api/v1/enroll",
            &json!({"token": server.token(STORE), "node_public_key": Node::new().public_key(), "store": "ACME"}),
        )
        .await;
    assert_eq!(bad.status, 400);

    // A replacement node (re-imaged Pi): the old key stops working.
    let replacement = server.enrolled_node(STORE).await;
    let r = server
        .report(&node, &report(STORE, "converged", None, None))
        .await;
    assert_eq!(r.status, 401);
    let r = server
        .report(&replacement, &report(STORE, "converged", None, None))
        .await;
    assert_eq!(r.status, 201);
}

/// The service runs the stores' own trust gate: a release changed after
/// signing, or another store's release copied in, is not desired.
#[tokio::test(flavor = "multi_thread")]
async fn releases_that_do_not_verify_are_not_desired() {
    let db = TestDb::sqlite();
    let repo = FleetRepo::new();
    let server = Server::start(
        &db.url,
        ServerOpts {
            repo: Some(repo.work()),
            // A directory of *.pub this time (keygen's dir also holds the
            // secret key, which is not a *.pub and is ignored).
            pubkey: Some(repo.pubkey().parent().unwrap().to_path_buf()),
            extra: vec!["--fetch-interval-secs".into(), "3600".into()],
        },
    );
    let op = server.operator(&["acme"]);
    server
        .wait_for(&op, STORE, "revision 1", |v| v["desired_revision"] == 1)
        .await;

    let stores = repo.work().join("tenants/acme/stores");
    let soho = stores.join("soho/release.yaml");
    for f in ["release.yaml", "release.yaml.minisig"] {
        std::fs::copy(stores.join("soho").join(f), stores.join("brooklyn").join(f)).unwrap();
    }
    let text = std::fs::read_to_string(&soho).unwrap();
    std::fs::write(&soho, text.replacen("revision: 1", "revision: 9", 1)).unwrap();
    common::git(&repo.work(), &["commit", "-qam", "tamper"]);
    assert_eq!(server.hook(b"{}", common::HOOK_SECRET).await.status, 202);

    let v = server
        .wait_for(&op, STORE, "the tampered release refused", |v| {
            v["release_valid"] == false
        })
        .await;
    assert_eq!(v["desired_revision"], Value::Null);
    assert!(
        v["release_error"]
            .as_str()
            .unwrap()
            .starts_with("signature/invalid"),
        "{v:#}"
    );
    let b = server.store_view(&op, "acme/brooklyn").await;
    assert_eq!(b["release_valid"], false, "{b:#}");
    assert!(
        b["release_error"]
            .as_str()
            .unwrap()
            .starts_with("release/wrong-store"),
        "{b:#}"
    );
    let jfk = server.store_view(&op, "acme/jfk-airport").await;
    assert_eq!(jfk["release_valid"], true, "untouched stores still verify");
    assert_eq!(jfk["desired_revision"], 1);
}

/// SIGTERM does not wait for long-polls to time out: they answer at once
/// and the server exits cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn stopping_answers_waiting_long_polls() {
    let db = TestDb::sqlite();
    let mut server = Server::start(&db.url, ServerOpts::default());
    let node = server.enrolled_node(STORE).await;
    let headers = node.sign(
        "GET",
        "/api/v1/desired?after=5&wait=60",
        b"",
        chrono::Utc::now(),
    );
    let url = format!("{}/api/v1/desired?after=5&wait=60", server.base);
    let poll = tokio::spawn(async move {
        let mut rb = reqwest::Client::new().get(url);
        for (k, v) in headers.pairs() {
            rb = rb.header(k, v);
        }
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let status = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(20)))
        .expect("fleet-status stopped on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let (code, body) = poll.await.unwrap();
    assert_eq!(code, 200, "{body:?}");
    assert_eq!(body["changed"], false);
}

/// A repo that cannot be fetched is counted in `/metrics` and logged; the
/// service keeps serving. A report that is not a report is a 400.
#[tokio::test(flavor = "multi_thread")]
async fn fetch_errors_and_bad_reports() {
    let db = TestDb::sqlite();
    let repo = FleetRepo::new();
    let server = Server::start(
        &db.url,
        ServerOpts {
            repo: Some(repo.root.path().join("no-such-repo")),
            pubkey: Some(repo.pubkey()),
            extra: vec!["--fetch-interval-secs".into(), "1".into()],
        },
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = common::send(server.client.get(format!("{}/metrics", server.base))).await;
        let text = m.body.as_str().unwrap().to_owned();
        let errors: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("fleet_status_fetch_errors_total "))
            .unwrap()
            .parse()
            .unwrap();
        if errors >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no fetch error counted: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.log().contains("Fetching the fleet repo failed"));
    let health = common::send(server.client.get(format!("{}/healthz", server.base))).await;
    assert_eq!(health.status, 200);

    let node = server.enrolled_node(STORE).await;
    let mut r = report(STORE, "converged", None, None);
    r["outcome"] = json!("exploded");
    assert_eq!(server.report(&node, &r).await.status, 400);
    let r = server
        .signed(&node, "POST", "/api/v1/reports", b"not json")
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "bad_request");
}
