//! The daemon loop of `fleet-reconciler run`: a pass every `interval_secs`
//! with jitter, exponential backoff (capped) after failures, the config and
//! trust directory reloaded when they change, and a clean stop on SIGTERM.
//!
//! The loop itself decides nothing about a pass: [`next_delay`] is the
//! error policy, a pure function of the outcome and the failure streak.
//!
//! Under systemd (`Type=notify`) it reports `READY=1` once set up, pings the
//! watchdog while it waits and before each pass, and bounds every pass by
//! [`PASS_TIMEOUT`], so a hung pass is a watchdog restart, not a silent stall.
//! Edits to the config file or the trust directory (seen through `notify`)
//! wake it at once: the next pass runs with the reloaded files.
//!
//! With a `status_url` and an enrolled node, two tasks run beside the
//! passes ([`delivery_loop`], [`long_poll_loop`]): one delivers the report
//! outbox after every pass and retries with backoff while the service is
//! unreachable; the other long-polls the service for a newer revision and
//! wakes the loop for an immediate pass, so a signed change reaches the
//! store in seconds while the store still only makes outbound calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::agent::Agent;
use crate::config::Config;
use crate::outbox::Outbox;
use crate::status_client::{StatusClient, StatusError};
use release::applied::write_atomically;
use wire::desired::ActionKind;
use wire::report::{Outcome, Report};

/// Longest wait after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// First wait after a failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Longest a pass may take before it is abandoned and counted as failed.
pub const PASS_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest wait between tries to reach the status service.
pub const MAX_STATUS_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// How long one long-poll asks the service to hold the request: under the
/// 60 s idle timeout of common proxies.
pub const LONG_POLL_WAIT: Duration = Duration::from_secs(50);

/// Tell systemd something; a no-op when not run by systemd.
fn sd(state: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(state)
    {
        tracing::warn!(error = %e, "Cannot notify systemd.");
    }
}

/// Watch the config file's directory and the trust directory; each event
/// sends a unit on the channel. `None` when watching is not possible (the
/// loop then still notices edits by fingerprint before each pass).
fn watch(
    config_path: &Path,
    trust_dir: &Path,
) -> Option<(
    notify::RecommendedWatcher,
    tokio::sync::mpsc::UnboundedReceiver<()>,
)> {
    use notify::Watcher as _;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })
    .map_err(|e| tracing::warn!(error = %e, "Cannot watch the config; edits are noticed before each pass."))
    .ok()?;
    let config_dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for dir in [config_dir, trust_dir] {
        if let Err(e) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "Cannot watch a directory; edits are noticed before each pass.");
        }
    }
    Some((watcher, rx))
}

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

/// Save the report as the last pass and queue it for the status service
/// (keeping at most `outbox_bound` reports).
pub fn record(state_dir: &Path, outbox_bound: usize, report: &Report) {
    let bytes = serde_json::to_vec_pretty(report).expect("a report is plain data");
    if let Err(e) = write_atomically(&state_dir.join("last_pass.json"), &bytes) {
        tracing::error!(error = %e, "Cannot write last_pass.json.");
    }
    if let Err(e) = Outbox::new(state_dir, outbox_bound).push(report) {
        tracing::error!(error = %e, "Cannot queue the report in the outbox.");
    }
}

/// The wait before the next try to reach the status service after
/// `failures` failed ones: 5 s, 10 s, 20 s … up to [`MAX_STATUS_BACKOFF`].
pub fn status_backoff(failures: u32) -> Duration {
    next_delay(Outcome::Failed, failures.max(1), MAX_STATUS_BACKOFF, 0.5)
}

/// The client of an enrolled node, or `None` (logged once per streak) when
/// the node is not enrolled or its key is unusable.
fn client_or_log(config: &Config, quiet: &mut bool) -> Option<StatusClient> {
    match StatusClient::open(&config.state_dir, config.status_url.as_deref()) {
        Ok(c) => {
            *quiet = false;
            Some(c)
        }
        Err(e) => {
            if !*quiet {
                match e {
                    StatusError::NotEnrolled { .. } => {
                        tracing::warn!(
                            "Not enrolled with the status service: reports stay queued. Run `fleet-reconciler enroll`."
                        )
                    }
                    e => {
                        tracing::error!(error = %e, "Cannot use the node key: reports stay queued.")
                    }
                }
                *quiet = true;
            }
            None
        }
    }
}

