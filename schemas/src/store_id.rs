//! A store's full id, `<tenant>/<store>`: the name a store has in the fleet
//! repo's layout, in releases and their signatures, in the reconciler's
//! config, in reports and on the dashboard. Parsed once, at the edge of the
//! program (config, request body, URL); past that, code asks the value for
//! its tenant and store instead of splitting strings.

use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::primitives::is_slug;

/// `<tenant>/<store>`, both slugs (`^[a-z0-9][a-z0-9-]{0,62}$`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreId {
    full: String,
    /// Where the `/` is.
    slash: usize,
}

/// Why a text is not a store id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a store id: a store id is <tenant>/<store>, both lowercase letters, digits and '-' (e.g. acme/soho)"
)]
pub struct StoreIdError {
    pub given: String,
}

impl StoreId {
    /// From its two parts.
    pub fn new(tenant: &str, store: &str) -> Result<StoreId, StoreIdError> {
        format!("{tenant}/{store}").parse()
    }

    /// The tenant part (`acme`).
    pub fn tenant(&self) -> &str {
        &self.full[..self.slash]
    }

    /// The store part (`soho`).
    pub fn store(&self) -> &str {
        &self.full[self.slash + 1..]
    }

    /// `acme/soho`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// Where the store's files are in the fleet repo (DESIGN.md §1):
    /// `tenants/acme/stores/soho`, the directory of its `store.yaml` and
    /// its release.
    pub fn release_dir(&self) -> String {
        format!("tenants/{}/stores/{}", self.tenant(), self.store())
    }

    /// Whether `text` is a store id.
    pub fn is_valid(text: &str) -> bool {
        text.parse::<StoreId>().is_ok()
    }
}

impl FromStr for StoreId {
    type Err = StoreIdError;

    fn from_str(text: &str) -> Result<StoreId, StoreIdError> {
        match text.split_once('/') {
            Some((t, s)) if is_slug(t) && is_slug(s) => Ok(StoreId {
                full: text.to_owned(),
                slash: t.len(),
            }),
            _ => Err(StoreIdError {
                given: text.to_owned(),
            }),
        }
    }
}

impl TryFrom<String> for StoreId {
    type Error = StoreIdError;

    fn try_from(text: String) -> Result<StoreId, StoreIdError> {
        text.parse()
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl AsRef<str> for StoreId {
    fn as_ref(&self) -> &str {
        &self.full
    }
}

impl PartialEq<str> for StoreId {
    fn eq(&self, other: &str) -> bool {
        self.full == other
    }
}

impl PartialEq<String> for StoreId {
    fn eq(&self, other: &String) -> bool {
        &self.full == other
    }
}

impl PartialEq<&str> for StoreId {
    fn eq(&self, other: &&str) -> bool {
        self.full == *other
    }
}

impl Serialize for StoreId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for StoreId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StoreId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for StoreId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StoreId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9-]{0,62}/[a-z0-9][a-z0-9-]{0,62}$",
            "description": "<tenant>/<store>",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_round_trips() {
        let id: StoreId = "acme/soho".parse().expect("valid");
        assert_eq!((id.tenant(), id.store()), ("acme", "soho"));
        assert_eq!(id.to_string(), "acme/soho");
        assert_eq!(StoreId::new("acme", "soho"), Ok(id.clone()));
        let json = serde_json::to_string(&id).expect("serializes");
        assert_eq!(json, "\"acme/soho\"");
        assert_eq!(serde_json::from_str::<StoreId>(&json).expect("decodes"), id);
    }

    #[test]
    fn refusals_name_the_text_and_the_form() {
        for bad in [
            "",
            "acme",
            "acme/",
            "/soho",
            "acme/soho/x",
            "Acme/soho",
            "acme/so ho",
            "-a/b",
        ] {
            let e = bad.parse::<StoreId>().expect_err(bad);
            assert_eq!(e.given, bad);
            assert!(e.to_string().contains("<tenant>/<store>"), "{e}");
        }
        let e = serde_json::from_str::<StoreId>("\"acme\"").expect_err("refused");
        assert!(e.to_string().contains("not a store id"), "{e}");
    }
}
