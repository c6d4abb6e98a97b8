//! The applied configuration: reading entities and `/state`, and applying
//! writes — one entity or an atomic batch — in one SQLite transaction with
//! their preconditions, the business rules that span entities, versions and
//! the audit log.
//!
//! Every write, single or batched, goes through [`write`]: ops are applied in
//! order (each checks its precondition and its own values at once), then the
//! rules between entities are checked on the result, like deferred SQL
//! constraints: references resolve, nothing deleted is still referenced, a
//! variation or modifier belongs to one parent, role inheritance has no
//! cycle. Any failure rolls the whole transaction back: nothing applied, no
//! version consumed, no audit entry. HTTP is not known here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schemas::diff::{Domain, EntityKind};
use schemas::model::Routing;
use serde_json::{Map, Value};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
pub use wire::edge::{Action, Op, OpResult, Precondition};
use wire::edge::{SettingEntry, StateBody, Versioned};

use crate::audit::{self, Actor, NewEntry};
use crate::db::Db;
use crate::model::{
    self, Invalid, MemberKind, ROUTING_ID, Reference, canonicalize, domain_name,
    has_local_override, kind_name, parse_kind,
};

/// What one op did, and the entity as `GET` answers it afterwards (the
/// single-entity routes answer with it; a batch answers only [`OpResult`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub op: OpResult,
    /// `None` after a delete.
    pub view: Option<Value>,
}

/// Why a write was refused. Each maps to one HTTP status in `api::error`.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A value the entity may not have (422).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A reference to an entity that does not exist (409).
    #[error("{message}")]
    MissingReference { field: String, message: String },
    /// A delete of an entity others still reference (409).
    #[error("{message}")]
    InUse { message: String },
    /// An id that belongs to another entity already (409).
    #[error("{message}")]
    Duplicate { field: String, message: String },
    /// A write by the reconciler to a locally overridden user or role (409).
    #[error("{message}")]
    LocallyOverridden { message: String },
    /// The emergency override is for local actors only (409).
    #[error("the local override can only be set or cleared locally, not by the reconciler")]
    OverrideIsLocal,
    /// `If-Match`/`If-None-Match` did not hold (412).
    #[error("{message}")]
    PreconditionFailed {
        message: String,
        current: Option<u64>,
    },
    /// A write to an existing entity without `If-Match` (428).
    #[error("{message}")]
    PreconditionRequired { message: String },
    #[error("{kind} `{id}` does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// A write refused, with the index of the op that caused it (`None` when
/// the failure belongs to no op, such as a failed commit).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct BatchError {
    pub index: Option<usize>,
    pub error: WriteError,
}

impl From<sqlx::Error> for BatchError {
    fn from(e: sqlx::Error) -> Self {
        BatchError {
            index: None,
            error: WriteError::Db(e),
        }
    }
}

/// An entity as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub body: Value,
    pub version: u64,
    pub local_override: bool,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn parse_body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The current time as the audit log and orders record it.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn load(
    conn: &mut SqliteConnection,
    kind: EntityKind,
    id: &str,
) -> Result<Option<Stored>, sqlx::Error> {
    let row =
        sqlx::query("SELECT body, version, local_override FROM entities WHERE kind = ? AND id = ?")
            .bind(kind_name(kind))
            .bind(id)
            .fetch_optional(conn)
            .await?;
    row.map(|r| {
        Ok(Stored {
            body: parse_body(r.try_get::<&str, _>("body")?),
            version: to_u64(r.try_get("version")?),
            local_override: r.try_get::<i64, _>("local_override")? != 0,
        })
    })
    .transpose()
}

fn empty_routing() -> Value {
    serde_json::to_value(Routing::default()).expect("routing serializes")
}

/// The entity as `GET` answers it; `None` when it does not exist. Routing
/// always exists: never written, it is empty at version 0.
pub async fn get(
    pool: &SqlitePool,
    kind: EntityKind,
    id: &str,
) -> Result<Option<Value>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let stored = load(&mut conn, kind, id).await?;
    Ok(match stored {
        Some(s) => Some(model::view(kind, id, s.body, s.version, s.local_override)),
        None if kind == EntityKind::Routing => {
            Some(model::view(kind, ROUTING_ID, empty_routing(), 0, false))
        }
        None => None,
    })
}

