//! Storage of the status service: one [`Store`] trait, two backends
//! ([`SqliteStore`], [`PgStore`]), each with its own migrations in
//! `migrations/status/{sqlite,postgres}/`, chosen once from the URL scheme
//! by [`open`].
//!
//! Both backends run the same SQL text (`$n` placeholders work in both),
//! written once in the `sql_store!` macro; only the schema files differ.
//! The one exception is the hot path, [`Store::ingest_report`]: one
//! statement of data-modifying CTEs on PostgreSQL, three statements on
//! SQLite (which has no such CTEs), both inside a transaction that a
//! group-commit writer shares between the reports that queued together
//! (ADR 24). Times are unix seconds and booleans 0/1 so that one row
//! decoder serves both. Nothing here knows HTTP or policy: the caller
//! decides what a missing row means.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row as _;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tokio::sync::{mpsc, oneshot};

/// A storage failure. Always internal: the API answers 500 and logs it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?} is neither sqlite:// nor postgres://")]
    UnknownScheme(String),
    #[error("connecting to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("the database writer stopped")]
    WriterStopped,
}

pub type StoreResult<T> = Result<T, StoreError>;
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// An enrolled node key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub key_id: String,
    /// Base64 Ed25519 public key.
    pub public_key: String,
    pub store: String,
    pub enrolled_at: i64,
    pub revoked_at: Option<i64>,
}

/// Why a bootstrap token could not be used (for the audit entry; the
/// client only ever sees 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    AlreadyUsed,
    Expired,
    OtherStore,
}

impl TokenProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenProblem::Unknown => "unknown token",
            TokenProblem::AlreadyUsed => "token already used",
            TokenProblem::Expired => "token expired",
            TokenProblem::OtherStore => "token is for another store",
        }
    }
}

/// What the service verified of a store's release at one fetched commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRow {
    pub store: String,
    pub revision: Option<u64>,
    pub commit: String,
    pub expires_at: Option<i64>,
    pub valid: bool,
    pub error: Option<String>,
    pub checked_at: i64,
}

/// A report as received, with its summary columns.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub store: String,
    pub key_id: String,
    pub received_at: i64,
    pub outcome: String,
    pub desired_revision: Option<u64>,
    pub applied_revision: Option<u64>,
    pub commit: Option<String>,
    pub drift: usize,
    pub overridden: usize,
    pub reconciler_version: String,
    /// The report JSON.
    pub body: String,
}

/// What became of a report offered with [`Store::ingest_report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Nonce, report and store summary were written together; the report's id.
    Stored(i64),
    /// The key used this nonce before: nothing was written.
    NonceReused,
    /// The key is revoked (or unknown) at the moment of writing: nothing
    /// was written.
    NodeRevoked,
}

/// One row of the fleet overview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRow {
    pub store: String,
    pub tenant: String,
    pub in_repo: bool,
    pub desired_revision: Option<u64>,
    pub desired_commit: Option<String>,
    pub expires_at: Option<i64>,
    pub release_valid: bool,
    pub release_error: Option<String>,
    pub checked_at: Option<i64>,
    pub last_seen: Option<i64>,
    pub last_outcome: Option<String>,
    pub applied_revision: Option<u64>,
    pub last_drift: u64,
    pub last_overridden: u64,
    pub reconciler_version: Option<String>,
    /// Node keys enrolled and not revoked.
    pub active_nodes: u64,
}

/// One report of a store's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub id: i64,
    pub received_at: i64,
    pub key_id: String,
    pub outcome: String,
    pub desired_revision: Option<u64>,
    pub applied_revision: Option<u64>,
    pub commit: Option<String>,
    pub body: String,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub store: Option<String>,
    pub result: String,
    pub detail: String,
}

/// A new audit entry.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub store: Option<&'a str>,
    pub result: &'a str,
    pub detail: &'a str,
}

