//! The registries that YAML cannot extend: setting keys with their types,
//! and permissions. A new key or permission is added here, in code, with a
//! test; a renamed one keeps its old name as an alias.

use crate::model::SettingValue;
use crate::primitives::Rate;

/// The type a setting's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingType {
    Bool,
    /// An integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A string of at most `max_len` characters.
    Text {
        max_len: usize,
    },
    /// One of the listed strings.
    Enum(&'static [&'static str]),
    /// A list of rate strings (`"15"`, `"18.5"`).
    RateList,
    /// A BCP 47 language tag such as `en-US`.
    Locale,
    /// A local time of day, `HH:MM` (00:00–23:59).
    TimeOfDay,
    /// Any scalar (`custom.*`).
    AnyScalar,
}

/// One registered setting.
#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    pub key: &'static str,
    pub ty: SettingType,
    /// Whether a store's `overrides.settings` may set it.
    pub store_overridable: bool,
    /// Set by rendering from the tenant and store sections, never written
    /// in a `settings:` map (see `render::DERIVED_SETTINGS`).
    pub derived: bool,
    /// A secret value (DESIGN.md §11): written encrypted (`{age, to}`),
    /// decrypted only by the reconciler, never shown.
    pub secret: bool,
    pub description: &'static str,
}

/// Every known setting key. `custom.*` keys are accepted in addition.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        key: "tax.rounding",
        ty: SettingType::Enum(&["half_even", "half_up"]),
        store_overridable: true,
        derived: false,
        secret: false,
        description: "How tax amounts are rounded to minor units: half_up (the default since \
                      edge contract 1's order rules: commercial rounding, what US sales tax and EU VAT \
                      practice expect) or half_even.",
    },
    SettingSpec {
        key: "tax.rounding_scope",
        ty: SettingType::Enum(&["line", "order"]),
        store_overridable: true,
        derived: false,
        secret: false,
        description: "Where each tax is rounded: on every order line (line, the default) or once on \
                      the order's exact sum (order), so the same items cost the same however they \
                      were entered.",
    },
    SettingSpec {
        key: "receipt.header",
        ty: SettingType::Text { max_len: 500 },
        store_overridable: true,
        derived: false,
        secret: false,
        description: "Text printed at the top of receipts.",
    },
    SettingSpec {
        key: "receipt.footer",
        ty: SettingType::Text { max_len: 500 },
        store_overridable: true,
        derived: false,
        secret: false,
        description: "Text printed at the bottom of receipts.",
    },
    SettingSpec {
        key: "order.auto_close_minutes",
        ty: SettingType::Int { min: 0, max: 1440 },
        store_overridable: true,
        derived: false,
        secret: false,
        description: "Minutes after which a settled order is closed; 0 never.",
    },
    SettingSpec {
        key: "order.require_table",
        ty: SettingType::Bool,
        store_overridable: true,
        derived: false,
        secret: false,
        description: "Whether dine-in orders need a table number.",
    },
    SettingSpec {
        key: "tips.enabled",
        ty: SettingType::Bool,
        store_overridable: true,
        derived: false,
        secret: false,
        description: "Whether guests are offered a tip.",
    },
    SettingSpec {
        key: "tips.suggestions",
        ty: SettingType::RateList,
        store_overridable: true,
        derived: false,
        secret: false,
        description: "Suggested tip percentages, as rate strings.",
    },
    SettingSpec {
        key: "drawer.require_count",
        ty: SettingType::Bool,
        store_overridable: false,
        derived: false,
        secret: false,
        description: "Whether closing a drawer needs a blind count (a cash-control policy set by head office).",
    },
    SettingSpec {
        key: "locale",
        ty: SettingType::Locale,
        store_overridable: true,
        derived: false,
        secret: false,
        description: "Language and region of receipts and screens (BCP 47).",
    },
    SettingSpec {
        key: "payment.terminal_key",
        ty: SettingType::Text { max_len: 512 },
        store_overridable: true,
        derived: false,
        secret: true,
        description: "The key the payment terminal pairs with: a secret, written encrypted with `fleet secret set`.",
    },
    SettingSpec {
        key: "store.day_end",
        ty: SettingType::TimeOfDay,
        store_overridable: true,
        derived: false,
        secret: false,
        description: "When the store's business day ends, local time (HH:MM; 04:00 when unset): \
                      items marked unavailable at the store (86) are available again.",
    },
    SettingSpec {
        key: "store.name",
        ty: SettingType::Text { max_len: 200 },
        store_overridable: false,
        derived: true,
        secret: false,
        description: "The store's name, from `store.name` of store.yaml.",
    },
    SettingSpec {
        key: "store.timezone",
        ty: SettingType::Text { max_len: 64 },
        store_overridable: false,
        derived: true,
        secret: false,
        description: "The store's IANA time zone: store.yaml's, else the tenant's.",
    },
    SettingSpec {
        key: "store.currency",
        ty: SettingType::Text { max_len: 3 },
        store_overridable: false,
        derived: true,
        secret: false,
        description: "The tenant's ISO 4217 currency.",
    },
];

