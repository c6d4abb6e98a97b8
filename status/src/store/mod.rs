//! Storage of the status service: one [`Store`] trait, two backends
//! ([`SqliteStore`], [`PgStore`]), each with its own migrations in
//! `migrations/status/{sqlite,postgres}/`, chosen once from the URL scheme
//! by [`open`].
//!
//! - [`SqlStore`] (`sql.rs`) is the one implementation of [`Store`],
//!   generic over the sqlx database: both backends run the same SQL text
//!   (`$n` placeholders work in both); only the schema files differ.
//! - `rows.rs` decodes rows for both ([`sqlx::FromRow`]). Times are unix
//!   seconds and booleans 0/1 so that one decoder serves both.
//! - `sqlite.rs` and `postgres.rs` hold what differs: connecting,
//!   migrating, and the hot path, [`Store::ingest_report`] — one statement
//!   of data-modifying CTEs on PostgreSQL, three statements on SQLite
//!   (which has no such CTEs).
//! - `group_commit.rs` queues ingests for the writer tasks that commit
//!   them, each batch in one transaction (ADR 24).
//!
//! There is one way to store a report, [`Store::ingest_report`], which
//! writes nonce, report and summary together and checks the nonce and the
//! node's revocation as it writes; tests store reports through it too
//! (ADR 32). Nothing here knows HTTP or policy: the caller decides what a
//! missing row means.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::node_auth::PendingSignature;

mod group_commit;
mod postgres;
mod rows;
mod sql;
mod sqlite;

pub use postgres::PgStore;
pub use sql::SqlStore;
pub use sqlite::SqliteStore;

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
    /// An admin command pointed at a database the service never set up: a
    /// token written there would never be seen by the service.
    #[error(
        "{what} at {url}: `fleet-status serve` sets up its database on first start, and the admin \
         commands write into that same database; pass the service's --database-url (or set \
         FLEET_STATUS_DATABASE_URL as its unit does)"
    )]
    NotSetUp { url: String, what: &'static str },
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
    /// The store's age recipient (`age1…`), when the node sent one.
    pub recipient: Option<String>,
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

/// A new operator token, as stored (its hash, never the token).
#[derive(Debug, Clone)]
pub struct NewOperator<'a> {
    pub hash: &'a str,
    /// `viewer` or `editor`.
    pub role: &'a str,
    pub tenants: &'a [String],
    /// Store ids it is limited to; empty: every store of its tenants.
    pub stores: &'a [String],
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// An operator token's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRow {
    /// The first 12 hex digits of the token's hash: names it in lists,
    /// audit entries and `operator revoke`.
    pub id: String,
    pub role: String,
    pub tenants: Vec<String>,
    pub stores: Vec<String>,
    pub created_at: i64,
    /// `None` for tokens made before expiry existed.
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
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
    /// The trust root version the store trusts (none: bare keys).
    pub root_version: Option<u64>,
    /// The release apiVersions the reconciler reads, space-separated
    /// (none: it did not say, so fleet/v1 only).
    pub release_api: Option<String>,
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
    /// The request's signature, left to the write to verify, does not
    /// hold: nothing was written.
    BadSignature,
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
    /// The trust root version of the last report (none: bare keys, or no
    /// report yet).
    pub root_version: Option<u64>,
    /// The release apiVersions the last report's reconciler reads,
    /// space-separated (none: no report, or a reconciler that reads only
    /// fleet/v1).
    pub release_api: Option<String>,
    /// The desired revision the last report named (the release the store
    /// verified); none before a report, or when it named none.
    pub reported_revision: Option<u64>,
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

/// An operator action of a store (DESIGN.md §13), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRow {
    pub id: i64,
    pub store: String,
    /// `reconcile` or `support_bundle` (`wire::desired::ActionKind`).
    pub kind: String,
    /// Who pressed it: `operator:<id>`.
    pub requested_by: String,
    pub requested_at: i64,
    /// When a long-poll answer last handed it to the store.
    pub delivered_at: Option<i64>,
    /// When the store answered it.
    pub done_at: Option<i64>,
    /// `done` or `failed`, once answered.
    pub result: Option<String>,
    pub detail: Option<String>,
    /// The report that answered a `reconcile`.
    pub report_id: Option<i64>,
    /// The bundle that answered a `support_bundle`.
    pub bundle_id: Option<String>,
}

