//! `fleet`: the operator's command line. Parses flags and calls
//! `reconciler::ops`; see `fleet --help`.

use std::io::{IsTerminal, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use reconciler::ops::{self, exit, render::RenderError, validate::Format};

/// Fleet: GitOps for point-of-sale store fleets.
///
/// Desired store state is YAML in one Git repo; these commands check it,
/// show what a store will get, and scaffold new tenants and stores.
#[derive(Debug, Parser)]
#[command(name = "fleet", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
    Github,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check every source of the fleet repo: schema and semantic rules.
    ///
    /// Every error names file, line, column and rule id. Exit 0 valid,
    /// 1 invalid, 2 usage or IO error.
    Validate {
        /// The fleet repo (a checkout).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// text for people, json for tools, github for Actions annotations.
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
    },
    /// Print a store's rendered desired state: what its release will carry.
    ///
    /// Exit 0 printed, 1 the repo does not validate, 2 usage or IO error
    /// (such as an unknown store).
    Render {
        /// `<tenant>/<store>`, e.g. acme/soho.
        store: String,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Scaffold a tenant: tenants/<tenant>/tenant.yaml with roles, an owner
    /// user and one kitchen station.
    NewTenant {
        /// The tenant id (a slug).
        tenant: String,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Display name; defaults to the id.
        #[arg(long)]
        name: Option<String>,
        /// ISO 4217 currency code.
        #[arg(long, default_value = "USD")]
        currency: String,
        /// IANA time zone.
        #[arg(long, default_value = "America/New_York")]
        timezone: String,
    },
    /// Scaffold a store: tenants/<tenant>/stores/<store>/store.yaml with a
    /// device for each kitchen station (fill in their addresses).
    NewStore {
        /// `<tenant>/<store>`, e.g. acme/midtown.
        store: String,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Display name; defaults to the id.
        #[arg(long)]
        name: Option<String>,
        /// IANA time zone, if it differs from the tenant's.
        #[arg(long)]
        timezone: Option<String>,
    },
    /// Write the JSON Schemas of fleet.yaml, tenant files, store.yaml and
    /// release.yaml into DIR.
    Schema {
        #[arg(long)]
        out: PathBuf,
    },
    /// Hash a PIN for `pin_hash` (argon2id). Reads the PIN from standard input.
    HashPin,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(run(cli) as u8)
}

fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate { repo, format } => {
            let format = match format {
                FormatArg::Text => Format::Text,
                FormatArg::Json => Format::Json,
                FormatArg::Github => Format::Github,
            };
            match ops::validate::validate_dir(&repo) {
                Ok(v) => {
                    print!("{}", v.report(format));
                    if v.is_valid() {
                        exit::OK
                    } else {
                        exit::FINDINGS
                    }
                }
                Err(e) => fail(e),
            }
        }
        Command::Render { store, repo } => match ops::render::render(&repo, &store) {
            Ok(state) => {
                print!("{}", ops::render::to_yaml(&state));
                exit::OK
            }
            Err(RenderError::Invalid(v)) => {
                eprint!("{}", v.report(Format::Text));
                eprintln!("error: fix the errors above; an invalid repo is never rendered");
                exit::FINDINGS
            }
            Err(e) => fail(e),
        },
        Command::NewTenant {
            tenant,
            repo,
            name,
            currency,
            timezone,
        } => {
            let opts = ops::scaffold::NewTenant {
                name: name.unwrap_or_else(|| tenant.clone()),
                repo,
                tenant,
                currency,
                timezone,
            };
            match ops::scaffold::new_tenant(&opts) {
                Ok(made) => {
                    for f in &made.files {
                        println!("created {}", f.display());
                    }
                    eprintln!(
                        "The owner's PIN is {} — it is shown only this once and committed only as a hash.",
                        made.owner_pin
                    );
                    exit::OK
                }
                Err(e) => fail(e),
            }
        }
        Command::NewStore {
            store,
            repo,
            name,
            timezone,
        } => {
            let opts = ops::scaffold::NewStore {
                name: name.unwrap_or_else(|| store.rsplit('/').next().unwrap_or(&store).to_owned()),
                repo,
                store,
                timezone,
            };
            match ops::scaffold::new_store(&opts) {
                Ok(path) => {
                    println!("created {}", path.display());
                    eprintln!(
                        "Set the device addresses marked PLACEHOLDER, then run `fleet validate`."
                    );
                    exit::OK
                }
                Err(e) => fail(e),
            }
        }
        Command::Schema { out } => match ops::schema::write_schemas(&out) {
            Ok(paths) => {
                for p in paths {
                    println!("wrote {}", p.display());
                }
                exit::OK
            }
            Err(e) => fail(e),
        },
        Command::HashPin => {
            let mut pin = String::new();
            if std::io::stdin().is_terminal() {
                eprintln!("PIN (4-12 digits), then Enter:");
            }
            if let Err(e) = std::io::stdin().read_to_string(&mut pin) {
                return fail(e);
            }
            match ops::hash_pin::hash_pin(pin.trim()) {
                Ok(h) => {
                    println!("{h}");
                    exit::OK
                }
                Err(e) => fail(e),
            }
        }
    }
}

fn fail(e: impl std::fmt::Display) -> i32 {
    eprintln!("error: {e}");
    exit::USAGE
}
