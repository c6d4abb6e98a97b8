//! `fleet sign`: render every store and write a new signed release for each
//! store whose desired state changed or whose release expires soon.
//!
//! Revisions only go up: a new release is the previous revision + 1, where
//! the previous revision is the one in `release.yaml`, or, if that file was
//! deleted, the highest one in the Git history of that path. A revision is
//! never reused, so stores never see two different releases with one number.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDateTime, SubsecRound as _, Utc};
use schemas::load::{FleetRepo, StoreSource, TenantSources};
use schemas::model::StoreReleaseKind;
use schemas::render::render_store;
use schemas::state::{ReleaseApiVersion, trusted_comment};
use schemas::{Release, StoreState};

use crate::ops::validate::validate_dir;

/// `--urgent` and `--effective-at` of `fleet sign`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub urgent: bool,
    pub effective_at: Option<NaiveDateTime>,
}

/// Options of `fleet sign`.
#[derive(Debug)]
pub struct SignOptions {
    pub repo: PathBuf,
    pub key: minisign::SecretKey,
    /// Validity of a new release; default from fleet.yaml (90 days).
    pub expires_in: Option<Duration>,
    /// Re-sign releases that expire within this; default from fleet.yaml (30 days).
    pub refresh_within: Option<Duration>,
    /// Re-sign every store, changed or not (after a key rotation).
    pub all: bool,
    /// Applied at once at the stores, windows ignored, waves skipped; a
    /// pending effective time is dropped (DESIGN.md §12).
    pub urgent: bool,
    /// Store-local time the changed stores apply their release at.
    pub effective_at: Option<NaiveDateTime>,
    pub now: DateTime<Utc>,
}

impl SignOptions {
    /// Options with fleet.yaml's validity, nothing forced, urgent or timed.
    pub fn new(repo: PathBuf, key: minisign::SecretKey, now: DateTime<Utc>) -> SignOptions {
        SignOptions {
            repo,
            key,
            expires_in: None,
            refresh_within: None,
            all: false,
            urgent: false,
            effective_at: None,
            now,
        }
    }
}

/// Why a store got a new release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// It had no release.
    First,
    /// Its rendered state differs from its release.
    Changed,
    /// Its release expires within the refresh window.
    Refresh,
    /// `--all` was given.
    Forced,
    /// A rollout was aborted: the previous state again, urgent.
    Rollback,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::First => "first release",
            Reason::Changed => "desired state changed",
            Reason::Refresh => "refreshed before expiry",
            Reason::Forced => "re-signed on request (--all)",
            Reason::Rollback => "rolled back: the rollout was aborted",
        })
    }
}

/// One store that got a new release.
#[derive(Debug, Clone)]
pub struct Signed {
    pub store: String,
    pub revision: u64,
    pub reason: Reason,
    /// What the release says it is: `fleet/v2` once it uses a part-two field.
    pub api_version: ReleaseApiVersion,
}

/// What `fleet sign` did.
#[derive(Debug, Default)]
pub struct SignReport {
    pub signed: Vec<Signed>,
    pub unchanged: usize,
    /// Changed stores held for a later rollout wave.
    pub held: usize,
    /// What happened to rollouts, one line each.
    pub rollouts: Vec<String>,
    pub source_commit: String,
}

/// The store's tenant-key wrap as its release carries it (base64 of
/// `tenant-key.age`), when its state has a value for every store.
fn tenant_key_wrap(store_dir: &Path, state: &StoreState) -> anyhow::Result<Option<String>> {
    use base64::Engine as _;
    if !schemas::secrets::uses_tenant_key(state) {
        return Ok(None);
    }
    let path = store_dir.join(schemas::secrets::TENANT_KEY_WRAP);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )),
        // Validation warned: the store holds those entities back until a rewrap.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// When a new release of a store takes effect.
struct Schedule {
    effective_at: Option<NaiveDateTime>,
    /// `effective_at` in the store's time zone.
    effective_instant: Option<DateTime<Utc>>,
    urgent: bool,
}

