//! One reconcile pass, and the pieces the daemon loop is built from.
//!
//! A pass: fetch (the fleet repo, or the status service's release relay,
//! DESIGN.md §13) → read this store's release from the fetched commit (no
//! checkout) or the relay's answer → trust gate → `GET /state` → plan → apply → record → report.
//! It returns a [`Report`] whatever happens; the caller queues it and picks
//! the exit code or the next delay. Every pass is idempotent: killed at any
//! point, the next one reads the edge's state again and finishes the job,
//! and the last applied record is written only after the edge has it all.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schemas::StoreId;

use crate::config::{Config, Source};
use crate::edge_client::{EdgeClient, EdgeError, Writer};
use crate::planner::{self, Plan};
use crate::relay::RelayError;
use release::applied::{self, AppliedRecord};
use release::root::{self, Anchor, WalkError};
use release::source::{Credentials, Mirror, ReleaseFiles};
use release::trust::{self, Expectations, TrustedKeys};
use wire::relay::RelayedRelease;
use wire::report::{Drift, Outcome, RefusalReport, Report, human_diff};

/// How many times a pass re-reads and re-plans after a 412.
pub const MAX_CONFLICT_RETRIES: usize = 3;

/// Why the agent cannot even start (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Keys(#[from] trust::KeyError),
    #[error("reading {what} {path}: {source}")]
    Secret {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Edge(#[from] crate::edge_client::EdgeClientError),
    #[error("creating the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything a pass needs.
#[derive(Debug)]
pub struct Agent {
    pub config: Config,
    /// What the trust directory pins: a trust root, or bare `*.pub` keys.
    pub anchor: Anchor,
    pub mirror: Mirror,
    pub edge: EdgeClient,
}

/// Why a pass could not fetch (it is retried later).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Token(std::io::Error),
    #[error(transparent)]
    Source(#[from] release::source::SourceError),
    #[error("the fetch task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Relay(#[from] RelayError),
    #[error("the release relay failed ({relay}), and so did Git: {git}")]
    Both { relay: String, git: Box<FetchError> },
    #[error("repo_url is not set, so the fleet repo cannot be fetched")]
    NoRepo,
}

/// What a pass reads the release from: a commit of the Git mirror, or the
/// release relay's answer (untrusted either way until the gate passes it).
#[derive(Debug, Clone)]
enum Snapshot {
    Git(String),
    Relay(Box<RelayedRelease>),
}

impl Snapshot {
    fn commit(&self) -> &str {
        match self {
            Snapshot::Git(c) => c,
            Snapshot::Relay(a) => &a.commit,
        }
    }
}

impl Agent {
    /// Set up from a checked configuration: trust keys, secrets, state dir.
    pub fn new(config: Config) -> Result<Agent, SetupError> {
        let anchor = Anchor::load(&config.trust_dir)?;
        std::fs::create_dir_all(&config.state_dir).map_err(|source| SetupError::StateDir {
            path: config.state_dir.clone(),
            source,
        })?;
        let edge = EdgeClient::from_token_file(
            &config.edge_url,
            &config.edge_token_file,
            Duration::from_secs(60),
            config.edge_ca_file.as_deref(),
        )?;
        let credentials = if let Some(path) = &config.git_token_file {
            let token = crate::config::read_secret(path, "Git token").map_err(|source| {
                SetupError::Secret {
                    what: "the Git token file",
                    path: path.clone(),
                    source,
                }
            })?;
            Credentials::Token(token)
        } else if let Some(key) = &config.git_ssh_key_file {
            Credentials::SshKey(key.clone())
        } else {
            Credentials::None
        };
        let mirror = Mirror::new(
            &config.state_dir,
            config.repo_url.as_deref().unwrap_or_default(),
            &config.branch,
            credentials,
            Duration::from_secs(config.fetch_timeout_secs),
        );
        Ok(Agent {
            config,
            anchor,
            mirror,
            edge,
        })
    }

    fn report(&self, started_at: DateTime<Utc>, clock: Instant, outcome: Outcome) -> Report {
        let mut r = blank_report(&self.config.store, started_at, outcome);
        r.duration_ms = clock.elapsed().as_millis() as u64;
        r
    }

    /// Fetch in a worker thread, abandoning it at the deadline (libgit2 has
    /// no timeout that safe Rust can set for a stalled connection).
    async fn fetch(&self) -> Result<release::source::Fetched, FetchError> {
        let mirror_path = self.config.state_dir.clone();
        let Some(url) = self.config.repo_url.clone() else {
            return Err(FetchError::NoRepo);
        };
        let branch = self.config.branch.clone();
        let credentials = match (&self.config.git_token_file, &self.config.git_ssh_key_file) {
            (Some(p), _) => crate::config::read_secret(p, "Git token")
                .map(Credentials::Token)
                .map_err(FetchError::Token)?,
            (None, Some(k)) => Credentials::SshKey(k.clone()),
            _ => Credentials::None,
        };
        let timeout = Duration::from_secs(self.config.fetch_timeout_secs);
        let task = tokio::task::spawn_blocking(move || {
            Mirror::new(&mirror_path, &url, &branch, credentials, timeout).fetch()
        });
        match tokio::time::timeout(timeout + Duration::from_secs(5), task).await {
            Ok(Ok(Ok(fetched))) => Ok(fetched),
            Ok(Ok(Err(e))) => Err(FetchError::Source(e)),
            Ok(Err(e)) => Err(FetchError::Task(e)),
            Err(_) => Err(FetchError::Source(release::source::SourceError::Timeout {
                url: self.config.repo_url.clone().unwrap_or_default(),
                secs: timeout.as_secs(),
            })),
        }
    }

    /// Fetch from where the config says; with `source = "status"` and a
    /// `repo_url`, from Git when the relay fails (said in the report).
    async fn fetch_snapshot(&self, r: &mut Report) -> Result<Snapshot, FetchError> {
        if self.config.source == Source::Git {
            return Ok(Snapshot::Git(self.fetch_git(r).await?));
        }
        let relay = match self.relay_fetch().await {
            Ok(answer) => return Ok(Snapshot::Relay(Box::new(answer))),
            Err(e) if self.config.repo_url.is_some() => e,
            Err(e) => return Err(e.into()),
        };
        tracing::warn!(error = %relay, "The release relay failed; fetching from Git instead.");
        match self.fetch_git(r).await {
            Ok(commit) => {
                r.warnings.push(format!(
                    "the release relay failed ({relay}); fetched from Git instead"
                ));
                Ok(Snapshot::Git(commit))
            }
            Err(git) => Err(FetchError::Both {
                relay: relay.to_string(),
                git: Box::new(git),
            }),
        }
    }

    /// [`Agent::fetch`], a mirror that could not be rebuilt said in the
    /// log and the report; answers the fetched commit.
    async fn fetch_git(&self, r: &mut Report) -> Result<String, FetchError> {
        let fetched = self.fetch().await?;
        if let Some(w) = fetched.warning {
            tracing::warn!(warning = %w, "The Git mirror needed a rebuild; see the warning.");
            r.warnings.push(w);
        }
        Ok(fetched.commit)
    }

    async fn relay_fetch(&self) -> Result<RelayedRelease, RelayError> {
        let client = crate::status_client::StatusClient::open(
            &self.config.state_dir,
            self.config.status_url.as_deref(),
        )?;
        crate::relay::fetch(
            &client,
            &self.config.state_dir,
            self.config.store.as_str(),
            self.root_version_held(),
        )
        .await
    }

    /// The trust root version this store holds (the relay sends that one
    /// and newer): the persisted version or the pin, 0 for none.
    fn root_version_held(&self) -> u64 {
        let persisted = root::load_persisted(&self.config.state_dir)
            .ok()
            .flatten()
            .map(|p| p.version());
        let pinned = match &self.anchor {
            Anchor::Root(pin) => Some(pin.version()),
            Anchor::Keys(_) => None,
        };
        persisted.max(pinned).unwrap_or(0)
    }

    /// One pass. `apply = false` plans only (for `fleet-reconciler plan`).
    /// Runs in a `pass` span with the store, and the revision once a
    /// release is accepted: events inside do not repeat them.
    #[tracing::instrument(
        name = "pass",
        skip_all,
        fields(store = %self.config.store, revision = tracing::field::Empty)
    )]
    pub async fn pass(&self, now: DateTime<Utc>, apply: bool) -> (Report, Option<Plan>) {
        let clock = Instant::now();
        let mut r = self.report(now, clock, Outcome::Failed);
        let _lock = match release::source::StateLock::try_acquire(&self.config.state_dir) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                r.errors.push(format!(
                    "another reconciler pass holds {}; not running a second one",
                    self.config.state_dir.join("pass.lock").display()
                ));
                return (r, None);
            }
            Err(e) => {
                r.errors.push(format!(
                    "cannot lock {}: {e}",
                    self.config.state_dir.display()
                ));
                return (r, None);
            }
        };
        match self.mirror.clear_stale_locks() {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(
                    removed = n,
                    "Removed lock files a killed fetch left in the mirror."
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot clear stale lock files in the mirror.")
            }
        }
        let fetched = match self.fetch_snapshot(&mut r).await {
            Ok(f) => f,
            // A release held for its effective time or a window still
            // applies on time with the Git host unreachable: it was
            // verified from the local mirror and is verified again there.
            Err(e) => match crate::schedule::read_pending(&self.config.state_dir) {
                Some(p) => {
                    tracing::warn!(error = %e, commit = %p.commit, revision = p.revision, "Fetch failed; continuing with the release held from an earlier fetch.");
                    r.warnings.push(format!(
                        "{e}: continuing with revision {} fetched earlier at {}",
                        p.revision,
                        short(&p.commit)
                    ));
                    // Held from the relay: its cached answer; else the mirror.
                    match crate::relay::read_cache(&self.config.state_dir)
                        .filter(|c| c.answer.commit == p.commit)
                    {
                        Some(c) => Snapshot::Relay(Box::new(c.answer)),
                        None => Snapshot::Git(p.commit),
                    }
                }
                None => {
                    tracing::warn!(error = %e, "Fetch failed; keeping the last applied state.");
                    r.errors.push(e.to_string());
                    r.applied_revision = applied::read(&self.config.state_dir)
                        .ok()
                        .flatten()
                        .map(|a| a.revision);
                    r.duration_ms = clock.elapsed().as_millis() as u64;
                    return (r, None);
                }
            },
        };
        r.fetched_commit = Some(fetched.commit().to_owned());
        let last = match applied::read(&self.config.state_dir) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "The last applied record is unreadable.");
                r.errors.push(e.to_string());
                return (r, None);
            }
        };
        r.applied_revision = last.as_ref().map(|l| l.revision);
        // Which keys sign releases now: the trust root chain, walked first.
        let keys = match self.release_keys(&fetched, now, &mut r) {
            Ok(keys) => keys,
            Err(Stop::Refused(refusal)) => return (self.refused(r, refusal, clock), None),
            Err(Stop::Failed(e)) => {
                r.errors.push(e);
                r.duration_ms = clock.elapsed().as_millis() as u64;
                return (r, None);
            }
        };
        let files = match &fetched {
            Snapshot::Git(commit) => self.mirror.read_release(commit, &self.config.release_dir()),
            Snapshot::Relay(answer) => Ok(release::relay::unpack(answer).0),
        };
        let (release, signature) = match files {
            Ok(ReleaseFiles::Found { release, signature }) => (release, signature),
            Ok(ReleaseFiles::Missing) => {
                // Not a refusal (DESIGN.md §3), but say plainly when a store
                // that had a release finds none: someone deleted it, or the
                // branch went back to before the store was released.
                let w = match &last {
                    None => format!(
                        "no release for {} at {} yet (not signed): nothing to apply",
                        self.config.store,
                        short(fetched.commit())
                    ),
                    Some(l) => format!(
                        "no release for {} at {}, although revision {} was applied: was release.yaml deleted or the branch reset? Keeping revision {}",
                        self.config.store,
                        short(fetched.commit()),
                        l.revision,
                        l.revision
                    ),
                };
                tracing::warn!(commit = %fetched.commit(), warning = %w, "No release to apply.");
                r.warnings.push(w);
                r.outcome = Outcome::NoChange;
                r.duration_ms = clock.elapsed().as_millis() as u64;
                return (r, None);
            }
            Ok(ReleaseFiles::Refused(refusal)) => return (self.refused(r, refusal, clock), None),
            Err(e) => {
                r.errors.push(e.to_string());
                return (r, None);
            }
        };
        let accepted = match trust::check(
            &release,
            &signature,
            &keys,
            Expectations {
                store: self.config.store.as_str(),
                last: last.as_ref(),
                now,
            },
        ) {
            Ok(a) => a,
            Err(refusal) => return (self.refused(r, refusal, clock), None),
        };
        r.desired_revision = Some(accepted.release.revision);
        r.commit = Some(accepted.release.source_commit.clone());
        tracing::Span::current().record("revision", accepted.release.revision);
        // Its effective time and the store's windows (DESIGN.md §12).
        if accepted.already_applied {
            crate::schedule::clear_pending(&self.config.state_dir);
        } else {
            let (tz, zone_warning) = crate::schedule::store_zone(&accepted.release);
            r.warnings.extend(zone_warning);
            let hold = crate::schedule::hold(&accepted.release, tz, now);
            if hold.is_none() && apply {
                // A newer release replaced the one held, or its time came:
                // a later failed fetch must not fall back to an older one.
                crate::schedule::clear_pending(&self.config.state_dir);
            }
            if let Some(hold) = hold {
                if !apply {
                    r.warnings.push(hold.why.clone());
                } else {
                    tracing::info!(until = ?hold.until, "Release held: {}.", hold.why);
                    let pending = crate::schedule::Pending {
                        revision: accepted.release.revision,
                        commit: fetched.commit().to_owned(),
                        until: hold.until,
                    };
                    if let Err(e) = crate::schedule::write_pending(&self.config.state_dir, &pending)
                    {
                        r.warnings.push(format!(
                            "cannot record the held release in {}: {e}; it applies on time only if the Git host is reachable then",
                            self.config.state_dir.join(crate::schedule::PENDING_FILE).display()
                        ));
                    }
                    r.outcome = hold.outcome;
                    r.waiting_until = hold.until;
                    r.warnings.push(hold.why);
                    r.duration_ms = clock.elapsed().as_millis() as u64;
                    return (r, None);
                }
            }
        }
        let writer = Writer {
            revision: accepted.release.revision,
            commit: accepted.release.source_commit.clone(),
        };
        // Secret values are decrypted here, for this pass only (DESIGN.md
        // §11); what this store cannot decrypt is held back and reported.
        let opened = release::secrets::open_release(
            &accepted.release,
            self.config.store.store(),
            &self
                .config
                .state_dir
                .join(crate::status_client::AGE_IDENTITY_FILE),
        );
        for h in &opened.held_back {
            tracing::warn!(kind = %h.kind, id = %h.id, reason = %h.reason, "Held back: its secret value cannot be decrypted here.");
            r.warnings
                .push(format!("{} {} held back: {}", h.kind, h.id, h.reason));
        }
        r.held_back = opened.held_back.clone();

        let mut attempt = 0;
        // What earlier attempts may have written before a 412 stopped them:
        // the report names every entity the pass touched, not only the last
        // attempt's.
        let mut earlier: Vec<schemas::diff::EntityChange> = Vec::new();
        // A backend of another edge contract is not written to at all.
        if let Err(e) = self.edge.contract().await {
            tracing::error!(error = %e, "Edge backend not driven.");
            r.errors.push(e.to_string());
            r.duration_ms = clock.elapsed().as_millis() as u64;
            return (r, None);
        }
        loop {
            attempt += 1;
            let applied_state = match self.edge.state().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "Edge backend unavailable.");
                    r.errors.push(e.to_string());
                    r.duration_ms = clock.elapsed().as_millis() as u64;
                    return (r, None);
                }
            };
            let mut desired = opened.state.clone();
            release::secrets::keep_applied(&mut desired, &applied_state.state, &opened.held_back);
            let plan = planner::plan(&desired, &applied_state, &planner::Policy::default());
            r.overridden = plan.overridden.clone();
            r.unavailable = applied_state.store_owned.unavailable.clone();
            if !apply {
                r.outcome = if plan.is_empty() {
                    Outcome::NoChange
                } else {
                    Outcome::Converged
                };
                r.changes = plan.diff.changes.clone();
                r.duration_ms = clock.elapsed().as_millis() as u64;
                return (r, Some(plan));
            }
            if !plan.is_empty() {
                match self.edge.apply(&plan.ops, &writer).await {
                    Ok(n) => {
                        tracing::info!(writes = n, "Applied.")
                    }
                    Err(e) if e.is_conflict() && attempt <= MAX_CONFLICT_RETRIES => {
                        tracing::warn!(error = %e, attempt, "Edited locally meanwhile; re-reading and re-planning.");
                        earlier.extend(
                            plan.diff
                                .changes
                                .iter()
                                .filter(|c| !plan.overridden.contains(c))
                                .cloned(),
                        );
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "Apply failed.");
                        r.errors.push(e.to_string());
                        if let EdgeError::Refused { .. } = e {
                            r.changes = plan.diff.changes.clone();
                        }
                        r.duration_ms = clock.elapsed().as_millis() as u64;
                        return (r, Some(plan));
                    }
                }
            }
            let mut changes: Vec<_> = plan
                .diff
                .changes
                .iter()
                .filter(|c| !plan.overridden.contains(c))
                .cloned()
                .collect();
            for c in earlier.drain(..) {
                if !changes.iter().any(|x| x.kind == c.kind && x.id == c.id) {
                    changes.push(c);
                }
            }
            changes.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
            if accepted.already_applied {
                r.outcome = if changes.is_empty() {
                    Outcome::NoChange
                } else {
                    Outcome::DriftCorrected
                };
                r.drift = changes
                    .iter()
                    .map(|c| Drift {
                        change: c.clone(),
                        diff: human_diff(c),
                    })
                    .collect();
                for d in &r.drift {
                    tracing::warn!(kind = %d.change.kind, id = %d.change.id, "Drift reverted.");
                }
            } else {
                r.outcome = Outcome::Converged;
                r.changes = changes;
                let record = AppliedRecord {
                    store: self.config.store.clone(),
                    revision: accepted.release.revision,
                    commit: accepted.release.source_commit.clone(),
                    digest: accepted.digest.clone(),
                    applied_at: now,
                };
                if let Err(e) = applied::write(&self.config.state_dir, &record) {
                    r.outcome = Outcome::Failed;
                    r.errors.push(e.to_string());
                    return (r, Some(plan));
                }
                crate::schedule::clear_pending(&self.config.state_dir);
                tracing::info!(commit = %record.commit, "Release applied.");
            }
            r.applied_revision = Some(accepted.release.revision);
            r.duration_ms = clock.elapsed().as_millis() as u64;
            return (r, Some(plan));
        }
    }

    /// The keys this pass verifies the release with: the trust root chain
    /// of `commit` walked from the pin or the persisted version (each step
    /// persisted), or the bare `*.pub` keys. Sets the report's root version.
    fn release_keys(
        &self,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
        r: &mut Report,
    ) -> Result<TrustedKeys, Stop> {
        let offered = match snapshot {
            Snapshot::Git(commit) => self.mirror.read_root_chain(commit),
            Snapshot::Relay(answer) => Ok(release::relay::unpack(answer).1),
        };
        let offered = match offered {
            Ok(Ok(chain)) => chain,
            Ok(Err(refusal)) => return Err(Stop::Refused(refusal)),
            Err(e) => return Err(Stop::Failed(e.to_string())),
        };
        let state_dir = &self.config.state_dir;
        let persisted = root::load_persisted(state_dir).map_err(|e| Stop::Refused(e.into()))?;
        r.root_version = match (&self.anchor, &persisted) {
            (_, Some(p)) => Some(p.version()),
            (Anchor::Root(pin), None) => Some(pin.version()),
            (Anchor::Keys(_), None) => None,
        };
        let resolved = root::resolve(&self.anchor, persisted, &offered, now, |v| {
            root::persist(state_dir, v)?;
            tracing::info!(version = v.version(), "Trust root updated.");
            Ok(())
        });
        match resolved {
            Ok(resolved) => {
                if let Some(root) = &resolved.root {
                    r.root_version = Some(root.version());
                }
                if let Some(w) = resolved.warning {
                    r.warnings.push(w);
                }
                Ok(resolved.keys)
            }
            Err(WalkError::Refused(refusal)) => {
                // The versions walked before the refusal are persisted.
                if let Ok(Some(p)) = root::load_persisted(state_dir) {
                    r.root_version = Some(p.version());
                }
                Err(Stop::Refused(refusal.into()))
            }
            Err(e @ WalkError::Persist { .. }) => {
                tracing::error!(error = %e, "Cannot persist the trust root; nothing new is applied.");
                Err(Stop::Failed(e.to_string()))
            }
        }
    }

    fn refused(&self, mut r: Report, refusal: trust::Refusal, clock: Instant) -> Report {
        tracing::error!(code = refusal.code(), reason = %refusal, "Release refused; keeping the last applied state.");
        r.outcome = Outcome::Refused;
        r.refusal = Some(RefusalReport {
            code: refusal.code().to_owned(),
            message: refusal.to_string(),
        });
        r.duration_ms = clock.elapsed().as_millis() as u64;
        r
    }
}

/// A report with nothing in it yet.
pub fn blank_report(store: &StoreId, started_at: DateTime<Utc>, outcome: Outcome) -> Report {
    Report {
        store: store.clone(),
        outcome,
        desired_revision: None,
        applied_revision: None,
        commit: None,
        fetched_commit: None,
        changes: Vec::new(),
        drift: Vec::new(),
        overridden: Vec::new(),
        refusal: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        started_at,
        duration_ms: 0,
        reconciler_version: env!("CARGO_PKG_VERSION").to_owned(),
        dropped_reports: 0,
        root_version: None,
        held_back: Vec::new(),
        waiting_until: None,
        actions: Vec::new(),
        unavailable: Vec::new(),
        release_api_versions: schemas::state::RELEASE_API_VERSIONS
            .iter()
            .map(|v| (*v).to_owned())
            .collect(),
    }
}

/// Why a pass stops before the release gate.
enum Stop {
    Refused(trust::Refusal),
    Failed(String),
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}
