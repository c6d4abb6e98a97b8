//! The SQL both backends share: [`SqlStore`], one implementation of
//! [`Store`] generic over the sqlx database, compiled for SQLite and for
//! PostgreSQL (ADR 32).
//!
//! Both dialects accept `$n` placeholders, `ON CONFLICT … DO UPDATE/NOTHING`
//! and `RETURNING`, so every method but one runs the same SQL text on both.
//! The exception is the hot path, [`Store::ingest_report`]: it hands the
//! report to the group-commit writers, whose transaction is the backend's
//! own ([`BatchWrite`](super::group_commit::BatchWrite) in `sqlite.rs` and
//! `postgres.rs`). A later dialect difference gets a backend method there
//! too, never a branch on the database inside this file.
//!
//! What this file must not do: know which database it runs on, decide
//! what a missing row means (the caller does), or cache anything.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row as _, Type};

use super::group_commit::GroupCommit;
use super::rows::{count, rev_db};
use super::{
    ActionAnswer, ActionRow, AlertEvent, AuditEntry, BundleRow, DesiredRow, HeldAlert, Ingested,
    NewAudit, NewBundle, NewOperator, NewReport, Node, OperatorRow, PendingSignature, QueuedAlert,
    ReportRow, Store, StoreFuture, StoreRow, TokenProblem,
};

/// An operator token by its hash ($1): the columns of [`OperatorRow`].
const OPERATOR_BY_HASH: &str = "SELECT id, role, tenants, stores, created_at, expires_at, \
     revoked_at FROM status_operators WHERE token_hash = $1";

/// Every operator token, oldest first.
const ALL_OPERATORS: &str = "SELECT id, role, tenants, stores, created_at, expires_at, \
     revoked_at FROM status_operators ORDER BY created_at, id";

/// The tenant of a stored store id (`acme/soho` → `acme`). Ids are parsed
/// as `schemas::StoreId` before they are stored (enrollment, tokens,
/// reports, the repo's directories); this only reads back the prefix, and
/// keeps whatever text an older database holds visible under its prefix.
pub(super) fn tenant_of(store: &str) -> &str {
    store.split_once('/').map(|(t, _)| t).unwrap_or(store)
}

/// Make a store known (a row in `status_stores`) without touching it if
/// it is: $1 store, $2 tenant.
const ENSURE_STORE: &str =
    "INSERT INTO status_stores (store, tenant) VALUES ($1, $2) ON CONFLICT (store) DO NOTHING";

/// $1 store, $2 time.
const REVOKE_STORE_NODES: &str =
    "UPDATE status_nodes SET revoked_at = $2 WHERE store = $1 AND revoked_at IS NULL";

/// A node by key id or base64 public key ($1).
const FIND_NODE: &str = "SELECT key_id, public_key, store, enrolled_at, revoked_at, recipient \
     FROM status_nodes WHERE key_id = $1 OR public_key = $1";

/// Every node key of a store ($1), newest first.
const STORE_NODES: &str = "SELECT key_id, public_key, store, enrolled_at, revoked_at, recipient \
     FROM status_nodes WHERE store = $1 ORDER BY enrolled_at DESC, key_id";

/// One store's overview row ($1 store).
const ONE_STORE: &str = "SELECT s.store, s.tenant, s.in_repo, s.desired_revision, \
     s.desired_commit, s.expires_at, s.release_valid, s.release_error, s.checked_at, s.last_seen, \
     s.last_outcome, s.applied_revision, s.last_drift, s.last_overridden, s.reconciler_version, \
     s.root_version, s.release_api, s.reported_revision, (SELECT COUNT(*) FROM status_nodes n WHERE n.store = s.store AND n.revoked_at IS NULL) AS active_nodes \
     FROM status_stores s WHERE s.store = $1";

