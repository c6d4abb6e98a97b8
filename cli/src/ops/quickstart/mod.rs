//! `fleet quickstart`: the whole system on one machine (DESIGN.md §7).
//!
//! In a working directory it makes a fleet repo from `fleet-repo-template/`
//! (Git, signed with a new key), a bare repo as the Git host (read by file
//! path), the status service, two stores (`fleet-edge` + an enrolled
//! `fleet-reconciler` daemon each), then commits, signs and pushes a price
//! change and follows both stores through the status API until they applied
//! it. It then keeps everything running until SIGINT/SIGTERM, or stops at
//! once with `exit_after_demo`, and never leaves a child behind
//! ([`children`]). Decisions: docs/decisions/0027-quickstart.md.
//!
//! It reports what it does as [`Event`]s; printing them is the caller's job.

pub mod binaries;
pub mod children;
pub mod workdir;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand_core::{OsRng, RngCore as _};
use tokio::signal::unix::{SignalKind, signal};

pub use children::guard;

use children::Children;

/// The stores the quickstart runs (the template has a third, left unenrolled).
pub const STORES: [&str; 2] = ["acme/soho", "acme/brooklyn"];
/// The waves of the demo change: the canary, then every other store.
pub const DEMO_ROLLOUT_FILE: &str = "tenants/acme/rollout.yaml";
const DEMO_ROLLOUT: &str = "# The quickstart's waves (docs/operations/rollouts.md): a change reaches\n\
# SoHo first; `fleet rollout advance` signs the rest once SoHo runs it.\n\
apiVersion: fleet/v1\nkind: Tenant\nrollout:\n  waves:\n    - {name: canary, stores: [soho]}\n    - {name: rest}\n  abort: {failed_percent: 50, min_stores: 1, rollback: true}\n";
/// The tenant of [`STORES`].
pub const TENANT: &str = "acme";
/// The demo change: this variation's base price in `tenants/acme/menu.yaml`
/// (overridden by no store, so every store gets a new release).
pub const DEMO_VARIATION: &str = "bacon-cheeseburger-single";
/// Its item, for reading the price back from the edges.
const DEMO_ITEM: &str = "bacon-cheeseburger";
/// What the demo adds to that price (minor units).
const DEMO_INCREASE: u64 = 50;
/// The menu file the demo edits.
pub const DEMO_FILE: &str = "tenants/acme/menu.yaml";
/// The template's published escrow identity (DEMO ONLY: fleet.yaml says so).
pub const DEMO_ESCROW_IDENTITY: &str = ".fleet/DEMO-escrow.key";

/// How long the stores may take to apply the first release.
const FIRST_SYNC_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the stores may take to apply the demo change.
const DEMO_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound of each short helper command (git, admin commands, enrollment).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `fleet quickstart`.
#[derive(Debug, Clone)]
pub struct QuickstartOptions {
    /// The working directory (made, or replaced if an earlier quickstart made it).
    pub dir: PathBuf,
    /// Stop everything and return once the demo change converged.
    pub exit_after_demo: bool,
    /// The running `fleet` executable; the servers are looked for beside it.
    pub exe: PathBuf,
}

/// Why the quickstart stopped short. The caller maps these to exit codes:
/// the first three are usage errors, the rest failures.
#[derive(Debug, thiserror::Error)]
pub enum QuickstartError {
    #[error(
        "refusing to use {dir}: {why}. `fleet quickstart` only deletes directories it made itself; pass --dir with a new or empty directory"
    )]
    NotQuickstartDir { dir: PathBuf, why: String },
    #[error(
        "a quickstart is already running in {dir}; stop it (Ctrl-C) first, or pass another --dir"
    )]
    AlreadyRunning { dir: PathBuf },
    #[error(
        "cannot find fleet-repo-template/: the quickstart needs the Fleet source tree; run it from a checkout with `cargo run --release --bin fleet -- quickstart`"
    )]
    TemplateMissing,
    #[error(
        "{missing} not found beside fleet in {dir}, and no Fleet source tree to build them from; build them with `cargo build --release -p edge -p status -p reconciler --bins` and put them beside fleet"
    )]
    BinariesMissing { dir: PathBuf, missing: String },
    #[error(
        "building fleet-edge, fleet-status and fleet-reconciler failed ({status}); see cargo's output above"
    )]
    Build { status: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {problem}")]
    Command { what: String, problem: String },
    #[error("{what}: {source:#}")]
    Step {
        what: String,
        #[source]
        source: anyhow::Error,
    },
    #[error("{part} {problem}; see {}", log.display())]
    Part {
        part: String,
        problem: String,
        log: PathBuf,
    },
    #[error("{store} did not apply revision {revision} within {} s (status service: {seen}); see {}", waited.as_secs(), log.display())]
    NotConverged {
        store: String,
        revision: u64,
        waited: Duration,
        seen: String,
        log: PathBuf,
    },
    #[error("interrupted by {signal}; everything it started was stopped")]
    Interrupted { signal: &'static str },
}

impl QuickstartError {
    /// A mistake of the caller (a flag, a directory), not a failure of the system.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            QuickstartError::NotQuickstartDir { .. }
                | QuickstartError::AlreadyRunning { .. }
                | QuickstartError::TemplateMissing
                | QuickstartError::BinariesMissing { .. }
        )
    }
}

