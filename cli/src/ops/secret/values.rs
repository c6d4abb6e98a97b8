//! `fleet secret set`, `rewrap` and `encrypt-all` (DESIGN.md §11): secret
//! values encrypted in place in the sources, the tenant key and its wraps,
//! and `secrets.lock`.
//!
//! Every command prepares all of its file changes first and writes them
//! only when each has been checked, each file atomically: a refused
//! identity or an odd file changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use age::x25519::{Identity, Recipient};
use anyhow::{Context as _, anyhow, bail};
use release::secrets::unseal;
use schemas::load::{DirTree, FleetRepo, TenantSources};
use schemas::model::Sealed;
use schemas::registry::{SettingLookup, check_setting, lookup_setting};
use schemas::secrets::{
    LOCK_FILE, Scope, SecretsLock, SiteValue, TENANT_KEY_ESCROW, TENANT_KEY_WRAP, sites,
};
use schemas::yaml::YamlPath;

use super::edit::{self, Edit};
use super::seal::{encrypt, identity_text, recipients, seal};

/// A loaded repo and its escrow recipients.
struct Repo {
    root: PathBuf,
    loaded: FleetRepo,
    escrow: Vec<String>,
}

impl Repo {
    /// Load the repo; refuse one with errors other than the secret rules
    /// (which these commands are there to fix).
    fn load(root: &Path) -> anyhow::Result<Repo> {
        let (loaded, diags) = schemas::validate::check_repo(&DirTree::new(root));
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| {
                d.severity == schemas::diag::Severity::Error && !d.rule.starts_with("secret/")
            })
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            bail!(
                "the repo at {} does not validate; fix it first ({} errors):\n{}",
                root.display(),
                errors.len(),
                errors
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        let escrow = loaded
            .fleet
            .as_ref()
            .map(|f| f.escrow().to_vec())
            .unwrap_or_default();
        Ok(Repo {
            root: root.to_owned(),
            loaded,
            escrow,
        })
    }

    fn require_escrow(&self) -> anyhow::Result<Vec<Recipient>> {
        if self.escrow.is_empty() {
            bail!(
                "fleet.yaml names no escrow recipients: add `secrets: {{escrow: [\"age1…\"]}}` (head office's recovery key, made with `fleet secret keygen`) before encrypting anything"
            );
        }
        recipients(self.escrow.iter().map(String::as_str))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// The pending file changes of a command: path → new bytes, or `None` to
/// remove.
#[derive(Default)]
struct Writes(BTreeMap<PathBuf, Option<Vec<u8>>>);

impl Writes {
    fn put(&mut self, path: PathBuf, bytes: Vec<u8>) {
        self.0.insert(path, Some(bytes));
    }

    fn remove(&mut self, path: PathBuf) {
        self.0.insert(path, None);
    }

    /// A text file as this command leaves it: its pending content, else
    /// what is on disk.
    fn text(&self, path: &Path) -> anyhow::Result<String> {
        match self.0.get(path) {
            Some(Some(bytes)) => Ok(String::from_utf8_lossy(bytes).into_owned()),
            _ => {
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
            }
        }
    }

    /// Write everything, each file atomically.
    fn commit(self) -> anyhow::Result<Vec<PathBuf>> {
        let mut done = Vec::new();
        for (path, bytes) in self.0 {
            match bytes {
                Some(b) => release::applied::write_atomically(&path, &b)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("removing {}", path.display()));
                    }
                },
            }
            done.push(path);
        }
        Ok(done)
    }
}

fn lock_path(tenant: &str) -> String {
    format!("tenants/{tenant}/{LOCK_FILE}")
}

fn wrap_path(tenant: &str, store: &str) -> String {
    format!("tenants/{tenant}/stores/{store}/{TENANT_KEY_WRAP}")
}

fn escrow_wrap_path(tenant: &str) -> String {
    format!("tenants/{tenant}/{TENANT_KEY_ESCROW}")
}

