//! The PostgreSQL backend: how it connects and migrates, and its report
//! ingest. Everything else is the shared [`SqlStore`].
//!
//! One pool serves reads and writes; [`WRITERS`] group-commit writers each
//! take a connection of it while they write (ADR 24).

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Postgres, Row as _};

use super::group_commit::{BatchWrite, GroupCommit, Queued};
use super::rows::rev_db;
use super::sql::{RowsAffected, SqlStore, tenant_of};
use super::{Ingested, StoreError, StoreFuture, StoreResult};

/// The PostgreSQL backend.
pub type PgStore = SqlStore<Postgres>;

/// Group-commit writers, each with a connection of the pool while it
/// writes (SQLite has one: it has one writer connection).
const WRITERS: usize = 4;

/// That the database of `url` exists and holds the service's tables.
pub(super) async fn check_set_up(url: &str) -> StoreResult<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(StoreError::Connect)?;
    let set_up: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name = 'status_nodes')",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    if set_up {
        Ok(())
    } else {
        Err(StoreError::NotSetUp {
            url: url.to_owned(),
            what: "no fleet-status tables in the database",
        })
    }
}

/// Connect to the database of `url` and migrate it.
pub(super) async fn open(url: &str) -> StoreResult<PgStore> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(StoreError::Connect)?;
    sqlx::migrate!("../migrations/status/postgres")
        .run(&pool)
        .await?;
    let batches = GroupCommit::start(pool.clone(), WRITERS);
    Ok(SqlStore::new(pool.clone(), pool, batches))
}

impl RowsAffected for PgQueryResult {
    fn rows_affected(&self) -> u64 {
        PgQueryResult::rows_affected(self)
    }
}

/// [`Store::ingest_report`](super::Store::ingest_report) on PostgreSQL:
/// one statement of data-modifying CTEs, so one round trip. The nonce is inserted only for an active key; the report
/// and the summary only if the nonce was new.
const INGEST: &str = "WITH node AS ( \
        SELECT key_id FROM status_nodes WHERE key_id = $2 AND revoked_at IS NULL \
    ), fresh AS ( \
        INSERT INTO status_nonces (key_id, nonce, seen_at) SELECT key_id, $9, $3 FROM node \
        ON CONFLICT (key_id, nonce) DO NOTHING RETURNING key_id \
    ), report AS ( \
        INSERT INTO status_reports (store, key_id, received_at, outcome, desired_revision, \
        applied_revision, source_commit, body) \
        SELECT $1, key_id, $3, $4, $5, $6, $7, $8 FROM fresh RETURNING id \
    ), summary AS ( \
        INSERT INTO status_stores (store, tenant, last_seen, last_outcome, applied_revision, \
        last_drift, last_overridden, reconciler_version, root_version, release_api, \
        reported_revision) \
        SELECT $1, $10, $3, $4, $6, $11, $12, $13, $14, $15, $5 FROM fresh \
        ON CONFLICT (store) DO UPDATE SET last_seen = EXCLUDED.last_seen, \
        last_outcome = EXCLUDED.last_outcome, \
        applied_revision = COALESCE(EXCLUDED.applied_revision, status_stores.applied_revision), \
        last_drift = EXCLUDED.last_drift, last_overridden = EXCLUDED.last_overridden, \
        reconciler_version = EXCLUDED.reconciler_version, root_version = EXCLUDED.root_version, \
        release_api = EXCLUDED.release_api, reported_revision = EXCLUDED.reported_revision \
    ) \
    SELECT (SELECT id FROM report) AS id, EXISTS (SELECT 1 FROM node) AS active";

/// A batch of ingests in one transaction, one [`INGEST`] statement each.
impl BatchWrite for PgPool {
    fn write_batch<'a>(&'a self, batch: &'a [Queued]) -> StoreFuture<'a, Vec<Ingested>> {
        Box::pin(async move {
            // Writers lock store summary rows in store order, so two
            // batches that share stores wait for each other instead of
            // deadlocking (which PostgreSQL breaks only after a second).
            // The sort is stable: one store's reports keep their order.
            let mut order: Vec<usize> = (0..batch.len()).collect();
            order.sort_by(|&a, &b| batch[a].report.store.cmp(&batch[b].report.store));
            let mut tx = self.begin().await?;
            let mut out = vec![Ingested::NonceReused; batch.len()];
            for i in order {
                let q = &batch[i];
                let rep = &q.report;
                let row = sqlx::query(INGEST)
                    .bind(&rep.store)
                    .bind(&rep.key_id)
                    .bind(rep.received_at)
                    .bind(&rep.outcome)
                    .bind(rev_db(rep.desired_revision))
                    .bind(rev_db(rep.applied_revision))
                    .bind(&rep.commit)
                    .bind(&rep.body)
                    .bind(&q.nonce)
                    .bind(tenant_of(&rep.store))
                    .bind(rep.drift as i64)
                    .bind(rep.overridden as i64)
                    .bind(&rep.reconciler_version)
                    .bind(rev_db(rep.root_version))
                    .bind(&rep.release_api)
                    .fetch_one(&mut *tx)
                    .await?;
                let id: Option<i64> = row.try_get("id")?;
                let active: bool = row.try_get("active")?;
                out[i] = match (id, active) {
                    (Some(id), _) => Ingested::Stored(id),
                    (None, true) => Ingested::NonceReused,
                    (None, false) => Ingested::NodeRevoked,
                };
            }
            tx.commit().await?;
            Ok(out)
        })
    }
}
