//! `fleet validate` against check-jsonschema at 10 to 10,000 stores.
//!
//! The baseline is [check-jsonschema](https://pypi.org/project/check-jsonschema/),
//! installed into a venv under the scratch directory, run once per schema
//! with all matching files as arguments (so it pays Python's start-up three
//! times, not once per file): `fleet.schema.json` for `fleet.yaml`,
//! `tenant.schema.json` for the tenant base files, `store.schema.json` for
//! every `store.yaml`. The schemas are the committed `schemas/json/` when
//! they equal `fleet schema` output, else that output.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::chart::{Chart, Series};
use super::fleets::SIZES;
use super::measure::{Cmd, Samples, compared, time_interleaved, two};
use super::{BudgetRow, Ctx, PartResult, Runs, secs, thousands};

/// DESIGN.md §8: under 10 s at 10,000 stores.
pub const BUDGET_SECS: f64 = 10.0;
const CHECK_JSONSCHEMA: &str = "0.39.0";

struct Point {
    stores: usize,
    files: usize,
    bytes: u64,
    fleet: Samples,
    generic: Samples,
    rss_kb: u64,
}

pub fn run(ctx: &Ctx) -> anyhow::Result<PartResult> {
    let check = check_jsonschema(ctx)?;
    let (schemas, schema_note) = schemas(ctx)?;
    let fleet_runs = ctx.runs(
        Runs {
            warmup: 2,
            runs: 10,
        },
        Runs { warmup: 1, runs: 3 },
    );
    let generic_runs = ctx.runs(Runs { warmup: 1, runs: 3 }, Runs { warmup: 0, runs: 1 });
    let mut points = Vec::new();
    for stores in SIZES {
        let fleet = ctx.fleets.lock().expect("fleets").sized(ctx, stores)?;
        let ours = Cmd::new(ctx.bin("fleet"))
            .arg("validate")
            .arg("--repo")
            .arg(&fleet.dir);
        let generic = generic_cmd(&check, &schemas, &fleet.dir);
        ctx.say(&format!(
            "validate {stores} stores: fleet validate {}+{} runs, check-jsonschema {}+{}",
            fleet_runs.warmup, fleet_runs.runs, generic_runs.warmup, generic_runs.runs
        ));
        // Both must accept the fleet, or the comparison means nothing: a
        // failing run is an error (untimed first runs show it early).
        ours.time_once()
            .context("fleet validate rejected the generated fleet")?;
        let [f, g] = two(
            time_interleaved(&[(&ours, fleet_runs), (&generic, generic_runs)])
                .with_context(|| format!("timing validation of {stores} stores"))?,
        )?;
        let rss_kb = ours.peak_rss_kb(&ctx.bench_exe)?;
        ctx.say(&compared(
            &format!("validate {stores} stores"),
            ("fleet validate", &f),
            ("check-jsonschema", &g),
            rss_kb,
        ));
        points.push(Point {
            stores,
            files: fleet.files,
            bytes: fleet.bytes,
            fleet: f,
            generic: g,
            rss_kb,
        });
    }
    let big = points.last().context("no sizes measured")?;
    let ratio = big.fleet.median() / big.generic.median();
    let baseline = format!("check-jsonschema {}", secs(big.generic.median()));
    let rows = vec![
        BudgetRow {
            budget: format!(
                "`fleet validate`, {} stores: under {BUDGET_SECS:.0} s",
                thousands(big.stores)
            ),
            measured: secs(big.fleet.median()),
            spread: big.fleet.spread_secs(),
            baseline: baseline.clone(),
            ratio: format!("{ratio:.3}×"),
            pass: big.fleet.median() < BUDGET_SECS,
        },
        BudgetRow {
            budget: format!(
                "`fleet validate`, {} stores: faster than a generic JSON Schema validator",
                thousands(big.stores)
            ),
            measured: secs(big.fleet.median()),
            spread: big.fleet.spread_secs(),
            baseline,
            ratio: format!("{ratio:.3}× (< 1×)"),
            pass: ratio < 1.0,
        },
    ];

    let mut d = String::new();
    writeln!(
        d,
        "`fleet validate --repo DIR` against check-jsonschema {CHECK_JSONSCHEMA} on the same files \
         and schemas ({schema_note}); fleet validate {}+{} runs, check-jsonschema {}+{} \
         (warm-up + timed), interleaved. Peak RSS from `getrusage` of the finished process.\n",
        fleet_runs.warmup, fleet_runs.runs, generic_runs.warmup, generic_runs.runs
    )?;
    d.push_str(
        "| stores | files | YAML | fleet validate median | spread | check-jsonschema median | spread | ratio | peak RSS of fleet validate |\n\
         | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |\n",
    );
    for p in &points {
        writeln!(
            d,
            "| {} | {} | {:.1} MB | {} | {} | {} | {} | {:.3} | {:.1} MB |",
            thousands(p.stores),
            thousands(p.files),
            p.bytes as f64 / 1e6,
            secs(p.fleet.median()),
            p.fleet.spread_secs(),
            secs(p.generic.median()),
            p.generic.spread_secs(),
            p.fleet.median() / p.generic.median(),
            p.rss_kb as f64 / 1024.0
        )?;
    }
    writeln!(
        d,
        "\nCommands, in `$WORK/git/fleet-N` (`$WORK` is the scratch directory):\n\n```sh\n\
         fleet validate --repo .\n{}\n```",
        generic_script(Path::new("$WORK/venv/bin/check-jsonschema"), &schemas)
            .replace(&ctx.root.display().to_string(), ".")
    )?;

    let chart = Chart {
        file: "validate-scaling.png".into(),
        title: "fleet validate vs check-jsonschema".into(),
        x_label: "stores".into(),
        y_label: "seconds (median)".into(),
        log_y: true,
        series: vec![
            Series::new(
                "fleet validate",
                points
                    .iter()
                    .map(|p| (p.stores as f64, p.fleet.median()))
                    .collect(),
            ),
            Series::new(
                "check-jsonschema (baseline)",
                points
                    .iter()
                    .map(|p| (p.stores as f64, p.generic.median()))
                    .collect(),
            ),
        ],
        budget: Some(("budget: 10 s at 10,000 stores".into(), BUDGET_SECS)),
    };
    PartResult::with_chart(
        ctx,
        rows,
        d,
        chart,
        "`fleet validate` and check-jsonschema against the number of stores (log–log)",
    )
}

