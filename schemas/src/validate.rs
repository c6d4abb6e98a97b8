//! Semantic validation: the rules of POS-MODEL.md. Every finding names its
//! rule, file and the YAML path of the offending node; positions are
//! resolved at the end, only for the files that have findings.
//!
//! What one entity must satisfy on its own is judged by [`crate::rules`],
//! which the edge applies to the same entities; this module places those
//! violations in the repo and adds what needs more than one entity
//! (references, uniqueness, store scoping, the rendered store) or depends on
//! where an entity is written.
//!
//! [`check_repo`] is what `fleet validate` runs: load, then validate, with
//! every problem of the repo in one sorted list.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::diag::{Diagnostic, Rule, Severity};
use crate::load::{FleetRepo, SourceTree, StoreSource, TenantBase, TenantSources, load_repo};
use crate::model::{Modifier, ModifierGroup, Settings, User};
use crate::primitives::Id;
use crate::registry::{
    ADMIN_ALL, MANAGER_PERMISSION, SettingLookup, canonical_permission, canonical_setting_key,
    lookup_setting,
};
use crate::render::{self, DERIVED_SETTINGS};
use crate::rules::{self, Violation};
use crate::yaml::{PathIndex, YamlPath};

/// Load and validate a whole repo: every finding, sorted by file and position.
pub fn check_repo(tree: &dyn SourceTree) -> (FleetRepo, Vec<Diagnostic>) {
    let (repo, mut diags) = load_repo(tree);
    diags.extend(validate_repo(&repo));
    diags.sort();
    diags.dedup();
    (repo, diags)
}

/// Whether any finding is an error (warnings do not fail validation).
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}

/// Validate a loaded repo.
pub fn validate_repo(repo: &FleetRepo) -> Vec<Diagnostic> {
    // Tenants are independent: validate them over the machine's cores and
    // keep the findings in tenant order.
    let tenants: Vec<&TenantSources> = repo
        .tenants
        .values()
        .filter(|t| !t.base_incomplete)
        .collect();
    let escrow = repo.fleet.as_ref().map_or(&[][..], |f| f.escrow());
    let per_tenant = crate::par::map_in_order(&tenants, 1, |tenant| {
        let mut f = Findings::default();
        validate_tenant(&mut f, tenant);
        validate_secrets(&mut f, tenant, escrow);
        f
    });
    let mut f = Findings::default();
    for (i, r) in escrow.iter().enumerate() {
        if !rules::is_age_recipient(r) {
            f.err(
                "secret/escrow",
                "fleet.yaml",
                YamlPath::of(&["secrets", "escrow"]).index(i),
                format!("escrow recipient `{r}` is not an age X25519 recipient (age1 and 58 bech32 characters); make one with `age-keygen` and keep its identity offline"),
            );
        }
    }
    for t in per_tenant {
        f.list.extend(t.list);
    }
    f.resolve(repo)
}

// ---------------------------------------------------------------- findings

struct Finding {
    rule: Rule,
    file: String,
    path: YamlPath,
    /// Point at the key of the entry rather than its value.
    at_key: bool,
    message: String,
    severity: Severity,
}

#[derive(Default)]
struct Findings {
    list: Vec<Finding>,
}

impl Findings {
    fn err(&mut self, rule: Rule, file: &str, path: YamlPath, message: impl Into<String>) {
        self.push(rule, file, path, false, message.into(), Severity::Error);
    }

    fn err_key(&mut self, rule: Rule, file: &str, path: YamlPath, message: impl Into<String>) {
        self.push(rule, file, path, true, message.into(), Severity::Error);
    }

    fn warn(&mut self, rule: Rule, file: &str, path: YamlPath, message: impl Into<String>) {
        self.push(rule, file, path, false, message.into(), Severity::Warning);
    }

    /// A permission written under its old name: a warning, since it still
    /// works (roles' `permissions` and discounts' `requires`).
    fn renamed_permission(&mut self, file: &str, at: YamlPath, perm: &str) {
        if let Some(canon) = canonical_permission(perm)
            && canon != perm
        {
            self.warn(
                "compat/renamed",
                file,
                at,
                format!("permission `{perm}` was renamed `{canon}`; the old name still works"),
            );
        }
    }

    /// What [`crate::rules`] found in the entity at `at` in `file`.
    fn violations(&mut self, file: &str, at: &YamlPath, violations: Vec<Violation>) {
        for v in violations {
            // In the repo, encrypted is what a secret value should be.
            if v.rule == rules::ENCRYPTED_AT_EDGE {
                continue;
            }
            let path = at.join(&v.field);
            // A modifier or variation listed twice in its entity was already
            // reported by the catalog namespace, which says where the first is.
            if v.rule == "id/duplicate"
                && self
                    .list
                    .iter()
                    .any(|x| x.rule == v.rule && x.file == file && x.path == path)
            {
                continue;
            }
            // A plaintext `pin:` has a value we never keep: point at its key.
            let at_key = v.rule == "user/plaintext-pin";
            self.push(v.rule, file, path, at_key, v.message, Severity::Error);
        }
    }

    fn push(
        &mut self,
        rule: Rule,
        file: &str,
        path: YamlPath,
        at_key: bool,
        message: String,
        severity: Severity,
    ) {
        self.list.push(Finding {
            rule,
            file: file.to_owned(),
            path,
            at_key,
            message,
            severity,
        });
    }

    fn resolve(self, repo: &FleetRepo) -> Vec<Diagnostic> {
        let mut indexes: HashMap<&str, PathIndex> = HashMap::new();
        self.list
            .into_iter()
            .map(|f| {
                let (line, column) = match repo.texts.get(&f.file) {
                    Some(text) => {
                        let idx = indexes
                            .entry(
                                repo.texts
                                    .get_key_value(&f.file)
                                    .map(|(k, _)| k.as_str())
                                    .unwrap_or(""),
                            )
                            .or_insert_with(|| PathIndex::build(text));
                        if f.at_key {
                            idx.locate_key(&f.path)
                        } else {
                            idx.locate(&f.path)
                        }
                    }
                    None => (0, 0),
                };
                Diagnostic {
                    file: f.file,
                    line,
                    column,
                    severity: f.severity,
                    rule: f.rule,
                    message: f.message,
                }
            })
            .collect()
    }
}

// ---------------------------------------------------------------- tenant

/// Where a tenant catalog id was defined.
#[derive(Clone)]
struct Defined {
    kind: &'static str,
    path: YamlPath,
}

/// The tenant's id tables, built once and shared by the store checks.
#[derive(Default)]
struct Catalog {
    /// One namespace for taxes, categories, groups, modifiers, items, variations, discounts.
    ids: HashMap<String, Defined>,
    /// Variation id → its item id.
    variation_item: HashMap<String, String>,
    roles: BTreeMap<String, Vec<String>>,
    stations: BTreeSet<String>,
    tenant_users: BTreeSet<String>,
}

impl Catalog {
    fn kind_of(&self, id: &str) -> Option<&'static str> {
        self.ids.get(id).map(|d| d.kind)
    }
}