/// The users and roles under a local override, by kind then id.
pub async fn overridden(
    conn: &mut SqliteConnection,
) -> Result<Vec<(EntityKind, String)>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT kind, id FROM entities WHERE local_override = 1 ORDER BY kind, id")
            .fetch_all(conn)
            .await?;
    rows.iter()
        .filter_map(|r| {
            let kind: String = match r.try_get("kind") {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            let kind = model::parse_kind(&kind)?;
            Some(r.try_get("id").map(|id| (kind, id)))
        })
        .collect()
}

/// Which sections `/state` answers.
pub fn domain_kinds(domain: Domain) -> &'static [EntityKind] {
    match domain {
        Domain::Settings => &[EntityKind::Setting],
        Domain::Menu => &model::MENU_KINDS,
        Domain::Access => &[EntityKind::Role, EntityKind::User],
        Domain::Kitchen => &[EntityKind::Station, EntityKind::Device, EntityKind::Routing],
    }
}

/// The applied configuration of every domain (or one), with versions, as
/// `GET /state` answers it ([`StateBody`]): lists sorted by id, every entity
/// its `GET` body; `version` is the newest version of the database (it
/// changes with every write). Routing is always there, at version 0 until
/// first written.
pub async fn state(pool: &SqlitePool, domain: Option<Domain>) -> Result<StateBody, sqlx::Error> {
    let domains: Vec<Domain> = match domain {
        Some(d) => vec![d],
        None => Domain::ALL.to_vec(),
    };
    let mut tx = pool.begin().await?;
    let counter: i64 = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'version_counter'")
        .fetch_one(&mut *tx)
        .await?;
    let mut out = StateBody {
        version: to_u64(counter),
        ..StateBody::default()
    };
    if domain.is_none() {
        out.store_owned = Some(wire::edge::StoreOwned {
            unavailable: crate::availability::list(&mut tx).await?,
        });
    }
    for d in domains {
        // A domain asked for is present even when empty.
        match d {
            Domain::Settings => {
                out.settings.get_or_insert_default();
            }
            Domain::Menu => {
                out.menu.get_or_insert_default();
            }
            Domain::Access => {
                out.access.get_or_insert_default();
            }
            Domain::Kitchen => {
                out.kitchen.get_or_insert_default();
            }
        }
        for &kind in domain_kinds(d) {
            let rows = sqlx::query(
                "SELECT id, body, version, local_override FROM entities WHERE kind = ? ORDER BY id",
            )
            .bind(kind_name(kind))
            .fetch_all(&mut *tx)
            .await?;
            let mut views = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: &str = r.try_get("id")?;
                let body = parse_body(r.try_get::<&str, _>("body")?);
                let version = to_u64(r.try_get("version")?);
                let lo = r.try_get::<i64, _>("local_override")? != 0;
                views.push((id.to_owned(), body, version, lo));
            }
            match kind {
                EntityKind::Setting => {
                    let settings = out.settings.get_or_insert_default();
                    for (id, value, version, _) in views {
                        settings.insert(id, SettingEntry { value, version });
                    }
                }
                EntityKind::Routing => {
                    let v = match views.into_iter().next() {
                        Some((_, body, version, lo)) => versioned(kind, body, version, lo),
                        None => versioned(kind, empty_routing(), 0, false),
                    };
                    out.kitchen.get_or_insert_default().routing = Some(v);
                }
                _ => {
                    if let Some(list) = out.list_mut(kind) {
                        list.extend(
                            views
                                .into_iter()
                                .map(|(_, body, version, lo)| versioned(kind, body, version, lo)),
                        );
                    }
                }
            }
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// A stored entity as `/state` lists it: the same fields as
/// [`model::view`] gives a `GET`.
fn versioned(kind: EntityKind, body: Value, version: u64, local_override: bool) -> Versioned {
    let body = match body {
        Value::Object(m) => m,
        // Stored bodies are always objects; keep anything else visible.
        other => Map::from_iter([("value".to_owned(), other)]),
    };
    Versioned {
        body,
        version,
        local_override: has_local_override(kind).then_some(local_override),
    }
}

/// An entity's kind and id.
type Key = (EntityKind, String);

/// What the deferred checks need to know of an entity a batch touched.
#[derive(Debug)]
struct Touch {
    /// The last op that touched it.
    index: usize,
    /// Its references when it exists after the batch; `None` when deleted.
    refs: Option<Vec<Reference>>,
}

/// The derived rows of an entity (see the migration): its references and
/// its members.
#[derive(Debug, Clone)]
struct Derived {
    refs: Vec<Reference>,
    members: Vec<(MemberKind, String)>,
}

/// An entity's state after the ops so far, not yet written.
#[derive(Debug, Clone)]
enum Staged {
    Deleted,
    Written {
        row: Stored,
        /// `None`: the derived rows in the database are still right (an
        /// override toggle of an entity this batch did not otherwise write).
        derived: Option<Derived>,
    },
}

/// Apply `ops` atomically as `actor`. On success every op's result, in
/// order; on failure nothing is applied.
pub async fn write(db: &Db, actor: &Actor, ops: Vec<Op>) -> Result<Vec<Written>, BatchError> {
    let mut tx = db.writer.begin().await?;
    let results = apply(&mut tx, actor, ops).await?;
    tx.commit().await?;
    Ok(results)
}

/// Ops are applied to an in-memory overlay of the entities they touch
/// (loaded up front, a few queries per 500 ops), then the overlay is written
/// with multi-row statements and the cross-entity rules run on the result.
/// A 5,000-item batch costs tens of statements, not tens of thousands.
async fn apply(
    conn: &mut SqliteConnection,
    actor: &Actor,
    ops: Vec<Op>,
) -> Result<Vec<Written>, BatchError> {
    let now = now_rfc3339();
    let start: i64 = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'version_counter'")
        .fetch_one(&mut *conn)
        .await?;
    let keys: BTreeSet<Key> = ops.iter().map(|o| (o.kind, o.id.clone())).collect();
    let mut w = Writer {
        actor,
        now: &now,
        counter: to_u64(start),
        head: audit::head(conn).await?,
        touched: BTreeMap::new(),
        loaded: load_many(conn, &keys).await?,
        staged: HashMap::new(),
        audit: Vec::new(),
    };
    let mut results = Vec::with_capacity(ops.len());
    for (index, op) in ops.into_iter().enumerate() {
        let r = w.apply_one(index, op).map_err(|error| BatchError {
            index: Some(index),
            error,
        })?;
        results.push(r);
    }
    if w.counter != to_u64(start) {
        w.flush(conn).await?;
        w.deferred_checks(conn).await?;
        sqlx::query("UPDATE meta SET value = ? WHERE key = 'version_counter'")
            .bind(to_i64(w.counter))
            .execute(&mut *conn)
            .await?;
        audit::store_head(conn, &w.head).await?;
    }
    Ok(results)
}

struct Writer<'a> {
    actor: &'a Actor,
    now: &'a str,
    counter: u64,
    head: audit::Head,
    touched: BTreeMap<Key, Touch>,
    /// The database's rows of every entity the ops name (`None`: absent).
    loaded: HashMap<Key, Option<Stored>>,
    /// Entities changed by the ops so far.
    staged: HashMap<Key, Staged>,
    audit: Vec<audit::StagedEntry>,
}

/// Rows per multi-row statement: at most 5 bound values per row keeps
/// statements far below SQLite's limit of 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// The stored rows of `keys`.
async fn load_many(
    conn: &mut SqliteConnection,
    keys: &BTreeSet<Key>,
) -> Result<HashMap<Key, Option<Stored>>, sqlx::Error> {
    let keys: Vec<&Key> = keys.iter().collect();
    let mut out: HashMap<Key, Option<Stored>> = keys.iter().map(|k| ((*k).clone(), None)).collect();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT kind, id, body, version, local_override FROM entities WHERE (kind, id) IN (VALUES ",
        );
        let mut sep = qb.separated(", ");
        for (kind, id) in chunk {
            sep.push("(")
                .push_bind_unseparated(kind_name(*kind))
                .push_unseparated(", ")
                .push_bind_unseparated(id.as_str())
                .push_unseparated(")");
        }
        qb.push(")");
        for r in qb.build().fetch_all(&mut *conn).await? {
            let Some(kind) = parse_kind(r.try_get("kind")?) else {
                continue;
            };
            out.insert(
                (kind, r.try_get("id")?),
                Some(Stored {
                    body: parse_body(r.try_get::<&str, _>("body")?),
                    version: to_u64(r.try_get("version")?),
                    local_override: r.try_get::<i64, _>("local_override")? != 0,
                }),
            );
        }
    }
    Ok(out)
}

