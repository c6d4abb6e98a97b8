//! `fleet-edge`: the reference edge backend a store runs on its Pi.
//!
//! Parses flags, installs logging and calls into the `edge` library. The
//! bound address is printed to stdout as exactly one line,
//! `listening on <addr>`, so that tests and scripts can use port 0; logs go
//! to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use edge::server::{ServeOptions, serve};

/// The store's POS backend: local HTTP API over SQLite, kept in shape by
/// `fleet-reconciler`.
#[derive(Debug, Parser)]
#[command(name = "fleet-edge", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the POS API until SIGTERM or Ctrl-C.
    Serve {
        /// Address to listen on; port 0 picks a free port (printed on stdout).
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: String,
        /// The SQLite database (created and migrated when missing).
        #[arg(long, default_value = "./edge.db")]
        database: PathBuf,
        /// File holding the bearer token (surrounding whitespace trimmed).
        #[arg(long)]
        token_file: PathBuf,
        /// Serve HTTPS: the PEM certificate chain (with --tls-key). On a
        /// shared store LAN, plain HTTP shows PINs and tokens to anyone on it.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Take a consistent copy of the database, also while it is served.
    Backup {
        #[arg(long, default_value = "./edge.db")]
        database: PathBuf,
        /// Where to write the backup (replaced atomically when it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the database with a checked backup. Stop the service first.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        #[arg(long, default_value = "./edge.db")]
        database: PathBuf,
    },
    /// Print the OpenAPI document (as served at GET /openapi.json).
    Openapi,
    /// Device tokens: one bearer token per register or kitchen screen. A
    /// device token reads configuration and places orders; it never writes
    /// configuration and never sends identity headers (its actor is
    /// `device:<name>`). The --token-file token stays the admin credential.
    #[command(subcommand)]
    Device(DeviceCommand),
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// Make a token for a device; prints `<name> <token>` (shown only
    /// this once; only its SHA-256 is stored).
    Add {
        /// A name for the device, e.g. register-1 (a-z, 0-9, -).
        name: String,
        #[arg(long, default_value = "./edge.db")]
        database: PathBuf,
    },
    /// List devices: name, created, revoked.
    List {
        #[arg(long, default_value = "./edge.db")]
        database: PathBuf,
    },
    /// Revoke a device's token: its next request gets 401.
    Revoke {
        name: String,
        #[arg(long, default_value = "./edge.db")]
        database: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli.command))
}

/// The directory a file lives in (`edge.db` has the parent "", which
/// `runas` reads as the current directory).
fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Root writing where the `fleet` user's edge reads is refused: a
/// root-owned `edge.db` (or its `-wal`/`-shm`, which SQLite creates when
/// root merely opens it for a backup) keeps the POS down, and a root-owned
/// backup is one the cleanup timer cannot delete (issue #16).
fn refuse_root_on(dirs: &[(&'static str, &Path)]) -> anyhow::Result<()> {
    for (what, dir) in dirs {
        runas::refuse_root_on_owned_dir("fleet-edge", what, dir)?;
    }
    Ok(())
}

async fn run(command: Command) -> anyhow::Result<()> {
    match &command {
        Command::Serve { database, .. } => {
            refuse_root_on(&[("the database directory", dir_of(database))])?
        }
        Command::Backup { database, out } => refuse_root_on(&[
            ("the backup directory", dir_of(out)),
            ("the database directory", dir_of(database)),
        ])?,
        Command::Restore { database, .. } => {
            refuse_root_on(&[("the database directory", dir_of(database))])?
        }
        Command::Openapi => {}
        Command::Device(
            DeviceCommand::Add { database, .. }
            | DeviceCommand::List { database }
            | DeviceCommand::Revoke { database, .. },
        ) => refuse_root_on(&[("the database directory", dir_of(database))])?,
    }
    match command {
        Command::Serve {
            listen,
            database,
            token_file,
            tls_cert,
            tls_key,
        } => {
            let opts = ServeOptions {
                listen,
                database: database.clone(),
                token_file,
                tls: tls_cert.zip(tls_key),
            };
            serve(opts, |addr| {
                let mut out = std::io::stdout().lock();
                // Tests and scripts wait for this line; a closed stdout must not stop the server.
                let _ = writeln!(out, "listening on {addr}");
                let _ = out.flush();
            })
            .await
            .with_context(|| format!("serving {}", database.display()))
        }
        Command::Backup { database, out } => {
            let report = edge::backup::backup(&database, &out)
                .await
                .with_context(|| format!("backing up {}", database.display()))?;
            eprintln!(
                "backup written to {} ({} entities, {} orders, {} audit entries; audit chain verified)",
                out.display(),
                report.entities,
                report.orders,
                report.audit_entries
            );
            Ok(())
        }
        Command::Restore { from, database } => {
            let report = edge::backup::restore(&from, &database)
                .await
                .with_context(|| format!("restoring {}", database.display()))?;
            eprintln!(
                "restored {} from {} ({} entities, {} orders, {} audit entries; audit chain verified); the previous database is kept as {}.before-restore",
                database.display(),
                from.display(),
                report.entities,
                report.orders,
                report.audit_entries,
                database.display()
            );
            Ok(())
        }
        Command::Device(cmd) => device(cmd).await,
        Command::Openapi => {
            let doc = serde_json::to_string_pretty(&edge::api::openapi_document())
                .context("serializing the OpenAPI document")?;
            writeln!(std::io::stdout().lock(), "{doc}").context("writing to stdout")
        }
    }
}

async fn device(cmd: DeviceCommand) -> anyhow::Result<()> {
    use edge::devices;
    let database = match &cmd {
        DeviceCommand::Add { database, .. }
        | DeviceCommand::List { database }
        | DeviceCommand::Revoke { database, .. } => database.clone(),
    };
    if !database.exists() {
        anyhow::bail!(
            "{} does not exist: give the served database with --database (the unit's is /var/lib/fleet-edge/edge.db)",
            database.display()
        );
    }
    let db = edge::db::Db::open(&database)
        .await
        .with_context(|| format!("opening {}", database.display()))?;
    let result = match cmd {
        DeviceCommand::Add { name, .. } => devices::add(&db.writer, &name).await.map(|token| {
            let _ = writeln!(std::io::stdout().lock(), "{name} {token}");
        }),
        DeviceCommand::List { .. } => devices::list(&db.reader).await.map(|list| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "NAME                 CREATED               STATE");
            for d in list {
                let state = match &d.revoked_at {
                    Some(t) => format!("revoked {t}"),
                    None => "active".to_owned(),
                };
                let _ = writeln!(out, "{:<20} {:<21} {state}", d.name, d.created_at);
            }
        }),
        DeviceCommand::Revoke { name, .. } => devices::revoke(&db.writer, &name).await.map(|()| {
            let _ = writeln!(
                std::io::stdout().lock(),
                "revoked the token of device {name}"
            );
        }),
    };
    db.close().await;
    Ok(result?)
}
