//! `fleet-reconciler`: the agent on each store that converges the edge
//! backend to the store's signed release. Parses flags and calls
//! `reconciler::agent` / `reconciler::daemon`; see `fleet-reconciler --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use reconciler::agent::Agent;
use reconciler::config::{Config, DEFAULT_PATH};
use reconciler::daemon;
use reconciler::diagnose::{self, DiagnoseOptions};
use reconciler::outbox::Outbox;
use reconciler::status_client::{self, StatusClient, StatusError};
use release::applied;
use schemas::diff::Change;
use wire::report::Report;

/// Pulls this store's signed release from the fleet repo (outbound only),
/// verifies it, and converges the local edge backend to it.
#[derive(Debug, Parser)]
#[command(name = "fleet-reconciler", version, propagate_version = true)]
struct Cli {
    /// The configuration file (TOML).
    #[arg(long, global = true, default_value = DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One pass: fetch, verify, plan, apply, record, report.
    ///
    /// Exit 0 converged or nothing to do, 1 failed (will retry), 2 bad
    /// config, 3 release refused.
    Once,
    /// Run passes every interval_secs (with jitter, and backoff on failure)
    /// until SIGTERM; reloads the config and trust keys when they change.
    Run,
    /// Dry run: show what a pass would change, per domain; apply nothing.
    ///
    /// Exit 0 in sync, 1 would change, 2 or more on error (3 refused).
    Plan,
    /// Enroll this store's node with the status service: make an Ed25519
    /// node key in state_dir and bind it to the store with a single-use
    /// bootstrap token (`fleet-status token create <tenant>/<store>`).
    ///
    /// Re-enrolling (a new token) replaces the key; the service then
    /// revokes the old one. Exit 0 enrolled, 1 refused or unreachable, 2
    /// bad config.
    Enroll {
        /// The status service, e.g. https://status.example.com (default: the config's status_url).
        #[arg(long)]
        status_url: Option<String>,
        /// The bootstrap token (or use --token-file / $FLEET_BOOTSTRAP_TOKEN).
        #[arg(long, env = "FLEET_BOOTSTRAP_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A file holding the bootstrap token (keeps it out of `ps`).
        #[arg(long, conflicts_with = "token")]
        token_file: Option<PathBuf>,
    },
    /// Replace the node key without a bootstrap token: a new key, bound
    /// to the store by a request the current key signs; the service revokes
    /// the current key in the same transaction.
    ///
    /// Run it again if it failed on the way: a key the service already
    /// bound is recovered. Exit 0 rotated, 1 refused or unreachable, 2 bad
    /// config.
    RotateKey,
    /// Show the last applied revision and commit, the last pass, the node's
    /// enrollment and pending reports.
    Status,
    /// Write a support bundle (.tar.gz): versions, the config with secrets
    /// redacted, recent logs, state, outbox, Git mirror refs. Never the
    /// edge token or the node key.
    ///
    /// Exit 0 written (and uploaded), 1 failed.
    Diagnose {
        /// Where to write the bundle (default: ./fleet-diagnose-<time>.tar.gz).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also send it to the status service, signed with the node key.
        #[arg(long)]
        upload: bool,
        /// The systemd unit whose journal is included.
        #[arg(long, default_value = "fleet-reconciler")]
        journal_unit: String,
        /// Leave the journal out.
        #[arg(long)]
        no_journal: bool,
    },
}

/// How long `once` spends delivering queued reports at most.
const ONCE_DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let code = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            1
        }
    };
    ExitCode::from(code as u8)
}

/// The config of a command that writes the state directory: refused when
/// root would write into a directory the daemon's user owns.
fn load_config_to_write(path: &Path) -> Result<Config, i32> {
    let config = Config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        2
    })?;
    runas::refuse_root_on_owned_dir("fleet-reconciler", "its state directory", &config.state_dir)
        .map_err(|e| {
        eprintln!("error: {e}");
        2
    })?;
    Ok(config)
}