fn check_precondition(op: &Op, current: Option<&Stored>) -> Result<(), WriteError> {
    let kind = kind_name(op.kind);
    let id = &op.id;
    let failed = |message: String| WriteError::PreconditionFailed {
        message,
        current: current.map(|c| c.version),
    };
    match (op.precondition, current) {
        (_, None) if op.action == Action::Delete => Err(WriteError::NotFound {
            kind,
            id: id.clone(),
        }),
        (_, None) if matches!(op.action, Action::SetOverride(_)) => Err(WriteError::NotFound {
            kind,
            id: id.clone(),
        }),
        (Precondition::IfAbsent, Some(c)) => Err(failed(format!(
            "{kind} `{id}` already exists (version {}); send If-Match: {} to replace it",
            c.version, c.version
        ))),
        (Precondition::IfMatch(v), Some(c)) if c.version != v => Err(failed(format!(
            "{kind} `{id}` is at version {}, not {v}",
            c.version
        ))),
        (Precondition::IfMatch(0), None) if op.kind == EntityKind::Routing => Ok(()),
        (Precondition::IfMatch(_) | Precondition::IfExists, None) => Err(failed(format!(
            "{kind} `{id}` does not exist; send If-None-Match: * to create it"
        ))),
        (Precondition::None, Some(c)) if !matches!(op.action, Action::SetOverride(_)) => {
            Err(WriteError::PreconditionRequired {
                message: format!(
                    "{kind} `{id}` exists (version {}): send If-Match: {} to change it",
                    c.version, c.version
                ),
            })
        }
        _ => Ok(()),
    }
}

