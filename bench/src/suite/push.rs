//! Push to applied with long-poll, 50 stores on loopback, against the same
//! daemons polling: `reconciler/benches/push_latency.rs`, run with
//! `cargo bench` and read back from its `--json` file.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};

use super::measure::{Samples, tail};
use super::{BudgetRow, Ctx, PartResult};

/// DESIGN.md §8: p99 under 3 s.
pub const BUDGET_P99_SECS: f64 = 3.0;
pub const STORES: usize = 50;

pub fn run(ctx: &Ctx) -> anyhow::Result<PartResult> {
    let (rounds, baseline_rounds, poll) = if ctx.opts.quick {
        (3, 1, 10)
    } else {
        (10, 3, 10)
    };
    let json = ctx.dir("push")?.join("push-latency.json");
    let _ = std::fs::remove_file(&json);
    ctx.say(&format!(
        "push: {STORES} stores, {rounds} long-poll rounds, {baseline_rounds} polling round(s) every {poll} s (cargo bench -p reconciler --bench push_latency)"
    ));
    let mut cmd = if ctx.opts.build {
        // As measured so far: the suite's build step ran `cargo bench
        // --no-run`, so this compiles nothing new.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let target_dir = ctx
            .bin_dir
            .parent()
            .context("the release directory has no parent")?;
        let mut cmd = std::process::Command::new(cargo);
        cmd.args([
            "bench",
            "--quiet",
            "-p",
            "reconciler",
            "--bench",
            "push_latency",
        ])
        .arg("--manifest-path")
        .arg(ctx.root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--");
        cmd
    } else {
        // --no-build means no build: `cargo bench` would rebuild under the
        // bench profile whenever anything looks stale.
        let exe = built_bench(&ctx.bin_dir)?;
        let mut cmd = std::process::Command::new(exe);
        cmd.current_dir(ctx.root.join("reconciler"));
        cmd
    };
    let out = cmd
        .args(["--stores", &STORES.to_string()])
        .args(["--rounds", &rounds.to_string()])
        .args(["--baseline-rounds", &baseline_rounds.to_string()])
        .args(["--poll-interval", &poll.to_string()])
        .arg("--json")
        .arg(&json)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running the push-latency bench")?;
    let log = ctx.opts.work.join("push/push-latency.log");
    std::fs::write(
        &log,
        [out.stderr.as_slice(), out.stdout.as_slice()].concat(),
    )
    .with_context(|| format!("writing {}", log.display()))?;
    if !out.status.success() {
        bail!(
            "the push-latency bench failed ({}); {}:\n{}",
            out.status,
            log.display(),
            tail(&String::from_utf8_lossy(&out.stderr), 20)
        );
    }
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&json).with_context(|| format!("reading {}", json.display()))?,
    )
    .with_context(|| format!("parsing {}", json.display()))?;
    let samples = |key: &str| -> anyhow::Result<Samples> {
        Ok(Samples(
            doc[key]
                .as_array()
                .with_context(|| format!("{} has no {key}", json.display()))?
                .iter()
                .filter_map(serde_json::Value::as_f64)
                .collect(),
        ))
    };
    let lp = samples("long_poll_secs")?;
    let polling = samples("polling_secs")?;
    if lp.is_empty() || polling.is_empty() {
        bail!("the push-latency bench recorded no samples");
    }
    let p99 = lp.percentile(99.0);
    let rows = vec![BudgetRow {
        budget: format!(
            "push to applied, daemon with long-poll, {STORES} stores on loopback: p99 under {BUDGET_P99_SECS:.0} s"
        ),
        measured: format!("p99 {p99:.3} s"),
        spread: format!(
            "p50 {:.3} s, max {:.3} s (n={})",
            lp.median(),
            lp.max(),
            lp.len()
        ),
        baseline: format!(
            "polling every {poll} s: p99 {:.3} s",
            polling.percentile(99.0)
        ),
        ratio: format!("{:.2}×", p99 / polling.percentile(99.0)),
        pass: p99 < BUDGET_P99_SECS,
    }];
    let mut d = String::new();
    writeln!(
        d,
        "`cargo bench -p reconciler --bench push_latency -- --stores {STORES} --rounds {rounds} \
         --baseline-rounds {baseline_rounds} --poll-interval {poll}`: {STORES} `fleet-edge` \
         servers and {STORES} enrolled `fleet-reconciler run` daemons, `fleet-status` with the \
         Git hook, `git daemon`; a round changes one base price, signs, commits, pushes and calls \
         the hook; a store's latency is its last edge audit entry of the new revision minus the \
         moment `git push` returned. Set-up took {:.0} s.\n",
        doc["setup_secs"].as_f64().unwrap_or(f64::NAN)
    )?;
    d.push_str(
        "| | samples | min | p50 | p90 | p99 | max |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (name, s) in [
        ("long-poll + hook".to_owned(), &lp),
        (format!("polling every {poll} s (baseline)"), &polling),
    ] {
        writeln!(
            d,
            "| {name} | {} | {:.3} s | {:.3} s | {:.3} s | {:.3} s | {:.3} s |",
            s.len(),
            s.min(),
            s.median(),
            s.percentile(90.0),
            s.percentile(99.0),
            s.max()
        )?;
    }
    Ok(PartResult {
        rows,
        details: d,
        charts: Vec::new(),
    })
}

/// The newest built `push_latency` bench executable in `bin_dir/deps`
/// (`cargo bench --no-run -p reconciler --bench push_latency` makes it).
pub fn built_bench(bin_dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let deps = bin_dir.join("deps");
    let newest = std::fs::read_dir(&deps)
        .with_context(|| format!("reading {}", deps.display()))?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("push_latency-") && !name.contains('.')
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p);
    newest.with_context(|| {
        format!(
            "no push_latency bench executable in {}: build it with `cargo bench --no-run -p reconciler --bench push_latency`, or drop --no-build",
            deps.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::built_bench;

    /// `--no-build` once rebuilt the push bench under `cargo bench` (ten
    /// minutes on two cores); it now runs the newest built executable.
    #[test]
    fn no_build_finds_the_newest_built_bench_and_names_the_fix_when_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deps = dir.path().join("deps");
        std::fs::create_dir(&deps).expect("mkdir");
        let err = built_bench(dir.path()).expect_err("nothing built");
        assert!(
            format!("{err:#}").contains("cargo bench --no-run"),
            "{err:#}"
        );
        for name in ["push_latency-old", "push_latency-new.d", "other-new"] {
            std::fs::write(deps.join(name), b"").expect("write");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(deps.join("push_latency-new"), b"").expect("write");
        assert_eq!(
            built_bench(dir.path()).expect("found"),
            deps.join("push_latency-new")
        );
    }
}
