//! Configuration entities as the edge stores them.
//!
//! A request body becomes a [`Canonical`] entity here: decoded into the
//! `schemas` type of its kind (the POS-MODEL.md field names), judged by
//! [`schemas::rules`] — the same rules `fleet validate` applies, so what
//! validates is what the edge accepts — and serialized back, so that what
//! the edge stores and answers is byte-for-byte what `fleet render` produces
//! for the same entity. Only the shape of a body (its id matches the path,
//! users come as rendered, without `stores`) is judged here alone. The
//! references an entity makes to others are listed here too; whether they
//! resolve is checked by [`crate::store`], which sees the database. This
//! module does no IO.

use schemas::diff::{Domain, EntityKind};
use schemas::model::{
    Category, Device, Discount, Item, ModifierGroup, Role, Routing, SettingValue, Station, Tax,
    User,
};
use schemas::rules::{self, Violation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The id of the one routing entity (`GET/PUT /routing`), as `schemas::diff`
/// names it.
pub const ROUTING_ID: &str = "routing";

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

/// Users and roles carry `local_override` (defined with the wire types).
pub use wire::edge::has_local_override;

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

impl From<Violation> for Invalid {
    fn from(v: Violation) -> Self {
        Invalid::new(v.field.to_string(), v.message)
    }
}

/// The first violation of the shared rules, if any: a write answers one.
fn judge(violations: Vec<Violation>) -> Result<(), Invalid> {
    match violations.into_iter().next() {
        Some(v) => Err(v.into()),
        None => Ok(()),
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
    rules::setting_key(key).map_err(Invalid::from)
}

fn setting(key: &str, value: Value) -> Result<Canonical, Invalid> {
    let value: SettingValue =
        decode_at("value", value).map_err(|e| Invalid::new("value", e.message))?;
    judge(rules::setting(key, &value))?;
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
    // Whether the id is a slug is a rule of the entity, judged after decoding.
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

/// A reference from `field` to each of `ids` (the rules have made sure
/// each is listed once).
fn list_refs(field: &str, kind: EntityKind, ids: &[schemas::Id], out: &mut Vec<Reference>) {
    out.extend(ids.iter().map(|id| Reference {
        field: field.to_owned(),
        kind,
        id: id.0.clone(),
    }));
}

fn tax(t: Tax) -> Result<Canonical, Invalid> {
    judge(rules::tax(&t))?;
    Ok(finish(&t, Vec::new(), Vec::new()))
}

fn category(c: Category) -> Result<Canonical, Invalid> {
    judge(rules::category(&c))?;
    Ok(finish(&c, Vec::new(), Vec::new()))
}

fn modifier_group(g: ModifierGroup) -> Result<Canonical, Invalid> {
    judge(rules::modifier_group(&g))?;
    let members = g
        .modifiers
        .iter()
        .map(|m| (MemberKind::Modifier, m.id.0.clone()))
        .collect();
    Ok(finish(&g, Vec::new(), members))
}

fn item(it: Item) -> Result<Canonical, Invalid> {
    judge(rules::item(&it))?;
    let members = it
        .variations
        .iter()
        .map(|v| (MemberKind::Variation, v.id.0.clone()))
        .collect();
    let mut refs = vec![Reference {
        field: "category".to_owned(),
        kind: EntityKind::Category,
        id: it.category.0.clone(),
    }];
    list_refs("taxes", EntityKind::Tax, &it.taxes, &mut refs);
    list_refs(
        "modifier_groups",
        EntityKind::ModifierGroup,
        &it.modifier_groups,
        &mut refs,
    );
    list_refs("stations", EntityKind::Station, &it.stations, &mut refs);
    Ok(finish(&it, refs, members))
}

fn discount(d: Discount) -> Result<Canonical, Invalid> {
    judge(rules::discount(&d))?;
    Ok(finish(&d, Vec::new(), Vec::new()))
}

fn role(r: Role) -> Result<Canonical, Invalid> {
    judge(rules::role(&r))?;
    let mut refs = Vec::new();
    list_refs("inherits", EntityKind::Role, &r.inherits, &mut refs);
    Ok(finish(&r, refs, Vec::new()))
}

fn user(u: User) -> Result<Canonical, Invalid> {
    if !u.stores.is_empty() {
        return Err(Invalid::new(
            "stores",
            "users are applied as rendered for this store, without `stores`",
        ));
    }
    judge(rules::user(&u))?;
    let refs = vec![Reference {
        field: "role".to_owned(),
        kind: EntityKind::Role,
        id: u.role.0.clone(),
    }];
    Ok(finish(&u, refs, Vec::new()))
}

fn station(s: Station) -> Result<Canonical, Invalid> {
    judge(rules::station(&s))?;
    Ok(finish(&s, Vec::new(), Vec::new()))
}

fn device(d: Device) -> Result<Canonical, Invalid> {
    judge(rules::device(&d))?;
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

    /// The shared rules are the edge's only judgement of an entity: for
    /// generated entities of every kind with a body (sent as the reconciler
    /// sends them, rendered), a write is accepted exactly when
    /// `schemas::rules` finds nothing, and refused naming the field of the
    /// first violation. Generated from a fixed seed over small pools of good
    /// and bad values, so every rule is hit many times, alone and together.
    mod shared_rules_only {
        use super::*;
        use schemas::model::{
            DeviceType, DiscountKind, Inclusion, Modifier, StationKind, Variation,
        };
        use schemas::primitives::MONEY_LIMIT;
        use schemas::{Id, Money, Rate};

        /// xorshift64*: enough to spread a fixed seed over the pools.
        struct Rng(u64);

        impl Rng {
            fn below(&mut self, n: usize) -> usize {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
            }
            fn pick<T: Clone>(&mut self, pool: &[T]) -> T {
                pool[self.below(pool.len())].clone()
            }
            fn chance(&mut self, percent: usize) -> bool {
                self.below(100) < percent
            }
            fn id(&mut self, pool: &[&str]) -> Id {
                Id::new(self.pick(pool))
            }
            fn ids(&mut self, pool: &[&str], most: usize) -> Vec<Id> {
                (0..self.below(most + 1)).map(|_| self.id(pool)).collect()
            }
            fn name(&mut self) -> String {
                match self.below(24) {
                    0 => String::new(),
                    1 => " ".to_owned(),
                    2 => "x".repeat(501),
                    3 => "é".repeat(500),
                    _ => "Name".to_owned(),
                }
            }
            fn money(&mut self) -> Money {
                match self.below(12) {
                    0 => Money(MONEY_LIMIT),
                    1 => Money(u64::MAX),
                    _ => Money(self.pick(&[0, 1, 1099, MONEY_LIMIT - 1])),
                }
            }
            fn rate(&mut self) -> Rate {
                Rate::new_unchecked(self.pick(&[
                    "0", "8.875", "100", "7.25", "0.0001", "20", "100.0001", "abc", "5.", "1000",
                ]))
            }
        }

        const IDS: &[&str] = &["a", "b-1", "c", "d", "e-2", "f", "g", "h", "Bad", "", "-x"];

        /// Canonicalize `entity` as a body for `(kind, id)`; the edge must
        /// answer what the rules say.
        fn agrees<T: Serialize + std::fmt::Debug>(
            kind: EntityKind,
            id: &Id,
            entity: &T,
            violations: Vec<Violation>,
        ) {
            let body = serde_json::to_value(entity).expect("entities serialize");
            let got = canonicalize(kind, id.as_str(), body);
            match (violations.first(), got) {
                (None, Ok(_)) => {}
                (Some(v), Err(e)) => assert_eq!(
                    (e.field.as_str(), e.message.as_str()),
                    (v.field.to_string().as_str(), v.message.as_str()),
                    "{entity:?}"
                ),
                (v, got) => panic!("rules say {v:?}, the edge {got:?}: {entity:?}"),
            }
        }

        #[test]
        fn edge_accepts_exactly_what_the_rules_accept() {
            let mut rng = Rng(0x5eed_f1ee7);
            let mut refused = 0;
            const CASES: usize = 3000;
            for n in 0..CASES {
                let mut count = |v: &Vec<Violation>| refused += usize::from(!v.is_empty());
                match n % 9 {
                    0 => {
                        let variations = if rng.chance(2) {
                            (0..=rules::MAX_VARIATIONS)
                                .map(|i| Variation {
                                    id: Id::new(format!("v{i}")),
                                    name: "V".into(),
                                    sku: None,
                                    price: Money(1),
                                })
                                .collect()
                        } else {
                            (0..rng.below(4))
                                .map(|_| Variation {
                                    id: rng.id(&["v1", "v2", "V3", "v4"]),
                                    name: rng.name(),
                                    sku: rng.chance(30).then(|| "SKU-1".to_owned()),
                                    price: rng.money(),
                                })
                                .collect()
                        };
                        let it = Item {
                            id: rng.id(IDS),
                            name: rng.name(),
                            category: Id::new("cat"),
                            description: rng.chance(20).then(|| "Fresh".to_owned()),
                            taxes: rng.ids(&["t1", "t2"], 2),
                            modifier_groups: rng.ids(&["g1", "g2"], 2),
                            stations: rng.ids(&["s1", "s2"], 2),
                            variations,
                        };
                        let v = rules::item(&it);
                        count(&v);
                        agrees(EntityKind::Item, &it.id, &it, v);
                    }
                    1 => {
                        let g = ModifierGroup {
                            id: rng.id(IDS),
                            name: rng.name(),
                            min: rng.below(4) as u32,
                            max: rng.below(4) as u32,
                            modifiers: (0..rng.below(4))
                                .map(|_| Modifier {
                                    id: rng.id(&["m1", "m2", "M3", "m4"]),
                                    name: rng.name(),
                                    price: rng.money(),
                                    default: rng.chance(30),
                                })
                                .collect(),
                        };
                        let v = rules::modifier_group(&g);
                        count(&v);
                        agrees(EntityKind::ModifierGroup, &g.id, &g, v);
                    }
                    2 => {
                        let d = Discount {
                            id: rng.id(IDS),
                            name: rng.name(),
                            kind: rng.pick(&[DiscountKind::Percent, DiscountKind::Amount]),
                            rate: rng.chance(60).then(|| rng.rate()),
                            amount: rng.chance(60).then(|| rng.money()),
                            requires: rng.chance(50).then(|| {
                                rng.pick(&["discount.apply", "discount.manager", "nope"])
                                    .to_owned()
                            }),
                        };
                        let v = rules::discount(&d);
                        count(&v);
                        agrees(EntityKind::Discount, &d.id, &d, v);
                    }
                    3 => {
                        let t = Tax {
                            id: rng.id(IDS),
                            name: rng.name(),
                            rate: rng.rate(),
                            inclusion: rng.pick(&[Inclusion::Exclusive, Inclusion::Inclusive]),
                        };
                        let v = rules::tax(&t);
                        count(&v);
                        agrees(EntityKind::Tax, &t.id, &t, v);
                    }
                    4 => {
                        let r = Role {
                            id: rng.id(&["a", "b-1", "Bad"]),
                            name: rng.name(),
                            level: rng.below(100) as u32,
                            inherits: rng.ids(&["a", "b-1", "c"], 3),
                            permissions: (0..rng.below(3))
                                .map(|_| rng.pick(&["order.void", "reports.read", "order.fly"]))
                                .map(str::to_owned)
                                .collect(),
                        };
                        let v = rules::role(&r);
                        count(&v);
                        agrees(EntityKind::Role, &r.id, &r, v);
                    }
                    5 => {
                        let u = User {
                            id: rng.id(IDS),
                            name: rng.name(),
                            role: Id::new("cashier"),
                            stores: Vec::new(),
                            pin_hash: rng.chance(80).then(|| {
                                if rng.chance(10) {
                                    // The repo's encrypted form: the edge refuses it.
                                    return schemas::model::Secret::Sealed(schemas::model::Sealed {
                                        age: "YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==".into(),
                                        to: vec!["*".into(), "@escrow".into()],
                                    });
                                }
                                rng.pick(&[
                                    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                                    "$argon2id$",
                                    "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                                    "plain",
                                ])
                                .into()
                            }),
                            plaintext_pin: false,
                        };
                        let v = rules::user(&u);
                        count(&v);
                        agrees(EntityKind::User, &u.id, &u, v);
                    }
                    6 => {
                        let c = Category {
                            id: rng.id(IDS),
                            name: rng.name(),
                            sort: rng.below(40) as i32 - 20,
                        };
                        let v = rules::category(&c);
                        count(&v);
                        agrees(EntityKind::Category, &c.id, &c, v);
                    }
                    7 => {
                        let s = Station {
                            id: rng.id(IDS),
                            name: rng.name(),
                            kind: rng.pick(&[StationKind::Printer, StationKind::Kds]),
                        };
                        let v = rules::station(&s);
                        count(&v);
                        agrees(EntityKind::Station, &s.id, &s, v);
                    }
                    _ => {
                        let d = Device {
                            id: rng.id(IDS),
                            station: Id::new("grill"),
                            kind: rng.pick(&[DeviceType::EscposNet, DeviceType::Kds]),
                            address: rng.pick(&["", " ", "10.0.0.1:9100"]).to_owned(),
                        };
                        let v = rules::device(&d);
                        count(&v);
                        agrees(EntityKind::Device, &d.id, &d, v);
                    }
                }
            }
            // Both outcomes are common, or the pools test nothing.
            assert!(
                (CASES / 5..CASES * 4 / 5).contains(&refused),
                "{refused} of {CASES} refused"
            );
        }
    }
}