fn load(config: &Path) -> Result<Agent, i32> {
    let config = load_config_to_write(config)?;
    Agent::new(config).map_err(|e| {
        eprintln!("error: {e}");
        2
    })
}

async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Once => {
            let agent = match load(&cli.config) {
                Ok(a) => a,
                Err(code) => return code,
            };
            let (report, _) = agent.pass(chrono::Utc::now(), true).await;
            daemon::record(
                &agent.config.state_dir,
                agent.config.outbox_max_reports,
                &report,
            );
            print_summary(&report);
            deliver_once(&agent.config).await;
            report.outcome.exit_code()
        }
        Command::Enroll {
            status_url,
            token,
            token_file,
        } => match load_config_to_write(&cli.config) {
            Ok(config) => enroll(&config, &cli.config, status_url, token, token_file).await,
            Err(code) => code,
        },
        Command::RotateKey => match load_config_to_write(&cli.config) {
            Ok(config) => rotate_key(&config).await,
            Err(code) => code,
        },
        Command::Run => match load_config_to_write(&cli.config) {
            Ok(_) => daemon::run(cli.config.clone()).await,
            Err(code) => code,
        },
        Command::Plan => {
            let agent = match load(&cli.config) {
                Ok(a) => a,
                Err(code) => return code,
            };
            let (report, plan) = agent.pass(chrono::Utc::now(), false).await;
            match plan {
                Some(plan) => {
                    if plan.is_empty() {
                        println!(
                            "{} is in sync with revision {}.",
                            report.store,
                            report.desired_revision.unwrap_or(0)
                        );
                        for o in &plan.overridden {
                            println!("  overridden locally, left alone: {} `{}`", o.kind, o.id);
                        }
                        0
                    } else {
                        println!(
                            "{} would change ({} write(s)) to reach revision {}:",
                            report.store,
                            plan.ops.len(),
                            report.desired_revision.unwrap_or(0)
                        );
                        for c in &plan.diff.changes {
                            let note = if plan.overridden.contains(c) {
                                "  (overridden locally, left alone)"
                            } else {
                                ""
                            };
                            match &c.change {
                                Change::Changed { fields } => {
                                    println!("  {} {} `{}`{note}", c.kind.domain(), c.kind, c.id);
                                    for f in fields {
                                        println!("      {f}");
                                    }
                                }
                                Change::Added { .. } => {
                                    println!("  {} + {} `{}`{note}", c.kind.domain(), c.kind, c.id)
                                }
                                Change::Removed { .. } => {
                                    println!("  {} - {} `{}`{note}", c.kind.domain(), c.kind, c.id)
                                }
                            }
                        }
                        1
                    }
                }
                None => {
                    print_summary(&report);
                    match report.outcome.exit_code() {
                        0 => 0,
                        3 => 3,
                        _ => 2,
                    }
                }
            }
        }
        Command::Diagnose {
            out,
            upload,
            journal_unit,
            no_journal,
        } => diagnose(&cli.config, out, upload, journal_unit, no_journal).await,
        Command::Status => match Config::load(&cli.config) {
            Ok(config) => status(&config),
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        },
    }
}