/// The recipients a value of `scope` is encrypted to under `lock`, and the
/// stores of the scope the lock has no recipient for.
fn recipients_for(
    scope: &Scope,
    lock: &SecretsLock,
    tenant_key: Option<&Recipient>,
    escrow: &[Recipient],
) -> anyhow::Result<(Vec<Recipient>, Vec<String>)> {
    let mut out: Vec<Recipient> = escrow.to_vec();
    let mut missing = Vec::new();
    match scope {
        Scope::All => out.push(
            tenant_key
                .cloned()
                .ok_or_else(|| anyhow!("no tenant key to encrypt a value for every store to"))?,
        ),
        Scope::Stores(stores) => {
            for s in stores {
                match lock.stores.get(s) {
                    Some(r) => out.extend(recipients([r.as_str()])?),
                    None => missing.push(s.clone()),
                }
            }
        }
    }
    Ok((out, missing))
}

/// A new tenant key: its identity file text wrapped to each store of the
/// lock and to escrow.
fn wrap_tenant_key(
    writes: &mut Writes,
    repo: &Repo,
    tenant: &TenantSources,
    key: &Identity,
    lock: &SecretsLock,
    escrow: &[Recipient],
) -> anyhow::Result<()> {
    let text = identity_text(key, &format!("the tenant key of {}", tenant.dir));
    for (store, r) in &lock.stores {
        let bytes = encrypt(&recipients([r.as_str()])?, text.as_bytes())?;
        writes.put(repo.path(&wrap_path(&tenant.dir, store)), bytes);
    }
    let bytes = encrypt(escrow, text.as_bytes())?;
    writes.put(repo.path(&escrow_wrap_path(&tenant.dir)), bytes);
    Ok(())
}

/// The tenant key, opened with an escrow identity.
fn open_tenant_key(repo: &Repo, tenant: &str, identity: &Identity) -> anyhow::Result<Identity> {
    let rel = escrow_wrap_path(tenant);
    let bytes = std::fs::read(repo.path(&rel)).with_context(|| format!("reading {rel}"))?;
    let plain = release::secrets::decrypt(&[identity], &bytes)
        .with_context(|| format!("opening {rel} with the escrow identity"))?;
    std::str::from_utf8(&plain)
        .ok()
        .and_then(release::secrets::parse_identity)
        .ok_or_else(|| anyhow!("{rel} holds no age identity"))
}

// ------------------------------------------------------------------ set

/// What `fleet secret set` wrote.
#[derive(Debug, Clone)]
pub struct SetOutcome {
    pub file: String,
    pub path: String,
    pub to: Vec<String>,
    /// Stores that use the value but have no recipient in secrets.lock yet:
    /// they hold the entity back until `fleet secret rewrap`.
    pub not_yet_readable_by: Vec<String>,
    /// Whether this made the tenant's key (the first value for every store).
    pub made_tenant_key: bool,
    pub written: Vec<PathBuf>,
}

/// Where `fleet secret set` writes, resolved against the file's sources.
struct Target {
    tenant: String,
    path: YamlPath,
    scope: Scope,
    /// The setting key, for a setting (its type is checked).
    setting: Option<String>,
}

