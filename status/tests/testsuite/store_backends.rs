//! The storage layer on both backends, for what only concurrency shows
//! (a bootstrap token and a nonce are used exactly once however many
//! requests race for them) and for report retention.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{TestDb, ingest};
use status::store::{NewReport, Node, TokenProblem};

async fn races(db: TestDb) {
    let store = db.open().await;
    store
        .create_bootstrap_token("hash-1", "acme/soho", 100, 10_000)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.consume_bootstrap_token("hash-1", None, 200)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(s) => {
                assert_eq!(s, "acme/soho");
                won += 1;
            }
            Err(p) => assert_eq!(p, TokenProblem::AlreadyUsed),
        }
    }
    assert_eq!(won, 1, "a bootstrap token is used once");

    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.use_nonce("key-1", "nonce-0001", 200).await.unwrap()
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        fresh += usize::from(t.await.unwrap());
    }
    assert_eq!(fresh, 1, "a nonce is accepted once");
    // Another key may use the same nonce; a forgotten nonce is fresh again
    // (the timestamp check refuses such an old request first).
    assert!(store.use_nonce("key-2", "nonce-0001", 200).await.unwrap());
    assert_eq!(store.forget_nonces(201).await.unwrap(), 2);
    assert!(store.use_nonce("key-1", "nonce-0001", 300).await.unwrap());

    // Retention deletes old reports and keeps the store's summary. The
    // reports go in as production writes them, by an enrolled node.
    assert!(
        store
            .enroll_node(&Node {
                key_id: "key-1".into(),
                public_key: "public-key-of-key-1".into(),
                store: "acme/soho".into(),
                enrolled_at: 500,
                revoked_at: None,
                recipient: None,
            })
            .await
            .unwrap()
    );
    for received_at in [1_000, 2_000, 3_000] {
        ingest(
            &store,
            &NewReport {
                store: "acme/soho".into(),
                key_id: "key-1".into(),
                received_at,
                outcome: "converged".into(),
                desired_revision: Some(1),
                applied_revision: Some(1),
                commit: None,
                drift: 0,
                overridden: 0,
                reconciler_version: "0.1.0".into(),
                root_version: None,
                // The newest report's reconciler says what it reads.
                release_api: (received_at == 3_000).then(|| "fleet/v1 fleet/v2".into()),
                body: "{}".into(),
            },
        )
        .await;
    }
    assert_eq!(store.forget_reports(2_500).await.unwrap(), 2);
    assert_eq!(store.report_count().await.unwrap(), 1);
    let row = store.get_store("acme/soho").await.unwrap().unwrap();
    assert_eq!(
        (row.last_seen, row.applied_revision),
        (Some(3_000), Some(1))
    );
    assert_eq!(row.release_api.as_deref(), Some("fleet/v1 fleet/v2"));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn races_on_sqlite() {
    races(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn races_on_postgres() {
    races(TestDb::postgres()).await;
}

/// A fetch's desired rows are written many to a statement (ADR 54; 500 on
/// PostgreSQL, 50 on SQLite, ADR 56): every row of 1,201 (three or 25
/// statements, the last a short one) reads back as written, and a later fetch that finds fewer stores marks the others as
/// gone from the repo and rewrites the rest.
async fn desired_rows_are_written_in_chunks(db: TestDb) {
    let store = db.open().await;
    let row = |i: usize, fetch: i64| status::store::DesiredRow {
        store: format!("t{}/s{i:04}", i % 7),
        revision: (!i.is_multiple_of(5)).then_some(i as u64 + fetch as u64),
        commit: format!("{fetch:02}{i:038}"),
        expires_at: (!i.is_multiple_of(3)).then_some(1_000_000 + i as i64),
        valid: !i.is_multiple_of(4),
        error: i
            .is_multiple_of(4)
            .then(|| format!("bad_signature: store {i}")),
        checked_at: 500 + fetch,
    };
    let first: Vec<_> = (0..1201).map(|i| row(i, 1)).collect();
    store.set_desired(&first).await.unwrap();
    let listed = store.list_stores().await.unwrap();
    assert_eq!(listed.len(), 1201);
    let by_store: std::collections::HashMap<_, _> =
        listed.iter().map(|r| (r.store.clone(), r)).collect();
    for d in &first {
        let r = by_store[&d.store];
        assert_eq!(r.tenant, d.store.split('/').next().unwrap(), "{}", d.store);
        assert!(r.in_repo, "{}", d.store);
        assert_eq!(r.desired_revision, d.revision, "{}", d.store);
        assert_eq!(r.desired_commit.as_deref(), Some(d.commit.as_str()));
        assert_eq!(r.expires_at, d.expires_at, "{}", d.store);
        assert_eq!(r.release_valid, d.valid, "{}", d.store);
        assert_eq!(r.release_error, d.error, "{}", d.store);
        assert_eq!(r.checked_at, Some(d.checked_at));
    }
    let second: Vec<_> = (0..10).map(|i| row(i, 2)).collect();
    store.set_desired(&second).await.unwrap();
    let listed = store.list_stores().await.unwrap();
    assert_eq!(listed.iter().filter(|r| r.in_repo).count(), 10);
    for d in &second {
        let r = listed.iter().find(|r| r.store == d.store).unwrap();
        assert!(r.in_repo);
        assert_eq!(r.desired_revision, d.revision);
        assert_eq!(r.desired_commit.as_deref(), Some(d.commit.as_str()));
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn desired_rows_are_written_in_chunks_on_sqlite() {
    desired_rows_are_written_in_chunks(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn desired_rows_are_written_in_chunks_on_postgres() {
    desired_rows_are_written_in_chunks(TestDb::postgres()).await;
}

/// The admin commands with the service's database not set up (issue #16:
/// a `token create` run without `--database-url` made a new empty
/// `status.db` and printed a token the service would never accept).
async fn admin_commands_refuse_a_database_the_service_never_set_up(db: TestDb) {
    let admin = |url: &str, args: &[&str]| {
        std::process::Command::new(crate::common::BIN)
            .arg("--database-url")
            .arg(url)
            .args(args)
            .output()
            .unwrap()
    };
    let commands: [&[&str]; 3] = [
        &["token", "create", "acme/soho", "--ttl", "1h"],
        &["operator", "create", "--tenant", "acme"],
        &["node", "revoke", "acme/soho"],
    ];
    let refused = |url: &str, what: &str| {
        for args in commands {
            let out = admin(url, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} on {url}");
            assert!(out.stdout.is_empty(), "{args:?} printed a token");
            assert!(stderr.contains(what), "{args:?}: {stderr}");
            assert!(
                stderr.contains("pass the service's --database-url"),
                "{args:?}: {stderr}"
            );
        }
    };
    if db.url.starts_with("sqlite:") {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("status.db");
        let url = format!("sqlite://{}", missing.display());
        refused(&url, "no database file");
        assert!(!missing.exists(), "no database file was made");
        // The default, relative URL: the message names the file it looked
        // for, resolved against the working directory.
        let out = std::process::Command::new(crate::common::BIN)
            .args([
                "--database-url",
                "sqlite://status.db",
                "token",
                "create",
                "acme/soho",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("sqlite://status.db ({})", missing.display())),
            "{stderr}"
        );
        assert!(!missing.exists(), "no database file was made");
        // A file that is not the service's (empty, or another program's).
        std::fs::write(&missing, b"").unwrap();
        refused(&url, "no fleet-status tables");
    } else {
        // A fresh PostgreSQL database the service never started on.
        refused(&db.url, "no fleet-status tables");
    }
    // Once the service has set the database up, they work.
    db.open().await.close().await.unwrap();
    for args in commands {
        let out = admin(&db.url, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_refuse_an_unset_database_on_sqlite() {
    admin_commands_refuse_a_database_the_service_never_set_up(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_refuse_an_unset_database_on_postgres() {
    admin_commands_refuse_a_database_the_service_never_set_up(TestDb::postgres()).await;
}
