//! Converging a 5,000-item menu from an empty edge, against a `git clone`
//! of the same repo from the same daemon; then one changed price, and the
//! writes the edge records for it.
//!
//! Every timed converge starts from nothing: a fresh `fleet-edge` database
//! and a fresh reconciler state directory, so the pass clones the repo,
//! verifies, renders the plan and writes the whole menu. The baseline is
//! `git clone --bare` of the same repo into a fresh directory: the part of
//! the work that is only moving the bytes.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};

use super::fleets::{Fleet, resign};
use super::measure::Samples;
use super::reconcile::{pass_cmd, served, start_store};
use super::{BudgetRow, Ctx, PartResult, Runs, git, secs, thousands};

/// DESIGN.md §8.
pub const BUDGET_SECS: f64 = 3.0;
pub const ITEMS: usize = 5_000;

pub fn run(ctx: &Ctx) -> anyhow::Result<PartResult> {
    let runs = ctx.runs(Runs { warmup: 1, runs: 5 }, Runs { warmup: 0, runs: 2 });
    let fleet = ctx
        .fleets
        .lock()
        .expect("fleets")
        .get(ctx, "menu-5000", 1, ITEMS)?;
    let (fleet, keys, url) = served(ctx, &fleet)?;
    let work = ctx.dir("converge")?;
    let (mut converge, mut clone) = (Samples::default(), Samples::default());
    let mut last = None;
    ctx.say(&format!(
        "converge {ITEMS} items from empty: {}+{} runs, each on a fresh edge",
        runs.warmup, runs.runs
    ));
    for i in 0..runs.warmup + runs.runs {
        let store = start_store(
            ctx,
            &work.join(format!("run-{i}")),
            &fleet.first_store,
            &url,
            &keys,
        )?;
        let took = pass_cmd(ctx, &store.config)
            .time_once()
            .context("converging the 5,000-item menu")?
            .as_secs_f64();
        let target = work.join(format!("clone-{i}.git"));
        if target.exists() {
            std::fs::remove_dir_all(&target)
                .with_context(|| format!("removing {}", target.display()))?;
        }
        let cloned = git(&work)
            .args(["clone", "-q", "--bare", &url])
            .arg(&target)
            .time_once()?
            .as_secs_f64();
        if i >= runs.warmup {
            converge.push(took);
            clone.push(cloned);
            ctx.say(&format!(
                "converge run {}: {}, git clone {}",
                i + 1 - runs.warmup,
                secs(took),
                secs(cloned)
            ));
        }
        last = Some(store);
    }
    let items = count_items(ctx, last.as_ref().context("no run")?)?;
    if items != ITEMS {
        bail!("the edge holds {items} items after the converge, not {ITEMS}");
    }
    // Peak RSS of a converge from empty, on one more fresh edge.
    let rss_store = start_store(ctx, &work.join("rss"), &fleet.first_store, &url, &keys)?;
    let rss_kb = pass_cmd(ctx, &rss_store.config).peak_rss_kb(&ctx.bench_exe)?;
    drop(rss_store);

    // One changed price on the last converged edge.
    let store = last.context("no run")?;
    let (writes, one_pass, changed) = one_price(ctx, &fleet, &keys, &store)?;
    let ratio = converge.median() / clone.median();
    let rows = vec![
        BudgetRow {
            budget: format!(
                "converge a {}-item menu from empty: under {BUDGET_SECS:.0} s",
                thousands(ITEMS)
            ),
            measured: secs(converge.median()),
            spread: converge.spread_secs(),
            baseline: format!("git clone {}", secs(clone.median())),
            ratio: format!("{ratio:.1}×"),
            pass: converge.median() < BUDGET_SECS,
        },
        BudgetRow {
            budget: "one changed price: one write".into(),
            measured: format!("{writes} write{}", if writes == 1 { "" } else { "s" }),
            spread: format!("pass {}", secs(one_pass)),
            baseline: "—".into(),
            ratio: "—".into(),
            pass: writes == 1,
        },
    ];
    let mut d = String::new();
    writeln!(
        d,
        "One store whose tenant menu has {ITEMS} items (`bench gen-fleet --stores 1 --tenants 1 \
         --items {ITEMS}`), {} of YAML. Each timed run: a fresh `fleet-edge` database and state \
         directory, `fleet-reconciler once` (clone, verify, plan, one `POST /menu/batch` and the \
         other domains), then the baseline `git clone --bare` of the same repo. {}+{} runs.\n",
        format_args!("{:.1} MB", fleet.bytes as f64 / 1e6),
        runs.warmup,
        runs.runs
    )?;
    d.push_str(
        "| measurement | median | spread | baseline (same run) | ratio |\n| --- | ---: | --- | ---: | ---: |\n",
    );
    writeln!(
        d,
        "| converge {} items from empty | {} | {} | git clone {} ({}) | {ratio:.1} |",
        thousands(ITEMS),
        secs(converge.median()),
        converge.spread_secs(),
        secs(clone.median()),
        clone.spread_secs(),
    )?;
    writeln!(
        d,
        "| peak RSS of that pass | {:.1} MB | one run | | |",
        rss_kb as f64 / 1024.0
    )?;
    writeln!(
        d,
        "| one changed price ({changed}) | {writes} write(s), pass {} | one run | | |",
        secs(one_pass)
    )?;
    d.push_str(
        "\nWrites are counted in the edge's own audit log: entries before and after the pass \
         (`GET /audit/verify`).\n",
    );
    Ok(PartResult {
        rows,
        details: d,
        charts: Vec::new(),
    })
}

