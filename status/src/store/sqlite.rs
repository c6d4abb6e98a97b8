//! The SQLite backend: how it connects and migrates, and its report
//! ingest. Everything else is the shared [`SqlStore`].
//!
//! One connection writes, the others read. SQLite lets one writer in at a
//! time: eight pooled connections that all write only queue on the file
//! lock, each waiting out busy-timeout sleeps; one writer connection makes
//! them queue, in order, in the pool instead, and the readers (WAL) never
//! wait for it. Other processes (the admin commands) still meet the busy
//! timeout. The one group-commit writer shares that connection (ADR 24).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Row as _, Sqlite, Transaction};

use super::group_commit::{BatchWrite, GroupCommit, Queued, summaries};
use super::rows::rev_db;
use super::sql::{RowsAffected, SqlStore, tenant_of};
use super::{Ingested, NewReport, StoreError, StoreFuture, StoreResult};

/// The SQLite backend.
pub type SqliteStore = SqlStore<Sqlite>;

/// Reading connections (besides the one writer).
const READERS: u32 = 8;

/// That the SQLite file of `url` exists and holds the service's tables.
pub(super) async fn check_set_up(url: &str) -> StoreResult<()> {
    use sqlx::Connection as _;
    let options = SqliteConnectOptions::from_str(url)
        .map_err(StoreError::Connect)?
        .create_if_missing(false)
        .read_only(true);
    // Name the file as this process resolves it: a relative URL such as
    // the default `sqlite://status.db` depends on the working directory.
    let file = options.get_filename();
    let shown = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let not_set_up = |what| StoreError::NotSetUp {
        url: format!("{url} ({})", shown.display()),
        what,
    };
    if !file.exists() {
        return Err(not_set_up("no database file"));
    }
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(StoreError::Connect)?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'status_nodes'",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    if tables == 0 {
        return Err(not_set_up("no fleet-status tables in the database"));
    }
    Ok(())
}

/// Desired rows a `set_desired` statement (400 parameters). SQLite looks
/// each `$n` up in a list as long as the statement's parameters, when
/// preparing and again when sqlx binds each one, so a row costs more the
/// longer the statement: 50 rows record 10,000 stores in 86 ms where 500
/// took 574 ms (ADR 56).
const DESIRED_ROWS: usize = 50;
/// Open (creating it when missing) and migrate the SQLite file of `url`.
pub(super) async fn open(url: &str) -> StoreResult<SqliteStore> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(StoreError::Connect)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10))
        // Safe with WAL (no corruption on power loss; at worst the last
        // reports are lost, and the reconciler's outbox resends them).
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true);
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        // Queued writes wait here, in order, rather than in the busy timeout.
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options.clone())
        .await
        .map_err(StoreError::Connect)?;
    sqlx::migrate!("../migrations/status/sqlite")
        .run(&write)
        .await?;
    let read = SqlitePoolOptions::new()
        .max_connections(READERS)
        .connect_with(options)
        .await
        .map_err(StoreError::Connect)?;
    let batches = GroupCommit::start(write.clone(), 1);
    Ok(SqlStore::new(write, read, batches, DESIRED_ROWS))
}

impl RowsAffected for SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        SqliteQueryResult::rows_affected(self)
    }
}

/// $1 key id, $2 nonce, $3 time: the nonce, remembered only for an active
/// key and only if it is new.
const INSERT_NONCE: &str = "INSERT INTO status_nonces (key_id, nonce, seen_at) \
     SELECT $1, $2, $3 \
     WHERE EXISTS (SELECT 1 FROM status_nodes WHERE key_id = $1 AND revoked_at IS NULL) \
     ON CONFLICT (key_id, nonce) DO NOTHING";

/// $1 key id.
const ACTIVE_NODE: &str =
    "SELECT 1 AS one FROM status_nodes WHERE key_id = $1 AND revoked_at IS NULL";

/// $1 store, $2 key id, $3 time received, $4 outcome, $5 desired revision,
/// $6 applied revision, $7 commit, $8 body.
const INSERT_REPORT: &str = "INSERT INTO status_reports (store, key_id, received_at, outcome, \
     desired_revision, applied_revision, source_commit, body) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";

/// $1 store, $2 tenant, $3 time received, $4 outcome, $5 applied revision
/// (kept when none), $6 drift, $7 overridden, $8 reconciler version, $9
/// trust root version (none: the store pins bare keys), $10 release
/// apiVersions read (none: fleet/v1 only), $11 the desired revision the
/// report named.
const UPDATE_SUMMARY: &str = "INSERT INTO status_stores (store, tenant, last_seen, last_outcome, \
     applied_revision, last_drift, last_overridden, reconciler_version, root_version, release_api, \
     reported_revision) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT (store) DO UPDATE SET last_seen = $3, last_outcome = $4, \
     applied_revision = COALESCE($5, status_stores.applied_revision), last_drift = $6, \
     last_overridden = $7, reconciler_version = $8, root_version = $9, release_api = $10, \
     reported_revision = $11";

/// A batch of ingests in one transaction of the writer connection: the
/// nonce and report of each, then one summary row per store
/// (`group_commit::summaries`).
impl BatchWrite for SqlitePool {
    fn write_batch<'a>(&'a self, batch: &'a [Queued]) -> StoreFuture<'a, Vec<Ingested>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let mut out = Vec::with_capacity(batch.len());
            for q in batch {
                out.push(ingest_in(&mut tx, &q.nonce, &q.report).await?);
            }
            let stored: Vec<bool> = out
                .iter()
                .map(|o| matches!(o, Ingested::Stored(_)))
                .collect();
            for s in summaries(batch, &stored) {
                let rep = s.last;
                sqlx::query(UPDATE_SUMMARY)
                    .bind(&rep.store)
                    .bind(tenant_of(&rep.store))
                    .bind(rep.received_at)
                    .bind(&rep.outcome)
                    .bind(rev_db(s.applied_revision))
                    .bind(rep.drift as i64)
                    .bind(rep.overridden as i64)
                    .bind(&rep.reconciler_version)
                    .bind(rev_db(rep.root_version))
                    .bind(&rep.release_api)
                    .bind(rev_db(rep.desired_revision))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(out)
        })
    }
}

/// The nonce and report of one ingest of a batch, inside its transaction.
/// SQLite has no data-modifying CTEs, so they are two statements; the
/// first one writes, so a transaction takes the write lock at once instead
/// of failing to upgrade a read snapshot later.
async fn ingest_in(
    tx: &mut Transaction<'_, Sqlite>,
    nonce: &str,
    rep: &NewReport,
) -> StoreResult<Ingested> {
    let fresh = sqlx::query(INSERT_NONCE)
        .bind(&rep.key_id)
        .bind(nonce)
        .bind(rep.received_at)
        .execute(&mut **tx)
        .await?
        .rows_affected()
        == 1;
    if !fresh {
        // Nothing was written for this one; the rest of the batch stands.
        let active = sqlx::query(ACTIVE_NODE)
            .bind(&rep.key_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        return Ok(if active {
            Ingested::NonceReused
        } else {
            Ingested::NodeRevoked
        });
    }
    let id: i64 = sqlx::query(INSERT_REPORT)
        .bind(&rep.store)
        .bind(&rep.key_id)
        .bind(rep.received_at)
        .bind(&rep.outcome)
        .bind(rev_db(rep.desired_revision))
        .bind(rev_db(rep.applied_revision))
        .bind(&rep.commit)
        .bind(&rep.body)
        .fetch_one(&mut **tx)
        .await?
        .try_get("id")?;
    Ok(Ingested::Stored(id))
}