/// Deliver the outbox whenever `new_report` is notified, retrying with
/// backoff while the service is unreachable. Never returns.
#[tracing::instrument(name = "delivery", skip_all, fields(store = %config.store))]
pub async fn delivery_loop(config: Config, new_report: Arc<Notify>) {
    let outbox = Outbox::new(&config.state_dir, config.outbox_max_reports);
    let mut failures: u32 = 0;
    let mut quiet = false;
    loop {
        let Some(client) = client_or_log(&config, &mut quiet) else {
            // Enrollment may happen while the daemon runs: look again at
            // the next report, or in a minute.
            tokio::select! {
                () = new_report.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            continue;
        };
        let d = client.deliver(&outbox).await;
        if d.delivered > 0 || d.rejected > 0 {
            tracing::info!(delivered = d.delivered, rejected = d.rejected, pending = d.pending, url = %client.url(), "Reports delivered to the status service.");
        }
        match d.error {
            Some(error) => {
                failures += 1;
                let wait = status_backoff(failures);
                tracing::warn!(pending = d.pending, retry_in_secs = wait.as_secs(), %error, "Report delivery failed; the reports stay queued.");
                tokio::time::sleep(wait).await;
            }
            None => {
                if failures > 0 {
                    tracing::info!(failures, "The status service is reachable again.");
                }
                failures = 0;
                new_report.notified().await;
            }
        }
    }
}

/// Operator actions (DESIGN.md §13) the long-poll got: the `reconcile`
/// ones wait here for the next pass, which names them in its report.
#[derive(Debug, Clone, Default)]
pub struct Requested(Arc<std::sync::Mutex<Vec<u64>>>);

impl Requested {
    fn push(&self, id: u64) {
        let mut ids = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// The ids a pass starting now answers; they are no longer waiting.
    pub fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Action ids handled lately, so that one handed out again (the service
/// repeats an action until it sees the answer) is not done twice. Shared
/// by the long-poll and the bundle tasks it starts.
#[derive(Debug, Clone, Default)]
struct Handled(Arc<std::sync::Mutex<std::collections::VecDeque<u64>>>);

impl Handled {
    /// Ids remembered; older ones are forgotten.
    const KEEP: usize = 64;

    fn ids(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<u64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True, and `id` remembered, the first time `id` is seen.
    fn first_time(&self, id: u64) -> bool {
        let mut ids = self.ids();
        if ids.contains(&id) {
            return false;
        }
        if ids.len() == Self::KEEP {
            ids.pop_front();
        }
        ids.push_back(id);
        true
    }

    /// Forget `id`, so that it is done when the service repeats it.
    fn forget(&self, id: u64) {
        self.ids().retain(|h| *h != id);
    }
}

/// Collect a support bundle and upload it as the answer to action `id`.
/// Runs beside the passes; a failure is logged and the service hands the
/// action out again later.
async fn collect_bundle(config_path: PathBuf, state_dir: PathBuf, id: u64) -> bool {
    let now = chrono::Utc::now();
    let opts = crate::diagnose::DiagnoseOptions {
        config_path,
        out: state_dir.join(format!("support-bundle-{id}.tar.gz")),
        // systemd sets INVOCATION_ID: the journal is the unit's.
        journal_unit: std::env::var_os("INVOCATION_ID").map(|_| "fleet-reconciler".to_owned()),
        now,
    };
    let out = opts.out.clone();
    let written = tokio::task::spawn_blocking(move || crate::diagnose::write_bundle(&opts)).await;
    let result = match written {
        Ok(Ok(bundle)) => crate::diagnose::upload(&bundle, Some(id))
            .await
            .map(|u| (u, bundle.bytes))
            .map_err(|e| e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the bundle task failed: {e}")),
    };
    let _ = std::fs::remove_file(&out);
    match result {
        Ok((u, bytes)) => {
            tracing::info!(action = id, bundle = %u.id, bytes, "Support bundle collected and uploaded, as an operator asked.");
            true
        }
        Err(error) => {
            tracing::warn!(action = id, %error, "Could not collect or upload the support bundle an operator asked for; the status service will ask again.");
            false
        }
    }
}

/// Long-poll the status service for a revision newer than the applied
/// one, or an operator action; notify `wake` when a revision is announced
/// or a pass is asked for, and collect asked-for support bundles. Never
/// returns.
#[tracing::instrument(name = "long_poll", skip_all, fields(store = %config.store))]
pub async fn long_poll_loop(
    config: Config,
    config_path: PathBuf,
    wake: Arc<Notify>,
    requested: Requested,
) {
    let mut announced: Option<u64> = None;
    let mut failures: u32 = 0;
    let mut quiet = false;
    let handled = Handled::default();
    loop {
        let Some(client) = client_or_log(&config, &mut quiet) else {
            tokio::time::sleep(Duration::from_secs(60)).await;
            continue;
        };
        let applied = release::applied::read(&config.state_dir)
            .ok()
            .flatten()
            .map(|a| a.revision);
        // Once announced, a revision is not announced again while the
        // pass it woke is still applying it.
        let after = applied.max(announced);
        match client.desired(after, LONG_POLL_WAIT).await {
            Ok(d) => {
                failures = 0;
                if d.changed {
                    tracing::info!(
                        revision = d.desired_revision,
                        "The status service announced a newer revision; passing now."
                    );
                    announced = d.desired_revision;
                    wake.notify_one();
                }
                for a in d.actions {
                    if !handled.first_time(a.id) {
                        continue;
                    }
                    match a.kind {
                        ActionKind::Reconcile => {
                            tracing::info!(
                                action = a.id,
                                "An operator asked for a pass; passing now."
                            );
                            requested.push(a.id);
                            wake.notify_one();
                        }
                        ActionKind::SupportBundle => {
                            tracing::info!(
                                action = a.id,
                                "An operator asked for a support bundle; collecting it."
                            );
                            let (path, dir, handled) = (
                                config_path.clone(),
                                config.state_dir.clone(),
                                handled.clone(),
                            );
                            tokio::spawn(async move {
                                if !collect_bundle(path, dir, a.id).await {
                                    handled.forget(a.id);
                                }
                            });
                        }
                    }
                }
            }
            Err(e) => {
                failures += 1;
                let wait = status_backoff(failures);
                if failures == 1 {
                    tracing::warn!(error = %e, retry_in_secs = wait.as_secs(), "Long-poll to the status service failed; passes keep their interval.");
                } else {
                    tracing::debug!(error = %e, failures, retry_in_secs = wait.as_secs(), "Long-poll failed again.");
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The tasks that talk to the status service, restarted with the config.
#[derive(Debug)]
struct StatusLinks {
    new_report: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl StatusLinks {
    fn start(
        config: &Config,
        config_path: &Path,
        wake: &Arc<Notify>,
        requested: &Requested,
    ) -> StatusLinks {
        let new_report = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        let enrolled = crate::status_client::enrollment(&config.state_dir)
            .ok()
            .flatten()
            .is_some();
        if config.status_url.is_some() || enrolled {
            tasks.push(tokio::spawn(delivery_loop(
                config.clone(),
                new_report.clone(),
            )));
            if config.long_poll {
                tasks.push(tokio::spawn(long_poll_loop(
                    config.clone(),
                    config_path.to_path_buf(),
                    wake.clone(),
                    requested.clone(),
                )));
            }
        }
        StatusLinks { new_report, tasks }
    }

    /// A report was queued: deliver it.
    fn reported(&self) {
        self.new_report.notify_one();
    }
}

impl Drop for StatusLinks {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
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
    let mut watcher = watch(&config_path, &agent.config.trust_dir);
    let wake = Arc::new(Notify::new());
    let requested = Requested::default();
    let mut links = StatusLinks::start(&agent.config, &config_path, &wake, &requested);
    let mut failures: u32 = 0;
    let watchdog = sd_notify::watchdog_enabled();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen for SIGTERM: {e}");
                return 1;
            }
        };
    tracing::info!(store = %agent.config.store, interval_secs = agent.config.interval_secs, "Reconciler started.");
    sd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("started"),
    ]);
    loop {
        sd(&[sd_notify::NotifyState::Watchdog]);
        let now = fingerprint(&config_path, &agent.config.trust_dir);
        if now != seen {
            match Config::load(&config_path)
                .map_err(|e| e.to_string())
                .and_then(|c| Agent::new(c).map_err(|e| e.to_string()))
            {
                Ok(a) => {
                    tracing::info!(store = %a.config.store, "Config or trust keys changed; reloaded.");
                    if a.config.trust_dir != agent.config.trust_dir {
                        watcher = watch(&config_path, &a.config.trust_dir);
                    }
                    if a.config != agent.config {
                        drop(links);
                        links = StatusLinks::start(&a.config, &config_path, &wake, &requested);
                    }
                    agent = a;
                }
                Err(e) => {
                    tracing::error!(error = %e, "Config or trust keys changed but are invalid; keeping the previous ones.")
                }
            }
            seen = fingerprint(&config_path, &agent.config.trust_dir);
        }
        // The operator actions this pass answers: asked for before it started.
        let answering = requested.take();
        let mut report =
            match tokio::time::timeout(PASS_TIMEOUT, agent.pass(chrono::Utc::now(), true)).await {
                Ok((report, _)) => report,
                Err(_) => {
                    tracing::error!(
                        timeout_secs = PASS_TIMEOUT.as_secs(),
                        "A pass took too long and was abandoned."
                    );
                    let started = chrono::Utc::now()
                        - chrono::Duration::from_std(PASS_TIMEOUT).unwrap_or_default();
                    let mut r =
                        crate::agent::blank_report(&agent.config.store, started, Outcome::Failed);
                    r.duration_ms = PASS_TIMEOUT.as_millis() as u64;
                    r.errors.push(format!(
                        "the pass took over {} s and was abandoned",
                        PASS_TIMEOUT.as_secs()
                    ));
                    r
                }
            };
        report.actions = answering;
        record(
            &agent.config.state_dir,
            agent.config.outbox_max_reports,
            &report,
        );
        links.reported();
        sd(&[sd_notify::NotifyState::Status(report.outcome.as_str())]);
        failures = if report.outcome == Outcome::Failed {
            failures + 1
        } else {
            0
        };
        let mut delay = next_delay(
            report.outcome,
            failures,
            Duration::from_secs(agent.config.interval_secs),
            jitter(),
        );
        // A held release applies on time: wake when it may (DESIGN.md §12).
        if let Some(until) = report.waiting_until {
            let left = (until - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_secs(1));
            delay = delay.min(left);
        }
        tracing::info!(
            outcome = report.outcome.as_str(),
            next_in_secs = delay.as_secs(),
            "Pass finished."
        );
        let wake_at = tokio::time::Instant::now() + delay;
        loop {
            // Ping the watchdog at half its period while waiting.
            let tick = watchdog
                .map(|w| w / 2)
                .unwrap_or(delay)
                .min(delay)
                .max(Duration::from_millis(100));
            let changed = async {
                match watcher.as_mut() {
                    Some((_, rx)) => {
                        rx.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake_at.min(tokio::time::Instant::now() + tick)) => {
                    sd(&[sd_notify::NotifyState::Watchdog]);
                    if tokio::time::Instant::now() >= wake_at {
                        break;
                    }
                }
                () = wake.notified() => break,
                _ = changed => {
                    // Let an editor finish writing, then pass with the new files.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if fingerprint(&config_path, &agent.config.trust_dir) != seen {
                        break;
                    }
                }
                _ = terminate.recv() => {
                    tracing::info!("SIGTERM: stopping.");
                    sd(&[sd_notify::NotifyState::Stopping]);
                    return 0;
                }
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("Interrupted: stopping.");
                    sd(&[sd_notify::NotifyState::Stopping]);
                    return 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_is_done_once_until_forgotten_and_only_the_newest_are_kept() {
        let h = Handled::default();
        assert!(h.first_time(7));
        assert!(!h.first_time(7), "handed out again: not done twice");
        h.forget(7);
        assert!(h.first_time(7), "a failed bundle is done when repeated");
        for id in 100..100 + Handled::KEEP as u64 {
            assert!(h.first_time(id));
        }
        assert!(h.first_time(7), "the oldest id was forgotten");
        assert!(!h.first_time(100 + Handled::KEEP as u64 - 1));
    }

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