/// [`ONE_STORE`] for every store at once: the active node counts come
/// from one grouped scan of `status_nodes` joined in, instead of a
/// subquery per row (the overview reads all 10,000 rows on every request;
/// docs/BENCHMARKS.md, "Status dashboard").
const ALL_STORES: &str = "SELECT s.store, s.tenant, s.in_repo, s.desired_revision, \
     s.desired_commit, s.expires_at, s.release_valid, s.release_error, s.checked_at, s.last_seen, \
     s.last_outcome, s.applied_revision, s.last_drift, s.last_overridden, s.reconciler_version, \
     s.root_version, s.release_api, s.reported_revision, COALESCE(n.active, 0) AS active_nodes \
     FROM status_stores s LEFT JOIN (SELECT store, COUNT(*) AS active FROM status_nodes \
     WHERE revoked_at IS NULL GROUP BY store) n ON n.store = s.store ORDER BY s.store";

/// The newest $2 reports of store $1, newest first.
const STORE_REPORTS: &str = "SELECT id, received_at, key_id, outcome, \
     desired_revision, applied_revision, source_commit, body FROM status_reports \
     WHERE store = $1 ORDER BY id DESC LIMIT $2";

const AUDIT_ENTRIES: &str =
    "SELECT id, at, actor, action, store, result, detail FROM status_audit ORDER BY id";

/// The upsert of `rows` desired rows, each bound as store, tenant,
/// revision, commit, expiry, valid (0/1), error, checked at: 8 parameters
/// a row, so a backend's rows a statement (`desired_rows`) stay well under
/// SQLite's 32,766 and PostgreSQL's 65,535 parameters a statement.
fn set_desired_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|i| {
            let p = |k: usize| format!("${}", i * 8 + k);
            format!(
                "({}, {}, 1, {}, {}, {}, {}, {}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7),
                p(8)
            )
        })
        .collect();
    format!(
        "INSERT INTO status_stores (store, tenant, in_repo, desired_revision, \
             desired_commit, expires_at, release_valid, release_error, checked_at) VALUES {} \
             ON CONFLICT (store) DO UPDATE SET in_repo = 1, \
             desired_revision = excluded.desired_revision, \
             desired_commit = excluded.desired_commit, expires_at = excluded.expires_at, \
             release_valid = excluded.release_valid, release_error = excluded.release_error, \
             checked_at = excluded.checked_at",
        values.join(", ")
    )
}

/// The columns of [`ActionRow`].
const ACTION_COLUMNS: &str = "id, store, kind, requested_by, requested_at, delivered_at, \
     done_at, result, detail, report_id, bundle_id";

/// What an action to hand out is: $1 store, $2 delivered before this is
/// due again, $3 requested before this has expired.
const ACTION_DUE: &str = "store = $1 AND done_at IS NULL AND requested_at >= $3 \
     AND (delivered_at IS NULL OR delivered_at < $2)";

/// The support bundles of store $1, newest first, without their bytes.
const STORE_BUNDLES: &str = "SELECT id, key_id, received_at, size, action_id \
     FROM status_support_bundles WHERE store = $1 ORDER BY received_at DESC, id DESC";

/// How many rows a statement wrote. Both drivers answer it, but as an
/// inherent method of their own result type, not through a trait of sqlx;
/// `sqlite.rs` and `postgres.rs` implement this for theirs.
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

/// The storage of the status service on one database: `write` takes every
/// write, `read` every read. On SQLite they are two pools (one connection
/// writes; ADR 24), on PostgreSQL the same pool twice. Report ingest goes
/// through `batches`, the group-commit writers.
///
/// The `where` clause of its [`Store`] impl is what the shared SQL needs of
/// a database: run a query on a pool or in a transaction and count the
/// rows it wrote, bind `i64` and text (either possibly `NULL`), and decode
/// `i64` and text by column name. SQLite and PostgreSQL both provide it.
#[derive(Debug, Clone)]
pub struct SqlStore<DB: Database> {
    write: Pool<DB>,
    read: Pool<DB>,
    batches: GroupCommit,
    /// Rows of one `set_desired` statement: the backend's own ([`SqlStore::new`]).
    desired_rows: usize,
}

