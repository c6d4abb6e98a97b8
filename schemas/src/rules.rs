//! The rules one entity must satisfy on its own, defined once for both ends
//! of the chain: `fleet validate` ([`crate::validate`]) reports a broken one
//! with its rule id, file and line, and the edge refuses a write that breaks
//! one with 422 naming the field. So what validates is what the store
//! accepts, and the two cannot drift apart.
//!
//! Each function takes one typed entity, as decoded from YAML or from a JSON
//! body, and returns every [`Violation`] in field order: a stable rule id
//! from [`crate::diag::RULES`], the path of the offending field relative to
//! the entity (`variations[3].price`) and a message that names the entity.
//! A field that is missing is named by its own path, though it has no node.
//!
//! Not here: whatever needs more than one entity (references, ids unique
//! across a catalog, inheritance cycles through other roles, a variation
//! owned by one item) or depends on where in a repo an entity is written
//! (`stores` of tenant users, settings a store may override, a user's PIN
//! being required in a repo). [`crate::validate`] checks those on a repo and
//! the edge on its database. This module does no IO.

use std::collections::BTreeSet;
use std::fmt;

use password_hash::PasswordHash;

use crate::diag::Rule;
use crate::model::{
    Category, Device, Discount, DiscountKind, Item, ModifierGroup, Role, SettingValue, Station,
    StoreInfo, Tax, TenantInfo, User,
};
use crate::primitives::{Id, MONEY_LIMIT, Money, Rate};
use crate::registry::{SettingLookup, canonical_permission, check_setting, lookup_setting};
use crate::yaml::YamlPath;

/// Most variations an item may have (POS-MODEL.md rule 6).
pub const MAX_VARIATIONS: usize = 250;

/// Most modifiers one order line may carry, and so the largest `max` of a
/// modifier group (POS-MODEL.md rule 5): pricing and the kitchen ticket
/// stay bounded, whatever a group allows.
pub const MAX_MODIFIERS_PER_LINE: u32 = 50;

/// Longest name of an entity, in characters.
pub const MAX_NAME_CHARS: usize = 500;

/// One rule one entity breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// A rule id of [`crate::diag::RULES`].
    pub rule: Rule,
    /// Relative to the entity, e.g. `variations[3].price`; empty for the
    /// entity as a whole.
    pub field: YamlPath,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} [{}]", self.field, self.message, self.rule)
    }
}

/// The violations of one entity, gathered in field order.
#[derive(Default)]
struct Found(Vec<Violation>);

impl Found {
    fn push(&mut self, rule: Rule, field: YamlPath, message: impl Into<String>) {
        self.0.push(Violation {
            rule,
            field,
            message: message.into(),
        });
    }

    fn slug(&mut self, field: YamlPath, id: &Id, what: &str) {
        if !id.is_slug() {
            self.push(
                "id/not-slug",
                field,
                format!("{what} `{id}` is not a slug: use lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters"),
            );
        }
    }

    fn name(&mut self, field: YamlPath, name: &str, what: &str, id: &Id) {
        let chars = name.chars().count();
        if name.trim().is_empty() {
            self.push(
                "entity/name",
                field,
                format!("{what} `{id}` has a blank name"),
            );
        } else if chars > MAX_NAME_CHARS {
            self.push(
                "entity/name",
                field,
                format!("{what} `{id}` has a name of {chars} characters; at most {MAX_NAME_CHARS}"),
            );
        }
    }

    fn money(&mut self, field: YamlPath, m: Money) {
        if let Some(v) = price(m) {
            self.push(v.rule, field, v.message);
        }
    }

    /// A rate's shape, and that it lies in `0..=100` (above 0 unless `zero_ok`).
    fn rate(&mut self, field: YamlPath, rate: &Rate, zero_ok: bool, what: &str) {
        match rate.ten_thousandths() {
            None => self.push(
                "rate/format",
                field,
                format!("{what} \"{rate}\" is not a decimal like \"8.875\" (up to 3 digits, up to 4 decimals)"),
            ),
            Some(v) if v > 1_000_000 => self.push(
                "rate/range",
                field,
                format!("{what} \"{rate}\" is above 100 percent"),
            ),
            Some(0) if !zero_ok => {
                self.push("rate/range", field, format!("{what} \"{rate}\" must be above 0"))
            }
            Some(_) => {}
        }
    }

    /// A list of references names each id once.
    fn listed_once(&mut self, field: &str, ids: &[Id], owner: &str) {
        let mut seen = BTreeSet::new();
        for (i, id) in ids.iter().enumerate() {
            if !seen.insert(id.as_str()) {
                self.push(
                    "id/duplicate",
                    YamlPath::root().key(field).index(i),
                    format!("{owner} lists `{id}` twice in {field}"),
                );
            }
        }
    }

