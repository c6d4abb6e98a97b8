//! `fleet new-tenant` and `fleet new-store`: write sources that validate,
//! with comments that say what to fill in.
//!
//! Existing files are never overwritten. The new tenant gets an owner user
//! whose PIN is generated, shown once and committed only as its hash.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use schemas::load::DirTree;
use schemas::primitives::is_slug;
use schemas::validate::check_repo;

use super::hash_pin::hash_pin;

/// Where editors find the JSON Schemas inside a fleet repo.
pub const SCHEMA_DIR: &str = ".fleet/schemas";

/// Options of `fleet new-tenant`.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub repo: PathBuf,
    pub tenant: String,
    pub name: String,
    pub currency: String,
    pub timezone: String,
}

/// What `new-tenant` made.
#[derive(Debug)]
pub struct NewTenantResult {
    pub files: Vec<PathBuf>,
    /// The owner's generated PIN, to be shown once.
    pub owner_pin: String,
}

/// Options of `fleet new-store`.
#[derive(Debug, Clone)]
pub struct NewStore {
    pub repo: PathBuf,
    /// `<tenant>/<store>`.
    pub store: String,
    pub name: String,
    pub timezone: Option<String>,
}

fn require_fleet_repo(repo: &Path) -> anyhow::Result<()> {
    if !repo.join("fleet.yaml").is_file() {
        bail!(
            "{} has no fleet.yaml: pass the fleet repo with --repo (start one from fleet-repo-template/)",
            repo.display()
        );
    }
    Ok(())
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    if path.exists() {
        bail!("{} already exists; not overwriting it", path.display());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A random numeric PIN from the OS RNG.
fn random_pin(digits: usize) -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    (0..digits)
        .map(|_| char::from(b'0' + (OsRng.next_u32() % 10) as u8))
        .collect()
}

/// Scaffold `tenants/<tenant>/tenant.yaml`.
pub fn new_tenant(opts: &NewTenant) -> anyhow::Result<NewTenantResult> {
    require_fleet_repo(&opts.repo)?;
    if !is_slug(&opts.tenant) {
        bail!(
            "tenant id `{}` is not a slug (lowercase letters, digits, '-')",
            opts.tenant
        );
    }
    let dir = opts.repo.join("tenants").join(&opts.tenant);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let owner_pin = random_pin(6);
    let pin_hash = hash_pin(&owner_pin)?;
    let text = format!(
        r#"# yaml-language-server: $schema=../../{SCHEMA_DIR}/tenant.schema.json
# Tenant base of {name}: what every store of this tenant gets unless its
# store.yaml overrides it. Sections may be split over several *.yaml files in
# this directory (menu.yaml, access.yaml, ...); each section lives in one file.
apiVersion: fleet/v1
kind: Tenant
tenant: {{id: {id}, name: {name_q}, currency: {currency}, timezone: {tz}}}
settings:
  tax.rounding: half_even
  receipt.footer: "Thank you!"
menu:
  taxes: []
  categories: []
  modifier_groups: []
  items: []
  discounts: []
access:
  roles:
    - {{id: cashier, name: Cashier, level: 10, permissions: [order.create, order.settle, discount.apply]}}
    - {{id: manager, name: Manager, level: 50, inherits: [cashier],
       permissions: [order.void, order.refund, discount.restricted, drawer.open, reports.view]}}
  users:
    # The owner works at every store. Change the PIN with `fleet hash-pin`.
    - {{id: owner, name: Owner, role: manager, stores: ["*"], pin_hash: "{pin_hash}"}}
kitchen:
  stations:
    - {{id: kitchen, name: Kitchen, kind: printer}}
  routing:
    default: [kitchen]
"#,
        name = opts.name,
        name_q = yaml_quote(&opts.name),
        id = opts.tenant,
        currency = opts.currency,
        tz = opts.timezone,
    );
    let path = dir.join("tenant.yaml");
    write_new(&path, &text)?;
    std::fs::create_dir_all(dir.join("stores"))
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(NewTenantResult {
        files: vec![path],
        owner_pin,
    })
}

/// Scaffold `tenants/<tenant>/stores/<store>/store.yaml`, with a device for
/// every station of the tenant so the store validates at once.
pub fn new_store(opts: &NewStore) -> anyhow::Result<PathBuf> {
    require_fleet_repo(&opts.repo)?;
    let id: schemas::StoreId = opts.store.parse()?;
    let (tenant, store) = (id.tenant(), id.store());
    let (repo, _) = check_repo(&DirTree::new(&opts.repo));
    let Some(t) = repo.tenants.get(tenant) else {
        bail!(
            "no tenant `{tenant}` in {} (create it with `fleet new-tenant {tenant}`)",
            opts.repo.display()
        );
    };
    let mut devices = String::new();
    for (i, station) in t.base.kitchen.stations.iter().enumerate() {
        let (kind, port) = match station.kind {
            schemas::model::StationKind::Printer => ("escpos_net", 9100),
            schemas::model::StationKind::Kds => ("kds", 8080),
        };
        devices.push_str(&format!(
            "  # PLACEHOLDER: set the real address of this store's {} device.\n  - {{id: {}-{}, station: {}, type: {kind}, address: \"192.0.2.{}:{port}\"}}\n",
            station.id,
            station.id,
            1,
            station.id,
            10 + i,
        ));
    }
    if devices.is_empty() {
        devices.push_str("  []\n");
    }
    let tz = opts
        .timezone
        .as_deref()
        .map(|tz| format!(", timezone: {tz}"))
        .unwrap_or_default();
    let text = format!(
        r#"# yaml-language-server: $schema=../../../../{SCHEMA_DIR}/store.schema.json
# Store {tenant}/{store}: its identity, what differs here from the tenant base,
# its own users and its kitchen devices. Everything else comes from the tenant.
apiVersion: fleet/v1
kind: Store
store: {{id: {store}, name: {name}{tz}}}
overrides:
  settings: {{}}
  prices: {{}}        # variation or modifier id: price in minor units
  absent: []         # ids of items, variations, modifiers, discounts not sold here
  tax_rates: {{}}     # tax id: "rate"
access:
  users: []          # store-only staff; pin_hash from `fleet hash-pin`
devices:
{devices}"#,
        name = yaml_quote(&opts.name),
    );
    let path = opts
        .repo
        .join("tenants")
        .join(tenant)
        .join("stores")
        .join(store)
        .join("store.yaml");
    write_new(&path, &text)?;
    Ok(path)
}

/// Quote a string for a YAML flow context.
fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}