/// Everything the status service keeps.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Record a bootstrap token by its hash (and make the store known).
    fn create_bootstrap_token<'a>(
        &'a self,
        hash: &'a str,
        store: &'a str,
        now: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, ()>;

    /// Use a bootstrap token once: answers its store, or why not. With
    /// `for_store`, a token of another store is refused and stays unused.
    fn consume_bootstrap_token<'a>(
        &'a self,
        hash: &'a str,
        for_store: Option<&'a str>,
        now: i64,
    ) -> StoreFuture<'a, Result<String, TokenProblem>>;

    /// Bind a node key to a store, revoking the store's earlier keys.
    /// Answers false if this key is already enrolled.
    fn enroll_node<'a>(&'a self, node: &'a Node) -> StoreFuture<'a, bool>;

    /// The node whose key id or base64 public key is `key`.
    fn find_node<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Node>>;

    /// Revoke every key of a store; answers how many were active.
    fn revoke_store_nodes<'a>(&'a self, store: &'a str, now: i64) -> StoreFuture<'a, u64>;

    /// Remember a nonce; false if the key used it before.
    fn use_nonce<'a>(&'a self, key_id: &'a str, nonce: &'a str, now: i64) -> StoreFuture<'a, bool>;

    /// Forget nonces seen before `before` (they fail the timestamp check
    /// anyway); answers how many.
    fn forget_nonces(&self, before: i64) -> StoreFuture<'_, u64>;

    fn create_operator<'a>(
        &'a self,
        hash: &'a str,
        tenants: &'a [String],
        now: i64,
    ) -> StoreFuture<'a, ()>;

    /// The tenants of the operator token with this hash.
    fn operator_tenants<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Vec<String>>>;

    fn audit<'a>(&'a self, entry: NewAudit<'a>) -> StoreFuture<'a, ()>;

    fn audit_entries(&self) -> StoreFuture<'_, Vec<AuditEntry>>;

    /// Store a report and update the store's last-seen summary.
    fn insert_report<'a>(&'a self, report: &'a NewReport) -> StoreFuture<'a, i64>;

    /// The whole write of one signed report, in one transaction: remember
    /// the nonce of `report.key_id`, store the report and update the
    /// store's summary — all of it or none. Nothing is written when the key
    /// used `nonce` before ([`Ingested::NonceReused`]) or is not an active
    /// key when the transaction writes ([`Ingested::NodeRevoked`]), so a
    /// revocation committed after the caller looked the node up still wins.
    fn ingest_report<'a>(
        &'a self,
        nonce: &'a str,
        report: &'a NewReport,
    ) -> StoreFuture<'a, Ingested>;

    /// Record what the repo offers each store at a fetched commit; stores
    /// absent from `rows` are marked as no longer in the repo.
    fn set_desired<'a>(&'a self, rows: &'a [DesiredRow]) -> StoreFuture<'a, ()>;

    fn list_stores(&self) -> StoreFuture<'_, Vec<StoreRow>>;

    fn get_store<'a>(&'a self, store: &'a str) -> StoreFuture<'a, Option<StoreRow>>;

    /// The newest `limit` reports of a store, newest first.
    fn reports<'a>(&'a self, store: &'a str, limit: i64) -> StoreFuture<'a, Vec<ReportRow>>;

    /// Delete reports received before `before` (retention); answers how
    /// many. The stores' summaries (last seen, last outcome…) stay.
    fn forget_reports(&self, before: i64) -> StoreFuture<'_, u64>;

    /// Reports received in all.
    fn report_count(&self) -> StoreFuture<'_, u64>;

    fn close(&self) -> StoreFuture<'_, ()>;

    /// Every node key ever enrolled for a store, revoked ones included,
    /// newest first (the store page shows who reported and when keys were
    /// revoked).
    fn store_nodes<'a>(&'a self, store: &'a str) -> StoreFuture<'a, Vec<Node>>;
}