fn validate_tenant(f: &mut Findings, t: &TenantSources) {
    let b = &t.base;
    let mut cat = Catalog::default();
    let file = |section: &str| b.file_of(section).unwrap_or("").to_owned();

    match &b.info {
        None => f.err(
            "tenant/missing-info",
            &format!("tenants/{}", t.dir),
            YamlPath::root(),
            "the tenant base has no `tenant:` section (id, name, currency, timezone)",
        ),
        Some(info) => {
            let fl = file("tenant");
            let p = YamlPath::of(&["tenant"]);
            f.violations(&fl, &p, rules::tenant_info(info));
            if info.id.as_str() != t.dir {
                f.err(
                    "id/dir-mismatch",
                    &fl,
                    p.key("id"),
                    format!(
                        "tenant id `{}` differs from its directory tenants/{}",
                        info.id, t.dir
                    ),
                );
            }
        }
    }

    validate_settings(
        f,
        &file("settings"),
        &YamlPath::of(&["settings"]),
        &b.settings,
        false,
    );
    validate_menu(f, b, &mut cat);
    validate_kitchen(f, b, &mut cat);
    validate_access(f, t, &mut cat);

    let mut store_users: HashMap<String, String> = HashMap::new();
    for store in t.stores.values() {
        validate_store(f, t, &cat, store, &mut store_users);
    }
    validate_rollout(f, t);
    if let Some(w) = &b.windows {
        validate_windows(f, &file("windows"), &YamlPath::of(&["windows"]), w);
    }
    // A store without its own time zone uses the tenant's.
    let windows_at_tenant_zone = t.stores.values().any(|s| {
        s.file.store.timezone.is_none()
            && s.file
                .windows
                .as_ref()
                .or(b.windows.as_ref())
                .is_some_and(|w| !w.deny.is_empty())
    });
    if windows_at_tenant_zone
        && let Some(info) = &b.info
        && rules::looks_like_timezone(&info.timezone)
        && crate::rollout::time_zone(&info.timezone).is_none()
    {
        f.err(
            "windows/timezone",
            &file("tenant"),
            YamlPath::of(&["tenant", "timezone"]),
            format!("time zone `{}` is not in the time zone database, so the stores' windows could not be evaluated", info.timezone),
        );
    }
}

fn validate_settings(
    f: &mut Findings,
    file: &str,
    base: &YamlPath,
    settings: &Settings,
    store: bool,
) {
    for (key, value) in settings {
        let path = base.key(key.clone());
        if DERIVED_SETTINGS.contains(&key.as_str()) {
            f.err_key(
                "settings/unknown-key",
                file,
                path,
                format!("`{key}` is set from the tenant and store sections, not in settings"),
            );
            continue;
        }
        let canonical = canonical_setting_key(key);
        if canonical != key {
            if settings.contains_key(canonical) {
                f.err_key("settings/duplicate", file, path.clone(), format!("`{key}` is the old name of `{canonical}`, which is set here too; keep only `{canonical}`"));
            } else {
                f.warn(
                    "compat/renamed",
                    file,
                    path.clone(),
                    format!("setting `{key}` was renamed `{canonical}`; the old name still works"),
                );
            }
        }
        if store
            && let SettingLookup::Known(spec) = lookup_setting(key)
            && !spec.store_overridable
        {
            f.err_key(
                "settings/not-overridable",
                file,
                path.clone(),
                format!(
                    "`{key}` is set by the tenant for every store; a store may not override it"
                ),
            );
        }
        // The rule's `key` field is the entry's key, `value` its value.
        for v in rules::setting(key, value) {
            if v.rule == rules::ENCRYPTED_AT_EDGE {
                continue;
            }
            if v.field == YamlPath::of(&["key"]) {
                f.err_key(v.rule, file, path.clone(), v.message);
            } else {
                f.err(v.rule, file, path.clone(), v.message);
            }
        }
    }
}

/// "a" or "an" before a word.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn define(
    f: &mut Findings,
    cat: &mut Catalog,
    file: &str,
    path: YamlPath,
    id: &Id,
    kind: &'static str,
) {
    if let Some(prev) = cat.ids.get(id.as_str()) {
        f.err(
            "id/duplicate",
            file,
            path,
            format!(
                "{kind} id `{id}` is already used by {} {} at {}; catalog ids share one namespace",
                article(prev.kind),
                prev.kind,
                prev.path
            ),
        );
    } else {
        cat.ids.insert(id.0.clone(), Defined { kind, path });
    }
}

fn validate_menu(f: &mut Findings, b: &TenantBase, cat: &mut Catalog) {
    let Some(file) = b.file_of("menu").map(str::to_owned) else {
        return;
    };
    let file = file.as_str();
    let m = &b.menu;
    let root = YamlPath::of(&["menu"]);

    for (i, t) in m.taxes.iter().enumerate() {
        let p = root.key("taxes").index(i);
        define(f, cat, file, p.key("id"), &t.id, "tax");
        f.violations(file, &p, rules::tax(t));
    }
    for (i, c) in m.categories.iter().enumerate() {
        let p = root.key("categories").index(i);
        define(f, cat, file, p.key("id"), &c.id, "category");
        f.violations(file, &p, rules::category(c));
    }
    for (i, g) in m.modifier_groups.iter().enumerate() {
        let p = root.key("modifier_groups").index(i);
        define(f, cat, file, p.key("id"), &g.id, "modifier group");
        for (j, md) in g.modifiers.iter().enumerate() {
            let mp = p.key("modifiers").index(j);
            define(f, cat, file, mp.key("id"), &md.id, "modifier");
        }
        f.violations(file, &p, rules::modifier_group(g));
    }
    for (i, it) in m.items.iter().enumerate() {
        let p = root.key("items").index(i);
        define(f, cat, file, p.key("id"), &it.id, "item");
        for (j, v) in it.variations.iter().enumerate() {
            let vp = p.key("variations").index(j);
            define(f, cat, file, vp.key("id"), &v.id, "variation");
            cat.variation_item.insert(v.id.0.clone(), it.id.0.clone());
        }
        f.violations(file, &p, rules::item(it));
    }
    for (i, d) in m.discounts.iter().enumerate() {
        let p = root.key("discounts").index(i);
        define(f, cat, file, p.key("id"), &d.id, "discount");
        f.violations(file, &p, rules::discount(d));
        if let Some(perm) = &d.requires {
            f.renamed_permission(file, p.key("requires"), perm);
        }
    }
    // References need every id defined first.
    for (i, it) in m.items.iter().enumerate() {
        let p = root.key("items").index(i);
        if cat.kind_of(it.category.as_str()) != Some("category") {
            f.err(
                "ref/unknown-category",
                file,
                p.key("category"),
                format!(
                    "item `{}` names category `{}`, which is not defined",
                    it.id, it.category
                ),
            );
        }
        for (j, tax) in it.taxes.iter().enumerate() {
            if cat.kind_of(tax.as_str()) != Some("tax") {
                f.err(
                    "ref/unknown-tax",
                    file,
                    p.key("taxes").index(j),
                    format!("item `{}` names tax `{tax}`, which is not defined", it.id),
                );
            }
        }
        for (j, g) in it.modifier_groups.iter().enumerate() {
            if cat.kind_of(g.as_str()) != Some("modifier group") {
                f.err(
                    "ref/unknown-modifier-group",
                    file,
                    p.key("modifier_groups").index(j),
                    format!(
                        "item `{}` names modifier group `{g}`, which is not defined",
                        it.id
                    ),
                );
            }
        }
    }
}

fn validate_kitchen(f: &mut Findings, b: &TenantBase, cat: &mut Catalog) {
    let kfile = b.file_of("kitchen").unwrap_or("").to_owned();
    let root = YamlPath::of(&["kitchen"]);
    for (i, s) in b.kitchen.stations.iter().enumerate() {
        let p = root.key("stations").index(i);
        f.violations(&kfile, &p, rules::station(s));
        if !cat.stations.insert(s.id.0.clone()) {
            f.err(
                "id/duplicate",
                &kfile,
                p.key("id"),
                format!("station id `{}` is defined twice", s.id),
            );
        }
    }
    let r = &b.kitchen.routing;
    for (i, s) in r.default.iter().enumerate() {
        if !cat.stations.contains(s.as_str()) {
            f.err(
                "ref/unknown-station",
                &kfile,
                root.key("routing").key("default").index(i),
                format!("routing default names station `{s}`, which is not defined"),
            );
        }
    }
    for (c, targets) in &r.categories {
        let p = root.key("routing").key("categories").key(c.0.clone());
        if cat.kind_of(c.as_str()) != Some("category") {
            f.err_key(
                "ref/unknown-category",
                &kfile,
                p.clone(),
                format!("routing names category `{c}`, which is not defined"),
            );
        }
        for (i, s) in targets.iter().enumerate() {
            if !cat.stations.contains(s.as_str()) {
                f.err(
                    "ref/unknown-station",
                    &kfile,
                    p.index(i),
                    format!("routing for `{c}` names station `{s}`, which is not defined"),
                );
            }
        }
    }
    // Item stations are checked here, once stations are known.
    if let Some(mfile) = b.file_of("menu") {
        for (i, it) in b.menu.items.iter().enumerate() {
            for (j, s) in it.stations.iter().enumerate() {
                if !cat.stations.contains(s.as_str()) {
                    f.err(
                        "ref/unknown-station",
                        mfile,
                        YamlPath::of(&["menu", "items"])
                            .index(i)
                            .key("stations")
                            .index(j),
                        format!("item `{}` names station `{s}`, which is not defined", it.id),
                    );
                }
            }
        }
    }
}