/// The effective time and urgency of a store's new release: `--urgent`
/// drops any effective time; `--effective-at` sets it for a changed store;
/// otherwise a pending effective time of the current release is kept (a
/// later non-urgent sign does not make a scheduled change apply early), and
/// a refresh of the same state keeps its urgency.
fn schedule(
    urgent: bool,
    wanted: Option<NaiveDateTime>,
    tenant: &TenantSources,
    store: &StoreSource,
    current: Option<CurrentTiming>,
    reason: Reason,
    now: DateTime<Utc>,
) -> anyhow::Result<Schedule> {
    if urgent {
        return Ok(Schedule {
            effective_at: None,
            effective_instant: None,
            urgent: true,
        });
    }
    let effective_at = match (wanted, reason) {
        (Some(at), Reason::Changed | Reason::First) => Some(at),
        _ => current.and_then(|c| c.effective_at),
    };
    let Some(at) = effective_at else {
        let urgent = reason == Reason::Refresh && current.is_some_and(|c| c.urgent);
        return Ok(Schedule {
            effective_at: None,
            effective_instant: None,
            urgent,
        });
    };
    let name = store
        .file
        .store
        .timezone
        .as_deref()
        .or(tenant.base.info.as_ref().map(|i| i.timezone.as_str()))
        .unwrap_or("UTC");
    let tz = schemas::rollout::time_zone(name).with_context(|| {
        format!("time zone `{name}` is not in the time zone database, so {at} cannot be placed")
    })?;
    let instant = schemas::rollout::local_instant(at, tz);
    // A time that has passed is no longer pending: drop it.
    if wanted.is_none() && instant <= now {
        return Ok(Schedule {
            effective_at: None,
            effective_instant: None,
            urgent: false,
        });
    }
    Ok(Schedule {
        effective_at: Some(at),
        effective_instant: Some(instant),
        urgent: false,
    })
}

/// What [`schedule`] needs of the current release.
#[derive(Debug, Clone, Copy)]
struct CurrentTiming {
    effective_at: Option<NaiveDateTime>,
    urgent: bool,
}

/// The head of a release file: everything signing needs of the current
/// release but its state, which [`read_head`] hands back as text.
#[derive(Debug, Clone, serde::Deserialize)]
struct Head {
    revision: u64,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    tenant_key: Option<String>,
    #[serde(default)]
    windows: Option<schemas::rollout::Windows>,
    #[serde(default)]
    effective_at: Option<NaiveDateTime>,
    #[serde(default)]
    urgent: bool,
}

/// A current release read the cheap way: its head decoded, its state
/// section (`state:` to the end) kept as text. `None` when the file is
/// not a regular file, or not laid out as `fleet sign` writes it; the
/// caller then reads it the full way.
fn read_head(path: &Path) -> Option<(Head, String)> {
    if !path.symlink_metadata().ok()?.is_file() {
        return None;
    }
    let mut text = std::fs::read_to_string(path).ok()?;
    let at = text.find("\nstate:\n")? + 1;
    let head: Head = schemas::yaml::decode(&path.display().to_string(), &text[..at]).ok()?;
    Some((head, text.split_off(at)))
}

/// `state` as a release's state section: `state:` and the canonical YAML
/// under it, the bytes [`release_bytes`] writes for it.
fn state_section(state: &StoreState) -> String {
    #[derive(serde::Serialize)]
    struct Only<'a> {
        state: &'a StoreState,
    }
    schemas::yaml::to_canonical_yaml(&Only { state }).expect("a state is plain data")
}

/// File names of a store's release.
pub const RELEASE_FILE: &str = "release.yaml";
pub const SIGNATURE_FILE: &str = "release.yaml.minisig";

/// What every release of one `fleet sign` (or `fleet rollout advance`)
/// run shares: the validated repo, its Git history, the clock and the
/// validity.
pub struct SignContext<'a> {
    pub opts: &'a SignOptions,
    pub repo: schemas::FleetRepo,
    /// The repo's Git history (behind a lock: stores are prepared and
    /// signed on every core, and only a store with no readable release
    /// reads history).
    pub git: std::sync::Mutex<git2::Repository>,
    pub source_commit: String,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub refresh_at: DateTime<Utc>,
}

