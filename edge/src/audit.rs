//! The local audit log: an append-only, hash-chained record of every
//! configuration write, written in the same transaction as the write.
//!
//! Each entry's `hash` is SHA-256 over a canonical encoding of all its other
//! fields, `prev_hash` included, so editing any stored entry breaks its own
//! hash and removing one breaks the chain (THREATS.md row 17). The newest
//! entry is also recorded in `audit_head`, which catches entries removed from
//! the end. Someone able to rewrite the whole file can still forge a
//! consistent chain: the chain detects edits, it does not anchor the log
//! elsewhere. This module must not be used to change or remove entries.

use futures_util::TryStreamExt as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{Row, SqliteConnection, SqlitePool};
pub use wire::edge::{AuditEntry, AuditPage, VerifyReport};

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Default and largest page of `GET /audit`.
pub const DEFAULT_PAGE: u32 = 500;
pub const MAX_PAGE: u32 = 5000;

/// Who made a configuration write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `reconciler`, or `local:<user>`.
    pub name: String,
    /// For the reconciler: the release revision and source commit it applied.
    pub revision: Option<u64>,
    pub commit: Option<String>,
}

impl Actor {
    pub const RECONCILER: &'static str = "reconciler";

    /// A write with the store's admin token that names nobody (DESIGN.md
    /// §10: `local:admin`).
    pub fn local_admin() -> Actor {
        Actor {
            name: "local:admin".to_owned(),
            revision: None,
            commit: None,
        }
    }

    pub fn is_reconciler(&self) -> bool {
        self.name == Self::RECONCILER
    }
}

/// The newest entry's seq and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// The fields of an entry before it is numbered and hashed.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub time: &'a str,
    pub actor: &'a Actor,
    pub domain: &'a str,
    pub kind: &'a str,
    pub entity_id: &'a str,
    pub action: &'a str,
    pub version: u64,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

/// The stored columns of one entry, exactly as hashed.
#[derive(Debug, Clone)]
struct StoredEntry {
    seq: i64,
    time: String,
    actor: String,
    revision: Option<i64>,
    commit: Option<String>,
    domain: String,
    kind: String,
    entity_id: String,
    action: String,
    version: i64,
    before: Option<String>,
    after: Option<String>,
    prev_hash: String,
    hash: String,
}