impl Writer<'_> {
    fn next_version(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// The entity as the ops so far left it.
    fn current(&self, key: &Key) -> Option<Stored> {
        match self.staged.get(key) {
            Some(Staged::Deleted) => None,
            Some(Staged::Written { row, .. }) => Some(row.clone()),
            None => self.loaded.get(key).cloned().flatten(),
        }
    }

    fn audit(
        &mut self,
        op: &Op,
        action: &str,
        version: u64,
        before: Option<&Value>,
        after: Option<&Value>,
    ) {
        let before = before.map(Value::to_string);
        let after = after.map(Value::to_string);
        let entry = audit::stage(
            &mut self.head,
            NewEntry {
                time: self.now,
                actor: self.actor,
                domain: domain_name(op.kind),
                kind: kind_name(op.kind),
                entity_id: &op.id,
                action,
                version,
                before: before.as_deref(),
                after: after.as_deref(),
            },
        );
        self.audit.push(entry);
    }

    fn apply_one(&mut self, index: usize, op: Op) -> Result<Written, WriteError> {
        let kind = op.kind;
        let kind_s = kind_name(kind);
        let key = (kind, op.id.clone());
        let current = self.current(&key);
        check_precondition(&op, current.as_ref())?;
        if self.actor.is_reconciler() {
            if matches!(op.action, Action::SetOverride(_)) {
                return Err(WriteError::OverrideIsLocal);
            }
            if current.as_ref().is_some_and(|c| c.local_override) {
                return Err(WriteError::LocallyOverridden {
                    message: format!(
                        "{kind_s} `{}` is under a local emergency override; it changes only after a local actor clears it",
                        op.id
                    ),
                });
            }
        }
        let before = current
            .as_ref()
            .map(|c| model::view(kind, &op.id, c.body.clone(), c.version, c.local_override));
        let result = |result: &str, version: Option<u64>, view: Option<Value>| Written {
            op: OpResult {
                kind: kind_s.to_owned(),
                id: op.id.clone(),
                result: result.to_owned(),
                version,
            },
            view,
        };
        match &op.action {
            Action::Upsert(body) => {
                let canon = canonicalize(kind, &op.id, body.clone())?;
                if let Some(c) = &current
                    && c.body == canon.body
                {
                    return Ok(result("unchanged", Some(c.version), before));
                }
                let version = self.next_version();
                let local_override = current.as_ref().is_some_and(|c| c.local_override);
                let after = model::view(kind, &op.id, canon.body.clone(), version, local_override);
                let action = if current.is_some() {
                    "update"
                } else {
                    "create"
                };
                self.audit(&op, action, version, before.as_ref(), Some(&after));
                self.touched.insert(
                    key.clone(),
                    Touch {
                        index,
                        refs: Some(canon.refs.clone()),
                    },
                );
                self.staged.insert(
                    key,
                    Staged::Written {
                        row: Stored {
                            body: canon.body,
                            version,
                            local_override,
                        },
                        derived: Some(Derived {
                            refs: canon.refs,
                            members: canon.members,
                        }),
                    },
                );
                let r = if current.is_some() {
                    "updated"
                } else {
                    "created"
                };
                Ok(result(r, Some(version), Some(after)))
            }
            Action::Delete => {
                let version = self.next_version();
                self.audit(&op, "delete", version, before.as_ref(), None);
                self.touched
                    .insert(key.clone(), Touch { index, refs: None });
                self.staged.insert(key, Staged::Deleted);
                Ok(result("deleted", None, None))
            }
            Action::SetOverride(flag) => {
                let Some(c) = current else {
                    return Err(WriteError::NotFound {
                        kind: kind_s,
                        id: op.id.clone(),
                    });
                };
                if !has_local_override(kind) {
                    return Err(Invalid::new(
                        "local_override",
                        format!("{kind_s} entities have no local override"),
                    )
                    .into());
                }
                if c.local_override == *flag {
                    return Ok(result("unchanged", Some(c.version), before));
                }
                let version = self.next_version();
                let after = model::view(kind, &op.id, c.body.clone(), version, *flag);
                self.audit(&op, "override", version, before.as_ref(), Some(&after));
                // Keep derived rows staged by an earlier op of this batch.
                let derived = match self.staged.remove(&key) {
                    Some(Staged::Written { derived, .. }) => derived,
                    _ => None,
                };
                self.staged.insert(
                    key,
                    Staged::Written {
                        row: Stored {
                            body: c.body,
                            version,
                            local_override: *flag,
                        },
                        derived,
                    },
                );
                Ok(result("updated", Some(version), Some(after)))
            }
        }
    }

    /// Write the staged entities, their derived rows and the audit entries.
    async fn flush(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        let mut staged: Vec<(&Key, &Staged)> = self.staged.iter().collect();
        staged.sort_by(|a, b| a.0.cmp(b.0));
        let keys: Vec<&Key> = staged.iter().map(|(k, _)| *k).collect();
        let rederive: Vec<&Key> = staged
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s,
                    Staged::Deleted
                        | Staged::Written {
                            derived: Some(_),
                            ..
                        }
                )
            })
            .map(|(k, _)| *k)
            .collect();
        delete_keys(
            conn,
            "DELETE FROM entities WHERE (kind, id) IN (VALUES ",
            &keys,
        )
        .await?;
        delete_keys(
            conn,
            "DELETE FROM entity_refs WHERE (kind, id) IN (VALUES ",
            &rederive,
        )
        .await?;
        delete_keys(
            conn,
            "DELETE FROM catalog_members WHERE (parent_kind, parent_id) IN (VALUES ",
            &rederive,
        )
        .await?;

        let rows: Vec<(&Key, &Stored)> = staged
            .iter()
            .filter_map(|(k, s)| match s {
                Staged::Written { row, .. } => Some((*k, row)),
                Staged::Deleted => None,
            })
            .collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO entities (kind, id, body, version, local_override) ",
            );
            qb.push_values(chunk, |mut b, ((kind, id), row)| {
                b.push_bind(kind_name(*kind))
                    .push_bind(id.as_str())
                    .push_bind(row.body.to_string())
                    .push_bind(to_i64(row.version))
                    .push_bind(i64::from(row.local_override));
            });
            qb.build().execute(&mut *conn).await?;
        }

        let mut refs: Vec<(&Key, &Reference)> = Vec::new();
        let mut members: Vec<(&Key, &(MemberKind, String))> = Vec::new();
        for (k, s) in &staged {
            if let Staged::Written {
                derived: Some(d), ..
            } = s
            {
                refs.extend(d.refs.iter().map(|r| (*k, r)));
                members.extend(d.members.iter().map(|m| (*k, m)));
            }
        }
        for chunk in refs.chunks(ROWS_PER_STATEMENT) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO entity_refs (kind, id, field, ref_kind, ref_id) ");
            qb.push_values(chunk, |mut b, ((kind, id), r)| {
                b.push_bind(kind_name(*kind))
                    .push_bind(id.as_str())
                    .push_bind(r.field.as_str())
                    .push_bind(kind_name(r.kind))
                    .push_bind(r.id.as_str());
            });
            qb.build().execute(&mut *conn).await?;
        }
        for chunk in members.chunks(ROWS_PER_STATEMENT) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO catalog_members (member_kind, member_id, parent_kind, parent_id) ",
            );
            qb.push_values(chunk, |mut b, ((kind, id), (mk, mid))| {
                b.push_bind(mk.as_str())
                    .push_bind(mid.as_str())
                    .push_bind(kind_name(*kind))
                    .push_bind(id.as_str());
            });
            qb.build().execute(&mut *conn).await?;
        }
        audit::insert(conn, &self.audit).await
    }

    /// The rules between entities, on the state after every op.
    async fn deferred_checks(&self, conn: &mut SqliteConnection) -> Result<(), BatchError> {
        let at = |index: usize, error: WriteError| BatchError {
            index: Some(index),
            error,
        };
        let mut exists: HashMap<Key, bool> = HashMap::new();
        for ((kind, id), touch) in &self.touched {
            let kind_s = kind_name(*kind);
            match &touch.refs {
                Some(refs) => {
                    for r in refs {
                        let key = (r.kind, r.id.clone());
                        let found = match exists.get(&key) {
                            Some(f) => *f,
                            None => {
                                let f = entity_exists(conn, r.kind, &r.id).await?;
                                exists.insert(key, f);
                                f
                            }
                        };
                        if !found {
                            return Err(at(
                                touch.index,
                                WriteError::MissingReference {
                                    field: r.field.clone(),
                                    message: format!(
                                        "{kind_s} `{id}`: {} names {} `{}`, which does not exist",
                                        r.field,
                                        kind_name(r.kind),
                                        r.id
                                    ),
                                },
                            ));
                        }
                    }
                }
                None => {
                    let blockers = referrers(conn, *kind, id).await?;
                    if !blockers.is_empty() {
                        return Err(at(
                            touch.index,
                            WriteError::InUse {
                                message: format!(
                                    "{kind_s} `{id}` cannot be deleted: {}",
                                    describe_referrers(&blockers)
                                ),
                            },
                        ));
                    }
                }
            }
        }
        if self.touched.iter().any(|((k, _), t)| {
            t.refs.is_some() && matches!(k, EntityKind::Item | EntityKind::ModifierGroup)
        }) {
            self.check_members(conn).await?;
        }
        for ((kind, id), touch) in &self.touched {
            if *kind == EntityKind::Role
                && touch.refs.is_some()
                && let Some(cycle) = inheritance_cycle(conn, id).await?
            {
                return Err(at(
                    touch.index,
                    Invalid::new(
                        "inherits",
                        format!("role inheritance forms a cycle: {}", cycle.join(" → ")),
                    )
                    .into(),
                ));
            }
        }
        Ok(())
    }

    /// A variation belongs to one item, a modifier to one group.
    async fn check_members(&self, conn: &mut SqliteConnection) -> Result<(), BatchError> {
        let rows = sqlx::query(
            "SELECT member_kind, member_id, parent_kind, parent_id FROM catalog_members \
             WHERE (member_kind, member_id) IN ( \
               SELECT member_kind, member_id FROM catalog_members \
               GROUP BY member_kind, member_id HAVING COUNT(*) > 1) \
             ORDER BY member_kind, member_id, parent_id",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut groups: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        for r in &rows {
            groups
                .entry((r.try_get("member_kind")?, r.try_get("member_id")?))
                .or_default()
                .push((r.try_get("parent_kind")?, r.try_get("parent_id")?));
        }
        for ((member_kind, member_id), parents) in groups {
            // Blame the op that touched one of the parents last.
            let blamed = parents
                .iter()
                .filter_map(|(pk, pid)| {
                    let k = parse_kind(pk)?;
                    self.touched
                        .get(&(k, pid.clone()))
                        .map(|t| (t.index, pk.clone(), pid.clone()))
                })
                .max();
            let Some((index, pk, pid)) = blamed else {
                continue;
            };
            let others: Vec<String> = parents
                .iter()
                .filter(|(k, i)| !(k == &pk && i == &pid))
                .map(|(k, i)| format!("{k} `{i}`"))
                .collect();
            let field = if member_kind == MemberKind::Variation.as_str() {
                "variations"
            } else {
                "modifiers"
            };
            return Err(BatchError {
                index: Some(index),
                error: WriteError::Duplicate {
                    field: field.to_owned(),
                    message: format!(
                        "{pk} `{pid}`: {member_kind} `{member_id}` already belongs to {}",
                        others.join(", ")
                    ),
                },
            });
        }
        Ok(())
    }
}