impl std::fmt::Debug for SignContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignContext")
            .field("repo", &self.opts.repo)
            .field("source_commit", &self.source_commit)
            .finish_non_exhaustive()
    }
}

impl<'a> SignContext<'a> {
    /// Validate the repo at `opts.repo` (an invalid repo is never signed)
    /// and read HEAD and the validity policy.
    pub fn new(opts: &'a SignOptions) -> anyhow::Result<SignContext<'a>> {
        let validation = validate_dir(&opts.repo)?;
        if !validation.is_valid() {
            bail!(
                "the fleet repo does not validate ({} error(s)); run `fleet validate` and fix them: an invalid repo is never signed",
                validation.errors()
            );
        }
        let repo = validation.repo;
        let git = git2::Repository::discover(&opts.repo).with_context(|| {
            format!(
                "{} is not in a Git repository; releases record the commit they were rendered from",
                opts.repo.display()
            )
        })?;
        let source_commit = git
            .head()
            .and_then(|h| h.peel_to_commit())
            .context("reading HEAD (is there a commit yet?)")?
            .id()
            .to_string();
        let policy = repo.fleet.as_ref().map(|f| f.release).unwrap_or_default();
        let day = Duration::from_secs(86_400);
        let expires_in = opts.expires_in.unwrap_or(day * policy.expires_in_days);
        let refresh_within = opts
            .refresh_within
            .unwrap_or(day * policy.refresh_within_days);
        if refresh_within >= expires_in {
            bail!(
                "--refresh-within must be shorter than --expires-in, or every run would re-sign every store"
            );
        }
        let now = opts.now.trunc_subsecs(0);
        let expires_at =
            now + chrono::Duration::from_std(expires_in).context("--expires-in is too long")?;
        let refresh_at = now
            + chrono::Duration::from_std(refresh_within).context("--refresh-within is too long")?;
        Ok(SignContext {
            opts,
            repo,
            git: std::sync::Mutex::new(git),
            source_commit,
            now,
            expires_at,
            refresh_at,
        })
    }

    /// The directory of a store's release files.
    pub fn store_dir(&self, tenant: &TenantSources, store: &StoreSource) -> PathBuf {
        self.opts.repo.join(store_rel_dir(tenant, store))
    }

    /// The release `store` would get now, and why; `None` when its current
    /// release is the same and not about to expire.
    pub fn prepare(
        &self,
        tenant: &TenantSources,
        store: &StoreSource,
    ) -> anyhow::Result<Option<Prepared>> {
        self.prepare_at(tenant, store, self.opts.effective_at)
    }

    /// [`SignContext::prepare`] with the effective time of a rollout's
    /// later wave instead of `--effective-at`.
    pub fn prepare_at(
        &self,
        tenant: &TenantSources,
        store: &StoreSource,
        effective_at: Option<NaiveDateTime>,
    ) -> anyhow::Result<Option<Prepared>> {
        self.prepare_with(tenant, store, effective_at, true)
    }

    /// [`SignContext::prepare_at`] for a store a rollout wave moves: its
    /// state was found to differ when the rollout started, so a current
    /// release whose state section differs as text is taken as changed
    /// without decoding it (it can only be the same state in an older
    /// Fleet's bytes, and then the store gets a new revision of it).
    pub fn prepare_moving(
        &self,
        tenant: &TenantSources,
        store: &StoreSource,
        effective_at: Option<NaiveDateTime>,
    ) -> anyhow::Result<Option<Prepared>> {
        self.prepare_with(tenant, store, effective_at, false)
    }

    /// Prepare `store`'s next release. The current release's state is
    /// compared as text first (the same state gives the same bytes); when
    /// the text differs and `exact`, the whole release is decoded, so that
    /// only a real change counts as one.
    fn prepare_with(
        &self,
        tenant: &TenantSources,
        store: &StoreSource,
        effective_at: Option<NaiveDateTime>,
        exact: bool,
    ) -> anyhow::Result<Option<Prepared>> {
        let store_dir = self.store_dir(tenant, store);
        let full_id = format!("{}/{}", tenant.dir, store.dir);
        let state = render_store(&tenant.base, &store.file);
        // Ciphertext is copied, never decrypted (DESIGN.md §11); a
        // store's release carries only values meant for it.
        let foreign = schemas::secrets::foreign_values(&state, &store.dir);
        if !foreign.is_empty() {
            bail!(
                "{full_id}: refusing to sign encrypted values not meant for this store ({}); run `fleet validate`",
                foreign.join(", ")
            );
        }
        let tenant_key = tenant_key_wrap(&store_dir, &state)?;
        // The store's windows replace the tenant's (DESIGN.md §12).
        let windows = store
            .file
            .windows
            .as_ref()
            .or(tenant.base.windows.as_ref())
            .filter(|w| !w.deny.is_empty())
            .cloned();
        let path = store_dir.join(RELEASE_FILE);
        let head = read_head(&path).and_then(|(head, text)| {
            let same_state = text == state_section(&state);
            (same_state || !exact).then_some((head, same_state))
        });
        let next = match head {
            Some((head, same_state)) => {
                let same = same_state && head.tenant_key == tenant_key && head.windows == windows;
                let reason = if self.opts.all {
                    Reason::Forced
                } else if same && head.expires_at > self.refresh_at {
                    return Ok(None);
                } else if same {
                    Reason::Refresh
                } else {
                    Reason::Changed
                };
                Next {
                    previous: head.revision,
                    reason,
                    changed: !same,
                    timing: Some(CurrentTiming {
                        effective_at: head.effective_at,
                        urgent: head.urgent,
                    }),
                    current: None,
                }
            }
            None => {
                let current = read_release(&path);
                let same = |r: &Release| {
                    r.state == state && r.tenant_key == tenant_key && r.windows == windows
                };
                let changed = !matches!(&current, Some(Ok(r)) if same(r));
                let (previous, reason) = match &current {
                    Some(Ok(r)) if self.opts.all => (r.revision, Reason::Forced),
                    Some(Ok(r)) if same(r) && r.expires_at > self.refresh_at => return Ok(None),
                    Some(Ok(r)) if same(r) => (r.revision, Reason::Refresh),
                    Some(Ok(r)) => (r.revision, Reason::Changed),
                    // Unreadable or missing: continue numbering from history.
                    Some(Err(_)) => (
                        history_revision(&self.git_repo(), &store_rel_dir(tenant, store))?,
                        Reason::Changed,
                    ),
                    None => {
                        let prev =
                            history_revision(&self.git_repo(), &store_rel_dir(tenant, store))?;
                        (
                            prev,
                            if prev == 0 {
                                Reason::First
                            } else {
                                Reason::Changed
                            },
                        )
                    }
                };
                let current = current.and_then(Result::ok);
                Next {
                    previous,
                    reason,
                    changed,
                    timing: current.as_ref().map(|r| CurrentTiming {
                        effective_at: r.effective_at,
                        urgent: r.urgent,
                    }),
                    current,
                }
            }
        };
        self.next_release(
            tenant,
            store,
            store_dir,
            effective_at,
            next,
            state,
            tenant_key,
            windows,
        )
        .map(Some)
    }

    /// The release that follows the current one, as `next` describes it.
    #[allow(clippy::too_many_arguments)]
    fn next_release(
        &self,
        tenant: &TenantSources,
        store: &StoreSource,
        store_dir: PathBuf,
        effective_at: Option<NaiveDateTime>,
        next: Next,
        state: StoreState,
        tenant_key: Option<String>,
        windows: Option<schemas::rollout::Windows>,
    ) -> anyhow::Result<Prepared> {
        let full_id = format!("{}/{}", tenant.dir, store.dir);
        let Next {
            previous,
            reason,
            changed,
            timing,
            current,
        } = next;
        let schedule = schedule(
            self.opts.urgent,
            effective_at,
            tenant,
            store,
            timing,
            reason,
            self.now,
        )
        .with_context(|| format!("{full_id}: placing the effective time"))?;
        let release = self.finish(
            Release {
                api_version: ReleaseApiVersion::V1,
                kind: StoreReleaseKind,
                store: full_id,
                revision: previous + 1,
                source_commit: self.source_commit.clone(),
                issued_at: self.now,
                expires_at: self.expires_at,
                tenant_key,
                windows,
                effective_at: schedule.effective_at,
                urgent: schedule.urgent,
                state,
            },
            schedule.effective_instant,
        );
        Ok(Prepared {
            store_dir,
            release,
            reason,
            changed,
            current,
        })
    }

    /// Validity and `apiVersion` of a release about to be signed: valid
    /// for the normal time after it takes effect.
    pub fn finish(&self, mut release: Release, effective: Option<DateTime<Utc>>) -> Release {
        if let Some(at) = effective
            && at > self.now
        {
            release.expires_at = self.expires_at.max(at + (self.expires_at - self.now));
        }
        release.api_version = ReleaseApiVersion::needed_by(
            &release.state,
            release.tenant_key.as_deref(),
            release.has_scheduling(),
        );
        release
    }

    /// The repo's Git history, locked for the caller.
    pub fn git_repo(&self) -> std::sync::MutexGuard<'_, git2::Repository> {
        // A panic elsewhere while holding it leaves nothing half-written
        // in the repository object: reading on is safe.
        self.git.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`SignContext::prepare_at`] for many stores at once, on every core,
    /// answered in the order given.
    pub fn prepare_many(
        &self,
        stores: &[(&TenantSources, &StoreSource, Option<NaiveDateTime>)],
    ) -> anyhow::Result<Vec<Option<Prepared>>> {
        in_parallel(stores, 16, |(t, s, at)| self.prepare_at(t, s, *at))
    }