/// Reading connections of the SQLite backend (besides its one writer).
const SQLITE_READERS: u32 = 8;

/// Group-commit writers on PostgreSQL, each with a connection of the pool
/// while it writes (SQLite has one: it has one writer connection).
const PG_WRITERS: usize = 4;

/// Open the database named by `url` and migrate it: `sqlite://…` (created
/// when missing) or `postgres://…` / `postgresql://…`.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::Connect)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            // Safe with WAL (no corruption on power loss; at worst the last
            // reports are lost, and the reconciler's outbox resends them).
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
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
            .max_connections(SQLITE_READERS)
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Arc::new(SqliteStore {
            batches: GroupCommit::start(write.clone(), 1),
            write,
            read,
        }))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(StoreError::Connect)?;
        sqlx::migrate!("../migrations/status/postgres")
            .run(&pool)
            .await?;
        Ok(Arc::new(PgStore {
            batches: GroupCommit::start(pool.clone(), PG_WRITERS),
            write: pool.clone(),
            read: pool,
        }))
    } else {
        Err(StoreError::UnknownScheme(url.to_owned()))
    }
}

/// The SQLite backend: one connection writes, the others read.
///
/// SQLite lets one writer in at a time. Eight pooled connections that all
/// write only queue on the file lock, each waiting out busy-timeout sleeps;
/// one writer connection makes them queue, in order, in the pool instead,
/// and the readers (WAL) never wait for it. Other processes (the admin
/// commands) still meet the busy timeout.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    batches: GroupCommit,
}

/// The PostgreSQL backend (`write` and `read` are the same pool).
#[derive(Debug, Clone)]
pub struct PgStore {
    write: PgPool,
    read: PgPool,
    batches: GroupCommit,
}