    /// `UTC` or `Area/Location[/…]`: the shape of an IANA name, not the
    /// database (which would tie validation to a tz data version; stores
    /// with windows are checked against it, `windows/timezone`).
    fn timezone(&mut self, field: YamlPath, tz: &str) -> bool {
        let ok = looks_like_timezone(tz);
        if !ok {
            self.push(
                "tenant/timezone",
                field,
                format!("time zone `{tz}` is not an IANA name such as America/New_York or UTC"),
            );
        }
        ok
    }

    /// A value rendering turns into the setting `key` must pass that
    /// setting's registered type, or the store would refuse the setting.
    fn derived_setting(&mut self, field: YamlPath, key: &str, value: &str) {
        if let SettingLookup::Known(spec) = lookup_setting(key)
            && let Err(why) = check_setting(spec.ty, &SettingValue::Str(value.to_owned()))
        {
            self.push(
                "settings/type",
                field,
                format!("this value becomes the setting `{key}`, which {why}"),
            );
        }
    }
}

fn at(field: &str) -> YamlPath {
    YamlPath::root().key(field)
}

fn member(list: &str, i: usize, field: &str) -> YamlPath {
    YamlPath::root().key(list).index(i).key(field)
}

/// An amount of money: below [`MONEY_LIMIT`] (never negative: decoding
/// refuses that). For amounts that stand alone, such as a store's price
/// override; the violation's field is empty.
pub fn price(m: Money) -> Option<Violation> {
    (m.0 >= MONEY_LIMIT).then(|| Violation {
        rule: "money/too-large",
        field: YamlPath::root(),
        message: format!("{} is not below {MONEY_LIMIT} minor units", m.0),
    })
}

/// A tax rate that stands alone, such as a store's `tax_rates` override:
/// well-formed and at most 100. The violation's field is empty.
pub fn tax_rate(rate: &Rate) -> Option<Violation> {
    let mut found = Found::default();
    found.rate(YamlPath::root(), rate, true, "tax rate");
    found.0.pop()
}

/// The `tenant` section of a tenant base.
pub fn tenant_info(t: &TenantInfo) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &t.id, "tenant id");
    if t.currency.len() == 3 && t.currency.bytes().all(|c| c.is_ascii_uppercase()) {
        found.derived_setting(at("currency"), "store.currency", &t.currency);
    } else {
        found.push(
            "tenant/currency",
            at("currency"),
            format!(
                "currency `{}` is not an ISO 4217 code such as USD or EUR",
                t.currency
            ),
        );
    }
    if found.timezone(at("timezone"), &t.timezone) {
        found.derived_setting(at("timezone"), "store.timezone", &t.timezone);
    }
    found.0
}

/// The `store` section of a store file.
pub fn store_info(s: &StoreInfo) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &s.id, "store id");
    found.derived_setting(at("name"), "store.name", &s.name);
    if let Some(tz) = &s.timezone
        && found.timezone(at("timezone"), tz)
    {
        found.derived_setting(at("timezone"), "store.timezone", tz);
    }
    for (key, value) in &s.labels {
        let key_ok = !key.is_empty()
            && key.len() <= 63
            && key.as_bytes()[0].is_ascii_alphanumeric()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._/-".contains(&b));
        let value_ok = !value.is_empty()
            && value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !key_ok {
            found.push(
                "store/labels",
                at("labels").key(key.clone()),
                format!("label `{key}` is not a label key: lowercase letters, digits and . _ / -, at most 63"),
            );
        } else if !value_ok {
            found.push(
                "store/labels",
                at("labels").key(key.clone()),
                format!("label {key}: {value:?} is not a label value: letters, digits and . _ -, 1 to 63 of them (quote \"true\")"),
            );
        }
    }
    if let Some(r) = &s.recipient
        && !is_age_recipient(r)
    {
        found.push(
            "secret/recipient",
            at("recipient"),
            format!(
                "recipient `{r}` is not an age X25519 recipient (age1 and 58 bech32 characters); `fleet secret recipients` writes it from the status service"
            ),
        );
    }
    found.0
}

/// `UTC` or `Area/Location[/…]`: the shape of an IANA time zone name.
pub fn looks_like_timezone(tz: &str) -> bool {
    tz == "UTC"
        || (tz.contains('/')
            && tz.split('/').all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"_+-".contains(&c))
            }))
}

