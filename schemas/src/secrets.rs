//! Where a tenant's secret values are written and who may read them
//! (DESIGN.md §11), without any cryptography: the `release` crate encrypts
//! and decrypts; this module says which values are secret, which stores use
//! each one, and what `tenants/<t>/secrets.lock` records.
//!
//! A secret value is a user's `pin_hash` or a setting whose registry entry
//! is `secret: true`. Its *scope* is the set of stores that use it:
//! - a tenant setting: every store (`*`);
//! - a tenant user: the stores its `stores` lists (`*`: every store);
//! - a store's override setting or store user: that store.
//!
//! An encrypted value's `to` names its scope and `@escrow`; validation
//! (`secret/recipients`) holds the two equal, so a value is never readable
//! by a store that does not use it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::diff::EntityKind;
use crate::load::TenantSources;
use crate::model::{ALL_STORES, ESCROW, Sealed, Secret, SettingValue, Settings, User};
use crate::registry::is_secret_setting;
use crate::state::StoreState;
use crate::yaml::YamlPath;

/// `tenants/<t>/secrets.lock`: the recipients the tenant's encrypted values
/// and tenant-key wraps were made for, written by `fleet secret`.
pub const LOCK_FILE: &str = "secrets.lock";
/// `tenants/<t>/stores/<s>/tenant-key.age`: the tenant key, encrypted to
/// the store's recipient.
pub const TENANT_KEY_WRAP: &str = "tenant-key.age";
/// `tenants/<t>/tenant-key.escrow.age`: the tenant key, encrypted to the
/// escrow recipients.
pub const TENANT_KEY_ESCROW: &str = "tenant-key.escrow.age";

/// The first line of every binary age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// What `secrets.lock` records. `fleet secret set` encrypts to these, and
/// `fleet secret rewrap` brings them in line with `store.yaml` and
/// `fleet.yaml`, re-encrypting what was made for a recipient that changed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsLock {
    /// The tenant key's recipient (`age1…`); values used at every store
    /// are encrypted to it. Absent until the first such value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_key: Option<String>,
    /// The escrow recipients every value and the escrow wrap are made for.
    #[serde(default)]
    pub escrow: Vec<String>,
    /// Store directory → the recipient its values and tenant-key wrap are
    /// made for. A store missing here has none yet.
    #[serde(default)]
    pub stores: BTreeMap<String, String>,
}

impl SecretsLock {
    /// The lock as written: a comment saying what it is, then YAML.
    pub fn to_text(&self) -> String {
        let body = crate::yaml::to_canonical_yaml(self).expect("the lock serializes");
        format!(
            "# Written by `fleet secret`: the age recipients this tenant's secret values\n# and tenant-key wraps are encrypted to. Do not edit; run `fleet secret rewrap`.\n{body}"
        )
    }
}

/// The stores that use a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every store of the tenant, present and future: through the tenant key.
    All,
    /// These store directories.
    Stores(BTreeSet<String>),
}

impl Scope {
    /// The `to` an encrypted value of this scope carries.
    pub fn to(&self) -> Vec<String> {
        let mut to: Vec<String> = match self {
            Scope::All => vec![ALL_STORES.to_owned()],
            Scope::Stores(s) => s.iter().cloned().collect(),
        };
        to.push(ESCROW.to_owned());
        to
    }

    /// Whether `to` says exactly this scope and `@escrow`.
    pub fn matches(&self, to: &[String]) -> bool {
        let got: BTreeSet<&str> = to.iter().map(String::as_str).collect();
        let want: Vec<String> = self.to();
        got.len() == to.len() && got == want.iter().map(String::as_str).collect()
    }

    /// For messages: `every store` or `soho, tribeca`.
    pub fn describe(&self) -> String {
        match self {
            Scope::All => "every store".to_owned(),
            Scope::Stores(s) if s.is_empty() => "no store".to_owned(),
            Scope::Stores(s) => s.iter().cloned().collect::<Vec<_>>().join(", "),
        }
    }
}

/// One secret value in a tenant's sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The repo-relative file it is written in.
    pub file: String,
    /// Its YAML path in that file.
    pub path: YamlPath,
    /// For people: "user `sam`'s pin_hash", "setting `payment.terminal_key`".
    pub what: String,
    pub scope: Scope,
    pub value: SiteValue,
}

/// A secret value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteValue {
    Plain(String),
    Sealed(Sealed),
}

/// Every secret value of a tenant, in file order: tenant settings, tenant
/// users, then each store's override settings and users.
pub fn sites(t: &TenantSources) -> Vec<Site> {
    let mut out = Vec::new();
    let b = &t.base;
    if let Some(file) = b.file_of("settings") {
        settings_sites(
            &mut out,
            file,
            &YamlPath::of(&["settings"]),
            &b.settings,
            Scope::All,
        );
    }
    if let Some(file) = b.file_of("access") {
        for (i, u) in b.access.users.iter().enumerate() {
            let scope = if u.stores.iter().any(|s| s == ALL_STORES) {
                Scope::All
            } else {
                Scope::Stores(u.stores.iter().cloned().collect())
            };
            user_site(
                &mut out,
                file,
                YamlPath::of(&["access", "users"]).index(i),
                u,
                scope,
            );
        }
    }
    for s in t.stores.values() {
        let only = || Scope::Stores(BTreeSet::from([s.dir.clone()]));
        settings_sites(
            &mut out,
            &s.path,
            &YamlPath::of(&["overrides", "settings"]),
            &s.file.overrides.settings,
            only(),
        );
        for (i, u) in s.file.access.users.iter().enumerate() {
            user_site(
                &mut out,
                &s.path,
                YamlPath::of(&["access", "users"]).index(i),
                u,
                only(),
            );
        }
    }
    out
}

