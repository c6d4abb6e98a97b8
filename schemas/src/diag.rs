//! Diagnostics: what is wrong, by which rule, and exactly where.
//!
//! Every problem found in a fleet repo becomes one [`Diagnostic`] with a
//! stable rule id from [`RULES`], the file path relative to the repo root,
//! a 1-based line and column, and a one-line message. Tools that read
//! `fleet validate --format json` may rely on the rule ids.

use std::fmt;

use serde::Serialize;

/// A rule id such as `ref/unknown-category`; always one of [`RULES`].
pub type Rule = &'static str;

/// Every rule id `fleet validate` can report, with what it guards.
pub const RULES: &[(Rule, &str)] = &[
    // files and YAML
    (
        "file/not-regular",
        "only regular files count: no symlinks, submodules or special files",
    ),
    ("file/too-large", "a source file is at most 4 MiB"),
    ("file/not-utf8", "sources are UTF-8 text"),
    ("file/unreadable", "the file could not be read"),
    (
        "file/ignored",
        "a .yml file where Fleet reads .yaml files is ignored (a warning)",
    ),
    (
        "file/missing",
        "a required file is missing (fleet.yaml, store.yaml, a tenant base)",
    ),
    ("yaml/syntax", "the file is not well-formed YAML"),
    ("yaml/duplicate-key", "a mapping repeats a key"),
    (
        "yaml/multiple-documents",
        "a source file holds one YAML document",
    ),
    ("size/depth", "YAML nesting is at most 64 levels deep"),
    (
        "size/alias",
        "anchors and aliases expand within a fixed budget",
    ),
    (
        "size/too-many-nodes",
        "a file holds at most a fixed number of YAML nodes",
    ),
    // shape
    (
        "schema/api-version",
        "every file starts with `apiVersion: fleet/v1`",
    ),
    (
        "schema/kind",
        "every file names the right `kind` (Fleet, Tenant, Store)",
    ),
    (
        "schema/unknown-field",
        "a field that the format does not have",
    ),
    ("schema/missing-field", "a required field is missing"),
    ("schema/type", "a value has the wrong type"),
    // rule group 1
    ("id/not-slug", "ids are slugs: ^[a-z0-9][a-z0-9-]{0,62}$"),
    ("id/duplicate", "an id is used twice in its namespace"),
    (
        "id/dir-mismatch",
        "the tenant or store directory name equals its id",
    ),
    (
        "tenant/duplicate-section",
        "a tenant section appears in one file only",
    ),
    (
        "tenant/missing-info",
        "the tenant base has a `tenant` section",
    ),
    (
        "tenant/currency",
        "currency is an ISO 4217 code such as USD",
    ),
    (
        "tenant/timezone",
        "a time zone is an IANA name such as America/New_York",
    ),
    (
        "entity/name",
        "an entity's name is not blank and at most 500 characters",
    ),
    ("device/address", "a device has an address"),
    // rule group 2
    ("ref/unknown-category", "an item's category exists"),
    ("ref/unknown-tax", "an item's taxes exist"),
    (
        "ref/unknown-modifier-group",
        "an item's modifier groups exist",
    ),
    (
        "ref/unknown-station",
        "routing, items and devices name existing stations",
    ),
    (
        "ref/unknown-permission",
        "permissions come from the registry",
    ),
    (
        "ref/unknown-role",
        "a user's role and a role's `inherits` exist",
    ),
    ("ref/role-cycle", "role inheritance has no cycles"),
    (
        "ref/unknown-store",
        "a user's `stores` are \"*\" or existing store ids",
    ),
    (
        "ref/unknown-entity",
        "every id in a store's prices, absent, tax_rates and routing exists",
    ),
    // rule group 3
    (
        "money/not-integer",
        "money is an integer of minor units, never a float or string",
    ),
    ("money/negative", "money is at least 0"),
    ("money/too-large", "money is below 10^12 minor units"),
    (
        "money/zero-discount",
        "an amount discount takes more than 0 off",
    ),
    // rule group 4
    (
        "rate/unquoted",
        "rates are quoted strings, never bare numbers",
    ),
    (
        "rate/format",
        "rates look like \"8.875\": up to 3 digits, up to 4 decimals",
    ),
    (
        "rate/range",
        "tax rates are 0–100; percent discounts are above 0 and at most 100",
    ),
    (
        "discount/kind-fields",
        "percent discounts have `rate`, amount discounts `amount`",
    ),
    // rule group 5
    (
        "modifier/empty-group",
        "a modifier group has at least one modifier",
    ),
    ("modifier/min-max", "a modifier group has 0 ≤ min ≤ max"),
    (
        "modifier/max-bound",
        "a modifier group allows at most 50 modifiers per order line (`max` ≤ 50)",
    ),
    (
        "modifier/min-exceeds-count",
        "a group's min is at most its number of modifiers",
    ),
    (
        "modifier/too-many-defaults",
        "a group has at most `max` default modifiers",
    ),
    // rule group 6
    ("item/variations", "an item has 1 to 250 variations"),
    // rule group 7
    (
        "render/absent-item-sold",
        "no price override for what a store does not sell: an id it lists absent, or a variation whose item is absent or has every variation absent",
    ),
    (
        "render/modifier-group-starved",
        "a modifier group keeps at least one modifier, and at least `min`, sold at every store",
    ),
    // rule group 8
    (
        "routing/unrouted-item",
        "every sellable item reaches at least one station at every store",
    ),
    (
        "routing/station-without-device",
        "every station used at a store has a device there",
    ),
    // rule group 9
    (
        "user/plaintext-pin",
        "PINs are never committed in plaintext",
    ),
    ("user/pin-hash", "pin_hash is an argon2id PHC string"),
    (
        "user/no-manager",
        "every store has at least one user who can void orders",
    ),
    // rule group 10
    (
        "settings/unknown-key",
        "setting keys come from the registry, or start with custom.",
    ),
    ("settings/type", "a setting's value has the registered type"),
    (
        "settings/not-overridable",
        "a store overrides only settings marked overridable",
    ),
    (
        "settings/duplicate",
        "a setting is set once per map, under its current name or its old one, not both",
    ),
    // compatibility
    (
        "compat/renamed",
        "a setting or permission is written under its old name (a warning)",
    ),
    // rule group 11
    (
        "store/creates-entity",
        "a store file references catalog entities; it cannot create them",
    ),
    // secrets (DESIGN.md §11)
    (
        "secret/recipient",
        "a store's recipient is an age X25519 recipient (age1…)",
    ),
    (
        "secret/escrow",
        "fleet.yaml's escrow recipients are age X25519 recipients (age1…)",
    ),
    (
        "secret/plaintext",
        "a secret value is encrypted (`fleet secret set`): an error once fleet.yaml names escrow, a warning before",
    ),
    (
        "secret/recipients",
        "an encrypted value's `to` names exactly the stores that use it (`*` for every store) and `@escrow`",
    ),
    (
        "secret/encoding",
        "an encrypted value is {age, to} with `age` the base64 of an age file",
    ),
    (
        "secret/rewrap",
        "the recipients a tenant's secrets are encrypted to (secrets.lock) match store.yaml and fleet.yaml",
    ),
    (
        "secret/encrypted",
        "the edge takes secret values decrypted (the reconciler decrypts them)",
    ),
    // waves, windows and effective time (DESIGN.md §12)
    (
        "rollout/waves",
        "a rollout has waves, each named once; only the last may be a catch-all (no select, no stores)",
    ),
    (
        "rollout/max-stores",
        "max_stores is a number of stores from 1, or a percentage from 1% to 100%",
    ),
    (
        "rollout/duration",
        "bake is a duration such as 30m, 2h or 1d, at most 30 days",
    ),
    (
        "rollout/abort",
        "abort.failed_percent is from 1 to 100 and abort.min_stores at least 1",
    ),
    (
        "rollout/unknown-store",
        "a wave's stores: names stores of its tenant",
    ),
    (
        "rollout/selector-unmatched",
        "a wave's label selector matches no store (a warning)",
    ),
    (
        "rollout/uncovered",
        "every store is in a wave: waves that leave stores out end with a catch-all wave",
    ),
    (
        "store/labels",
        "store labels are short slugs: keys [a-z0-9._/-], values [A-Za-z0-9._-], at most 63 characters",
    ),
    (
        "windows/time",
        "a window's from and to are 24-hour store-local times \"HH:MM\"",
    ),
    (
        "windows/when",
        "a deny window names days of the week or dates, and from differs from to",
    ),
    (
        "windows/always-closed",
        "deny windows leave some time of the week open, or no release would ever apply",
    ),
    (
        "windows/timezone",
        "a store with windows has a time zone known to the time zone database",
    ),
];