fn resolve(repo: &Repo, file: &str, dotted: &str) -> anyhow::Result<Target> {
    let parts: Vec<&str> = file.split('/').collect();
    let (tenant, store) = match parts.as_slice() {
        ["tenants", t, "stores", s, "store.yaml"] => (*t, Some(*s)),
        ["tenants", t, f] if f.ends_with(".yaml") => (*t, None),
        _ => bail!(
            "{file} is neither a tenant file (tenants/<t>/<name>.yaml) nor a store.yaml (tenants/<t>/stores/<s>/store.yaml); FILE is relative to --repo"
        ),
    };
    let t = repo
        .loaded
        .tenants
        .get(tenant)
        .ok_or_else(|| anyhow!("there is no tenant {tenant}"))?;
    let usage = "YAML.PATH is `settings.<secret key>` or `access.users.<user id>.pin_hash` in a tenant file, `overrides.settings.<secret key>` or `access.users.<user id>.pin_hash` in a store.yaml";
    let setting_at = |rest: &str, at: YamlPath, scope: Scope| -> anyhow::Result<Target> {
        match lookup_setting(rest) {
            SettingLookup::Known(spec) if spec.secret => Ok(Target {
                tenant: tenant.to_owned(),
                path: at.key(rest),
                scope,
                setting: Some(rest.to_owned()),
            }),
            SettingLookup::Known(_) | SettingLookup::Custom => bail!(
                "`{rest}` is not a secret setting; only settings the registry marks secret are encrypted (see `fleet schema`)"
            ),
            SettingLookup::Unknown => bail!("`{rest}` is no registered setting"),
        }
    };
    fn user_at<'u>(
        rest: &str,
        users: &'u [schemas::model::User],
        file: &str,
        usage: &str,
    ) -> anyhow::Result<(usize, &'u schemas::model::User)> {
        let id = rest
            .strip_suffix(".pin_hash")
            .ok_or_else(|| anyhow!("{usage}"))?;
        users
            .iter()
            .enumerate()
            .find(|(_, u)| u.id.as_str() == id)
            .ok_or_else(|| anyhow!("{file} has no user `{id}`"))
    }
    match store {
        Some(s) => {
            let src = t
                .stores
                .get(s)
                .ok_or_else(|| anyhow!("there is no store {tenant}/{s}"))?;
            let only = Scope::Stores(BTreeSet::from([s.to_owned()]));
            if let Some(rest) = dotted.strip_prefix("overrides.settings.") {
                return setting_at(rest, YamlPath::of(&["overrides", "settings"]), only);
            }
            if let Some(rest) = dotted.strip_prefix("access.users.") {
                let (i, _) = user_at(rest, &src.file.access.users, file, usage)?;
                return Ok(Target {
                    tenant: tenant.to_owned(),
                    path: YamlPath::of(&["access", "users"]).index(i).key("pin_hash"),
                    scope: only,
                    setting: None,
                });
            }
            bail!("{usage}")
        }
        None => {
            if let Some(rest) = dotted.strip_prefix("settings.") {
                let holder = t.base.file_of("settings");
                if holder != Some(file) {
                    bail!(
                        "{file} does not hold this tenant's `settings:` section ({})",
                        holder.map_or(
                            "no file has one yet: add `settings:` to a tenant file".to_owned(),
                            |h| format!("it is in {h}")
                        )
                    );
                }
                return setting_at(rest, YamlPath::of(&["settings"]), Scope::All);
            }
            if let Some(rest) = dotted.strip_prefix("access.users.") {
                if t.base.file_of("access") != Some(file) {
                    bail!("{file} does not hold this tenant's `access:` section");
                }
                let (i, u) = user_at(rest, &t.base.access.users, file, usage)?;
                let scope = if u.stores.iter().any(|s| s == "*") {
                    Scope::All
                } else {
                    Scope::Stores(u.stores.iter().cloned().collect())
                };
                return Ok(Target {
                    tenant: tenant.to_owned(),
                    path: YamlPath::of(&["access", "users"]).index(i).key("pin_hash"),
                    scope,
                    setting: None,
                });
            }
            bail!("{usage}")
        }
    }
}

