//! Two real `fleet-status` replicas on one real PostgreSQL database
//! (DESIGN.md §13, issue #20 item 2): a Git hook on replica A wakes a
//! long-poll held by replica B (`LISTEN/NOTIFY`), and B fetches too, so its
//! release relay serves the new release; the fetch lock lets one replica
//! fetch at a time; and a replica killed while it takes reports loses none
//! that it answered, while the reports it did not answer go to the other;
//! an operator action asked on one replica reaches a long-poll held by the
//! other, and a bundle uploaded to one is served by the other.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{FleetRepo, HOOK_SECRET, Server, ServerOpts, TestDb, git, report};

fn replica(db: &TestDb, repo: &FleetRepo) -> Server {
    Server::start(
        &db.url,
        ServerOpts {
            // No timer fetches during the test: only hooks and wake-ups.
            extra: vec!["--fetch-interval-secs".into(), "3600".into()],
            ..ServerOpts::fetching(repo)
        },
    )
}

/// The revision of the release B's relay serves to `node`.
async fn relayed_revision(server: &Server, node: &crate::common::Node) -> Option<u64> {
    let r = server
        .signed(node, "GET", "/api/v1/release?root=0", b"")
        .await;
    if r.status == 503 {
        // That replica's own first fetch is still waiting for the lock.
        return None;
    }
    assert_eq!(r.status, 200, "{:?}", r.body);
    let release = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        r.body["release"].as_str()?,
    )
    .ok()?;
    let text = String::from_utf8(release).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("revision: "))
        .and_then(|r| r.trim().parse().ok())
}

