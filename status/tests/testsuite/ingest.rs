//! The write path of `POST /api/v1/reports` (ADR 24): the nonce, the report
//! and the store's summary are written in one transaction, reports that
//! arrive together share a transaction (group commit), and neither may let
//! a replay or a revoked key in. On a fresh SQLite and a fresh PostgreSQL
//! database, through the real binary and through the store itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::common::{Server, ServerOpts, TestDb, report};
use chrono::Utc;
use status::store::{Ingested, NewReport, Node};

const STORE: &str = "acme/soho";

on_both!(
    batched_summaries_equal_the_reports_applied_one_by_one,
    concurrent_copies_of_one_request_store_one_report,
    racing_ingests_of_one_nonce_store_one_report,
    a_revoked_key_stores_nothing,
);

// PostgreSQL refuses a NUL character in text; SQLite stores it, so only
// PostgreSQL can show a report that fails inside a batch.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_failing_report_fails_alone_and_leaves_its_nonce_unused() {
    a_failing_report_fails_alone(TestDb::postgres()).await;
}

/// THREATS.md row 14 under concurrency: sixteen copies of one signed
/// report sent at once (so that they meet in one batch) store one report;
/// fifteen are refused as replays. Thirty-two fresh reports of the same
/// node sent at once are all stored.
async fn concurrent_copies_of_one_request_store_one_report(db: TestDb) {
    let server = Arc::new(Server::start(&db.url, ServerOpts::default()));
    let node = Arc::new(server.enrolled_node(STORE).await);
    let body = serde_json::to_vec(&report(STORE, "no_change", Some(1), Some(1))).unwrap();
    let headers = node.sign("POST", "/api/v1/reports", &body, Utc::now());
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (server, body, headers) = (server.clone(), body.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            server
                .send_signed("POST", "/api/v1/reports", &body, &headers)
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    let mut expected = vec![201];
    expected.extend([401; 15]);
    assert_eq!(statuses, expected, "one stored, the rest refused");

    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (server, node, body) = (server.clone(), node.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            server
                .signed(&node, "POST", "/api/v1/reports", &body)
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }

    let store = db.open().await;
    assert_eq!(store.report_count().await.unwrap(), 33);
    let refusals: Vec<String> = store
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.result == "refused")
        .map(|e| e.detail)
        .collect();
    assert_eq!(refusals.len(), 15, "{refusals:?}");
    assert!(refusals.iter().all(|d| d.contains("nonce reused")));
    store.close().await.unwrap();
}

fn node(key_id: &str) -> Node {
    Node {
        key_id: key_id.into(),
        public_key: format!("public-key-of-{key_id}"),
        store: STORE.into(),
        enrolled_at: 100,
        revoked_at: None,
        recipient: None,
    }
}

fn new_report(key_id: &str, body: &str) -> NewReport {
    NewReport {
        store: STORE.into(),
        key_id: key_id.into(),
        received_at: 200,
        outcome: "no_change".into(),
        desired_revision: Some(3),
        applied_revision: Some(3),
        commit: Some("3f2c".into()),
        drift: 0,
        overridden: 0,
        reconciler_version: "0.1.0".into(),
        root_version: None,
        release_api: None,
        body: body.into(),
    }
}

/// Sixteen ingests racing with one nonce: one report stored; the others
/// answer `NonceReused` and store nothing. Another nonce is fresh.
async fn racing_ingests_of_one_nonce_store_one_report(db: TestDb) {
    let store = db.open().await;
    assert!(store.enroll_node(&node("key-1")).await.unwrap());
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.ingest_report("nonce-0001", &new_report("key-1", "{}"), None)
                .await
                .unwrap()
        }));
    }
    let mut stored = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ingested::Stored(_) => stored += 1,
            other => assert_eq!(other, Ingested::NonceReused),
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(store.report_count().await.unwrap(), 1);
    // The report, its nonce and the summary went in together.
    assert!(!store.use_nonce("key-1", "nonce-0001", 300).await.unwrap());
    let row = store.get_store(STORE).await.unwrap().unwrap();
    assert_eq!(
        (row.last_seen, row.applied_revision, row.last_outcome),
        (Some(200), Some(3), Some("no_change".into()))
    );
    assert!(matches!(
        store
            .ingest_report("nonce-0002", &new_report("key-1", "{}"), None)
            .await
            .unwrap(),
        Ingested::Stored(_)
    ));
    assert_eq!(store.report_count().await.unwrap(), 2);
    store.close().await.unwrap();
}

