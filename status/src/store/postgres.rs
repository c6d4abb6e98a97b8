//! The PostgreSQL backend: how it connects and migrates, and its report
//! ingest. Everything else is the shared [`SqlStore`].
//!
//! One pool serves reads and writes; the group-commit writer takes a
//! connection of it for each batch it writes (up to [`WRITES_IN_FLIGHT`]
//! at once), as one statement ([`INGEST_BATCH`], ADR 24, 50 and 58).

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Postgres, Row as _};

use super::group_commit::{BatchWrite, GroupCommit, Queued, first_uses};
use super::rows::rev_db;
use super::sql::{RowsAffected, SqlStore, tenant_of};
use super::{Ingested, NewReport, StoreError, StoreFuture, StoreResult};

/// The PostgreSQL backend.
pub type PgStore = SqlStore<Postgres>;

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

/// Batches the group commit writes at once, each on its own connection
/// (ADR 58).
const WRITES_IN_FLIGHT: usize = 2;

/// Desired rows a `set_desired` statement (4,000 parameters): 10,000
/// stores are 20 round trips (ADR 54).
const DESIRED_ROWS: usize = 500;
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
    let batches = GroupCommit::start(pool.clone(), WRITES_IN_FLIGHT);
    Ok(SqlStore::new(pool.clone(), pool, batches, DESIRED_ROWS))
}

impl RowsAffected for PgQueryResult {
    fn rows_affected(&self) -> u64 {
        PgQueryResult::rows_affected(self)
    }
}

/// A whole batch of ingests as one statement, so one round trip and one
/// implicit transaction (all of it or nothing), whatever the batch's size.
/// The batch comes as arrays, one per column ($1 position in the batch,
/// $2 key id, $3 nonce, $4 time received, $5 store, $6 tenant, $7 outcome,
/// $8 desired revision, $9 applied revision, $10 commit, $11 body,
/// $12 drift, $13 overridden, $14 reconciler version, $15 root version,
/// $16 release apiVersions):
///
/// - a nonce is inserted only for an active key and only if new (the
///   nonce table compares with `COLLATE "C"`, migration 0010);
/// - the reports whose nonce was inserted are stored, in position order;
/// - each of their stores' summary is written once, from its last report
///   of the batch, with the last applied revision any of them named (none:
///   the stored one stays), in store order, so two writers lock summary
///   rows in the same order and never deadlock (`group_commit::summaries`
///   is the same rule, and the second model of its test).
///
/// Answers the positions stored, their report ids in the same order (ids
/// grow in insertion order within one statement), and the active keys.
const INGEST_BATCH: &str = "WITH input AS ( \
        SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], \
        $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::TEXT[], $11::TEXT[], \
        $12::BIGINT[], $13::BIGINT[], $14::TEXT[], $15::BIGINT[], $16::TEXT[]) \
        AS i (pos, key_id, nonce, received_at, store, tenant, outcome, desired_revision, \
        applied_revision, source_commit, body, drift, overridden, reconciler_version, \
        root_version, release_api) \
    ), active AS ( \
        SELECT DISTINCT i.key_id FROM input i JOIN status_nodes n \
        ON n.key_id = i.key_id AND n.revoked_at IS NULL \
    ), fresh AS ( \
        INSERT INTO status_nonces (key_id, nonce, seen_at) \
        SELECT i.key_id, i.nonce, i.received_at FROM input i JOIN active a ON a.key_id = i.key_id \
        ON CONFLICT (key_id, nonce) DO NOTHING RETURNING key_id, nonce \
    ), stored AS ( \
        SELECT i.* FROM input i JOIN fresh f \
        ON f.key_id = i.key_id COLLATE \"C\" AND f.nonce = i.nonce COLLATE \"C\" \
    ), reports AS ( \
        INSERT INTO status_reports (store, key_id, received_at, outcome, desired_revision, \
        applied_revision, source_commit, body) \
        SELECT store, key_id, received_at, outcome, desired_revision, applied_revision, \
        source_commit, body FROM stored ORDER BY pos RETURNING id \
    ), summaries AS ( \
        INSERT INTO status_stores (store, tenant, last_seen, last_outcome, applied_revision, \
        last_drift, last_overridden, reconciler_version, root_version, release_api, \
        reported_revision) \
        SELECT DISTINCT ON (s.store) s.store, s.tenant, s.received_at, s.outcome, \
        (SELECT t.applied_revision FROM stored t WHERE t.store = s.store \
         AND t.applied_revision IS NOT NULL ORDER BY t.pos DESC LIMIT 1), \
        s.drift, s.overridden, s.reconciler_version, s.root_version, s.release_api, \
        s.desired_revision \
        FROM stored s ORDER BY s.store, s.pos DESC \
        ON CONFLICT (store) DO UPDATE SET last_seen = EXCLUDED.last_seen, \
        last_outcome = EXCLUDED.last_outcome, \
        applied_revision = COALESCE(EXCLUDED.applied_revision, status_stores.applied_revision), \
        last_drift = EXCLUDED.last_drift, last_overridden = EXCLUDED.last_overridden, \
        reconciler_version = EXCLUDED.reconciler_version, root_version = EXCLUDED.root_version, \
        release_api = EXCLUDED.release_api, reported_revision = EXCLUDED.reported_revision \
    ) \
    SELECT \
        COALESCE((SELECT array_agg(pos ORDER BY pos) FROM stored), '{}') AS stored, \
        COALESCE((SELECT array_agg(id ORDER BY id) FROM reports), '{}') AS ids, \
        COALESCE((SELECT array_agg(key_id) FROM active), '{}') AS active";