fn validate_access(f: &mut Findings, t: &TenantSources, cat: &mut Catalog) {
    let b = &t.base;
    let afile = b.file_of("access").unwrap_or("").to_owned();
    let root = YamlPath::of(&["access"]);
    for (i, r) in b.access.roles.iter().enumerate() {
        let p = root.key("roles").index(i);
        f.violations(&afile, &p, rules::role(r));
        if cat.roles.contains_key(r.id.as_str()) {
            f.err(
                "id/duplicate",
                &afile,
                p.key("id"),
                format!("role id `{}` is defined twice", r.id),
            );
        }
        cat.roles.insert(
            r.id.0.clone(),
            r.inherits.iter().map(|i| i.0.clone()).collect(),
        );
        for (j, perm) in r.permissions.iter().enumerate() {
            f.renamed_permission(&afile, p.key("permissions").index(j), perm);
        }
    }
    for (i, r) in b.access.roles.iter().enumerate() {
        for (j, parent) in r.inherits.iter().enumerate() {
            if !cat.roles.contains_key(parent.as_str()) {
                f.err(
                    "ref/unknown-role",
                    &afile,
                    root.key("roles").index(i).key("inherits").index(j),
                    format!("role `{}` inherits `{parent}`, which is not defined", r.id),
                );
            }
        }
        if let Some(cycle) = find_cycle(&cat.roles, r.id.as_str()) {
            f.err(
                "ref/role-cycle",
                &afile,
                root.key("roles").index(i).key("inherits"),
                format!(
                    "role inheritance goes round in a circle: {}",
                    cycle.join(" → ")
                ),
            );
        }
    }
    let store_ids: BTreeSet<&str> = t.store_dirs.iter().map(String::as_str).collect();
    for (i, u) in b.access.users.iter().enumerate() {
        let p = root.key("users").index(i);
        if !cat.tenant_users.insert(u.id.0.clone()) {
            f.err(
                "id/duplicate",
                &afile,
                p.key("id"),
                format!("user id `{}` is defined twice", u.id),
            );
        }
        validate_user(f, &afile, &p, u, cat);
        if u.stores.is_empty() {
            f.warn(
                "ref/unknown-store",
                &afile,
                p.clone(),
                format!(
                    "user `{}` has no `stores` and so works nowhere; use [\"*\"] for every store",
                    u.id
                ),
            );
        }
        for (j, s) in u.stores.iter().enumerate() {
            if s != "*" && !store_ids.contains(s.as_str()) {
                f.err(
                    "ref/unknown-store",
                    &afile,
                    p.key("stores").index(j),
                    format!(
                        "user `{}` works at store `{s}`, which does not exist in tenant {}",
                        u.id, t.dir
                    ),
                );
            }
        }
    }
}