    /// [`SignContext::prepare_moving`] for many stores at once, on every
    /// core, answered in the order given.
    pub fn prepare_moving_many(
        &self,
        stores: &[(&TenantSources, &StoreSource, Option<NaiveDateTime>)],
    ) -> anyhow::Result<Vec<Option<Prepared>>> {
        in_parallel(stores, 16, |(t, s, at)| self.prepare_moving(t, s, *at))
    }

    /// [`SignContext::write`] for many prepared releases at once, on every
    /// core, answered in the order given.
    pub fn write_many(&self, prepared: &[(&Prepared, Reason)]) -> anyhow::Result<Vec<Signed>> {
        in_parallel(prepared, 16, |(p, reason)| self.write(p, *reason))
    }

    /// Sign and write a prepared release.
    pub fn write(&self, p: &Prepared, reason: Reason) -> anyhow::Result<Signed> {
        write_release(&p.store_dir, &p.release, &self.opts.key)?;
        Ok(Signed {
            store: p.release.store.clone(),
            revision: p.release.revision,
            reason,
            api_version: p.release.api_version,
        })
    }
}

/// `f` over `items` on every core ([`schemas::par::map_in_order`], each
/// thread taking at least `grain` items), the answers in the order of
/// `items`; the first error in that order wins.
pub(crate) fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    grain: usize,
    f: impl Fn(&T) -> anyhow::Result<R> + Sync,
) -> anyhow::Result<Vec<R>> {
    schemas::par::map_in_order(items, grain, f)
        .into_iter()
        .collect()
}

