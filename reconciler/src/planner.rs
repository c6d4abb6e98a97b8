//! The planner: a pure function from the desired state, the applied state
//! and the conflict policy to an ordered list of operations (DESIGN.md §5).
//!
//! No IO and no clock. Creates and updates run in dependency order
//! (settings; stations; taxes → categories → modifier groups → items →
//! discounts; roles (parents first) → users; devices; routing), deletes in
//! the reverse order after them. An unchanged entity produces no operation,
//! so one changed price is one write. Users and roles that a store marked
//! `local_override` are left alone and reported as overridden. Orders and
//! tickets are not configuration and never appear here.

use std::collections::{BTreeMap, BTreeSet};

use schemas::StoreState;
use schemas::diff::{Change, EntityChange, EntityKind, StateDiff, diff_states};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the edge backend reports it has applied: the configuration as a
/// [`StoreState`], plus each entity's version and override flag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppliedState {
    pub state: StoreState,
    /// `(kind, id)` → version.
    pub versions: BTreeMap<(EntityKind, String), u64>,
    /// Users and roles under a local emergency override.
    pub overridden: BTreeSet<(EntityKind, String)>,
}

/// Why an edge `GET /state` answer could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the edge's GET /state answer is not understood at {at}: {message}")]
pub struct StateFormatError {
    pub at: String,
    pub message: String,
}

impl AppliedState {
    /// Read the JSON of the edge's `GET /state`.
    pub fn from_edge_json(json: &Value) -> Result<AppliedState, StateFormatError> {
        let err = |at: &str, message: String| StateFormatError {
            at: at.to_owned(),
            message,
        };
        let mut out = AppliedState::default();
        let settings = json
            .get("settings")
            .and_then(Value::as_object)
            .ok_or_else(|| err("settings", "missing".into()))?;
        for (key, entry) in settings {
            let value = entry
                .get("value")
                .ok_or_else(|| err(&format!("settings.{key}"), "no value".into()))?;
            let value = serde_json::from_value(value.clone())
                .map_err(|e| err(&format!("settings.{key}"), e.to_string()))?;
            out.state.settings.insert(key.clone(), value);
            out.versions
                .insert((EntityKind::Setting, key.clone()), version_of(entry));
        }
        let menu = json
            .get("menu")
            .ok_or_else(|| err("menu", "missing".into()))?;
        out.state.menu.taxes = out.entities(menu, "taxes", EntityKind::Tax)?;
        out.state.menu.categories = out.entities(menu, "categories", EntityKind::Category)?;
        out.state.menu.modifier_groups =
            out.entities(menu, "modifier_groups", EntityKind::ModifierGroup)?;
        out.state.menu.items = out.entities(menu, "items", EntityKind::Item)?;
        out.state.menu.discounts = out.entities(menu, "discounts", EntityKind::Discount)?;
        let access = json
            .get("access")
            .ok_or_else(|| err("access", "missing".into()))?;
        out.state.access.roles = out.entities(access, "roles", EntityKind::Role)?;
        out.state.access.users = out.entities(access, "users", EntityKind::User)?;
        let kitchen = json
            .get("kitchen")
            .ok_or_else(|| err("kitchen", "missing".into()))?;
        out.state.kitchen.stations = out.entities(kitchen, "stations", EntityKind::Station)?;
        out.state.kitchen.devices = out.entities(kitchen, "devices", EntityKind::Device)?;
        let routing = kitchen.get("routing").cloned().unwrap_or(Value::Null);
        if !routing.is_null() {
            out.versions.insert(
                (EntityKind::Routing, "routing".into()),
                version_of(&routing),
            );
            out.state.kitchen.routing = serde_json::from_value(strip(routing))
                .map_err(|e| err("kitchen.routing", e.to_string()))?;
        }
        Ok(out)
    }

    fn entities<T: serde::de::DeserializeOwned>(
        &mut self,
        section: &Value,
        name: &str,
        kind: EntityKind,
    ) -> Result<Vec<T>, StateFormatError> {
        let list = match section.get(name) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(list)) => list,
            Some(_) => {
                return Err(StateFormatError {
                    at: name.to_owned(),
                    message: "not a list".into(),
                });
            }
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, e) in list.iter().enumerate() {
            let id = e
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if e.get("local_override").and_then(Value::as_bool) == Some(true) {
                self.overridden.insert((kind, id.clone()));
            }
            self.versions.insert((kind, id), version_of(e));
            out.push(
                serde_json::from_value(strip(e.clone())).map_err(|err| StateFormatError {
                    at: format!("{name}[{i}]"),
                    message: err.to_string(),
                })?,
            );
        }
        Ok(out)
    }

    pub fn version(&self, kind: EntityKind, id: &str) -> Option<u64> {
        self.versions.get(&(kind, id.to_owned())).copied()
    }
}

