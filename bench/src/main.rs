//! `bench`: Fleet's benchmarks (see docs/BENCHMARKS.md): `bench suite`
//! measures every budget of DESIGN.md §8 in one run; the other commands
//! make inputs or measure one part. Parses flags and calls into the
//! `bench` library.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use bench::gen_fleet::{DEFAULT_ITEMS, DEFAULT_SEED, DEFAULT_TENANTS, GenFleet, gen_fleet};
use bench::status_ingest::{Backend, StatusIngest, status_ingest, to_markdown};
use bench::suite::{self, Part};
use bench::validate_phases::{ValidatePhases, validate_phases};
use clap::{Parser, Subcommand};

/// Fleet's benchmark tools.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every budget of DESIGN.md §8 in one run: build the release binaries,
    /// generate the fleets (10 to 10,000 stores, a 5,000-item menu), measure
    /// each budget several times against a baseline measured in the same
    /// run, draw the scaling charts and rewrite the generated block of
    /// docs/BENCHMARKS.md. Exit 0 when every budget is met, 1 when one is
    /// not, 2 when the suite could not run. About 15 minutes; --quick under 5.
    Suite(SuiteArgs),
    /// Run a command and print its peak RSS as the kernel accounts it
    /// (getrusage of the finished child) on stderr; exits with its status.
    PeakRss {
        /// The command and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// Write a synthetic, valid fleet repo: fleet.yaml, tenant base files and
    /// N stores with realistic overrides. Deterministic for a seed.
    GenFleet {
        /// Number of stores, spread over the tenants.
        #[arg(long)]
        stores: usize,
        /// Directory to create the repo in; must be absent or empty.
        #[arg(long)]
        out: PathBuf,
        /// Number of tenants.
        #[arg(long, default_value_t = DEFAULT_TENANTS)]
        tenants: usize,
        /// Items on each tenant's menu.
        #[arg(long, default_value_t = DEFAULT_ITEMS)]
        items: usize,
        /// Seed of the generator: same seed and options, same bytes.
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
    },
    /// Time the phases of `fleet validate` (read, decode, render, rules) on
    /// a repo, in-process, and print a Markdown table of medians.
    ValidatePhases {
        /// The fleet repo.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Timed runs of each phase.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Signed reports per second into the real `fleet-status serve`
    /// (DESIGN.md §8), against the raw INSERT rate of the same database,
    /// on a fresh database per backend; prints a Markdown table and exits 1
    /// if a backend misses the budget.
    StatusIngest(StatusIngestArgs),
}

#[derive(Debug, clap::Args)]
struct SuiteArgs {
    /// Fewer runs and smaller samples: the whole suite in under 5 minutes
    /// (once built), with rougher numbers.
    #[arg(long)]
    quick: bool,
    /// The Markdown file whose generated block is rewritten [default:
    /// docs/BENCHMARKS.md; with --only, WORK/BENCHMARKS.md, so a partial
    /// run never replaces the full table].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Directory of the PNG charts, linked from --out [default: docs/bench;
    /// with --only, WORK/charts].
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Scratch directory: fleets, databases, the baseline's venv.
    #[arg(long, default_value_os_t = suite::workspace_root().join("target/bench"))]
    work: PathBuf,
    /// Maintenance connection of the PostgreSQL server (fresh databases
    /// are created beside it and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Run only these parts (the others are listed as not run).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// Use the release binaries as they are: no `cargo build` first.
    #[arg(long)]
    no_build: bool,
}

#[derive(Debug, clap::Args)]
struct StatusIngestArgs {
    /// Backends to measure.
    #[arg(long = "backend", value_enum, default_values_t = [Backend::Sqlite, Backend::Postgres])]
    backends: Vec<Backend>,
    /// Maintenance connection of the PostgreSQL server; a fresh database
    /// `bench_status_<random>` is created beside it and dropped afterwards.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Enrolled nodes (one store each) the reports are spread over.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Also measure at these node counts (the scaling row), e.g. `100,10000`.
    #[arg(long, value_delimiter = ',')]
    scaling: Vec<usize>,
    /// Reports per timed run.
    #[arg(long, default_value_t = 20_000)]
    reports: usize,
    /// Requests in flight (and connections of the baseline).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Timed runs per measurement.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Fewer, shorter runs: 5,000 reports, 3 runs.
    #[arg(long)]
    quick: bool,
    /// The `fleet-status` binary; default: beside this one (target/release).
    #[arg(long)]
    fleet_status: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Suite(a) => run_suite(a),
        Command::PeakRss { command } => {
            let code = suite::measure::peak_rss_main(&command)?;
            std::process::exit(code)
        }
        Command::StatusIngest(a) => run_status_ingest(a),
        Command::GenFleet {
            stores,
            out,
            tenants,
            items,
            seed,
        } => {
            let opts = GenFleet {
                out,
                stores,
                tenants,
                items,
                seed,
            };
            let started = Instant::now();
            // Progress every 1,000 stores, only when there are that many.
            let report = |done: usize| {
                if stores >= 2000 && done.is_multiple_of(1000) {
                    eprintln!("bench gen-fleet: {done}/{stores} stores written");
                }
            };
            let done = gen_fleet(&opts, report)
                .with_context(|| format!("generating a fleet in {}", opts.out.display()))?;
            eprintln!(
                "bench gen-fleet: {} tenant(s), {} store(s), {} files, {:.1} MB (store.yaml mean {} bytes) in {} ({:.2} s)",
                done.tenants,
                done.stores,
                done.files,
                done.bytes as f64 / 1e6,
                done.store_bytes
                    .checked_div(done.stores as u64)
                    .unwrap_or(0),
                opts.out.display(),
                started.elapsed().as_secs_f64(),
            );
            Ok(())
        }
        Command::ValidatePhases { repo, runs } => {
            let opts = ValidatePhases { repo, runs };
            let phases = validate_phases(&opts)
                .with_context(|| format!("reading {}", opts.repo.display()))?;
            print!("{}", phases.to_markdown());
            Ok(())
        }
    }
}