/// What a store's next release follows from.
struct Next {
    previous: u64,
    reason: Reason,
    changed: bool,
    timing: Option<CurrentTiming>,
    current: Option<Release>,
}

/// A store's next release, ready to sign.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub store_dir: PathBuf,
    pub release: Release,
    pub reason: Reason,
    /// Its state, tenant key or windows differ from the current release's.
    pub changed: bool,
    /// The release in the repo now, when it was decoded (a current
    /// release compared as text is not).
    pub current: Option<Release>,
}

/// Sign what needs signing in the repo at `opts.repo`. A tenant with
/// `rollout:` gets a changed state in waves (DESIGN.md §12): only the
/// current wave's stores are signed, see [`crate::ops::rollout`].
pub fn sign(opts: &SignOptions, mut progress: impl FnMut(&Signed)) -> anyhow::Result<SignReport> {
    let ctx = SignContext::new(opts)?;
    let mut report = SignReport {
        source_commit: ctx.source_commit.clone(),
        ..SignReport::default()
    };
    for tenant in ctx.repo.tenants.values() {
        let all: Vec<_> = tenant
            .stores
            .values()
            .map(|s| (tenant, s, ctx.opts.effective_at))
            .collect();
        let mut prepared = Vec::new();
        for ((_, store, _), p) in all.iter().zip(ctx.prepare_many(&all)?) {
            match p {
                Some(p) => prepared.push((*store, p)),
                None => report.unchanged += 1,
            }
        }
        let staging = crate::ops::rollout::stage(&ctx, tenant, &prepared)?;
        report.rollouts.extend(staging.notes.iter().cloned());
        // Held stores keep their current release, re-signed unchanged when
        // it expires soon; the others get theirs.
        let refreshes: Vec<Option<Prepared>> = prepared
            .iter()
            .map(|(store, p)| {
                staging
                    .holds(&store.dir)
                    .then(|| refresh_current(&ctx, p))
                    .flatten()
            })
            .collect();
        let mut writes: Vec<(&StoreSource, &Prepared, Reason)> = Vec::new();
        for ((store, p), refresh) in prepared.iter().zip(&refreshes) {
            if !staging.holds(&store.dir) {
                writes.push((store, p, p.reason));
            } else if let Some(refresh) = refresh {
                writes.push((store, refresh, Reason::Refresh));
            } else {
                report.held += 1;
            }
        }
        let jobs: Vec<(&Prepared, Reason)> = writes.iter().map(|(_, p, r)| (*p, *r)).collect();
        let mut first_wave = std::collections::BTreeMap::new();
        for ((store, _, _), signed) in writes.iter().zip(ctx.write_many(&jobs)?) {
            if !staging.holds(&store.dir) && staging.in_first_wave(&store.dir) {
                first_wave.insert(store.dir.clone(), signed.revision);
            }
            progress(&signed);
            report.signed.push(signed);
        }
        staging.write(&ctx, first_wave)?;
    }
    Ok(report)
}

