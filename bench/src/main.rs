//! `bench`: makes the inputs of Fleet's benchmarks (see docs/BENCHMARKS.md).
//! Parses flags and calls into the `bench` library.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use bench::gen_fleet::{DEFAULT_ITEMS, DEFAULT_SEED, DEFAULT_TENANTS, GenFleet, gen_fleet};
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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
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