/// Look up a rule id by name, for ids carried in decode error messages.
pub fn rule_named(name: &str) -> Option<Rule> {
    RULES.iter().find(|(r, _)| *r == name).map(|(r, _)| *r)
}

/// How bad a finding is: errors fail validation, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, pointing at a file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Diagnostic {
    /// Repo-relative path with `/` separators.
    pub file: String,
    /// 1-based; 0 when the finding is about the file as a whole.
    pub line: usize,
    /// 1-based; 0 when the finding is about the file as a whole.
    pub column: usize,
    pub severity: Severity,
    pub rule: Rule,
    pub message: String,
}

impl Diagnostic {
    pub fn error(rule: Rule, file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line: 0,
            column: 0,
            severity: Severity::Error,
            rule,
            message: message.into(),
        }
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// A GitHub Actions workflow command that annotates the line in a PR.
    pub fn github_annotation(&self) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!(
            "::{level} file={},line={},col={},title={}::{}",
            escape_property(&self.file),
            self.line.max(1),
            self.column.max(1),
            escape_property(self.rule),
            escape_data(&self.message)
        )
    }
}

impl fmt::Display for Diagnostic {
    /// `path:line:column: error[rule]: message`, the shape compilers use so
    /// editors and terminals can jump to it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {level}[{}]: {}",
            self.file, self.line, self.column, self.rule, self.message
        )
    }
}

// GitHub's workflow command escaping.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_shaped() {
        let mut seen = std::collections::BTreeSet::new();
        for (rule, text) in RULES {
            assert!(seen.insert(*rule), "{rule} listed twice");
            assert!(rule.contains('/') && !text.is_empty(), "{rule}");
        }
    }

    #[test]
    fn github_annotation_escapes() {
        let d = Diagnostic::error("ref/unknown-tax", "tenants/a,b.yaml", "50% off\nnow").at(3, 7);
        assert_eq!(
            d.github_annotation(),
            "::error file=tenants/a%2Cb.yaml,line=3,col=7,title=ref/unknown-tax::50%25 off%0Anow"
        );
    }
}

#[cfg(test)]
mod doc_tests {
    /// docs/validation-rules.md lists every rule id (operators look there).
    #[test]
    fn every_rule_is_documented() {
        let doc = include_str!("../../docs/validation-rules.md");
        for (rule, _) in super::RULES {
            assert!(
                doc.contains(&format!("`{rule}`")),
                "{rule} missing from docs/validation-rules.md"
            );
        }
    }
}
