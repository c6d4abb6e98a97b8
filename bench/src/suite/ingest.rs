//! Signed reports per second into `fleet-status` on SQLite and PostgreSQL,
//! against the raw INSERT rate of the same database, at 100, 1,000 and
//! 10,000 nodes: [`crate::status_ingest`] run in-process.

use std::fmt::Write as _;
use std::time::Duration;

use super::chart::{Chart, Series};
use super::{BudgetRow, Ctx, PartResult, thousands};
use crate::status_ingest::{
    BUDGET_PER_SEC, Backend, Measurement, StatusIngest, median, status_ingest, to_markdown,
};

/// The node count of the budget rows; the others are the scaling curve.
pub const NODES: usize = 1_000;
pub const SCALING: [usize; 2] = [100, 10_000];

/// DESIGN.md §17: ingest at least this fraction of a plain INSERT's rate.
pub const RATIO_BUDGET: f64 = 0.7;

pub fn run(ctx: &Ctx) -> anyhow::Result<PartResult> {
    let (reports, runs) = if ctx.opts.quick {
        (5_000, 3)
    } else {
        (20_000, 5)
    };
    let mut nodes = vec![NODES];
    nodes.extend(SCALING);
    let opts = StatusIngest {
        fleet_status: ctx.bin("fleet-status"),
        backends: vec![Backend::Sqlite, Backend::Postgres],
        postgres_url: ctx.opts.postgres_url.clone(),
        nodes,
        reports,
        concurrency: 32,
        runs,
        warmup: (reports / 10).max(NODES.min(2000)),
        run_timeout: Duration::from_secs(300),
    };
    ctx.say(&format!(
        "ingest: SQLite and PostgreSQL at {NODES}, {} and {} nodes, {runs} runs of {reports} signed reports, 32 in flight",
        SCALING[0], SCALING[1]
    ));
    let rows = ctx.runtime.block_on(status_ingest(&opts, |line| {
        ctx.say(&format!("ingest: {line}"))
    }))?;

    let at_budget = || rows.iter().filter(|m| m.nodes == NODES);
    let mut budget_rows: Vec<BudgetRow> = at_budget()
        .map(|m| {
            let base = median(&m.baseline);
            BudgetRow {
                budget: format!(
                    "status service, {}: ≥ {} signed reports/s ({} nodes)",
                    m.backend.as_str(),
                    thousands(BUDGET_PER_SEC as usize),
                    thousands(m.nodes)
                ),
                measured: format!("{:.0}/s", m.median()),
                spread: format!(
                    "{:.0}–{:.0}/s (n={})",
                    m.rates.iter().copied().fold(f64::INFINITY, f64::min),
                    m.rates.iter().copied().fold(0.0, f64::max),
                    m.rates.len()
                ),
                baseline: format!("raw INSERT {base:.0}/s"),
                ratio: format!("{:.2}×", m.median() / base),
                pass: m.passes(),
            }
        })
        .collect();
    // DESIGN.md §17: the same runs against the same-run plain INSERT.
    budget_rows.extend(at_budget().map(|m| {
        let base = median(&m.baseline);
        let ratio = m.median() / base;
        BudgetRow {
            budget: format!(
                "status ingest, {}: ≥ {RATIO_BUDGET}× a plain INSERT of the same rows (§17)",
                m.backend.as_str()
            ),
            measured: format!("{ratio:.2}×"),
            spread: format!(
                "{:.2}–{:.2}× (n={})",
                m.rates.iter().copied().fold(f64::INFINITY, f64::min) / base,
                m.rates.iter().copied().fold(0.0, f64::max) / base,
                m.rates.len()
            ),
            baseline: format!("raw INSERT {base:.0}/s, 32 connections"),
            ratio: format!("{ratio:.2}×"),
            pass: ratio >= RATIO_BUDGET,
        }
    }));

    let mut d = String::new();
    writeln!(
        d,
        "`bench status-ingest` in-process: a fresh database per backend and node count, the \
         real `fleet-status serve`, nodes enrolled through `POST /api/v1/enroll`, then {runs} \
         timed runs of {reports} signed `POST /api/v1/reports` (signed before the clock starts), \
         32 in flight. Baseline: plain INSERTs of the same rows into a table of the same shape, \
         one transaction each, from 32 connections (and from one). Peak RSS is `VmHWM` of \
         `fleet-status`.\n"
    )?;
    d.push_str(&to_markdown(&rows));
    let series = |backend: Backend| {
        let mut pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|m| m.backend == backend)
            .map(|m: &Measurement| (m.nodes as f64, m.median()))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        Series::new(backend.as_str(), pts)
    };
    let chart = Chart {
        file: "ingest-scaling.png".into(),
        title: "fleet-status: signed reports ingested per second".into(),
        x_label: "enrolled nodes".into(),
        y_label: "reports/s (median)".into(),
        log_y: false,
        series: vec![series(Backend::Sqlite), series(Backend::Postgres)],
        budget: Some(("budget: 2,000/s".into(), BUDGET_PER_SEC)),
    };
    PartResult::with_chart(
        ctx,
        budget_rows,
        d,
        chart,
        "Reports/s on SQLite and PostgreSQL against the number of enrolled nodes",
    )
}
