//! The YAML sources of a fleet repo, field for field as POS-MODEL.md names them.
//!
//! These types only decode; every rule that needs more than one value at a
//! time (references, ranges, uniqueness) is in [`crate::validate`], so that a
//! repo's errors are reported together. Catalog, access and kitchen entities
//! are shared with the rendered state ([`crate::state`]): a rendered store is
//! the same entities with overrides applied.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::primitives::{Id, Money, Rate, rule_error};

/// Declares a unit type that (de)serializes as exactly one string, such as
/// `apiVersion: fleet/v1` or `kind: Tenant`, and refuses any other with `rule`.
macro_rules! literal_marker {
    ($(#[$doc:meta])* $name:ident, $lit:literal, $rule:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl $name {
            pub const VALUE: &'static str = $lit;
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($lit)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} `{}`", $what, $lit)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        if v == $lit {
                            Ok($name)
                        } else {
                            Err(rule_error($rule, format_args!(
                                "{} must be `{}` here, got `{}`{}", $what, $lit, v,
                                if $rule == "schema/api-version" {
                                    "; this build of fleet reads fleet/v1 only (upgrade fleet to read newer files)"
                                } else { "" }
                            )))
                        }
                    }
                }
                d.deserialize_str(V)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "const": $lit })
            }
        }
    };
}

literal_marker!(
    /// `apiVersion: fleet/v1`
    ApiVersion, "fleet/v1", "schema/api-version", "apiVersion"
);
literal_marker!(
    /// `kind: Fleet`
    FleetKind, "Fleet", "schema/kind", "kind"
);
literal_marker!(
    /// `kind: Tenant`
    TenantKind, "Tenant", "schema/kind", "kind"
);
literal_marker!(
    /// `kind: Store`
    StoreKind, "Store", "schema/kind", "kind"
);
literal_marker!(
    /// `kind: StoreRelease`
    StoreReleaseKind, "StoreRelease", "schema/kind", "kind"
);
literal_marker!(
    /// `kind: Rollout`
    RolloutKind, "Rollout", "schema/kind", "kind"
);
literal_marker!(
    /// `kind: TrustRoot`
    TrustRootKind, "TrustRoot", "schema/kind", "kind"
);

fn is_false(b: &bool) -> bool {
    !*b
}

// ---------------------------------------------------------------- fleet.yaml

/// `fleet.yaml` at the repo root: fleet-wide policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    pub kind: FleetKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetInfo>,
    #[serde(default)]
    pub release: ReleasePolicy,
    /// Secret values in the repo (DESIGN.md §11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsPolicy>,
}

/// `secrets:` of fleet.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsPolicy {
    /// Head office's recovery recipients (`age1…`): every encrypted value
    /// and the tenant key are also encrypted to these. Once any is named, a
    /// plaintext secret value is a validation error (`secret/plaintext`).
    #[serde(default)]
    pub escrow: Vec<String>,
}

impl FleetFile {
    /// The escrow recipients, empty when `secrets` is absent.
    pub fn escrow(&self) -> &[String] {
        self.secrets.as_ref().map_or(&[], |s| s.escrow.as_slice())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetInfo {
    pub name: String,
}

/// How long a signed release stays valid, and when `fleet sign` refreshes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleasePolicy {
    #[serde(default = "ReleasePolicy::default_expires")]
    pub expires_in_days: u32,
    #[serde(default = "ReleasePolicy::default_refresh")]
    pub refresh_within_days: u32,
}

impl ReleasePolicy {
    fn default_expires() -> u32 {
        90
    }
    fn default_refresh() -> u32 {
        30
    }
}

impl Default for ReleasePolicy {
    fn default() -> Self {
        ReleasePolicy {
            expires_in_days: Self::default_expires(),
            refresh_within_days: Self::default_refresh(),
        }
    }
}

// ---------------------------------------------------------------- tenant files

/// One `tenants/<tenant>/*.yaml` file. The tenant base is the union of the
/// sections of all such files; each section may appear in one file only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    pub kind: TenantKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu: Option<Menu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kitchen: Option<Kitchen>,
    /// The waves a change goes out in (DESIGN.md §12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::rollout::Rollout>,
    /// When releases wait, store-local; a store's `windows` replace these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<crate::rollout::Windows>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantInfo {
    pub id: Id,
    pub name: String,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
    /// IANA time zone, e.g. `America/New_York`.
    pub timezone: String,
}

/// Dotted setting keys (from the registry, or `custom.*`) to scalar values.
pub type Settings = BTreeMap<String, SettingValue>;

