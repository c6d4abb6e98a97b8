//! A reconcile pass with nothing to do against a plain `git fetch` of the
//! same repo from the same `git daemon`, at 10 to 10,000 stores, and its
//! peak RSS.
//!
//! For each size: a real `fleet-edge` on a fresh database, the first store
//! converged once by `fleet-reconciler once`; then, interleaved, the
//! baseline `git fetch` into a bare clone of the same repo (nothing new)
//! and `fleet-reconciler once` with nothing to do (fetch with libgit2,
//! read the release blobs, verify the signature, parse, `GET /state`,
//! plan, write the report).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::chart::{Chart, Series};
use super::fleets::{Fleet, Keys, SIZES};
use super::measure::{Cmd, Samples, Server, compared, time_interleaved, two};
use super::{BudgetRow, Ctx, PartResult, Runs, git, secs, thousands};

/// DESIGN.md §8.
pub const MAX_RATIO_TO_FETCH: f64 = 1.3;
pub const MAX_RSS_KB: u64 = 20 * 1024;
pub const MAX_RATIO_TO_SMALL: f64 = 1.5;

struct Point {
    stores: usize,
    pass: Samples,
    fetch: Samples,
    rss_kb: u64,
}

/// A running edge for one store, with a reconciler config pointing at it.
#[derive(Debug)]
pub struct Store {
    pub edge: Server,
    pub url: String,
    pub config: PathBuf,
    pub token: String,
}