async fn entity_exists(
    conn: &mut SqliteConnection,
    kind: EntityKind,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM entities WHERE kind = ? AND id = ?")
        .bind(kind_name(kind))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Who references `(kind, id)`: `(kind, id, field)`, at most 21.
async fn referrers(
    conn: &mut SqliteConnection,
    kind: EntityKind,
    id: &str,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT kind, id, field FROM entity_refs WHERE ref_kind = ? AND ref_id = ? \
         ORDER BY kind, id, field LIMIT 21",
    )
    .bind(kind_name(kind))
    .bind(id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("kind")?, r.try_get("id")?, r.try_get("field")?)))
        .collect()
}

fn describe_referrers(blockers: &[(String, String, String)]) -> String {
    let mut by_kind: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (k, id, field) in blockers.iter().take(20) {
        by_kind
            .entry(k.as_str())
            .or_default()
            .insert(format!("`{id}` ({field})"));
    }
    let mut parts: Vec<String> = by_kind
        .into_iter()
        .map(|(k, ids)| {
            let ids: Vec<String> = ids.into_iter().collect();
            format!("{k} {}", ids.join(", "))
        })
        .collect();
    if blockers.len() > 20 {
        parts.push("and more".to_owned());
    }
    format!("still referenced by {}", parts.join("; "))
}