/// What the quickstart has running once the demo converged.
#[derive(Debug, Clone)]
pub struct Summary {
    pub dir: PathBuf,
    pub dashboard: String,
    pub operator_token: String,
    pub operator_token_file: PathBuf,
    /// Store id → edge URL.
    pub edges: BTreeMap<String, String>,
    pub repo: PathBuf,
    pub git_host: PathBuf,
    pub public_key: PathBuf,
    pub secret_key: PathBuf,
    pub logs: PathBuf,
    pub fleet: PathBuf,
    pub exit_after_demo: bool,
}

/// One step done, for the operator to read.
#[derive(Debug, Clone)]
pub enum Event {
    Building {
        command: String,
    },
    WorkDir {
        dir: PathBuf,
        replaced: bool,
    },
    RepoCreated {
        repo: PathBuf,
        template: PathBuf,
        commit: String,
    },
    KeyMade {
        public_key: PathBuf,
        key_id: String,
    },
    /// `trust/root/1.yaml`: one root key, threshold 1, the release key.
    TrustRoot {
        path: PathBuf,
        root_key_id: String,
    },
    /// The PINs re-encrypted for the enrolled stores.
    SecretsEncrypted {
        values: usize,
        wraps: usize,
    },
    Signed {
        releases: usize,
        commit: String,
    },
    Pushed {
        git_host: PathBuf,
    },
    Listening {
        part: String,
        url: String,
        log: PathBuf,
    },
    Enrolled {
        store: String,
    },
    Running {
        part: String,
        log: PathBuf,
    },
    Waiting {
        revision: u64,
        timeout: Duration,
    },
    Converged {
        store: String,
        revision: u64,
        state: String,
        after: Duration,
    },
    DemoChange {
        file: String,
        variation: String,
        from: u64,
        to: u64,
        commit: String,
    },
    HookCalled,
    /// A rollout decision: started, a wave signed, completed.
    Rollout {
        line: String,
    },
    EdgePrice {
        store: String,
        variation: String,
        price: u64,
    },
    Ready(Box<Summary>),
    PartExited {
        part: String,
        status: String,
        log: PathBuf,
    },
    Stopping {
        why: String,
    },
    Stopped {
        part: String,
        forced: bool,
    },
    AllStopped,
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

fn money(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Building { command } => write!(
                f,
                "building fleet-edge, fleet-status and fleet-reconciler (first run only; this takes a few minutes)…\n  {command}"
            ),
            Event::WorkDir {
                dir,
                replaced: true,
            } => write!(
                f,
                "working directory {}: replaced the one of an earlier quickstart",
                dir.display()
            ),
            Event::WorkDir {
                dir,
                replaced: false,
            } => {
                write!(f, "working directory {}", dir.display())
            }
            Event::RepoCreated {
                repo,
                template,
                commit,
            } => write!(
                f,
                "fleet repo {} made from {} (commit {})",
                repo.display(),
                template.display(),
                short(commit)
            ),
            Event::KeyMade { public_key, key_id } => write!(
                f,
                "release signing key made: {} (key id {key_id}; the secret key is unencrypted: a demo key)",
                public_key.display()
            ),
            Event::TrustRoot { path, root_key_id } => write!(
                f,
                "trust root version 1 made: {} (root key {root_key_id}, threshold 1: a demo root; stores and the status service pin it)",
                path.display()
            ),
            Event::Signed { releases, commit } => write!(
                f,
                "signed {releases} release(s) and committed them (commit {})",
                short(commit)
            ),
            Event::SecretsEncrypted { values, wraps } => write!(
                f,
                "PINs encrypted for the enrolled stores: {values} value(s) re-encrypted and {wraps} tenant-key wrap(s) written with the demo escrow identity (fleet secret recipients + rewrap)"
            ),
            Event::Pushed { git_host } => {
                write!(f, "pushed main to the Git host {}", git_host.display())
            }
            Event::Listening { part, url, log } => {
                write!(f, "{part} listening on {url} (log {})", log.display())
            }
            Event::Enrolled { store } => {
                write!(f, "{store}: node enrolled with the status service")
            }
            Event::Running { part, log } => {
                write!(f, "{part} running (log {})", log.display())
            }
            Event::Waiting { revision, timeout } => write!(
                f,
                "waiting for {} to apply revision {revision} (at most {} s)…",
                STORES.join(" and "),
                timeout.as_secs()
            ),
            Event::Converged {
                store,
                revision,
                state,
                after,
            } => write!(
                f,
                "  {store} applied revision {revision} ({state}) after {:.1} s",
                after.as_secs_f64()
            ),
            Event::DemoChange {
                file,
                variation,
                from,
                to,
                commit,
            } => write!(
                f,
                "demo change: {file}: {variation} {} -> {} (commit {})",
                money(*from),
                money(*to),
                short(commit)
            ),
            Event::HookCalled => write!(f, "called the status service's Git hook: it fetches now"),
            Event::Rollout { line } => write!(f, "rollout: {line}"),
            Event::EdgePrice {
                store,
                variation,
                price,
            } => write!(
                f,
                "  {store}: fleet-edge now sells {variation} at {}",
                money(*price)
            ),
            Event::Ready(s) => write_summary(f, s),
            Event::PartExited { part, status, log } => {
                write!(f, "error: {part} exited ({status}); see {}", log.display())
            }
            Event::Stopping { why } => write!(f, "stopping ({why})…"),
            Event::Stopped {
                part,
                forced: false,
            } => write!(f, "  stopped {part}"),
            Event::Stopped { part, forced: true } => write!(
                f,
                "  killed {part} (it did not stop within {} s of SIGTERM)",
                children::STOP_GRACE.as_secs()
            ),
            Event::AllStopped => write!(f, "everything the quickstart started has stopped"),
        }
    }
}

