//! `fleet rollout advance` over 10,000 stores (DESIGN.md §17). Each of
//! the 20 tenants has a rollout of three waves: a canary (its first store),
//! an early wave (its next 25 stores: 500, 5% of the fleet) and the rest.
//! The canaries, then the early stores, report their wave's revision to the
//! real `fleet-status`, so each advance passes every gate it meets.
//!
//! - The budget: advance from the canary waves: 20 gates decided against
//!   the status service, the early waves (500 releases) signed.
//! - Reported beside it: advance from the early waves, which signs the
//!   last waves (9,480 releases): signing dominates it, at the per-store
//!   cost of `fleet sign`.
//!
//! The baseline is `fleet validate` of the same repo in the same run: the
//! floor of any command that reads the repo (advance validates it before
//! it signs). Each timed run starts from the same commit (`git reset
//! --hard`, `git clean`), so every run decides and signs the same releases.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};

use super::fleets::commit;
use super::measure::{Cmd, Samples, Server};
use super::{BudgetRow, Ctx, PartResult, Runs, git, secs, thousands};

/// DESIGN.md §17.
pub const BUDGET_SECS: f64 = 2.0;

pub fn run(ctx: &Ctx) -> anyhow::Result<PartResult> {
    let stores = if ctx.opts.quick { 1_000 } else { 10_000 };
    let runs = ctx.runs(Runs { warmup: 1, runs: 5 }, Runs { warmup: 0, runs: 2 });
    let (base, keys) = {
        let mut f = ctx.fleets.lock().expect("fleets");
        let fleet = f.sized(ctx, stores)?;
        let fleet = f.signed(ctx, &fleet)?;
        (fleet, f.keys(ctx)?)
    };
    let work = ctx.dir("rollout")?;
    let repo = work.join("repo");
    if repo.exists() {
        std::fs::remove_dir_all(&repo).with_context(|| format!("removing {}", repo.display()))?;
    }
    Cmd::new("cp")
        .arg("-a")
        .arg(&base.dir)
        .arg(&repo)
        .output()?;

    // Waves: the first store of each tenant, its next 25, then the rest.
    let mut canaries = Vec::new();
    let mut early = Vec::new();
    for t in sorted_names(&repo.join("tenants"))? {
        let stores = sorted_names(&repo.join("tenants").join(&t).join("stores"))?;
        let Some(first) = stores.first().cloned() else {
            continue;
        };
        let next: Vec<String> = stores
            .iter()
            .skip(1)
            .take(EARLY_PER_TENANT)
            .cloned()
            .collect();
        std::fs::write(
            repo.join("tenants").join(&t).join("rollout.yaml"),
            format!(
                "apiVersion: fleet/v1\nkind: Tenant\nrollout:\n  waves:\n    - {{name: canary, stores: [{first}]}}\n    - {{name: early, stores: [{}]}}\n    - {{name: rest}}\n",
                next.join(", ")
            ),
        )?;
        early.extend(next.into_iter().map(|s| (t.clone(), s)));
        canaries.push((t, first));
    }
    commit(&repo, "waves")?;
    // The change: quiet hours for every store of every tenant.
    for (t, _) in &canaries {
        std::fs::write(
            repo.join("tenants").join(t).join("windows.yaml"),
            "apiVersion: fleet/v1\nkind: Tenant\nwindows:\n  deny: [{days: [mon, tue, wed, thu, fri], from: \"11:30\", to: \"14:00\"}]\n",
        )?;
    }
    commit(&repo, "quiet hours")?;
    Cmd::new(ctx.bin("fleet"))
        .arg("sign")
        .arg("--key")
        .arg(&keys.secret)
        .arg("--repo")
        .arg(&repo)
        .output()
        .context("fleet sign starting the rollouts")?;
    commit(&repo, "canaries signed")?;

    // The status service: each canary reported its wave's revision.
    let db = work.join("status.db");
    if db.exists() {
        std::fs::remove_file(&db)?;
    }
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let reported = ctx.runtime.block_on(report(&url, &repo, &canaries, 0))?;
    let tenants: Vec<String> = canaries.iter().map(|(t, _)| t.clone()).collect();
    let mut create = Cmd::new(ctx.bin("fleet-status"))
        .arg("--database-url")
        .arg(&url)
        .args(["operator", "create"]);
    for t in &tenants {
        create = create.arg("--tenant").arg(t);
    }
    let token = create
        .output()
        .context("creating the operator token")?
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned();
    let token_file = work.join("operator.token");
    std::fs::write(&token_file, format!("{token}\n"))?;
    let server = Server::start(
        &Cmd::new(ctx.bin("fleet-status"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
            .arg(&url)
            .arg("--state-dir")
            .arg(work.join("status-state")),
        &work.join("status.log"),
        true,
    )?;
    let status_url = format!(
        "http://{}",
        server
            .addr
            .as_deref()
            .context("fleet-status did not say where it listens")?
    );

    let advance = Cmd::new(ctx.bin("fleet"))
        .args(["rollout", "advance", "--key"])
        .arg(&keys.secret)
        .arg("--status-url")
        .arg(&status_url)
        .arg("--token-file")
        .arg(&token_file)
        .arg("--repo")
        .arg(&repo);
    let validate = Cmd::new(ctx.bin("fleet"))
        .args(["validate", "--repo"])
        .arg(&repo);
    ctx.say(&format!(
        "fleet rollout advance over {} stores ({reported} canaries reported): {}+{} runs from the canary waves",
        thousands(stores),
        runs.warmup,
        runs.runs
    ));
    let from_canary = Step {
        passed: "wave canary passed",
        signed: early.len(),
    };
    let (adv, val) = timed(
        ctx,
        &repo,
        &advance,
        &validate,
        runs,
        &from_canary,
        canaries.len(),
    )?;

    // The early waves signed, committed and reported: the next advance
    // signs the rest.
    advance
        .output()
        .context("fleet rollout advance to the early waves")?;
    commit(&repo, "early waves signed")?;
    let reported_early = ctx.runtime.block_on(report(&url, &repo, &early, 1_000))?;
    let rest = stores - canaries.len() - early.len();
    ctx.say(&format!(
        "fleet rollout advance from the early waves ({reported_early} early stores reported, {} releases to sign): {}+{} runs",
        thousands(rest),
        runs.warmup,
        runs.runs
    ));
    let from_early = Step {
        passed: "wave early passed",
        signed: rest,
    };
    let (adv_rest, val_rest) = timed(
        ctx,
        &repo,
        &advance,
        &validate,
        runs,
        &from_early,
        canaries.len(),
    )?;
    drop(server);
    let ratio = adv.median() / val.median();
    let ratio_rest = adv_rest.median() / val_rest.median();
    let rows = vec![BudgetRow {
        budget: format!(
            "`fleet rollout advance` over {} stores: under {BUDGET_SECS:.0} s",
            thousands(stores)
        ),
        measured: secs(adv.median()),
        spread: adv.spread_secs(),
        baseline: format!("fleet validate {}", secs(val.median())),
        ratio: format!("{ratio:.1}×"),
        pass: adv.median() < BUDGET_SECS,
    }];
    let mut d = String::new();
    writeln!(
        d,
        "`bench gen-fleet` with {} stores in {} tenants, signed; each tenant's `rollout:` has a canary \
         wave (its first store), an early wave (its next {EARLY_PER_TENANT}) and a catch-all; the change \
         is a deny window for every store. `fleet sign` started the {} rollouts and signed the canaries; \
         the real `fleet-status` (SQLite) holds one report per canary at its wave's revision. Each timed \
         run resets the repo to that commit and runs `fleet rollout advance`, which validates the repo, \
         asks the status service for each tenant's stores, passes every canary gate and signs the {} \
         early stores' releases; then the baseline `fleet validate` of the same repo. The second row \
         starts from the early waves signed and reported, and signs the {} remaining stores: what a \
         final wave of 95% of a 10,000-store fleet costs, almost all of it signing (rendering, \
         serializing, two Ed25519 signatures and two files a store, on every core). {}+{} runs each.\n",
        thousands(stores),
        canaries.len(),
        canaries.len(),
        thousands(early.len()),
        thousands(rest),
        runs.warmup,
        runs.runs
    )?;
    d.push_str("| measurement | median | spread | baseline (same run) | ratio |\n| --- | ---: | --- | ---: | ---: |\n");
    writeln!(
        d,
        "| `fleet rollout advance` from the canaries: {} gates, {} releases signed | {} | {} | `fleet validate` {} | {ratio:.1}× |",
        canaries.len(),
        thousands(early.len()),
        secs(adv.median()),
        adv.spread_secs(),
        secs(val.median())
    )?;
    writeln!(
        d,
        "| `fleet rollout advance` from the early waves: {} gates, {} releases signed | {} | {} | `fleet validate` {} | {ratio_rest:.1}× |",
        canaries.len(),
        thousands(rest),
        secs(adv_rest.median()),
        adv_rest.spread_secs(),
        secs(val_rest.median())
    )?;
    Ok(PartResult {
        rows,
        details: d,
        charts: Vec::new(),
    })
}

/// Stores of the early wave of each tenant.
const EARLY_PER_TENANT: usize = 25;

/// What one timed advance must have done.
struct Step {
    /// The line each rollout's advance prints.
    passed: &'static str,
    /// Releases it signs.
    signed: usize,
}

/// `runs` timed advances from the repo's HEAD (reset before each), each
/// followed by the baseline; checks what the last one did, and leaves the
/// repo at HEAD.
fn timed(
    ctx: &Ctx,
    repo: &Path,
    advance: &Cmd,
    validate: &Cmd,
    runs: Runs,
    step: &Step,
    rollouts: usize,
) -> anyhow::Result<(Samples, Samples)> {
    let (mut adv, mut val) = (Samples::default(), Samples::default());
    let mut last_out = String::new();
    for i in 0..runs.warmup + runs.runs {
        reset(repo)?;
        let t = std::time::Instant::now();
        last_out = advance.output().context("fleet rollout advance")?;
        let took = t.elapsed().as_secs_f64();
        let v = validate.time_once()?.as_secs_f64();
        if i >= runs.warmup {
            adv.push(took);
            val.push(v);
            ctx.say(&format!(
                "advance run {}: {}, validate {}",
                i + 1 - runs.warmup,
                secs(took),
                secs(v)
            ));
        }
    }
    let passed = last_out.matches(step.passed).count();
    if passed != rollouts {
        bail!(
            "advance said \"{}\" for {passed} of {rollouts} rollouts:\n{last_out}",
            step.passed
        );
    }
    let changed = git(repo)
        .args(["status", "--porcelain", "--", "tenants"])
        .output()?
        .lines()
        .filter(|l| l.ends_with("release.yaml"))
        .count();
    if changed != step.signed {
        bail!("advance signed {changed} releases, not {}", step.signed);
    }
    reset(repo)?;
    Ok((adv, val))
}

/// Back to HEAD, untracked files gone.
fn reset(repo: &Path) -> anyhow::Result<()> {
    git(repo).args(["reset", "-q", "--hard", "HEAD"]).output()?;
    git(repo).args(["clean", "-qfdx"]).output()?;
    Ok(())
}

/// Enroll a node per store and store one converged report at the revision
/// of its release in `repo`, through the status service's storage layer.
/// `first_key` keeps node key ids apart between calls.
async fn report(
    url: &str,
    repo: &Path,
    stores: &[(String, String)],
    first_key: usize,
) -> anyhow::Result<usize> {
    use status::store::{Ingested, NewReport, Node};
    let store = status::store::open(url)
        .await
        .context("opening the status database")?;
    let now = chrono::Utc::now().timestamp();
    let mut n = 0;
    for (i, (t, s)) in stores.iter().enumerate() {
        let id = format!("{t}/{s}");
        let release =
            std::fs::read_to_string(repo.join(format!("tenants/{t}/stores/{s}/release.yaml")))?;
        let v: serde_json::Value =
            schemas::yaml::decode("release.yaml", &release).map_err(|d| anyhow::anyhow!("{d}"))?;
        let revision = v["revision"].as_u64().context("a release revision")?;
        let key_id = format!("{:016x}", 0xb000 + first_key + i);
        store
            .enroll_node(&Node {
                key_id: key_id.clone(),
                public_key: format!("bench-key-{}", first_key + i),
                store: id.clone(),
                enrolled_at: now - 60,
                revoked_at: None,
                recipient: None,
            })
            .await?;
        let report = NewReport {
            store: id.clone(),
            key_id,
            received_at: now,
            outcome: "converged".into(),
            desired_revision: Some(revision),
            applied_revision: Some(revision),
            commit: None,
            drift: 0,
            overridden: 0,
            reconciler_version: "bench".into(),
            root_version: None,
            release_api: Some("fleet/v1 fleet/v2".into()),
            body: "{}".into(),
        };
        match store
            .ingest_report(&status::tokens::nonce(), &report, None)
            .await?
        {
            Ingested::Stored(_) => n += 1,
            other => bail!("the report of {id} was not stored: {other:?}"),
        }
    }
    store.close().await?;
    Ok(n)
}

/// The names of the directories in `dir`, sorted.
pub(super) fn sorted_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    Ok(out)
}