/// Encrypt `value` (for `--pin`, already hashed) into `file` at `dotted`.
pub fn set(repo_root: &Path, file: &str, dotted: &str, value: &str) -> anyhow::Result<SetOutcome> {
    let repo = Repo::load(repo_root)?;
    repo.require_escrow()?;
    let target = resolve(&repo, file, dotted)?;
    if let Some(key) = &target.setting
        && let SettingLookup::Known(spec) = lookup_setting(key)
    {
        check_setting(
            spec.ty,
            &schemas::model::SettingValue::Str(value.to_owned()),
        )
        .map_err(|why| anyhow!("`{key}` {why}"))?;
    } else if target.setting.is_none()
        && !password_hash::PasswordHash::new(value)
            .is_ok_and(|h| h.algorithm.as_str() == "argon2id" && h.hash.is_some())
    {
        bail!("a pin_hash is an argon2id PHC string: give the PIN with --pin, which hashes it");
    }
    let t = &repo.loaded.tenants[&target.tenant];
    let mut writes = Writes::default();
    let mut lock = t.secrets_lock.clone().unwrap_or_else(|| SecretsLock {
        tenant_key: None,
        escrow: repo.escrow.clone(),
        stores: t
            .stores
            .iter()
            .filter_map(|(s, src)| src.file.store.recipient.clone().map(|r| (s.clone(), r)))
            .collect(),
    });
    let lock_escrow = recipients(lock.escrow.iter().map(String::as_str))?;
    let mut made_tenant_key = false;
    let tenant_key: Option<Recipient> = match (&target.scope, &lock.tenant_key) {
        (_, Some(r)) => Some(recipients([r.as_str()])?.remove(0)),
        (Scope::All, None) => {
            let key = Identity::generate();
            wrap_tenant_key(&mut writes, &repo, t, &key, &lock, &lock_escrow)?;
            lock.tenant_key = Some(key.to_public().to_string());
            made_tenant_key = true;
            Some(key.to_public())
        }
        (Scope::Stores(_), None) => None,
    };
    let (to_recipients, missing) =
        recipients_for(&target.scope, &lock, tenant_key.as_ref(), &lock_escrow)?;
    let sealed = seal(value, &to_recipients, target.scope.to())?;
    let text =
        std::fs::read_to_string(repo.path(file)).with_context(|| format!("reading {file}"))?;
    let edited = edit::apply(
        &text,
        &[Edit {
            path: target.path.clone(),
            inline: edit::inline_sealed(&sealed),
        }],
    )
    .with_context(|| format!("editing {file}"))?;
    check_written(&edited, file, &target.path, &sealed)?;
    writes.put(repo.path(file), edited.into_bytes());
    if t.secrets_lock.as_ref() != Some(&lock) {
        writes.put(
            repo.path(&lock_path(&target.tenant)),
            lock.to_text().into_bytes(),
        );
    }
    let written = writes.commit()?;
    Ok(SetOutcome {
        file: file.to_owned(),
        path: dotted.to_owned(),
        to: sealed.to,
        not_yet_readable_by: missing,
        made_tenant_key,
        written,
    })
}

/// The edited text holds exactly `sealed` at `path`.
fn check_written(text: &str, file: &str, path: &YamlPath, sealed: &Sealed) -> anyhow::Result<()> {
    let want = serde_json::to_value(sealed).expect("a sealed value serializes");
    match edit::value_at(text, path)? {
        Some(v) if v == want => Ok(()),
        _ => bail!(
            "writing `{path}` into {file} would not give the encrypted value there; the file is left as it was"
        ),
    }
}

// ------------------------------------------------------------------ rewrap

/// What `rewrap` and `encrypt-all` do.
#[derive(Debug, Clone, Default)]
pub struct RewrapOptions {
    /// An escrow identity: needed to re-encrypt or to open the tenant key.
    pub identity: Option<PathBuf>,
    /// Make a new tenant key and re-encrypt every value for every store.
    pub rotate_tenant_key: bool,
    /// `<tenant>/<store>`s left out of the new tenant key (a stolen Pi);
    /// their `store.recipient` is removed.
    pub exclude: Vec<String>,
    /// Also encrypt plaintext values (`encrypt-all`).
    pub encrypt_plaintext: bool,
}

/// What one tenant's rewrap changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantRewrap {
    pub tenant: String,
    pub reencrypted: usize,
    pub encrypted: usize,
    pub wraps_written: usize,
    pub wraps_removed: usize,
    pub tenant_key_made: bool,
    /// Stores that use some value but have no recipient: they hold those
    /// entities back until their recipient is written and rewrap runs.
    pub without_recipient: Vec<String>,
}

