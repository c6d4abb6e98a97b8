//! `bench suite`: every budget of DESIGN.md §8 in one run, each against a
//! baseline measured in the same run, written to docs/BENCHMARKS.md with
//! scaling charts (ADR 29).
//!
//! The parts, in the order they run:
//!
//! - [`validate`]: `fleet validate` at 10, 100, 1,000 and 10,000 stores
//!   against check-jsonschema (a generic JSON Schema validator) on the
//!   same files and schemas;
//! - [`reconcile`]: a `fleet-reconciler once` pass with nothing to do
//!   against a plain `git fetch` of the same repo from the same
//!   `git daemon`, at the same four sizes, and its peak RSS;
//! - [`converge`]: a 5,000-item menu converged from an empty edge against
//!   a `git clone` of the same repo, then one changed price and the writes
//!   it costs;
//! - [`ingest`]: signed reports per second into `fleet-status` on SQLite
//!   and PostgreSQL against the raw INSERT rate of the same database, at
//!   100, 1,000 and 10,000 nodes;
//! - [`push`]: push to applied with long-poll, 50 stores, against the
//!   same daemons polling;
//! - [`rollout`]: `fleet rollout advance` over 10,000 stores (DESIGN.md
//!   §17) against `fleet validate` of the same repo;
//! - [`distribution`]: 10,000 long-polls held by one status replica (RSS,
//!   wake after a hook), and a relay fetch against a `git fetch` of the
//!   same change (DESIGN.md §17).

pub mod chart;
pub mod converge;
pub mod distribution;
pub mod fleets;
pub mod ingest;
pub mod measure;
pub mod push;
pub mod reconcile;
pub mod report;
pub mod rollout;
pub mod validate;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};

use measure::Cmd;

/// The parts of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Part {
    Validate,
    Reconcile,
    Converge,
    Ingest,
    Push,
    Rollout,
    Distribution,
}

impl Part {
    pub const ALL: [Part; 7] = [
        Part::Validate,
        Part::Reconcile,
        Part::Converge,
        Part::Ingest,
        Part::Push,
        Part::Rollout,
        Part::Distribution,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::Validate => "validate",
            Part::Reconcile => "reconcile",
            Part::Converge => "converge",
            Part::Ingest => "ingest",
            Part::Push => "push",
            Part::Rollout => "rollout",
            Part::Distribution => "distribution",
        }
    }
}

/// Options of `bench suite`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fewer runs and smaller samples: a smoke test of the whole suite.
    pub quick: bool,
    /// The Markdown file to write (its generated block).
    pub out: PathBuf,
    /// Where the PNG charts go (linked relative to `out`).
    pub charts: PathBuf,
    /// Scratch space: fleets, databases, the venv of the baseline.
    pub work: PathBuf,
    /// Maintenance URL of the PostgreSQL server.
    pub postgres_url: String,
    /// The parts to run; the others are listed as not run.
    pub parts: Vec<Part>,
    /// Run `cargo build --release` of the binaries first.
    pub build: bool,
}

/// How many times each measurement runs.
#[derive(Debug, Clone, Copy)]
pub struct Runs {
    pub warmup: usize,
    pub runs: usize,
}

/// One line of the summary table: one budget clause of DESIGN.md §8.
#[derive(Debug, Clone)]
pub struct BudgetRow {
    /// The clause, e.g. "no-op pass ≤ 1.3× git fetch (10 stores)".
    pub budget: String,
    /// The figure the budget is about (a median, a p99, a count).
    pub measured: String,
    pub spread: String,
    /// The same-run baseline and its figure.
    pub baseline: String,
    pub ratio: String,
    pub pass: bool,
}

/// What a part hands to the report.
#[derive(Debug, Default)]
pub struct PartResult {
    pub rows: Vec<BudgetRow>,
    /// Markdown: tables and notes of this part.
    pub details: String,
    /// Chart files written (names inside `Options::charts`) and captions.
    pub charts: Vec<(String, String)>,
}

impl PartResult {
    /// A result with one chart, drawn now into the chart directory.
    pub fn with_chart(
        ctx: &Ctx,
        rows: Vec<BudgetRow>,
        details: String,
        chart: chart::Chart,
        caption: &str,
    ) -> anyhow::Result<PartResult> {
        chart.draw(&ctx.opts.charts)?;
        Ok(PartResult {
            rows,
            details,
            charts: vec![(chart.file, caption.to_owned())],
        })
    }
}

/// Everything the parts share.
#[derive(Debug)]
pub struct Ctx {
    pub opts: Options,
    /// The workspace root.
    pub root: PathBuf,
    /// Where the release binaries are (this binary's directory).
    pub bin_dir: PathBuf,
    pub bench_exe: PathBuf,
    /// When the measurements began (after the build).
    pub started: Instant,
    /// How long `cargo build` took, when the suite ran it.
    pub build_secs: Option<f64>,
    pub runtime: tokio::runtime::Runtime,
    /// The fleets, made once and shared by the parts.
    pub fleets: std::sync::Mutex<fleets::Fleets>,
}

impl Ctx {
    /// A release binary of the workspace.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    pub fn say(&self, msg: &str) {
        eprintln!(
            "bench suite [{:>5.0} s] {msg}",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Runs for a measurement: `full` normally, `quick` under `--quick`.
    pub fn runs(&self, full: Runs, quick: Runs) -> Runs {
        if self.opts.quick { quick } else { full }
    }

    pub fn dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let d = self.opts.work.join(name);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        Ok(d)
    }
}