/// Start `fleet-edge` on a fresh database in `dir` and write a reconciler
/// config for `store` of the repo `repo_url` next to it.
pub fn start_store(
    ctx: &Ctx,
    dir: &Path,
    store: &str,
    repo_url: &str,
    keys: &Keys,
) -> anyhow::Result<Store> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("state"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let token = "bench-edge-token".to_owned();
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).context("writing the edge token")?;
    let edge = Server::start(
        &Cmd::new(ctx.bin("fleet-edge"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(dir.join("edge.db"))
            .arg("--token-file")
            .arg(&token_file),
        &dir.join("edge.log"),
        true,
    )?;
    let url = format!("http://{}", edge.addr.clone().unwrap_or_default());
    let config = dir.join("reconciler.toml");
    let q = |p: &Path| toml_string(&p.display().to_string());
    std::fs::write(
        &config,
        format!(
            "store = {}\nrepo_url = {}\ntrust_dir = {}\nedge_url = {}\nedge_token_file = {}\nstate_dir = {}\ninterval_secs = 60\n",
            toml_string(store),
            toml_string(repo_url),
            q(&keys.trust_dir),
            toml_string(&url),
            q(&token_file),
            q(&dir.join("state")),
        ),
    )
    .context("writing the reconciler config")?;
    Ok(Store {
        edge,
        url,
        config,
        token,
    })
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `fleet-reconciler --config CFG once`, logging warnings only.
pub fn pass_cmd(ctx: &Ctx, config: &Path) -> Cmd {
    Cmd::new(ctx.bin("fleet-reconciler"))
        .arg("--config")
        .arg(config)
        .arg("once")
        .env("RUST_LOG", "warn")
}

/// The fleet, signed, and its URL on the daemon.
pub fn served(ctx: &Ctx, fleet: &Fleet) -> anyhow::Result<(Fleet, Keys, String)> {
    let mut fleets = ctx.fleets.lock().expect("fleets");
    let fleet = fleets.signed(ctx, fleet)?;
    let keys = fleets.keys(ctx)?;
    let port = fleets.daemon_port(ctx)?;
    let url = format!("git://127.0.0.1:{port}/{}", fleet.name);
    Ok((fleet, keys, url))
}

pub fn run(ctx: &Ctx) -> anyhow::Result<PartResult> {
    let runs = ctx.runs(
        Runs {
            warmup: 2,
            runs: 20,
        },
        Runs { warmup: 1, runs: 5 },
    );
    let mut points = Vec::new();
    for stores in SIZES {
        let fleet = ctx.fleets.lock().expect("fleets").sized(ctx, stores)?;
        let (fleet, keys, url) = served(ctx, &fleet)?;
        let dir = ctx.dir("reconcile")?.join(format!("store-{stores}"));
        let store = start_store(ctx, &dir, &fleet.first_store, &url, &keys)?;
        let pass = pass_cmd(ctx, &store.config);
        pass.time_once()
            .with_context(|| format!("the first converge of {}", fleet.first_store))?;
        let clone = ctx.dir("reconcile")?.join(format!("clone-{stores}.git"));
        if clone.exists() {
            std::fs::remove_dir_all(&clone)
                .with_context(|| format!("removing {}", clone.display()))?;
        }
        git(&ctx.opts.work)
            .args(["clone", "-q", "--bare", &url])
            .arg(&clone)
            .output()?;
        let fetch = git(&clone).args(["fetch", "-q", "origin"]);
        ctx.say(&format!(
            "reconcile {stores} stores: git fetch vs no-op pass, {}+{} runs each",
            runs.warmup, runs.runs
        ));
        let [fetch_s, pass_s] = two(time_interleaved(&[(&fetch, runs), (&pass, runs)])?)?;
        let rss_kb = pass.peak_rss_kb(&ctx.bench_exe)?;
        ctx.say(&compared(
            &format!("reconcile {stores} stores"),
            ("pass", &pass_s),
            ("git fetch", &fetch_s),
            rss_kb,
        ));
        drop(store);
        points.push(Point {
            stores,
            pass: pass_s,
            fetch: fetch_s,
            rss_kb,
        });
    }
    let small = points.first().context("no sizes")?;
    let big = points.last().context("no sizes")?;
    let fetch_row = |p: &Point| {
        let ratio = p.pass.median() / p.fetch.median();
        BudgetRow {
            budget: format!(
                "no-op reconcile pass, {} stores: ≤ {MAX_RATIO_TO_FETCH}× a plain `git fetch`",
                thousands(p.stores)
            ),
            measured: secs(p.pass.median()),
            spread: p.pass.spread_secs(),
            baseline: format!("git fetch {}", secs(p.fetch.median())),
            ratio: format!("{ratio:.2}×"),
            pass: ratio <= MAX_RATIO_TO_FETCH,
        }
    };
    let max_rss = points.iter().map(|p| p.rss_kb).max().unwrap_or(0);
    let scale = big.pass.median() / small.pass.median();
    let rows = vec![
        fetch_row(small),
        fetch_row(big),
        BudgetRow {
            budget: "no-op reconcile pass: peak RSS under 20 MB".into(),
            measured: format!("{:.1} MB", max_rss as f64 / 1024.0),
            spread: format!(
                "{:.1}–{:.1} MB over {} sizes",
                points.iter().map(|p| p.rss_kb).min().unwrap_or(0) as f64 / 1024.0,
                max_rss as f64 / 1024.0,
                points.len()
            ),
            baseline: "—".into(),
            ratio: format!("{:.2}× of the budget", max_rss as f64 / MAX_RSS_KB as f64),
            pass: max_rss < MAX_RSS_KB,
        },
        BudgetRow {
            budget: format!(
                "no-op pass, {} stores vs {} stores: ≤ {MAX_RATIO_TO_SMALL}×",
                thousands(big.stores),
                thousands(small.stores)
            ),
            measured: secs(big.pass.median()),
            spread: big.pass.spread_secs(),
            baseline: format!(
                "pass at {} stores {}",
                small.stores,
                secs(small.pass.median())
            ),
            ratio: format!("{scale:.2}×"),
            pass: scale <= MAX_RATIO_TO_SMALL,
        },
    ];

    let mut d = String::new();
    writeln!(
        d,
        "`fleet-reconciler once` with nothing to do against `git fetch -q origin` in a bare \
         clone of the same repo, same `git daemon` on 127.0.0.1, {}+{} runs each, interleaved. \
         Peak RSS from `getrusage` of the finished pass.\n",
        runs.warmup, runs.runs
    )?;
    d.push_str(
        "| stores | pass median | spread | git fetch median | spread | pass ÷ fetch | pass ÷ pass at 10 | peak RSS |\n\
         | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: |\n",
    );
    for p in &points {
        writeln!(
            d,
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.1} MB |",
            thousands(p.stores),
            secs(p.pass.median()),
            p.pass.spread_secs(),
            secs(p.fetch.median()),
            p.fetch.spread_secs(),
            p.pass.median() / p.fetch.median(),
            p.pass.median() / small.pass.median(),
            p.rss_kb as f64 / 1024.0
        )?;
    }
    let chart = Chart {
        file: "reconcile-scaling.png".into(),
        title: "no-op reconcile pass vs git fetch".into(),
        x_label: "stores in the repo".into(),
        y_label: "milliseconds (median)".into(),
        log_y: false,
        series: vec![
            Series::new(
                "fleet-reconciler once (nothing to do)",
                points
                    .iter()
                    .map(|p| (p.stores as f64, p.pass.median() * 1000.0))
                    .collect(),
            ),
            Series::new(
                "git fetch (baseline)",
                points
                    .iter()
                    .map(|p| (p.stores as f64, p.fetch.median() * 1000.0))
                    .collect(),
            ),
            Series::new(
                "1.3 × git fetch (budget)",
                points
                    .iter()
                    .map(|p| {
                        (
                            p.stores as f64,
                            p.fetch.median() * 1000.0 * MAX_RATIO_TO_FETCH,
                        )
                    })
                    .collect(),
            )
            .dashed(),
        ],
        budget: None,
    };
    PartResult::with_chart(
        ctx,
        rows,
        d,
        chart,
        "No-op pass and `git fetch` against the number of stores in the repo",
    )
}
