//! The one diff model of Fleet: what differs between two desired states of
//! a store, per domain, per entity, per field.
//!
//! `fleet plan` shows it for pull requests; the reconciler's planner turns
//! the same [`EntityChange`]s into edge API operations, and reports drift in
//! the same terms. Pure: no IO, deterministic order (domain, entity kind in
//! dependency order, id).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::SECRET_SHOWN;
use crate::state::StoreState;

/// The four configuration domains of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    Settings,
    Menu,
    Access,
    Kitchen,
}

impl Domain {
    pub const ALL: [Domain; 4] = [
        Domain::Settings,
        Domain::Menu,
        Domain::Access,
        Domain::Kitchen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Settings => "settings",
            Domain::Menu => "menu",
            Domain::Access => "access",
            Domain::Kitchen => "kitchen",
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of configuration entity, in the order they are created (a kind
/// only references kinds before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Setting,
    Tax,
    Category,
    ModifierGroup,
    Item,
    Discount,
    Role,
    User,
    Station,
    Device,
    Routing,
}

impl EntityKind {
    /// Every kind, in the order the rendered state lists them.
    pub const ALL: [EntityKind; 11] = [
        EntityKind::Setting,
        EntityKind::Tax,
        EntityKind::Category,
        EntityKind::ModifierGroup,
        EntityKind::Item,
        EntityKind::Discount,
        EntityKind::Role,
        EntityKind::User,
        EntityKind::Station,
        EntityKind::Device,
        EntityKind::Routing,
    ];

    /// The kinds of the menu domain, which the edge writes in batches.
    pub const MENU: [EntityKind; 5] = [
        EntityKind::Tax,
        EntityKind::Category,
        EntityKind::ModifierGroup,
        EntityKind::Item,
        EntityKind::Discount,
    ];

    /// The stable machine name (`modifier_group`), as serialized: used in
    /// the edge's batch ops, its database and its audit log.
    pub fn code(self) -> &'static str {
        match self {
            EntityKind::ModifierGroup => "modifier_group",
            other => other.as_str(),
        }
    }

    /// The inverse of [`EntityKind::code`].
    pub fn from_code(code: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn domain(self) -> Domain {
        match self {
            EntityKind::Setting => Domain::Settings,
            EntityKind::Tax
            | EntityKind::Category
            | EntityKind::ModifierGroup
            | EntityKind::Item
            | EntityKind::Discount => Domain::Menu,
            EntityKind::Role | EntityKind::User => Domain::Access,
            EntityKind::Station | EntityKind::Device | EntityKind::Routing => Domain::Kitchen,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Setting => "setting",
            EntityKind::Tax => "tax",
            EntityKind::Category => "category",
            EntityKind::ModifierGroup => "modifier group",
            EntityKind::Item => "item",
            EntityKind::Discount => "discount",
            EntityKind::Role => "role",
            EntityKind::User => "user",
            EntityKind::Station => "station",
            EntityKind::Device => "device",
            EntityKind::Routing => "routing",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field that differs. `field` is a dotted path inside the entity;
/// list elements with an `id` are addressed by it
/// (`variations.classic-single.price`), and a change in their order is the
/// field `variations (order)` ([`ORDER_SUFFIX`]). `None` means absent on
/// that side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

impl FieldChange {
    /// Whether this is a secret value's change, shown without the value.
    pub fn is_secret(&self) -> bool {
        let secret = |v: &Option<Value>| {
            v.as_ref().is_none_or(|v| {
                v.as_str()
                    .is_some_and(|s| s == SECRET_SHOWN || s == SECRET_CHANGED)
            })
        };
        (self.before.is_some() || self.after.is_some())
            && secret(&self.before)
            && secret(&self.after)
    }
}

impl fmt::Display for FieldChange {
    /// `field: before → after`, `field: added x`, `field: removed (was x)`;
    /// a secret's: `field: secret changed|added|removed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_secret() {
            let what = match (&self.before, &self.after) {
                (Some(_), Some(_)) => "changed",
                (None, _) => "added",
                (_, None) => "removed",
            };
            return write!(f, "{}: secret {what}", self.field);
        }
        match (&self.before, &self.after) {
            (Some(a), Some(b)) => write!(f, "{}: {} → {}", self.field, show(a), show(b)),
            (None, Some(b)) => write!(f, "{}: added {}", self.field, show(b)),
            (Some(a), None) => write!(f, "{}: removed (was {})", self.field, show(a)),
            (None, None) => f.write_str(&self.field),
        }
    }
}

/// How a [`FieldChange`] names a change of order in a list of members
/// keyed by id: `variations (order)`, before and after the ids they have
/// in common, in their order on each side. Ids are slugs, so the name
/// cannot clash with a member's.
pub const ORDER_SUFFIX: &str = "(order)";

/// What happened to one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Added { value: Value },
    Removed { value: Value },
    Changed { fields: Vec<FieldChange> },
}

/// One entity that differs between two states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityChange {
    pub kind: EntityKind,
    pub id: String,
    #[serde(flatten)]
    pub change: Change,
}

impl EntityChange {
    pub fn domain(&self) -> Domain {
        self.kind.domain()
    }
}

/// Every entity that differs, in domain and dependency order, then by id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StateDiff {
    pub changes: Vec<EntityChange>,
}