fn version_of(v: &Value) -> u64 {
    v.get("version").and_then(Value::as_u64).unwrap_or(0)
}

/// Drop the edge's bookkeeping fields, leaving the POS-MODEL entity.
fn strip(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("version");
        o.remove("local_override");
    }
    v
}

/// The precondition an operation is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precondition {
    /// Create: the entity must not exist.
    Absent,
    /// Update or delete: the entity must still be at this version.
    Version(u64),
}

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Create or replace with this body (POS-MODEL fields).
    Upsert {
        body: Value,
    },
    Delete,
}

/// One write to the edge backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub kind: EntityKind,
    pub id: String,
    #[serde(flatten)]
    pub action: Action,
    pub precondition: Precondition,
}

/// The ordered operations, and what the policy left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// What differs, applied → desired (with fields, for reports and drift).
    pub diff: StateDiff,
    /// Users and roles left alone because of a local override.
    pub overridden: Vec<EntityChange>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Upsert order of the kinds; deletes run in reverse.
const ORDER: [EntityKind; 11] = [
    EntityKind::Setting,
    EntityKind::Station,
    EntityKind::Tax,
    EntityKind::Category,
    EntityKind::ModifierGroup,
    EntityKind::Item,
    EntityKind::Discount,
    EntityKind::Role,
    EntityKind::User,
    EntityKind::Device,
    EntityKind::Routing,
];

fn rank(kind: EntityKind) -> usize {
    ORDER
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is ordered")
}

/// Plan the writes that take `applied` to `desired`.
pub fn plan(desired: &StoreState, applied: &AppliedState) -> Plan {
    let diff = diff_states(&applied.state, desired);
    let desired_entities = schemas::diff::entities(desired);
    let role_depth = role_depths(desired, &applied.state);
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    let mut overridden = Vec::new();
    for change in &diff.changes {
        let key = (change.kind, change.id.clone());
        if applied.overridden.contains(&key) {
            overridden.push(change.clone());
            continue;
        }
        let version = applied.version(change.kind, &change.id);
        let precondition = match version {
            Some(v) => Precondition::Version(v),
            // Routing always exists at the edge, at version 0 until written.
            None if change.kind == EntityKind::Routing => Precondition::Version(0),
            None => Precondition::Absent,
        };
        match &change.change {
            Change::Removed { .. } if change.kind == EntityKind::Routing => {
                upserts.push(Op {
                    kind: change.kind,
                    id: change.id.clone(),
                    action: Action::Upsert {
                        body: serde_json::json!({}),
                    },
                    precondition,
                });
            }
            Change::Removed { .. } => deletes.push(Op {
                kind: change.kind,
                id: change.id.clone(),
                action: Action::Delete,
                precondition,
            }),
            Change::Added { .. } | Change::Changed { .. } => {
                let body = desired_entities
                    .get(&key)
                    .cloned()
                    .expect("an added or changed entity is desired");
                upserts.push(Op {
                    kind: change.kind,
                    id: change.id.clone(),
                    action: Action::Upsert { body },
                    precondition,
                });
            }
        }
    }
    let depth = |op: &Op| {
        if op.kind == EntityKind::Role {
            role_depth.get(&op.id).copied().unwrap_or(0)
        } else {
            0
        }
    };
    upserts.sort_by(|a, b| {
        rank(a.kind)
            .cmp(&rank(b.kind))
            .then(depth(a).cmp(&depth(b)))
            .then(a.id.cmp(&b.id))
    });
    deletes.sort_by(|a, b| {
        rank(b.kind)
            .cmp(&rank(a.kind))
            .then(depth(b).cmp(&depth(a)))
            .then(a.id.cmp(&b.id))
    });
    upserts.extend(deletes);
    Plan {
        ops: upserts,
        diff,
        overridden,
    }
}

/// How deep each role sits in the inheritance graph (parents first), over
/// the roles of both states so creates and deletes are both ordered.
fn role_depths(desired: &StoreState, applied: &StoreState) -> BTreeMap<String, usize> {
    let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in desired
        .access
        .roles
        .iter()
        .chain(applied.access.roles.iter())
    {
        parents
            .entry(r.id.as_str())
            .or_default()
            .extend(r.inherits.iter().map(|i| i.as_str()));
    }
    fn depth<'a>(
        id: &'a str,
        parents: &BTreeMap<&'a str, Vec<&'a str>>,
        seen: &mut BTreeSet<&'a str>,
    ) -> usize {
        if !seen.insert(id) {
            return 0; // a cycle; the edge refuses it anyway
        }
        let d = parents
            .get(id)
            .into_iter()
            .flatten()
            .map(|p| depth(p, parents, seen) + 1)
            .max()
            .unwrap_or(0);
        seen.remove(id);
        d
    }
    parents
        .keys()
        .map(|id| (id.to_string(), depth(id, &parents, &mut BTreeSet::new())))
        .collect()
}

#[cfg(test)]
mod tests;
