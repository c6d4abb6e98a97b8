//! Backups and restores of the store database.
//!
//! `backup` takes a consistent online copy with `VACUUM INTO` (one read
//! transaction: writers keep going, the copy is one committed snapshot),
//! checks the copy like a restore would, and only then moves it into place.
//!
//! `restore` checks a backup completely before it touches anything — SQLite
//! integrity, the expected tables, migrations this build knows, an intact
//! audit chain — on a private copy, and then swaps that copy in with a
//! rename. It refuses while a server holds the database's lock file: stop the
//! service first. The database it replaces is kept as
//! `<database>.before-restore`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Row, SqlitePool};

use crate::audit;
use crate::db::{self, DbLock, EXPECTED_TABLES, MIGRATOR, OpenError};

/// What a checked database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub audit_entries: u64,
    pub entities: u64,
    pub orders: u64,
}

/// Why a database file is not a usable fleet-edge database.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read it as SQLite: {0}")]
    Unreadable(sqlx::Error),
    #[error("SQLite integrity check failed: {0}")]
    Integrity(String),
    #[error("it is no fleet-edge database: table `{0}` is missing")]
    MissingTable(String),
    #[error(
        "its migration {version} ({description}) is unknown to this build: restore it with the fleet-edge that wrote it, or upgrade"
    )]
    UnknownMigration { version: i64, description: String },
    #[error("its migration {version} differs from this build's (checksum mismatch)")]
    MigrationMismatch { version: i64 },
    #[error("its migration {version} did not complete")]
    MigrationIncomplete { version: i64 },
    #[error("its audit log does not verify: entry {seq}: {reason}")]
    AuditChain { seq: u64, reason: String },
}

/// `fleet-edge backup` failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database at {0}")]
    NoDatabase(PathBuf),
    #[error("{path}: {source}")]
    Check { path: PathBuf, source: CheckError },
    #[error("copying {database} into {out}: {source}")]
    Vacuum {
        database: PathBuf,
        out: PathBuf,
        source: sqlx::Error,
    },
    #[error("the backup copy {path} is not sound: {source}")]
    CopyUnsound { path: PathBuf, source: CheckError },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `fleet-edge restore` refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("no backup file at {0}")]
    NoBackup(PathBuf),
    #[error("refusing to restore {from}: {source}; {database} was not touched")]
    Refused {
        from: PathBuf,
        database: PathBuf,
        source: CheckError,
    },
    #[error(
        "refusing to restore: {0}; stop the fleet-edge service first, the database was not touched"
    )]
    InUse(OpenError),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Remove a database file and its `-wal`/`-shm` companions.
fn remove_database_files(path: &Path) -> std::io::Result<()> {
    remove_if_exists(&with_suffix(path, "-wal"))?;
    remove_if_exists(&with_suffix(path, "-shm"))?;
    remove_if_exists(path)
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

async fn open_existing(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(db::connect_options(path).create_if_missing(false))
        .await
}

/// Check that the file at `path` is a sound fleet-edge database this build
/// can serve. Opens it (a private copy, or a database no server uses).
pub async fn check_database(path: &Path) -> Result<CheckReport, CheckError> {
    let pool = open_existing(path).await.map_err(CheckError::Unreadable)?;
    let result = check_pool(&pool).await;
    pool.close().await;
    result
}

async fn check_pool(pool: &SqlitePool) -> Result<CheckReport, CheckError> {
    let rows = sqlx::query("PRAGMA integrity_check")
        .fetch_all(pool)
        .await
        .map_err(CheckError::Unreadable)?;
    let messages: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect();
    if messages != ["ok"] {
        return Err(CheckError::Integrity(messages.join("; ")));
    }
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(pool)
            .await
            .map_err(CheckError::Unreadable)?;
    for t in EXPECTED_TABLES.iter().chain(["_sqlx_migrations"].iter()) {
        if !tables.iter().any(|x| x == t) {
            return Err(CheckError::MissingTable((*t).to_owned()));
        }
    }
    let applied =
        sqlx::query("SELECT version, description, checksum, success FROM _sqlx_migrations")
            .fetch_all(pool)
            .await
            .map_err(CheckError::Unreadable)?;
    for row in &applied {
        let version: i64 = row.try_get("version").map_err(CheckError::Unreadable)?;
        let description: String = row.try_get("description").map_err(CheckError::Unreadable)?;
        let checksum: Vec<u8> = row.try_get("checksum").map_err(CheckError::Unreadable)?;
        let success: bool = row.try_get("success").map_err(CheckError::Unreadable)?;
        let Some(known) = MIGRATOR.iter().find(|m| m.version == version) else {
            return Err(CheckError::UnknownMigration {
                version,
                description,
            });
        };
        if known.checksum.as_ref() != checksum.as_slice() {
            return Err(CheckError::MigrationMismatch { version });
        }
        if !success {
            return Err(CheckError::MigrationIncomplete { version });
        }
    }
    let report = audit::verify(pool).await.map_err(CheckError::Unreadable)?;
    if !report.ok {
        return Err(CheckError::AuditChain {
            seq: report.first_bad_seq.unwrap_or(0),
            reason: report.reason.unwrap_or_default(),
        });
    }
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(CheckError::Unreadable)
    };
    Ok(CheckReport {
        audit_entries: report.entries,
        entities: count("SELECT COUNT(*) FROM entities").await?,
        orders: count("SELECT COUNT(*) FROM orders").await?,
    })
}