/// Raise the first price in the tenant menu by 10, sign, commit, pass once;
/// answers the audit entries the pass wrote, its time and what changed.
fn one_price(
    ctx: &Ctx,
    fleet: &Fleet,
    keys: &super::fleets::Keys,
    store: &super::reconcile::Store,
) -> anyhow::Result<(u64, f64, String)> {
    let tenant = fleet
        .first_store
        .split('/')
        .next()
        .context("store id without tenant")?;
    let menu = fleet.dir.join("tenants").join(tenant).join("menu.yaml");
    let text =
        std::fs::read_to_string(&menu).with_context(|| format!("reading {}", menu.display()))?;
    let (changed, new_text) = bump_first_price(&text)
        .with_context(|| format!("{} has no `price:` line", menu.display()))?;
    std::fs::write(&menu, new_text).with_context(|| format!("writing {}", menu.display()))?;
    resign(ctx, fleet, keys, "one price")?;
    let before = audit_entries(ctx, store)?;
    let took = pass_cmd(ctx, &store.config)
        .time_once()
        .context("the one-price pass")?
        .as_secs_f64();
    let after = audit_entries(ctx, store)?;
    Ok((after.saturating_sub(before), took, changed))
}

/// The first item price (`price: N` after the menu's `items:` key) raised
/// by 10: what changed and the new text.
fn bump_first_price(text: &str) -> Option<(String, String)> {
    let mut out = String::with_capacity(text.len());
    let mut in_items = false;
    let mut changed = None;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "  items:" {
            in_items = true;
        }
        if in_items
            && changed.is_none()
            && let Some((indent, rest)) = line.split_once("price: ")
            && indent.trim_start_matches([' ', '-']).is_empty()
            && let Ok(n) = rest.trim().parse::<u64>()
        {
            out.push_str(&format!("{indent}price: {}\n", n + 10));
            changed = Some(format!("item price {n} → {}", n + 10));
            continue;
        }
        out.push_str(line);
    }
    changed.map(|c| (c, out))
}

/// The number of entries in the edge's audit log.
fn audit_entries(ctx: &Ctx, store: &super::reconcile::Store) -> anyhow::Result<u64> {
    let v = edge_get(ctx, store, "/audit/verify")?;
    if v["ok"] != serde_json::Value::Bool(true) {
        bail!("the edge's audit chain does not verify: {v}");
    }
    v["entries"]
        .as_u64()
        .context("GET /audit/verify answered no `entries`")
}

fn count_items(ctx: &Ctx, store: &super::reconcile::Store) -> anyhow::Result<usize> {
    let v = edge_get(ctx, store, "/state")?;
    v["menu"]["items"]
        .as_array()
        .map(Vec::len)
        .context("GET /state has no menu.items")
}

fn edge_get(
    ctx: &Ctx,
    store: &super::reconcile::Store,
    path: &str,
) -> anyhow::Result<serde_json::Value> {
    let url = format!("{}{path}", store.url);
    ctx.runtime.block_on(async {
        let r = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&store.token)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = r.status();
        if !status.is_success() {
            bail!("GET {url} answered {status}");
        }
        r.json::<serde_json::Value>()
            .await
            .with_context(|| format!("reading GET {url}"))
    })
}

#[cfg(test)]
mod tests {
    use super::bump_first_price;

    #[test]
    fn bumps_only_the_first_price() {
        let text = "menu:\n  modifier_groups:\n  - id: m\n    price: 0\n  items:\n  - id: a\n    variations:\n    - id: a1\n      price: 899\n    - id: a2\n      price: 1099\n";
        let (what, new) = bump_first_price(text).expect("a price");
        assert_eq!(what, "item price 899 → 909");
        assert!(new.contains("    price: 0\n"), "modifiers are left alone");
        assert!(new.contains("      price: 909\n"));
        assert!(new.contains("      price: 1099\n"));
        assert_eq!(new.len(), text.len());
        assert!(bump_first_price("no prices here\n").is_none());
    }
}
