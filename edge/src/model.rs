//! Configuration entities as the edge stores them, and the business rules
//! that can be checked on one entity alone.
//!
//! A request body becomes a [`Canonical`] entity here: decoded into the
//! `schemas` type of its kind (the POS-MODEL.md field names), checked (ids,
//! prices, rates, modifier bounds, permissions…) and serialized back, so that
//! what the edge stores and answers is byte-for-byte what `fleet render`
//! produces for the same entity. The references an entity makes to others are
//! listed here too; whether they resolve is checked by [`crate::store`], which
//! sees the database. This module does no IO.

use std::collections::BTreeSet;

use schemas::diff::{Domain, EntityKind};
use schemas::model::{
    Category, Device, Discount, DiscountKind, Item, ModifierGroup, Role, Routing, SettingValue,
    Station, Tax, User,
};
use schemas::primitives::{MONEY_LIMIT, Money, Rate, is_slug};
use schemas::registry::{SettingLookup, canonical_permission, check_setting, lookup_setting};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The id of the one routing entity (`GET/PUT /routing`), as `schemas::diff`
/// names it.
pub const ROUTING_ID: &str = "routing";

/// Most variations an item may have (POS-MODEL.md rule 6).
pub const MAX_VARIATIONS: usize = 250;

/// The stable name of a kind in the database, the audit log and batch ops.
pub fn kind_name(kind: EntityKind) -> &'static str {
    kind.code()
}

/// The inverse of [`kind_name`].
pub fn parse_kind(name: &str) -> Option<EntityKind> {
    EntityKind::from_code(name)
}

/// Every kind, in the order a planner creates them.
pub const ALL_KINDS: [EntityKind; 11] = EntityKind::ALL;

/// The kinds `POST /menu/batch` takes.
pub const MENU_KINDS: [EntityKind; 5] = EntityKind::MENU;

/// Whether entities of this kind carry `local_override` (users and roles).
pub fn has_local_override(kind: EntityKind) -> bool {
    matches!(kind, EntityKind::Role | EntityKind::User)
}

/// The domain name of a kind (`settings`, `menu`, `access`, `kitchen`).
pub fn domain_name(kind: EntityKind) -> &'static str {
    match kind.domain() {
        Domain::Settings => "settings",
        Domain::Menu => "menu",
        Domain::Access => "access",
        Domain::Kitchen => "kitchen",
    }
}

/// A value an entity may not have, with the field that has it
/// (`variations[0].price`; empty for the body as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One reference from an entity to another: `field` of this entity names
/// `(kind, id)`, which must exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub field: String,
    pub kind: EntityKind,
    pub id: String,
}

/// Sub-entities that live inside a parent and are addressed by their own id
/// elsewhere: variations (in orders) and modifiers (in orders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberKind {
    Variation,
    Modifier,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::Variation => "variation",
            MemberKind::Modifier => "modifier",
        }
    }
}

/// An entity ready to be stored: its canonical body (POS-MODEL fields only,
/// no `version`), the references it makes and the members it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Canonical {
    pub body: Value,
    pub refs: Vec<Reference>,
    pub members: Vec<(MemberKind, String)>,
}

/// Fields a client may send back as they were answered by `GET` but which a
/// write never takes from the body: the version comes from `If-Match`, the
/// override from `POST …/override`.
const ANSWER_ONLY_FIELDS: [&str; 2] = ["version", "local_override"];

/// Decode, check and canonicalize the body of a write to `(kind, id)`.
///
/// For settings the body is the setting's value itself and `id` its
/// (canonical) key; for routing `id` is [`ROUTING_ID`].
pub fn canonicalize(kind: EntityKind, id: &str, body: Value) -> Result<Canonical, Invalid> {
    match kind {
        EntityKind::Setting => setting(id, body),
        EntityKind::Routing => {
            let r: Routing = decode(strip_answer_fields(body)?)?;
            Ok(finish(&r, routing_refs(&r), Vec::new()))
        }
        EntityKind::Tax => tax(entity_body(id, body)?),
        EntityKind::Category => category(entity_body(id, body)?),
        EntityKind::ModifierGroup => modifier_group(entity_body(id, body)?),
        EntityKind::Item => item(entity_body(id, body)?),
        EntityKind::Discount => discount(entity_body(id, body)?),
        EntityKind::Role => role(entity_body(id, body)?),
        EntityKind::User => user(entity_body(id, body)?),
        EntityKind::Station => station(entity_body(id, body)?),
        EntityKind::Device => device(entity_body(id, body)?),
    }
}