fn write_summary(f: &mut std::fmt::Formatter<'_>, s: &Summary) -> std::fmt::Result {
    let d = |p: &Path| p.display().to_string();
    writeln!(f)?;
    writeln!(f, "Fleet quickstart is running.")?;
    writeln!(f)?;
    writeln!(f, "  Dashboard:        {}/", s.dashboard)?;
    writeln!(
        f,
        "  Operator token:   {}   (sign in with it; also in {})",
        s.operator_token,
        d(&s.operator_token_file)
    )?;
    for (store, url) in &s.edges {
        writeln!(f, "  Store {store:<14} fleet-edge {url}")?;
    }
    writeln!(
        f,
        "  Fleet repo:       {}   (origin: {})",
        d(&s.repo),
        d(&s.git_host)
    )?;
    writeln!(f, "  Release key:      {}", d(&s.secret_key))?;
    writeln!(f, "  Logs:             {}", d(&s.logs))?;
    writeln!(f, "  Working dir:      {}", d(&s.dir))?;
    writeln!(f)?;
    writeln!(f, "Make a change yourself:")?;
    writeln!(f, "  cd {}", d(&s.repo))?;
    writeln!(f, "  $EDITOR {DEMO_FILE}              # change a price")?;
    writeln!(f, "  git commit -qam \"New price\"")?;
    writeln!(
        f,
        "  {} sign --key {} --repo .",
        d(&s.fleet),
        d(&s.secret_key)
    )?;
    writeln!(
        f,
        "  git add -A && git commit -qm Release && git push -q origin main"
    )?;
    writeln!(
        f,
        "The status service fetches every 5 s; acme/soho (the canary wave, {DEMO_ROLLOUT_FILE}) applies the change within seconds."
    )?;
    writeln!(
        f,
        "Once it runs it, sign the next wave (what the release job does every 15 minutes):"
    )?;
    writeln!(
        f,
        "  {} rollout advance --key {} --status-url {} --token-file {} --repo .",
        d(&s.fleet),
        d(&s.secret_key),
        s.dashboard.trim_end_matches('/'),
        d(&s.operator_token_file)
    )?;
    writeln!(
        f,
        "  git add -A && git commit -qm Advance && git push -q origin main"
    )?;
    writeln!(f)?;
    if s.exit_after_demo {
        write!(f, "--exit-after-demo: stopping now.")
    } else {
        write!(f, "Press Ctrl-C to stop.")
    }
}

