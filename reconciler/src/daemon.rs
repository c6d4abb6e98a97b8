//! The daemon loop of `fleet-reconciler run`: a pass every `interval_secs`
//! with jitter, exponential backoff (capped) after failures, the config and
//! trust directory reloaded when they change, and a clean stop on SIGTERM.
//!
//! The loop itself decides nothing about a pass: [`next_delay`] is the
//! error policy, a pure function of the outcome and the failure streak.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::agent::Agent;
use crate::applied::write_atomically;
use crate::config::Config;
use crate::outbox::{DEFAULT_BOUND, Outbox};
use crate::report::{Outcome, Report};

/// Longest wait after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// First wait after a failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);

/// When to run the next pass: the interval (±10 % jitter from `jitter`,
/// a number in 0..1) after success or a refusal, and 5 s, 10 s, 20 s … up
/// to the cap after consecutive failures.
pub fn next_delay(outcome: Outcome, failures: u32, interval: Duration, jitter: f64) -> Duration {
    if outcome == Outcome::Failed {
        let exp = FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        return exp.min(MAX_BACKOFF).min(interval.max(FIRST_BACKOFF));
    }
    let spread = interval.as_secs_f64() * 0.1 * (jitter.clamp(0.0, 1.0) * 2.0 - 1.0);
    Duration::from_secs_f64((interval.as_secs_f64() + spread).max(1.0))
}

/// Save the report as the last pass and queue it for the status service.
pub fn record(state_dir: &Path, report: &Report) {
    let bytes = serde_json::to_vec_pretty(report).expect("a report is plain data");
    if let Err(e) = write_atomically(&state_dir.join("last_pass.json"), &bytes) {
        tracing::error!(error = %e, "Cannot write last_pass.json.");
    }
    if let Err(e) = Outbox::new(state_dir, DEFAULT_BOUND).push(report) {
        tracing::error!(error = %e, "Cannot queue the report in the outbox.");
    }
}

/// The last pass's report, if any.
pub fn last_pass(state_dir: &Path) -> Option<Report> {
    let bytes = std::fs::read(state_dir.join("last_pass.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A pseudo-random number in 0..1 from the clock (jitter needs no crypto).
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos % 1000) as f64 / 1000.0
}

/// Fingerprint of the config file and the trust directory, to notice edits.
fn fingerprint(
    config_path: &Path,
    trust_dir: &Path,
) -> Vec<(PathBuf, Option<std::time::SystemTime>, u64)> {
    let mut out = Vec::new();
    let mut add = |p: PathBuf| {
        let meta = std::fs::metadata(&p).ok();
        out.push((
            p,
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.map(|m| m.len()).unwrap_or(0),
        ));
    };
    add(config_path.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(trust_dir) {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        paths.into_iter().for_each(&mut add);
    }
    out
}

/// Run until SIGTERM or Ctrl-C. Returns the exit code.
pub async fn run(config_path: PathBuf) -> i32 {
    let mut agent = match Config::load(&config_path)
        .map_err(|e| e.to_string())
        .and_then(|c| Agent::new(c).map_err(|e| e.to_string()))
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut seen = fingerprint(&config_path, &agent.config.trust_dir);
    let mut failures: u32 = 0;
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen for SIGTERM: {e}");
                return 1;
            }
        };
    tracing::info!(store = %agent.config.store, interval_secs = agent.config.interval_secs, "Reconciler started.");
    loop {
        let now = fingerprint(&config_path, &agent.config.trust_dir);
        if now != seen {
            match Config::load(&config_path)
                .map_err(|e| e.to_string())
                .and_then(|c| Agent::new(c).map_err(|e| e.to_string()))
            {
                Ok(a) => {
                    tracing::info!(store = %a.config.store, "Config or trust keys changed; reloaded.");
                    agent = a;
                }
                Err(e) => {
                    tracing::error!(error = %e, "Config or trust keys changed but are invalid; keeping the previous ones.")
                }
            }
            seen = fingerprint(&config_path, &agent.config.trust_dir);
        }
        let (report, _) = agent.pass(chrono::Utc::now(), true).await;
        record(&agent.config.state_dir, &report);
        failures = if report.outcome == Outcome::Failed {
            failures + 1
        } else {
            0
        };
        let delay = next_delay(
            report.outcome,
            failures,
            Duration::from_secs(agent.config.interval_secs),
            jitter(),
        );
        tracing::info!(
            outcome = report.outcome.as_str(),
            next_in_secs = delay.as_secs(),
            "Pass finished."
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = terminate.recv() => {
                tracing::info!("SIGTERM: stopping after the pass.");
                return 0;
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("Interrupted: stopping after the pass.");
                return 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let interval = Duration::from_secs(3600);
        let d: Vec<u64> = (1..=10)
            .map(|f| next_delay(Outcome::Failed, f, interval, 0.5).as_secs())
            .collect();
        assert_eq!(d, [5, 10, 20, 40, 80, 160, 320, 640, 900, 900]);
        // Never longer than the interval itself.
        assert_eq!(
            next_delay(Outcome::Failed, 9, Duration::from_secs(60), 0.5).as_secs(),
            60
        );
    }

    #[test]
    fn success_waits_the_interval_with_jitter() {
        let i = Duration::from_secs(100);
        assert_eq!(next_delay(Outcome::Converged, 0, i, 0.5).as_secs(), 100);
        assert_eq!(next_delay(Outcome::NoChange, 0, i, 0.0).as_secs(), 90);
        assert_eq!(next_delay(Outcome::Refused, 0, i, 1.0).as_secs(), 110);
    }
}