/// A cycle through `start` in role inheritance, as the ids along it.
async fn inheritance_cycle(
    conn: &mut SqliteConnection,
    start: &str,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    let mut stack: Vec<Vec<String>> = vec![vec![start.to_owned()]];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().map(String::as_str).unwrap_or(start);
        let parents: Vec<String> = sqlx::query_scalar(
            "SELECT ref_id FROM entity_refs WHERE kind = 'role' AND id = ? AND field = 'inherits'",
        )
        .bind(last)
        .fetch_all(&mut *conn)
        .await?;
        for p in parents {
            let mut next = path.clone();
            next.push(p.clone());
            if p == start {
                return Ok(Some(next));
            }
            if seen.insert(p) {
                stack.push(next);
            }
        }
    }
    Ok(None)
}

/// `<delete statement prefix> (kind, id) pairs )`, in chunks.
async fn delete_keys(
    conn: &mut SqliteConnection,
    prefix: &str,
    keys: &[&Key],
) -> Result<(), sqlx::Error> {
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(prefix);
        let mut sep = qb.separated(", ");
        for (kind, id) in chunk {
            sep.push("(")
                .push_bind_unseparated(kind_name(*kind))
                .push_unseparated(", ")
                .push_bind_unseparated(id.as_str())
                .push_unseparated(")");
        }
        qb.push(")");
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The parent of a variation or modifier, if any.
pub async fn member_parent(
    conn: &mut SqliteConnection,
    member: MemberKind,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT parent_id FROM catalog_members WHERE member_kind = ? AND member_id = ? LIMIT 1",
    )
    .bind(member.as_str())
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// An entity's stored body, if it exists (for order pricing).
pub async fn body(
    conn: &mut SqliteConnection,
    kind: EntityKind,
    id: &str,
) -> Result<Option<Value>, sqlx::Error> {
    Ok(load(conn, kind, id).await?.map(|s| s.body))
}
