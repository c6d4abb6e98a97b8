//! Scalar types with the rules of DESIGN.md §3 built into their decoding:
//! money is an integer of minor units, rates are quoted decimal strings, ids
//! are slugs.
//!
//! Decoding refuses the shapes that are always wrong (a float for money, an
//! unquoted number for a rate) with a rule id in the message, so the loader
//! can point at the offending node. Range checks that need context live in
//! [`crate::validate`].

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Upper bound (exclusive) for any amount of money, in minor units.
pub const MONEY_LIMIT: u64 = 1_000_000_000_000;

/// Prefix a decode error message with its rule id so that
/// [`crate::yaml`] can classify it: `[money/not-integer] …`.
pub(crate) fn rule_error<E: de::Error>(rule: &str, message: impl fmt::Display) -> E {
    E::custom(format_args!("[{rule}] {message}"))
}

// ---------------------------------------------------------------- Id

/// A slug: `^[a-z0-9][a-z0-9-]{0,62}$`. Decoding accepts any string so that
/// every bad id in a repo is reported at once by validation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(pub String);

impl Id {
    pub fn new(s: impl Into<String>) -> Self {
        Id(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a valid slug.
    pub fn is_slug(&self) -> bool {
        is_slug(&self.0)
    }
}

/// `^[a-z0-9][a-z0-9-]{0,62}$`
pub fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id(s.to_owned())
    }
}

impl JsonSchema for Id {
    fn schema_name() -> Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9-]{0,62}$",
            "description": "A slug: lowercase letters, digits and '-', at most 63 characters."
        })
    }
}

// ---------------------------------------------------------------- Money

/// An amount of money in minor units (`1099` = 10.99). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub u64);

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;
        impl Visitor<'_> for MoneyVisitor {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer amount in minor units (1099 = 10.99)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                Ok(Money(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                u64::try_from(v).map(Money).map_err(|_| {
                    rule_error(
                        "money/negative",
                        format_args!("money cannot be negative, got {v}"),
                    )
                })
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Money, E> {
                Err(rule_error(
                    "money/too-large",
                    format_args!("{v} is not below {MONEY_LIMIT}"),
                ))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Money, E> {
                Err(rule_error(
                    "money/too-large",
                    format_args!("{v} is out of range"),
                ))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
                // An integer too long for u64 arrives as a float.
                if v.is_finite() && v.fract() == 0.0 && v.abs() >= MONEY_LIMIT as f64 {
                    return Err(rule_error(
                        "money/too-large",
                        format_args!("{v:.0} is not below {MONEY_LIMIT} minor units"),
                    ));
                }
                Err(rule_error(
                    "money/not-integer",
                    format_args!(
                        "money is an integer of minor units, got the number {v}; write {} for {v:.2}",
                        (v * 100.0).round()
                    ),
                ))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                Err(rule_error(
                    "money/not-integer",
                    format_args!(
                        "money is an unquoted integer of minor units, got the string {v:?}"
                    ),
                ))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Money, E> {
                Err(rule_error(
                    "money/not-integer",
                    format_args!("money is an integer of minor units, got {v}"),
                ))
            }
        }
        d.deserialize_any(MoneyVisitor)
    }
}

impl JsonSchema for Money {
    fn schema_name() -> Cow<'static, str> {
        "Money".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "minimum": 0,
            "exclusiveMaximum": MONEY_LIMIT,
            "description": "Money in minor units of the tenant currency (1099 = 10.99). Never a float."
        })
    }
}

// ---------------------------------------------------------------- Rate

/// A percentage as a quoted decimal string (`"8.875"`), at most three integer
/// digits and four decimals. Held as text so no float ever touches it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(String);

impl Rate {
    /// Parse a rate, refusing anything that is not `^\d{1,3}(\.\d{1,4})?$`.
    pub fn parse(s: &str) -> Option<Rate> {
        Self::basis_points_of(s).map(|_| Rate(s.to_owned()))
    }

    /// A rate known to be well-formed (used by rendering and tests).
    pub fn new_unchecked(s: impl Into<String>) -> Rate {
        Rate(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the text has the required shape.
    pub fn is_well_formed(&self) -> bool {
        Self::basis_points_of(&self.0).is_some()
    }

    /// The rate in units of 1/10,000 percent (`"8.875"` → 88,750), exact.
    pub fn ten_thousandths(&self) -> Option<u64> {
        Self::basis_points_of(&self.0)
    }

    fn basis_points_of(s: &str) -> Option<u64> {
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        if int.is_empty() || int.len() > 3 || !int.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut value: u64 = int.parse().ok()?;
        value *= 10_000;
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 4 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let scale = 10u64.pow(4 - f.len() as u32);
            value += f.parse::<u64>().ok()? * scale;
        }
        Some(value)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RateVisitor;
        fn unquoted<E: de::Error>(v: impl fmt::Display) -> E {
            rule_error(
                "rate/unquoted",
                format_args!("rates are quoted decimal strings: write \"{v}\", not {v}"),
            )
        }
        impl Visitor<'_> for RateVisitor {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quoted decimal string such as \"8.875\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Rate, E> {
                // Shape is checked by validation so every bad rate is reported.
                Ok(Rate(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                Err(unquoted(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                Err(unquoted(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                Err(unquoted(v))
            }
        }
        d.deserialize_any(RateVisitor)
    }
}

impl JsonSchema for Rate {
    fn schema_name() -> Cow<'static, str> {
        "Rate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^(0?\\d{1,2}(\\.\\d{1,4})?|100(\\.0{1,4})?)$",
            "description": "A percentage from 0 to 100 as a quoted decimal string, e.g. \"8.875\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(is_slug("acme"));
        assert!(is_slug("0-a"));
        assert!(!is_slug("-a"));
        assert!(!is_slug("Acme"));
        assert!(!is_slug(""));
        assert!(!is_slug(&"a".repeat(64)));
        assert!(is_slug(&"a".repeat(63)));
    }

    #[test]
    fn rates_are_exact() {
        assert_eq!(Rate::new_unchecked("8.875").ten_thousandths(), Some(88_750));
        assert_eq!(
            Rate::new_unchecked("100").ten_thousandths(),
            Some(1_000_000)
        );
        assert_eq!(Rate::new_unchecked("0.0001").ten_thousandths(), Some(1));
        for bad in ["", ".5", "5.", "1000", "1.23456", "-1", "1e2", " 1"] {
            assert_eq!(Rate::new_unchecked(bad).ten_thousandths(), None, "{bad:?}");
        }
    }
}