fn rev(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

fn rev_db(v: Option<u64>) -> Option<i64> {
    v.and_then(|v| i64::try_from(v).ok())
}

const STORE_COLUMNS: &str = "s.store, s.tenant, s.in_repo, s.desired_revision, s.desired_commit, \
     s.expires_at, s.release_valid, s.release_error, s.checked_at, s.last_seen, s.last_outcome, \
     s.applied_revision, s.last_drift, s.last_overridden, s.reconciler_version, \
     (SELECT COUNT(*) FROM status_nodes n WHERE n.store = s.store AND n.revoked_at IS NULL) AS active_nodes";

/// [`STORE_COLUMNS`] for every store at once: the active node counts come
/// from one grouped scan of `status_nodes` joined in, instead of a
/// subquery per row (the overview reads all 10,000 rows on every request;
/// docs/BENCHMARKS.md, "Status dashboard").
const ALL_STORES: &str = "SELECT s.store, s.tenant, s.in_repo, s.desired_revision, s.desired_commit, \
     s.expires_at, s.release_valid, s.release_error, s.checked_at, s.last_seen, s.last_outcome, \
     s.applied_revision, s.last_drift, s.last_overridden, s.reconciler_version, \
     COALESCE(n.active, 0) AS active_nodes \
     FROM status_stores s LEFT JOIN (SELECT store, COUNT(*) AS active FROM status_nodes \
     WHERE revoked_at IS NULL GROUP BY store) n ON n.store = s.store ORDER BY s.store";

fn tenant_of(store: &str) -> &str {
    store.split_once('/').map(|(t, _)| t).unwrap_or(store)
}

macro_rules! store_row {
    ($r:expr) => {{
        let r = $r;
        StoreRow {
            store: r.try_get("store")?,
            tenant: r.try_get("tenant")?,
            in_repo: r.try_get::<i64, _>("in_repo")? != 0,
            desired_revision: rev(r.try_get("desired_revision")?),
            desired_commit: r.try_get("desired_commit")?,
            expires_at: r.try_get("expires_at")?,
            release_valid: r.try_get::<i64, _>("release_valid")? != 0,
            release_error: r.try_get("release_error")?,
            checked_at: r.try_get("checked_at")?,
            last_seen: r.try_get("last_seen")?,
            last_outcome: r.try_get("last_outcome")?,
            applied_revision: rev(r.try_get("applied_revision")?),
            last_drift: r.try_get::<i64, _>("last_drift")?.max(0) as u64,
            last_overridden: r.try_get::<i64, _>("last_overridden")?.max(0) as u64,
            reconciler_version: r.try_get("reconciler_version")?,
            active_nodes: r.try_get::<i64, _>("active_nodes")?.max(0) as u64,
        }
    }};
}

macro_rules! node_row {
    ($r:expr) => {{
        let r = $r;
        Node {
            key_id: r.try_get("key_id")?,
            public_key: r.try_get("public_key")?,
            store: r.try_get("store")?,
            enrolled_at: r.try_get("enrolled_at")?,
            revoked_at: r.try_get("revoked_at")?,
        }
    }};
}

/// The one implementation of [`Store`], compiled for each backend.
macro_rules! sql_store {
    ($name:ident, $db:ty) => {
        impl $name {
            /// Insert a report and update its store's summary, inside `tx`.
            async fn add_report(
                tx: &mut sqlx::Transaction<'_, $db>,
                rep: &NewReport,
            ) -> StoreResult<i64> {
                let row = sqlx::query(
                    "INSERT INTO status_reports (store, key_id, received_at, outcome, desired_revision, \
                     applied_revision, source_commit, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(&rep.store)
                .bind(&rep.key_id)
                .bind(rep.received_at)
                .bind(&rep.outcome)
                .bind(rev_db(rep.desired_revision))
                .bind(rev_db(rep.applied_revision))
                .bind(&rep.commit)
                .bind(&rep.body)
                .fetch_one(&mut **tx)
                .await?;
                let id: i64 = row.try_get("id")?;
                sqlx::query(
                    "INSERT INTO status_stores (store, tenant, last_seen, last_outcome, applied_revision, \
                     last_drift, last_overridden, reconciler_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (store) DO UPDATE SET last_seen = $3, last_outcome = $4, \
                     applied_revision = COALESCE($5, status_stores.applied_revision), last_drift = $6, \
                     last_overridden = $7, reconciler_version = $8",
                )
                .bind(&rep.store)
                .bind(tenant_of(&rep.store))
                .bind(rep.received_at)
                .bind(&rep.outcome)
                .bind(rev_db(rep.applied_revision))
                .bind(rep.drift as i64)
                .bind(rep.overridden as i64)
                .bind(&rep.reconciler_version)
                .execute(&mut **tx)
                .await?;
                Ok(id)
            }
        }

        impl Store for $name {
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
                    sqlx::query(
                        "INSERT INTO status_stores (store, tenant) VALUES ($1, $2) \
                         ON CONFLICT (store) DO NOTHING",
                    )
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
                        "SELECT store, expires_at, used_at FROM status_bootstrap_tokens WHERE token_hash = $1",
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
                    let exists = sqlx::query("SELECT key_id FROM status_nodes WHERE key_id = $1 OR public_key = $2")
                        .bind(&node.key_id)
                        .bind(&node.public_key)
                        .fetch_optional(&self.read)
                        .await?;
                    if exists.is_some() {
                        return Ok(false);
                    }
                    let mut tx = self.write.begin().await?;
                    sqlx::query(
                        "UPDATE status_nodes SET revoked_at = $2 WHERE store = $1 AND revoked_at IS NULL",
                    )
                    .bind(&node.store)
                    .bind(node.enrolled_at)
                    .execute(&mut *tx)
                    .await?;
                    let inserted = sqlx::query(
                        "INSERT INTO status_nodes (key_id, public_key, store, enrolled_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&node.key_id)
                    .bind(&node.public_key)
                    .bind(&node.store)
                    .bind(node.enrolled_at)
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        // The same key enrolled by a racing request.
                        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
                        Err(e) => return Err(e.into()),
                    }
                    sqlx::query(
                        "INSERT INTO status_stores (store, tenant) VALUES ($1, $2) ON CONFLICT (store) DO NOTHING",
                    )
                    .bind(&node.store)
                    .bind(tenant_of(&node.store))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                })
            }

            fn find_node<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Node>> {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT key_id, public_key, store, enrolled_at, revoked_at FROM status_nodes \
                         WHERE key_id = $1 OR public_key = $1",
                    )
                    .bind(key)
                    .fetch_optional(&self.read)
                    .await?;
                    Ok(match row {
                        Some(r) => Some(node_row!(r)),
                        None => None,
                    })
                })
            }

            fn revoke_store_nodes<'a>(&'a self, store: &'a str, now: i64) -> StoreFuture<'a, u64> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE status_nodes SET revoked_at = $2 WHERE store = $1 AND revoked_at IS NULL",
                    )
                    .bind(store)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                    Ok(done.rows_affected())
                })
            }

            fn use_nonce<'a>(
                &'a self,
                key_id: &'a str,
                nonce: &'a str,
                now: i64,
            ) -> StoreFuture<'a, bool> {
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

            fn create_operator<'a>(
                &'a self,
                hash: &'a str,
                tenants: &'a [String],
                now: i64,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query("INSERT INTO status_operators (token_hash, tenants, created_at) VALUES ($1, $2, $3)")
                        .bind(hash)
                        .bind(tenants.join(","))
                        .bind(now)
                        .execute(&self.write)
                        .await?;
                    Ok(())
                })
            }

            fn operator_tenants<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
                Box::pin(async move {
                    let row = sqlx::query("SELECT tenants FROM status_operators WHERE token_hash = $1")
                        .bind(hash)
                        .fetch_optional(&self.read)
                        .await?;
                    Ok(match row {
                        Some(r) => {
                            let t: String = r.try_get("tenants")?;
                            Some(t.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                        }
                        None => None,
                    })
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
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT id, at, actor, action, store, result, detail FROM status_audit ORDER BY id",
                    )
                    .fetch_all(&self.read)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(AuditEntry {
                            id: r.try_get("id")?,
                            at: r.try_get("at")?,
                            actor: r.try_get("actor")?,
                            action: r.try_get("action")?,
                            store: r.try_get("store")?,
                            result: r.try_get("result")?,
                            detail: r.try_get("detail")?,
                        });
                    }
                    Ok(out)
                })
            }

            fn insert_report<'a>(&'a self, rep: &'a NewReport) -> StoreFuture<'a, i64> {
                Box::pin(async move {
                    let mut tx = self.write.begin().await?;
                    let id = Self::add_report(&mut tx, rep).await?;
                    tx.commit().await?;
                    Ok(id)
                })
            }

            fn ingest_report<'a>(
                &'a self,
                nonce: &'a str,
                rep: &'a NewReport,
            ) -> StoreFuture<'a, Ingested> {
                Box::pin(self.batches.ingest(nonce, rep))
            }

            fn set_desired<'a>(&'a self, rows: &'a [DesiredRow]) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.write.begin().await?;
                    sqlx::query("UPDATE status_stores SET in_repo = 0")
                        .execute(&mut *tx)
                        .await?;
                    for d in rows {
                        sqlx::query(
                            "INSERT INTO status_stores (store, tenant, in_repo, desired_revision, desired_commit, \
                             expires_at, release_valid, release_error, checked_at) \
                             VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8) \
                             ON CONFLICT (store) DO UPDATE SET in_repo = 1, desired_revision = $3, \
                             desired_commit = $4, expires_at = $5, release_valid = $6, release_error = $7, \
                             checked_at = $8",
                        )
                        .bind(&d.store)
                        .bind(tenant_of(&d.store))
                        .bind(rev_db(d.revision))
                        .bind(&d.commit)
                        .bind(d.expires_at)
                        .bind(i64::from(d.valid))
                        .bind(&d.error)
                        .bind(d.checked_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn list_stores(&self) -> StoreFuture<'_, Vec<StoreRow>> {
                Box::pin(async move {
                    let rows = sqlx::query(ALL_STORES).fetch_all(&self.read).await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(store_row!(r));
                    }
                    Ok(out)
                })
            }

            fn get_store<'a>(&'a self, store: &'a str) -> StoreFuture<'a, Option<StoreRow>> {
                Box::pin(async move {
                    let sql = format!("SELECT {STORE_COLUMNS} FROM status_stores s WHERE s.store = $1");
                    let row = sqlx::query(&sql).bind(store).fetch_optional(&self.read).await?;
                    Ok(match row {
                        Some(r) => Some(store_row!(r)),
                        None => None,
                    })
                })
            }

            fn reports<'a>(&'a self, store: &'a str, limit: i64) -> StoreFuture<'a, Vec<ReportRow>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT id, received_at, key_id, outcome, desired_revision, applied_revision, \
                         source_commit, body FROM status_reports WHERE store = $1 ORDER BY id DESC LIMIT $2",
                    )
                    .bind(store)
                    .bind(limit)
                    .fetch_all(&self.read)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(ReportRow {
                            id: r.try_get("id")?,
                            received_at: r.try_get("received_at")?,
                            key_id: r.try_get("key_id")?,
                            outcome: r.try_get("outcome")?,
                            desired_revision: rev(r.try_get("desired_revision")?),
                            applied_revision: rev(r.try_get("applied_revision")?),
                            commit: r.try_get("source_commit")?,
                            body: r.try_get("body")?,
                        });
                    }
                    Ok(out)
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
                    Ok(row.try_get::<i64, _>("n")?.max(0) as u64)
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
                    let rows = sqlx::query(
                        "SELECT key_id, public_key, store, enrolled_at, revoked_at FROM status_nodes \
                         WHERE store = $1 ORDER BY enrolled_at DESC, key_id",
                    )
                    .bind(store)
                    .fetch_all(&self.read)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(node_row!(r));
                    }
                    Ok(out)
                })
            }
        }
    };
}

