//! The SQLite database of a store: opening it (WAL, migrations), the
//! single-writer/many-readers pools, and the lock file that tells `restore`
//! a server is using it.
//!
//! Writes go through one connection so that transactions are serialized in
//! the process and never fail on a busy database; reads use their own pool
//! and see committed snapshots (WAL). Nothing here knows about entities.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// The migrations of `migrations/edge/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations/edge");

/// Tables a fleet-edge database must have (checked by `restore`).
pub const EXPECTED_TABLES: [&str; 8] = [
    "meta",
    "entities",
    "entity_refs",
    "catalog_members",
    "audit_log",
    "audit_head",
    "orders",
    "tickets",
];

/// How long a connection waits for a lock held by another process (a backup
/// reading, an operator's sqlite3 shell) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opening or migrating the database failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening SQLite database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("migrating SQLite database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error("{path} is in use by another fleet-edge process (lock file {lock} is held)")]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("creating lock file {lock}: {source}")]
    LockFile {
        lock: PathBuf,
        source: std::io::Error,
    },
}

/// The store database: a one-connection writer pool and a reader pool.
#[derive(Debug, Clone)]
pub struct Db {
    pub writer: SqlitePool,
    pub reader: SqlitePool,
}

/// Connection options shared by every fleet-edge connection to `path`.
pub fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
}

impl Db {
    /// Open (creating it when missing) and migrate the database at `path`,
    /// in WAL mode.
    pub async fn open(path: &Path) -> Result<Db, OpenError> {
        let err = |source| OpenError::Open {
            path: path.to_owned(),
            source,
        };
        let options = connect_options(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(err)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|source| OpenError::Migrate {
                path: path.to_owned(),
                source,
            })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.create_if_missing(false))
            .await
            .map_err(err)?;
        Ok(Db { writer, reader })
    }

    /// Close both pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// The lock file next to a database: `edge.db` → `edge.db.lock`.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// An exclusive advisory lock on a database's lock file, held while a server
/// runs and while `restore` replaces the file. Released on drop.
#[derive(Debug)]
pub struct DbLock {
    _file: File,
}

impl DbLock {
    /// Take the lock without waiting: `Err(Locked)` when someone holds it.
    pub fn acquire(database: &Path) -> Result<DbLock, OpenError> {
        let lock = lock_path(database);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|source| OpenError::LockFile {
                lock: lock.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DbLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked {
                path: database.to_owned(),
                lock,
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(OpenError::LockFile { lock, source }),
        }
    }
}