/// After `once`: deliver what the outbox holds (bounded in time); a
/// failure leaves the reports queued and does not change the exit code.
async fn deliver_once(config: &Config) {
    let client = match StatusClient::open(&config.state_dir, config.status_url.as_deref()) {
        Ok(c) => c,
        Err(StatusError::NotEnrolled { .. }) => {
            if config.status_url.is_some() {
                println!(
                    "reports: queued; this node is not enrolled with the status service (run `fleet-reconciler enroll`)"
                );
            }
            return;
        }
        Err(e) => {
            println!("reports: queued; {e}");
            return;
        }
    };
    let outbox = Outbox::new(&config.state_dir, config.outbox_max_reports);
    match tokio::time::timeout(ONCE_DELIVERY_TIMEOUT, client.deliver(&outbox)).await {
        Ok(d) => {
            let mut line = format!(
                "reports: {} delivered to {}, {} pending",
                d.delivered,
                client.url(),
                d.pending
            );
            if d.rejected > 0 {
                line.push_str(&format!(
                    ", {} refused by the service and set aside in {}",
                    d.rejected,
                    config.state_dir.join("outbox/rejected").display()
                ));
            }
            if let Some(e) = d.error {
                line.push_str(&format!(" (will retry: {e})"));
            }
            println!("{line}");
        }
        Err(_) => println!(
            "reports: delivery took over {} s; the rest stay queued",
            ONCE_DELIVERY_TIMEOUT.as_secs()
        ),
    }
}

async fn rotate_key(config: &Config) -> i32 {
    let before = status_client::enrollment(&config.state_dir)
        .ok()
        .flatten()
        .map(|e| e.key_id);
    match status_client::rotate_key(&config.state_dir, config.status_url.as_deref()).await {
        Ok(e) => {
            println!(
                "rotated the node key of {}: {} → {} (the old key is revoked)",
                e.store,
                before.as_deref().unwrap_or("?"),
                e.key_id
            );
            0
        }
        Err(e @ StatusError::NotEnrolled { .. }) => {
            eprintln!("error: {e}; enroll first (fleet-reconciler enroll)");
            2
        }
        Err(e) => {
            eprintln!("error: the key rotation failed: {e}");
            eprintln!("Nothing changed on this node; run `fleet-reconciler rotate-key` again.");
            1
        }
    }
}

async fn enroll(
    config: &Config,
    config_path: &Path,
    status_url: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
) -> i32 {
    let Some(url) = status_url.or_else(|| config.status_url.clone()) else {
        eprintln!(
            "error: no status service: pass --status-url or set status_url in {}",
            config_path.display()
        );
        return 2;
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        eprintln!("error: --status-url {url:?} is not an http:// or https:// URL");
        return 2;
    }
    let token = match (token, token_file) {
        (Some(t), _) => t,
        (None, Some(path)) => match reconciler::config::read_secret(&path, "bootstrap token") {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: reading {}: {e}", path.display());
                return 2;
            }
        },
        (None, None) => {
            eprintln!(
                "error: give the bootstrap token with --token, --token-file or $FLEET_BOOTSTRAP_TOKEN"
            );
            return 2;
        }
    };
    match status_client::enroll(&config.state_dir, &url, &token, config.store.as_str()).await {
        Ok(e) => {
            println!(
                "enrolled {} with {} as node key {}",
                e.store, e.status_url, e.key_id
            );
            if config
                .status_url
                .as_deref()
                .map(|u| u.trim_end_matches('/'))
                != Some(e.status_url.as_str())
            {
                println!(
                    "note: the config's status_url is {}; reports go there when it is set",
                    config.status_url.as_deref().unwrap_or("unset")
                );
            }
            0
        }
        Err(e) => {
            eprintln!("error: enrollment failed: {e}");
            1
        }
    }
}

async fn diagnose(
    config: &Path,
    out: Option<PathBuf>,
    upload: bool,
    journal_unit: String,
    no_journal: bool,
) -> i32 {
    let now = chrono::Utc::now();
    let opts = DiagnoseOptions {
        config_path: config.to_path_buf(),
        out: out.unwrap_or_else(|| {
            PathBuf::from(format!(
                "fleet-diagnose-{}.tar.gz",
                now.format("%Y%m%dT%H%M%SZ")
            ))
        }),
        journal_unit: (!no_journal).then_some(journal_unit),
        now,
    };
    let bundle = match diagnose::write_bundle(&opts) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    println!(
        "support bundle: {} ({} bytes, {} entries)",
        bundle.path.display(),
        bundle.bytes,
        bundle.entries.len()
    );
    if upload {
        match diagnose::upload(&bundle, None).await {
            Ok(u) => println!("uploaded to {} as {} for {}", u.url, u.id, u.store),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        }
    }
    0
}