/// The shell line of the baseline: globs, expanded by the shell in the
/// repo, stand for the directory walk `fleet validate` does itself.
fn generic_script(check: &Path, schemas: &Path) -> String {
    let (c, s) = (check.display(), schemas.display());
    format!(
        "{c} --schemafile {s}/fleet.schema.json fleet.yaml && \
         {c} --schemafile {s}/tenant.schema.json tenants/*/*.yaml && \
         {c} --schemafile {s}/store.schema.json tenants/*/stores/*/store.yaml"
    )
}

fn generic_cmd(check: &Path, schemas: &Path, repo: &Path) -> Cmd {
    Cmd::new("sh")
        .arg("-c")
        .arg(generic_script(check, schemas))
        .dir(repo)
}

/// check-jsonschema in `$WORK/venv`, installed from PyPI when missing.
fn check_jsonschema(ctx: &Ctx) -> anyhow::Result<PathBuf> {
    let venv = ctx.opts.work.join("venv");
    let check = venv.join("bin/check-jsonschema");
    if check.is_file() {
        return Ok(check);
    }
    ctx.say(&format!(
        "installing check-jsonschema {CHECK_JSONSCHEMA} (the generic validator) into {}",
        venv.display()
    ));
    Cmd::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .context("python3 -m venv (the baseline needs Python 3 with venv)")?;
    Cmd::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("check-jsonschema=={CHECK_JSONSCHEMA}"))
        .output()
        .context("installing check-jsonschema from PyPI")?;
    if !check.is_file() {
        bail!("pip did not install {}", check.display());
    }
    Ok(check)
}

/// The JSON Schemas to check against, and where they came from.
fn schemas(ctx: &Ctx) -> anyhow::Result<(PathBuf, String)> {
    let generated = ctx.opts.work.join("schemas-generated");
    if generated.exists() {
        std::fs::remove_dir_all(&generated)
            .with_context(|| format!("removing {}", generated.display()))?;
    }
    Cmd::new(ctx.bin("fleet"))
        .arg("schema")
        .arg("--out")
        .arg(&generated)
        .output()?;
    let committed = ctx.root.join("schemas/json");
    let same = ["fleet", "tenant", "store"].iter().all(|n| {
        let f = format!("{n}.schema.json");
        match (
            std::fs::read(committed.join(&f)),
            std::fs::read(generated.join(&f)),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    });
    if same {
        Ok((
            committed,
            "`schemas/json/`, identical to `fleet schema` output".into(),
        ))
    } else {
        Ok((
            generated,
            "`fleet schema` output; the committed `schemas/json/` differs from it".into(),
        ))
    }
}