/// A setting's value: a scalar, or a list of scalars. Floats are refused:
/// quote decimals as strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SettingValue {
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<SettingValue>),
    /// A `secret: true` setting's value as written in the repo and carried
    /// in a release: encrypted, decrypted only by the reconciler.
    Sealed(Sealed),
}

impl SettingValue {
    /// A short name of the value's type for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            SettingValue::Bool(_) => "a boolean",
            SettingValue::Int(_) => "an integer",
            SettingValue::Str(_) => "a string",
            SettingValue::List(_) => "a list",
            SettingValue::Sealed(_) => "an encrypted value",
        }
    }
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::Bool(b) => write!(f, "{b}"),
            SettingValue::Int(i) => write!(f, "{i}"),
            SettingValue::Str(s) => write!(f, "{s:?}"),
            SettingValue::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            SettingValue::Sealed(_) => f.write_str(SECRET_SHOWN),
        }
    }
}

impl Serialize for SettingValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SettingValue::Bool(b) => s.serialize_bool(*b),
            SettingValue::Int(i) => s.serialize_i64(*i),
            SettingValue::Str(v) => s.serialize_str(v),
            SettingValue::List(l) => l.serialize(s),
            SettingValue::Sealed(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SettingValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, integer, string or list of those")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SettingValue, E> {
                Ok(SettingValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SettingValue, E> {
                Ok(SettingValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SettingValue, E> {
                i64::try_from(v)
                    .map(SettingValue::Int)
                    .map_err(|_| rule_error("settings/type", format_args!("{v} is too large")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SettingValue, E> {
                Err(rule_error(
                    "settings/type",
                    format_args!("settings take no floats: quote decimals, write \"{v}\""),
                ))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SettingValue, E> {
                Ok(SettingValue::Str(v.to_owned()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SettingValue, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<SettingValue>()? {
                    if matches!(v, SettingValue::List(_)) {
                        return Err(rule_error(
                            "settings/type",
                            "settings lists hold scalars, not lists",
                        ));
                    }
                    out.push(v);
                }
                Ok(SettingValue::List(out))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<SettingValue, A::Error> {
                // The one mapping a setting takes is an encrypted value.
                Sealed::from_map(map, "settings/type", "a setting's value is a scalar, a list or an encrypted value {age, to}, not another mapping (dotted keys go on one line: `receipt.footer: ...`)").map(SettingValue::Sealed)
            }
            fn visit_unit<E: de::Error>(self) -> Result<SettingValue, E> {
                Err(rule_error(
                    "settings/type",
                    "a setting needs a value; remove the key to use the default",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for SettingValue {
    fn schema_name() -> Cow<'static, str> {
        "SettingValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                {"type": "boolean"},
                {"type": "integer"},
                {"type": "string"},
                {"type": "array", "items": {"type": ["boolean", "integer", "string"]}},
                sealed_schema()
            ]
        })
    }
}

// ---------------------------------------------------------------- secrets

/// What is shown instead of a secret value (DESIGN.md §11): plans, reports,
/// drift and the dashboard say a secret changed, never what it is.
pub const SECRET_SHOWN: &str = "(secret)";

/// In a [`Sealed`] value's `to`: the escrow recipients of fleet.yaml.
pub const ESCROW: &str = "@escrow";

/// In a [`Sealed`] value's `to`: every store of the tenant, through the
/// tenant key.
pub const ALL_STORES: &str = "*";

/// An encrypted value: `{age: "<base64 of the binary age file>", to:
/// [<store slug>…, "@escrow"]}` (DESIGN.md §11). The age plaintext is the
/// value's UTF-8 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// Standard padded base64 of the binary age file.
    pub age: String,
    /// The stores of the tenant that use the value (`*`: all of them,
    /// through the tenant key) and `@escrow`.
    pub to: Vec<String>,
}

impl Sealed {
    /// Whether `to` names every store (`*`): the value is encrypted to the
    /// tenant key.
    pub fn to_all(&self) -> bool {
        self.to.iter().any(|t| t == ALL_STORES)
    }

    /// Whether a store whose directory is `slug` is among the readers.
    pub fn is_for(&self, slug: &str) -> bool {
        self.to.iter().any(|t| t == slug || t == ALL_STORES)
    }

    /// Decode a mapping as a sealed value; any other mapping is refused
    /// under `rule` with `what`.
    fn from_map<'de, A: de::MapAccess<'de>>(
        map: A,
        rule: &'static str,
        what: &'static str,
    ) -> Result<Sealed, A::Error> {
        Sealed::deserialize(de::value::MapAccessDeserializer::new(map)).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("unknown field") || msg.contains("missing field") {
                rule_error(rule, format_args!("{what}: {msg}"))
            } else {
                e
            }
        })
    }
}

impl JsonSchema for Sealed {
    fn schema_name() -> Cow<'static, str> {
        "Sealed".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        Schema::try_from(sealed_schema()).expect("an object schema")
    }
}

fn sealed_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "description": "An encrypted secret value (DESIGN.md §11): made by `fleet secret set`, decrypted only at the store.",
        "properties": {
            "age": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9+/]+={0,2}$",
                    "description": "Standard padded base64 of the binary age file."},
            "to": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1},
                   "description": "The stores of the tenant that use the value (`*`: every store, through the tenant key) and `@escrow`."}
        },
        "required": ["age", "to"],
        "additionalProperties": false
    })
}