/// How a store answered an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionAnswer<'a> {
    /// The kind of action this answer is for (a report answers
    /// `reconcile`, a bundle `support_bundle`): an action of another kind
    /// stays open.
    pub kind: wire::desired::ActionKind,
    pub at: i64,
    /// `done` or `failed`.
    pub result: &'a str,
    pub detail: &'a str,
    pub report_id: Option<i64>,
    pub bundle_id: Option<&'a str>,
}

/// A support bundle to keep.
#[derive(Debug, Clone)]
pub struct NewBundle<'a> {
    /// `<time>-<key id>-<random>.tar.gz`: unique, and sorts by time.
    pub id: &'a str,
    pub store: &'a str,
    pub key_id: &'a str,
    pub received_at: i64,
    /// The action it answers, if any.
    pub action_id: Option<i64>,
    pub body: &'a [u8],
}

/// A kept support bundle, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRow {
    pub id: String,
    pub key_id: String,
    pub received_at: i64,
    pub size: u64,
    pub action_id: Option<i64>,
}

/// An alert event (DESIGN.md §13): a condition that started (`firing`)
/// or stopped (`resolved`) holding, at unix time `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEvent {
    pub kind: String,
    /// `firing` or `resolved`.
    pub status: String,
    pub subject: String,
    pub message: String,
    pub at: i64,
}

/// An alert event waiting for the receiver, by its place in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedAlert {
    pub id: i64,
    pub event: AlertEvent,
}