/// A signed long-poll of `path` held by `server` in a task: when it
/// answered, and what.
fn hold(
    server: &Server,
    node: &crate::common::Node,
    path: &str,
) -> tokio::task::JoinHandle<(Instant, Value)> {
    let headers = node.sign("GET", path, b"", chrono::Utc::now());
    let client = server.client.clone();
    let url = format!("{}{path}", server.base);
    tokio::spawn(async move {
        let mut rb = client.get(url);
        for (k, v) in headers.pairs() {
            rb = rb.header(k, v);
        }
        let resp = rb.send().await.expect("long-poll");
        (Instant::now(), resp.json::<Value>().await.expect("JSON"))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_on_one_replica_wakes_long_polls_held_by_another() {
    let db = TestDb::postgres();
    let repo = FleetRepo::new();
    let a = replica(&db, &repo);
    let b = replica(&db, &repo);
    let node = b.enrolled_node("acme/soho").await;

    // Both replicas fetched at start; B knows revision 1.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = b.signed(&node, "GET", "/api/v1/desired?wait=0", b"").await;
        if r.body["desired_revision"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no desired revision: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while relayed_revision(&b, &node).await != Some(1) {
        assert!(Instant::now() < deadline, "B's relay: {}", b.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A long-poll held by B, then a push that only A is told about.
    let poll = hold(&b, &node, "/api/v1/desired?after=1&wait=30");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!poll.is_finished(), "the long-poll waits for a change");
    let menu = repo.work().join("tenants/acme/menu.yaml");
    let text = std::fs::read_to_string(&menu).expect("menu");
    std::fs::write(&menu, text.replacen("price: 1349}", "price: 1399}", 1)).expect("menu");
    git(&repo.work(), &["commit", "-qam", "price"]);
    repo.sign(&[]);
    let hooked = Instant::now();
    let r = a.hook(br#"{"ref":"refs/heads/main"}"#, HOOK_SECRET).await;
    assert_eq!(r.status, 202, "{:?}", r.body);

    let (answered, body) = poll.await.expect("the long-poll task");
    let waited = answered.duration_since(hooked);
    assert_eq!(body["changed"], true, "{body}");
    assert_eq!(body["desired_revision"], 2, "{body}");
    assert!(
        waited < Duration::from_secs(20),
        "B's long-poll answered {waited:?} after A's hook: woken, not timed out"
    );
    eprintln!("A's hook woke B's long-poll in {waited:?} (the fetch on A included)");

    // B fetched after the notification: its relay serves revision 2.
    let deadline = Instant::now() + Duration::from_secs(30);
    while relayed_revision(&b, &node).await != Some(2) {
        assert!(
            Instant::now() < deadline,
            "B's relay never caught up; B's log:\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        b.log().contains("Listening for other replicas' fetches."),
        "{}",
        b.log()
    );
}

/// An operator action asked on replica A reaches the store's long-poll
/// held by replica B within a second (the insert's trigger notifies every
/// replica), and the bundle the store then uploads to B is downloaded
/// from A: nothing of an action lives on one replica's disk.
#[tokio::test(flavor = "multi_thread")]
async fn an_action_asked_on_one_replica_reaches_a_long_poll_held_by_another() {
    let db = TestDb::postgres();
    let a = Server::start(&db.url, ServerOpts::default());
    let b = Server::start(&db.url, ServerOpts::default());
    let node = b.enrolled_node("acme/soho").await;
    let editor = a.operator(&["acme"]);

    let poll = hold(&b, &node, "/api/v1/desired?wait=30");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!poll.is_finished(), "the long-poll waits");
    let asked_at = Instant::now();
    let asked = crate::common::send(
        a.client
            .post(format!("{}/api/v1/stores/acme/soho/actions", a.base))
            .bearer_auth(&editor)
            .json(&serde_json::json!({"kind": "support_bundle"})),
    )
    .await;
    assert_eq!(asked.status, 202, "{:?}", asked.body);
    let (answered, body) = poll.await.expect("the long-poll task");
    let waited = answered.duration_since(asked_at);
    assert_eq!(
        body["actions"][0]["id"],
        asked.body["id"],
        "{body}; B's log:\n{}",
        b.log()
    );
    assert!(
        waited < Duration::from_secs(1),
        "B's long-poll answered {waited:?} after the ask on A"
    );
    eprintln!("an action asked on A reached B's long-poll in {waited:?}");

    let sent = vec![0x1f, 0x8b, 8, 0, 1, 2, 3];
    let path = format!("/api/v1/support-bundles?action={}", asked.body["id"]);
    let up = b.signed(&node, "POST", &path, &sent).await;
    assert_eq!(up.status, 201, "{:?}", up.body);
    let got = a
        .client
        .get(format!(
            "{}/api/v1/stores/acme/soho/support-bundles/{}",
            a.base,
            up.body["id"].as_str().expect("id")
        ))
        .bearer_auth(&editor)
        .send()
        .await
        .expect("download from A");
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.expect("bytes").to_vec(), sent);
    let view = a.store_view(&editor, "acme/soho").await;
    assert_eq!(view["actions"][0]["state"], "done", "{view}");
}

/// The lock both replicas' fetch loops take: while one connection holds
/// it, another waits, and gets it once it is released.
#[tokio::test(flavor = "multi_thread")]
async fn one_replica_fetches_at_a_time() {
    let db = TestDb::postgres();
    // The schema is not needed for the lock, but the database must exist.
    let _store = db.open().await;
    let one = status::cluster::Cluster::for_url(&db.url).expect("PostgreSQL");
    let two = status::cluster::Cluster::for_url(&db.url).expect("PostgreSQL");
    assert_ne!(one.id(), two.id());
    let held = one.lock_fetch().await.expect("the first lock");
    let waiting = tokio::time::timeout(Duration::from_millis(500), two.lock_fetch()).await;
    assert!(
        waiting.is_err(),
        "a second replica does not fetch meanwhile"
    );
    held.release().await;
    let second = tokio::time::timeout(Duration::from_secs(10), two.lock_fetch())
        .await
        .expect("the lock comes free")
        .expect("the second lock");
    second.release().await;
    assert!(status::cluster::Cluster::for_url("sqlite://x.db").is_none());
}

/// SIGKILL one replica in the middle of a burst of reports: every report
/// it answered 2xx is in the database, and the ones it did not answer are
/// stored by the other replica when the node sends them there.
#[tokio::test(flavor = "multi_thread")]
async fn killing_a_replica_loses_no_report() {
    let db = TestDb::postgres();
    let repo = FleetRepo::new();
    let a = replica(&db, &repo);
    let mut b = replica(&db, &repo);
    let node = std::sync::Arc::new(b.enrolled_node("acme/soho").await);
    let total = 200;
    let ok = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut sent = Vec::new();
    for i in 0..total {
        let body =
            serde_json::to_vec(&report("acme/soho", "converged", Some(1), Some(1))).expect("JSON");
        let headers = node.sign("POST", "/api/v1/reports", &body, chrono::Utc::now());
        let client = b.client.clone();
        let url = format!("{}/api/v1/reports", b.base);
        let ok = ok.clone();
        sent.push(tokio::spawn(async move {
            let mut rb = client
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone());
            for (k, v) in headers.pairs() {
                rb = rb.header(k, v);
            }
            let status = rb.send().await.map(|r| r.status().as_u16());
            if status.as_ref().is_ok_and(|s| (200..300).contains(s)) {
                ok.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            (i, body, status)
        }));
    }
    // Mid-burst: some answered, the rest in flight or not yet sent.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ok.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        assert!(Instant::now() < deadline, "B answered no reports");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    b.kill();
    let mut answered = 0;
    let mut resend = Vec::new();
    for s in sent {
        let (i, body, status) = s.await.expect("task");
        match status {
            Ok(s) if (200..300).contains(&s) => answered += 1,
            _ => resend.push((i, body)),
        }
    }
    assert!(answered >= 10, "B answered some reports before it died");
    assert!(!resend.is_empty(), "B died before it answered them all");
    eprintln!("B answered {answered} of {total} before SIGKILL");
    // The node's outbox sends the rest again: to A, behind the same
    // load balancer.
    for (i, body) in &resend {
        let r = a.signed(&node, "POST", "/api/v1/reports", body).await;
        assert!(
            (200..300).contains(&r.status),
            "report {i} to A: {} {:?}",
            r.status,
            r.body
        );
    }
    // At least once: a report B stored but died before answering is
    // stored again from A (the reconciler's outbox is at-least-once too).
    let stored = db.open().await.report_count().await.expect("count");
    assert!(
        stored >= total as u64 && stored <= (total + resend.len()) as u64,
        "{stored} stored: {answered} answered by B, {} sent again to A",
        resend.len()
    );
}