/// A secret value (a `pin_hash`) as written in the repo: plaintext, or
/// encrypted to the stores that use it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Secret {
    Plain(String),
    Sealed(Sealed),
}

impl Secret {
    /// The plaintext, when the value is not encrypted.
    pub fn as_plain(&self) -> Option<&str> {
        match self {
            Secret::Plain(s) => Some(s),
            Secret::Sealed(_) => None,
        }
    }

    pub fn as_sealed(&self) -> Option<&Sealed> {
        match self {
            Secret::Plain(_) => None,
            Secret::Sealed(s) => Some(s),
        }
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::Plain(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::Plain(s)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Secret::Plain(v) => s.serialize_str(v),
            Secret::Sealed(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an encrypted value {age, to}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::Plain(v.to_owned()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Secret, A::Error> {
                Sealed::from_map(
                    map,
                    "secret/encoding",
                    "a secret is a string or an encrypted value {age, to}",
                )
                .map(Secret::Sealed)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> Cow<'static, str> {
        "SecretValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                {"type": "string"},
                sealed_schema()
            ]
        })
    }
}

// ---------------------------------------------------------------- menu

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    #[serde(default)]
    pub taxes: Vec<Tax>,
    #[serde(default)]
    pub categories: Vec<Category>,
    #[serde(default)]
    pub modifier_groups: Vec<ModifierGroup>,
    #[serde(default)]
    pub items: Vec<Item>,
    #[serde(default)]
    pub discounts: Vec<Discount>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Inclusion {
    /// Added on top of the price.
    Exclusive,
    /// Already part of the price; only reported.
    Inclusive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tax {
    pub id: Id,
    #[schemars(extend("minLength" = 1, "maxLength" = 500, "pattern" = "\\S"))]
    pub name: String,
    pub rate: Rate,
    pub inclusion: Inclusion,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub id: Id,
    #[schemars(extend("minLength" = 1, "maxLength" = 500, "pattern" = "\\S"))]
    pub name: String,
    #[serde(default)]
    pub sort: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModifierGroup {
    pub id: Id,
    #[schemars(extend("minLength" = 1, "maxLength" = 500, "pattern" = "\\S"))]
    pub name: String,
    #[serde(default)]
    pub min: u32,
    #[schemars(range(max = 50))]
    pub max: u32,
    #[schemars(length(min = 1))]
    pub modifiers: Vec<Modifier>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Modifier {
    pub id: Id,
    #[schemars(extend("minLength" = 1, "maxLength" = 500, "pattern" = "\\S"))]
    pub name: String,
    #[serde(default)]
    pub price: Money,
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: Id,
    #[schemars(extend("minLength" = 1, "maxLength" = 500, "pattern" = "\\S"))]
    pub name: String,
    pub category: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("uniqueItems" = true))]
    pub taxes: Vec<Id>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("uniqueItems" = true))]
    pub modifier_groups: Vec<Id>,
    /// Kitchen stations for this item; beats the category route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("uniqueItems" = true))]
    pub stations: Vec<Id>,
    #[schemars(length(min = 1, max = 250))]
    pub variations: Vec<Variation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variation {
    pub id: Id,
    #[schemars(extend("minLength" = 1, "maxLength" = 500, "pattern" = "\\S"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub price: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    /// `rate` percent off.
    Percent,
    /// `amount` minor units off.
    Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    pub id: Id,
    #[schemars(extend("minLength" = 1, "maxLength" = 500, "pattern" = "\\S"))]
    pub name: String,
    pub kind: DiscountKind,
    /// For `kind: percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// For `kind: amount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    /// A permission the applying user must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<String>,
}

// ---------------------------------------------------------------- access

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Access {
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub users: Vec<User>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub id: Id,
    #[schemars(extend("minLength" = 1, "maxLength" = 500, "pattern" = "\\S"))]
    pub name: String,
    #[serde(default)]
    pub level: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherits: Vec<Id>,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: Id,
    #[schemars(extend("minLength" = 1, "maxLength" = 500, "pattern" = "\\S"))]
    pub name: String,
    pub role: Id,
    /// Tenant users only: the store ids this user works at, or `"*"`.
    /// Not rendered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<String>,
    /// An argon2id PHC string (`$argon2id$v=19$...`), or in the repo and a
    /// release that string encrypted (`{age, to}`, made by `fleet secret
    /// set --pin`). The edge takes only the string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_hash: Option<Secret>,
    /// A plaintext `pin:` is decoded only so that validation can refuse it by
    /// name; its value is never kept.
    #[serde(
        default,
        rename = "pin",
        deserialize_with = "present",
        skip_serializing
    )]
    #[schemars(skip)]
    pub plaintext_pin: bool,
}