fn print_summary(r: &Report) {
    let rev = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    println!(
        "{}: {} (desired revision {}, applied revision {}, {} change(s), {} drift, {} overridden, {} ms)",
        r.store,
        r.outcome.as_str(),
        rev(r.desired_revision),
        rev(r.applied_revision),
        r.changes.len(),
        r.drift.len(),
        r.overridden.len(),
        r.duration_ms
    );
    if let Some(refusal) = &r.refusal {
        println!("refused [{}]: {}", refusal.code, refusal.message);
    }
    for e in &r.errors {
        println!("error: {e}");
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
    for d in &r.drift {
        print!("{}", d.diff);
    }
}

fn status(config: &Config) -> i32 {
    // Two commits are in play: the release's `source_commit` (what was
    // rendered and signed; `fleet plan` and the reports name it) and the
    // fetched commit that carries the signed release file (the release
    // commit). Each line says which it shows.
    match applied::read(&config.state_dir) {
        Ok(Some(a)) => println!(
            "applied: revision {} from commit {} (the release's source commit) at {}",
            a.revision, a.commit, a.applied_at
        ),
        Ok(None) => println!("applied: nothing yet"),
        Err(e) => println!("applied: {e}"),
    }
    // What the store trusts: the newest trust root version it walked to,
    // the one its trust directory pins, or bare keys.
    match (
        release::root::load_persisted(&config.state_dir),
        release::root::Anchor::load(&config.trust_dir),
    ) {
        (Ok(Some(root)), _) => println!("trust: {root}"),
        (Err(e), _) => println!("trust: {e}"),
        (Ok(None), Ok(release::root::Anchor::Root(pin))) => {
            println!("trust: {pin} (pinned; not walked yet)")
        }
        (Ok(None), Ok(release::root::Anchor::Keys(keys))) => println!(
            "trust: release keys pinned in {} ({}); no trust root",
            config.trust_dir.display(),
            keys.iter()
                .map(|k| k.key_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Ok(None), Err(e)) => println!("trust: {e}"),
    }
    match daemon::last_pass(&config.state_dir) {
        Some(r) => {
            println!(
                "last pass: {} at {} ({} ms)",
                r.outcome.as_str(),
                r.started_at,
                r.duration_ms,
            );
            if let Some(refusal) = &r.refusal {
                println!("  refused ({}): {}", refusal.code, refusal.message);
            }
            for e in &r.errors {
                println!("  error: {e}");
            }
            for w in &r.warnings {
                println!("  warning: {w}");
            }
            if let Some(c) = &r.fetched_commit {
                println!("  release commit (fetched): {c}");
            }
            if let Some(c) = &r.commit {
                println!("  source commit (rendered from): {c}");
            }
        }
        None => println!("last pass: none yet"),
    }
    match status_client::enrollment(&config.state_dir) {
        Ok(Some(e)) => {
            println!(
                "node: enrolled as {} with {} (key {}) at {}",
                e.store, e.status_url, e.key_id, e.enrolled_at
            );
            if config
                .state_dir
                .join(status_client::AGE_IDENTITY_FILE)
                .exists()
            {
                match status_client::age_recipient(&config.state_dir) {
                    Ok(r) => println!("age recipient: {r}"),
                    Err(e) => println!("age recipient: {e}"),
                }
            }
        }
        Ok(None) => println!("node: not enrolled"),
        Err(e) => println!("node: {e}"),
    }
    let outbox = Outbox::new(&config.state_dir, config.outbox_max_reports);
    let pending = outbox.pending().map(|p| p.len()).unwrap_or(0);
    println!(
        "pending reports: {pending} (dropped: {}, set aside: {})",
        outbox.dropped().unwrap_or(0),
        outbox.rejected()
    );
    0
}