/// A batch of ingests as one statement ([`INGEST_BATCH`]).
impl BatchWrite for PgPool {
    fn write_batch<'a>(&'a self, batch: &'a [Queued]) -> StoreFuture<'a, Vec<Ingested>> {
        Box::pin(async move {
            let first = first_uses(batch);
            let at: Vec<usize> = (0..batch.len()).filter(|&i| first[i]).collect();
            let col = |f: &dyn Fn(&Queued) -> Option<String>| -> Vec<Option<String>> {
                at.iter().map(|&i| f(&batch[i])).collect()
            };
            let num = |f: &dyn Fn(&NewReport) -> Option<i64>| -> Vec<Option<i64>> {
                at.iter().map(|&i| f(&batch[i].report)).collect()
            };
            let row = sqlx::query(INGEST_BATCH)
                .bind(at.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .bind(col(&|q| Some(q.report.key_id.clone())))
                .bind(col(&|q| Some(q.nonce.clone())))
                .bind(num(&|r| Some(r.received_at)))
                .bind(col(&|q| Some(q.report.store.clone())))
                .bind(col(&|q| Some(tenant_of(&q.report.store).to_owned())))
                .bind(col(&|q| Some(q.report.outcome.clone())))
                .bind(num(&|r| rev_db(r.desired_revision)))
                .bind(num(&|r| rev_db(r.applied_revision)))
                .bind(col(&|q| q.report.commit.clone()))
                .bind(col(&|q| Some(q.report.body.clone())))
                .bind(num(&|r| Some(r.drift as i64)))
                .bind(num(&|r| Some(r.overridden as i64)))
                .bind(col(&|q| Some(q.report.reconciler_version.clone())))
                .bind(num(&|r| rev_db(r.root_version)))
                .bind(col(&|q| q.report.release_api.clone()))
                .fetch_one(self)
                .await?;
            let stored: Vec<i64> = row.try_get("stored")?;
            let ids: Vec<i64> = row.try_get("ids")?;
            let active: Vec<String> = row.try_get("active")?;
            if ids.len() != stored.len() {
                return Err(StoreError::Sql(sqlx::Error::Protocol(format!(
                    "{} reports inserted for {} fresh nonces",
                    ids.len(),
                    stored.len()
                ))));
            }
            let mut out: Vec<Ingested> = batch
                .iter()
                .map(|q| {
                    if active.contains(&q.report.key_id) {
                        Ingested::NonceReused
                    } else {
                        Ingested::NodeRevoked
                    }
                })
                .collect();
            for (pos, id) in stored.into_iter().zip(ids) {
                if let Some(slot) = usize::try_from(pos).ok().and_then(|p| out.get_mut(p)) {
                    *slot = Ingested::Stored(id);
                }
            }
            Ok(out)
        })
    }
}
