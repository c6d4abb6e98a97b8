//! `fleet plan`: which stores change between two revisions of the fleet
//! repo, and how, after each store's own overrides (the pull request view).
//!
//! Both sides are read and rendered in full, so the diff is effective, not
//! textual: a tenant change shows under every store it reaches and not under
//! one whose override masks it. The diff is [`schemas::diff`], the same
//! model the reconciler plans with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemas::StoreState;
use schemas::diag::Diagnostic;
use schemas::diff::{Change, EntityChange, EntityKind, StateDiff, diff_states};
use schemas::load::{DirTree, FleetRepo, SourceTree};
use schemas::render::render_store;
use schemas::validate::{check_repo, has_errors};
use serde::Serialize;

use release::git_tree::GitTree;

pub mod format;

/// A relative price change above this share (percent) is called out as risky.
pub const RISKY_PRICE_CHANGE_PERCENT: u64 = 20;

/// Options of `fleet plan`.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub repo: PathBuf,
    /// The revision the change starts from (e.g. `origin/main`).
    pub base: String,
    /// The revision with the change; `None` is the working tree.
    pub head: Option<String>,
}

/// How a store is affected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreStatus {
    Added,
    Removed,
    Changed,
}

/// What changes at one store.
#[derive(Debug, Clone, Serialize)]
pub struct StorePlan {
    /// `<tenant>/<store>`.
    pub store: String,
    pub status: StoreStatus,
    pub diff: StateDiff,
    /// Things a reviewer should look at twice (deletions, big price moves…).
    pub risks: Vec<String>,
    /// Notes such as a probable rename.
    pub warnings: Vec<String>,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct FleetPlan {
    /// The base commit id.
    pub base: String,
    /// The head commit id, or `working tree`.
    pub head: String,
    pub stores: Vec<StorePlan>,
    /// Stores per tenant at the head (for "x of y stores" summaries).
    pub stores_per_tenant: BTreeMap<String, usize>,
    pub unchanged: usize,
    /// Notes on the head as a whole, such as a default that changed under
    /// a tenant that relied on it.
    pub notes: Vec<String>,
    /// Findings in the base revision (it is rendered as well as it can be).
    pub base_findings: usize,
}

impl FleetPlan {
    pub fn has_changes(&self) -> bool {
        !self.stores.is_empty()
    }
}

/// Why there is no plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path} is not in a Git repository: {source}")]
    NotARepo { path: String, source: git2::Error },
    #[error("cannot resolve revision `{rev}`: {source}")]
    BadRevision { rev: String, source: git2::Error },
    /// The head does not validate; its findings say why.
    #[error("the head revision does not validate ({} error(s))", .0.iter().filter(|d| d.severity == schemas::diag::Severity::Error).count())]
    HeadInvalid(Vec<Diagnostic>),
}

/// Compute the plan of `opts`.
pub fn plan(opts: &PlanOptions) -> Result<FleetPlan, PlanError> {
    let repo = git2::Repository::discover(&opts.repo).map_err(|source| PlanError::NotARepo {
        path: opts.repo.display().to_string(),
        source,
    })?;
    // The fleet repo may be a subdirectory of the Git repository.
    let prefix = subdir_of(&repo, &opts.repo);

    let (base_tree, base_id) =
        GitTree::at_revision(&repo, &opts.base).map_err(|source| PlanError::BadRevision {
            rev: opts.base.clone(),
            source,
        })?;
    let (base_repo, base_diags) = check_repo(&Prefixed {
        inner: &base_tree,
        prefix: &prefix,
    });

    let (head_repo, head_diags, head_name) = match &opts.head {
        Some(rev) => {
            let (tree, id) =
                GitTree::at_revision(&repo, rev).map_err(|source| PlanError::BadRevision {
                    rev: rev.clone(),
                    source,
                })?;
            let (r, d) = check_repo(&Prefixed {
                inner: &tree,
                prefix: &prefix,
            });
            (r, d, id.to_string())
        }
        None => {
            let (r, d) = check_repo(&DirTree::new(&opts.repo));
            (r, d, "working tree".to_owned())
        }
    };
    if has_errors(&head_diags) {
        return Err(PlanError::HeadInvalid(head_diags));
    }
    let base_findings = base_diags
        .iter()
        .filter(|d| d.severity == schemas::diag::Severity::Error)
        .count();
    Ok(compare(
        &base_repo,
        &head_repo,
        base_id.to_string(),
        head_name,
        base_findings,
    ))
}

