//! `--alert-webhook` (DESIGN.md §13, issue #20 item 5), against a real
//! local receiver: a refused store is posted once as `firing` however many
//! refused reports follow, the `fleet_status_alerts` gauge counts it, and
//! when the store recovers while the receiver is down, the `resolved`
//! event is retried until it is taken, once; reports are taken meanwhile.
//! The held conditions and the queue are in the database: a restarted
//! service posts nothing again, and of two replicas on one PostgreSQL
//! each event is posted once.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{FleetRepo, Node, Server, ServerOpts, TestDb, report};

/// An HTTP receiver that records the JSON bodies it accepts, and answers
/// 503 to everything while `up` is false.
struct Receiver {
    port: u16,
    up: Arc<AtomicBool>,
    taken: Arc<Mutex<Vec<Value>>>,
    refused: Arc<AtomicUsize>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let (u, t, r) = (up.clone(), taken.clone(), refused.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let Ok(n) = conn.read(&mut buf) else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).into_owned();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())
                                .flatten()
                        })
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + length {
                        break Some(raw[end + 4..end + 4 + length].to_vec());
                    }
                };
                let status = if u.load(Ordering::SeqCst) {
                    if let Some(v) = body.and_then(|b| serde_json::from_slice(&b).ok()) {
                        t.lock().expect("taken").push(v);
                    }
                    "200 OK"
                } else {
                    r.fetch_add(1, Ordering::SeqCst);
                    "503 Service Unavailable"
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver {
            port,
            up,
            taken,
            refused,
        }
    }

    fn events(&self, event: &str, status: &str) -> usize {
        self.taken
            .lock()
            .expect("taken")
            .iter()
            .filter(|v| v["event"] == event && v["status"] == status && v["subject"] == "acme/soho")
            .count()
    }

    /// Wait until the receiver refused `n` posts in all.
    fn wait_refused(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.refused.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "no event was tried while the receiver was down"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for(&self, event: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.events(event, status) == 0 {
            assert!(
                Instant::now() < deadline,
                "no {event} {status} within 30 s: {:?}",
                self.taken.lock().expect("taken")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_store_is_alerted_once_and_its_recovery_is_retried_until_taken() {
    let receiver = Receiver::start();
    let db = TestDb::sqlite();
    let repo = FleetRepo::new();
    let server = alerting(&db, &repo, &receiver);
    let node = server.enrolled_node("acme/soho").await;

    reports(&server, &node, "refused").await;
    receiver.wait_for("store_refused", "firing");
    // Still refused at the next rounds: nothing new is posted.
    reports(&server, &node, "refused").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.events("store_refused", "firing"), 1);
    let metrics = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await;
    let metrics = metrics.expect("metrics").text().await.expect("text");
    assert!(
        metrics.contains("fleet_status_alerts{event=\"store_refused\"} 1"),
        "{metrics}"
    );

    // The receiver goes down; the store recovers; the report is taken at
    // once and the resolved event waits for the receiver.
    receiver.up.store(false, Ordering::SeqCst);
    let started = Instant::now();
    reports(&server, &node, "converged").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "ingest is not held up"
    );
    // The resolved event was tried while the receiver was down.
    receiver.wait_refused(2);
    assert_eq!(receiver.events("store_refused", "resolved"), 0);
    receiver.up.store(true, Ordering::SeqCst);
    receiver.wait_for("store_refused", "resolved");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.events("store_refused", "resolved"), 1, "once");
    assert_eq!(receiver.events("store_refused", "firing"), 1);
    assert!(server.log().contains("Alert sent."), "{}", server.log());
}

/// acme/soho's node reports `outcome` (`refused`: nothing applied; else
/// revision 1 applied), and the service takes the report.
async fn reports(server: &Server, node: &Node, outcome: &str) {
    let applied = (outcome != "refused").then_some(1);
    let r = server
        .report(node, &report("acme/soho", outcome, Some(1), applied))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

/// A server on `db` posting alerts to `receiver` every second.
fn alerting(db: &TestDb, repo: &FleetRepo, receiver: &Receiver) -> Server {
    Server::start(
        &db.url,
        ServerOpts {
            extra: vec![
                "--alert-webhook".into(),
                format!("http://127.0.0.1:{}/fleet-alerts", receiver.port),
                "--alert-interval-secs".into(),
                "1".into(),
            ],
            ..ServerOpts::fetching(repo)
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_service_does_not_post_again_what_it_posted() {
    let receiver = Receiver::start();
    let db = TestDb::sqlite();
    let repo = FleetRepo::new();
    let mut first = alerting(&db, &repo, &receiver);
    let node = first.enrolled_node("acme/soho").await;
    reports(&first, &node, "refused").await;
    receiver.wait_for("store_refused", "firing");
    first.kill();

    // The condition still holds; the new process knows it was posted.
    let second = alerting(&db, &repo, &receiver);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !second.log().contains("desired revisions recorded") {
        assert!(Instant::now() < deadline, "no fetch: {}", second.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.events("store_refused", "firing"), 1, "not again");

    reports(&second, &node, "converged").await;
    receiver.wait_for("store_refused", "resolved");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.events("store_refused", "resolved"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_post_each_event_once_and_a_killed_one_leaves_nothing_unsent() {
    let receiver = Receiver::start();
    let db = TestDb::postgres();
    let repo = FleetRepo::new();
    let mut a = alerting(&db, &repo, &receiver);
    let b = alerting(&db, &repo, &receiver);
    let node = a.enrolled_node("acme/soho").await;
    reports(&a, &node, "refused").await;
    receiver.wait_for("store_refused", "firing");
    // Both replicas run rounds every second; the event is posted once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(receiver.events("store_refused", "firing"), 1, "once");

    // A is killed; the receiver is down while the store recovers, so
    // the resolved event waits in the database; B posts it when the
    // receiver is back.
    a.kill();
    receiver.up.store(false, Ordering::SeqCst);
    reports(&b, &node, "converged").await;
    // The resolved event was tried while the receiver was down.
    receiver.wait_refused(1);
    receiver.up.store(true, Ordering::SeqCst);
    receiver.wait_for("store_refused", "resolved");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.events("store_refused", "resolved"), 1, "once");
    assert_eq!(receiver.events("store_refused", "firing"), 1);
}

#[test]
fn a_webhook_that_is_not_a_web_address_stops_the_server() {
    let db = TestDb::sqlite();
    let out = std::process::Command::new(crate::common::BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
        ])
        .args(["--alert-webhook", "javascript:alert(1)"])
        .output()
        .expect("run fleet-status");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--alert-webhook"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