fn run_suite(a: SuiteArgs) -> anyhow::Result<()> {
    let (out, charts) =
        suite::default_outputs(&suite::workspace_root(), &a.work, a.only.is_empty());
    let opts = suite::Options {
        quick: a.quick,
        out: a.out.unwrap_or(out),
        charts: a.charts.unwrap_or(charts),
        work: a.work,
        postgres_url: a.postgres_url,
        parts: if a.only.is_empty() {
            Part::ALL.to_vec()
        } else {
            a.only
        },
        build: !a.no_build,
    };
    match suite::run(opts) {
        Ok(true) => Ok(()),
        Ok(false) => {
            eprintln!("bench suite: not every budget is met (see the table)");
            std::process::exit(1)
        }
        Err(e) => {
            eprintln!("bench suite: {e:#}");
            std::process::exit(2)
        }
    }
}

fn run_status_ingest(a: StatusIngestArgs) -> anyhow::Result<()> {
    let fleet_status = match a.fleet_status {
        Some(p) => p,
        None => std::env::current_exe()
            .context("finding this executable")?
            .with_file_name("fleet-status"),
    };
    let (reports, runs) = if a.quick {
        (a.reports.min(5000), a.runs.min(3))
    } else {
        (a.reports, a.runs)
    };
    let mut nodes = vec![a.nodes];
    nodes.extend(a.scaling.iter().filter(|&&n| n != a.nodes));
    let opts = StatusIngest {
        fleet_status,
        backends: a.backends,
        postgres_url: a.postgres_url,
        nodes,
        reports,
        concurrency: a.concurrency.max(1),
        runs: runs.max(1),
        warmup: (reports / 10).max(a.nodes.min(2000)),
        run_timeout: std::time::Duration::from_secs(300),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let rows = runtime
        .block_on(status_ingest(&opts, |line| {
            eprintln!("bench status-ingest: {line}")
        }))
        .context("measuring fleet-status ingestion")?;
    print!("{}", to_markdown(&rows));
    if rows.iter().all(|m| m.passes()) {
        Ok(())
    } else {
        eprintln!("bench status-ingest: a backend is below the budget");
        std::process::exit(1)
    }
}