/// The shape of an age X25519 recipient: `age1` and 58 characters of the
/// bech32 alphabet (the checksum is the `age` crate's to verify where the
/// key is used).
pub fn is_age_recipient(s: &str) -> bool {
    const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    s.len() == 62 && s.starts_with("age1") && s.bytes().skip(4).all(|b| BECH32.contains(&b))
}

pub fn tax(t: &Tax) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &t.id, "tax");
    found.name(at("name"), &t.name, "tax", &t.id);
    found.rate(at("rate"), &t.rate, true, "tax rate");
    found.0
}

pub fn category(c: &Category) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &c.id, "category");
    found.name(at("name"), &c.name, "category", &c.id);
    found.0
}

/// POS-MODEL.md rule 5: at least one modifier, `0 ≤ min ≤ max`, `max` at
/// most [`MAX_MODIFIERS_PER_LINE`], `min` at most the number of modifiers,
/// at most `max` defaults; and each modifier listed once.
pub fn modifier_group(g: &ModifierGroup) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &g.id, "modifier group");
    found.name(at("name"), &g.name, "modifier group", &g.id);
    if g.modifiers.is_empty() {
        found.push(
            "modifier/empty-group",
            at("modifiers"),
            format!("modifier group `{}` has no modifiers", g.id),
        );
    }
    if g.min > g.max {
        found.push(
            "modifier/min-max",
            at("min"),
            format!(
                "modifier group `{}` has min {} above max {}",
                g.id, g.min, g.max
            ),
        );
    }
    if g.max > MAX_MODIFIERS_PER_LINE {
        found.push(
            "modifier/max-bound",
            at("max"),
            format!(
                "modifier group `{}` allows {} modifiers per line; at most {MAX_MODIFIERS_PER_LINE}",
                g.id, g.max
            ),
        );
    }
    if !g.modifiers.is_empty() && g.min as usize > g.modifiers.len() {
        found.push(
            "modifier/min-exceeds-count",
            at("min"),
            format!(
                "modifier group `{}` requires {} choices but has only {} modifiers",
                g.id,
                g.min,
                g.modifiers.len()
            ),
        );
    }
    let defaults = g.modifiers.iter().filter(|m| m.default).count();
    if defaults > g.max as usize {
        found.push(
            "modifier/too-many-defaults",
            at("modifiers"),
            format!(
                "modifier group `{}` has {defaults} defaults but allows at most {}",
                g.id, g.max
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (j, m) in g.modifiers.iter().enumerate() {
        found.slug(member("modifiers", j, "id"), &m.id, "modifier");
        if !seen.insert(m.id.as_str()) {
            found.push(
                "id/duplicate",
                member("modifiers", j, "id"),
                format!("modifier group `{}` lists modifier `{}` twice", g.id, m.id),
            );
        }
        found.name(member("modifiers", j, "name"), &m.name, "modifier", &m.id);
        found.money(member("modifiers", j, "price"), m.price);
    }
    found.0
}

/// POS-MODEL.md rule 6 (1 to [`MAX_VARIATIONS`] variations), prices, and
/// each variation, tax, modifier group and station listed once.
pub fn item(it: &Item) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &it.id, "item");
    found.name(at("name"), &it.name, "item", &it.id);
    if it.variations.is_empty() || it.variations.len() > MAX_VARIATIONS {
        found.push(
            "item/variations",
            at("variations"),
            format!(
                "item `{}` has {} variations; an item has 1 to {MAX_VARIATIONS}",
                it.id,
                it.variations.len()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (j, v) in it.variations.iter().enumerate() {
        found.slug(member("variations", j, "id"), &v.id, "variation");
        if !seen.insert(v.id.as_str()) {
            found.push(
                "id/duplicate",
                member("variations", j, "id"),
                format!("item `{}` lists variation `{}` twice", it.id, v.id),
            );
        }
        found.name(member("variations", j, "name"), &v.name, "variation", &v.id);
        found.money(member("variations", j, "price"), v.price);
    }
    let owner = format!("item `{}`", it.id);
    found.listed_once("taxes", &it.taxes, &owner);
    found.listed_once("modifier_groups", &it.modifier_groups, &owner);
    found.listed_once("stations", &it.stations, &owner);
    found.0
}

/// A percent discount has a rate above 0 and at most 100, an amount
/// discount an amount above 0, never both; `requires` is a known permission.
pub fn discount(d: &Discount) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &d.id, "discount");
    found.name(at("name"), &d.name, "discount", &d.id);
    match d.kind {
        DiscountKind::Percent => {
            match &d.rate {
                Some(rate) => found.rate(at("rate"), rate, false, "discount rate"),
                None => found.push(
                    "discount/kind-fields",
                    at("rate"),
                    format!("percent discount `{}` needs a `rate`", d.id),
                ),
            }
            if d.amount.is_some() {
                found.push(
                    "discount/kind-fields",
                    at("amount"),
                    format!(
                        "percent discount `{}` takes a `rate`, not an `amount`",
                        d.id
                    ),
                );
            }
        }
        DiscountKind::Amount => {
            match d.amount {
                Some(Money(0)) => found.push(
                    "money/zero-discount",
                    at("amount"),
                    format!("amount discount `{}` takes 0 off", d.id),
                ),
                Some(a) => found.money(at("amount"), a),
                None => found.push(
                    "discount/kind-fields",
                    at("amount"),
                    format!("amount discount `{}` needs an `amount`", d.id),
                ),
            }
            if d.rate.is_some() {
                found.push(
                    "discount/kind-fields",
                    at("rate"),
                    format!("amount discount `{}` takes an `amount`, not a `rate`", d.id),
                );
            }
        }
    }
    if let Some(req) = &d.requires
        && canonical_permission(req).is_none()
    {
        found.push(
            "ref/unknown-permission",
            at("requires"),
            format!("discount `{}` requires unknown permission `{req}`", d.id),
        );
    }
    found.0
}

/// Permissions from the registry (old names too); a role does not inherit
/// from itself, nor from the same role twice.
pub fn role(r: &Role) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &r.id, "role");
    found.name(at("name"), &r.name, "role", &r.id);
    for (j, perm) in r.permissions.iter().enumerate() {
        if canonical_permission(perm).is_none() {
            found.push(
                "ref/unknown-permission",
                YamlPath::root().key("permissions").index(j),
                format!("role `{}` grants unknown permission `{perm}`", r.id),
            );
        }
    }
    for (j, parent) in r.inherits.iter().enumerate() {
        if parent == &r.id {
            found.push(
                "ref/role-cycle",
                YamlPath::root().key("inherits").index(j),
                format!("role `{}` inherits from itself", r.id),
            );
        }
    }
    found.listed_once("inherits", &r.inherits, &format!("role `{}`", r.id));
    found.0
}