/// Whether a setting key (or an old name of one) holds a secret value.
pub fn is_secret_setting(key: &str) -> bool {
    matches!(lookup_setting(key), SettingLookup::Known(s) if s.secret)
}

/// Old setting names that still work, with the name they now have.
pub const SETTING_ALIASES: &[(&str, &str)] = &[("receipt.footer_text", "receipt.footer")];

/// Every permission a role may grant.
pub const PERMISSIONS: &[&str] = &[
    "order.create",
    "order.settle",
    "order.void",
    "order.refund",
    "order.reopen",
    "order.transfer",
    "discount.apply",
    "discount.restricted",
    "drawer.open",
    "drawer.payout",
    "reports.view",
    "shift.manage",
    "kitchen.view",
    "menu.sold_out",
    "users.manage_local",
    "settings.edit_local",
    "admin.all",
];

/// Old permission names that still work, with the name they now have.
pub const PERMISSION_ALIASES: &[(&str, &str)] = &[
    ("order.return", "order.refund"),
    ("discount.manager", "discount.restricted"),
    ("reports.read", "reports.view"),
];

/// The permission that grants all others.
pub const ADMIN_ALL: &str = "admin.all";

/// The permission that makes a user a manager for rule 9.
pub const MANAGER_PERMISSION: &str = "order.void";

/// The current name of a permission, following aliases; `None` if unknown.
pub fn canonical_permission(name: &str) -> Option<&'static str> {
    PERMISSIONS
        .iter()
        .copied()
        .find(|p| *p == name)
        .or_else(|| {
            PERMISSION_ALIASES
                .iter()
                .find(|(old, _)| *old == name)
                .map(|(_, new)| *new)
        })
}

/// What the registry says of a setting key.
#[derive(Debug, Clone, Copy)]
pub enum SettingLookup {
    Known(&'static SettingSpec),
    /// A `custom.*` key: any scalar, overridable.
    Custom,
    Unknown,
}

/// The spec of a key, following aliases.
pub fn lookup_setting(key: &str) -> SettingLookup {
    let canonical = canonical_setting_key(key);
    if let Some(spec) = SETTINGS.iter().find(|s| s.key == canonical) {
        SettingLookup::Known(spec)
    } else if key
        .strip_prefix("custom.")
        .is_some_and(|rest| !rest.is_empty())
    {
        SettingLookup::Custom
    } else {
        SettingLookup::Unknown
    }
}

/// The current name of a setting key (itself if it is no alias).
pub fn canonical_setting_key(key: &str) -> &str {
    SETTING_ALIASES
        .iter()
        .find(|(old, _)| *old == key)
        .map(|(_, new)| *new)
        .unwrap_or(key)
}

/// Why a value does not fit a setting's type; the message reads after the
/// key: "`order.auto_close_minutes` must be between 1 and 1440, got 1441".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingTypeError {
    #[error("must be between {min} and {max}, got {got}")]
    OutOfRange { min: i64, max: i64, got: i64 },
    #[error("must be at most {max_len} characters, got {got}")]
    TooLong { max_len: usize, got: usize },
    #[error("must be one of {}, got {got:?}", allowed.join(", "))]
    NotAllowed {
        allowed: &'static [&'static str],
        got: String,
    },
    #[error("must be a list of quoted rates such as \"18\", got {got}")]
    NotRateList { got: String },
    #[error("must be a BCP 47 language tag such as en-US, got {got:?}")]
    NotLocale { got: String },
    #[error("must be a local time HH:MM such as 04:00, got {got:?}")]
    NotTimeOfDay { got: String },
    #[error("is not a secret setting, so it takes its value in plaintext, not encrypted")]
    NotSecret,
    #[error("custom settings take a scalar, not a list")]
    ListForScalar,
    #[error("must be {expected}, got {got}")]
    WrongType {
        expected: &'static str,
        got: &'static str,
    },
}

