//! Rollouts (DESIGN.md §12): a tenant's changed stores get their releases
//! in waves. `fleet sign` starts a rollout ([`stage`]) and signs its first
//! wave; `fleet rollout advance` ([`advance`]) asks the status service where
//! the current wave's stores are and signs the next wave once the gate
//! passes, or aborts (and rolls back); `pause`, `resume` and `abort` change
//! the file. Every decision is a change to `rollouts/<tenant>/<id>.yaml`
//! that the release job commits.
//!
//! Superseding: a change to a tenant's sources while its rollout is active
//! marks that rollout `superseded` and starts a new one over every store
//! whose release differs from its rendered state — from the first wave
//! again, so a fix of a bad change goes through the canaries too. An urgent
//! sign supersedes it and signs every store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use schemas::load::{StoreSource, TenantSources};
use schemas::rollout::{
    Decision, ROLLOUTS_DIR, RolloutFile, RolloutState, RolloutWave, Seen, StoreRef, Tally,
    assign_waves,
};
use sha2::{Digest as _, Sha256};

use crate::ops::sign::{Prepared, Reason, SignContext, Signed};

/// SHA-256 over what a tenant's stores render to (each store's state and
/// windows): what a rollout was started from. Comments, labels and other
/// edits that change no store's release leave it alone.
pub fn sources_digest(tenant: &TenantSources) -> String {
    let mut h = Sha256::new();
    for (dir, store) in &tenant.stores {
        let state = schemas::render::render_store(&tenant.base, &store.file);
        let windows = store
            .file
            .windows
            .as_ref()
            .or(tenant.base.windows.as_ref())
            .filter(|w| !w.deny.is_empty());
        h.update(dir.as_bytes());
        h.update([0]);
        h.update(serde_json::to_vec(&(&state, windows)).expect("plain data"));
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// SHA-256 over the paths and bytes of every file under
/// `tenants/<tenant>/` but the release files: cheap (no parsing), and
/// unchanged only if the sources are, so an unchanged one spares `advance`
/// [`sources_digest`], which renders every store of the tenant. `None`
/// when the files cannot be read (the exact digest decides then).
pub fn files_digest(repo: &Path, tenant: &str) -> Option<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let rel = format!("{rel}/{name}");
            if entry.file_type()?.is_dir() {
                walk(&path, &rel, out)?;
            } else if name != crate::ops::sign::RELEASE_FILE
                && name != crate::ops::sign::SIGNATURE_FILE
            {
                out.push((rel, path));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(&repo.join("tenants").join(tenant), tenant, &mut files).ok()?;
    files.sort();
    let mut h = Sha256::new();
    for (rel, path) in files {
        let bytes = std::fs::read(&path).ok()?;
        h.update(rel.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(&bytes);
    }
    Some(hex::encode(h.finalize()))
}

/// The directory of a tenant's rollout files.
pub fn tenant_dir(repo: &Path, tenant: &str) -> PathBuf {
    repo.join(ROLLOUTS_DIR).join(tenant)
}

/// Every rollout file of `tenant`, oldest first.
pub fn load_tenant(repo: &Path, tenant: &str) -> anyhow::Result<Vec<(PathBuf, RolloutFile)>> {
    let dir = tenant_dir(repo, tenant);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut out = Vec::new();
    for e in entries {
        let path = e
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|x| x == "yaml") {
            out.push((path.clone(), read(&path)?));
        }
    }
    // Oldest first; two started in one second: the one no longer active
    // (superseded by the other) first.
    out.sort_by_key(|(_, r)| (r.started_at, r.state.is_active(), r.id.clone()));
    Ok(out)
}

/// Every rollout file of the repo, by tenant, oldest first.
pub fn load_all(repo: &Path) -> anyhow::Result<Vec<(PathBuf, RolloutFile)>> {
    let dir = repo.join(ROLLOUTS_DIR);
    let mut tenants = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for e in entries {
                let e = e.with_context(|| format!("reading {}", dir.display()))?;
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    tenants.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    }
    tenants.sort();
    let mut out = Vec::new();
    for t in tenants {
        out.extend(load_tenant(repo, &t)?);
    }
    Ok(out)
}

fn read(path: &Path) -> anyhow::Result<RolloutFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file = schemas::yaml::decode::<RolloutFile>(&path.display().to_string(), &text)
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    if file.current_wave >= file.waves.len() {
        bail!(
            "{}: current_wave {} but {} wave(s): the file was edited by hand or mangled in a merge; restore it from Git history",
            path.display(),
            file.current_wave,
            file.waves.len()
        );
    }
    Ok(file)
}

/// Write a rollout file (atomically).
pub fn write(path: &Path, file: &RolloutFile) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut text = String::from(
        "# Written by `fleet sign` and `fleet rollout`; commit it with the releases.\n",
    );
    text.push_str(&schemas::yaml::to_canonical_yaml(file).context("serializing the rollout")?);
    release::applied::write_atomically(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn decide(file: &mut RolloutFile, at: DateTime<Utc>, what: impl Into<String>) {
    file.history.push(Decision {
        at,
        what: what.into(),
    });
}

// ---------------------------------------------------------------- sign

/// What `fleet sign` does with one tenant's prepared releases.
#[derive(Debug, Default)]
pub struct Staging {
    /// Stores whose new release waits for a later wave.
    held: BTreeSet<String>,
    /// Stores of a new rollout's first wave (their revisions go in its file).
    first_wave: BTreeSet<String>,
    /// Stores of the superseded rollout's wave in flight, already at the new
    /// state: the new rollout gates on the revisions they were signed.
    carried: BTreeMap<String, u64>,
    /// A rollout started now.
    started: Option<(PathBuf, RolloutFile)>,
    /// Rollout files changed (superseded).
    changed: Vec<(PathBuf, RolloutFile)>,
    /// One line per thing that happened, for the operator.
    pub notes: Vec<String>,
}

impl Staging {
    pub fn holds(&self, store: &str) -> bool {
        self.held.contains(store)
    }

    pub fn in_first_wave(&self, store: &str) -> bool {
        self.first_wave.contains(store)
    }

    /// Write the rollout files, the new one with the revisions its first
    /// wave was signed.
    pub fn write(
        self,
        ctx: &SignContext<'_>,
        revisions: BTreeMap<String, u64>,
    ) -> anyhow::Result<()> {
        for (path, file) in &self.changed {
            write(path, file)?;
        }
        if let Some((path, mut file)) = self.started {
            let current = file.current_wave;
            for (i, wave) in file.waves.iter_mut().enumerate() {
                for s in &wave.stores {
                    if let Some(rev) = self.carried.get(s) {
                        wave.revisions.insert(s.clone(), *rev);
                    }
                }
                if i == current {
                    wave.revisions.extend(revisions.clone());
                    wave.signed_at = Some(ctx.now);
                }
            }
            write(&path, &file)?;
        }
        Ok(())
    }
}

/// Decide which of a tenant's prepared releases `fleet sign` writes now.
/// Only changes are staged: a store's first release, a refresh and a
/// re-sign of the same state go out at once.
pub fn stage(
    ctx: &SignContext<'_>,
    tenant: &TenantSources,
    prepared: &[(&StoreSource, Prepared)],
) -> anyhow::Result<Staging> {
    let mut staging = Staging::default();
    let rollouts = load_tenant(&ctx.opts.repo, &tenant.dir)?;
    let digest = sources_digest(tenant);
    let active: Vec<&(PathBuf, RolloutFile)> = rollouts
        .iter()
        .filter(|(_, r)| r.state.is_active())
        .collect();
    let changed: Vec<&(&StoreSource, Prepared)> = prepared
        .iter()
        .filter(|(_, p)| p.changed && p.reason != Reason::First)
        .collect();
    let supersede = |staging: &mut Staging, by: &str| {
        for (path, r) in &active {
            let mut r = r.clone();
            r.state = RolloutState::Superseded;
            r.superseded_by = Some(by.to_owned());
            decide(&mut r, ctx.now, format!("superseded by {by}"));
            staging.notes.push(format!(
                "{}: rollout {} superseded by {by}",
                tenant.dir, r.id
            ));
            staging.changed.push((path.clone(), r));
        }
    };
    let policy = match (&tenant.base.rollout, ctx.opts.urgent) {
        (_, true) => {
            supersede(
                &mut staging,
                &format!("an urgent sign at {}", short(&ctx.source_commit)),
            );
            return Ok(staging);
        }
        (None, false) => {
            supersede(&mut staging, "a sign without rollout: in the tenant");
            return Ok(staging);
        }
        (Some(p), false) => p,
    };
    // The same sources as the active rollout: its later waves stay held.
    if let Some((_, r)) = active.iter().find(|(_, r)| r.sources_digest == digest) {
        let signed: BTreeSet<&str> = r
            .waves
            .iter()
            .filter(|w| w.signed_at.is_some())
            .flat_map(|w| w.stores.iter().map(String::as_str))
            .collect();
        for (s, _) in &changed {
            if !signed.contains(s.dir.as_str()) {
                staging.held.insert(s.dir.clone());
            }
        }
        if !staging.held.is_empty() {
            staging.notes.push(format!(
                "{}: rollout {} is {}; {} store(s) wait for its later waves (fleet rollout advance)",
                tenant.dir,
                r.id,
                r.state.as_str(),
                staging.held.len()
            ));
        }
        return Ok(staging);
    }
    // After an abort the same sources do not start again: the newest
    // rollout decides.
    if let Some((_, r)) = rollouts
        .last()
        .filter(|(_, r)| r.state == RolloutState::Aborted && r.sources_digest == digest)
    {
        staging
            .held
            .extend(changed.iter().map(|(s, _)| s.dir.clone()));
        if !changed.is_empty() {
            staging.notes.push(format!(
                "{}: rollout {} of these sources was aborted ({}); not starting again until they change (or sign --urgent)",
                tenant.dir,
                r.id,
                r.abort_reason.as_deref().unwrap_or("no reason recorded")
            ));
        }
        return Ok(staging);
    }
    // The wave in flight of a rollout being superseded keeps its gate: its
    // stores already at the new state are carried into the new rollout
    // with the revisions they were signed.
    let changed_dirs: BTreeSet<&str> = changed.iter().map(|(s, _)| s.dir.as_str()).collect();
    for (_, r) in &active {
        if let Some(w) = r
            .waves
            .get(r.current_wave)
            .filter(|w| w.signed_at.is_some())
        {
            for (store, rev) in &w.revisions {
                if !changed_dirs.contains(store.as_str()) && tenant.stores.contains_key(store) {
                    staging.carried.insert(store.clone(), *rev);
                }
            }
        }
    }
    let stamp = ctx.now.format("%Y%m%d-%H%M%S");
    let mut id = format!("{stamp}-{}", short(&ctx.source_commit));
    let dir = tenant_dir(&ctx.opts.repo, &tenant.dir);
    let mut n = 1;
    while rollouts.iter().any(|(_, r)| r.id == id) || dir.join(format!("{id}.yaml")).exists() {
        n += 1;
        id = format!("{stamp}-{}-{n}", short(&ctx.source_commit));
    }
    if changed.is_empty() && staging.carried.is_empty() {
        supersede(&mut staging, "a change of the sources that moves no store");
        return Ok(staging);
    }
    supersede(&mut staging, &id);
    let mut refs: Vec<StoreRef<'_>> = changed
        .iter()
        .map(|(s, _)| StoreRef {
            id: &s.dir,
            labels: &s.file.store.labels,
        })
        .collect();
    for store in staging.carried.keys() {
        if let Some(s) = tenant.stores.get(store) {
            refs.push(StoreRef {
                id: &s.dir,
                labels: &s.file.store.labels,
            });
        }
    }
    let (assigned, unselected) = assign_waves(policy, &refs);
    if !unselected.is_empty() {
        bail!(
            "{}: no rollout wave takes {}; run `fleet validate` (rollout/uncovered)",
            tenant.dir,
            unselected.join(", ")
        );
    }
    let waves: Vec<RolloutWave> = policy
        .waves
        .iter()
        .zip(assigned)
        .map(|(w, stores)| RolloutWave {
            name: w.name.to_string(),
            stores,
            signed_at: None,
            revisions: BTreeMap::new(),
            complete_at: None,
        })
        .collect();
    let current = waves.iter().position(|w| !w.stores.is_empty()).unwrap_or(0);
    staging.first_wave = waves[current]
        .stores
        .iter()
        .filter(|s| changed_dirs.contains(s.as_str()))
        .cloned()
        .collect();
    for (s, _) in &changed {
        if !staging.first_wave.contains(&s.dir) {
            staging.held.insert(s.dir.clone());
        }
    }
    let mut file = RolloutFile {
        api_version: schemas::model::ApiVersion,
        kind: schemas::model::RolloutKind,
        id: id.clone(),
        tenant: tenant.dir.clone(),
        state: RolloutState::InProgress,
        source_commit: ctx.source_commit.clone(),
        base_commit: ctx.source_commit.clone(),
        sources_digest: digest,
        files_digest: files_digest(&ctx.opts.repo, &tenant.dir),
        // To the nanosecond: two rollouts signed in one second still order.
        started_at: ctx.opts.now,
        effective_at: ctx.opts.effective_at,
        current_wave: current,
        bake: policy.bake,
        abort: policy.abort,
        waves,
        abort_reason: None,
        superseded_by: None,
        rolled_back: BTreeMap::new(),
        history: Vec::new(),
    };
    let mut what = format!(
        "started: {} store(s) in {} wave(s); wave {} signed ({} store(s))",
        changed.len() + staging.carried.len(),
        file.waves.len(),
        file.waves[current].name,
        staging.first_wave.len()
    );
    if !staging.carried.is_empty() {
        what.push_str(&format!(
            "; {} store(s) of the superseded rollout's wave in flight keep their gate",
            staging.carried.len()
        ));
    }
    decide(&mut file, ctx.now, what.clone());
    staging
        .notes
        .push(format!("{}: rollout {id} {what}", tenant.dir));
    staging.started = Some((dir.join(format!("{id}.yaml")), file));
    Ok(staging)
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

// ---------------------------------------------------------------- advance

/// One store's summary as `GET /api/v1/stores` answers it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct StoreStatus {
    pub store: String,
    pub state: String,
    pub applied_revision: Option<u64>,
    /// The desired revision the store's last report named.
    #[serde(default)]
    pub reported_revision: Option<u64>,
}

/// The stores of `tenant` as the status service behind `api` sees them.
pub fn store_statuses(
    api: &crate::ops::status_api::StatusApi,
    tenant: &str,
) -> anyhow::Result<BTreeMap<String, StoreStatus>> {
    let (code, body) = api.get(&format!("/api/v1/stores?tenant={tenant}"))?;
    if code != 200 {
        bail!("GET /api/v1/stores?tenant={tenant} answered {code}: {body}");
    }
    let stores: Vec<StoreStatus> = serde_json::from_value(body["stores"].clone())
        .map_err(|e| anyhow::anyhow!("the status service's store list: {e}"))?;
    Ok(stores.into_iter().map(|s| (s.store.clone(), s)).collect())
}

/// A wave's tally from the status service's store summaries.
pub fn tally(wave: &RolloutWave, tenant: &str, status: &BTreeMap<String, StoreStatus>) -> Tally {
    Tally::of(wave, |s| {
        status.get(&format!("{tenant}/{s}")).map(|s| Seen {
            state: &s.state,
            applied_revision: s.applied_revision,
            reported_revision: s.reported_revision,
        })
    })
}

/// What `advance` did to one rollout.
#[derive(Debug, Clone)]
pub struct Advanced {
    pub tenant: String,
    pub id: String,
    pub line: String,
    pub signed: Vec<Signed>,
}

/// Every active rollout's gate, against the status service's view of its
/// stores (`status(tenant)`), deciding and signing as DESIGN.md §12 says.
/// The status service is asked one tenant at a time; the tenants are then
/// decided and signed on every core (their stores and files are disjoint),
/// each tenant's rollouts in order.
pub fn advance(
    ctx: &SignContext<'_>,
    mut status: impl FnMut(&str) -> anyhow::Result<BTreeMap<String, StoreStatus>>,
) -> anyhow::Result<Vec<Advanced>> {
    type Job<'r> = (
        &'r TenantSources,
        BTreeMap<String, StoreStatus>,
        Vec<(PathBuf, RolloutFile)>,
    );
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for (path, file) in load_all(&ctx.opts.repo)? {
        if file.state != RolloutState::InProgress {
            continue;
        }
        let Some(tenant) = ctx.repo.tenants.get(&file.tenant) else {
            bail!(
                "rollout {} is for tenant {}, which the repo no longer has",
                file.id,
                file.tenant
            );
        };
        match jobs.iter_mut().find(|(t, _, _)| t.dir == tenant.dir) {
            Some((_, _, files)) => files.push((path, file)),
            None => {
                let stores = status(&file.tenant)?;
                jobs.push((tenant, stores, vec![(path, file)]));
            }
        }
    }
    let done = crate::ops::sign::in_parallel(&jobs, 1, |(tenant, stores, files)| {
        let mut out = Vec::new();
        for (path, file) in files {
            let mut file = file.clone();
            let mut signed = Vec::new();
            let line = step(ctx, tenant, &mut file, stores, &mut signed)?;
            write(path, &file)?;
            out.push(Advanced {
                tenant: file.tenant.clone(),
                id: file.id.clone(),
                line,
                signed,
            });
        }
        Ok(out)
    })?;
    Ok(done.into_iter().flatten().collect())
}

/// One rollout's decision.
fn step(
    ctx: &SignContext<'_>,
    tenant: &TenantSources,
    file: &mut RolloutFile,
    status: &BTreeMap<String, StoreStatus>,
    signed: &mut Vec<Signed>,
) -> anyhow::Result<String> {
    let now = ctx.now;
    let i = file.current_wave;
    let Some(wave) = file.waves.get(i) else {
        bail!("rollout {}: no wave {i}", file.id);
    };
    let tally = tally(wave, &file.tenant, status);
    let name = file.waves[i].name.clone();
    if let Some(abort) = file.abort
        && tally.past_threshold(&abort)
    {
        let reason = format!(
            "wave {name}: {} of {} reporting stores failed or refused (threshold {}%, at least {})",
            tally.failed,
            tally.online(),
            abort.failed_percent,
            abort.min_stores
        );
        return abort_rollout(ctx, tenant, file, reason, abort.rollback, signed);
    }
    if !tally.complete() {
        if file.waves[i].complete_at.take().is_some() {
            decide(
                file,
                now,
                format!("wave {name} no longer complete: {tally}"),
            );
        }
        return Ok(format!("wave {name}: {tally}; waiting"));
    }
    let complete_at = *file.waves[i].complete_at.get_or_insert(now);
    if complete_at == now {
        decide(file, now, format!("wave {name} complete: {tally}"));
    }
    let bake = file
        .bake
        .and_then(|b| chrono::Duration::from_std(b.0).ok())
        .unwrap_or_default();
    if now < complete_at + bake {
        return Ok(format!(
            "wave {name}: {tally}; baking until {}",
            (complete_at + bake).format("%Y-%m-%d %H:%M UTC")
        ));
    }
    // The gate passed: the next wave with stores, or done.
    let Some(next) = (i + 1..file.waves.len()).find(|&j| !file.waves[j].stores.is_empty()) else {
        file.state = RolloutState::Completed;
        decide(file, now, format!("completed after wave {name}"));
        return Ok(format!("wave {name}: {tally}; rollout completed"));
    };
    let files_unchanged = file.files_digest.is_some()
        && files_digest(&ctx.opts.repo, &tenant.dir) == file.files_digest;
    if !files_unchanged && sources_digest(tenant) != file.sources_digest {
        return Ok(format!(
            "wave {name} passed, but tenant {}'s sources changed since the rollout started: run `fleet sign`, which supersedes it",
            file.tenant
        ));
    }
    let wave_stores: BTreeSet<String> = file.waves[next].stores.iter().cloned().collect();
    let mut revisions = BTreeMap::new();
    let stores: Vec<_> = tenant
        .stores
        .values()
        .filter(|s| wave_stores.contains(&s.dir))
        .map(|s| (tenant, s, file.effective_at))
        .collect();
    let prepared = ctx.prepare_moving_many(&stores)?;
    let mut jobs = Vec::new();
    for ((_, store, _), p) in stores.iter().zip(&prepared) {
        match p {
            Some(p) => jobs.push((p, p.reason)),
            // Already at the rollout's state (carried from a superseded
            // rollout): its gate is the revision it has.
            None => {
                if let Some(current) = crate::ops::sign::read_current(&ctx.store_dir(tenant, store))
                {
                    revisions.insert(store.dir.clone(), current.revision);
                }
            }
        }
    }
    for s in ctx.write_many(&jobs)? {
        let dir = s.store.rsplit('/').next().unwrap_or_default().to_owned();
        revisions.insert(dir, s.revision);
        signed.push(s);
    }
    let next_name = file.waves[next].name.clone();
    let wave = &mut file.waves[next];
    wave.revisions = revisions;
    wave.signed_at = Some(now);
    file.current_wave = next;
    let what = format!(
        "wave {name} passed ({tally}); wave {next_name} signed ({} store(s))",
        signed.len()
    );
    decide(file, now, what.clone());
    Ok(what)
}

/// Mark `file` aborted and, with `rollback`, sign each moved store's
/// previous release again as a new, urgent revision.
pub fn abort_rollout(
    ctx: &SignContext<'_>,
    tenant: &TenantSources,
    file: &mut RolloutFile,
    reason: String,
    rollback: bool,
    signed: &mut Vec<Signed>,
) -> anyhow::Result<String> {
    file.state = RolloutState::Aborted;
    file.abort_reason = Some(reason.clone());
    decide(file, ctx.now, format!("aborted: {reason}"));
    if !rollback {
        return Ok(format!("aborted: {reason}; later waves never move"));
    }
    let git = ctx.git_repo();
    let base = git
        .revparse_single(&file.base_commit)
        .and_then(|o| o.peel_to_tree())
        .with_context(|| {
            format!(
                "reading the rollout's base commit {} to roll back",
                file.base_commit
            )
        })?;
    let moved: Vec<String> = file
        .waves
        .iter()
        .flat_map(|w| w.revisions.keys().cloned())
        .collect();
    let mut missing = Vec::new();
    for store_dir in &moved {
        let Some(store) = tenant.stores.get(store_dir) else {
            missing.push(store_dir.clone());
            continue;
        };
        let rel = crate::ops::sign::store_rel_dir(tenant, store);
        let previous = base
            .get_path(Path::new(&format!(
                "{rel}/{}",
                crate::ops::sign::RELEASE_FILE
            )))
            .ok()
            .and_then(|e| e.to_object(&git).ok())
            .and_then(|o| o.peel_to_blob().ok())
            .and_then(|b| {
                let text = std::str::from_utf8(b.content()).ok()?.to_owned();
                schemas::yaml::decode::<schemas::Release>(&rel, &text).ok()
            });
        let Some(previous) = previous else {
            missing.push(store_dir.clone());
            continue;
        };
        let store_dir_path = ctx.store_dir(tenant, store);
        let current = crate::ops::sign::read_current(&store_dir_path);
        let revision = current.as_ref().map_or(previous.revision, |c| c.revision) + 1;
        let release = ctx.finish(
            schemas::Release {
                revision,
                issued_at: ctx.now,
                expires_at: ctx.expires_at,
                effective_at: None,
                urgent: true,
                ..previous
            },
            None,
        );
        let p = Prepared {
            store_dir: store_dir_path,
            release,
            reason: Reason::Rollback,
            changed: true,
            current,
        };
        let s = ctx.write(&p, Reason::Rollback)?;
        file.rolled_back.insert(store_dir.clone(), s.revision);
        signed.push(s);
    }
    let mut what = format!(
        "aborted: {reason}; rolled back {} store(s) to their previous state",
        file.rolled_back.len()
    );
    if !missing.is_empty() {
        what.push_str(&format!(
            " ({} had no previous release to return to: {})",
            missing.len(),
            missing.join(", ")
        ));
    }
    decide(file, ctx.now, what.clone());
    Ok(what)
}

/// Find one rollout by id (or a unique prefix of it).
pub fn find(repo: &Path, id: &str) -> anyhow::Result<(PathBuf, RolloutFile)> {
    let all = load_all(repo)?;
    let mut hits: Vec<(PathBuf, RolloutFile)> = all
        .into_iter()
        .filter(|(_, r)| r.id.starts_with(id))
        .collect();
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => bail!("no rollout {id} in {}", repo.join(ROLLOUTS_DIR).display()),
        n => bail!("{n} rollouts start with {id}: give more of the id"),
    }
}

