//! `fleet-status`: the fleet status service (DESIGN.md §6). Parses flags
//! and calls into the library; logs go to stderr, and stdout carries only
//! what a command answers (`listening on ADDR`, a token).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use status::{admin, server};

/// jemalloc rather than glibc's allocator: a replica holding 10,000
/// long-polls keeps a third less resident, mostly because the pages of a
/// connection's buffers that are never written are never touched (ADR 55,
/// docs/BENCHMARKS.md).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Head office view of the fleet: desired vs applied revisions per store.
#[derive(Debug, Parser)]
#[command(name = "fleet-status", version)]
struct Cli {
    /// `sqlite://FILE` or `postgres://…`.
    #[arg(
        long,
        global = true,
        env = "FLEET_STATUS_DATABASE_URL",
        default_value = "sqlite://status.db"
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API.
    Serve(Box<ServeArgs>),
    /// Bootstrap tokens for enrolling a store's node.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Operator bearer tokens.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Node keys.
    #[command(subcommand)]
    Node(NodeCommand),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// The fleet repo (URL or local path) to read desired revisions from.
    #[arg(long)]
    repo_url: Option<String>,
    #[arg(long, default_value = "main")]
    branch: String,
    /// Minisign public key file, or a directory of `*.pub`.
    #[arg(long, conflicts_with = "root")]
    pubkey: Option<PathBuf>,
    /// A pinned trust root (trust/root/<n>.yaml of the fleet repo): the
    /// service walks the repo's chain from it, as the stores do, and
    /// verifies releases with the newest version's release keys.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Where the bare mirror of the fleet repo is kept.
    #[arg(long, default_value = "status-state")]
    state_dir: PathBuf,
    /// File holding an HTTPS token for a private fleet repo.
    #[arg(long)]
    git_token_file: Option<PathBuf>,
    /// SSH deploy key for a private fleet repo.
    #[arg(long)]
    git_ssh_key_file: Option<PathBuf>,
    #[arg(long, default_value_t = 60)]
    fetch_interval_secs: u64,
    /// File holding the HMAC secret of `POST /api/v1/hooks/git`; the hook is off without it.
    #[arg(long)]
    hook_secret_file: Option<PathBuf>,
    /// The reconcilers' pass interval; a store is offline after three without a report.
    #[arg(long, default_value_t = 60)]
    report_interval_secs: u64,
    /// A release expiring within this many days makes its store `stale`.
    #[arg(long, default_value_t = 14)]
    stale_within_days: i64,
    /// Reports older than this many days are deleted; 0 keeps them all.
    #[arg(long, default_value_t = 90)]
    retain_reports_days: i64,
    /// Link commit ids on the dashboard to this address; `{commit}` is
    /// replaced by the full id (`https://git.example.com/acme/fleet/-/commit/{commit}`).
    #[arg(long)]
    commit_url_template: Option<String>,
    /// Post an event here (JSON) when a store is refused, fails or goes
    /// offline, a rollout aborts, or a release or the trust root expires
    /// within 30 days, and when that ends; retried while it is down.
    #[arg(long)]
    alert_webhook: Option<String>,
    /// How often alert conditions are evaluated (also for the
    /// `fleet_status_alerts` gauges of /metrics).
    #[arg(long, default_value_t = 30)]
    alert_interval_secs: u64,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a single-use bootstrap token for `<tenant>/<store>`.
    Create {
        store: String,
        /// How long the token is valid (`1h`, `30m`, `2d`).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    /// Reads every page and API call of its scope.
    Viewer,
    /// Also revokes node keys.
    Editor,
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Make an operator bearer token; prints `<id> <token>` on its last
    /// line (the token is shown only this once).
    Create {
        /// A tenant whose stores it sees; repeat for several.
        #[arg(long = "tenant", required = true)]
        tenants: Vec<String>,
        /// Limit it to this store (`tenant/store`, of a --tenant); repeat.
        #[arg(long = "store")]
        stores: Vec<String>,
        #[arg(long, value_enum, default_value = "editor")]
        role: RoleArg,
        /// How long the token is valid (`90d`, `12h`).
        #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// List operator tokens: id, role, scope, created, expires, revoked.
    List,
    /// Revoke an operator token by id: its next request gets 401.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Revoke every node key of `<tenant>/<store>`.
    Revoke { store: String },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn println_flush(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("writing to stdout")?;
    out.flush().context("writing to stdout")
}

/// Every store holds a long-poll open, one file descriptor each: raise the
/// soft open-files limit to the hard one, as a service holding thousands
/// of connections must (systemd's soft default is 1024, its hard 524288).
#[cfg(unix)]
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read the open-files limit; leaving it as it is.");
            return;
        }
    };
    if soft >= hard {
        return;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => tracing::info!(
            from = soft,
            to = hard,
            "Open-files limit raised to the hard limit."
        ),
        Err(e) => tracing::warn!(
            soft,
            hard,
            error = %e,
            "Cannot raise the open-files limit: at most about {soft} stores can hold a long-poll."
        ),
    }
}