/// A key written with no value (`absent:`) means empty, as an omitted key
/// does: people leave a key in place after deleting its last entry.
fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

// ---------------------------------------------------------------- kitchen

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Kitchen {
    #[serde(default)]
    pub stations: Vec<Station>,
    #[serde(default)]
    pub routing: Routing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StationKind {
    Printer,
    Kds,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Station {
    pub id: Id,
    #[schemars(extend("minLength" = 1, "maxLength" = 500, "pattern" = "\\S"))]
    pub name: String,
    pub kind: StationKind,
}

/// Where kitchen tickets go: item `stations` first, then the item's
/// category route, then `default`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    #[serde(default)]
    pub default: Vec<Id>,
    #[serde(default)]
    pub categories: BTreeMap<Id, Vec<Id>>,
}

// ---------------------------------------------------------------- store.yaml

/// `tenants/<tenant>/stores/<store>/store.yaml`: identity and overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    pub kind: StoreKind,
    pub store: StoreInfo,
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<Overrides>")]
    pub overrides: Overrides,
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<StoreAccess>")]
    pub access: StoreAccess,
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<Vec<Device>>")]
    pub devices: Vec<Device>,
    /// When releases wait at this store, store-local; replaces the
    /// tenant's `windows` (DESIGN.md §12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<crate::rollout::Windows>,
    /// Catalog and kitchen entities are created in the tenant base only; these
    /// are decoded so validation can say so (rule 11) instead of "unknown field".
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub menu: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub kitchen: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub settings: Option<IgnoredAny>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreInfo {
    pub id: Id,
    pub name: String,
    /// Overrides the tenant's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The store's age recipient (`age1…`): secret values meant for this
    /// store are encrypted to it. Written by `fleet secret recipients` from
    /// what the store's node reported at enrollment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Label → value, matched by rollout wave selectors (DESIGN.md §12).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<Settings>")]
    pub settings: Settings,
    /// Variation or modifier id → price at this store.
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<BTreeMap<Id, Money>>")]
    pub prices: BTreeMap<Id, Money>,
    /// Items, variations, modifiers or discounts not sold here.
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<Vec<Id>>")]
    pub absent: Vec<Id>,
    /// Tax id → rate at this store.
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<BTreeMap<Id, Rate>>")]
    pub tax_rates: BTreeMap<Id, Rate>,
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<RoutingOverride>")]
    pub routing: RoutingOverride,
}

/// A store's routing on top of the tenant's: `default` replaces the tenant
/// default when given; `categories` replace the tenant route per category.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Vec<Id>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<BTreeMap<Id, Vec<Id>>>")]
    pub categories: BTreeMap<Id, Vec<Id>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreAccess {
    /// Users who work at this store only.
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<Vec<User>>")]
    pub users: Vec<User>,
    /// Roles are tenant-wide; decoded only so validation can say so (rule 11).
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub roles: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    /// ESC/POS printer over TCP (`host:port`).
    EscposNet,
    /// ESC/POS printer on USB (device path).
    EscposUsb,
    /// Star Micronics printer over TCP.
    StarNet,
    /// Kitchen display over HTTP (`host:port`).
    Kds,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub id: Id,
    pub station: Id,
    #[serde(rename = "type")]
    pub kind: DeviceType,
    pub address: String,
}