/// The current release of a held store signed again unchanged, when it
/// expires within the refresh window.
fn refresh_current(ctx: &SignContext<'_>, p: &Prepared) -> Option<Prepared> {
    let current = match &p.current {
        Some(c) => c.clone(),
        None => read_current(&p.store_dir)?,
    };
    // `--all` (after a key change) re-signs held stores' releases too.
    if current.expires_at > ctx.refresh_at && !ctx.opts.all {
        return None;
    }
    let mut release = current.clone();
    release.revision = p.release.revision;
    release.issued_at = ctx.now;
    release.expires_at = ctx.expires_at;
    Some(Prepared {
        release: ctx.finish(release, None),
        reason: Reason::Refresh,
        changed: false,
        current: Some(current),
        store_dir: p.store_dir.clone(),
    })
}

/// `tenants/<t>/stores/<s>` relative to the repo root.
pub fn store_rel_dir(tenant: &TenantSources, store: &StoreSource) -> String {
    format!("tenants/{}/stores/{}", tenant.dir, store.dir)
}

/// Every store of a loaded repo with its directory.
pub fn stores(repo: &FleetRepo) -> impl Iterator<Item = (&TenantSources, &StoreSource)> {
    repo.tenants
        .values()
        .flat_map(|t| t.stores.values().map(move |s| (t, s)))
}

/// Why the release already in a store's directory cannot be read; `fleet
/// sign` then numbers the next one from the file's Git history.
#[derive(Debug, thiserror::Error)]
enum CurrentReleaseError {
    #[error("not a regular file")]
    NotAFile,
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Decode(Box<schemas::Diagnostic>),
}

/// The release in a store's directory, when there is one that reads.
pub fn read_current(store_dir: &Path) -> Option<Release> {
    read_release(&store_dir.join(RELEASE_FILE)).and_then(Result::ok)
}