impl<DB: Database> SqlStore<DB> {
    /// The store on these pools, writing desired rows `desired_rows` to
    /// a statement.
    pub(super) fn new(
        write: Pool<DB>,
        read: Pool<DB>,
        batches: GroupCommit,
        desired_rows: usize,
    ) -> SqlStore<DB> {
        SqlStore {
            write,
            read,
            batches,
            desired_rows: desired_rows.max(1),
        }
    }
}

/// Node keys: the pieces `enroll_node` and `rotate_node` share.
impl<DB> SqlStore<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    DB::QueryResult: RowsAffected,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    /// Whether a node with `node`'s key id or public key exists (revoked
    /// ones too: a key is never enrolled twice).
    async fn node_known(&self, node: &Node) -> Result<bool, sqlx::Error> {
        let row =
            sqlx::query("SELECT key_id FROM status_nodes WHERE key_id = $1 OR public_key = $2")
                .bind(node.key_id.as_str())
                .bind(node.public_key.as_str())
                .fetch_optional(&self.read)
                .await?;
        Ok(row.is_some())
    }
}

/// Insert `node` in `tx`; false (a racing request enrolled the same key)
/// leaves the caller to drop the transaction.
async fn insert_node<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    node: &Node,
) -> Result<bool, sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    DB::QueryResult: RowsAffected,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    let inserted = sqlx::query(
        "INSERT INTO status_nodes (key_id, public_key, store, enrolled_at, recipient) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(node.key_id.as_str())
    .bind(node.public_key.as_str())
    .bind(node.store.as_str())
    .bind(node.enrolled_at)
    .bind(node.recipient.as_deref())
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

impl<DB> Store for SqlStore<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    DB::QueryResult: RowsAffected,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    &'static str: ColumnIndex<DB::Row>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
{
    fn create_bootstrap_token<'a>(
        &'a self,
        hash: &'a str,
        store: &'a str,
        now: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write.begin().await?;
            sqlx::query(
                "INSERT INTO status_bootstrap_tokens (token_hash, store, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(hash)
            .bind(store)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(ENSURE_STORE)
                .bind(store)
                .bind(tenant_of(store))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn consume_bootstrap_token<'a>(
        &'a self,
        hash: &'a str,
        for_store: Option<&'a str>,
        now: i64,
    ) -> StoreFuture<'a, Result<String, TokenProblem>> {
        Box::pin(async move {
            // One statement, so two racing enrollments cannot both win.
            let used = sqlx::query(
                "UPDATE status_bootstrap_tokens SET used_at = $2 \
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                 AND ($3 IS NULL OR store = $3) RETURNING store",
            )
            .bind(hash)
            .bind(now)
            .bind(for_store)
            .fetch_optional(&self.write)
            .await?;
            if let Some(row) = used {
                return Ok(Ok(row.try_get("store")?));
            }
            let row = sqlx::query(
                "SELECT store, expires_at, used_at FROM status_bootstrap_tokens \
                 WHERE token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(&self.read)
            .await?;
            let Some(row) = row else {
                return Ok(Err(TokenProblem::Unknown));
            };
            let used_at: Option<i64> = row.try_get("used_at")?;
            let expires_at: i64 = row.try_get("expires_at")?;
            Ok(Err(if used_at.is_some() {
                TokenProblem::AlreadyUsed
            } else if expires_at <= now {
                TokenProblem::Expired
            } else {
                TokenProblem::OtherStore
            }))
        })
    }

    fn enroll_node<'a>(&'a self, node: &'a Node) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            // Checked before the transaction: on SQLite a transaction that
            // reads before it writes can fail to upgrade under concurrent writers.
            if self.node_known(node).await? {
                return Ok(false);
            }
            let mut tx = self.write.begin().await?;
            sqlx::query(REVOKE_STORE_NODES)
                .bind(node.store.as_str())
                .bind(node.enrolled_at)
                .execute(&mut *tx)
                .await?;
            // The same key enrolled by a racing request: nothing written.
            if !insert_node(&mut tx, node).await? {
                return Ok(false);
            }
            sqlx::query(ENSURE_STORE)
                .bind(node.store.as_str())
                .bind(tenant_of(&node.store))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn find_node<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Node>> {
        Box::pin(async move {
            Ok(sqlx::query_as(FIND_NODE)
                .bind(key)
                .fetch_optional(&self.read)
                .await?)
        })
    }

    fn rotate_node<'a>(&'a self, old_key_id: &'a str, new: &'a Node) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            // Checked before the transaction, as in `enroll_node`.
            if self.node_known(new).await? {
                return Ok(false);
            }
            let mut tx = self.write.begin().await?;
            let revoked = sqlx::query(
                "UPDATE status_nodes SET revoked_at = $3 \
                 WHERE key_id = $1 AND store = $2 AND revoked_at IS NULL",
            )
            .bind(old_key_id)
            .bind(new.store.as_str())
            .bind(new.enrolled_at)
            .execute(&mut *tx)
            .await?;
            if revoked.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            if !insert_node(&mut tx, new).await? {
                return Ok(false);
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    fn revoke_store_nodes<'a>(&'a self, store: &'a str, now: i64) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let done = sqlx::query(REVOKE_STORE_NODES)
                .bind(store)
                .bind(now)
                .execute(&self.write)
                .await?;
            Ok(done.rows_affected())
        })
    }

    fn use_nonce<'a>(&'a self, key_id: &'a str, nonce: &'a str, now: i64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO status_nonces (key_id, nonce, seen_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key_id, nonce) DO NOTHING",
            )
            .bind(key_id)
            .bind(nonce)
            .bind(now)
            .execute(&self.write)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn forget_nonces(&self, before: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM status_nonces WHERE seen_at < $1")
                .bind(before)
                .execute(&self.write)
                .await?;
            Ok(done.rows_affected())
        })
    }

    fn create_operator<'a>(&'a self, op: &'a NewOperator<'a>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (tenants, stores) = (op.tenants.join(","), op.stores.join(","));
            sqlx::query(
                "INSERT INTO status_operators \
                 (token_hash, id, role, tenants, stores, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(op.hash)
            .bind(&op.hash[..op.hash.len().min(12)])
            .bind(op.role)
            .bind(tenants.as_str())
            .bind(stores.as_str())
            .bind(op.created_at)
            .bind(op.expires_at)
            .execute(&self.write)
            .await?;
            Ok(())
        })
    }

    fn operator_by_hash<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<OperatorRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as::<DB, OperatorRow>(OPERATOR_BY_HASH)
                .bind(hash)
                .fetch_optional(&self.read)
                .await?)
        })
    }

    fn operators(&self) -> StoreFuture<'_, Vec<OperatorRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as::<DB, OperatorRow>(ALL_OPERATORS)
                .fetch_all(&self.read)
                .await?)
        })
    }

    fn revoke_operator<'a>(&'a self, id: &'a str, now: i64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE status_operators SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(&self.write)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn audit<'a>(&'a self, e: NewAudit<'a>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO status_audit (at, actor, action, store, result, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(e.at)
            .bind(e.actor)
            .bind(e.action)
            .bind(e.store)
            .bind(e.result)
            .bind(e.detail)
            .execute(&self.write)
            .await?;
            Ok(())
        })
    }

    fn audit_entries(&self) -> StoreFuture<'_, Vec<AuditEntry>> {
        Box::pin(async move { Ok(sqlx::query_as(AUDIT_ENTRIES).fetch_all(&self.read).await?) })
    }

    fn ingest_report<'a>(
        &'a self,
        nonce: &'a str,
        rep: &'a NewReport,
        signature: Option<PendingSignature>,
    ) -> StoreFuture<'a, Ingested> {
        Box::pin(self.batches.ingest(nonce, rep, signature))
    }

    fn set_desired<'a>(&'a self, rows: &'a [DesiredRow]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write.begin().await?;
            sqlx::query("UPDATE status_stores SET in_repo = 0")
                .execute(&mut *tx)
                .await?;
            // Many rows a statement: 10,000 stores are 20 (PostgreSQL) or
            // 200 (SQLite) round trips to the database, not 10,000.
            for chunk in rows.chunks(self.desired_rows) {
                let sql = set_desired_sql(chunk.len());
                let mut q = sqlx::query::<DB>(&sql);
                for d in chunk {
                    q = q
                        .bind(d.store.as_str())
                        .bind(tenant_of(&d.store))
                        .bind(rev_db(d.revision))
                        .bind(d.commit.as_str())
                        .bind(d.expires_at)
                        .bind(i64::from(d.valid))
                        .bind(d.error.as_deref())
                        .bind(d.checked_at);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn list_stores(&self) -> StoreFuture<'_, Vec<StoreRow>> {
        Box::pin(async move { Ok(sqlx::query_as(ALL_STORES).fetch_all(&self.read).await?) })
    }

    fn get_store<'a>(&'a self, store: &'a str) -> StoreFuture<'a, Option<StoreRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as(ONE_STORE)
                .bind(store)
                .fetch_optional(&self.read)
                .await?)
        })
    }

    fn reports<'a>(&'a self, store: &'a str, limit: i64) -> StoreFuture<'a, Vec<ReportRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as(STORE_REPORTS)
                .bind(store)
                .bind(limit)
                .fetch_all(&self.read)
                .await?)
        })
    }

    fn forget_reports(&self, before: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM status_reports WHERE received_at < $1")
                .bind(before)
                .execute(&self.write)
                .await?;
            Ok(done.rows_affected())
        })
    }

    fn report_count(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM status_reports")
                .fetch_one(&self.read)
                .await?;
            Ok(count(row.try_get("n")?))
        })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.read.close().await;
            self.write.close().await;
            Ok(())
        })
    }

    fn store_nodes<'a>(&'a self, store: &'a str) -> StoreFuture<'a, Vec<Node>> {
        Box::pin(async move {
            Ok(sqlx::query_as(STORE_NODES)
                .bind(store)
                .fetch_all(&self.read)
                .await?)
        })
    }

    fn request_action<'a>(
        &'a self,
        store: &'a str,
        kind: &'a str,
        requested_by: &'a str,
        now: i64,
    ) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let row = sqlx::query(
                "INSERT INTO status_actions (store, kind, requested_by, requested_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(store)
            .bind(kind)
            .bind(requested_by)
            .bind(now)
            .fetch_one(&self.write)
            .await?;
            Ok(row.try_get("id")?)
        })
    }

    fn has_actions<'a>(
        &'a self,
        store: &'a str,
        redeliver_before: i64,
        expire_before: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let row = sqlx::query(&format!(
                "SELECT id FROM status_actions WHERE {ACTION_DUE} LIMIT 1"
            ))
            .bind(store)
            .bind(redeliver_before)
            .bind(expire_before)
            .fetch_optional(&self.read)
            .await?;
            Ok(row.is_some())
        })
    }

    fn deliver_actions<'a>(
        &'a self,
        store: &'a str,
        now: i64,
        redeliver_before: i64,
        expire_before: i64,
    ) -> StoreFuture<'a, Vec<ActionRow>> {
        Box::pin(async move {
            let mut rows: Vec<ActionRow> = sqlx::query_as(&format!(
                "UPDATE status_actions SET delivered_at = $4 WHERE {ACTION_DUE} \
                 RETURNING {ACTION_COLUMNS}"
            ))
            .bind(store)
            .bind(redeliver_before)
            .bind(expire_before)
            .bind(now)
            .fetch_all(&self.write)
            .await?;
            rows.sort_by_key(|a| a.id);
            Ok(rows)
        })
    }

    fn answer_action<'a>(
        &'a self,
        store: &'a str,
        id: i64,
        a: ActionAnswer<'a>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE status_actions SET done_at = $3, result = $4, detail = $5, \
                 report_id = $6, bundle_id = $7 \
                 WHERE store = $1 AND id = $2 AND kind = $8 AND done_at IS NULL",
            )
            .bind(store)
            .bind(id)
            .bind(a.at)
            .bind(a.result)
            .bind(a.detail)
            .bind(a.report_id)
            .bind(a.bundle_id)
            .bind(a.kind.as_str())
            .execute(&self.write)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn store_actions<'a>(&'a self, store: &'a str, limit: i64) -> StoreFuture<'a, Vec<ActionRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as(&format!(
                "SELECT {ACTION_COLUMNS} FROM status_actions WHERE store = $1 \
                 ORDER BY id DESC LIMIT $2"
            ))
            .bind(store)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
        })
    }

    fn put_bundle<'a>(&'a self, b: NewBundle<'a>, keep: i64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write.begin().await?;
            sqlx::query(
                "INSERT INTO status_support_bundles \
                 (id, store, key_id, received_at, size, action_id, body) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(b.id)
            .bind(b.store)
            .bind(b.key_id)
            .bind(b.received_at)
            .bind(i64::try_from(b.body.len()).unwrap_or(i64::MAX))
            .bind(b.action_id)
            .bind(b.body)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM status_support_bundles WHERE store = $1 AND id NOT IN \
                 (SELECT id FROM status_support_bundles WHERE store = $1 \
                 ORDER BY received_at DESC, id DESC LIMIT $2)",
            )
            .bind(b.store)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
            if let Some(action) = b.action_id {
                sqlx::query(
                    "UPDATE status_actions SET done_at = $3, result = 'done', detail = $4, \
                     bundle_id = $4 WHERE store = $1 AND id = $2 AND kind = $5 \
                     AND done_at IS NULL",
                )
                .bind(b.store)
                .bind(action)
                .bind(b.received_at)
                .bind(b.id)
                .bind(wire::desired::ActionKind::SupportBundle.as_str())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn bundles<'a>(&'a self, store: &'a str) -> StoreFuture<'a, Vec<BundleRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as(STORE_BUNDLES)
                .bind(store)
                .fetch_all(&self.read)
                .await?)
        })
    }

    fn bundle<'a>(&'a self, store: &'a str, id: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let row =
                sqlx::query("SELECT body FROM status_support_bundles WHERE store = $1 AND id = $2")
                    .bind(store)
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
            Ok(match row {
                Some(r) => Some(r.try_get("body")?),
                None => None,
            })
        })
    }

    fn held_alerts(&self) -> StoreFuture<'_, Vec<HeldAlert>> {
        Box::pin(async move {
            Ok(sqlx::query_as(
                "SELECT kind, subject, message, since FROM status_alerts ORDER BY kind, subject",
            )
            .fetch_all(&self.read)
            .await?)
        })
    }

    fn queue_alerts<'a>(&'a self, events: &'a [AlertEvent]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write.begin().await?;
            for e in events {
                if e.status == "resolved" {
                    sqlx::query("DELETE FROM status_alerts WHERE kind = $1 AND subject = $2")
                        .bind(e.kind.as_str())
                        .bind(e.subject.as_str())
                        .execute(&mut *tx)
                        .await?;
                } else {
                    sqlx::query(
                        "INSERT INTO status_alerts (kind, subject, message, since) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (kind, subject) DO UPDATE \
                         SET message = $3, since = $4",
                    )
                    .bind(e.kind.as_str())
                    .bind(e.subject.as_str())
                    .bind(e.message.as_str())
                    .bind(e.at)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO status_alert_events (kind, status, subject, message, at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(e.kind.as_str())
                .bind(e.status.as_str())
                .bind(e.subject.as_str())
                .bind(e.message.as_str())
                .bind(e.at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn queued_alerts(&self, limit: i64) -> StoreFuture<'_, Vec<QueuedAlert>> {
        Box::pin(async move {
            Ok(sqlx::query_as(
                "SELECT id, kind, status, subject, message, at FROM status_alert_events \
                 ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
        })
    }

    fn alert_delivered(&self, id: i64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM status_alert_events WHERE id = $1")
                .bind(id)
                .execute(&self.write)
                .await?;
            Ok(())
        })
    }

    fn trim_alerts(&self, keep: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let done = sqlx::query(
                "DELETE FROM status_alert_events WHERE id NOT IN \
                 (SELECT id FROM status_alert_events ORDER BY id DESC LIMIT $1)",
            )
            .bind(keep)
            .execute(&self.write)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