/// One ingest of a SQLite batch, inside its transaction. SQLite has no
/// data-modifying CTEs, so the three writes are three statements; the
/// first one writes, so a transaction takes the write lock at once instead
/// of failing to upgrade a read snapshot later.
async fn sqlite_ingest_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    nonce: &str,
    rep: &NewReport,
) -> StoreResult<Ingested> {
    let fresh = sqlx::query(
        "INSERT INTO status_nonces (key_id, nonce, seen_at) SELECT $1, $2, $3 \
         WHERE EXISTS (SELECT 1 FROM status_nodes WHERE key_id = $1 AND revoked_at IS NULL) \
         ON CONFLICT (key_id, nonce) DO NOTHING",
    )
    .bind(&rep.key_id)
    .bind(nonce)
    .bind(rep.received_at)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        // Nothing was written for this one; the rest of the batch stands.
        let active = sqlx::query(
            "SELECT 1 AS one FROM status_nodes WHERE key_id = $1 AND revoked_at IS NULL",
        )
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
    Ok(Ingested::Stored(SqliteStore::add_report(tx, rep).await?))
}

impl BatchWrite for SqlitePool {
    fn write_batch<'a>(&'a self, batch: &'a [Queued]) -> StoreFuture<'a, Vec<Ingested>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let mut out = Vec::with_capacity(batch.len());
            for q in batch {
                out.push(sqlite_ingest_in(&mut tx, &q.nonce, &q.report).await?);
            }
            tx.commit().await?;
            Ok(out)
        })
    }
}

