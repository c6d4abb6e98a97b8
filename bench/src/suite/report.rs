//! The Markdown the suite writes: a summary table of every budget, then
//! each part's tables and charts, between two marker lines of
//! docs/BENCHMARKS.md. Everything outside the markers is left as it is.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use super::measure::Cmd;
use super::{Ctx, Part, PartResult};

pub const BEGIN: &str =
    "<!-- BEGIN bench suite: written by `bench suite`; edit outside these markers -->";
pub const END: &str = "<!-- END bench suite -->";

/// When, where and on what the suite ran.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub date: String,
    pub revision: String,
    pub machine: String,
    pub toolchain: String,
    pub load_before: String,
    pub load_after: String,
    pub minutes: f64,
    pub build_secs: Option<f64>,
}

impl RunInfo {
    pub fn gather(ctx: &Ctx, load_before: String, load_after: String) -> RunInfo {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let mem_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|l| l.trim().trim_end_matches(" kB").parse::<f64>().ok())
            })
            .map(|kb| kb / 1_048_576.0)
            .unwrap_or(0.0);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let line = |cmd: Cmd| {
            cmd.output()
                .ok()
                .and_then(|s| s.lines().next().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into())
        };
        RunInfo {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            revision: line(super::git(&ctx.root).args([
                "describe",
                "--always",
                "--dirty",
                "--abbrev=7",
            ])),
            machine: format!("{cores} cores, {cpu}, {mem_gib:.1} GiB RAM, Linux {kernel}"),
            toolchain: format!(
                "{}; {}",
                line(Cmd::new("rustc").arg("--version")),
                line(Cmd::new("git").arg("--version"))
            ),
            load_before,
            load_after,
            minutes: ctx.started.elapsed().as_secs_f64() / 60.0,
            build_secs: ctx.build_secs,
        }
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "**pass**" } else { "**FAIL**" }
}

/// The summary table: one row per budget clause, parts that could not be
/// measured as one row saying why.
pub fn summary_table(results: &[(Part, anyhow::Result<PartResult>)]) -> String {
    let mut t = String::from(
        "| budget (DESIGN.md §8) | measured (median) | spread (min–max, runs) | baseline, same run | ratio | result |\n\
         | --- | ---: | --- | --- | ---: | --- |\n",
    );
    for (part, r) in results {
        match r {
            Ok(r) => {
                for row in &r.rows {
                    let _ = writeln!(
                        t,
                        "| {} | {} | {} | {} | {} | {} |",
                        row.budget,
                        row.measured,
                        row.spread,
                        row.baseline,
                        row.ratio,
                        verdict(row.pass)
                    );
                }
            }
            Err(e) => {
                let msg = format!("{e:#}").replace('|', "\\|").replace('\n', " ");
                let _ = writeln!(
                    t,
                    "| {} | not measured: {msg} | | | | **FAIL** |",
                    part.name()
                );
            }
        }
    }
    t
}