/// Run the quickstart; `progress` gets every step as it is done.
pub async fn run(
    opts: &QuickstartOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<(), QuickstartError> {
    let mut stop = Stop::new()?;
    let template = binaries::template(&opts.exe)?;
    let dir = workdir::prepare(&opts.dir)?;
    progress(Event::WorkDir {
        dir: dir.path.clone(),
        replaced: dir.replaced,
    });
    let bins = binaries::locate(&opts.exe, |command| {
        progress(Event::Building {
            command: command.to_owned(),
        })
    })
    .await?;
    let mut kids = Children::new(&bins.fleet, &dir.path)?;
    let result = tokio::select! {
        r = bring_up(opts, &dir.path, &template, &bins, &mut kids, progress) => r,
        signal = stop.next() => Err(QuickstartError::Interrupted { signal }),
    };
    let result = match result {
        Ok(summary) => {
            progress(Event::Ready(Box::new(summary)));
            if opts.exit_after_demo {
                progress(Event::Stopping {
                    why: "--exit-after-demo".into(),
                });
                Ok(())
            } else {
                keep_running(&mut kids, &mut stop, progress).await
            }
        }
        Err(e) => {
            progress(Event::Stopping {
                why: "the quickstart did not finish".into(),
            });
            Err(e)
        }
    };
    kids.shutdown(progress).await;
    progress(Event::AllStopped);
    drop(dir);
    result
}

/// SIGINT, SIGTERM or SIGHUP.
struct Stop {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Stop {
    fn new() -> Result<Stop, QuickstartError> {
        let handler = |kind| {
            signal(kind).map_err(|source| QuickstartError::Io {
                what: "installing the signal handlers".into(),
                source,
            })
        };
        Ok(Stop {
            int: handler(SignalKind::interrupt())?,
            term: handler(SignalKind::terminate())?,
            hup: handler(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// Until a signal, or until a part dies (an error then).
async fn keep_running(
    kids: &mut Children,
    stop: &mut Stop,
    progress: &mut dyn FnMut(Event),
) -> Result<(), QuickstartError> {
    loop {
        tokio::select! {
            signal = stop.next() => {
                progress(Event::Stopping { why: signal.into() });
                return Ok(());
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Some((part, status, log)) = kids.exited() {
                    progress(Event::PartExited { part: part.clone(), status: status.to_string(), log: log.clone() });
                    return Err(QuickstartError::Part { part, problem: format!("exited ({status})"), log });
                }
            }
        }
    }
}

/// A `git` command that ignores the machine's Git configuration (no
/// signing hooks, no missing identity) and names the quickstart as author.
fn git(cwd: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Fleet Quickstart")
        .env("GIT_AUTHOR_EMAIL", "quickstart@fleet.invalid")
        .env("GIT_COMMITTER_NAME", "Fleet Quickstart")
        .env("GIT_COMMITTER_EMAIL", "quickstart@fleet.invalid");
    cmd
}

async fn run_git(cwd: &Path, args: &[&str]) -> Result<String, QuickstartError> {
    children::output(git(cwd).args(args), COMMAND_TIMEOUT)
        .await
        .map_err(|e| QuickstartError::Command {
            what: format!("git {} (is git installed?)", args.join(" ")),
            problem: e.to_string(),
        })
}

async fn commit_all(repo: &Path, message: &str) -> Result<String, QuickstartError> {
    run_git(repo, &["add", "-A"]).await?;
    run_git(repo, &["commit", "-q", "-m", message]).await?;
    Ok(run_git(repo, &["rev-parse", "HEAD"])
        .await?
        .trim()
        .to_owned())
}

/// A random secret (tokens, the hook secret), base64 without padding.
fn secret() -> String {
    let mut bytes = [0u8; 24];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn write_file(path: &Path, text: &str) -> Result<(), QuickstartError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| QuickstartError::Io {
            what: format!("creating {}", parent.display()),
            source,
        })?;
    }
    release::applied::write_atomically(path, text.as_bytes()).map_err(|source| {
        QuickstartError::Io {
            what: format!("writing {}", path.display()),
            source,
        }
    })
}

fn mkdir(path: &Path) -> Result<(), QuickstartError> {
    std::fs::create_dir_all(path).map_err(|source| QuickstartError::Io {
        what: format!("creating {}", path.display()),
        source,
    })
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), QuickstartError> {
    let io = |what: String| move |source| QuickstartError::Io { what, source };
    mkdir(to)?;
    for entry in std::fs::read_dir(from).map_err(io(format!("reading {}", from.display())))? {
        let entry = entry.map_err(io(format!("reading {}", from.display())))?;
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(io(format!("reading {}", entry.path().display())))?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .map_err(io(format!("copying {}", entry.path().display())))?;
        }
    }
    Ok(())
}

/// `fleet sign` in-process, then commit; answers (releases, commit, what
/// happened to rollouts).
async fn sign_and_commit(
    repo: &Path,
    key: &minisign::SecretKey,
    message: &str,
) -> Result<(usize, String, Vec<String>), QuickstartError> {
    let opts =
        crate::ops::sign::SignOptions::new(repo.to_path_buf(), key.clone(), chrono::Utc::now());
    let report = crate::ops::sign::sign(&opts, |_| {}).map_err(|source| QuickstartError::Step {
        what: format!("signing releases in {}", repo.display()),
        source,
    })?;
    let commit = commit_all(repo, message).await?;
    Ok((report.signed.len(), commit, report.rollouts))
}

/// Paths of one store's world.
struct StoreDirs {
    id: String,
    slug: String,
    root: PathBuf,
}

impl StoreDirs {
    fn new(root: &Path, id: &str) -> StoreDirs {
        let slug = id.replace('/', "-");
        StoreDirs {
            id: id.to_owned(),
            root: root.join("stores").join(&slug),
            slug,
        }
    }
    /// Only the config and the edge token: the reconciler watches this directory.
    fn config_dir(&self) -> PathBuf {
        self.root.join("config")
    }
    fn config(&self) -> PathBuf {
        self.config_dir().join("reconciler.toml")
    }
    fn edge_token(&self) -> PathBuf {
        self.config_dir().join("edge.token")
    }
}

/// Everything up to the converged demo change.
async fn bring_up(
    opts: &QuickstartOptions,
    dir: &Path,
    template: &Path,
    bins: &binaries::Binaries,
    kids: &mut Children,
    progress: &mut dyn FnMut(Event),
) -> Result<Summary, QuickstartError> {
    let logs = dir.join("logs");
    mkdir(&logs)?;

    // The fleet repo, its key and first releases, and the Git host.
    let repo = dir.join("repo");
    copy_tree(template, &repo)?;
    // The demo change goes out in two waves (DESIGN.md §12): SoHo first.
    write_file(&repo.join(DEMO_ROLLOUT_FILE), DEMO_ROLLOUT)?;
    run_git(&repo, &["init", "-q", "-b", "main"]).await?;
    // So that the operator's own commits work on a machine without a Git identity.
    run_git(&repo, &["config", "user.name", "Fleet Quickstart"]).await?;
    run_git(&repo, &["config", "user.email", "quickstart@fleet.invalid"]).await?;
    let commit = commit_all(&repo, "Fleet repo from the template").await?;
    progress(Event::RepoCreated {
        repo: repo.clone(),
        template: template.to_path_buf(),
        commit,
    });
    let keys = dir.join("keys");
    let made = crate::ops::keygen::keygen(&keys, None).map_err(|source| QuickstartError::Step {
        what: "making the release key".into(),
        source,
    })?;
    progress(Event::KeyMade {
        public_key: made.public_key.clone(),
        key_id: made.key_id.clone(),
    });
    let key = crate::ops::keygen::load_secret_key(&made.secret_key, None).map_err(|source| {
        QuickstartError::Step {
            what: "reading the release key".into(),
            source,
        }
    })?;
    // The trust root the stores pin: one root key, threshold 1, for the
    // demo (a real fleet uses several offline root keys: signing.md).
    let root_key = crate::ops::keygen::keygen(&keys.join("root"), None).map_err(|source| {
        QuickstartError::Step {
            what: "making the root key".into(),
            source,
        }
    })?;
    let (root_file, _) = crate::ops::root::init(&crate::ops::root::InitOptions {
        repo: repo.clone(),
        root_keys: vec![root_key.public_key.display().to_string()],
        threshold: 1,
        release_keys: vec![made.public_key.display().to_string()],
        expires_in: chrono::Duration::days(365),
        now: chrono::Utc::now(),
    })
    .and_then(|made| {
        let sk = crate::ops::keygen::load_secret_key(&root_key.secret_key, None)?;
        crate::ops::root::sign(&repo, &sk, Some(1))?;
        Ok(made)
    })
    .map_err(|source| QuickstartError::Step {
        what: "making trust root version 1".into(),
        source,
    })?;
    progress(Event::TrustRoot {
        path: root_file.clone(),
        root_key_id: root_key.key_id.clone(),
    });
    commit_all(&repo, "Trust root version 1").await?;
    let git_host = dir.join("git/fleet.git");
    mkdir(&git_host)?;
    run_git(&git_host, &["init", "-q", "--bare", "-b", "main"]).await?;
    let host = git_host.display().to_string();
    run_git(&repo, &["remote", "add", "origin", &host]).await?;
    run_git(&repo, &["push", "-q", "origin", "main"]).await?;

    // The status service.
    let status_dir = dir.join("status");
    mkdir(&status_dir)?;
    let hook_secret = secret();
    let hook_file = status_dir.join("hook.secret");
    write_file(&hook_file, &hook_secret)?;
    let database_url = format!("sqlite://{}", status_dir.join("status.db").display());
    let mut cmd = Command::new(&bins.status);
    cmd.args(["--database-url", &database_url])
        .args(["serve", "--listen", "127.0.0.1:0", "--repo-url", &host])
        .arg("--root")
        .arg(&root_file)
        .arg("--state-dir")
        .arg(status_dir.join("state"))
        .arg("--hook-secret-file")
        .arg(&hook_file)
        .args(["--fetch-interval-secs", "5", "--report-interval-secs", "60"])
        .env("RUST_LOG", "info");
    let log = logs.join("status.log");
    let addr = kids.spawn_server("fleet-status", 2, cmd, &log).await?;
    let status_url = format!("http://{addr}");
    progress(Event::Listening {
        part: "fleet-status".into(),
        url: status_url.clone(),
        log,
    });
    let admin = |args: &[&str]| {
        let mut cmd = Command::new(&bins.status);
        cmd.args(["--database-url", &database_url]).args(args);
        cmd
    };

    // The stores: edge, trust, config, enrollment, daemon.
    let mut edges = BTreeMap::new();
    let mut stores = Vec::new();
    for id in STORES {
        let s = StoreDirs::new(dir, id);
        mkdir(&s.root.join("edge"))?;
        write_file(&s.edge_token(), &format!("{}\n", secret()))?;
        let mut cmd = Command::new(&bins.edge);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(s.root.join("edge/edge.db"))
            .arg("--token-file")
            .arg(s.edge_token())
            .env("RUST_LOG", "info");
        let log = logs.join(format!("edge-{}.log", s.slug));
        let part = format!("fleet-edge {id}");
        let addr = kids.spawn_server(&part, 1, cmd, &log).await?;
        let edge_url = format!("http://{addr}");
        progress(Event::Listening {
            part,
            url: edge_url.clone(),
            log,
        });
        let trust = s.root.join("trust");
        mkdir(&trust)?;
        std::fs::copy(&root_file, trust.join(release::root::PIN_FILE)).map_err(|source| {
            QuickstartError::Io {
                what: format!("pinning the trust root in {}", trust.display()),
                source,
            }
        })?;
        let toml_str = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
        let config = format!(
            "# Written by `fleet quickstart`; see docs/operations/reconciler.md.\n\
             store = \"{id}\"\n\
             repo_url = {}\n\
             branch = \"main\"\n\
             trust_dir = {}\n\
             edge_url = \"{edge_url}\"\n\
             edge_token_file = {}\n\
             status_url = \"{status_url}\"\n\
             state_dir = {}\n\
             interval_secs = 60\n\
             fetch_timeout_secs = 30\n",
            toml_str(&git_host),
            toml_str(&trust),
            toml_str(&s.edge_token()),
            toml_str(&s.root.join("state")),
        );
        write_file(&s.config(), &config)?;
        let token = children::output(
            &mut admin(&["token", "create", id, "--ttl", "10m"]),
            COMMAND_TIMEOUT,
        )
        .await
        .map_err(|e| QuickstartError::Command {
            what: format!("fleet-status token create {id}"),
            problem: e.to_string(),
        })?;
        let token_file = s.root.join("bootstrap.token");
        write_file(&token_file, token.trim())?;
        let mut enroll = Command::new(&bins.reconciler);
        enroll
            .arg("--config")
            .arg(s.config())
            .args(["enroll", "--token-file"])
            .arg(&token_file)
            .env("RUST_LOG", "warn");
        let enrolled = children::output(&mut enroll, COMMAND_TIMEOUT).await;
        let _ = std::fs::remove_file(&token_file);
        enrolled.map_err(|e| QuickstartError::Command {
            what: format!("fleet-reconciler enroll ({id})"),
            problem: e.to_string(),
        })?;
        progress(Event::Enrolled {
            store: id.to_owned(),
        });
        edges.insert(id.to_owned(), edge_url);
        stores.push(s);
    }
    let operator_token = children::output(
        &mut admin(&["operator", "create", "--tenant", TENANT]),
        COMMAND_TIMEOUT,
    )
    .await
    .map_err(|e| QuickstartError::Command {
        what: "fleet-status operator create".into(),
        problem: e.to_string(),
    })?
    // `<id> <token>`: the token is the last word.
    .split_whitespace()
    .last()
    .unwrap_or_default()
    .to_owned();
    let operator_token_file = dir.join("operator.token");
    write_file(&operator_token_file, &format!("{operator_token}\n"))?;

    // Secrets (DESIGN.md §11): each enrolled store's recipient into its
    // store.yaml, the PINs re-encrypted for it with the template's demo
    // escrow identity, then the first signed releases.
    let recipients_repo = repo.clone();
    let recipients_url = status_url.clone();
    let recipients_token = operator_token.clone();
    tokio::task::spawn_blocking(move || {
        crate::ops::secret::recipients(&recipients_repo, &recipients_url, &recipients_token)
    })
    .await
    .map_err(|e| QuickstartError::Command {
        what: "fleet secret recipients".into(),
        problem: e.to_string(),
    })?
    .map_err(|source| QuickstartError::Step {
        what: "writing the stores' recipients (fleet secret recipients)".into(),
        source,
    })?;
    let (rewrapped, _) = crate::ops::secret::values::rewrap(
        &repo,
        &crate::ops::secret::values::RewrapOptions {
            identity: Some(repo.join(DEMO_ESCROW_IDENTITY)),
            ..Default::default()
        },
    )
    .map_err(|source| QuickstartError::Step {
        what: "encrypting the PINs for the enrolled stores (fleet secret rewrap)".into(),
        source,
    })?;
    progress(Event::SecretsEncrypted {
        values: rewrapped.iter().map(|t| t.reencrypted).sum(),
        wraps: rewrapped.iter().map(|t| t.wraps_written).sum(),
    });
    let (releases, commit, _) = sign_and_commit(
        &repo,
        &key,
        "Release: PINs encrypted for the enrolled stores, and the first signed releases",
    )
    .await?;
    progress(Event::Signed { releases, commit });
    run_git(&repo, &["push", "-q", "origin", "main"]).await?;
    progress(Event::Pushed {
        git_host: git_host.clone(),
    });
    for s in &stores {
        let mut cmd = Command::new(&bins.reconciler);
        cmd.arg("--config")
            .arg(s.config())
            .arg("run")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        let log = logs.join(format!("reconciler-{}.log", s.slug));
        let part = format!("fleet-reconciler {}", s.id);
        kids.spawn_daemon(&part, 0, cmd, &log)?;
        progress(Event::Running { part, log });
    }
    let api = Api::new(&status_url, &operator_token, &hook_secret)?;
    progress(Event::Waiting {
        revision: 1,
        timeout: FIRST_SYNC_TIMEOUT,
    });
    wait_for(&api, kids, &logs, 1, &STORES, FIRST_SYNC_TIMEOUT, progress).await?;

    // The demo: a price change, signed, pushed, announced.
    let menu = repo.join(DEMO_FILE);
    let text = std::fs::read_to_string(&menu).map_err(|source| QuickstartError::Io {
        what: format!("reading {}", menu.display()),
        source,
    })?;
    let (changed, from, to) =
        raise_price(&text, DEMO_VARIATION, DEMO_INCREASE).ok_or_else(|| {
            QuickstartError::Command {
                what: format!("the demo change in {}", menu.display()),
                problem: format!("no `{{id: {DEMO_VARIATION}, … price: N}}` line to change"),
            }
        })?;
    write_file(&menu, &changed)?;
    let commit = commit_all(
        &repo,
        &format!(
            "Demo: {DEMO_VARIATION} costs {} (was {})",
            money(to),
            money(from)
        ),
    )
    .await?;
    progress(Event::DemoChange {
        file: DEMO_FILE.into(),
        variation: DEMO_VARIATION.into(),
        from,
        to,
        commit,
    });
    let (releases, commit, rollouts) =
        sign_and_commit(&repo, &key, "Release: the demo price change").await?;
    progress(Event::Signed { releases, commit });
    for line in rollouts {
        progress(Event::Rollout { line });
    }
    run_git(&repo, &["push", "-q", "origin", "main"]).await?;
    progress(Event::Pushed {
        git_host: git_host.clone(),
    });
    api.hook().await?;
    progress(Event::HookCalled);
    progress(Event::Waiting {
        revision: 2,
        timeout: DEMO_TIMEOUT,
    });
    wait_for(&api, kids, &logs, 2, &STORES[..1], DEMO_TIMEOUT, progress).await?;
    // The canary runs it: the next wave's gate passes.
    for line in advance_rollouts(&repo, &key, &status_url, &operator_token).await? {
        progress(Event::Rollout { line });
    }
    commit_all(&repo, "Rollout: wave rest signed after the canary").await?;
    run_git(&repo, &["push", "-q", "origin", "main"]).await?;
    api.hook().await?;
    wait_for(&api, kids, &logs, 2, &STORES[1..], DEMO_TIMEOUT, progress).await?;
    for line in advance_rollouts(&repo, &key, &status_url, &operator_token).await? {
        progress(Event::Rollout { line });
    }
    commit_all(&repo, "Rollout: completed").await?;
    run_git(&repo, &["push", "-q", "origin", "main"]).await?;
    for s in &stores {
        let token = std::fs::read_to_string(s.edge_token()).unwrap_or_default();
        if let Some(price) = api.edge_price(&edges[&s.id], token.trim()).await {
            progress(Event::EdgePrice {
                store: s.id.clone(),
                variation: DEMO_VARIATION.into(),
                price,
            });
        }
    }

    Ok(Summary {
        dir: dir.to_path_buf(),
        dashboard: status_url,
        operator_token,
        operator_token_file,
        edges,
        repo,
        git_host,
        public_key: made.public_key,
        secret_key: made.secret_key,
        logs,
        fleet: bins.fleet.clone(),
        exit_after_demo: opts.exit_after_demo,
    })
}

/// `fleet rollout advance` in-process (on a blocking thread: it makes its
/// own HTTP client); answers its lines.
async fn advance_rollouts(
    repo: &Path,
    key: &minisign::SecretKey,
    status_url: &str,
    operator_token: &str,
) -> Result<Vec<String>, QuickstartError> {
    let (repo, key) = (repo.to_path_buf(), key.clone());
    let (url, token) = (status_url.to_owned(), operator_token.to_owned());
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let api = crate::ops::status_api::StatusApi::new(&url, &token)?;
        let opts = crate::ops::sign::SignOptions::new(repo, key, chrono::Utc::now());
        let ctx = crate::ops::sign::SignContext::new(&opts)?;
        let advanced = crate::ops::rollout::advance(&ctx, |tenant| {
            crate::ops::rollout::store_statuses(&api, tenant)
        })?;
        Ok(advanced.into_iter().map(|a| a.line).collect())
    })
    .await
    .map_err(|e| QuickstartError::Command {
        what: "fleet rollout advance".into(),
        problem: e.to_string(),
    })?;
    done.map_err(|source| QuickstartError::Step {
        what: "advancing the demo rollout".into(),
        source,
    })
}

/// `text` with `variation`'s price raised by `by`: (new text, old, new).
pub fn raise_price(text: &str, variation: &str, by: u64) -> Option<(String, u64, u64)> {
    let needle = format!("{{id: {variation},");
    let mut found = None;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if found.is_some() || !line.contains(&needle) {
                return line.to_owned();
            }
            let Some(at) = line.find("price: ").map(|i| i + 7) else {
                return line.to_owned();
            };
            let end = line[at..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(line.len(), |n| at + n);
            let Ok(old) = line[at..end].parse::<u64>() else {
                return line.to_owned();
            };
            found = Some((old, old + by));
            format!("{}{}{}", &line[..at], old + by, &line[end..])
        })
        .collect();
    let (old, new) = found?;
    Some((lines.join("\n") + "\n", old, new))
}

/// Poll the status API until every store in [`STORES`] applied `revision`,
/// reporting each as it does; bounded by `timeout`.
async fn wait_for(
    api: &Api,
    kids: &mut Children,
    logs: &Path,
    revision: u64,
    stores: &[&str],
    timeout: Duration,
    progress: &mut dyn FnMut(Event),
) -> Result<(), QuickstartError> {
    let started = Instant::now();
    let mut pending: Vec<&str> = stores.to_vec();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    loop {
        if let Some((part, status, log)) = kids.exited() {
            return Err(QuickstartError::Part {
                part,
                problem: format!("exited ({status})"),
                log,
            });
        }
        match api.stores().await {
            Ok(list) => {
                for row in list {
                    let store = row["store"].as_str().unwrap_or_default().to_owned();
                    let state = row["state"].as_str().unwrap_or("?").to_owned();
                    let applied = row["applied_revision"].as_u64();
                    seen.insert(
                        store.clone(),
                        format!(
                            "{state}, applied revision {}",
                            applied.map_or("none".into(), |a| a.to_string())
                        ),
                    );
                    if let Some(i) = pending.iter().position(|s| *s == store)
                        && applied.is_some_and(|a| a >= revision)
                        && state != "failed"
                        && state != "refused"
                    {
                        pending.remove(i);
                        progress(Event::Converged {
                            store,
                            revision,
                            state,
                            after: started.elapsed(),
                        });
                    }
                }
            }
            Err(e) => {
                seen.insert("api".into(), e);
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            let store = pending[0].to_owned();
            return Err(QuickstartError::NotConverged {
                seen: seen
                    .get(&store)
                    .or_else(|| seen.get("api"))
                    .cloned()
                    .unwrap_or_else(|| "not listed".into()),
                log: logs.join(format!("reconciler-{}.log", store.replace('/', "-"))),
                store,
                revision,
                waited: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The status service's operator API and Git hook, and the edge's menu.
struct Api {
    http: reqwest::Client,
    base: String,
    operator: String,
    hook_secret: String,
}

impl Api {
    fn new(base: &str, operator: &str, hook_secret: &str) -> Result<Api, QuickstartError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| QuickstartError::Command {
                what: "making the HTTP client".into(),
                problem: e.to_string(),
            })?;
        Ok(Api {
            http,
            base: base.to_owned(),
            operator: operator.to_owned(),
            hook_secret: hook_secret.to_owned(),
        })
    }

    /// `GET /api/v1/stores`: the `stores` array.
    async fn stores(&self) -> Result<Vec<serde_json::Value>, String> {
        let url = format!("{}/api/v1/stores", self.base);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.operator)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: {}", resp.status()));
        }
        let mut v: serde_json::Value = resp.json().await.map_err(|e| format!("GET {url}: {e}"))?;
        Ok(match v["stores"].take() {
            serde_json::Value::Array(a) => a,
            _ => Vec::new(),
        })
    }

    /// `POST /api/v1/hooks/git` signed as a Git host signs it.
    async fn hook(&self) -> Result<(), QuickstartError> {
        use hmac::Mac as _;
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.hook_secret.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(body);
        let hex = hex::encode(mac.finalize().into_bytes());
        let url = format!("{}/api/v1/hooks/git", self.base);
        let failed = |problem: String| QuickstartError::Command {
            what: format!("POST {url}"),
            problem,
        };
        let resp = self
            .http
            .post(&url)
            .header("X-Hub-Signature-256", format!("sha256={hex}"))
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if resp.status().as_u16() != 202 {
            return Err(failed(format!("answered {}", resp.status())));
        }
        Ok(())
    }

    /// The demo variation's price as the edge at `edge` has it.
    async fn edge_price(&self, edge: &str, token: &str) -> Option<u64> {
        let v: serde_json::Value = self
            .http
            .get(format!("{edge}/menu/items/{DEMO_ITEM}"))
            .bearer_auth(token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["variations"]
            .as_array()?
            .iter()
            .find(|x| x["id"] == DEMO_VARIATION)?["price"]
            .as_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_price_changes_one_variation_only() {
        let text = "items:\n  - {id: a, price: 100}\n  - {id: bacon-cheeseburger-single, name: Single, sku: X, price: 1349}\n";
        let (out, from, to) = raise_price(text, DEMO_VARIATION, 50).expect("found");
        assert_eq!((from, to), (1349, 1399));
        assert!(out.contains("sku: X, price: 1399}"));
        assert!(out.contains("{id: a, price: 100}"));
        assert!(raise_price(text, "nope", 50).is_none());
    }

    #[test]
    fn the_template_has_the_demo_variation() {
        let menu = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fleet-repo-template")
            .join(DEMO_FILE);
        let text = std::fs::read_to_string(menu).expect("the template's menu");
        assert!(raise_price(&text, DEMO_VARIATION, DEMO_INCREASE).is_some());
    }
}