/// [`Store::ingest_report`] on PostgreSQL: one statement, so one round trip
/// and one commit. The nonce is inserted only for an active key; the report
/// and the summary only if the nonce was new.
const PG_INGEST: &str = "WITH node AS ( \
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
        last_drift, last_overridden, reconciler_version) \
        SELECT $1, $10, $3, $4, $6, $11, $12, $13 FROM fresh \
        ON CONFLICT (store) DO UPDATE SET last_seen = EXCLUDED.last_seen, \
        last_outcome = EXCLUDED.last_outcome, \
        applied_revision = COALESCE(EXCLUDED.applied_revision, status_stores.applied_revision), \
        last_drift = EXCLUDED.last_drift, last_overridden = EXCLUDED.last_overridden, \
        reconciler_version = EXCLUDED.reconciler_version \
    ) \
    SELECT (SELECT id FROM report) AS id, EXISTS (SELECT 1 FROM node) AS active";

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
                let row = sqlx::query(PG_INGEST)
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

// ------------------------------------------------------------ group commit

/// Most reports one transaction of a writer commits.
const MAX_BATCH: usize = 64;

/// Ingests waiting for a writer, at most (then callers wait to queue).
const QUEUE_LEN: usize = 4096;

/// One report waiting for a writer.
#[derive(Debug)]
struct Queued {
    nonce: String,
    report: NewReport,
    answer: oneshot::Sender<StoreResult<Ingested>>,
}

