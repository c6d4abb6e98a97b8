//! `fleet`: the operator's command line. Parses flags and calls
//! `cli::ops`; see `fleet --help`.

use std::io::{IsTerminal, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cli::ops::{self, exit, render::RenderError, validate::Format};

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

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PlanFormatArg {
    Text,
    Markdown,
    Json,
}

/// `fleet secret …`
#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Write each store's age recipient, as its node reported it at
    /// enrollment, into its store.yaml (`store.recipient`).
    ///
    /// Reads GET /api/v1/stores/{tenant}/{store} of the status service with
    /// an operator token. Stores the service does not know, or whose node
    /// sent no recipient, are listed and left alone. Without a status
    /// service, --store T/S --recipient age1… writes one store's recipient
    /// as `fleet-reconciler status` printed it on the Pi. Exit 0 done, 2
    /// usage or IO error (nothing half-written: each file is written whole).
    Recipients {
        /// The status service, e.g. https://status.example.com.
        #[arg(long, required_unless_present = "recipient")]
        status_url: Option<String>,
        /// A file holding an operator token (viewer is enough).
        #[arg(long, required_unless_present = "recipient")]
        token_file: Option<PathBuf>,
        /// With --recipient: the store `<tenant>/<store>`.
        #[arg(long, requires = "recipient")]
        store: Option<String>,
        /// The store's recipient (`age1…`), as `fleet-reconciler status` shows it.
        #[arg(long, requires = "store", conflicts_with_all = ["status_url", "token_file"])]
        recipient: Option<String>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Make an escrow identity (an age X25519 key) at OUT and print its
    /// recipient for fleet.yaml's `secrets.escrow`.
    ///
    /// The identity can read every secret value of the fleet: keep it
    /// offline (a password manager, a hardware-backed vault); `fleet secret
    /// rewrap` and `encrypt-all` take it with --identity. OUT is never
    /// overwritten.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Encrypt one secret value into FILE at YAML.PATH.
    ///
    /// FILE is a tenant file or a store.yaml, relative to --repo. YAML.PATH
    /// is dotted, a list element named by its id:
    /// `access.users.sam-rivera.pin_hash`, `settings.payment.terminal_key`,
    /// `overrides.settings.payment.terminal_key`. The value is read from the
    /// terminal without echo, or from standard input; with --pin it is a PIN
    /// (4-12 digits), hashed with argon2id before it is encrypted. It is
    /// encrypted for the stores that use it (every store: the tenant key) and
    /// escrow, and written on one line; nothing else in FILE changes.
    /// Exit 0 written, 2 refused (nothing written).
    Set {
        file: String,
        #[arg(value_name = "YAML.PATH")]
        path: String,
        /// The value is a PIN: hash it with argon2id first.
        #[arg(long)]
        pin: bool,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Re-encrypt every value whose stores or recipients changed.
    ///
    /// Compares each value's `to` and secrets.lock with store.yaml's
    /// recipients and fleet.yaml's escrow, and re-encrypts what is stale with
    /// the escrow identity; writes the tenant-key wrap of each store that has
    /// a new recipient. A stolen or replaced Pi: --rotate-tenant-key
    /// --exclude-store T/S makes a new tenant key, re-encrypts every value
    /// for every store without that store, and removes its recipient.
    Rewrap {
        /// An escrow identity file (from `fleet secret keygen`).
        #[arg(long)]
        identity: PathBuf,
        /// Make a new tenant key (every tenant with one).
        #[arg(long)]
        rotate_tenant_key: bool,
        /// `<tenant>/<store>` to leave out of the new tenant key; repeatable.
        #[arg(long = "exclude-store", value_name = "T/S")]
        exclude_store: Vec<String>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Encrypt every plaintext secret value of the repo in place (the
    /// migration of an existing repo), then rewrap.
    ///
    /// --identity (an escrow identity) is needed when the repo already has
    /// a tenant key or encrypted values to re-encrypt.
    EncryptAll {
        #[arg(long)]
        identity: Option<PathBuf>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
}

/// `fleet rollout …` (DESIGN.md §12)
#[derive(Debug, Subcommand)]
enum RolloutCommand {
    /// For each rollout in progress, ask the status service where the
    /// current wave's stores are and decide: sign the next wave once every
    /// reporting store is at its revision and the bake time has passed;
    /// abort (and roll back, if the tenant's policy says so) when failed and
    /// refused stores reach the threshold; otherwise wait. Offline stores
    /// are counted apart and never block a wave. The release job runs it on
    /// a schedule and commits rollouts/ with the releases.
    ///
    /// Exit 0 decided (whatever the decision), 2 usage, IO or status error.
    Advance {
        /// The minisign secret key (from `fleet keygen`).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        status_url: String,
        /// An operator token that sees the rollouts' tenants (read-only is enough).
        #[arg(long)]
        token_file: PathBuf,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Show every rollout, or one: its state, waves and their stores, the
    /// gate's last decision and the history.
    Status {
        /// A rollout id (or a unique start of one).
        id: Option<String>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Stop advancing a rollout (its signed waves stay signed).
    Pause(Rollouts),
    /// Let a paused rollout advance again.
    Resume(Rollouts),
    /// Stop a rollout for good: later waves never move. With --key, the
    /// stores already moved get their previous state again (an urgent new
    /// revision).
    Abort {
        id: String,
        /// Roll back the moved stores, signing with this key.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Why, for the rollout file and the dashboard.
        #[arg(long, default_value = "aborted by an operator")]
        reason: String,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
}

/// `fleet conformance …`
#[derive(Debug, Subcommand)]
enum ConformanceCommand {
    /// Check a POS backend against the edge contract (DESIGN.md §14):
    /// every behaviour fleet-reconciler relies on, one line per check.
    ///
    /// Runs against an EMPTY backend (a fresh database): it creates,
    /// changes and deletes entities of every kind through the reconciler's
    /// own client, tries writes the backend must refuse, reads the audit
    /// log, and leaves the backend empty again. A backend that holds
    /// configuration is refused before anything is written. See
    /// docs/edge-contract.md. Exit 0 when every check passes, 1 when one
    /// fails, 2 usage or IO error (such as an unreadable token file).
    Edge {
        /// The backend's base URL, e.g. http://127.0.0.1:7070.
        #[arg(long)]
        url: String,
        /// A file holding the backend's bearer token (surrounding
        /// whitespace is trimmed).
        #[arg(long)]
        token_file: PathBuf,
        /// How long one request may take.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// With an https:// URL: PEM certificates to trust besides the
        /// system's (the backend's own certificate or its CA).
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
}

/// `fleet root …`
#[derive(Debug, Subcommand)]
enum RootCommand {
    /// Write trust/root/1.yaml (unsigned); then each root key signs it with
    /// `fleet root sign`.
    Init {
        /// A root key: a *.pub file or the key's base64 text. Repeat.
        #[arg(long = "root-key", required = true)]
        root_keys: Vec<String>,
        /// How many distinct root keys must sign each next version.
        #[arg(long)]
        threshold: u32,
        /// A key that signs store releases (fleet sign's). Repeat.
        #[arg(long = "release-key", required = true)]
        release_keys: Vec<String>,
        /// How long version 1 is valid, e.g. 365d.
        #[arg(long, default_value = "365d", value_parser = humantime::parse_duration)]
        expires_in: std::time::Duration,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Write the next version (unsigned) from the newest one and the
    /// changes given; it is trusted once a threshold of the current root
    /// keys and of its own have signed it.
    Propose {
        #[arg(long = "add-release-key")]
        add_release_keys: Vec<String>,
        #[arg(long = "remove-release-key")]
        remove_release_keys: Vec<String>,
        #[arg(long = "add-root-key")]
        add_root_keys: Vec<String>,
        #[arg(long = "remove-root-key")]
        remove_root_keys: Vec<String>,
        /// The new threshold of root signatures.
        #[arg(long)]
        threshold: Option<u32>,
        /// How long the new version is valid [default: 365d].
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Add one signature to a version (default: the newest), as
    /// trust/root/<n>.yaml.<KEYID>.minisig. The key's password is read
    /// from $FLEET_SIGNING_PASSWORD, as for `fleet sign`.
    #[command(disable_version_flag = true)]
    Sign {
        /// A root key's minisign secret key.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        version: Option<u64>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Walk the chain and say which keys sign releases now and what the
    /// newest version still needs. Exit 0 every version verifies, 1 the
    /// chain stops short (a proposal lacking signatures, a bad version),
    /// 2 usage or IO error.
    Verify {
        /// Start from this pinned root (a store's root.yaml) instead of
        /// the repo's version 1.
        #[arg(long)]
        pin: Option<PathBuf>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
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
    /// Show which stores change between two revisions and how: per store,
    /// domain, entity and field, after each store's own overrides.
    ///
    /// Reads both revisions straight from Git (no checkout); without --head
    /// the working tree is the head, so an author can preview before
    /// committing. Exit 0 no change, 1 changes, 2 error (e.g. the head does
    /// not validate: its errors are printed instead).
    Plan {
        /// The revision the change starts from, e.g. origin/main.
        #[arg(long)]
        base: String,
        /// The revision with the change [default: the working tree].
        #[arg(long)]
        head: Option<String>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// text for a terminal, markdown for a pull request comment, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormatArg,
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
    /// Make a minisign key pair for signing releases: DIR/minisign.pub and
    /// DIR/minisign.key.
    ///
    /// The secret key is encrypted with $FLEET_SIGNING_PASSWORD when it is
    /// set (and `fleet sign` then reads the same variable); otherwise it is
    /// written unencrypted, with a warning. Put minisign.pub in every store's
    /// trust directory; keep minisign.key in the release job's secrets only.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Write signed releases for stores whose desired state changed or whose
    /// release expires soon.
    ///
    /// Renders every store of a valid repo; a store gets a new release.yaml
    /// (revision + 1, expiry, the HEAD commit) and release.yaml.minisig only
    /// when its rendered state differs from its current release, or that
    /// release expires within --refresh-within. Run it in the release job on
    /// the main branch and commit the result.
    Sign {
        /// The minisign secret key (from `fleet keygen`).
        #[arg(long)]
        key: PathBuf,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// How long a new release is valid, e.g. 90d [default: fleet.yaml's release.expires_in_days].
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
        /// Re-sign releases expiring within this, e.g. 30d [default: fleet.yaml's release.refresh_within_days].
        #[arg(long, value_parser = humantime::parse_duration)]
        refresh_within: Option<std::time::Duration>,
        /// Re-sign every store, changed or not: after adding a new key and
        /// before removing the old one from stores' trust directories.
        #[arg(long)]
        all: bool,
        /// Apply at once: stores ignore their deny windows, the change skips
        /// rollout waves, and a pending effective time is dropped (a wrong
        /// price must go everywhere now).
        #[arg(long)]
        urgent: bool,
        /// Store-local time the changed stores apply their new release at,
        /// such as 2026-12-07T06:00, in each store's own time zone; they
        /// verify and keep it before then, WAN or not.
        #[arg(long, value_parser = parse_local_time, conflicts_with = "urgent")]
        effective_at: Option<chrono::NaiveDateTime>,
        /// After signing, ask this status service which stores' last report
        /// came from a reconciler that does not read the apiVersion just
        /// signed for them (fleet/v2), and warn for each.
        #[arg(long, requires = "token_file")]
        status_url: Option<String>,
        /// The operator token for --status-url.
        #[arg(long, requires = "status_url")]
        token_file: Option<PathBuf>,
    },
    /// Check that every store has a release that verifies, is unexpired and
    /// matches what its sources render to.
    ///
    /// Lists each failing store and why. Exit 0 all good, 1 some store fails,
    /// 2 usage or IO error.
    Verify {
        /// A minisign public key file, or a directory of *.pub files.
        #[arg(long, required_unless_present = "root", conflicts_with = "root")]
        pubkey: Option<PathBuf>,
        /// A pinned trust root (a store's root.yaml): walk the repo's
        /// trust/root/ chain from it and verify releases against the keys
        /// of the newest version.
        #[arg(long)]
        root: Option<PathBuf>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Secret values in the repo (DESIGN.md §11).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Rollouts in waves (DESIGN.md §12): advance, status, pause, resume,
    /// abort. `fleet sign` starts them for tenants with `rollout:`.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// The fleet's trust root in trust/root/: which keys sign releases, and
    /// which root keys (a threshold of them) sign its next version.
    ///
    /// Stores pin one version (root.yaml in their trust directory) and
    /// follow every later version that verifies. See
    /// docs/operations/signing.md for rotation and compromise runbooks.
    #[command(subcommand)]
    Root(RootCommand),
    /// Conformance kits: `fleet conformance edge` checks that a POS
    /// backend can be driven by fleet-reconciler.
    #[command(subcommand)]
    Conformance(ConformanceCommand),
    /// Run the whole system on this machine and watch a change converge.
    ///
    /// In DIR: a fleet repo made from fleet-repo-template/ (Git, signed
    /// with a new key), a bare repo as its Git host, fleet-status with its
    /// dashboard, and two stores (acme/soho, acme/brooklyn), each a
    /// fleet-edge and an enrolled fleet-reconciler daemon. Then it commits,
    /// signs and pushes a price change and shows both stores applying it,
    /// prints the dashboard URL and an operator token, and keeps running
    /// until Ctrl-C, when it stops everything it started.
    ///
    /// Needs `git`. fleet-edge, fleet-status and fleet-reconciler are taken
    /// from beside this `fleet` (built there on the first run when this is
    /// a Fleet source tree). Running it again on the same DIR replaces it;
    /// a non-empty DIR that a quickstart did not make is refused. Logs are
    /// in DIR/logs. Exit 0 after Ctrl-C (or the demo with
    /// --exit-after-demo), 1 when something failed, 2 for a DIR it refuses.
    Quickstart {
        /// The working directory.
        #[arg(long, default_value = "fleet-quickstart")]
        dir: PathBuf,
        /// Stop everything and exit 0 once the demo change converged.
        #[arg(long)]
        exit_after_demo: bool,
    },
    /// Internal: started by `fleet quickstart`; stops the quickstart's
    /// processes if the quickstart dies without stopping them.
    #[command(hide = true)]
    QuickstartGuard {
        /// The quickstart's directory (only to tell the process apart in `ps`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
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
                    // A secret is the last word of the last line (DESIGN.md §10).
                    eprintln!(
                        "The owner's PIN is shown only this once and committed only as a hash. Owner's PIN: {}",
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
        Command::Keygen { out } => keygen(&out),
        Command::Plan {
            base,
            head,
            repo,
            format,
        } => plan(ops::plan::PlanOptions { repo, base, head }, format),
        Command::Sign {
            key,
            repo,
            expires_in,
            refresh_within,
            all,
            urgent,
            effective_at,
            status_url,
            token_file,
        } => sign(
            &key,
            repo,
            expires_in,
            refresh_within,
            all,
            ops::sign::Timing {
                urgent,
                effective_at,
            },
            status_url.zip(token_file),
        ),
        Command::Verify { pubkey, root, repo } => verify(pubkey.as_deref(), root.as_deref(), &repo),
        Command::Root(cmd) => root(cmd),
        Command::Conformance(ConformanceCommand::Edge {
            url,
            token_file,
            timeout,
            ca_file,
        }) => conformance_edge(&url, &token_file, timeout, ca_file.as_deref()),
        Command::Secret(SecretCommand::Recipients {
            status_url: Some(status_url),
            token_file: Some(token_file),
            store: None,
            recipient: None,
            repo,
        }) => secret_recipients(&status_url, &token_file, &repo),
        Command::Secret(cmd) => secret(cmd),
        Command::Rollout(cmd) => rollout(cmd),
        Command::Quickstart {
            dir,
            exit_after_demo,
        } => quickstart(dir, exit_after_demo),
        Command::QuickstartGuard { dir: _ } => {
            ops::quickstart::guard(std::io::stdin().lock());
            exit::OK
        }
    }
}

fn conformance_edge(
    url: &str,
    token_file: &std::path::Path,
    timeout: std::time::Duration,
    ca_file: Option<&std::path::Path>,
) -> i32 {
    use reconciler::conformance::{self, Verdict};
    let client = match reconciler::edge_client::EdgeClient::from_token_file(
        url, token_file, timeout, ca_file,
    ) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    println!(
        "edge conformance of {url} (contract {})",
        wire::edge::CONTRACT
    );
    let run = conformance::run(client, |o| {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{o}");
        let _ = out.flush();
    });
    let outcomes = runtime.block_on(run);
    let passed = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Pass(_)))
        .count();
    println!("{passed} of {} checks passed", outcomes.len());
    if passed == outcomes.len() {
        exit::OK
    } else {
        exit::FINDINGS
    }
}

fn quickstart(dir: PathBuf, exit_after_demo: bool) -> i32 {
    use ops::quickstart::{QuickstartError, QuickstartOptions, run};
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot tell where this fleet binary is: {e}")),
    };
    let opts = QuickstartOptions {
        dir,
        exit_after_demo,
        exe,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(run(&opts, &mut |event| {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{event}");
        let _ = out.flush();
    }));
    match result {
        Ok(()) => exit::OK,
        Err(e @ QuickstartError::Interrupted { .. }) => {
            eprintln!("error: {e}");
            130
        }
        Err(e) if e.is_usage() => fail(e),
        Err(e) => {
            eprintln!("error: {e}");
            exit::FINDINGS
        }
    }
}

fn signing_password() -> Option<String> {
    std::env::var(ops::keygen::PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty())
}

fn keygen(out: &std::path::Path) -> i32 {
    let password = signing_password();
    if password.is_none() {
        eprintln!(
            "warning: {} is not set, so the secret key is written UNENCRYPTED; keep it in a secret store only",
            ops::keygen::PASSWORD_ENV
        );
    }
    match ops::keygen::keygen(out, password) {
        Ok(g) => {
            println!(
                "public key: {} (key id {})",
                g.public_key.display(),
                g.key_id
            );
            println!(
                "secret key: {} ({})",
                g.secret_key.display(),
                if g.encrypted {
                    "encrypted"
                } else {
                    "unencrypted"
                }
            );
            println!(
                "Copy the public key into every store's trust directory; never commit the secret key."
            );
            exit::OK
        }
        Err(e) => fail(format!("{e:#}")),
    }
}

fn sign(
    key: &std::path::Path,
    repo: PathBuf,
    expires_in: Option<std::time::Duration>,
    refresh_within: Option<std::time::Duration>,
    all: bool,
    timing: ops::sign::Timing,
    status: Option<(String, PathBuf)>,
) -> i32 {
    // A token file that cannot be read is a usage error before anything is
    // signed; an unreachable status service later is only a warning.
    let status = match status
        .map(|(url, file)| ops::status_api::read_token_file(&file).map(|t| (url, t)))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return fail(format!("{e:#}")),
    };
    let key = match ops::keygen::load_secret_key(key, signing_password()) {
        Ok(k) => k,
        Err(e) => return fail(format!("{e:#}")),
    };
    let opts = ops::sign::SignOptions {
        repo,
        key,
        expires_in,
        refresh_within,
        all,
        urgent: timing.urgent,
        effective_at: timing.effective_at,
        now: chrono::Utc::now(),
    };
    let result = ops::sign::sign(&opts, |s| {
        eprintln!("signed {} revision {} ({})", s.store, s.revision, s.reason);
    });
    match result {
        Ok(report) => {
            for line in &report.rollouts {
                println!("rollout: {line}");
            }
            println!(
                "{} release(s) signed, {} store(s) unchanged{}, from commit {}",
                report.signed.len(),
                report.unchanged,
                if report.held > 0 {
                    format!(", {} held for later rollout waves", report.held)
                } else {
                    String::new()
                },
                report.source_commit
            );
            if let Some((url, token)) = status {
                let older = ops::status_api::StatusApi::new(&url, &token)
                    .and_then(|api| ops::sign::older_reconcilers(&api, &report.signed));
                match older {
                    Ok(older) => {
                        for o in &older {
                            eprintln!("warning: {o}");
                        }
                    }
                    Err(e) => eprintln!(
                        "warning: could not check the stores' reconcilers at {url}: {e:#}"
                    ),
                }
            }
            exit::OK
        }
        Err(e) => fail(format!("{e:#}")),
    }
}

/// Which rollouts `pause` and `resume` act on.
#[derive(Debug, Args)]
struct Rollouts {
    /// A rollout id; or --all for every active rollout.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<String>,
    #[arg(long)]
    all: bool,
    #[arg(long, default_value = ".")]
    repo: PathBuf,
}

/// `fleet rollout pause|resume`.
fn pause(which: &Rollouts, pause: bool, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    for l in ops::rollout::set_paused(&which.repo, which.id.as_deref(), pause, now)? {
        println!("{l}");
    }
    Ok(())
}

fn rollout(cmd: RolloutCommand) -> i32 {
    use ops::rollout;
    let now = chrono::Utc::now();
    let sign_opts = |key: &std::path::Path, repo: PathBuf| {
        ops::keygen::load_secret_key(key, signing_password())
            .map(|key| ops::sign::SignOptions::new(repo, key, now))
    };
    let result: anyhow::Result<()> = (|| match cmd {
        RolloutCommand::Advance {
            key,
            status_url,
            token_file,
            repo,
        } => {
            let token = ops::status_api::read_token_file(&token_file)?;
            let api = ops::status_api::StatusApi::new(&status_url, &token)?;
            let opts = sign_opts(&key, repo)?;
            let ctx = ops::sign::SignContext::new(&opts)?;
            let done = rollout::advance(&ctx, |tenant| rollout::store_statuses(&api, tenant))?;
            if done.is_empty() {
                println!("no rollout in progress");
            }
            for a in &done {
                for s in &a.signed {
                    eprintln!("signed {} revision {} ({})", s.store, s.revision, s.reason);
                }
                println!("{} {}: {}", a.tenant, a.id, a.line);
            }
            Ok(())
        }
        RolloutCommand::Status { id, repo } => {
            let all = match id {
                Some(id) => vec![rollout::find(&repo, &id)?],
                None => rollout::load_all(&repo)?,
            };
            if all.is_empty() {
                println!("no rollouts in {}", repo.join("rollouts").display());
            }
            for (_, r) in &all {
                println!(
                    "{} {} {} (started {}, commit {})",
                    r.tenant,
                    r.id,
                    r.state.as_str(),
                    r.started_at.format("%Y-%m-%d %H:%M UTC"),
                    &r.source_commit.get(..10).unwrap_or(&r.source_commit)
                );
                for (i, w) in r.waves.iter().enumerate() {
                    let mark = if i == r.current_wave && r.state.is_active() {
                        "→"
                    } else {
                        " "
                    };
                    let signed = match w.signed_at {
                        Some(t) => format!("signed {}", t.format("%Y-%m-%d %H:%M")),
                        None => "not signed".to_owned(),
                    };
                    println!(
                        "  {mark} {} · {} store(s) · {signed}{}",
                        w.name,
                        w.stores.len(),
                        w.complete_at
                            .map(|t| format!(" · complete since {}", t.format("%Y-%m-%d %H:%M")))
                            .unwrap_or_default()
                    );
                }
                if let Some(why) = &r.abort_reason {
                    println!("  aborted because: {why}");
                }
                if let Some(by) = &r.superseded_by {
                    println!("  superseded by {by}");
                }
                if let Some(d) = r.history.last() {
                    println!(
                        "  last decision {}: {}",
                        d.at.format("%Y-%m-%d %H:%M UTC"),
                        d.what
                    );
                }
            }
            Ok(())
        }
        RolloutCommand::Pause(which) => pause(&which, true, now),
        RolloutCommand::Resume(which) => pause(&which, false, now),
        RolloutCommand::Abort {
            id,
            key,
            reason,
            repo,
        } => {
            let (path, mut file) = rollout::find(&repo, &id)?;
            if !file.state.is_active() {
                anyhow::bail!(
                    "rollout {} is {}: nothing to abort",
                    file.id,
                    file.state.as_str()
                );
            }
            let mut signed = Vec::new();
            let line = match key {
                Some(key) => {
                    let opts = sign_opts(&key, repo.clone())?;
                    let ctx = ops::sign::SignContext::new(&opts)?;
                    let tenant =
                        ctx.repo.tenants.get(&file.tenant).ok_or_else(|| {
                            anyhow::anyhow!("the repo has no tenant {}", file.tenant)
                        })?;
                    rollout::abort_rollout(&ctx, tenant, &mut file, reason, true, &mut signed)?
                }
                None => {
                    file.state = schemas::rollout::RolloutState::Aborted;
                    file.abort_reason = Some(reason.clone());
                    file.history.push(schemas::rollout::Decision {
                        at: now,
                        what: format!("aborted: {reason}"),
                    });
                    format!(
                        "aborted: {reason}; later waves never move (give --key to roll back the moved stores)"
                    )
                }
            };
            rollout::write(&path, &file)?;
            for s in &signed {
                eprintln!("signed {} revision {} ({})", s.store, s.revision, s.reason);
            }
            println!("{} {}: {line}", file.tenant, file.id);
            Ok(())
        }
    })();
    match result {
        Ok(()) => exit::OK,
        Err(e) => fail(format!("{e:#}")),
    }
}

/// `--effective-at`: a store-local date and time, `YYYY-MM-DDTHH:MM[:SS]`.
fn parse_local_time(text: &str) -> Result<chrono::NaiveDateTime, String> {
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| {
            format!(
                "{text:?} is not a store-local date and time such as 2026-12-07T06:00 (no zone: each store's own applies)"
            )
        })
}

fn verify(
    pubkey: Option<&std::path::Path>,
    root: Option<&std::path::Path>,
    repo: &std::path::Path,
) -> i32 {
    let keys = match (pubkey, root) {
        (Some(p), _) => ops::verify::load_keys(p),
        (None, Some(pin)) => ops::verify::keys_from_root(repo, pin, chrono::Utc::now()),
        (None, None) => Err(anyhow::anyhow!("give --pubkey or --root")),
    };
    let keys = match keys {
        Ok(k) => k,
        Err(e) => return fail(format!("{e:#}")),
    };
    match ops::verify::verify(repo, &keys, chrono::Utc::now(), chrono::Duration::days(30)) {
        Ok(report) => {
            for d in &report.validation_errors {
                println!("{d}");
            }
            for v in &report.verdicts {
                match (&v.problem, &v.note) {
                    (Some(p), _) => println!("FAIL {}: {p}", v.store),
                    (None, Some(n)) => println!(
                        "ok   {} revision {} ({n})",
                        v.store,
                        v.revision.unwrap_or(0)
                    ),
                    (None, None) => {
                        println!("ok   {} revision {}", v.store, v.revision.unwrap_or(0))
                    }
                }
            }
            let failed = report.failures().count();
            println!(
                "{} store(s) verified, {failed} failed, {} validation error(s)",
                report.verdicts.len() - failed,
                report.validation_errors.len()
            );
            if report.ok() {
                exit::OK
            } else {
                exit::FINDINGS
            }
        }
        Err(e) => fail(format!("{e:#}")),
    }
}

fn plan(opts: ops::plan::PlanOptions, format: PlanFormatArg) -> i32 {
    use ops::plan::{PlanError, format as f};
    match ops::plan::plan(&opts) {
        Ok(plan) => {
            let text = match format {
                PlanFormatArg::Text => f::text(&plan),
                PlanFormatArg::Markdown => f::markdown(&plan),
                PlanFormatArg::Json => f::json(&plan),
            };
            print!("{text}");
            if plan.base_findings > 0 {
                eprintln!(
                    "warning: the base revision has {} validation error(s); it was rendered as far as possible",
                    plan.base_findings
                );
            }
            if plan.has_changes() {
                exit::FINDINGS
            } else {
                exit::OK
            }
        }
        Err(PlanError::HeadInvalid(diags)) => {
            for d in &diags {
                println!("{d}");
            }
            eprintln!("error: the head does not validate; fix the errors above to see the plan");
            exit::USAGE
        }
        Err(e) => fail(e),
    }
}

fn secret_recipients(
    status_url: &str,
    token_file: &std::path::Path,
    repo: &std::path::Path,
) -> i32 {
    use ops::secret::RecipientOutcome as O;
    let token = match ops::status_api::read_token_file(token_file) {
        Ok(t) => t,
        Err(e) => return fail(format!("{e:#}")),
    };
    match ops::secret::recipients(repo, status_url, &token) {
        Ok(lines) => {
            let mut written = 0;
            for l in &lines {
                match &l.outcome {
                    O::Written(r) => {
                        written += 1;
                        println!("{}: recipient {r} written to {}", l.store, l.file.display())
                    }
                    O::Unchanged => println!("{}: unchanged", l.store),
                    O::NoneReported => println!(
                        "{}: no recipient reported (not enrolled yet, or an older reconciler): left alone",
                        l.store
                    ),
                    O::Unknown => println!(
                        "{}: not known to the status service (or not visible to this token): left alone",
                        l.store
                    ),
                }
            }
            println!(
                "{written} store.yaml file(s) changed; review and commit them (fleet validate checks them)"
            );
            exit::OK
        }
        Err(e) => fail(format!("{e:#}")),
    }
}

fn secret(cmd: SecretCommand) -> i32 {
    use ops::secret::values;
    match cmd {
        SecretCommand::Recipients {
            store: Some(store),
            recipient: Some(recipient),
            repo,
            ..
        } => match ops::secret::set_recipient(&repo, &store, &recipient) {
            Ok(Some(file)) => {
                println!(
                    "{store}: recipient {recipient} written to {}",
                    file.display()
                );
                exit::OK
            }
            Ok(None) => {
                println!("{store}: unchanged");
                exit::OK
            }
            Err(e) => fail(format!("{e:#}")),
        },
        SecretCommand::Recipients { .. } => {
            fail("give --status-url and --token-file, or --store and --recipient")
        }
        SecretCommand::Keygen { out } => match ops::secret::keygen(&out) {
            Ok(r) => {
                println!("wrote {} (mode 0600): keep it offline", out.display());
                println!("Add its recipient to fleet.yaml: secrets: {{escrow: [\"{r}\"]}}");
                println!("recipient: {r}");
                exit::OK
            }
            Err(e) => fail(format!("{e:#}")),
        },
        SecretCommand::Set {
            file,
            path,
            pin,
            repo,
        } => {
            let value = match read_secret_value(pin) {
                Ok(v) => v,
                Err(e) => return fail(format!("{e:#}")),
            };
            match values::set(&repo, &file, &path, &value) {
                Ok(o) => {
                    if o.made_tenant_key {
                        println!(
                            "made the tenant key (first value for every store): its wraps are written beside the stores"
                        );
                    }
                    println!("encrypted {} in {} for {}", o.path, o.file, o.to.join(", "));
                    for s in &o.not_yet_readable_by {
                        println!(
                            "warning: store {s} has no recipient in secrets.lock yet: it holds this entity back until `fleet secret recipients` and `fleet secret rewrap` run"
                        );
                    }
                    println!(
                        "{} file(s) written; review and commit them",
                        o.written.len()
                    );
                    exit::OK
                }
                Err(e) => fail(format!("{e:#}")),
            }
        }
        SecretCommand::Rewrap {
            identity,
            rotate_tenant_key,
            exclude_store,
            repo,
        } => rewrap(
            &repo,
            &values::RewrapOptions {
                identity: Some(identity),
                rotate_tenant_key,
                exclude: exclude_store,
                encrypt_plaintext: false,
            },
        ),
        SecretCommand::EncryptAll { identity, repo } => rewrap(
            &repo,
            &values::RewrapOptions {
                identity,
                encrypt_plaintext: true,
                ..Default::default()
            },
        ),
    }
}

fn rewrap(repo: &std::path::Path, opts: &ops::secret::values::RewrapOptions) -> i32 {
    match ops::secret::values::rewrap(repo, opts) {
        Ok((tenants, written)) => {
            for t in &tenants {
                println!(
                    "{}: {} encrypted, {} re-encrypted, {} tenant-key wrap(s) written, {} removed{}",
                    t.tenant,
                    t.encrypted,
                    t.reencrypted,
                    t.wraps_written,
                    t.wraps_removed,
                    if t.tenant_key_made {
                        ", new tenant key"
                    } else {
                        ""
                    }
                );
                for s in &t.without_recipient {
                    println!(
                        "warning: {}/{s} has no recipient: it holds back the entities whose values it cannot read until `fleet secret recipients` and a rewrap",
                        t.tenant
                    );
                }
            }
            println!("{} file(s) written; review and commit them", written.len());
            exit::OK
        }
        Err(e) => fail(format!("{e:#}")),
    }
}

/// A secret value from the terminal (no echo, asked twice) or standard
/// input (one line); a PIN is hashed.
fn read_secret_value(pin: bool) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let what = if pin { "PIN (4-12 digits)" } else { "value" };
    let value = if std::io::stdin().is_terminal() {
        let a =
            rpassword::prompt_password(format!("{what}: ")).context("reading from the terminal")?;
        let b = rpassword::prompt_password(format!("{what} again: "))
            .context("reading from the terminal")?;
        if a != b {
            anyhow::bail!("the two entries differ; nothing written");
        }
        a
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        s.trim_end_matches(['\n', '\r']).to_owned()
    };
    if value.is_empty() {
        anyhow::bail!("the {what} is empty; nothing written");
    }
    if pin {
        return Ok(ops::hash_pin::hash_pin(value.trim())?);
    }
    Ok(value)
}

fn root(cmd: RootCommand) -> i32 {
    use ops::root as r;
    let now = chrono::Utc::now();
    let days = |d: std::time::Duration| chrono::Duration::seconds(d.as_secs() as i64);
    match cmd {
        RootCommand::Init {
            root_keys,
            threshold,
            release_keys,
            expires_in,
            repo,
        } => {
            let opts = r::InitOptions {
                repo,
                root_keys,
                threshold,
                release_keys,
                expires_in: days(expires_in),
                now,
            };
            match r::init(&opts) {
                Ok((path, root)) => {
                    println!("wrote {} (unsigned)", path.display());
                    for l in r::describe(&root) {
                        println!("{l}");
                    }
                    println!(
                        "Next: each root key signs it (fleet root sign --key ROOT.key); {} signature(s) needed. Commit trust/root/ with the signatures.",
                        root.doc.root.threshold
                    );
                    exit::OK
                }
                Err(e) => fail(format!("{e:#}")),
            }
        }
        RootCommand::Propose {
            add_release_keys,
            remove_release_keys,
            add_root_keys,
            remove_root_keys,
            threshold,
            expires_in,
            repo,
        } => {
            let changes = r::ProposeOptions {
                add_release_keys,
                remove_release_keys,
                add_root_keys,
                remove_root_keys,
                threshold,
                expires_in: expires_in.map(days),
            };
            match r::propose(&repo, &changes, now) {
                Ok(p) => {
                    for w in &p.warnings {
                        eprintln!("warning: {w}");
                    }
                    println!("wrote {} (unsigned)", p.path.display());
                    for l in r::describe(&p.root) {
                        println!("{l}");
                    }
                    println!(
                        "Next: collect signatures on a branch (fleet root sign --key ROOT.key) from {} of version {}'s root keys and {} of its own; `fleet root verify` says what is missing.",
                        p.previous_threshold,
                        p.root.version() - 1,
                        p.root.doc.root.threshold
                    );
                    exit::OK
                }
                Err(e) => fail(format!("{e:#}")),
            }
        }
        RootCommand::Sign { key, version, repo } => {
            let key = match ops::keygen::load_secret_key(&key, signing_password()) {
                Ok(k) => k,
                Err(e) => return fail(format!("{e:#}")),
            };
            match r::sign(&repo, &key, version) {
                Ok((path, key_id)) => {
                    println!("wrote {} (key {key_id})", path.display());
                    match r::verify(&repo, None, now) {
                        Ok(v) => {
                            if let Some(last) = v.lines.last() {
                                println!("{}", last.text);
                            }
                        }
                        Err(e) => eprintln!("warning: cannot verify the chain: {e:#}"),
                    }
                    exit::OK
                }
                Err(e) => fail(format!("{e:#}")),
            }
        }
        RootCommand::Verify { pin, repo } => match r::verify(&repo, pin.as_deref(), now) {
            Ok(v) => {
                for l in &v.lines {
                    println!("{} {}", if l.ok { "ok  " } else { "FAIL" }, l.text);
                }
                for w in &v.warnings {
                    println!("warning: {w}");
                }
                if let Some(t) = &v.trusted {
                    for l in r::describe(t) {
                        println!("{l}");
                    }
                }
                match &v.problem {
                    None => exit::OK,
                    Some(p) => {
                        println!("not verified: {p}");
                        exit::FINDINGS
                    }
                }
            }
            Err(e) => fail(format!("{e:#}")),
        },
    }
}

fn fail(e: impl std::fmt::Display) -> i32 {
    eprintln!("error: {e}");
    exit::USAGE
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// clap's own consistency checks (duplicate flags and the like) on
    /// every subcommand, which otherwise fire only when one is run.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