/// No plaintext `pin`; a `pin_hash`, when there is one, is an argon2id PHC
/// string with a hash.
pub fn user(u: &User) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &u.id, "user");
    found.name(at("name"), &u.name, "user", &u.id);
    if u.plaintext_pin {
        found.push(
            "user/plaintext-pin",
            at("pin"),
            format!("user `{}` has a plaintext `pin`; commit only `pin_hash` (make one with `fleet hash-pin`) and treat this PIN as leaked", u.id),
        );
    }
    match &u.pin_hash {
        Some(crate::model::Secret::Plain(h)) => pin_hash_shape(&mut found, u, h),
        Some(crate::model::Secret::Sealed(_)) => found.push(
            ENCRYPTED_AT_EDGE,
            at("pin_hash"),
            format!("user `{}` pin_hash is still encrypted: the edge takes the argon2id string, which the reconciler decrypts from the release", u.id),
        ),
        None => {}
    }
    found.0
}

/// The rule a value still encrypted breaks where values arrive decrypted
/// (the edge's API). The repo's validation leaves it out: there encrypted
/// is what a secret should be.
pub const ENCRYPTED_AT_EDGE: Rule = "secret/encrypted";

fn pin_hash_shape(found: &mut Found, u: &User, h: &str) {
    {
        let ok = PasswordHash::new(h)
            .is_ok_and(|ph| ph.algorithm.as_str() == "argon2id" && ph.hash.is_some());
        if !ok {
            found.push(
                "user/pin-hash",
                at("pin_hash"),
                format!("user `{}` pin_hash is not an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)", u.id),
            );
        }
    }
}

pub fn station(s: &Station) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &s.id, "station");
    found.name(at("name"), &s.name, "station", &s.id);
    found.0
}

pub fn device(d: &Device) -> Vec<Violation> {
    let mut found = Found::default();
    found.slug(at("id"), &d.id, "device");
    if d.address.trim().is_empty() {
        found.push(
            "device/address",
            at("address"),
            format!("device `{}` has a blank address", d.id),
        );
    }
    found.0
}

/// The name a setting is stored under: old names resolve to the current
/// one, `custom.*` keys stay as written. An unknown key violates
/// `settings/unknown-key` at the field `key`.
pub fn setting_key(key: &str) -> Result<String, Violation> {
    match lookup_setting(key) {
        SettingLookup::Known(spec) => Ok(spec.key.to_owned()),
        SettingLookup::Custom => Ok(key.to_owned()),
        SettingLookup::Unknown => Err(Violation {
            rule: "settings/unknown-key",
            field: at("key"),
            message: format!("unknown setting `{key}`: use a registered key or a `custom.` prefix"),
        }),
    }
}