/// Bring every tenant's encrypted values, wraps and lock in line with
/// the sources.
pub fn rewrap(
    repo_root: &Path,
    opts: &RewrapOptions,
) -> anyhow::Result<(Vec<TenantRewrap>, Vec<PathBuf>)> {
    let repo = Repo::load(repo_root)?;
    let escrow = repo.require_escrow()?;
    let identity = opts
        .identity
        .as_deref()
        .map(release::secrets::read_identity)
        .transpose()?;
    if !opts.exclude.is_empty() && !opts.rotate_tenant_key {
        bail!(
            "--exclude-store needs --rotate-tenant-key: the excluded store still holds the current tenant key"
        );
    }
    let mut excluded: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in &opts.exclude {
        let (t, s) = e
            .split_once('/')
            .ok_or_else(|| anyhow!("--exclude-store takes <tenant>/<store>, got {e}"))?;
        if !repo
            .loaded
            .tenants
            .get(t)
            .is_some_and(|ts| ts.stores.contains_key(s))
        {
            bail!("--exclude-store {e}: there is no such store");
        }
        excluded.entry(t).or_default().insert(s);
    }
    let mut writes = Writes::default();
    let mut out = Vec::new();
    for (name, t) in &repo.loaded.tenants {
        let none = BTreeSet::new();
        let ex = excluded.get(name.as_str()).unwrap_or(&none);
        if let Some(r) = rewrap_tenant(&repo, t, &escrow, identity.as_ref(), opts, ex, &mut writes)?
        {
            out.push(r);
        }
    }
    let written = writes.commit()?;
    Ok((out, written))
}