/// Run the suite: build, measure every part, write the report. Answers
/// whether every budget that was measured passed.
pub fn run(opts: Options) -> anyhow::Result<bool> {
    let root = workspace_root();
    let bench_exe = std::env::current_exe().context("finding this executable")?;
    let bin_dir = bench_exe
        .parent()
        .context("this executable has no directory")?
        .to_path_buf();
    let build_started = Instant::now();
    let build_secs = if opts.build {
        build(&root, &bin_dir)?;
        Some(build_started.elapsed().as_secs_f64())
    } else {
        None
    };
    // The clock of the run (and of the five-minute `--quick` promise)
    // starts once the binaries are built.
    let started = Instant::now();
    let load_before = load_average();
    for b in ["fleet", "fleet-reconciler", "fleet-edge", "fleet-status"] {
        if !bin_dir.join(b).is_file() {
            bail!(
                "{} is missing: build the workspace binaries with the profile `bench` was built with (`cargo build --release --bins`), or drop --no-build",
                bin_dir.join(b).display()
            );
        }
    }
    std::fs::create_dir_all(&opts.work)
        .with_context(|| format!("creating {}", opts.work.display()))?;
    let ctx = Ctx {
        fleets: std::sync::Mutex::new(fleets::Fleets::default()),
        runtime: tokio::runtime::Runtime::new().context("starting the async runtime")?,
        opts,
        root,
        bin_dir,
        bench_exe,
        started,
        build_secs,
    };
    ctx.say(&format!(
        "{} mode; parts: {}; scratch in {}",
        if ctx.opts.quick { "quick" } else { "full" },
        ctx.opts
            .parts
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", "),
        ctx.opts.work.display()
    ));
    let mut results: Vec<(Part, anyhow::Result<PartResult>)> = Vec::new();
    for part in Part::ALL {
        if !ctx.opts.parts.contains(&part) {
            continue;
        }
        ctx.say(&format!("part {}: starting", part.name()));
        let t = Instant::now();
        let r = match part {
            Part::Validate => validate::run(&ctx),
            Part::Reconcile => reconcile::run(&ctx),
            Part::Converge => converge::run(&ctx),
            Part::Ingest => ingest::run(&ctx),
            Part::Push => push::run(&ctx),
            Part::Rollout => rollout::run(&ctx),
            Part::Distribution => distribution::run(&ctx),
        };
        match &r {
            Ok(res) => ctx.say(&format!(
                "part {}: done in {:.0} s, {} of {} budget(s) met",
                part.name(),
                t.elapsed().as_secs_f64(),
                res.rows.iter().filter(|r| r.pass).count(),
                res.rows.len()
            )),
            Err(e) => ctx.say(&format!(
                "part {}: could not be measured: {e:#}",
                part.name()
            )),
        }
        results.push((part, r));
    }
    let run_info = report::RunInfo::gather(&ctx, load_before, load_average());
    let text = report::render(&ctx, &run_info, &results);
    report::write_into(&ctx.opts.out, &text)?;
    ctx.say(&format!("wrote {}", ctx.opts.out.display()));
    print!("{}", report::summary_table(&results));
    let all_ok = results
        .iter()
        .all(|(_, r)| r.as_ref().is_ok_and(|r| r.rows.iter().all(|row| row.pass)));
    Ok(all_ok)
}

/// Where the report and charts go when `--out`/`--charts` are not given:
/// docs/BENCHMARKS.md and docs/bench/ for a run of every part; for a run
/// of some parts (`--only`), `BENCHMARKS.md` and `charts/` in the scratch
/// directory, so that a partial run never replaces the committed table of
/// a full one.
pub fn default_outputs(root: &Path, work: &Path, every_part: bool) -> (PathBuf, PathBuf) {
    if every_part {
        (root.join("docs/BENCHMARKS.md"), root.join("docs/bench"))
    } else {
        (work.join("BENCHMARKS.md"), work.join("charts"))
    }
}

/// The workspace this binary was built from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `cargo build --release` of the four binaries and the push-latency
/// bench, into the target directory this binary lives in.
fn build(root: &Path, bin_dir: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = bin_dir
        .parent()
        .context("the release directory has no parent")?;
    eprintln!("bench suite: building the release binaries (cargo build --release)");
    for args in [
        &[
            "build",
            "--release",
            "-p",
            "cli",
            "-p",
            "reconciler",
            "-p",
            "edge",
            "-p",
            "status",
            "--bins",
        ][..],
        &[
            "bench",
            "--no-run",
            "-p",
            "reconciler",
            "--bench",
            "push_latency",
        ][..],
    ] {
        let status = std::process::Command::new(&cargo)
            .args(args)
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .context("running cargo")?;
        if !status.success() {
            bail!("cargo {} failed ({status})", args.join(" "));
        }
    }
    Ok(())
}

/// `/proc/loadavg`'s first three fields.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// `git …` with a fixed identity, in `dir`.
pub fn git(dir: &Path) -> Cmd {
    Cmd::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
        ])
        .arg("-C")
        .arg(dir)
}

/// `10000` as `10,000`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Format seconds for a table: milliseconds below one second.
pub fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.1} ms", s * 1000.0)
    } else {
        format!("{s:.3} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_run_writes_beside_its_scratch_not_into_docs() {
        let (root, work) = (Path::new("/src"), Path::new("/src/target/bench"));
        assert_eq!(
            default_outputs(root, work, true),
            (
                PathBuf::from("/src/docs/BENCHMARKS.md"),
                PathBuf::from("/src/docs/bench")
            )
        );
        assert_eq!(
            default_outputs(root, work, false),
            (
                PathBuf::from("/src/target/bench/BENCHMARKS.md"),
                PathBuf::from("/src/target/bench/charts")
            )
        );
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(999), "999");
    }
}