/// One setting: a key of the registry (or `custom.*`) holding a value of
/// the registered type (`custom.*`: any scalar). Fields are `key` and
/// `value`. Where the setting is written (derived keys, store overrides)
/// is the caller's to judge.
pub fn setting(key: &str, value: &SettingValue) -> Vec<Violation> {
    let mut found = Found::default();
    match lookup_setting(key) {
        SettingLookup::Unknown => {
            if let Err(v) = setting_key(key) {
                found.0.push(v);
            }
        }
        SettingLookup::Custom => {
            if matches!(value, SettingValue::Sealed(_)) {
                found.push(
                    "settings/type",
                    at("value"),
                    format!("`{key}` {}", crate::registry::SettingTypeError::NotSecret),
                );
            } else if matches!(value, SettingValue::List(_)) {
                found.push(
                    "settings/type",
                    at("value"),
                    format!("`{key}` must be a scalar, not a list"),
                );
            }
        }
        SettingLookup::Known(spec) if spec.secret && matches!(value, SettingValue::Sealed(_)) => {
            found.push(
                ENCRYPTED_AT_EDGE,
                at("value"),
                format!("`{key}` is still encrypted: the edge takes the value, which the reconciler decrypts from the release"),
            );
        }
        SettingLookup::Known(spec) => {
            if let Err(why) = check_setting(spec.ty, value) {
                found.push("settings/type", at("value"), format!("`{key}` {why}"));
            }
        }
    }
    found.0
}

#[cfg(test)]
mod tests {
    //! One table per entity: each row breaks one rule and names the rule id
    //! and field it must produce; the unbroken entity has no violation.

    use super::*;
    use crate::model::{DeviceType, Inclusion, Modifier, StationKind, Variation};

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    /// `(rule, field)` of each violation.
    fn found(v: Vec<Violation>) -> Vec<(Rule, String)> {
        v.into_iter()
            .map(|v| (v.rule, v.field.to_string()))
            .collect()
    }

