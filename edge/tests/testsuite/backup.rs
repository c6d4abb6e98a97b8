//! The database outside the API: audit tampering in the SQLite file is
//! detected (THREATS.md row 17), backups taken under write load restore to a
//! consistent database, and restore refuses corrupt files and a running
//! server, leaving the target untouched.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::{Server, path_str, run, seed_example};
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Executor, SqlitePool};

/// Open the server's database file directly, as an attacker with file
/// access would.
async fn open_raw(path: &std::path::Path) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .busy_timeout(std::time::Duration::from_secs(10)),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn editing_an_audit_row_is_detected() {
    let s = Server::start();
    seed_example(&s).await;
    assert_eq!(s.get("/audit/verify").await.body["ok"], true);
    let raw = open_raw(&s.database).await;

    // The database itself refuses plain edits of the log…
    let refused = raw
        .execute("UPDATE audit_log SET actor = 'local:mallory' WHERE seq = 3")
        .await;
    assert!(refused.is_err(), "the append-only trigger should refuse");

    // …but someone with the file can drop the trigger: the chain catches it.
    raw.execute("DROP TRIGGER audit_log_append_only_update")
        .await
        .unwrap();
    raw.execute("UPDATE audit_log SET after = replace(after, 'Bar', 'Pub') WHERE seq = 2")
        .await
        .unwrap();
    let r = s.get("/audit/verify").await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.body["ok"], false);
    assert_eq!(r.body["first_bad_seq"], 2);
    assert!(r.body["reason"].as_str().unwrap().contains("altered"));

    // Rewriting its hash as well still names the same entry.
    raw.execute("UPDATE audit_log SET hash = 'ff' || substr(hash, 3) WHERE seq = 2")
        .await
        .unwrap();
    let r = s.get("/audit/verify").await;
    assert_eq!(r.body["first_bad_seq"], 2);
    raw.close().await;
}

#[tokio::test]
async fn deleting_audit_rows_is_detected() {
    let s = Server::start();
    seed_example(&s).await;
    let n = s.audit().await.len() as u64;
    let raw = open_raw(&s.database).await;
    raw.execute("DROP TRIGGER audit_log_append_only_delete")
        .await
        .unwrap();

    // The newest entry: caught against the recorded head.
    raw.execute(format!("DELETE FROM audit_log WHERE seq = {n}").as_str())
        .await
        .unwrap();
    let r = s.get("/audit/verify").await;
    assert_eq!(
        (r.status, &r.body["first_bad_seq"]),
        (409, &json!(n)),
        "{:?}",
        r.body
    );

    // One in the middle: named as missing.
    raw.execute("DELETE FROM audit_log WHERE seq = 4")
        .await
        .unwrap();
    let r = s.get("/audit/verify").await;
    assert_eq!(r.body["first_bad_seq"], 4, "{:?}", r.body);
    assert!(r.body["reason"].as_str().unwrap().contains("missing"));

    // The first one.
    raw.execute("DELETE FROM audit_log WHERE seq = 1")
        .await
        .unwrap();
    assert_eq!(s.get("/audit/verify").await.body["first_bad_seq"], 1);
    raw.close().await;
}