/// The plan between two loaded repos (pure).
pub fn compare(
    base: &FleetRepo,
    head: &FleetRepo,
    base_name: String,
    head_name: String,
    base_findings: usize,
) -> FleetPlan {
    let base_states = render_all(base);
    let head_states = render_all(head);
    let mut ids: Vec<&String> = base_states.keys().chain(head_states.keys()).collect();
    ids.sort();
    ids.dedup();
    let empty = StoreState::default();
    let mut stores = Vec::new();
    let mut unchanged = 0;
    for id in ids {
        let (status, diff) = match (base_states.get(id), head_states.get(id)) {
            (Some(a), Some(b)) => {
                let d = diff_states(a, b);
                if d.is_empty() {
                    unchanged += 1;
                    continue;
                }
                (StoreStatus::Changed, d)
            }
            (None, Some(b)) => (StoreStatus::Added, diff_states(&empty, b)),
            (Some(a), None) => (StoreStatus::Removed, diff_states(a, &empty)),
            (None, None) => continue,
        };
        let risks = if status == StoreStatus::Changed {
            risks_of(&diff)
        } else {
            Vec::new()
        };
        let warnings = renames_in(&diff);
        stores.push(StorePlan {
            store: id.clone(),
            status,
            diff,
            risks,
            warnings,
        });
    }
    let stores_per_tenant = head
        .tenants
        .iter()
        .map(|(t, ts)| (t.clone(), ts.stores.len()))
        .collect();
    let notes = default_notes(&head_states);
    FleetPlan {
        base: base_name,
        head: head_name,
        stores,
        stores_per_tenant,
        unchanged,
        notes,
        base_findings,
    }
}

/// Tenants whose stores leave `tax.rounding` unset: since edge contract 1's
/// order rules the edge rounds exact halves up (`half_up`) where part one
/// rounded them to even (DESIGN.md §14), so a tenant that relied on the old
/// default sees it here before it signs.
fn default_notes(head: &BTreeMap<String, StoreState>) -> Vec<String> {
    let mut tenants: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, state) in head {
        if !state.settings.contains_key("tax.rounding") {
            let tenant = id.split('/').next().unwrap_or(id);
            *tenants.entry(tenant).or_default() += 1;
        }
    }
    tenants
        .into_iter()
        .map(|(t, n)| {
            format!(
                "tenant `{t}` does not set tax.rounding ({n} store(s)): their orders round exact halves up \
                 (half_up, the default since the edge's order rules; it was half_even). Set \
                 `tax.rounding: half_even` in tenants/{t}/tenant.yaml to keep the old rounding, or \
                 `half_up` to make it explicit"
            )
        })
        .collect()
}

fn render_all(repo: &FleetRepo) -> BTreeMap<String, StoreState> {
    let mut out = BTreeMap::new();
    for (t, ts) in &repo.tenants {
        if ts.base_incomplete {
            continue;
        }
        for (s, store) in &ts.stores {
            out.insert(format!("{t}/{s}"), render_store(&ts.base, &store.file));
        }
    }
    out
}