/// THREATS.md row 15 at the moment of writing: once the key is revoked,
/// an ingest (whose caller looked the node up before) stores nothing, not
/// even its nonce.
async fn a_revoked_key_stores_nothing(db: TestDb) {
    let store = db.open().await;
    assert!(store.enroll_node(&node("key-1")).await.unwrap());
    assert_eq!(store.revoke_store_nodes(STORE, 150).await.unwrap(), 1);
    assert_eq!(
        store
            .ingest_report("nonce-0001", &new_report("key-1", "{}"), None)
            .await
            .unwrap(),
        Ingested::NodeRevoked
    );
    assert_eq!(store.report_count().await.unwrap(), 0);
    assert!(store.use_nonce("key-1", "nonce-0001", 300).await.unwrap());
    let row = store.get_store(STORE).await.unwrap().unwrap();
    assert_eq!(row.last_seen, None);
    store.close().await.unwrap();
}

/// A report the database refuses, sent among good ones (so that it meets
/// them in a batch): it fails alone, the others are stored, and its nonce
/// stays unused — report and nonce are written together or not at all.
async fn a_failing_report_fails_alone(db: TestDb) {
    let store = db.open().await;
    assert!(store.enroll_node(&node("key-1")).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let body = if i == 11 { "{\"x\": \"\u{0}\"}" } else { "{}" };
            s.ingest_report(&format!("nonce-{i:04}"), &new_report("key-1", body), None)
                .await
        }));
    }
    let mut failed = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(Ingested::Stored(_)) => {}
            Ok(other) => panic!("ingest {i}: {other:?}"),
            Err(_) => failed.push(i),
        }
    }
    assert_eq!(failed, [11]);
    assert_eq!(store.report_count().await.unwrap(), 23);
    assert!(store.use_nonce("key-1", "nonce-0011", 300).await.unwrap());
    assert!(!store.use_nonce("key-1", "nonce-0010", 300).await.unwrap());
    store.close().await.unwrap();
}

/// The second model of a batch's writes: the reports a backend stored, in
/// the order of their ids, applied one at a time to the store summaries
/// (each report overwrites its store's summary, except that one without an
/// applied revision keeps the one before). Generated reports over four
/// stores, some with a nonce used twice, sent all at once so that they
/// meet in batches; the summaries the database holds must be the model's.
/// A store summary as the model keeps it: last outcome, last seen,
/// applied revision, drift, the desired revision the report named.
type Summary = (String, i64, Option<u64>, u64, Option<u64>);

async fn batched_summaries_equal_the_reports_applied_one_by_one(db: TestDb) {
    let store = db.open().await;
    let stores = ["acme/a", "acme/b", "acme/c", "globex/d"];
    for (i, s) in stores.iter().enumerate() {
        let n = Node {
            store: (*s).into(),
            ..node(&format!("key-{i}"))
        };
        assert!(store.enroll_node(&n).await.unwrap());
    }
    // xorshift: the same reports on every run, different in each round.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let mut model: std::collections::BTreeMap<String, Summary> = Default::default();
    for round in 0..6 {
        let mut tasks = Vec::new();
        for i in 0..48u64 {
            let s = next(4) as usize;
            let applied = (next(3) > 0).then(|| next(50));
            let nonce = if next(8) == 0 { 0 } else { i };
            let rep = NewReport {
                store: stores[s].into(),
                key_id: format!("key-{s}"),
                received_at: 1000 + round * 100 + i as i64,
                outcome: ["no_change", "converged", "failed"][next(3) as usize].into(),
                desired_revision: Some(next(60)),
                applied_revision: applied,
                drift: next(5) as usize,
                ..new_report("", "{}")
            };
            let st = store.clone();
            let nonce = format!("round-{round}-{nonce}");
            tasks.push(tokio::spawn(async move {
                let got = st.ingest_report(&nonce, &rep, None).await.unwrap();
                (got, rep)
            }));
        }
        let mut stored = Vec::new();
        for t in tasks {
            let (got, rep) = t.await.unwrap();
            match got {
                Ingested::Stored(id) => stored.push((id, rep)),
                other => assert_eq!(other, Ingested::NonceReused),
            }
        }
        stored.sort_by_key(|(id, _)| *id);
        for (_, r) in stored {
            let before = model.get(&r.store).and_then(|m| m.2);
            model.insert(
                r.store.clone(),
                (
                    r.outcome.clone(),
                    r.received_at,
                    r.applied_revision.or(before),
                    r.drift as u64,
                    r.desired_revision,
                ),
            );
        }
        for (s, want) in &model {
            let row = store.get_store(s).await.unwrap().unwrap();
            let got = (
                row.last_outcome.clone().unwrap_or_default(),
                row.last_seen.unwrap_or_default(),
                row.applied_revision,
                row.last_drift,
                row.reported_revision,
            );
            assert_eq!(&got, want, "round {round}, store {s}");
        }
    }
    store.close().await.unwrap();
}