    /// A change that breaks one rule, the rule id and the field it names.
    type Row<T> = (fn(&mut T), Rule, &'static str);

    /// Each row's change applied to `good` gives exactly that one violation.
    fn table<T: Clone + fmt::Debug>(good: &T, check: fn(&T) -> Vec<Violation>, rows: &[Row<T>]) {
        assert_eq!(found(check(good)), vec![], "{good:?}");
        for (i, (change, rule, field)) in rows.iter().enumerate() {
            let mut e = good.clone();
            change(&mut e);
            assert_eq!(
                found(check(&e)),
                vec![(*rule, (*field).to_owned())],
                "row {i}: {e:?}"
            );
        }
    }

    fn modifier(id: &str) -> Modifier {
        Modifier {
            id: Id::new(id),
            name: "M".into(),
            price: Money(0),
            default: false,
        }
    }

    fn variation(id: &str) -> Variation {
        Variation {
            id: Id::new(id),
            name: "V".into(),
            sku: None,
            price: Money(100),
        }
    }

    #[test]
    fn tax_rules() {
        let good = Tax {
            id: Id::new("vat"),
            name: "VAT".into(),
            rate: Rate::new_unchecked("100"),
            inclusion: Inclusion::Inclusive,
        };
        table(
            &good,
            tax,
            &[
                (|t| t.id = Id::new("Vat"), "id/not-slug", "id"),
                (|t| t.name = " ".into(), "entity/name", "name"),
                (|t| t.name = "x".repeat(501), "entity/name", "name"),
                (
                    |t| t.rate = Rate::new_unchecked("100.0001"),
                    "rate/range",
                    "rate",
                ),
                (
                    |t| t.rate = Rate::new_unchecked("8.87501"),
                    "rate/format",
                    "rate",
                ),
                (
                    |t| t.rate = Rate::new_unchecked("20%"),
                    "rate/format",
                    "rate",
                ),
            ],
        );
        let mut zero = good.clone();
        zero.rate = Rate::new_unchecked("0");
        zero.name = "x".repeat(500);
        assert_eq!(
            tax(&zero),
            vec![],
            "a zero tax and a 500-character name are fine"
        );
    }

    #[test]
    fn category_and_station_rules() {
        let good = Category {
            id: Id::new("food"),
            name: "Food".into(),
            sort: -3,
        };
        table(
            &good,
            category,
            &[
                (|c| c.id = Id::new("-food"), "id/not-slug", "id"),
                (|c| c.name = String::new(), "entity/name", "name"),
            ],
        );
        let good = Station {
            id: Id::new("grill"),
            name: "Grill".into(),
            kind: StationKind::Printer,
        };
        table(
            &good,
            station,
            &[
                (|s| s.id = Id::new("gr ill"), "id/not-slug", "id"),
                (|s| s.name = "\t".into(), "entity/name", "name"),
            ],
        );
    }

    #[test]
    fn modifier_group_rules() {
        let good = ModifierGroup {
            id: Id::new("side"),
            name: "Side".into(),
            min: 1,
            max: 1,
            modifiers: vec![modifier("fries"), modifier("salad")],
        };
        table(
            &good,
            modifier_group,
            &[
                (|g| g.id = Id::new("Side"), "id/not-slug", "id"),
                (|g| g.name = String::new(), "entity/name", "name"),
                (
                    |g| {
                        g.min = 0;
                        g.modifiers.clear()
                    },
                    "modifier/empty-group",
                    "modifiers",
                ),
                (|g| g.min = 2, "modifier/min-max", "min"),
                (
                    |g| g.max = MAX_MODIFIERS_PER_LINE + 1,
                    "modifier/max-bound",
                    "max",
                ),
                (
                    |g| {
                        g.min = 3;
                        g.max = 3
                    },
                    "modifier/min-exceeds-count",
                    "min",
                ),
                (
                    |g| {
                        g.modifiers[0].default = true;
                        g.modifiers[1].default = true
                    },
                    "modifier/too-many-defaults",
                    "modifiers",
                ),
                (
                    |g| g.modifiers[1].id = Id::new("Salad"),
                    "id/not-slug",
                    "modifiers[1].id",
                ),
                (
                    |g| g.modifiers[1].id = Id::new("fries"),
                    "id/duplicate",
                    "modifiers[1].id",
                ),
                (
                    |g| g.modifiers[0].name = " ".into(),
                    "entity/name",
                    "modifiers[0].name",
                ),
                (
                    |g| g.modifiers[1].price = Money(MONEY_LIMIT),
                    "money/too-large",
                    "modifiers[1].price",
                ),
            ],
        );
        // An empty group with a minimum is one problem, not two.
        let mut empty = good.clone();
        empty.modifiers.clear();
        assert_eq!(
            found(modifier_group(&empty)),
            vec![("modifier/empty-group", "modifiers".to_owned())]
        );
    }

    #[test]
    fn item_rules() {
        let good = Item {
            id: Id::new("burger"),
            name: "Burger".into(),
            category: Id::new("food"),
            description: None,
            taxes: vec![Id::new("vat"), Id::new("city")],
            modifier_groups: vec![Id::new("side")],
            stations: vec![Id::new("grill")],
            variations: vec![variation("burger-s"), variation("burger-l")],
        };
        table(
            &good,
            item,
            &[
                (|i| i.id = Id::new("bürger"), "id/not-slug", "id"),
                (|i| i.name = String::new(), "entity/name", "name"),
                (|i| i.variations.clear(), "item/variations", "variations"),
                (
                    |i| {
                        i.variations = (0..=MAX_VARIATIONS)
                            .map(|n| variation(&format!("v{n}")))
                            .collect()
                    },
                    "item/variations",
                    "variations",
                ),
                (
                    |i| i.variations[1].id = Id::new("burger-s"),
                    "id/duplicate",
                    "variations[1].id",
                ),
                (
                    |i| i.variations[0].id = Id::new(""),
                    "id/not-slug",
                    "variations[0].id",
                ),
                (
                    |i| i.variations[1].name = " ".into(),
                    "entity/name",
                    "variations[1].name",
                ),
                (
                    |i| i.variations[1].price = Money(MONEY_LIMIT),
                    "money/too-large",
                    "variations[1].price",
                ),
                (|i| i.taxes.push(Id::new("vat")), "id/duplicate", "taxes[2]"),
                (
                    |i| i.modifier_groups.push(Id::new("side")),
                    "id/duplicate",
                    "modifier_groups[1]",
                ),
                (
                    |i| i.stations.push(Id::new("grill")),
                    "id/duplicate",
                    "stations[1]",
                ),
            ],
        );
        let mut most = good.clone();
        most.variations = (0..MAX_VARIATIONS)
            .map(|n| variation(&format!("v{n}")))
            .collect();
        most.variations[0].price = Money(MONEY_LIMIT - 1);
        assert_eq!(item(&most), vec![]);
    }

    #[test]
    fn discount_rules() {
        let percent = Discount {
            id: Id::new("staff"),
            name: "Staff".into(),
            kind: DiscountKind::Percent,
            rate: Some(Rate::new_unchecked("50")),
            amount: None,
            requires: Some("discount.manager".into()),
        };
        table(
            &percent,
            discount,
            &[
                (|d| d.id = Id::new("Staff"), "id/not-slug", "id"),
                (|d| d.name = String::new(), "entity/name", "name"),
                (|d| d.rate = None, "discount/kind-fields", "rate"),
                (
                    |d| d.rate = Some(Rate::new_unchecked("0")),
                    "rate/range",
                    "rate",
                ),
                (
                    |d| d.rate = Some(Rate::new_unchecked("100.5")),
                    "rate/range",
                    "rate",
                ),
                (
                    |d| d.rate = Some(Rate::new_unchecked("5 %")),
                    "rate/format",
                    "rate",
                ),
                (
                    |d| d.amount = Some(Money(5)),
                    "discount/kind-fields",
                    "amount",
                ),
                (
                    |d| d.requires = Some("discount.secret".into()),
                    "ref/unknown-permission",
                    "requires",
                ),
            ],
        );
        let amount = Discount {
            id: Id::new("two-off"),
            name: "$2 Off".into(),
            kind: DiscountKind::Amount,
            rate: None,
            amount: Some(Money(200)),
            requires: None,
        };
        table(
            &amount,
            discount,
            &[
                (|d| d.amount = None, "discount/kind-fields", "amount"),
                (
                    |d| d.amount = Some(Money(0)),
                    "money/zero-discount",
                    "amount",
                ),
                (
                    |d| d.amount = Some(Money(MONEY_LIMIT)),
                    "money/too-large",
                    "amount",
                ),
                (
                    |d| d.rate = Some(Rate::new_unchecked("5")),
                    "discount/kind-fields",
                    "rate",
                ),
            ],
        );
    }

    #[test]
    fn role_rules() {
        let good = Role {
            id: Id::new("manager"),
            name: "Manager".into(),
            level: 50,
            inherits: vec![Id::new("cashier")],
            // An old name still works.
            permissions: vec!["order.void".into(), "reports.read".into()],
        };
        table(
            &good,
            role,
            &[
                (|r| r.id = Id::new("Manager"), "id/not-slug", "id"),
                (|r| r.name = String::new(), "entity/name", "name"),
                (
                    |r| r.permissions.push("order.fly".into()),
                    "ref/unknown-permission",
                    "permissions[2]",
                ),
                (
                    |r| r.inherits.push(Id::new("manager")),
                    "ref/role-cycle",
                    "inherits[1]",
                ),
                (
                    |r| r.inherits.push(Id::new("cashier")),
                    "id/duplicate",
                    "inherits[1]",
                ),
            ],
        );
    }

    #[test]
    fn user_rules() {
        let good = User {
            id: Id::new("sam"),
            name: "Sam".into(),
            role: Id::new("cashier"),
            stores: vec![],
            pin_hash: Some(HASH.into()),
            plaintext_pin: false,
        };
        table(
            &good,
            user,
            &[
                (|u| u.id = Id::new("Sam"), "id/not-slug", "id"),
                (|u| u.name = " ".into(), "entity/name", "name"),
                (|u| u.plaintext_pin = true, "user/plaintext-pin", "pin"),
                (
                    |u| u.pin_hash = Some("plain".into()),
                    "user/pin-hash",
                    "pin_hash",
                ),
                (
                    |u| u.pin_hash = Some(HASH.replace("argon2id", "argon2i").into()),
                    "user/pin-hash",
                    "pin_hash",
                ),
                (
                    // The repo's encrypted form never reaches the edge.
                    |u| {
                        u.pin_hash = Some(crate::model::Secret::Sealed(crate::model::Sealed {
                            age: "YWdl".into(),
                            to: vec!["*".into(), "@escrow".into()],
                        }))
                    },
                    ENCRYPTED_AT_EDGE,
                    "pin_hash",
                ),
                (
                    // The argon2id prefix alone is not a PHC string.
                    |u| u.pin_hash = Some("$argon2id$".into()),
                    "user/pin-hash",
                    "pin_hash",
                ),
            ],
        );
        let mut no_pin = good.clone();
        no_pin.pin_hash = None;
        assert_eq!(
            user(&no_pin),
            vec![],
            "a PIN is required by a repo, not by the entity"
        );
    }

    #[test]
    fn device_rules() {
        let good = Device {
            id: Id::new("p1"),
            station: Id::new("grill"),
            kind: DeviceType::EscposNet,
            address: "10.0.0.1:9100".into(),
        };
        table(
            &good,
            device,
            &[
                (|d| d.id = Id::new("P1"), "id/not-slug", "id"),
                (|d| d.address = " ".into(), "device/address", "address"),
            ],
        );
    }

    #[test]
    fn tenant_and_store_info_rules() {
        let good = TenantInfo {
            id: Id::new("acme"),
            name: "Acme".into(),
            currency: "USD".into(),
            timezone: "America/New_York".into(),
        };
        table(
            &good,
            tenant_info,
            &[
                (|t| t.id = Id::new("ACME"), "id/not-slug", "id"),
                (|t| t.currency = "usd".into(), "tenant/currency", "currency"),
                (
                    |t| t.currency = "USDX".into(),
                    "tenant/currency",
                    "currency",
                ),
                (
                    |t| t.timezone = "New York".into(),
                    "tenant/timezone",
                    "timezone",
                ),
                (
                    // The right shape, too long for the setting `store.timezone`.
                    |t| t.timezone = format!("America/{}", "x".repeat(60)),
                    "settings/type",
                    "timezone",
                ),
            ],
        );
        let good = StoreInfo {
            id: Id::new("soho"),
            name: "SoHo".into(),
            timezone: Some("UTC".into()),
            recipient: Some(
                "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".into(),
            ),
            labels: [("region".to_owned(), "east".to_owned())].into(),
        };
        table(
            &good,
            store_info,
            &[
                (|s| s.id = Id::new("So-Ho"), "id/not-slug", "id"),
                (
                    |s| s.timezone = Some("Mars".into()),
                    "tenant/timezone",
                    "timezone",
                ),
                (
                    |s| s.recipient = Some("age1notakey".into()),
                    "secret/recipient",
                    "recipient",
                ),
                (
                    |s| s.recipient = Some(format!("AGE1{}", "q".repeat(58))),
                    "secret/recipient",
                    "recipient",
                ),
                (
                    // Rendered as the setting `store.name`: at most 200 characters.
                    |s| s.name = "x".repeat(201),
                    "settings/type",
                    "name",
                ),
            ],
        );
    }

    #[test]
    fn setting_rules() {
        let rules = |k: &str, v: SettingValue| found(setting(k, &v));
        assert_eq!(
            rules("tax.rounding", SettingValue::Str("half_up".into())),
            vec![]
        );
        assert_eq!(
            rules("receipt.footer_text", SettingValue::Str("Hi".into())),
            vec![]
        );
        assert_eq!(rules("custom.banner", SettingValue::Int(3)), vec![]);
        // Derived keys are settings like any other at the store.
        assert_eq!(
            rules("store.name", SettingValue::Str("SoHo".into())),
            vec![]
        );
        for (key, value, rule, field) in [
            ("nope", SettingValue::Int(1), "settings/unknown-key", "key"),
            (
                "custom.",
                SettingValue::Int(1),
                "settings/unknown-key",
                "key",
            ),
            (
                "tax.rounding",
                SettingValue::Str("up".into()),
                "settings/type",
                "value",
            ),
            (
                "order.auto_close_minutes",
                SettingValue::Int(1441),
                "settings/type",
                "value",
            ),
            (
                "order.auto_close_minutes",
                SettingValue::Str("30".into()),
                "settings/type",
                "value",
            ),
            (
                "custom.list",
                SettingValue::List(vec![]),
                "settings/type",
                "value",
            ),
            (
                "tips.suggestions",
                SettingValue::List(vec![SettingValue::Str("15%".into())]),
                "settings/type",
                "value",
            ),
        ] {
            assert_eq!(rules(key, value), vec![(rule, field.to_owned())], "{key}");
        }
        assert_eq!(
            setting_key("receipt.footer_text").as_deref(),
            Ok("receipt.footer")
        );
        assert_eq!(setting_key("custom.x").as_deref(), Ok("custom.x"));
        assert!(setting_key("nope").is_err());
    }

    #[test]
    fn standalone_amounts_and_rates() {
        assert_eq!(price(Money(MONEY_LIMIT - 1)), None);
        assert_eq!(
            price(Money(MONEY_LIMIT)).map(|v| v.rule),
            Some("money/too-large")
        );
        assert_eq!(tax_rate(&Rate::new_unchecked("0")), None);
        assert_eq!(tax_rate(&Rate::new_unchecked("8.875")), None);
        assert_eq!(
            tax_rate(&Rate::new_unchecked("101")).map(|v| v.rule),
            Some("rate/range")
        );
        assert_eq!(
            tax_rate(&Rate::new_unchecked("8.87501")).map(|v| v.rule),
            Some("rate/format")
        );
    }
}