/// The release in `path`: `None` if there is none, `Err` if unreadable.
fn read_release(path: &Path) -> Option<Result<Release, CurrentReleaseError>> {
    let meta = path.symlink_metadata().ok()?;
    if !meta.is_file() {
        return Some(Err(CurrentReleaseError::NotAFile));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return Some(Err(e.into())),
    };
    Some(
        schemas::yaml::decode::<Release>(&path.display().to_string(), &text)
            .map_err(CurrentReleaseError::Decode),
    )
}

/// The highest revision ever committed at `<dir>/release.yaml` (0 if none).
fn history_revision(git: &git2::Repository, dir: &str) -> anyhow::Result<u64> {
    let path = format!("{dir}/{RELEASE_FILE}");
    let mut walk = git.revwalk().context("walking history")?;
    if walk.push_head().is_err() {
        return Ok(0);
    }
    let mut best = 0;
    for oid in walk.take(100_000) {
        let Ok(oid) = oid else { continue };
        let Ok(commit) = git.find_commit(oid) else {
            continue;
        };
        let Ok(tree) = commit.tree() else { continue };
        let Ok(entry) = tree.get_path(Path::new(&path)) else {
            continue;
        };
        let Ok(blob) = git.find_blob(entry.id()) else {
            continue;
        };
        if let Some(rev) = std::str::from_utf8(blob.content())
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("revision: ")))
            .and_then(|r| r.trim().parse::<u64>().ok())
        {
            best = best.max(rev);
        }
    }
    Ok(best)
}

/// Serialize, sign and write a release and its signature.
pub fn write_release(
    store_dir: &Path,
    release: &Release,
    key: &minisign::SecretKey,
) -> anyhow::Result<()> {
    let bytes = release_bytes(release);
    let signature = sign_bytes(&bytes, &release.store, release.revision, key)?;
    let rel = store_dir.join(RELEASE_FILE);
    let sig = store_dir.join(SIGNATURE_FILE);
    replace_file(&rel, &bytes).with_context(|| format!("writing {}", rel.display()))?;
    replace_file(&sig, signature.as_bytes())
        .with_context(|| format!("writing {}", sig.display()))?;
    Ok(())
}

/// Replace `path` by `bytes`, never leaving half a file. Not synced: these
/// are files of a Git working tree, made durable by the commit that
/// follows (syncing 20,000 files cost a 10,000-store sign most of its time).
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    release::applied::replace(path, bytes)
}

/// The exact bytes of `release.yaml`.
pub fn release_bytes(release: &Release) -> Vec<u8> {
    let mut text = String::from(
        "# Generated by `fleet sign`. Never edit by hand: the signature covers every byte.\n",
    );
    text.push_str(&schemas::yaml::to_canonical_yaml(release).expect("a release is plain data"));
    text.into_bytes()
}