/// An entity body without its answer-only fields, whose id is the path's.
fn entity_body<T: DeserializeOwned>(path_id: &str, body: Value) -> Result<T, Invalid> {
    let body = strip_answer_fields(body)?;
    check_body_id(path_id, &body)?;
    decode(body)
}

/// The key under which a setting is stored: aliases resolve to the current
/// name; unknown keys (neither registered nor `custom.*`) are refused.
pub fn setting_key(key: &str) -> Result<String, Invalid> {
    match lookup_setting(key) {
        SettingLookup::Known(spec) => Ok(spec.key.to_owned()),
        SettingLookup::Custom => Ok(key.to_owned()),
        SettingLookup::Unknown => Err(Invalid::new(
            "key",
            format!("`{key}` is no registered setting and not a `custom.*` key"),
        )),
    }
}

fn setting(key: &str, value: Value) -> Result<Canonical, Invalid> {
    let value: SettingValue =
        decode_at("value", value).map_err(|e| Invalid::new("value", e.message))?;
    match lookup_setting(key) {
        SettingLookup::Known(spec) => check_setting(spec.ty, &value)
            .map_err(|m| Invalid::new("value", format!("`{key}` {m}")))?,
        SettingLookup::Custom => {
            if matches!(value, SettingValue::List(_)) {
                return Err(Invalid::new(
                    "value",
                    "custom settings take a scalar, not a list",
                ));
            }
        }
        SettingLookup::Unknown => {
            return Err(Invalid::new(
                "key",
                format!("`{key}` is no registered setting and not a `custom.*` key"),
            ));
        }
    }
    Ok(finish(&value, Vec::new(), Vec::new()))
}

fn strip_answer_fields(body: Value) -> Result<Value, Invalid> {
    match body {
        Value::Object(mut map) => {
            for f in ANSWER_ONLY_FIELDS {
                map.remove(f);
            }
            Ok(Value::Object(map))
        }
        other => Err(Invalid::new(
            "",
            format!("the body must be a JSON object, got {}", json_type(&other)),
        )),
    }
}

fn check_body_id(path_id: &str, body: &Value) -> Result<(), Invalid> {
    match body.get("id") {
        Some(Value::String(id)) if id == path_id => {}
        Some(Value::String(id)) => {
            return Err(Invalid::new(
                "id",
                format!("the body's id `{id}` differs from the id `{path_id}` in the path"),
            ));
        }
        Some(_) => return Err(Invalid::new("id", "id must be a string")),
        None => return Err(Invalid::new("id", "missing field `id`")),
    }
    if !is_slug(path_id) {
        return Err(Invalid::new(
            "id",
            format!("`{path_id}` is no slug (^[a-z0-9][a-z0-9-]{{0,62}}$)"),
        ));
    }
    Ok(())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decode a JSON value into `T`, naming the field that failed.
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, Invalid> {
    decode_at("", value)
}

fn decode_at<T: DeserializeOwned>(root: &str, value: Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = match (root, path.as_str()) {
            (r, ".") => r.to_owned(),
            ("", p) => p.to_owned(),
            (r, p) => format!("{r}.{p}"),
        };
        Invalid::new(field, e.into_inner().to_string())
    })
}

fn finish<T: Serialize>(
    typed: &T,
    refs: Vec<Reference>,
    members: Vec<(MemberKind, String)>,
) -> Canonical {
    Canonical {
        body: serde_json::to_value(typed).expect("schemas entities serialize to JSON"),
        refs,
        members,
    }
}

fn name(field: &str, name: &str) -> Result<(), Invalid> {
    if name.trim().is_empty() {
        Err(Invalid::new(field, "must not be empty"))
    } else if name.chars().count() > 500 {
        Err(Invalid::new(field, "must be at most 500 characters"))
    } else {
        Ok(())
    }
}

fn money(field: &str, m: Money) -> Result<(), Invalid> {
    if m.0 < MONEY_LIMIT {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("{} is not below {MONEY_LIMIT} minor units", m.0),
        ))
    }
}