/// Check a value against a type.
pub fn check_setting(ty: SettingType, value: &SettingValue) -> Result<(), SettingTypeError> {
    match (ty, value) {
        // A secret setting's encrypted value is judged by the secret rules
        // (`rules::setting` sees it first); any other setting is plaintext.
        (_, SettingValue::Sealed(_)) => Err(SettingTypeError::NotSecret),
        (SettingType::Bool, SettingValue::Bool(_)) => Ok(()),
        (SettingType::Int { min, max }, SettingValue::Int(i)) => {
            if (min..=max).contains(i) {
                Ok(())
            } else {
                Err(SettingTypeError::OutOfRange { min, max, got: *i })
            }
        }
        (SettingType::Text { max_len }, SettingValue::Str(s)) => {
            let n = s.chars().count();
            if n <= max_len {
                Ok(())
            } else {
                Err(SettingTypeError::TooLong { max_len, got: n })
            }
        }
        (SettingType::Enum(allowed), SettingValue::Str(s)) => {
            if allowed.contains(&s.as_str()) {
                Ok(())
            } else {
                Err(SettingTypeError::NotAllowed {
                    allowed,
                    got: s.clone(),
                })
            }
        }
        (SettingType::RateList, SettingValue::List(items)) => {
            for v in items {
                match v {
                    SettingValue::Str(s) if Rate::parse(s).is_some() => {}
                    other => {
                        return Err(SettingTypeError::NotRateList {
                            got: other.to_string(),
                        });
                    }
                }
            }
            Ok(())
        }
        (SettingType::Locale, SettingValue::Str(s)) => {
            if is_bcp47(s) {
                Ok(())
            } else {
                Err(SettingTypeError::NotLocale { got: s.clone() })
            }
        }
        (SettingType::TimeOfDay, SettingValue::Str(s)) => {
            if time_of_day(s).is_some() {
                Ok(())
            } else {
                Err(SettingTypeError::NotTimeOfDay { got: s.clone() })
            }
        }
        (SettingType::AnyScalar, SettingValue::List(_)) => Err(SettingTypeError::ListForScalar),
        (SettingType::AnyScalar, _) => Ok(()),
        (ty, v) => Err(SettingTypeError::WrongType {
            expected: describe(ty),
            got: v.type_name(),
        }),
    }
}

fn describe(ty: SettingType) -> &'static str {
    match ty {
        SettingType::Bool => "a boolean",
        SettingType::Int { .. } => "an integer",
        SettingType::Text { .. }
        | SettingType::Enum(_)
        | SettingType::Locale
        | SettingType::TimeOfDay => "a string",
        SettingType::RateList => "a list of rate strings",
        SettingType::AnyScalar => "a scalar",
    }
}

/// `HH:MM` (two digits each, 00:00–23:59) as hours and minutes.
pub fn time_of_day(s: &str) -> Option<(u32, u32)> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

/// The common shape of a BCP 47 tag: a 2–3 letter language, then subtags of
/// 2–8 letters or digits.
fn is_bcp47(s: &str) -> bool {
    let mut parts = s.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphabetic()));
    lang_ok
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_settings_are_registered() {
        for key in crate::render::DERIVED_SETTINGS {
            assert!(
                matches!(lookup_setting(key), SettingLookup::Known(s) if s.derived),
                "{key}"
            );
        }
    }

    #[test]
    fn aliases_point_at_registered_names() {
        for (_, new) in PERMISSION_ALIASES {
            assert!(PERMISSIONS.contains(new), "{new}");
        }
        for (_, new) in SETTING_ALIASES {
            assert!(SETTINGS.iter().any(|s| s.key == *new), "{new}");
        }
    }

    #[test]
    fn setting_checks() {
        let spec = |k| match lookup_setting(k) {
            SettingLookup::Known(s) => s.ty,
            _ => panic!("{k} not registered"),
        };
        assert!(check_setting(spec("order.auto_close_minutes"), &SettingValue::Int(1441)).is_err());
        assert!(check_setting(spec("order.auto_close_minutes"), &SettingValue::Int(30)).is_ok());
        assert!(check_setting(spec("tax.rounding"), &SettingValue::Str("up".into())).is_err());
        assert!(check_setting(spec("locale"), &SettingValue::Str("en-US".into())).is_ok());
        assert!(check_setting(spec("locale"), &SettingValue::Str("english".into())).is_err());
        assert!(matches!(
            lookup_setting("custom.banner"),
            SettingLookup::Custom
        ));
        assert!(matches!(lookup_setting("custom."), SettingLookup::Unknown));
        assert!(matches!(
            lookup_setting("receipt.footer_text"),
            SettingLookup::Known(_)
        ));
    }

    #[test]
    fn times_of_day() {
        assert_eq!(time_of_day("04:00"), Some((4, 0)));
        assert_eq!(time_of_day("23:59"), Some((23, 59)));
        for bad in [
            "4:00", "24:00", "12:60", "12:5", "ab:cd", "", "12:00:00", "+1:00",
        ] {
            assert_eq!(time_of_day(bad), None, "{bad}");
        }
        let day_end = match lookup_setting("store.day_end") {
            SettingLookup::Known(s) => s.ty,
            _ => panic!("store.day_end is not registered"),
        };
        assert!(check_setting(day_end, &SettingValue::Str("25:00".into())).is_err());
        assert!(check_setting(day_end, &SettingValue::Str("03:30".into())).is_ok());
    }
}
