//! Row decoding, shared by both backends: one [`FromRow`] per row type,
//! generic over the sqlx row, so that the same code reads a SQLite and a
//! PostgreSQL row. That works because both schemas keep times as unix
//! seconds and booleans as 0/1, all 64-bit integers (ADR 20); the
//! conversions to the domain's types (`u64` revisions and counts, `bool`)
//! happen here and nowhere else.

use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

use super::{
    ActionRow, AlertEvent, AuditEntry, BundleRow, HeldAlert, Node, OperatorRow, QueuedAlert,
    ReportRow, StoreRow,
};

/// A revision as stored (`BIGINT`); a negative one, which no write
/// produces, reads as none.
pub(super) fn rev(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

/// A revision to store; one beyond `i64` is stored as none.
pub(super) fn rev_db(v: Option<u64>) -> Option<i64> {
    v.and_then(|v| i64::try_from(v).ok())
}

/// A count as stored; it cannot be negative.
pub(super) fn count(v: i64) -> u64 {
    v.max(0) as u64
}

/// One row of `sql::ONE_STORE` or `sql::ALL_STORES`.
impl<'r, R> FromRow<'r, R> for StoreRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        Ok(StoreRow {
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
            last_drift: count(r.try_get("last_drift")?),
            last_overridden: count(r.try_get("last_overridden")?),
            reconciler_version: r.try_get("reconciler_version")?,
            root_version: rev(r.try_get("root_version")?),
            release_api: r.try_get("release_api")?,
            reported_revision: rev(r.try_get("reported_revision")?),
            active_nodes: count(r.try_get("active_nodes")?),
        })
    }
}

/// One row of `sql::FIND_NODE` or `sql::STORE_NODES`.
impl<'r, R> FromRow<'r, R> for Node
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Node {
            key_id: r.try_get("key_id")?,
            public_key: r.try_get("public_key")?,
            store: r.try_get("store")?,
            enrolled_at: r.try_get("enrolled_at")?,
            revoked_at: r.try_get("revoked_at")?,
            recipient: r.try_get("recipient")?,
        })
    }
}

/// One row of `sql::STORE_REPORTS`.
impl<'r, R> FromRow<'r, R> for ReportRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        Ok(ReportRow {
            id: r.try_get("id")?,
            received_at: r.try_get("received_at")?,
            key_id: r.try_get("key_id")?,
            outcome: r.try_get("outcome")?,
            desired_revision: rev(r.try_get("desired_revision")?),
            applied_revision: rev(r.try_get("applied_revision")?),
            commit: r.try_get("source_commit")?,
            body: r.try_get("body")?,
        })
    }
}

/// One row of `sql::AUDIT_ENTRIES`.
impl<'r, R> FromRow<'r, R> for AuditEntry
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        Ok(AuditEntry {
            id: r.try_get("id")?,
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            store: r.try_get("store")?,
            result: r.try_get("result")?,
            detail: r.try_get("detail")?,
        })
    }
}

/// One row of `sql::OPERATOR_BY_HASH` or `sql::ALL_OPERATORS`.
impl<'r, R> FromRow<'r, R> for OperatorRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        let list = |text: String| -> Vec<String> {
            text.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Ok(OperatorRow {
            id: r.try_get("id")?,
            role: r.try_get("role")?,
            tenants: list(r.try_get("tenants")?),
            stores: list(r.try_get("stores")?),
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
            revoked_at: r.try_get("revoked_at")?,
        })
    }
}

/// One row of `sql::ACTION_COLUMNS`.
impl<'r, R> FromRow<'r, R> for ActionRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        Ok(ActionRow {
            id: r.try_get("id")?,
            store: r.try_get("store")?,
            kind: r.try_get("kind")?,
            requested_by: r.try_get("requested_by")?,
            requested_at: r.try_get("requested_at")?,
            delivered_at: r.try_get("delivered_at")?,
            done_at: r.try_get("done_at")?,
            result: r.try_get("result")?,
            detail: r.try_get("detail")?,
            report_id: r.try_get("report_id")?,
            bundle_id: r.try_get("bundle_id")?,
        })
    }
}

/// One row of `sql::STORE_BUNDLES`.
impl<'r, R> FromRow<'r, R> for BundleRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        Ok(BundleRow {
            id: r.try_get("id")?,
            key_id: r.try_get("key_id")?,
            received_at: r.try_get("received_at")?,
            size: count(r.try_get("size")?),
            action_id: r.try_get("action_id")?,
        })
    }
}

/// One row of `status_alerts`.
impl<'r, R> FromRow<'r, R> for HeldAlert
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        Ok(HeldAlert {
            kind: r.try_get("kind")?,
            subject: r.try_get("subject")?,
            message: r.try_get("message")?,
            since: r.try_get("since")?,
        })
    }
}

/// One row of `status_alert_events`.
impl<'r, R> FromRow<'r, R> for QueuedAlert
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        Ok(QueuedAlert {
            id: r.try_get("id")?,
            event: AlertEvent {
                kind: r.try_get("kind")?,
                status: r.try_get("status")?,
                subject: r.try_get("subject")?,
                message: r.try_get("message")?,
                at: r.try_get("at")?,
            },
        })
    }
}