#[cfg(not(unix))]
fn raise_open_files_limit() {}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let db = cli.database_url;
    match cli.command {
        Command::Serve(a) => {
            let a = *a;
            raise_open_files_limit();
            let opts = server::ServeOptions {
                listen: a.listen,
                database_url: db,
                repo_url: a.repo_url,
                branch: a.branch,
                pubkey: a.pubkey,
                root: a.root,
                state_dir: a.state_dir,
                git_token_file: a.git_token_file,
                git_ssh_key_file: a.git_ssh_key_file,
                fetch_interval: Duration::from_secs(a.fetch_interval_secs.max(1)),
                hook_secret_file: a.hook_secret_file,
                report_interval: Duration::from_secs(a.report_interval_secs.max(1)),
                stale_within_days: a.stale_within_days,
                retain_reports_days: a.retain_reports_days,
                commit_url_template: a.commit_url_template,
                alert_webhook: a.alert_webhook,
                alert_interval: Duration::from_secs(a.alert_interval_secs.max(1)),
            };
            server::serve(opts, |addr| {
                if let Err(e) = println_flush(&format!("listening on {addr}")) {
                    tracing::warn!(error = %e, "Cannot announce the address on stdout.");
                }
            })
            .await
            .context("fleet-status serve")
        }
        Command::Token(TokenCommand::Create { store, ttl }) => {
            let token = admin::token_create(&db, &store, ttl)
                .await
                .with_context(|| format!("creating a bootstrap token for {store}"))?;
            println_flush(&token)
        }
        Command::Operator(OperatorCommand::Create {
            tenants,
            stores,
            role,
            ttl,
        }) => {
            let spec = admin::OperatorSpec {
                tenants,
                stores,
                role: match role {
                    RoleArg::Viewer => status::api::Role::Viewer,
                    RoleArg::Editor => status::api::Role::Editor,
                },
                ttl,
            };
            let (id, token) = admin::operator_create(&db, &spec)
                .await
                .context("creating an operator token")?;
            println_flush(&format!("{id} {token}"))
        }
        Command::Operator(OperatorCommand::List) => {
            let rows = admin::operator_list(&db)
                .await
                .context("listing operator tokens")?;
            let now = chrono::Utc::now().timestamp();
            println_flush(
                "ID            ROLE    TENANTS / STORES                CREATED               EXPIRES               STATE",
            )?;
            for r in rows {
                let scope = if r.stores.is_empty() {
                    r.tenants.join(",")
                } else {
                    r.stores.join(",")
                };
                let state = match (r.revoked_at, r.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(e)) if e <= now => "expired",
                    (None, None) => "active (no expiry: revoke it)",
                    (None, Some(_)) => "active",
                };
                println_flush(&format!(
                    "{:<13} {:<7} {:<31} {:<21} {:<21} {state}",
                    r.id,
                    r.role,
                    scope,
                    status::dashboard::date(Some(r.created_at)),
                    status::dashboard::date(r.expires_at),
                ))?;
            }
            Ok(())
        }
        Command::Operator(OperatorCommand::Revoke { id }) => {
            admin::operator_revoke(&db, &id)
                .await
                .with_context(|| format!("revoking operator token {id}"))?;
            println_flush(&format!("revoked operator token {id}"))
        }
        Command::Node(NodeCommand::Revoke { store }) => {
            let n = admin::node_revoke(&db, &store)
                .await
                .with_context(|| format!("revoking the node keys of {store}"))?;
            println_flush(&format!("revoked {n} node key(s) of {store}"))
        }
    }
}