/// A prehashed minisign signature of `bytes` with Fleet's trusted comment.
pub fn sign_bytes(
    bytes: &[u8],
    store: &str,
    revision: u64,
    key: &minisign::SecretKey,
) -> anyhow::Result<String> {
    let comment = trusted_comment(store, revision);
    let sig = minisign::sign(
        None,
        key,
        bytes,
        Some(&comment),
        Some("signature from fleet sign"),
    )
    .context("signing the release")?;
    Ok(sig.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::StoreState;

    fn release() -> Release {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("date")
                .with_timezone(&Utc)
        };
        Release {
            api_version: ReleaseApiVersion::V1,
            kind: StoreReleaseKind,
            store: "acme/soho".into(),
            revision: 18,
            source_commit: "3f2c".into(),
            issued_at: at("2026-11-24T18:00:00Z"),
            expires_at: at("2027-02-22T18:00:00Z"),
            tenant_key: None,
            windows: None,
            effective_at: None,
            urgent: false,
            state: StoreState::default(),
        }
    }

    #[test]
    fn release_bytes_are_deterministic_and_decode_to_the_same_release() {
        let a = release_bytes(&release());
        assert_eq!(a, release_bytes(&release()));
        let text = String::from_utf8(a).expect("utf8");
        assert!(
            text.contains("\nrevision: 18\n")
                && text.contains("expires_at: \"2027-02-22T18:00:00Z\""),
            "{text}"
        );
        let back: Release = schemas::yaml::decode("release.yaml", &text).expect("decodes");
        assert_eq!(back, release());
    }

    /// The text comparison of `prepare` relies on this: a state's section
    /// is the same bytes alone as inside its release.
    #[test]
    fn a_state_section_is_the_bytes_of_the_release_s_state() {
        let template =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet-repo-template");
        let (repo, _) = schemas::load::load_repo(&schemas::load::DirTree::new(&template));
        let mut seen = 0;
        for tenant in repo.tenants.values() {
            for store in tenant.stores.values() {
                let mut r = release();
                r.state = render_store(&tenant.base, &store.file);
                let bytes = String::from_utf8(release_bytes(&r)).expect("utf8");
                let at = bytes.find("\nstate:\n").expect("a state section") + 1;
                assert_eq!(bytes[at..], state_section(&r.state), "{}", store.dir);
                seen += 1;
            }
        }
        assert!(seen >= 3, "the template's stores");
    }

    #[test]
    fn signature_carries_the_trusted_comment() {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("keys");
        let sig = sign_bytes(b"x", "acme/soho", 18, &pair.sk).expect("sign");
        assert!(
            sig.contains("trusted comment: store=acme/soho revision=18\n"),
            "{sig}"
        );
    }
}

/// A store just signed a release its reconciler, by its last report, does
/// not read: it will refuse it with "upgrade the reconciler" (DESIGN.md §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OlderReconciler {
    pub store: String,
    pub api_version: ReleaseApiVersion,
    /// The version its last report named.
    pub reconciler_version: Option<String>,
    /// The release apiVersions that reconciler reads.
    pub reads: Vec<String>,
}

impl std::fmt::Display for OlderReconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: signed {} but its last report came from reconciler {}, which reads only {}: it will refuse this release until its reconciler is upgraded",
            self.store,
            self.api_version.as_str(),
            self.reconciler_version.as_deref().unwrap_or("(unnamed)"),
            self.reads.join(", ")
        )
    }
}

/// The stores of `signed` whose release the reconciler of their last report
/// (as the status service behind `api` shows it) does not read. Stores
/// without a report yet, and `fleet/v1` releases, are never listed.
pub fn older_reconcilers(
    api: &crate::ops::status_api::StatusApi,
    signed: &[Signed],
) -> anyhow::Result<Vec<OlderReconciler>> {
    if signed
        .iter()
        .all(|s| s.api_version == ReleaseApiVersion::V1)
    {
        return Ok(Vec::new());
    }
    #[derive(serde::Deserialize)]
    struct Summary {
        store: String,
        reconciler_version: Option<String>,
        #[serde(default)]
        release_api_versions: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Overview {
        stores: Vec<Summary>,
    }
    let (status, body) = api.get("/api/v1/stores")?;
    if status != 200 {
        bail!("GET /api/v1/stores answered {status}: {body}");
    }
    let overview: Overview = serde_json::from_value(body)
        .context("GET /api/v1/stores answered a body that is not a store list")?;
    let known: std::collections::HashMap<&str, &Summary> = overview
        .stores
        .iter()
        .map(|s| (s.store.as_str(), s))
        .collect();
    Ok(signed
        .iter()
        .filter(|s| s.api_version != ReleaseApiVersion::V1)
        .filter_map(|s| {
            let last = known.get(s.store.as_str())?;
            // Empty: no report yet, nothing to go by.
            let reads = &last.release_api_versions;
            (!reads.is_empty() && !reads.iter().any(|v| v == s.api_version.as_str())).then(|| {
                OlderReconciler {
                    store: s.store.clone(),
                    api_version: s.api_version,
                    reconciler_version: last.reconciler_version.clone(),
                    reads: reads.clone(),
                }
            })
        })
        .collect())
}