/// A rate's value in 1/10,000 percent, checked to be within `0..=100` percent.
fn percent(field: &str, rate: &Rate) -> Result<u64, Invalid> {
    let tt = rate.ten_thousandths().ok_or_else(|| {
        Invalid::new(
            field,
            format!(
                "`{rate}` is no rate: a quoted decimal string such as \"8.875\" (^\\d{{1,3}}(\\.\\d{{1,4}})?$)"
            ),
        )
    })?;
    if tt > 1_000_000 {
        return Err(Invalid::new(field, format!("{rate} is above 100 percent")));
    }
    Ok(tt)
}

fn slug(field: &str, id: &str) -> Result<(), Invalid> {
    if is_slug(id) {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("`{id}` is no slug (^[a-z0-9][a-z0-9-]{{0,62}}$)"),
        ))
    }
}

/// References from a list field, refusing the same id twice.
fn list_refs(
    field: &str,
    kind: EntityKind,
    ids: &[schemas::Id],
    out: &mut Vec<Reference>,
) -> Result<(), Invalid> {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        if !seen.insert(id.as_str()) {
            return Err(Invalid::new(
                format!("{field}[{i}]"),
                format!("`{id}` is listed twice"),
            ));
        }
        out.push(Reference {
            field: field.to_owned(),
            kind,
            id: id.0.clone(),
        });
    }
    Ok(())
}

fn tax(t: Tax) -> Result<Canonical, Invalid> {
    name("name", &t.name)?;
    percent("rate", &t.rate)?;
    Ok(finish(&t, Vec::new(), Vec::new()))
}

fn category(c: Category) -> Result<Canonical, Invalid> {
    name("name", &c.name)?;
    Ok(finish(&c, Vec::new(), Vec::new()))
}