impl StateDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The changes of one domain.
    pub fn in_domain(&self, domain: Domain) -> impl Iterator<Item = &EntityChange> {
        self.changes.iter().filter(move |c| c.domain() == domain)
    }
}

/// Every entity of a state as `(kind, id) → value`.
pub fn entities(state: &StoreState) -> BTreeMap<(EntityKind, String), Value> {
    fn put<T: Serialize>(
        out: &mut BTreeMap<(EntityKind, String), Value>,
        kind: EntityKind,
        id: &str,
        v: &T,
    ) {
        out.insert(
            (kind, id.to_owned()),
            serde_json::to_value(v).expect("entities are plain data"),
        );
    }
    let mut out = BTreeMap::new();
    for (k, v) in &state.settings {
        put(&mut out, EntityKind::Setting, k, v);
    }
    let m = &state.menu;
    m.taxes
        .iter()
        .for_each(|e| put(&mut out, EntityKind::Tax, e.id.as_str(), e));
    m.categories
        .iter()
        .for_each(|e| put(&mut out, EntityKind::Category, e.id.as_str(), e));
    m.modifier_groups
        .iter()
        .for_each(|e| put(&mut out, EntityKind::ModifierGroup, e.id.as_str(), e));
    m.items
        .iter()
        .for_each(|e| put(&mut out, EntityKind::Item, e.id.as_str(), e));
    m.discounts
        .iter()
        .for_each(|e| put(&mut out, EntityKind::Discount, e.id.as_str(), e));
    state
        .access
        .roles
        .iter()
        .for_each(|e| put(&mut out, EntityKind::Role, e.id.as_str(), e));
    state
        .access
        .users
        .iter()
        .for_each(|e| put(&mut out, EntityKind::User, e.id.as_str(), e));
    let k = &state.kitchen;
    k.stations
        .iter()
        .for_each(|e| put(&mut out, EntityKind::Station, e.id.as_str(), e));
    k.devices
        .iter()
        .for_each(|e| put(&mut out, EntityKind::Device, e.id.as_str(), e));
    put(&mut out, EntityKind::Routing, "routing", &k.routing);
    out
}