/// What in a store's diff deserves a reviewer's second look.
fn risks_of(diff: &StateDiff) -> Vec<String> {
    let mut risks = Vec::new();
    for c in &diff.changes {
        match &c.change {
            Change::Removed { .. }
                if matches!(
                    c.kind,
                    EntityKind::Item | EntityKind::User | EntityKind::Role | EntityKind::Tax
                ) =>
            {
                risks.push(format!("deletes {} `{}`", c.kind, c.id));
            }
            Change::Changed { fields } => {
                for f in fields {
                    let leaf = f.field.rsplit('.').next().unwrap_or(&f.field);
                    if matches!(leaf, "price" | "amount")
                        && let (Some(a), Some(b)) = (
                            f.before.as_ref().and_then(|v| v.as_u64()),
                            f.after.as_ref().and_then(|v| v.as_u64()),
                        )
                        && a.abs_diff(b) * 100 > a * RISKY_PRICE_CHANGE_PERCENT
                    {
                        risks.push(format!(
                            "{} `{}` {} moves {} → {} (over {RISKY_PRICE_CHANGE_PERCENT}%)",
                            c.kind, c.id, f.field, a, b
                        ));
                    }
                    if c.kind == EntityKind::Role
                        && (f.field.starts_with("permissions") || f.field.starts_with("inherits"))
                    {
                        risks.push(format!("role `{}` changes {}", c.id, f.field));
                    }
                    if c.kind == EntityKind::Tax && f.field == "rate" {
                        risks.push(format!("tax `{}` rate changes", c.id));
                    }
                }
            }
            _ => {}
        }
    }
    risks.dedup();
    risks
}

/// A removed and an added entity of one kind that are equal but for their id.
fn renames_in(diff: &StateDiff) -> Vec<String> {
    let strip = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("id");
        }
        v
    };
    let removed: Vec<&EntityChange> = diff
        .changes
        .iter()
        .filter(|c| matches!(c.change, Change::Removed { .. }))
        .collect();
    let mut out = Vec::new();
    // Members renamed inside an entity (a variation or modifier id).
    for c in &diff.changes {
        let Change::Changed { fields } = &c.change else {
            continue;
        };
        for gone in fields.iter().filter(|f| f.after.is_none()) {
            for new in fields.iter().filter(|f| f.before.is_none()) {
                if let (Some(a), Some(b)) = (&gone.before, &new.after)
                    && a.is_object()
                    && strip(a) == strip(b)
                {
                    out.push(format!(
                        "{} `{}`: {} → {} looks like a rename of a member id; the store replaces it, and anything keyed by the old id does not carry over",
                        c.kind, c.id, gone.field, new.field
                    ));
                }
            }
        }
    }
    for added in diff.changes.iter() {
        let Change::Added { value: new } = &added.change else {
            continue;
        };
        for r in &removed {
            let Change::Removed { value: old } = &r.change else {
                continue;
            };
            if r.kind == added.kind && r.kind != EntityKind::Setting && strip(old) == strip(new) {
                out.push(format!(
                    "{} `{}` → `{}` looks like a rename: the store deletes `{}` and creates `{}`; anything keyed by the old id (sales history, local overrides) does not carry over",
                    added.kind, r.id, added.id, r.id, added.id
                ));
            }
        }
    }
    out
}

/// The fleet repo's path inside the Git work tree, `""` at the top.
fn subdir_of(repo: &git2::Repository, dir: &Path) -> String {
    let (Some(workdir), Ok(dir)) = (repo.workdir(), dir.canonicalize()) else {
        return String::new();
    };
    let Ok(workdir) = workdir.canonicalize() else {
        return String::new();
    };
    dir.strip_prefix(&workdir)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default()
}

/// A tree seen from a subdirectory.
struct Prefixed<'a> {
    inner: &'a dyn SourceTree,
    prefix: &'a str,
}

impl Prefixed<'_> {
    fn full(&self, p: &str) -> String {
        match (self.prefix.is_empty(), p.is_empty()) {
            (true, _) => p.to_owned(),
            (false, true) => self.prefix.to_owned(),
            (false, false) => format!("{}/{p}", self.prefix),
        }
    }
}

impl SourceTree for Prefixed<'_> {
    fn list(&self, dir: &str) -> std::io::Result<Vec<schemas::load::Entry>> {
        self.inner.list(&self.full(dir))
    }
    fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        self.inner.read(&self.full(path))
    }
}