/// A condition that held at the last alert round (posted as `firing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldAlert {
    pub kind: String,
    pub subject: String,
    pub message: String,
    pub since: i64,
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

    /// Bind `new` to its store and revoke the key `old_key_id`, in one
    /// transaction. Nothing is written, and the answer is false, when
    /// `old_key_id` is not an active key of that store when the transaction
    /// writes, or `new` is already known.
    fn rotate_node<'a>(&'a self, old_key_id: &'a str, new: &'a Node) -> StoreFuture<'a, bool>;

    /// Revoke every key of a store; answers how many were active.
    fn revoke_store_nodes<'a>(&'a self, store: &'a str, now: i64) -> StoreFuture<'a, u64>;

    /// Remember a nonce; false if the key used it before.
    fn use_nonce<'a>(&'a self, key_id: &'a str, nonce: &'a str, now: i64) -> StoreFuture<'a, bool>;

    /// Forget nonces seen before `before` (they fail the timestamp check
    /// anyway); answers how many.
    fn forget_nonces(&self, before: i64) -> StoreFuture<'_, u64>;

    fn create_operator<'a>(&'a self, op: &'a NewOperator<'a>) -> StoreFuture<'a, ()>;

    /// The operator token with this hash, revoked or expired ones too (the
    /// caller decides what they mean).
    fn operator_by_hash<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<OperatorRow>>;

    /// Every operator token, oldest first.
    fn operators(&self) -> StoreFuture<'_, Vec<OperatorRow>>;

    /// Revoke the operator token `id`; false when there is none active.
    fn revoke_operator<'a>(&'a self, id: &'a str, now: i64) -> StoreFuture<'a, bool>;

    fn audit<'a>(&'a self, entry: NewAudit<'a>) -> StoreFuture<'a, ()>;

    fn audit_entries(&self) -> StoreFuture<'_, Vec<AuditEntry>>;

    /// The whole write of one signed report, in one transaction: remember
    /// the nonce of `report.key_id`, store the report and update the
    /// store's summary — all of it or none. Nothing is written when the key
    /// used `nonce` before ([`Ingested::NonceReused`]) or is not an active
    /// key when the transaction writes ([`Ingested::NodeRevoked`]), so a
    /// revocation committed after the caller looked the node up still wins.
    ///
    /// With `signature`, the request's Ed25519 signature is still to be
    /// verified: the reports that wait for the same transaction have
    /// theirs verified together, as one batch, and one whose signature does
    /// not hold is answered [`Ingested::BadSignature`] with nothing written
    /// (ADR 58).
    fn ingest_report<'a>(
        &'a self,
        nonce: &'a str,
        report: &'a NewReport,
        signature: Option<PendingSignature>,
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

    /// Record an operator action for a store; answers its id. On
    /// PostgreSQL the insert notifies every replica when it commits.
    fn request_action<'a>(
        &'a self,
        store: &'a str,
        kind: &'a str,
        requested_by: &'a str,
        now: i64,
    ) -> StoreFuture<'a, i64>;

    /// Whether the store has an action to hand out: not answered,
    /// requested at or after `expire_before`, and never delivered or
    /// delivered before `redeliver_before`. A read, for every long-poll.
    fn has_actions<'a>(
        &'a self,
        store: &'a str,
        redeliver_before: i64,
        expire_before: i64,
    ) -> StoreFuture<'a, bool>;

    /// The actions [`Store::has_actions`] finds, marked delivered at `now`,
    /// oldest first.
    fn deliver_actions<'a>(
        &'a self,
        store: &'a str,
        now: i64,
        redeliver_before: i64,
        expire_before: i64,
    ) -> StoreFuture<'a, Vec<ActionRow>>;

    /// Record the store's answer to action `id`; false (nothing written)
    /// when it is not an unanswered action of `store` of the answer's kind.
    fn answer_action<'a>(
        &'a self,
        store: &'a str,
        id: i64,
        answer: ActionAnswer<'a>,
    ) -> StoreFuture<'a, bool>;

    /// The newest `limit` actions of a store, newest first.
    fn store_actions<'a>(&'a self, store: &'a str, limit: i64) -> StoreFuture<'a, Vec<ActionRow>>;

    /// Keep a support bundle, delete the store's bundles beyond the newest
    /// `keep`, and answer the action it was collected for, in one
    /// transaction.
    fn put_bundle<'a>(&'a self, bundle: NewBundle<'a>, keep: i64) -> StoreFuture<'a, ()>;

    /// The support bundles of a store, newest first.
    fn bundles<'a>(&'a self, store: &'a str) -> StoreFuture<'a, Vec<BundleRow>>;

    /// The bytes of one support bundle of a store.
    fn bundle<'a>(&'a self, store: &'a str, id: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// The alert conditions that held at the last round, by kind and
    /// subject.
    fn held_alerts(&self) -> StoreFuture<'_, Vec<HeldAlert>>;

    /// Queue `events` for the receiver and apply them to the held
    /// conditions (`firing` holds, `resolved` no longer), in one
    /// transaction: a round is recorded whole or not at all.
    fn queue_alerts<'a>(&'a self, events: &'a [AlertEvent]) -> StoreFuture<'a, ()>;

    /// The oldest `limit` queued alert events, oldest first.
    fn queued_alerts(&self, limit: i64) -> StoreFuture<'_, Vec<QueuedAlert>>;

    /// Forget a queued alert event: the receiver took it.
    fn alert_delivered(&self, id: i64) -> StoreFuture<'_, ()>;

    /// Drop the oldest queued alert events beyond the newest `keep`;
    /// answers how many were dropped.
    fn trim_alerts(&self, keep: i64) -> StoreFuture<'_, u64>;
}

/// Open a database that `fleet-status serve` has already set up (its
/// tables exist), for the admin commands: a mistyped or missing
/// `--database-url` is refused instead of creating an empty database whose
/// tokens the service would never see. Then migrate it, as [`open`] does.
pub async fn open_existing(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        sqlite::check_set_up(url).await?;
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres::check_set_up(url).await?;
    }
    open(url).await
}

/// Open the database named by `url` and migrate it: `sqlite://…` (created
/// when missing) or `postgres://…` / `postgresql://…`.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::open(url).await?))
    } else {
        Err(StoreError::UnknownScheme(url.to_owned()))
    }
}