/// A borrowed entity of a state, compared without serializing it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum EntityRef<'a> {
    Setting(&'a crate::model::SettingValue),
    Tax(&'a crate::model::Tax),
    Category(&'a crate::model::Category),
    ModifierGroup(&'a crate::model::ModifierGroup),
    Item(&'a crate::model::Item),
    Discount(&'a crate::model::Discount),
    Role(&'a crate::model::Role),
    User(&'a crate::model::User),
    Station(&'a crate::model::Station),
    Device(&'a crate::model::Device),
    Routing(&'a crate::model::Routing),
}

impl EntityRef<'_> {
    fn to_value(self) -> Value {
        let v = match self {
            EntityRef::Setting(e) => serde_json::to_value(e),
            EntityRef::Tax(e) => serde_json::to_value(e),
            EntityRef::Category(e) => serde_json::to_value(e),
            EntityRef::ModifierGroup(e) => serde_json::to_value(e),
            EntityRef::Item(e) => serde_json::to_value(e),
            EntityRef::Discount(e) => serde_json::to_value(e),
            EntityRef::Role(e) => serde_json::to_value(e),
            EntityRef::User(e) => serde_json::to_value(e),
            EntityRef::Station(e) => serde_json::to_value(e),
            EntityRef::Device(e) => serde_json::to_value(e),
            EntityRef::Routing(e) => serde_json::to_value(e),
        };
        v.expect("entities are plain data")
    }
}

fn entity_refs(state: &StoreState) -> BTreeMap<(EntityKind, &str), EntityRef<'_>> {
    let mut out = BTreeMap::new();
    for (k, v) in &state.settings {
        out.insert((EntityKind::Setting, k.as_str()), EntityRef::Setting(v));
    }
    let m = &state.menu;
    m.taxes
        .iter()
        .for_each(|e| _ = out.insert((EntityKind::Tax, e.id.as_str()), EntityRef::Tax(e)));
    m.categories.iter().for_each(|e| {
        _ = out.insert(
            (EntityKind::Category, e.id.as_str()),
            EntityRef::Category(e),
        )
    });
    m.modifier_groups.iter().for_each(|e| {
        _ = out.insert(
            (EntityKind::ModifierGroup, e.id.as_str()),
            EntityRef::ModifierGroup(e),
        )
    });
    m.items
        .iter()
        .for_each(|e| _ = out.insert((EntityKind::Item, e.id.as_str()), EntityRef::Item(e)));
    m.discounts.iter().for_each(|e| {
        _ = out.insert(
            (EntityKind::Discount, e.id.as_str()),
            EntityRef::Discount(e),
        )
    });
    state
        .access
        .roles
        .iter()
        .for_each(|e| _ = out.insert((EntityKind::Role, e.id.as_str()), EntityRef::Role(e)));
    state
        .access
        .users
        .iter()
        .for_each(|e| _ = out.insert((EntityKind::User, e.id.as_str()), EntityRef::User(e)));
    let k = &state.kitchen;
    k.stations
        .iter()
        .for_each(|e| _ = out.insert((EntityKind::Station, e.id.as_str()), EntityRef::Station(e)));
    k.devices
        .iter()
        .for_each(|e| _ = out.insert((EntityKind::Device, e.id.as_str()), EntityRef::Device(e)));
    out.insert(
        (EntityKind::Routing, "routing"),
        EntityRef::Routing(&k.routing),
    );
    out
}

/// What a changed secret shows after it: two different placeholders, so a
/// line diff of the entity still shows a line changed.
pub const SECRET_CHANGED: &str = "(secret, changed)";

/// The secret field of an entity as serialized: a user's `pin_hash`, the
/// value of a `secret: true` setting (the whole value: field `value`).
fn secret_field(kind: EntityKind, id: &str) -> Option<&'static str> {
    match kind {
        EntityKind::User => Some("pin_hash"),
        EntityKind::Setting if crate::registry::is_secret_setting(id) => Some("value"),
        _ => None,
    }
}

/// Take the secret out of a serialized entity, leaving [`SECRET_SHOWN`] in
/// its place; the secret is returned so two sides can still be compared.
fn take_secret(kind: EntityKind, id: &str, v: &mut Value) -> Option<Value> {
    let field = secret_field(kind, id)?;
    if field == "value" {
        return Some(std::mem::replace(v, Value::String(SECRET_SHOWN.into())));
    }
    let obj = v.as_object_mut()?;
    let secret = obj.remove(field)?;
    obj.insert(field.to_owned(), Value::String(SECRET_SHOWN.into()));
    Some(secret)
}

/// A whole entity (added or removed) as a diff shows it: secrets masked.
fn masked(kind: EntityKind, id: &str, mut v: Value) -> Value {
    take_secret(kind, id, &mut v);
    v
}

/// The fields of a changed entity, secrets compared but never shown.
fn changed_fields(kind: EntityKind, id: &str, mut a: Value, mut b: Value) -> Vec<FieldChange> {
    let sa = take_secret(kind, id, &mut a);
    let sb = take_secret(kind, id, &mut b);
    let mut fields = Vec::new();
    let field = secret_field(kind, id).unwrap_or("value");
    if sa != sb {
        if field == "value" {
            // The whole value is the secret: nothing else to compare.
            return vec![FieldChange {
                field: field.to_owned(),
                before: sa.map(|_| Value::String(SECRET_SHOWN.into())),
                after: sb.map(|_| Value::String(SECRET_CHANGED.into())),
            }];
        }
        // Present on one side only: take the placeholder out of the other.
        if sa.is_none() {
            a.as_object_mut().map(|o| o.remove(field));
        }
        if sb.is_none() {
            b.as_object_mut().map(|o| o.remove(field));
        }
        diff_values("", &a, &b, &mut fields);
        fields.retain(|f| f.field != field);
        fields.push(FieldChange {
            field: field.to_owned(),
            before: sa.map(|_| Value::String(SECRET_SHOWN.into())),
            after: sb.map(|_| Value::String(SECRET_CHANGED.into())),
        });
        fields.sort_by(|x, y| x.field.cmp(&y.field));
    } else {
        diff_values("", &a, &b, &mut fields);
    }
    fields
}

/// What differs from `before` to `after`. Entities are compared as typed
/// values; only those that differ are serialized to find their fields.
/// Secret values (DESIGN.md §11) are compared but never copied into the
/// diff: a changed one is the field with [`SECRET_SHOWN`] on each side.
pub fn diff_states(before: &StoreState, after: &StoreState) -> StateDiff {
    if before == after {
        return StateDiff::default();
    }
    let a = entity_refs(before);
    let b = entity_refs(after);
    let mut changes = Vec::new();
    let mut keys: Vec<&(EntityKind, &str)> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let change = match (a.get(key), b.get(key)) {
            (None, Some(v)) => Change::Added {
                value: masked(key.0, key.1, v.to_value()),
            },
            (Some(v), None) => Change::Removed {
                value: masked(key.0, key.1, v.to_value()),
            },
            (Some(x), Some(y)) if x != y => Change::Changed {
                fields: changed_fields(key.0, key.1, x.to_value(), y.to_value()),
            },
            _ => continue,
        };
        changes.push(EntityChange {
            kind: key.0,
            id: key.1.to_owned(),
            change,
        });
    }
    StateDiff { changes }
}

/// The diff of two entity maps (used with maps from other sources, such as
/// what an edge backend reports it has applied).
pub fn diff_entities(
    before: &BTreeMap<(EntityKind, String), Value>,
    after: &BTreeMap<(EntityKind, String), Value>,
) -> StateDiff {
    let mut changes = Vec::new();
    let mut keys: Vec<&(EntityKind, String)> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let change = match (before.get(key), after.get(key)) {
            (None, Some(v)) => Change::Added {
                value: masked(key.0, &key.1, v.clone()),
            },
            (Some(v), None) => Change::Removed {
                value: masked(key.0, &key.1, v.clone()),
            },
            (Some(a), Some(b)) if a != b => Change::Changed {
                fields: changed_fields(key.0, &key.1, a.clone(), b.clone()),
            },
            _ => continue,
        };
        changes.push(EntityChange {
            kind: key.0,
            id: key.1.clone(),
            change,
        });
    }
    StateDiff { changes }
}

fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_owned()
    } else {
        format!("{path}.{seg}")
    }
}

/// Lists whose elements all have a string `id`, keyed by it.
fn by_id(list: &[Value]) -> Option<BTreeMap<&str, &Value>> {
    let mut out = BTreeMap::new();
    for v in list {
        let id = v.get("id")?.as_str()?;
        if out.insert(id, v).is_some() {
            return None;
        }
    }
    Some(out)
}

fn diff_values(path: &str, a: &Value, b: &Value, out: &mut Vec<FieldChange>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = join(path, k);
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff_values(&p, va, vb, out),
                    (va, vb) => out.push(FieldChange {
                        field: p,
                        before: va.cloned(),
                        after: vb.cloned(),
                    }),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if !x.is_empty() && !y.is_empty() => {
            match (by_id(x), by_id(y)) {
                (Some(mx), Some(my)) => {
                    // An ordered list (variations, modifiers) whose common
                    // members changed places: the display order changed.
                    let order = |list: &[Value], other: &BTreeMap<&str, &Value>| -> Vec<Value> {
                        list.iter()
                            .filter_map(|v| v.get("id")?.as_str())
                            .filter(|id| other.contains_key(id))
                            .map(|id| Value::String(id.to_owned()))
                            .collect()
                    };
                    let (before, after) = (order(x, &my), order(y, &mx));
                    if before != after {
                        out.push(FieldChange {
                            field: format!(
                                "{} {ORDER_SUFFIX}",
                                if path.is_empty() { "value" } else { path }
                            ),
                            before: Some(Value::Array(before)),
                            after: Some(Value::Array(after)),
                        });
                    }
                    let mut ids: Vec<&&str> = mx.keys().chain(my.keys()).collect();
                    ids.sort();
                    ids.dedup();
                    for id in ids {
                        let p = join(path, id);
                        match (mx.get(*id), my.get(*id)) {
                            (Some(va), Some(vb)) => diff_values(&p, va, vb, out),
                            (va, vb) => out.push(FieldChange {
                                field: p,
                                before: va.cloned().cloned(),
                                after: vb.cloned().cloned(),
                            }),
                        }
                    }
                }
                _ => out.push(FieldChange {
                    field: path.to_owned(),
                    before: Some(a.clone()),
                    after: Some(b.clone()),
                }),
            }
        }
        _ => out.push(FieldChange {
            field: if path.is_empty() {
                "value".to_owned()
            } else {
                path.to_owned()
            },
            before: Some(a.clone()),
            after: Some(b.clone()),
        }),
    }
}

/// A value in one line for people: strings unquoted when plain, money and
/// lists as written.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(items: Value) -> StoreState {
        let mut s = StoreState::default();
        s.menu.items = serde_json::from_value(items).expect("items");
        s
    }

    #[test]
    fn codes_are_the_serialized_names() {
        for k in EntityKind::ALL {
            assert_eq!(serde_json::to_value(k).expect("kind"), json!(k.code()));
            assert_eq!(EntityKind::from_code(k.code()), Some(k));
        }
    }

    #[test]
    fn one_price_change_is_one_field_of_one_item() {
        let a = state(json!([{"id": "burger", "name": "B", "category": "c",
            "variations": [{"id": "s", "name": "S", "price": 100}, {"id": "l", "name": "L", "price": 200}]}]));
        let b = state(json!([{"id": "burger", "name": "B", "category": "c",
            "variations": [{"id": "s", "name": "S", "price": 100}, {"id": "l", "name": "L", "price": 250}]}]));
        let d = diff_states(&a, &b);
        assert_eq!(
            d.changes,
            vec![EntityChange {
                kind: EntityKind::Item,
                id: "burger".into(),
                change: Change::Changed {
                    fields: vec![FieldChange {
                        field: "variations.l.price".into(),
                        before: Some(json!(200)),
                        after: Some(json!(250))
                    }]
                }
            }]
        );
        assert!(diff_states(&b, &b).is_empty());
    }

    #[test]
    fn added_removed_and_nested_members() {
        let a = state(
            json!([{"id": "x", "name": "X", "category": "c", "variations": [{"id": "x1", "name": "1", "price": 1}]}]),
        );
        let b = state(
            json!([{"id": "y", "name": "Y", "category": "c", "variations": [{"id": "y1", "name": "1", "price": 1}]}]),
        );
        let d = diff_states(&a, &b);
        assert!(matches!(d.changes[0].change, Change::Removed { .. }) && d.changes[0].id == "x");
        assert!(matches!(d.changes[1].change, Change::Added { .. }) && d.changes[1].id == "y");
        let c = state(json!([{"id": "x", "name": "X", "category": "c",
            "variations": [{"id": "x1", "name": "1", "price": 1}, {"id": "x2", "name": "2", "price": 2}]}]));
        let d = diff_states(&a, &c);
        let Change::Changed { fields } = &d.changes[0].change else {
            panic!("changed")
        };
        assert_eq!(fields[0].field, "variations.x2");
        assert_eq!(fields[0].before, None);
    }

    #[test]
    fn a_reorder_is_one_change_of_order_of_one_entity() {
        let sizes = |order: &[&str]| {
            let variations: Vec<Value> = order
                .iter()
                .map(|v| json!({"id": v, "name": v, "price": 100}))
                .collect();
            state(
                json!([{"id": "soda", "name": "Soda", "category": "c", "variations": variations}]),
            )
        };
        let a = sizes(&["small", "medium", "large"]);
        let b = sizes(&["large", "medium", "small"]);
        let d = diff_states(&a, &b);
        assert_eq!(
            d.changes,
            vec![EntityChange {
                kind: EntityKind::Item,
                id: "soda".into(),
                change: Change::Changed {
                    fields: vec![FieldChange {
                        field: "variations (order)".into(),
                        before: Some(json!(["small", "medium", "large"])),
                        after: Some(json!(["large", "medium", "small"])),
                    }]
                }
            }]
        );
        let Change::Changed { fields } = &d.changes[0].change else {
            panic!("changed")
        };
        assert_eq!(
            fields.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            [
                "variations (order): [\"small\",\"medium\",\"large\"] → [\"large\",\"medium\",\"small\"]"
            ]
        );
        // Adding or removing members is not a reorder of the others.
        let c = sizes(&["small", "medium", "large", "jumbo"]);
        let fields = match &diff_states(&a, &c).changes[0].change {
            Change::Changed { fields } => fields.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].field, "variations.jumbo");
        // Removing one and reordering the rest: both are said.
        let e = sizes(&["large", "small"]);
        let fields = match &diff_states(&a, &e).changes[0].change {
            Change::Changed { fields } => fields.clone(),
            other => panic!("{other:?}"),
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["variations (order)", "variations.medium"]);
    }
}