/// Writes a batch of ingests in one transaction: all or, on an error,
/// none of them.
trait BatchWrite: Clone + Send + Sync + 'static {
    fn write_batch<'a>(&'a self, batch: &'a [Queued]) -> StoreFuture<'a, Vec<Ingested>>;
}

/// Group commit of [`Store::ingest_report`]: each caller queues its report
/// and awaits its own answer; `writers` tasks each take whatever has queued
/// (up to [`MAX_BATCH`]) and commit it in one transaction, so the cost of a
/// commit (SQLite's WAL append, PostgreSQL's WAL flush and round trips) is
/// shared by every report that arrived while the previous one ran. Nobody
/// waits for a batch to fill: an idle writer takes the first report alone.
#[derive(Debug, Clone)]
struct GroupCommit {
    queue: mpsc::Sender<Queued>,
}

impl GroupCommit {
    fn start(pool: impl BatchWrite, writers: usize) -> GroupCommit {
        let (queue, rx) = mpsc::channel(QUEUE_LEN);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(run_writer(pool.clone(), rx.clone()));
        }
        GroupCommit { queue }
    }

    async fn ingest(&self, nonce: &str, report: &NewReport) -> StoreResult<Ingested> {
        let (answer, answered) = oneshot::channel();
        let queued = Queued {
            nonce: nonce.to_owned(),
            report: report.clone(),
            answer,
        };
        self.queue
            .send(queued)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answered.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// One writer: take a batch, commit it, answer each caller; until every
/// sender is gone.
async fn run_writer(pool: impl BatchWrite, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Queued>>>) {
    loop {
        let batch = {
            let mut rx = queue.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(q) => batch.push(q),
                    Err(_) => break,
                }
            }
            batch
        };
        match pool.write_batch(&batch).await {
            Ok(results) => {
                for (q, r) in batch.into_iter().zip(results) {
                    let _ = q.answer.send(Ok(r));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(q) = batch.into_iter().next() {
                    let _ = q.answer.send(Err(e));
                }
            }
            Err(_) => {
                // One failed and took the transaction with it: write each
                // alone, so that only the one at fault fails.
                for q in batch {
                    let r = pool
                        .write_batch(std::slice::from_ref(&q))
                        .await
                        .and_then(|v| v.into_iter().next().ok_or(StoreError::WriterStopped));
                    let _ = q.answer.send(r);
                }
            }
        }
    }
}

sql_store!(SqliteStore, sqlx::Sqlite);
sql_store!(PgStore, sqlx::Postgres);