fn modifier_group(g: ModifierGroup) -> Result<Canonical, Invalid> {
    name("name", &g.name)?;
    if g.modifiers.is_empty() {
        return Err(Invalid::new(
            "modifiers",
            "a modifier group needs at least one modifier",
        ));
    }
    if g.min > g.max {
        return Err(Invalid::new(
            "min",
            format!("min {} is above max {}", g.min, g.max),
        ));
    }
    if g.min as usize > g.modifiers.len() {
        return Err(Invalid::new(
            "min",
            format!(
                "min {} is above the number of modifiers ({})",
                g.min,
                g.modifiers.len()
            ),
        ));
    }
    let defaults = g.modifiers.iter().filter(|m| m.default).count();
    if defaults > g.max as usize {
        return Err(Invalid::new(
            "modifiers",
            format!("{defaults} modifiers are default, above max {}", g.max),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut members = Vec::new();
    for (i, m) in g.modifiers.iter().enumerate() {
        slug(&format!("modifiers[{i}].id"), m.id.as_str())?;
        name(&format!("modifiers[{i}].name"), &m.name)?;
        money(&format!("modifiers[{i}].price"), m.price)?;
        if !seen.insert(m.id.as_str()) {
            return Err(Invalid::new(
                format!("modifiers[{i}].id"),
                format!("modifier `{}` is listed twice", m.id),
            ));
        }
        members.push((MemberKind::Modifier, m.id.0.clone()));
    }
    Ok(finish(&g, Vec::new(), members))
}

fn item(it: Item) -> Result<Canonical, Invalid> {
    name("name", &it.name)?;
    if it.variations.is_empty() || it.variations.len() > MAX_VARIATIONS {
        return Err(Invalid::new(
            "variations",
            format!(
                "an item has 1 to {MAX_VARIATIONS} variations, got {}",
                it.variations.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut members = Vec::new();
    for (i, v) in it.variations.iter().enumerate() {
        slug(&format!("variations[{i}].id"), v.id.as_str())?;
        name(&format!("variations[{i}].name"), &v.name)?;
        money(&format!("variations[{i}].price"), v.price)?;
        if !seen.insert(v.id.as_str()) {
            return Err(Invalid::new(
                format!("variations[{i}].id"),
                format!("variation `{}` is listed twice", v.id),
            ));
        }
        members.push((MemberKind::Variation, v.id.0.clone()));
    }
    let mut refs = vec![Reference {
        field: "category".to_owned(),
        kind: EntityKind::Category,
        id: it.category.0.clone(),
    }];
    list_refs("taxes", EntityKind::Tax, &it.taxes, &mut refs)?;
    list_refs(
        "modifier_groups",
        EntityKind::ModifierGroup,
        &it.modifier_groups,
        &mut refs,
    )?;
    list_refs("stations", EntityKind::Station, &it.stations, &mut refs)?;
    Ok(finish(&it, refs, members))
}

fn discount(d: Discount) -> Result<Canonical, Invalid> {
    name("name", &d.name)?;
    match d.kind {
        DiscountKind::Percent => {
            let rate = d
                .rate
                .as_ref()
                .ok_or_else(|| Invalid::new("rate", "a percent discount needs a rate"))?;
            if percent("rate", rate)? == 0 {
                return Err(Invalid::new("rate", "a percent discount is above 0"));
            }
            if d.amount.is_some() {
                return Err(Invalid::new(
                    "amount",
                    "a percent discount takes a rate, not an amount",
                ));
            }
        }
        DiscountKind::Amount => {
            let amount = d
                .amount
                .ok_or_else(|| Invalid::new("amount", "an amount discount needs an amount"))?;
            if amount.0 == 0 {
                return Err(Invalid::new("amount", "an amount discount is above 0"));
            }
            money("amount", amount)?;
            if d.rate.is_some() {
                return Err(Invalid::new(
                    "rate",
                    "an amount discount takes an amount, not a rate",
                ));
            }
        }
    }
    if let Some(p) = &d.requires
        && canonical_permission(p).is_none()
    {
        return Err(Invalid::new(
            "requires",
            format!("`{p}` is no known permission"),
        ));
    }
    Ok(finish(&d, Vec::new(), Vec::new()))
}

fn role(r: Role) -> Result<Canonical, Invalid> {
    name("name", &r.name)?;
    for (i, p) in r.permissions.iter().enumerate() {
        if canonical_permission(p).is_none() {
            return Err(Invalid::new(
                format!("permissions[{i}]"),
                format!("`{p}` is no known permission"),
            ));
        }
    }
    if let Some(i) = r.inherits.iter().position(|x| x == &r.id) {
        return Err(Invalid::new(
            format!("inherits[{i}]"),
            "a role cannot inherit from itself",
        ));
    }
    let mut refs = Vec::new();
    list_refs("inherits", EntityKind::Role, &r.inherits, &mut refs)?;
    Ok(finish(&r, refs, Vec::new()))
}

fn user(u: User) -> Result<Canonical, Invalid> {
    name("name", &u.name)?;
    if u.plaintext_pin {
        return Err(Invalid::new(
            "pin",
            "plaintext PINs are refused: send `pin_hash` (an argon2id PHC string)",
        ));
    }
    if !u.stores.is_empty() {
        return Err(Invalid::new(
            "stores",
            "users are applied as rendered for this store, without `stores`",
        ));
    }
    if let Some(h) = &u.pin_hash
        && !h.starts_with("$argon2id$")
    {
        return Err(Invalid::new(
            "pin_hash",
            "must be an argon2id PHC string (`$argon2id$v=19$…`)",
        ));
    }
    let refs = vec![Reference {
        field: "role".to_owned(),
        kind: EntityKind::Role,
        id: u.role.0.clone(),
    }];
    Ok(finish(&u, refs, Vec::new()))
}

fn station(s: Station) -> Result<Canonical, Invalid> {
    name("name", &s.name)?;
    Ok(finish(&s, Vec::new(), Vec::new()))
}

fn device(d: Device) -> Result<Canonical, Invalid> {
    if d.address.trim().is_empty() {
        return Err(Invalid::new("address", "must not be empty"));
    }
    let refs = vec![Reference {
        field: "station".to_owned(),
        kind: EntityKind::Station,
        id: d.station.0.clone(),
    }];
    Ok(finish(&d, refs, Vec::new()))
}

fn routing_refs(r: &Routing) -> Vec<Reference> {
    let mut refs = Vec::new();
    for s in &r.default {
        refs.push(Reference {
            field: "default".to_owned(),
            kind: EntityKind::Station,
            id: s.0.clone(),
        });
    }
    for (cat, stations) in &r.categories {
        let field = format!("categories.{cat}");
        refs.push(Reference {
            field: field.clone(),
            kind: EntityKind::Category,
            id: cat.0.clone(),
        });
        for s in stations {
            refs.push(Reference {
                field: field.clone(),
                kind: EntityKind::Station,
                id: s.0.clone(),
            });
        }
    }
    refs
}

/// The body a `GET` answers for a stored entity: its POS-MODEL fields plus
/// `version`, and `local_override` for users and roles. Settings answer
/// `{"key", "value", "version"}`.
pub fn view(kind: EntityKind, id: &str, body: Value, version: u64, local_override: bool) -> Value {
    if kind == EntityKind::Setting {
        let mut m = Map::new();
        m.insert("key".to_owned(), Value::String(id.to_owned()));
        m.insert("value".to_owned(), body);
        m.insert("version".to_owned(), Value::from(version));
        return Value::Object(m);
    }
    let mut m = match body {
        Value::Object(m) => m,
        // Stored bodies are always objects; keep anything else visible.
        other => {
            let mut m = Map::new();
            m.insert("value".to_owned(), other);
            m
        }
    };
    m.insert("version".to_owned(), Value::from(version));
    if has_local_override(kind) {
        m.insert("local_override".to_owned(), Value::Bool(local_override));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(r: Result<Canonical, Invalid>) -> String {
        match r {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.field,
        }
    }

    #[test]
    fn kind_names_round_trip() {
        for k in ALL_KINDS {
            assert_eq!(parse_kind(kind_name(k)), Some(k));
        }
        assert_eq!(parse_kind("items"), None);
    }

    #[test]
    fn item_rules_name_the_field() {
        let ok = json!({"id": "b", "name": "B", "category": "c",
            "variations": [{"id": "b1", "name": "1", "price": 100}]});
        let c = canonicalize(EntityKind::Item, "b", ok.clone()).expect("valid item");
        assert_eq!(c.refs[0].kind, EntityKind::Category);
        assert_eq!(c.members, vec![(MemberKind::Variation, "b1".to_owned())]);
        assert_eq!(
            field_of(canonicalize(EntityKind::Item, "x", ok.clone())),
            "id"
        );
        let mut neg = ok.clone();
        neg["variations"][0]["price"] = json!(-1);
        assert_eq!(
            field_of(canonicalize(EntityKind::Item, "b", neg)),
            "variations[0].price"
        );
        let mut big = ok.clone();
        big["variations"][0]["price"] = json!(1_000_000_000_000u64);
        assert_eq!(
            field_of(canonicalize(EntityKind::Item, "b", big)),
            "variations[0].price"
        );
        let mut answered = ok;
        answered["version"] = json!(7);
        assert!(canonicalize(EntityKind::Item, "b", answered).is_ok());
    }

    #[test]
    fn rates_and_modifier_bounds() {
        let tax = |rate: &str| {
            canonicalize(
                EntityKind::Tax,
                "t",
                json!({"id": "t", "name": "T", "rate": rate, "inclusion": "exclusive"}),
            )
        };
        assert!(tax("100").is_ok());
        assert!(tax("8.875").is_ok());
        assert_eq!(field_of(tax("100.0001")), "rate");
        assert_eq!(field_of(tax("abc")), "rate");
        let group = canonicalize(
            EntityKind::ModifierGroup,
            "g",
            json!({"id": "g", "name": "G", "min": 2, "max": 1,
                "modifiers": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]}),
        );
        assert_eq!(field_of(group), "min");
    }

    #[test]
    fn settings_follow_the_registry() {
        assert_eq!(
            setting_key("receipt.footer_text").as_deref(),
            Ok("receipt.footer")
        );
        assert!(setting_key("nope").is_err());
        assert!(canonicalize(EntityKind::Setting, "tax.rounding", json!("half_up")).is_ok());
        assert_eq!(
            field_of(canonicalize(
                EntityKind::Setting,
                "tax.rounding",
                json!("up")
            )),
            "value"
        );
        assert_eq!(
            field_of(canonicalize(EntityKind::Setting, "custom.x", json!(1.5))),
            "value"
        );
    }
}