#[allow(clippy::too_many_arguments)]
fn rewrap_tenant(
    repo: &Repo,
    t: &TenantSources,
    escrow: &[Recipient],
    identity: Option<&Identity>,
    opts: &RewrapOptions,
    excluded: &BTreeSet<&str>,
    writes: &mut Writes,
) -> anyhow::Result<Option<TenantRewrap>> {
    let sites = sites(t);
    let sealed_any = sites
        .iter()
        .any(|s| matches!(s.value, SiteValue::Sealed(_)));
    let plain_any = sites.iter().any(|s| matches!(s.value, SiteValue::Plain(_)));
    let touched = sealed_any || t.secrets_lock.is_some() || (opts.encrypt_plaintext && plain_any);
    if !touched {
        return Ok(None);
    }
    let mut report = TenantRewrap {
        tenant: t.dir.clone(),
        ..TenantRewrap::default()
    };
    let need_identity = |what: &str| -> anyhow::Result<&Identity> {
        identity.ok_or_else(|| {
            anyhow!(
                "tenant {}: {what} needs an escrow identity: give --identity FILE",
                t.dir
            )
        })
    };
    let old = t.secrets_lock.clone().unwrap_or_default();
    let new_stores: BTreeMap<String, String> = t
        .stores
        .iter()
        .filter(|(s, _)| !excluded.contains(s.as_str()))
        .filter_map(|(s, src)| src.file.store.recipient.clone().map(|r| (s.clone(), r)))
        .collect();
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    let escrow_changed = t.secrets_lock.is_none() || set(&old.escrow) != set(&repo.escrow);
    let uses_all = sites.iter().any(|s| {
        s.scope == Scope::All && (matches!(s.value, SiteValue::Sealed(_)) || opts.encrypt_plaintext)
    });
    // The tenant key: kept, opened when something needs it, or made anew.
    // The tenant key: made anew, or kept. Only its public half is needed
    // to encrypt; the identity is opened (with escrow) only to write wraps.
    let key_new = (opts.rotate_tenant_key && (uses_all || old.tenant_key.is_some()))
        || (uses_all && old.tenant_key.is_none());
    let made = key_new.then(Identity::generate);
    let tenant_pub: Option<Recipient> = match (&made, &old.tenant_key) {
        (Some(k), _) => Some(k.to_public()),
        (None, Some(r)) => Some(recipients([r.as_str()])?.remove(0)),
        (None, None) => None,
    };
    report.tenant_key_made = key_new;
    let new_lock = SecretsLock {
        tenant_key: tenant_pub.as_ref().map(ToString::to_string),
        escrow: repo.escrow.clone(),
        stores: new_stores,
    };
    // Each value that is stale, or plaintext to encrypt.
    let mut edits: BTreeMap<String, Vec<(Edit, Sealed)>> = BTreeMap::new();
    for site in &sites {
        let plain = match &site.value {
            SiteValue::Sealed(sealed) => {
                let stale = !site.scope.matches(&sealed.to)
                    || escrow_changed
                    || (site.scope == Scope::All && key_new)
                    || match &site.scope {
                        Scope::All => false,
                        Scope::Stores(s) => s
                            .iter()
                            .any(|s| new_lock.stores.get(s) != old.stores.get(s)),
                    };
                if !stale {
                    continue;
                }
                report.reencrypted += 1;
                unseal(sealed, &[need_identity("re-encrypting")?]).with_context(|| {
                    format!(
                        "{}: {} cannot be opened with the escrow identity",
                        site.file, site.what
                    )
                })?
            }
            SiteValue::Plain(p) if opts.encrypt_plaintext => {
                report.encrypted += 1;
                p.clone()
            }
            SiteValue::Plain(_) => continue,
        };
        let (to, missing) = recipients_for(&site.scope, &new_lock, tenant_pub.as_ref(), escrow)?;
        for m in missing {
            if !report.without_recipient.contains(&m) {
                report.without_recipient.push(m);
            }
        }
        let sealed = seal(&plain, &to, site.scope.to())?;
        edits.entry(site.file.clone()).or_default().push((
            Edit {
                path: site.path.clone(),
                inline: edit::inline_sealed(&sealed),
            },
            sealed,
        ));
    }
    for (file, list) in edits {
        let text =
            std::fs::read_to_string(repo.path(&file)).with_context(|| format!("reading {file}"))?;
        let plain_edits: Vec<Edit> = list.iter().map(|(e, _)| e.clone()).collect();
        let edited = edit::apply(&text, &plain_edits).with_context(|| format!("editing {file}"))?;
        for (e, sealed) in &list {
            check_written(&edited, &file, &e.path, sealed)?;
        }
        writes.put(repo.path(&file), edited.into_bytes());
    }
    // Wraps of the tenant key: one per store with a recipient, one to escrow.
    if tenant_pub.is_some() {
        let escrow_wrap = repo.path(&escrow_wrap_path(&t.dir));
        let mut to_wrap: Vec<PathBuf> = Vec::new();
        let mut wrap_for: Vec<String> = Vec::new();
        for (s, src) in &t.stores {
            match new_lock.stores.get(s) {
                Some(r) if key_new || old.stores.get(s) != Some(r) || !src.has_tenant_key_wrap => {
                    to_wrap.push(repo.path(&wrap_path(&t.dir, s)));
                    wrap_for.push(r.clone());
                }
                Some(_) => {}
                None if src.has_tenant_key_wrap => {
                    writes.remove(repo.path(&wrap_path(&t.dir, s)));
                    report.wraps_removed += 1;
                }
                None => {}
            }
        }
        let escrow_stale = key_new || escrow_changed || !escrow_wrap.exists();
        if !to_wrap.is_empty() || escrow_stale {
            let key = match made {
                Some(k) => k,
                None => open_tenant_key(repo, &t.dir, need_identity("writing tenant-key wraps")?)?,
            };
            let text = identity_text(&key, &format!("the tenant key of {}", t.dir));
            for (path, r) in to_wrap.into_iter().zip(&wrap_for) {
                writes.put(path, encrypt(&recipients([r.as_str()])?, text.as_bytes())?);
                report.wraps_written += 1;
            }
            if escrow_stale {
                writes.put(escrow_wrap, encrypt(escrow, text.as_bytes())?);
            }
        }
    }
    // A store left out loses its recipient, so nothing is encrypted to the
    // stolen Pi again until its replacement enrolls.
    for s in excluded {
        let src = &t.stores[*s];
        if src.file.store.recipient.is_some() {
            // On top of the values just re-encrypted in the same file.
            let text = writes.text(&repo.path(&src.path))?;
            writes.put(
                repo.path(&src.path),
                super::remove_store_recipient(&text).into_bytes(),
            );
        }
    }
    for site in &sites {
        if let Scope::Stores(stores) = &site.scope {
            for s in stores {
                if !new_lock.stores.contains_key(s) && !report.without_recipient.contains(s) {
                    report.without_recipient.push(s.clone());
                }
            }
        }
    }
    if t.secrets_lock.as_ref() != Some(&new_lock) {
        writes.put(
            repo.path(&lock_path(&t.dir)),
            new_lock.to_text().into_bytes(),
        );
    }
    Ok(Some(report))
}