/// `pause` or `resume` one rollout (or every active one): the file's state.
pub fn set_paused(
    repo: &Path,
    id: Option<&str>,
    paused: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let targets = match id {
        Some(id) => vec![find(repo, id)?],
        None => load_all(repo)?
            .into_iter()
            .filter(|(_, r)| r.state.is_active())
            .collect(),
    };
    let (from, to, verb) = if paused {
        (RolloutState::InProgress, RolloutState::Paused, "paused")
    } else {
        (RolloutState::Paused, RolloutState::InProgress, "resumed")
    };
    let mut lines = Vec::new();
    for (path, mut r) in targets {
        if r.state == to {
            lines.push(format!("{}: already {}", r.id, to.as_str()));
            continue;
        }
        if r.state != from {
            bail!(
                "rollout {} is {}: it cannot be {verb}",
                r.id,
                r.state.as_str()
            );
        }
        r.state = to;
        decide(&mut r, now, verb);
        write(&path, &r)?;
        lines.push(format!("{}: {verb}", r.id));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_digest_follows_sources_and_ignores_release_files() {
        let repo = tempfile::tempdir().expect("tempdir");
        let store = repo.path().join("tenants/acme/stores/soho");
        std::fs::create_dir_all(&store).expect("dirs");
        std::fs::write(repo.path().join("tenants/acme/menu.yaml"), "a").expect("menu");
        std::fs::write(store.join("store.yaml"), "b").expect("store");
        let first = files_digest(repo.path(), "acme").expect("digest");
        std::fs::write(store.join("release.yaml"), "r").expect("release");
        std::fs::write(store.join("release.yaml.minisig"), "s").expect("sig");
        assert_eq!(files_digest(repo.path(), "acme").as_ref(), Some(&first));
        std::fs::write(store.join("store.yaml"), "b2").expect("store");
        assert_ne!(files_digest(repo.path(), "acme").as_ref(), Some(&first));
        // Bytes moved between files are a change too.
        std::fs::write(store.join("store.yaml"), "").expect("store");
        std::fs::write(repo.path().join("tenants/acme/menu.yaml"), "ab").expect("menu");
        assert_ne!(files_digest(repo.path(), "acme").as_ref(), Some(&first));
        assert_eq!(files_digest(repo.path(), "nobody"), None);
    }
}