/// SHA-256 (lower-case hex) over the canonical encoding of an entry: a
/// domain tag, then every field in a fixed order, each as a presence byte
/// and, when present, its UTF-8 bytes prefixed by their length as u64 BE.
/// Integers are encoded as their decimal text; `before`/`after` as the exact
/// JSON text stored.
#[allow(clippy::too_many_arguments)]
fn entry_hash(
    seq: i64,
    time: &str,
    actor: &str,
    revision: Option<i64>,
    commit: Option<&str>,
    domain: &str,
    kind: &str,
    entity_id: &str,
    action: &str,
    version: i64,
    before: Option<&str>,
    after: Option<&str>,
    prev_hash: &str,
) -> String {
    fn field(h: &mut Sha256, v: Option<&str>) {
        match v {
            None => h.update([0u8]),
            Some(s) => {
                h.update([1u8]);
                h.update((s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    let mut h = Sha256::new();
    h.update(b"fleet-edge/audit/v1\n");
    let seq = seq.to_string();
    let revision = revision.map(|r| r.to_string());
    let version = version.to_string();
    for v in [
        Some(seq.as_str()),
        Some(time),
        Some(actor),
        revision.as_deref(),
        commit,
        Some(domain),
        Some(kind),
        Some(entity_id),
        Some(action),
        Some(version.as_str()),
        before,
        after,
        Some(prev_hash),
    ] {
        field(&mut h, v);
    }
    hex::encode(h.finalize())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The newest entry as recorded in `audit_head`.
pub async fn head(conn: &mut SqliteConnection) -> Result<Head, sqlx::Error> {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(conn)
        .await?;
    Ok(Head {
        seq: to_u64(row.try_get("seq")?),
        hash: row.try_get("hash")?,
    })
}

/// Number and hash one entry after `head`, and advance `head`. Nothing is
/// written: the caller inserts staged entries with [`insert`] and writes the
/// head back with [`store_head`] in the same transaction.
pub fn stage(head: &mut Head, e: NewEntry<'_>) -> StagedEntry {
    let seq = to_i64(head.seq + 1);
    let revision = e.actor.revision.map(to_i64);
    let version = to_i64(e.version);
    let hash = entry_hash(
        seq,
        e.time,
        &e.actor.name,
        revision,
        e.actor.commit.as_deref(),
        e.domain,
        e.kind,
        e.entity_id,
        e.action,
        version,
        e.before,
        e.after,
        &head.hash,
    );
    let staged = StagedEntry(StoredEntry {
        seq,
        time: e.time.to_owned(),
        actor: e.actor.name.clone(),
        revision,
        commit: e.actor.commit.clone(),
        domain: e.domain.to_owned(),
        kind: e.kind.to_owned(),
        entity_id: e.entity_id.to_owned(),
        action: e.action.to_owned(),
        version,
        before: e.before.map(str::to_owned),
        after: e.after.map(str::to_owned),
        prev_hash: std::mem::replace(&mut head.hash, hash.clone()),
        hash,
    });
    head.seq += 1;
    staged
}

/// An entry numbered and hashed by [`stage`], not yet written.
#[derive(Debug, Clone)]
pub struct StagedEntry(StoredEntry);

/// Rows per multi-row INSERT: 14 columns × 500 stays far below SQLite's
/// limit of 32,766 bound parameters.
const ENTRIES_PER_INSERT: usize = 500;

/// Insert staged entries, in order.
pub async fn insert(
    conn: &mut SqliteConnection,
    entries: &[StagedEntry],
) -> Result<(), sqlx::Error> {
    for chunk in entries.chunks(ENTRIES_PER_INSERT) {
        let mut qb: sqlx::QueryBuilder<sqlx::Sqlite> =
            sqlx::QueryBuilder::new(format!("INSERT INTO audit_log ({COLUMNS}) "));
        qb.push_values(chunk, |mut b, StagedEntry(e)| {
            b.push_bind(e.seq)
                .push_bind(&e.time)
                .push_bind(&e.actor)
                .push_bind(e.revision)
                .push_bind(&e.commit)
                .push_bind(&e.domain)
                .push_bind(&e.kind)
                .push_bind(&e.entity_id)
                .push_bind(&e.action)
                .push_bind(e.version)
                .push_bind(&e.before)
                .push_bind(&e.after)
                .push_bind(&e.prev_hash)
                .push_bind(&e.hash);
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Record `head` as the newest entry.
pub async fn store_head(conn: &mut SqliteConnection, head: &Head) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1")
        .bind(to_i64(head.seq))
        .bind(&head.hash)
        .execute(conn)
        .await?;
    Ok(())
}

const COLUMNS: &str = "seq, time, actor, revision, source_commit, domain, kind, entity_id, \
                       action, version, before, after, prev_hash, hash";

fn stored(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEntry, sqlx::Error> {
    Ok(StoredEntry {
        seq: row.try_get("seq")?,
        time: row.try_get("time")?,
        actor: row.try_get("actor")?,
        revision: row.try_get("revision")?,
        commit: row.try_get("source_commit")?,
        domain: row.try_get("domain")?,
        kind: row.try_get("kind")?,
        entity_id: row.try_get("entity_id")?,
        action: row.try_get("action")?,
        version: row.try_get("version")?,
        before: row.try_get("before")?,
        after: row.try_get("after")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

fn json_or_text(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

impl From<StoredEntry> for AuditEntry {
    fn from(s: StoredEntry) -> Self {
        AuditEntry {
            seq: to_u64(s.seq),
            time: s.time,
            actor: s.actor,
            revision: s.revision.map(to_u64),
            commit: s.commit,
            domain: s.domain,
            kind: s.kind,
            entity_id: s.entity_id,
            action: s.action,
            version: to_u64(s.version),
            before: json_or_text(s.before),
            after: json_or_text(s.after),
            prev_hash: s.prev_hash,
            hash: s.hash,
        }
    }
}

/// The newest write of the reconciler: what the store last applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilerWrite {
    pub revision: u64,
    pub commit: String,
    /// RFC 3339, UTC.
    pub time: String,
}

/// The reconciler's newest entry, if it ever wrote.
pub async fn last_reconciler_write(
    conn: &mut SqliteConnection,
) -> Result<Option<ReconcilerWrite>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT revision, source_commit, time FROM audit_log WHERE actor = ? \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(Actor::RECONCILER)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(ReconcilerWrite {
            revision: r.try_get::<Option<i64>, _>("revision")?.map_or(0, to_u64),
            commit: r
                .try_get::<Option<String>, _>("source_commit")?
                .unwrap_or_default(),
            time: r.try_get("time")?,
        })
    })
    .transpose()
}

/// Entries with `seq > after`, oldest first, at most `limit` (capped at
/// [`MAX_PAGE`]).
pub async fn page(pool: &SqlitePool, after: u64, limit: u32) -> Result<AuditPage, sqlx::Error> {
    let limit = limit.clamp(1, MAX_PAGE);
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
    ))
    .bind(to_i64(after))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    let entries = rows
        .iter()
        .map(|r| stored(r).map(AuditEntry::from))
        .collect::<Result<Vec<_>, _>>()?;
    let next_after = if entries.len() == limit as usize {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(AuditPage {
        entries,
        next_after,
    })
}

/// Recompute the chain from the first entry and compare it with the head.
pub async fn verify(pool: &SqlitePool) -> Result<VerifyReport, sqlx::Error> {
    // One read transaction: entries and head from the same snapshot.
    let mut tx = pool.begin().await?;
    let report = verify_in(&mut tx).await?;
    tx.commit().await?;
    Ok(report)
}

async fn verify_in(conn: &mut SqliteConnection) -> Result<VerifyReport, sqlx::Error> {
    let mut expected: i64 = 1;
    let mut prev = GENESIS_HASH.to_owned();
    let mut count: u64 = 0;
    let bad = |seq: i64, count: u64, reason: String| VerifyReport {
        ok: false,
        entries: count,
        first_bad_seq: Some(to_u64(seq)),
        reason: Some(reason),
    };
    {
        let sql = format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq");
        let mut rows = sqlx::query(&sql).fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let e = stored(&row)?;
            if e.seq != expected {
                let reason = if e.seq > expected {
                    format!(
                        "entry {expected} is missing: the entry after {} is {}",
                        expected - 1,
                        e.seq
                    )
                } else {
                    format!("entry {} is out of order", e.seq)
                };
                return Ok(bad(expected, count, reason));
            }
            if e.prev_hash != prev {
                return Ok(bad(
                    e.seq,
                    count,
                    format!(
                        "prev_hash of entry {} does not match the hash of entry {}: an entry was changed or removed",
                        e.seq,
                        e.seq - 1
                    ),
                ));
            }
            let recomputed = entry_hash(
                e.seq,
                &e.time,
                &e.actor,
                e.revision,
                e.commit.as_deref(),
                &e.domain,
                &e.kind,
                &e.entity_id,
                &e.action,
                e.version,
                e.before.as_deref(),
                e.after.as_deref(),
                &e.prev_hash,
            );
            if recomputed != e.hash {
                return Ok(bad(
                    e.seq,
                    count,
                    format!(
                        "entry {} was altered: its content does not match its hash",
                        e.seq
                    ),
                ));
            }
            prev = e.hash;
            count += 1;
            expected += 1;
        }
    }
    let last = expected - 1;
    let h = head(conn).await?;
    let head_seq = to_i64(h.seq);
    if head_seq > last {
        return Ok(bad(
            last + 1,
            count,
            format!(
                "entries {}..={head_seq} are missing from the end of the log",
                last + 1
            ),
        ));
    }
    if head_seq < last {
        return Ok(bad(
            head_seq + 1,
            count,
            format!("entries after {head_seq} were added outside fleet-edge"),
        ));
    }
    if h.hash != prev {
        return Ok(bad(
            last,
            count,
            format!("entry {last} does not match the recorded head of the log"),
        ));
    }
    Ok(VerifyReport {
        ok: true,
        entries: count,
        first_bad_seq: None,
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_every_field_and_tells_null_from_empty() {
        let base = || {
            entry_hash(
                1,
                "t",
                "local:admin",
                None,
                None,
                "menu",
                "tax",
                "x",
                "create",
                1,
                None,
                Some("{}"),
                GENESIS_HASH,
            )
        };
        let a = base();
        assert_eq!(a, base());
        assert_eq!(a.len(), 64);
        let b = entry_hash(
            1,
            "t",
            "local:admin",
            None,
            Some(""),
            "menu",
            "tax",
            "x",
            "create",
            1,
            None,
            Some("{}"),
            GENESIS_HASH,
        );
        assert_ne!(a, b);
        let c = entry_hash(
            1,
            "t",
            "local:admin",
            None,
            None,
            "menu",
            "tax",
            "x",
            "create",
            2,
            None,
            Some("{}"),
            GENESIS_HASH,
        );
        assert_ne!(a, c);
    }
}