/// The first cycle reachable from `start` that comes back to `start`
/// through another role: a role inheriting from itself is a rule of the
/// role alone ([`rules::role`]).
fn find_cycle(roles: &BTreeMap<String, Vec<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        roles: &BTreeMap<String, Vec<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in roles.get(at).into_iter().flatten().filter(|n| *n != at) {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(roles, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    let mut seen = BTreeSet::new();
    walk(roles, start, start, &mut path, &mut seen).then_some(path)
}

fn validate_user(f: &mut Findings, file: &str, p: &YamlPath, u: &User, cat: &Catalog) {
    f.violations(file, p, rules::user(u));
    if !cat.roles.contains_key(u.role.as_str()) {
        f.err(
            "ref/unknown-role",
            file,
            p.key("role"),
            format!(
                "user `{}` has role `{}`, which is not defined",
                u.id, u.role
            ),
        );
    }
    // A user may exist at the store without a PIN, but a repo gives every
    // user one: nobody else can set it.
    if u.pin_hash.is_none() && !u.plaintext_pin {
        f.err(
            "user/pin-hash",
            file,
            p.clone(),
            format!(
                "user `{}` has no `pin_hash` (make one with `fleet hash-pin`)",
                u.id
            ),
        );
    }
}

// ---------------------------------------------------------------- secrets

/// DESIGN.md §11: every secret value encrypted once escrow is named, each
/// encrypted value readable by exactly the stores that use it and escrow,
/// and the recipients of `secrets.lock` in line with the sources.
fn validate_secrets(f: &mut Findings, t: &TenantSources, escrow: &[String]) {
    use crate::secrets::{Scope, SiteValue, sites};
    let mut any_sealed = false;
    let mut any_all = false;
    for site in sites(t) {
        let (file, path) = (site.file.as_str(), site.path.clone());
        match &site.value {
            SiteValue::Plain(_) => {
                let msg = format!(
                    "{} is in plaintext; encrypt it with `fleet secret set {file} {}` (or every plaintext value at once with `fleet secret encrypt-all`)",
                    site.what,
                    dotted(&site.path, t, file),
                );
                if escrow.is_empty() {
                    f.warn(
                        "secret/plaintext",
                        file,
                        path,
                        format!("{msg}; this is an error once fleet.yaml names escrow recipients (secrets.escrow)"),
                    );
                } else {
                    f.err("secret/plaintext", file, path, msg);
                }
            }
            SiteValue::Sealed(sealed) => {
                any_sealed = true;
                any_all |= sealed.to_all();
                if let Some(why) = crate::secrets::encoding_problem(sealed) {
                    f.err(
                        "secret/encoding",
                        file,
                        path.key("age"),
                        format!("{}: {why}", site.what),
                    );
                }
                if escrow.is_empty() {
                    f.err(
                        "secret/recipients",
                        file,
                        path.clone(),
                        format!("{} is encrypted but fleet.yaml names no escrow recipients (secrets.escrow): nobody could recover or re-encrypt it", site.what),
                    );
                }
                for (i, to) in sealed.to.iter().enumerate() {
                    let known = to == crate::model::ALL_STORES
                        || to == crate::model::ESCROW
                        || t.store_dirs.contains(to);
                    if !known {
                        f.err(
                            "secret/recipients",
                            file,
                            path.key("to").index(i),
                            format!("{} is encrypted for `{to}`, which is no store of tenant {} (`to` names store directories, `*` or `@escrow`)", site.what, t.dir),
                        );
                    }
                }
                if !site.scope.matches(&sealed.to) {
                    let want = match &site.scope {
                        Scope::All => "every store (`*`)".to_owned(),
                        other => other.describe(),
                    };
                    f.err(
                        "secret/recipients",
                        file,
                        path.key("to"),
                        format!(
                            "{} is used at {want} but encrypted for [{}]; `to` must be {:?}: run `fleet secret rewrap --identity ESCROW-KEY`, or set the value again",
                            site.what,
                            sealed.to.join(", "),
                            site.scope.to(),
                        ),
                    );
                }
            }
        }
    }
    if any_sealed {
        validate_lock(f, t, escrow, any_all);
    }
}

/// The `secret/rewrap` warnings: what `fleet secret rewrap` would change.
fn validate_lock(f: &mut Findings, t: &TenantSources, escrow: &[String], any_all: bool) {
    let lock_path = format!("tenants/{}/{}", t.dir, crate::secrets::LOCK_FILE);
    let Some(lock) = &t.secrets_lock else {
        f.warn(
            "secret/rewrap",
            &lock_path,
            YamlPath::root(),
            format!("tenant {} has encrypted values but no secrets.lock saying whom they are encrypted to; run `fleet secret rewrap --identity ESCROW-KEY`", t.dir),
        );
        return;
    };
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
    if set(&lock.escrow) != set(escrow) {
        f.warn(
            "secret/rewrap",
            &lock_path,
            YamlPath::of(&["escrow"]),
            "the escrow recipients of fleet.yaml changed since this tenant's secrets were encrypted; run `fleet secret rewrap --identity ESCROW-KEY` (with an identity of the old escrow)",
        );
    }
    for s in t.stores.values() {
        let at = YamlPath::of(&["store", "recipient"]);
        match (&s.file.store.recipient, lock.stores.get(&s.dir)) {
            (Some(now), Some(then)) if now == then => {
                if any_all && !s.has_tenant_key_wrap {
                    f.warn("secret/rewrap", &s.path, at, format!("store {} has no tenant-key.age, so it cannot read the values used at every store; run `fleet secret rewrap --identity ESCROW-KEY`", s.dir));
                }
            }
            (Some(_), Some(_)) => f.warn("secret/rewrap", &s.path, at, format!("store {}'s recipient changed since its secrets were encrypted (secrets.lock); run `fleet secret rewrap --identity ESCROW-KEY`", s.dir)),
            (Some(_), None) => f.warn("secret/rewrap", &s.path, at, format!("store {} has a recipient its secrets are not yet encrypted to; until `fleet secret rewrap --identity ESCROW-KEY` runs, it holds back the entities whose values it cannot read", s.dir)),
            (None, _) => {}
        }
    }
}

// ---------------------------------------------------------------- rollouts

/// A tenant's `rollout:` (DESIGN.md §12): waves named once, a catch-all
/// only last, stores named that exist, selectors that match something, and
/// no store left out of every wave.
fn validate_rollout(f: &mut Findings, t: &TenantSources) {
    use crate::rollout::{MaxStores, StoreRef, assign_waves};
    let Some(r) = &t.base.rollout else { return };
    let file = t.base.file_of("rollout").unwrap_or("").to_owned();
    let waves = YamlPath::of(&["rollout", "waves"]);
    if r.waves.is_empty() {
        f.err(
            "rollout/waves",
            &file,
            waves.clone(),
            "a rollout needs at least one wave; end with `{name: rest}` to take every store",
        );
        return;
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let last = r.waves.len() - 1;
    for (i, w) in r.waves.iter().enumerate() {
        let at = waves.clone().index(i);
        if !crate::primitives::is_slug(w.name.as_str()) {
            f.err(
                "rollout/waves",
                &file,
                at.clone().key("name"),
                format!("wave name `{}` is not a slug (a-z, 0-9, -)", w.name),
            );
        }
        if let Some(first) = names.insert(w.name.as_str(), i) {
            f.err(
                "rollout/waves",
                &file,
                at.clone().key("name"),
                format!(
                    "wave `{}` is named twice (waves {} and {})",
                    w.name,
                    first + 1,
                    i + 1
                ),
            );
        }
        if w.is_catch_all() && i != last {
            f.err(
                "rollout/waves",
                &file,
                at.clone().key("name"),
                format!(
                    "wave `{}` has no select and no stores, so it takes every store left and waves after it get none; make it the last wave",
                    w.name
                ),
            );
        }
        match w.max_stores {
            Some(MaxStores::Count(0)) => f.err(
                "rollout/max-stores",
                &file,
                at.clone().key("max_stores"),
                "max_stores is at least 1",
            ),
            Some(MaxStores::Percent(p)) if p == 0 || p > 100 => f.err(
                "rollout/max-stores",
                &file,
                at.clone().key("max_stores"),
                format!("max_stores {p}% is not a percentage from 1% to 100%"),
            ),
            _ => {}
        }
        for (j, s) in w.stores.iter().enumerate() {
            if !t.store_dirs.contains(s.as_str()) {
                f.err(
                    "rollout/unknown-store",
                    &file,
                    at.clone().key("stores").index(j),
                    format!(
                        "wave `{}` names store `{s}`, which tenant {} does not have",
                        w.name, t.dir
                    ),
                );
            }
        }
        if let Some(sel) = &w.select
            && !sel.labels.is_empty()
            && !t.stores.values().any(|s| sel.matches(&s.file.store.labels))
        {
            let wanted: Vec<String> = sel.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            f.warn(
                "rollout/selector-unmatched",
                &file,
                at.clone().key("select"),
                format!(
                    "wave `{}` selects labels {} and no store of {} has them all",
                    w.name,
                    wanted.join(", "),
                    t.dir
                ),
            );
        }
    }
    if let Some(abort) = &r.abort {
        let at = YamlPath::of(&["rollout", "abort"]);
        if !(1..=100).contains(&abort.failed_percent) {
            f.err(
                "rollout/abort",
                &file,
                at.clone().key("failed_percent"),
                format!(
                    "failed_percent {} is not from 1 to 100",
                    abort.failed_percent
                ),
            );
        }
        if abort.min_stores == 0 {
            f.err(
                "rollout/abort",
                &file,
                at.key("min_stores"),
                "min_stores is at least 1",
            );
        }
    }
    let stores: Vec<StoreRef<'_>> = t
        .stores
        .iter()
        .map(|(id, s)| StoreRef {
            id,
            labels: &s.file.store.labels,
        })
        .collect();
    let (_, unselected) = assign_waves(r, &stores);
    if !unselected.is_empty() {
        let shown: Vec<&str> = unselected.iter().take(5).map(String::as_str).collect();
        let more = unselected.len() - shown.len();
        f.err(
            "rollout/uncovered",
            &file,
            waves,
            format!(
                "no wave takes store{} {}{}: end the waves with a catch-all such as `{{name: rest}}`",
                if unselected.len() == 1 { "" } else { "s" },
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
        );
    }
}

/// A tenant's or store's `windows:`: each deny window names when, is not
/// empty, and together they leave the week some open time.
fn validate_windows(f: &mut Findings, file: &str, base: &YamlPath, w: &crate::rollout::Windows) {
    for (i, d) in w.deny.iter().enumerate() {
        let at = base.clone().key("deny").index(i);
        if d.days.is_empty() && d.dates.is_empty() {
            f.err(
                "windows/when",
                file,
                at.clone(),
                "a deny window names days (mon … sun) or dates (2026-12-24)",
            );
        }
        if d.from == d.to {
            f.err(
                "windows/when",
                file,
                at.key("to"),
                format!("from and to are both {}: the window would be empty", d.from),
            );
        }
    }
    if w.always_closed() {
        f.err(
            "windows/always-closed",
            file,
            base.clone().key("deny"),
            "these deny windows cover every minute of the week: no release would ever apply (urgent ones aside)",
        );
    }
}

/// A site's YAML path as `fleet secret set` takes it: list elements by id.
fn dotted(path: &YamlPath, t: &TenantSources, file: &str) -> String {
    let users = if file.ends_with("store.yaml") {
        t.stores
            .values()
            .find(|s| s.path == file)
            .map(|s| s.file.access.users.as_slice())
    } else {
        Some(t.base.access.users.as_slice())
    };
    path.dotted(|i| users.and_then(|u| u.get(i)).map(|u| u.id.0.clone()))
}

// ---------------------------------------------------------------- store

fn validate_store(
    f: &mut Findings,
    t: &TenantSources,
    cat: &Catalog,
    s: &StoreSource,
    store_users: &mut HashMap<String, String>,
) {
    let file = s.path.as_str();
    let sf = &s.file;
    let root = YamlPath::root();
    f.violations(
        file,
        &YamlPath::of(&["store"]),
        rules::store_info(&sf.store),
    );
    if let Some(w) = &sf.windows {
        validate_windows(f, file, &YamlPath::of(&["windows"]), w);
    }
    // Windows are evaluated in the store's time zone, at the store.
    let has_windows = sf
        .windows
        .as_ref()
        .or(t.base.windows.as_ref())
        .is_some_and(|w| !w.deny.is_empty());
    if has_windows
        && let Some(tz) = &sf.store.timezone
        && rules::looks_like_timezone(tz)
        && crate::rollout::time_zone(tz).is_none()
    {
        f.err(
            "windows/timezone",
            file,
            YamlPath::of(&["store", "timezone"]),
            format!("time zone `{tz}` is not in the time zone database, so this store's windows could not be evaluated"),
        );
    }
    if sf.store.id.as_str() != s.dir {
        f.err(
            "id/dir-mismatch",
            file,
            YamlPath::of(&["store", "id"]),
            format!(
                "store id `{}` differs from its directory {}",
                sf.store.id, s.dir
            ),
        );
    }
    for (present, section) in [
        (sf.menu.is_some(), "menu"),
        (sf.kitchen.is_some(), "kitchen"),
        (sf.settings.is_some(), "settings"),
    ] {
        if present {
            let hint = if section == "settings" {
                "put store settings under `overrides.settings`"
            } else {
                "define it in the tenant base and reference it from `overrides`"
            };
            f.err_key(
                "store/creates-entity",
                file,
                root.key(section),
                format!("a store file cannot define `{section}`: {hint}"),
            );
        }
    }
    if sf.access.roles.is_some() {
        f.err_key(
            "store/creates-entity",
            file,
            YamlPath::of(&["access", "roles"]),
            "a store file cannot define roles: roles are tenant-wide",
        );
    }

    let o = &sf.overrides;
    let op = YamlPath::of(&["overrides"]);
    validate_settings(f, file, &op.key("settings"), &o.settings, true);
    for (id, price) in &o.prices {
        let p = op.key("prices").key(id.0.clone());
        match cat.kind_of(id.as_str()) {
            Some("variation" | "modifier") => {
                if let Some(v) = rules::price(*price) {
                    f.err(v.rule, file, p, v.message);
                }
            }
            Some(kind) => f.err_key(
                "ref/unknown-entity",
                file,
                p,
                format!(
                    "prices override `{id}`, {} {kind}; prices are set on variations and modifiers",
                    article(kind)
                ),
            ),
            None => f.err_key(
                "ref/unknown-entity",
                file,
                p,
                format!(
                    "prices override `{id}`, which is no variation or modifier of tenant {}",
                    t.dir
                ),
            ),
        }
    }
    let mut absent: BTreeSet<&str> = BTreeSet::new();
    for (i, id) in o.absent.iter().enumerate() {
        if !absent.insert(id.as_str()) {
            f.err(
                "id/duplicate",
                file,
                op.key("absent").index(i),
                format!("`{id}` is listed twice in absent"),
            );
        }
        match cat.kind_of(id.as_str()) {
            Some("item" | "variation" | "modifier" | "discount") => {}
            Some(kind) => f.err("ref/unknown-entity", file, op.key("absent").index(i), format!("`{id}` is {} {kind}; only items, variations, modifiers and discounts can be absent", article(kind))),
            None => f.err("ref/unknown-entity", file, op.key("absent").index(i), format!("absent names `{id}`, which is not in the catalog of tenant {}", t.dir)),
        }
    }
    for (id, rate) in &o.tax_rates {
        let p = op.key("tax_rates").key(id.0.clone());
        if cat.kind_of(id.as_str()) == Some("tax") {
            if let Some(v) = rules::tax_rate(rate) {
                f.err(v.rule, file, p, v.message);
            }
        } else {
            f.err_key(
                "ref/unknown-entity",
                file,
                p,
                format!(
                    "tax_rates names `{id}`, which is not a tax of tenant {}",
                    t.dir
                ),
            );
        }
    }
    let rp = op.key("routing");
    for (i, st) in o.routing.default.iter().flatten().enumerate() {
        if !cat.stations.contains(st.as_str()) {
            f.err(
                "ref/unknown-entity",
                file,
                rp.key("default").index(i),
                format!("routing default names station `{st}`, which is not defined"),
            );
        }
    }
    for (c, targets) in &o.routing.categories {
        if cat.kind_of(c.as_str()) != Some("category") {
            f.err_key(
                "ref/unknown-entity",
                file,
                rp.key("categories").key(c.0.clone()),
                format!("routing names category `{c}`, which is not defined"),
            );
        }
        for (i, st) in targets.iter().enumerate() {
            if !cat.stations.contains(st.as_str()) {
                f.err(
                    "ref/unknown-entity",
                    file,
                    rp.key("categories").key(c.0.clone()).index(i),
                    format!("routing for `{c}` names station `{st}`, which is not defined"),
                );
            }
        }
    }

    for (i, u) in sf.access.users.iter().enumerate() {
        let p = YamlPath::of(&["access", "users"]).index(i);
        if cat.tenant_users.contains(u.id.as_str()) {
            f.err("id/duplicate", file, p.key("id"), format!("user id `{}` is already a tenant user in {}; user ids are unique within the tenant", u.id, t.base.file_of("access").unwrap_or("the tenant base")));
        } else if let Some(other) = store_users.get(u.id.as_str()) {
            let where_ = if other == &s.dir {
                "this store".to_owned()
            } else {
                format!("store {other}")
            };
            f.err("id/duplicate", file, p.key("id"), format!("user id `{}` is already used at {where_}; user ids are unique within the tenant", u.id));
        } else {
            store_users.insert(u.id.0.clone(), s.dir.clone());
        }
        validate_user(f, file, &p, u, cat);
        if !u.stores.is_empty() {
            f.err_key(
                "schema/unknown-field",
                file,
                p.key("stores"),
                "store users work at their own store; `stores` belongs to tenant users",
            );
        }
    }
    let mut device_ids = BTreeSet::new();
    for (i, d) in sf.devices.iter().enumerate() {
        let p = YamlPath::of(&["devices"]).index(i);
        f.violations(file, &p, rules::device(d));
        if !device_ids.insert(d.id.as_str()) {
            f.err(
                "id/duplicate",
                file,
                p.key("id"),
                format!("device id `{}` is defined twice", d.id),
            );
        }
        if !cat.stations.contains(d.station.as_str()) {
            f.err(
                "ref/unknown-station",
                file,
                p.key("station"),
                format!(
                    "device `{}` is bound to station `{}`, which is not defined",
                    d.id, d.station
                ),
            );
        }
    }

    validate_rendered(f, t, cat, s, &absent);
}

/// Rules 7–9: what must hold of the store once rendered.
fn validate_rendered(
    f: &mut Findings,
    t: &TenantSources,
    cat: &Catalog,
    s: &StoreSource,
    absent: &BTreeSet<&str>,
) {
    let file = s.path.as_str();
    let o = &s.file.overrides;
    let op = YamlPath::of(&["overrides"]);

    // What rendering keeps, borrowed: cloning the tenant's menu for each of
    // 10,000 stores was a third of `fleet validate`.
    let items = render::sold_items(&t.base.menu, absent);
    let sold_items: BTreeSet<&str> = items.iter().map(|i| i.id.as_str()).collect();

    // Rule 7: nothing priced where it, or its item, is not sold.
    for id in o.prices.keys() {
        let p = op.key("prices").key(id.0.clone());
        if absent.contains(id.as_str()) {
            f.err_key(
                "render/absent-item-sold",
                file,
                p,
                format!("`{id}` is priced here but listed absent"),
            );
        } else if let Some(item) = cat.variation_item.get(id.as_str())
            && !sold_items.contains(item.as_str())
        {
            let why = if absent.contains(item.as_str()) {
                "is absent"
            } else {
                "has no variation sold here"
            };
            f.err_key(
                "render/absent-item-sold",
                file,
                p,
                format!("variation `{id}` is priced here but its item `{item}` {why}"),
            );
        }
    }
    // Rendering leaves absent modifiers out of every group, whether a sold
    // item uses it or not, and the store judges each group it receives by
    // the shared rules: a group left with no modifier, or with fewer than
    // its `min`, would be refused there, and the release with it.
    for g in &t.base.menu.modifier_groups {
        let sold: Vec<Modifier> = g
            .modifiers
            .iter()
            .filter(|m| !absent.contains(m.id.as_str()))
            .cloned()
            .collect();
        if sold.len() == g.modifiers.len() {
            continue;
        }
        let n = sold.len();
        let rendered = ModifierGroup {
            id: g.id.clone(),
            name: g.name.clone(),
            min: g.min,
            max: g.max,
            modifiers: sold,
        };
        let in_source: BTreeSet<Rule> = rules::modifier_group(g).iter().map(|v| v.rule).collect();
        for v in rules::modifier_group(&rendered) {
            if in_source.contains(v.rule) {
                continue;
            }
            let message = match v.rule {
                "modifier/empty-group" => format!(
                    "modifier group `{}` has none of its modifiers sold here, and a store refuses a group without modifiers",
                    g.id
                ),
                "modifier/min-exceeds-count" => format!(
                    "modifier group `{}` requires {} choices but only {n} of its modifiers are sold here",
                    g.id, g.min
                ),
                _ => format!("modifier group `{}` as sold here: {}", g.id, v.message),
            };
            f.err(
                "render/modifier-group-starved",
                file,
                op.key("absent"),
                message,
            );
        }
    }

    // Rule 8: every sellable item reaches a station that has a device.
    let with_device: BTreeSet<&str> = s.file.devices.iter().map(|d| d.station.as_str()).collect();
    let mut used: BTreeMap<&str, &str> = BTreeMap::new();
    for item in &items {
        let route = render::route(&t.base, &s.file, item);
        if route.is_empty() {
            let c = &item.category;
            let why = if s.file.overrides.routing.categories.contains_key(c) {
                format!(
                    "this store routes its category `{c}` to no station (`overrides.routing.categories.{c}: []`); name a station there or remove the entry"
                )
            } else if t.base.kitchen.routing.categories.contains_key(c) {
                format!(
                    "the tenant routes its category `{c}` to no station (`kitchen.routing.categories.{c}: []`); name a station there, or route it for this store"
                )
            } else {
                format!("route its category `{c}` or set a default route")
            };
            f.err(
                "routing/unrouted-item",
                file,
                YamlPath::root().key("store"),
                format!(
                    "item `{}` reaches no kitchen station at this store: {why}",
                    item.id
                ),
            );
        }
        for st in route {
            used.entry(st.as_str()).or_insert(item.id.as_str());
        }
    }
    for (st, item) in used {
        if cat.stations.contains(st) && !with_device.contains(st) {
            f.err("routing/station-without-device", file, YamlPath::root().key("devices"), format!("station `{st}` gets tickets here (e.g. for `{item}`) but this store has no device bound to it"));
        }
    }

    // Rule 9: someone can void an order.
    let can_void = |role: &str| role_grants(&cat.roles, &t.base, role, MANAGER_PERMISSION);
    if !render::users(&t.base.access, &s.file).any(|u| can_void(u.role.as_str())) {
        f.err("user/no-manager", file, YamlPath::root().key("store"), format!("no user at this store can `{MANAGER_PERMISSION}`: add a manager (tenant user with this store in `stores`, or a store user)"));
    }
}

/// Whether `role` grants `permission`, directly, by inheritance or by `admin.all`.
fn role_grants(
    graph: &BTreeMap<String, Vec<String>>,
    base: &TenantBase,
    role: &str,
    permission: &str,
) -> bool {
    let mut stack = vec![role];
    let mut seen = BTreeSet::new();
    while let Some(r) = stack.pop() {
        if !seen.insert(r) {
            continue;
        }
        if let Some(def) = base.access.roles.iter().find(|x| x.id.as_str() == r)
            && def
                .permissions
                .iter()
                .filter_map(|p| canonical_permission(p))
                .any(|p| p == permission || p == ADMIN_ALL)
        {
            return true;
        }
        stack.extend(graph.get(r).into_iter().flatten().map(String::as_str));
    }
    false
}

#[cfg(test)]
mod tests {
    //! Regression tests for findings that were once wrong; the corpus in
    //! cli/tests drives the real binary over every rule.

    use super::*;
    use crate::load::MemoryTree;
    use std::collections::BTreeMap;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    fn repo(tenant_extra: &str, soho: &str, noho: &str) -> MemoryTree {
        let mut m = BTreeMap::new();
        m.insert(
            "fleet.yaml".into(),
            "apiVersion: fleet/v1\nkind: Fleet\n".into(),
        );
        m.insert(
            "tenants/acme/tenant.yaml".into(),
            format!(
                "apiVersion: fleet/v1\nkind: Tenant\ntenant: {{id: acme, name: A, currency: USD, timezone: UTC}}\n\
                 menu:\n  categories: [{{id: food, name: Food}}]\n  modifier_groups:\n    - {{id: side, name: Side, min: 1, max: 1, modifiers: [{{id: fries, name: Fries}}, {{id: salad, name: Salad}}]}}\n\
                 \x20 items:\n    - {{id: burger, name: B, category: food, variations: [{{id: burger-s, name: S, price: 100}}, {{id: burger-l, name: L, price: 200}}]}}\n\
                 access:\n  roles: [{{id: boss, name: Boss, permissions: [order.void]}}]\n  users:\n    - {{id: ann, name: Ann, role: boss, stores: [soho, noho], pin_hash: \"{HASH}\"}}\n\
                 kitchen:\n  stations: [{{id: grill, name: Grill, kind: printer}}]\n  routing: {{default: [grill]}}\n{tenant_extra}"
            ),
        );
        for (id, extra) in [("soho", soho), ("noho", noho)] {
            m.insert(
                format!("tenants/acme/stores/{id}/store.yaml"),
                format!(
                    "apiVersion: fleet/v1\nkind: Store\nstore: {{id: {id}, name: X}}\n\
                     devices: [{{id: p, station: grill, type: escpos_net, address: \"10.0.0.1:9100\"}}]\n{extra}"
                ),
            );
        }
        MemoryTree(m)
    }

    /// Findings as `(rule, file, line)`, without the `secret/plaintext`
    /// warnings of the fixture's plain PIN hash (no escrow here).
    fn rules(tree: &MemoryTree) -> Vec<(Rule, String, usize)> {
        let (_, d) = check(tree);
        d.into_iter().map(|d| (d.rule, d.file, d.line)).collect()
    }

    /// [`check_repo`] without the `secret/plaintext` warnings of the
    /// fixture's plain PIN hash (no escrow here; that rule has its own tests).
    fn check(tree: &MemoryTree) -> (FleetRepo, Vec<Diagnostic>) {
        let (repo, mut d) = check_repo(tree);
        d.retain(|d| d.rule != "secret/plaintext");
        (repo, d)
    }

    /// DESIGN.md §11's rules on one encrypted or plain `pin_hash` (ann's,
    /// used at soho and noho), with and without escrow.
    #[test]
    fn secret_rules_name_what_is_wrong() {
        const R: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        // base64 of "age-encryption.org/v1\n": the start of an age file.
        const AGE: &str = "YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==";
        let tenant = "tenants/acme/tenant.yaml";
        let case = |escrow: Option<&str>, pin: &str| -> Vec<(Rule, Severity)> {
            let mut tree = repo("", "", "");
            let fleet = match escrow {
                Some(e) => {
                    format!("apiVersion: fleet/v1\nkind: Fleet\nsecrets: {{escrow: [\"{e}\"]}}\n")
                }
                None => "apiVersion: fleet/v1\nkind: Fleet\n".to_owned(),
            };
            tree.0.insert("fleet.yaml".into(), fleet);
            let text = tree.0[tenant].replace(
                &format!("pin_hash: \"{HASH}\""),
                &format!("pin_hash: {pin}"),
            );
            tree.0.insert(tenant.into(), text);
            let (_, d) = check_repo(&tree);
            d.into_iter().map(|d| (d.rule, d.severity)).collect()
        };
        let plain = format!("\"{HASH}\"");
        let sealed = |to: &str| format!("{{age: \"{AGE}\", to: [{to}]}}");
        use Severity::{Error, Warning};
        assert_eq!(case(None, &plain), [("secret/plaintext", Warning)]);
        assert_eq!(case(Some(R), &plain), [("secret/plaintext", Error)]);
        // Right: only the lock is missing (what `fleet secret` writes).
        let right = sealed("soho, noho, \"@escrow\"");
        assert_eq!(case(Some(R), &right), [("secret/rewrap", Warning)]);
        assert_eq!(
            case(None, &right),
            [("secret/rewrap", Warning), ("secret/recipients", Error)],
            "encrypted with nobody to re-encrypt it"
        );
        for (to, why) in [
            ("soho, \"@escrow\"", "a store that uses it cannot read it"),
            ("soho, noho", "escrow cannot read it"),
            ("\"*\", \"@escrow\"", "every store can read what two use"),
            ("soho, noho, tribeca, \"@escrow\"", "no such store"),
        ] {
            let found = case(Some(R), &sealed(to));
            assert!(
                found.contains(&("secret/recipients", Error)),
                "{why}: {found:?}"
            );
        }
        assert!(case(Some(R), &right.replace(AGE, "QQ==")).contains(&("secret/encoding", Error)));
        assert!(case(Some("age1nope"), &right).contains(&("secret/escrow", Error)));
        let not_a_secret = case(Some(R), "{age: QQ==, to: [soho], extra: 1}");
        assert!(
            not_a_secret
                .iter()
                .any(|(r, _)| r.starts_with("secret/") || *r == "schema/unknown-field"),
            "{not_a_secret:?}"
        );
    }

    /// DESIGN.md §12's source rules, each case `(tenant extra, soho
    /// extra, noho extra)` → the findings `(rule, file, line)`.
    #[test]
    fn rollout_and_window_rules_name_file_line_and_what_is_wrong() {
        let tenant = "tenants/acme/tenant.yaml";
        let soho = "tenants/acme/stores/soho/store.yaml";
        // Line numbers: the tenant fixture's extra starts at line 17, a
        // store's at line 5; labels go on the store line (3). A finding on
        // a list points at its first entry.
        let labelled =
            |s: &str, labels: &str| s.replace("name: X}", &format!("name: X, labels: {labels}}}"));
        let case = |tenant_extra: &str, soho_labels: &str, soho_extra: &str| {
            let mut tree = repo(tenant_extra, soho_extra, "");
            if !soho_labels.is_empty() {
                let text = labelled(&tree.0[soho], soho_labels);
                tree.0.insert(soho.into(), text);
            }
            rules(&tree)
        };
        let f = |rule: Rule, file: &str, line: usize| (rule, file.to_owned(), line);
        // The design's example is valid.
        assert_eq!(
            case(
                "rollout:\n  waves:\n    - {name: canary, select: {labels: {canary: \"true\"}}}\n    - {name: east, select: {labels: {region: east}}, max_stores: 25%}\n    - {name: rest}\n  bake: 30m\n  abort: {failed_percent: 10, min_stores: 3, rollback: true}\n\
                 windows:\n  deny:\n    - {days: [mon, tue, wed, thu, fri], from: \"11:30\", to: \"14:00\"}\n    - {dates: [2026-12-24], from: \"00:00\", to: \"23:59\"}\n",
                "{canary: \"true\", region: east}",
                "windows: {deny: [{days: [sat], from: \"18:00\", to: \"02:00\"}]}\n",
            ),
            []
        );
        // Stores left out without a catch-all: an error on `waves`.
        assert_eq!(
            case(
                "rollout:\n  waves:\n    - {name: canary, stores: [soho]}\n",
                "",
                ""
            ),
            [f("rollout/uncovered", tenant, 19)]
        );
        // A catch-all before the end, a name twice, an unknown store.
        assert_eq!(
            case(
                "rollout:\n  waves:\n    - {name: all}\n    - {name: all, stores: [tribeca]}\n",
                "",
                ""
            ),
            [
                f("rollout/waves", tenant, 19),
                f("rollout/waves", tenant, 20),
                f("rollout/unknown-store", tenant, 20),
            ]
        );
        // A selector nobody matches is a warning; the catch-all covers.
        assert_eq!(
            case(
                "rollout:\n  waves:\n    - {name: canary, select: {labels: {canary: \"yes\"}}}\n    - {name: rest}\n",
                "{canary: \"true\"}",
                ""
            ),
            [f("rollout/selector-unmatched", tenant, 19)]
        );
        // Caps, durations and thresholds out of range.
        assert_eq!(
            case(
                "rollout:\n  waves:\n    - {name: a, max_stores: 0, stores: [soho]}\n    - {name: b, max_stores: 150%}\n  abort: {failed_percent: 0, min_stores: 0}\n",
                "",
                ""
            ),
            [
                f("rollout/max-stores", tenant, 19),
                f("rollout/max-stores", tenant, 20),
                f("rollout/abort", tenant, 21),
                f("rollout/abort", tenant, 21),
            ]
        );
        assert_eq!(
            case(
                "rollout:\n  waves: [{name: rest}]\n  bake: a while\n",
                "",
                ""
            ),
            [f("rollout/duration", tenant, 19)]
        );
        assert_eq!(
            case(
                "rollout:\n  waves: [{name: rest, max_stores: lots}]\n",
                "",
                ""
            ),
            [f("rollout/max-stores", tenant, 18)]
        );
        // Labels.
        assert_eq!(case("", "{Region: east}", ""), [f("store/labels", soho, 3)]);
        assert_eq!(
            case("", "{region: \"east coast\"}", ""),
            [f("store/labels", soho, 3)]
        );
        // Windows: a bad time, no days or dates, from = to, never open.
        assert_eq!(
            case(
                "windows:\n  deny: [{days: [mon], from: \"11:70\", to: \"14:00\"}]\n",
                "",
                ""
            ),
            [f("windows/time", tenant, 18)]
        );
        assert_eq!(
            case(
                "",
                "",
                "windows:\n  deny:\n    - {from: \"11:00\", to: \"14:00\"}\n    - {days: [mon], from: \"11:00\", to: \"11:00\"}\n"
            ),
            [f("windows/when", soho, 7), f("windows/when", soho, 8)]
        );
        assert_eq!(
            case(
                "",
                "",
                "windows:\n  deny: [{days: [mon, tue, wed, thu, fri, sat, sun], from: \"06:00\", to: \"06:00\"}, {days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"24:00\"}]\n"
            ),
            [
                f("windows/always-closed", soho, 6),
                f("windows/when", soho, 6)
            ]
        );
        // Windows need a time zone the database knows.
        let mut tree = repo(
            "",
            "windows: {deny: [{days: [mon], from: \"11:00\", to: \"14:00\"}]}\n",
            "",
        );
        let text = tree.0[soho].replace("name: X}", "name: X, timezone: America/Gotham}");
        tree.0.insert(soho.into(), text);
        assert_eq!(rules(&tree), [f("windows/timezone", soho, 3)]);
    }

    #[test]
    fn fixture_is_valid() {
        assert_eq!(rules(&repo("", "", "")), vec![]);
    }

    /// Issue #15: a key left with no value after its last entry was deleted
    /// means empty, as an omitted key does.
    #[test]
    fn keys_without_a_value_are_empty() {
        for soho in [
            "overrides:\n",
            "overrides:\n  absent:\n  prices:\n  tax_rates:\n  settings:\n  routing:\n",
            "overrides:\n  routing:\n    categories:\n",
            "access:\n  users:\n",
        ] {
            assert_eq!(rules(&repo("", soho, "")), vec![], "{soho:?}");
        }
        // `devices:` empty leaves soho without a printer: the routing rule
        // says so, not a decode error.
        let mut tree = repo("", "", "");
        let soho = "tenants/acme/stores/soho/store.yaml";
        let text = tree.0[soho].replace(
            "devices: [{id: p, station: grill, type: escpos_net, address: \"10.0.0.1:9100\"}]",
            "devices:",
        );
        tree.0.insert(soho.into(), text);
        let found: Vec<Rule> = rules(&tree).into_iter().map(|r| r.0).collect();
        assert_eq!(found, ["routing/station-without-device"]);
    }

    /// Issue #15: a `.yml` file is said to be ignored instead of leaving
    /// only the errors its missing definitions cause elsewhere.
    #[test]
    fn yml_files_are_reported_as_ignored() {
        let mut tree = repo("", "", "");
        tree.0.insert(
            "tenants/acme/kitchen.yml".into(),
            "apiVersion: fleet/v1\nkind: Tenant\n".into(),
        );
        tree.0
            .insert("tenants/acme/stores/soho/notes.yml".into(), "a: 1\n".into());
        let (_, d) = check(&tree);
        let found: Vec<(Rule, &str, Severity, &str)> = d
            .iter()
            .map(|d| (d.rule, d.file.as_str(), d.severity, d.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "file/ignored",
                    "tenants/acme/kitchen.yml",
                    Severity::Warning,
                    "Fleet reads only .yaml files here, so this file is ignored; rename it to kitchen.yaml"
                ),
                (
                    "file/ignored",
                    "tenants/acme/stores/soho/notes.yml",
                    Severity::Warning,
                    "Fleet reads only .yaml files here, so this file is ignored; rename it to notes.yaml"
                ),
            ]
        );
        assert!(!has_errors(&d));
    }

    /// Issue #15: a discount's old permission name is a warning, as a
    /// role's is.
    #[test]
    fn a_discount_requiring_a_renamed_permission_is_warned() {
        let mut tree = repo("", "", "");
        let tenant = "tenants/acme/tenant.yaml";
        let text = tree.0[tenant].replacen(
            "  items:",
            "  discounts: [{id: staff, name: Staff, kind: percent, rate: \"10\", requires: discount.manager}]\n  items:",
            1,
        );
        tree.0.insert(tenant.into(), text);
        let (_, d) = check(&tree);
        let found: Vec<(Rule, Severity, usize)> =
            d.iter().map(|d| (d.rule, d.severity, d.line)).collect();
        assert_eq!(found, [("compat/renamed", Severity::Warning, 8)], "{d:?}");
        assert!(
            d[0].message.contains("`discount.restricted`"),
            "{}",
            d[0].message
        );
    }

    /// Issue #15: an item routed nowhere by an empty category route is told
    /// so, not told to set a default route it already has.
    #[test]
    fn an_empty_category_route_is_named_as_the_cause() {
        let (_, d) = check(&repo(
            "",
            "overrides: {routing: {categories: {food: []}}}\n",
            "",
        ));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].rule, "routing/unrouted-item");
        assert!(
            d[0].message
                .contains("this store routes its category `food` to no station"),
            "{}",
            d[0].message
        );
        assert!(
            !d[0].message.contains("set a default route"),
            "{}",
            d[0].message
        );
    }

    /// Regression: a store.yaml that failed to decode made tenant users who
    /// work there report `ref/unknown-store`.
    #[test]
    fn broken_store_does_not_cascade_into_unknown_store() {
        let r = rules(&repo("", "store: {id: soho, name: dup}\n", ""));
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].0, "yaml/duplicate-key");
    }

    /// Regression: an alias and its current name in one map passed silently
    /// and the alias won the render.
    #[test]
    fn alias_and_current_setting_name_together_are_refused() {
        let r = rules(&repo(
            "settings: {receipt.footer: a, receipt.footer_text: b}\n",
            "",
            "",
        ));
        assert!(
            r.iter().any(|(rule, ..)| *rule == "settings/duplicate"),
            "{r:?}"
        );
        let r = rules(&repo("settings: {receipt.footer_text: b}\n", "", ""));
        assert_eq!(
            r.iter().map(|x| x.0).collect::<Vec<_>>(),
            ["compat/renamed"]
        );
    }

    /// Regression: the same store user id at two stores passed.
    #[test]
    fn store_user_ids_are_unique_across_the_tenant() {
        let user = format!(
            "access:\n  users: [{{id: sam, name: Sam, role: boss, pin_hash: \"{HASH}\"}}]\n"
        );
        let r = rules(&repo("", &user, &user));
        assert_eq!(
            r,
            vec![(
                "id/duplicate",
                "tenants/acme/stores/soho/store.yaml".to_owned(),
                6
            )],
            "{r:?}"
        );
    }

    /// Regression: pricing an absent variation, or a variation of an item
    /// whose variations are all absent, passed.
    #[test]
    fn prices_of_unsold_entities_are_refused() {
        let r = rules(&repo(
            "",
            "overrides: {absent: [burger-s], prices: {burger-s: 5}}\n",
            "",
        ));
        assert_eq!(
            r.iter().map(|x| x.0).collect::<Vec<_>>(),
            ["render/absent-item-sold"]
        );
        let r = rules(&repo(
            "",
            "overrides: {absent: [burger-s, burger-l], prices: {burger-l: 5}}\n",
            "",
        ));
        assert!(r.iter().any(|x| x.0 == "render/absent-item-sold"), "{r:?}");
    }

    /// Regression: a group no sold item uses was once exempt from starving
    /// (and a group without `min` always was), but every store receives
    /// every group, modifiers left out, and the edge refuses an empty one:
    /// the release failed at the store instead of in `fleet validate`.
    #[test]
    fn a_group_left_empty_or_starved_is_refused_used_or_not() {
        // `side` (min 1) is used by no item in the fixture.
        let starved = vec![(
            "render/modifier-group-starved",
            "tenants/acme/stores/soho/store.yaml".to_owned(),
            5,
        )];
        let absent = |which: &str| format!("overrides: {{absent: [{which}]}}\n");
        assert_eq!(rules(&repo("", &absent("fries, salad"), "")), starved);
        // One of two left is enough for `min: 1`.
        assert_eq!(rules(&repo("", &absent("fries"), "")), vec![]);
        // Without a minimum, a group still needs one modifier.
        let (mut tree, _) = edited(TENANT, "min: 1, max: 1", "min: 0, max: 1");
        tree.0
            .get_mut(SOHO)
            .expect("the soho store")
            .push_str(&absent("fries, salad"));
        assert_eq!(rules(&tree), starved);
    }

    /// The fixture with `to` in place of `from` in `file`, and the line of
    /// the fixture where `to` now is.
    fn edited(file: &str, from: &str, to: &str) -> (MemoryTree, usize) {
        let mut tree = repo("", "", "");
        let text = tree.0.get_mut(file).expect("a fixture file");
        assert_eq!(text.matches(from).count(), 1, "{from:?} in {file}");
        *text = text.replace(from, to);
        let line = text
            .lines()
            .position(|l| l.contains(to))
            .expect("the edit is there")
            + 1;
        (tree, line)
    }

    const TENANT: &str = "tenants/acme/tenant.yaml";
    const SOHO: &str = "tenants/acme/stores/soho/store.yaml";

    /// Regression: these passed `fleet validate`, and the store's edge
    /// refused the entity, so the release could not be applied there.
    #[test]
    fn what_the_store_refuses_does_not_validate() {
        let long = format!("name: {}}}", "x".repeat(201));
        for (file, from, to, rule) in [
            (TENANT, "name: B,", "name: \" \",", "entity/name"),
            (TENANT, "name: Fries}", "name: \"\"}", "entity/name"),
            (TENANT, "name: Grill,", "name: \"\",", "entity/name"),
            (
                SOHO,
                "address: \"10.0.0.1:9100\"",
                "address: \"\"",
                "device/address",
            ),
            (
                TENANT,
                "food, variations",
                "food, stations: [grill, grill], variations",
                "id/duplicate",
            ),
            (
                TENANT,
                "permissions: [order.void]",
                "inherits: [boss], permissions: [order.void]",
                "ref/role-cycle",
            ),
            (SOHO, "name: X}", long.as_str(), "settings/type"),
        ] {
            let (tree, line) = edited(file, from, to);
            assert_eq!(rules(&tree), vec![(rule, file.to_owned(), line)], "{to}");
        }
    }

    /// A modifier listed twice in its group is one finding, from the catalog
    /// namespace, though the group's own rules see it too.
    #[test]
    fn member_listed_twice_is_reported_once() {
        let (tree, line) = edited(TENANT, "{id: salad,", "{id: fries,");
        assert_eq!(
            rules(&tree),
            vec![("id/duplicate", TENANT.to_owned(), line)]
        );
    }
}
