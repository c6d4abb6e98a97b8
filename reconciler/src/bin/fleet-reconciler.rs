//! `fleet-reconciler`: the agent on each store that converges the edge
//! backend to the store's signed release. Parses flags and calls
//! `reconciler::agent` / `reconciler::daemon`; see `fleet-reconciler --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use reconciler::agent::Agent;
use reconciler::config::{Config, DEFAULT_PATH};
use reconciler::outbox::{DEFAULT_BOUND, Outbox};
use reconciler::report::Report;
use reconciler::{applied, daemon};
use schemas::diff::Change;

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
    /// Show the last applied revision and commit, the last pass, and pending reports.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLEET_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            1
        }
    };
    ExitCode::from(code as u8)
}

fn load(config: &Path) -> Result<Agent, i32> {
    let config = Config::load(config).map_err(|e| {
        eprintln!("error: {e}");
        2
    })?;
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
            daemon::record(&agent.config.state_dir, &report);
            print_summary(&report);
            report.outcome.exit_code()
        }
        Command::Run => match Config::load(&cli.config) {
            Ok(_) => daemon::run(cli.config.clone()).await,
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
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
        Command::Status => match Config::load(&cli.config) {
            Ok(config) => status(&config),
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        },
    }
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
    match applied::read(&config.state_dir) {
        Ok(Some(a)) => println!(
            "applied: revision {} from commit {} at {}",
            a.revision, a.commit, a.applied_at
        ),
        Ok(None) => println!("applied: nothing yet"),
        Err(e) => println!("applied: {e}"),
    }
    match daemon::last_pass(&config.state_dir) {
        Some(r) => println!(
            "last pass: {} at {} ({} ms){}",
            r.outcome.as_str(),
            r.started_at,
            r.duration_ms,
            r.errors
                .first()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
        None => println!("last pass: none yet"),
    }
    let outbox = Outbox::new(&config.state_dir, DEFAULT_BOUND);
    let pending = outbox.pending().map(|p| p.len()).unwrap_or(0);
    println!(
        "pending reports: {pending} (dropped: {})",
        outbox.dropped().unwrap_or(0)
    );
    0
}