/// Take a consistent copy of `database` (which may be in use) into `out`.
pub async fn backup(database: &Path, out: &Path) -> Result<CheckReport, BackupError> {
    if !database.is_file() {
        return Err(BackupError::NoDatabase(database.to_owned()));
    }
    let partial = with_suffix(out, &format!(".partial-{}", std::process::id()));
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| BackupError::Io {
            action,
            path,
            source,
        }
    };
    remove_database_files(&partial).map_err(io("removing", &partial))?;
    let pool = open_existing(database)
        .await
        .map_err(|e| BackupError::Check {
            path: database.to_owned(),
            source: CheckError::Unreadable(e),
        })?;
    let vacuum = sqlx::query("VACUUM INTO ?")
        .bind(partial.to_string_lossy().into_owned())
        .execute(&pool)
        .await;
    pool.close().await;
    vacuum.map_err(|source| BackupError::Vacuum {
        database: database.to_owned(),
        out: partial.clone(),
        source,
    })?;
    // A backup is one self-contained file: no WAL beside it.
    let set_journal = async {
        let p = open_existing(&partial).await?;
        let r = sqlx::query("PRAGMA journal_mode = DELETE")
            .execute(&p)
            .await;
        p.close().await;
        r.map(|_| ())
    };
    if let Err(e) = set_journal.await {
        let _ = remove_database_files(&partial);
        return Err(BackupError::CopyUnsound {
            path: partial,
            source: CheckError::Unreadable(e),
        });
    }
    let report = match check_database(&partial).await {
        Ok(r) => r,
        Err(source) => {
            let _ = remove_database_files(&partial);
            return Err(BackupError::CopyUnsound {
                path: partial,
                source,
            });
        }
    };
    sync_file(&partial).map_err(io("syncing", &partial))?;
    fs::rename(&partial, out).map_err(io("moving the backup to", out))?;
    sync_parent(out).map_err(io("syncing the directory of", out))?;
    Ok(report)
}

/// Replace `database` with the backup at `from`, after checking it fully.
pub async fn restore(from: &Path, database: &Path) -> Result<CheckReport, RestoreError> {
    if !from.is_file() {
        return Err(RestoreError::NoBackup(from.to_owned()));
    }
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| RestoreError::Io {
            action,
            path,
            source,
        }
    };
    let _lock = DbLock::acquire(database).map_err(RestoreError::InUse)?;
    let staged = with_suffix(database, &format!(".restore-{}", std::process::id()));
    remove_database_files(&staged).map_err(io("removing", &staged))?;
    fs::copy(from, &staged).map_err(io("copying the backup to", &staged))?;
    let report = match check_database(&staged).await {
        Ok(r) => r,
        Err(source) => {
            let _ = remove_database_files(&staged);
            return Err(RestoreError::Refused {
                from: from.to_owned(),
                database: database.to_owned(),
                source,
            });
        }
    };
    // Checking may have left a WAL beside the staged copy if the backup was
    // in WAL mode; closing the pool checkpointed it, so these are empty.
    remove_if_exists(&with_suffix(&staged, "-wal")).map_err(io("removing", &staged))?;
    remove_if_exists(&with_suffix(&staged, "-shm")).map_err(io("removing", &staged))?;
    sync_file(&staged).map_err(io("syncing", &staged))?;

    if database.exists() {
        // Keep the replaced database, with its WAL, as a pair SQLite can open.
        let kept = with_suffix(database, ".before-restore");
        remove_database_files(&kept).map_err(io("removing", &kept))?;
        fs::rename(database, &kept).map_err(io("keeping the old database as", &kept))?;
        let wal = with_suffix(database, "-wal");
        if wal.exists() {
            let kept_wal = with_suffix(&kept, "-wal");
            fs::rename(&wal, &kept_wal).map_err(io("keeping the old WAL as", &kept_wal))?;
        }
        remove_if_exists(&with_suffix(database, "-shm"))
            .map_err(io("removing the old shared memory file of", database))?;
    }
    fs::rename(&staged, database).map_err(io("moving the restored database to", database))?;
    sync_parent(database).map_err(io("syncing the directory of", database))?;
    Ok(report)
}
