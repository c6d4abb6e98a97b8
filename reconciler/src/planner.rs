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
use schemas::diff::{Change, Domain, EntityChange, EntityKind, StateDiff, diff_states};
use serde::de::DeserializeOwned;
use serde_json::Value;
pub use wire::edge::{Action, Op, Precondition};
use wire::edge::{StateBody, Versioned};

/// What the edge backend reports it has applied: the configuration as a
/// [`StoreState`], plus each entity's version and override flag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppliedState {
    pub state: StoreState,
    /// `(kind, id)` → version.
    pub versions: BTreeMap<(EntityKind, String), u64>,
    /// Users and roles under a local emergency override.
    pub overridden: BTreeSet<(EntityKind, String)>,
    /// What the store owns (DESIGN.md §14): reported, never planned.
    pub store_owned: wire::edge::StoreOwned,
}

/// Why an edge `GET /state` answer could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the edge's GET /state answer is not understood at {at}: {message}")]
pub struct StateFormatError {
    pub at: String,
    pub message: String,
}

impl AppliedState {
    /// The edge's `GET /state` answer, decoded into the POS-MODEL types.
    /// Every entity body is decoded strictly: a field the model does not
    /// know is an error, not silently dropped.
    /// All four domains must be there: a missing one would read as "nothing
    /// applied" and plan creates of everything.
    pub fn from_state(body: StateBody) -> Result<AppliedState, StateFormatError> {
        let missing = |at: &str| StateFormatError {
            at: at.to_owned(),
            message: "missing".to_owned(),
        };
        let settings = body.settings.ok_or_else(|| missing("settings"))?;
        let menu = body.menu.ok_or_else(|| missing("menu"))?;
        let access = body.access.ok_or_else(|| missing("access"))?;
        let kitchen = body.kitchen.ok_or_else(|| missing("kitchen"))?;
        let mut out = AppliedState {
            store_owned: body.store_owned.clone().unwrap_or_default(),
            ..AppliedState::default()
        };
        for (key, entry) in &settings {
            let value =
                serde_json::from_value(entry.value.clone()).map_err(|e| StateFormatError {
                    at: format!("settings.{key}"),
                    message: e.to_string(),
                })?;
            out.state.settings.insert(key.clone(), value);
            out.versions
                .insert((EntityKind::Setting, key.clone()), entry.version);
        }
        out.state.menu.taxes = out.entities(menu.taxes, "taxes", EntityKind::Tax)?;
        out.state.menu.categories =
            out.entities(menu.categories, "categories", EntityKind::Category)?;
        out.state.menu.modifier_groups = out.entities(
            menu.modifier_groups,
            "modifier_groups",
            EntityKind::ModifierGroup,
        )?;
        out.state.menu.items = out.entities(menu.items, "items", EntityKind::Item)?;
        out.state.menu.discounts =
            out.entities(menu.discounts, "discounts", EntityKind::Discount)?;
        out.state.access.roles = out.entities(access.roles, "roles", EntityKind::Role)?;
        out.state.access.users = out.entities(access.users, "users", EntityKind::User)?;
        out.state.kitchen.stations =
            out.entities(kitchen.stations, "stations", EntityKind::Station)?;
        out.state.kitchen.devices = out.entities(kitchen.devices, "devices", EntityKind::Device)?;
        if let Some(routing) = kitchen.routing {
            out.versions
                .insert((EntityKind::Routing, "routing".into()), routing.version);
            out.state.kitchen.routing = decode(routing.body, "kitchen.routing")?;
        }
        Ok(out)
    }

    fn entities<T: DeserializeOwned>(
        &mut self,
        list: Vec<Versioned>,
        name: &str,
        kind: EntityKind,
    ) -> Result<Vec<T>, StateFormatError> {
        let mut out = Vec::with_capacity(list.len());
        for (i, e) in list.into_iter().enumerate() {
            let id = e
                .body
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if e.local_override == Some(true) {
                self.overridden.insert((kind, id.clone()));
            }
            self.versions.insert((kind, id), e.version);
            out.push(decode(e.body, &format!("{name}[{i}]"))?);
        }
        Ok(out)
    }

    pub fn version(&self, kind: EntityKind, id: &str) -> Option<u64> {
        self.versions.get(&(kind, id.to_owned())).copied()
    }
}

fn decode<T: DeserializeOwned>(body: wire::edge::Body, at: &str) -> Result<T, StateFormatError> {
    serde_json::from_value(Value::Object(body)).map_err(|e| StateFormatError {
        at: at.to_owned(),
        message: e.to_string(),
    })
}

/// The ordered operations, and what the policy left alone.
#[derive(Debug, Clone, Default, PartialEq)]
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

/// What wins when the store's applied entity and the repo disagree, per
/// domain (DESIGN.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The repo wins: a local edit is drift, reported and reverted.
    RepoWins,
    /// The repo wins, except over entities the store put under
    /// `local_override`: those are left alone and reported as overridden.
    RespectLocalOverride,
}

/// The conflict policy, one rule per domain. Orders, tickets and payments
/// are not configuration and never planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub settings: Conflict,
    pub menu: Conflict,
    pub access: Conflict,
    pub kitchen: Conflict,
}

impl Default for Policy {
    /// DESIGN.md §5: the repo wins everywhere; users and roles under a
    /// local override are left alone.
    fn default() -> Self {
        Policy {
            settings: Conflict::RepoWins,
            menu: Conflict::RepoWins,
            access: Conflict::RespectLocalOverride,
            kitchen: Conflict::RepoWins,
        }
    }
}

impl Policy {
    /// The rule of `kind`'s domain.
    pub fn for_kind(&self, kind: EntityKind) -> Conflict {
        match kind.domain() {
            Domain::Settings => self.settings,
            Domain::Menu => self.menu,
            Domain::Access => self.access,
            Domain::Kitchen => self.kitchen,
        }
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

/// Plan the writes that take `applied` to `desired` under `policy`.
pub fn plan(desired: &StoreState, applied: &AppliedState, policy: &Policy) -> Plan {
    let diff = diff_states(&applied.state, desired);
    let desired_entities = schemas::diff::entities(desired);
    let role_depth = role_depths(desired, &applied.state);
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    let mut overridden = Vec::new();
    for change in &diff.changes {
        let key = (change.kind, change.id.clone());
        if policy.for_kind(change.kind) == Conflict::RespectLocalOverride
            && applied.overridden.contains(&key)
        {
            overridden.push(change.clone());
            continue;
        }
        let version = applied.version(change.kind, &change.id);
        let precondition = match version {
            Some(v) => Precondition::IfMatch(v),
            // Routing always exists at the edge, at version 0 until written.
            None if change.kind == EntityKind::Routing => Precondition::IfMatch(0),
            None => Precondition::IfAbsent,
        };
        match &change.change {
            Change::Removed { .. } if change.kind == EntityKind::Routing => {
                upserts.push(Op {
                    kind: change.kind,
                    id: change.id.clone(),
                    action: Action::Upsert(serde_json::json!({})),
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
                    action: Action::Upsert(body),
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