fn settings_sites(out: &mut Vec<Site>, file: &str, at: &YamlPath, s: &Settings, scope: Scope) {
    for (key, value) in s {
        let value = match value {
            SettingValue::Sealed(v) => SiteValue::Sealed(v.clone()),
            SettingValue::Str(v) if is_secret_setting(key) => SiteValue::Plain(v.clone()),
            // A secret setting of another type is a type error, reported
            // by the settings rules; a sealed non-secret one too.
            _ => continue,
        };
        if let SiteValue::Sealed(_) = value
            && !is_secret_setting(key)
        {
            continue;
        }
        out.push(Site {
            file: file.to_owned(),
            path: at.key(key.clone()),
            what: format!("setting `{key}`"),
            scope: scope.clone(),
            value,
        });
    }
}

fn user_site(out: &mut Vec<Site>, file: &str, at: YamlPath, u: &User, scope: Scope) {
    let Some(pin) = &u.pin_hash else { return };
    out.push(Site {
        file: file.to_owned(),
        path: at.key("pin_hash"),
        what: format!("user `{}`'s pin_hash", u.id),
        scope,
        value: match pin {
            Secret::Plain(p) => SiteValue::Plain(p.clone()),
            Secret::Sealed(s) => SiteValue::Sealed(s.clone()),
        },
    });
}

/// Every encrypted value of a rendered state, with its entity.
fn sealed_values(state: &StoreState) -> impl Iterator<Item = (EntityKind, &str, &Sealed)> {
    let settings = state.settings.iter().filter_map(|(k, v)| match v {
        SettingValue::Sealed(s) => Some((EntityKind::Setting, k.as_str(), s)),
        _ => None,
    });
    let users = state.access.users.iter().filter_map(|u| match &u.pin_hash {
        Some(Secret::Sealed(s)) => Some((EntityKind::User, u.id.as_str(), s)),
        _ => None,
    });
    settings.chain(users)
}

/// Whether a rendered state has a value encrypted to the tenant key (its
/// release then carries the store's wrap).
pub fn uses_tenant_key(state: &StoreState) -> bool {
    sealed_values(state).any(|(_, _, s)| s.to_all())
}

/// The entities (`kind id`) of a rendered state whose encrypted value is
/// not meant for the store `slug`: a release must carry none.
pub fn foreign_values(state: &StoreState, slug: &str) -> Vec<String> {
    sealed_values(state)
        .filter(|(_, _, s)| !s.is_for(slug))
        .map(|(k, id, _)| format!("{k} {id}"))
        .collect()
}

/// Why an encrypted value's `age` is not the base64 of an age file, if it
/// is not.
pub fn encoding_problem(sealed: &Sealed) -> Option<String> {
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(sealed.age.as_bytes()) {
        Err(e) => Some(format!("`age` is not standard padded base64 ({e})")),
        Ok(bytes) if !bytes.starts_with(AGE_MAGIC) => {
            Some("`age` does not hold an age file (it must begin `age-encryption.org/v1`)".into())
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_matches_exactly_its_stores_and_escrow() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let two = Scope::Stores(BTreeSet::from(["soho".into(), "noho".into()]));
        assert!(two.matches(&s(&["soho", "noho", "@escrow"])));
        assert!(two.matches(&s(&["@escrow", "noho", "soho"])));
        assert!(!two.matches(&s(&["soho", "@escrow"])));
        assert!(!two.matches(&s(&["soho", "noho"])));
        assert!(!two.matches(&s(&["soho", "noho", "tribeca", "@escrow"])));
        assert!(!two.matches(&s(&["soho", "noho", "@escrow", "@escrow"])));
        assert!(!two.matches(&s(&["*", "@escrow"])));
        assert!(Scope::All.matches(&s(&["*", "@escrow"])));
        assert!(!Scope::All.matches(&s(&["*", "soho", "@escrow"])));
        assert_eq!(two.to(), s(&["noho", "soho", "@escrow"]));
    }

    #[test]
    fn encoding_is_base64_of_an_age_file() {
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let sealed = |age: String| Sealed {
            age,
            to: vec!["*".into(), "@escrow".into()],
        };
        assert_eq!(
            encoding_problem(&sealed(b64(b"age-encryption.org/v1\n-> X25519 x\n"))),
            None
        );
        assert!(encoding_problem(&sealed("not base64!".into())).is_some());
        assert!(encoding_problem(&sealed(b64(b"hello"))).is_some());
    }
}