/// The generated block, markers included.
pub fn render(ctx: &Ctx, info: &RunInfo, results: &[(Part, anyhow::Result<PartResult>)]) -> String {
    let charts_rel = ctx
        .opts
        .out
        .parent()
        .and_then(|p| ctx.opts.charts.strip_prefix(p).ok())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| ctx.opts.charts.display().to_string());
    let mode = if ctx.opts.quick {
        "with `--quick`: fewer runs and smaller samples, a smoke test with rougher numbers"
    } else {
        "full run"
    };
    let mut s = String::new();
    s.push_str(BEGIN);
    s.push('\n');
    let all = results
        .iter()
        .all(|(_, r)| r.as_ref().is_ok_and(|r| r.rows.iter().all(|x| x.pass)));
    let _ = write!(
        s,
        "\n## Every budget, one run\n\n\
         Written by `cargo run --release -p bench -- suite` ({mode}), which builds the \
         binaries, generates the fleets, runs every measurement of DESIGN.md §8 several times \
         against a baseline measured in the same run, and rewrites this block and the charts \
         in `{charts_rel}/`. **{}**\n\n\
         - Run: {}, revision `{}`, {:.1} minutes of measurement{}.\n\
         - Machine: {}; load average {} before, {} after (a shared machine: other work \
         may have run at the same time).\n\
         - Toolchain: {}.\n\n",
        if all {
            "Every budget is met."
        } else {
            "Not every budget is met: see the FAIL rows."
        },
        info.date,
        info.revision,
        info.minutes,
        info.build_secs
            .map(|s| format!(" after {s:.0} s of `cargo build`"))
            .unwrap_or_default(),
        info.machine,
        info.load_before,
        info.load_after,
        info.toolchain,
    );
    s.push_str(&summary_table(results));
    let names = [
        (Part::Validate, "`fleet validate`: 10 to 10,000 stores"),
        (Part::Reconcile, "Reconcile pass with nothing to do"),
        (
            Part::Converge,
            "Converging a 5,000-item menu; one changed price",
        ),
        (Part::Ingest, "Status service: signed reports per second"),
        (Part::Push, "Push to applied with long-poll, 50 stores"),
        (Part::Rollout, "`fleet rollout advance` over 10,000 stores"),
        (
            Part::Distribution,
            "Distribution: 10,000 long-polls on one replica; relay against Git",
        ),
    ];
    for (part, r) in results {
        let title = names
            .iter()
            .find(|(p, _)| p == part)
            .map(|(_, t)| *t)
            .unwrap_or("?");
        let _ = write!(s, "\n### {title}\n\n");
        match r {
            Ok(r) => {
                s.push_str(&r.details);
                for (file, caption) in &r.charts {
                    let _ = write!(s, "\n![{caption}]({charts_rel}/{file})\n");
                }
            }
            Err(e) => {
                let _ = writeln!(s, "Not measured in this run: {e:#}");
            }
        }
    }
    let not_run: Vec<&str> = Part::ALL
        .iter()
        .filter(|p| !results.iter().any(|(q, _)| q == *p))
        .map(|p| p.name())
        .collect();
    if !not_run.is_empty() {
        let _ = write!(
            s,
            "\nNot run (left out with `--only`): {}.\n",
            not_run.join(", ")
        );
    }
    s.push('\n');
    s.push_str(END);
    s.push('\n');
    s
}

/// Put `block` into `path` in place of the old block, or after the first
/// heading when there is none; create the file when it is missing.
pub fn write_into(path: &Path, block: &str) -> anyhow::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let new = splice(&old, block);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Write beside and rename: an interrupted run never leaves half a file.
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, new).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

fn splice(old: &str, block: &str) -> String {
    if let (Some(b), Some(e)) = (old.find(BEGIN), old.find(END))
        && b < e
    {
        let after = &old[e + END.len()..];
        let after = after.strip_prefix('\n').unwrap_or(after);
        return format!("{}{block}{after}", &old[..b]);
    }
    // After the first heading's paragraph block: the title line.
    match old.find('\n') {
        Some(i) if old.starts_with('#') => {
            format!(
                "{}\n\n{block}\n{}",
                &old[..i],
                old[i + 1..].trim_start_matches('\n')
            )
        }
        _ => format!("{block}\n{old}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_replaces_the_old_one_and_nothing_else() {
        let first = splice("# Benchmarks\n\nIntro.\n", &format!("{BEGIN}\nA\n{END}\n"));
        assert_eq!(
            first,
            format!("# Benchmarks\n\n{BEGIN}\nA\n{END}\n\nIntro.\n")
        );
        let second = splice(&first, &format!("{BEGIN}\nB\n{END}\n"));
        assert_eq!(
            second,
            format!("# Benchmarks\n\n{BEGIN}\nB\n{END}\n\nIntro.\n")
        );
    }
}