#[tokio::test]
async fn backup_under_write_load_restores_consistently() {
    let s = Arc::new(Server::start());
    seed_example(&s).await;
    let dir = s.dir.clone();

    // A writer keeps changing a setting and placing orders during the backups.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let s = s.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut writes = 0u64;
            let mut version: Option<u64> = None;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"value": format!("footer {writes}")});
                let r = match version {
                    None => s.create("/settings/receipt.footer", body).await,
                    Some(v) => s.update("/settings/receipt.footer", v, body).await,
                };
                assert!(r.status == 200 || r.status == 201, "{:?}", r.body);
                version = Some(r.version());
                let o = s
                    .post("/orders", json!({"lines": [{"variation": "soda-small"}]}))
                    .await;
                assert_eq!(o.status, 201);
                writes += 1;
            }
            writes
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let backups: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("backup-{i}.db")))
        .collect();
    for b in &backups {
        let (ok, err) = run(&[
            "backup",
            "--database",
            path_str(&s.database),
            "--out",
            path_str(b),
        ]);
        assert!(ok, "backup failed: {err}");
        assert!(err.contains("audit chain verified"), "{err}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 3, "the writer kept writing ({writes} writes)");

    // Each backup restores into a fresh place and serves a consistent state.
    for b in &backups {
        let target = dir.path().join(format!(
            "restored-{}.db",
            b.file_stem().unwrap().to_string_lossy()
        ));
        let (ok, err) = run(&[
            "restore",
            "--from",
            path_str(b),
            "--database",
            path_str(&target),
        ]);
        assert!(ok, "restore failed: {err}");
        let restored = Server::start_on(dir.clone(), target);
        let v = restored.get("/audit/verify").await;
        assert_eq!(v.status, 200, "{:?}", v.body);
        let state = restored.get("/state").await.body;
        let audit = restored.audit().await;
        let last = audit.last().unwrap();
        // The snapshot is one transaction: the newest version in the state is
        // the version of the newest audit entry, and the setting's version is
        // the one its last audit entry gave it.
        assert_eq!(state["version"], last["version"]);
        let footer = &state["settings"]["receipt.footer"];
        let footer_entry = audit
            .iter()
            .rev()
            .find(|e| e["entity_id"] == "receipt.footer")
            .unwrap();
        assert_eq!(footer["version"], footer_entry["version"]);
        assert_eq!(footer["value"], footer_entry["after"]["value"]);
        // Orders came along and the restored server takes new ones.
        let o = restored
            .post("/orders", json!({"lines": [{"variation": "soda-small"}]}))
            .await;
        assert_eq!(o.status, 201);
        assert_eq!(restored.stop().code(), Some(0));
    }
}

fn sha(path: &std::path::Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

#[tokio::test]
async fn restore_refuses_corrupt_files_and_a_running_server() {
    let s = Server::start();
    seed_example(&s).await;
    let dir = s.dir.clone();
    let good = dir.path().join("good.db");
    let (ok, err) = run(&[
        "backup",
        "--database",
        path_str(&s.database),
        "--out",
        path_str(&good),
    ]);
    assert!(ok, "{err}");

    // While the server runs, restore refuses.
    let (ok, err) = run(&[
        "restore",
        "--from",
        path_str(&good),
        "--database",
        path_str(&s.database),
    ]);
    assert!(!ok);
    assert!(err.contains("stop the fleet-edge service first"), "{err}");
    let db = s.database.clone();
    assert!(s.stop().success());
    let before = sha(&db);

    let garbage = dir.path().join("garbage.db");
    std::fs::write(
        &garbage,
        b"this is not a database at all, just some bytes".repeat(100),
    )
    .unwrap();
    let truncated = dir.path().join("truncated.db");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    // A sound SQLite file that is no fleet-edge database.
    let foreign = dir.path().join("foreign.db");
    {
        let p = SqlitePoolOptions::new()
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(&foreign)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        p.execute("CREATE TABLE t (x INTEGER)").await.unwrap();
        p.close().await;
    }
    // A fleet-edge backup whose audit log was edited.
    let tampered = dir.path().join("tampered.db");
    std::fs::copy(&good, &tampered).unwrap();
    {
        let p = open_raw(&tampered).await;
        p.execute("DROP TRIGGER audit_log_append_only_update")
            .await
            .unwrap();
        p.execute("UPDATE audit_log SET actor = 'local:mallory' WHERE seq = 1")
            .await
            .unwrap();
        p.close().await;
    }
    for (file, expect) in [
        (&garbage, "refusing"),
        (&truncated, "refusing"),
        (&empty, "refusing"),
        (&foreign, "no fleet-edge database"),
        (&tampered, "audit log does not verify"),
    ] {
        let (ok, err) = run(&[
            "restore",
            "--from",
            path_str(file),
            "--database",
            path_str(&db),
        ]);
        assert!(!ok, "{} was restored", file.display());
        assert!(err.contains(expect), "{}: {err}", file.display());
        assert!(err.contains("was not touched"), "{err}");
        assert_eq!(sha(&db), before, "{} changed the database", file.display());
    }
    let (ok, err) = run(&[
        "restore",
        "--from",
        "/nonexistent.db",
        "--database",
        path_str(&db),
    ]);
    assert!(!ok && err.contains("no backup file"), "{err}");

    // The good backup restores; the old database is kept beside it.
    let (ok, err) = run(&[
        "restore",
        "--from",
        path_str(&good),
        "--database",
        path_str(&db),
    ]);
    assert!(ok, "{err}");
    assert!(dir.path().join("edge.db.before-restore").exists());
    let restored = Server::start_on(dir.clone(), db);
    assert_eq!(restored.get("/audit/verify").await.body["ok"], true);
    assert_eq!(restored.get("/menu/items/soda").await.status, 200);
}

/// Issue #16: `sudo fleet-edge restore` (or `serve`, or `backup` into the
/// backup directory) where the `fleet` user's edge keeps its files is
/// refused with the command to run instead, and writes nothing: a
/// root-owned `edge.db` would keep the POS down. Needs root to hand a
/// directory to another user; CI runs the suite as root.
#[test]
fn root_is_refused_where_the_service_user_keeps_the_database() {
    use std::os::unix::fs::chown;
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root: this check needs root to hand a directory to another user");
        return;
    }
    const NOBODY: u32 = 65534;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fleet-edge");
    let backups = tmp.path().join("backups");
    for d in [&data, &backups] {
        std::fs::create_dir(d).unwrap();
        chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let db = data.join("edge.db");
    let db = path_str(&db);
    let out = backups.join("edge-1.db");
    let out = path_str(&out);
    let token = tmp.path().join("token");
    std::fs::write(&token, "t0123456789abcdef").unwrap();
    let token = path_str(&token);
    for (args, what) in [
        (
            vec!["restore", "--from", "/nonexistent.db", "--database", db],
            "the database directory",
        ),
        (
            vec![
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                db,
                "--token-file",
                token,
            ],
            "the database directory",
        ),
        (
            vec!["backup", "--database", db, "--out", out],
            "the backup directory",
        ),
    ] {
        let (ok, stderr) = run(&args);
        assert!(!ok, "{args:?} as root succeeded");
        assert!(
            stderr.contains(&format!("fleet-edge is running as root, but {what}"))
                && stderr.contains(&format!("uid {NOBODY}"))
                && stderr.contains("sudo -u ")
                && stderr.contains(&format!("fleet-edge {}", args.join(" "))),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "nothing written"
    );
    assert_eq!(
        std::fs::read_dir(&backups).unwrap().count(),
        0,
        "nothing written"
    );

    // A backup into root's own directory still opens the service's
    // database, where SQLite would leave root-owned -wal/-shm files.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    let mine_out = mine.join("edge-2.db");
    let (ok, stderr) = run(&["backup", "--database", db, "--out", path_str(&mine_out)]);
    assert!(!ok, "backup of the service's database as root succeeded");
    assert!(
        stderr.contains("fleet-edge is running as root, but the database directory"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "nothing written"
    );
    assert_eq!(
        std::fs::read_dir(&mine).unwrap().count(),
        0,
        "nothing written"
    );
}
