//! `fleet-status serve`: open and migrate the database, load the pinned
//! release keys, start the fleet repo fetch loop, bind, announce the bound
//! address, serve until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use release::root::Anchor;
use release::source::{Credentials, Mirror};
use release::trust::{KeyError, TrustedKeys};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::api::{self, AppState, Metrics};
use crate::desired;
use crate::store::{self, StoreError};

/// What `serve` needs; built by the binary from its flags.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// `host:port`; port 0 picks a free port.
    pub listen: String,
    pub database_url: String,
    /// The fleet repo; without it no desired revisions are known.
    pub repo_url: Option<String>,
    pub branch: String,
    /// A minisign public key file or a directory of `*.pub`.
    pub pubkey: Option<PathBuf>,
    /// A pinned trust root file (instead of `pubkey`).
    pub root: Option<PathBuf>,
    /// Where the bare mirror of the fleet repo lives.
    pub state_dir: PathBuf,
    /// HTTPS token (file) or SSH deploy key for a private fleet repo.
    pub git_token_file: Option<PathBuf>,
    pub git_ssh_key_file: Option<PathBuf>,
    pub fetch_interval: Duration,
    pub hook_secret_file: Option<PathBuf>,
    /// The reconcilers' pass interval: offline after three without a report.
    pub report_interval: Duration,
    /// Releases expiring within this many days are `stale`.
    pub stale_within_days: i64,
    /// Reports older than this many days are deleted (0 keeps them all).
    pub retain_reports_days: i64,
    /// A web address with `{commit}` (`https://git.example.com/acme/fleet/-/commit/{commit}`):
    /// the dashboard links commit ids to it.
    pub commit_url_template: Option<String>,
    /// Where alert events are posted (DESIGN.md §13); none: gauges only.
    pub alert_webhook: Option<String>,
    /// How often alert conditions are evaluated.
    pub alert_interval: Duration,
}

/// Why the server could not start or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Database(#[from] StoreError),
    #[error("reading the release public key(s): {0}")]
    Keys(#[from] KeyError),
    #[error("--repo-url needs --pubkey or --root: the service verifies every release it reports")]
    NoPubkey,
    #[error("reading hook secret file {path}: {source}")]
    HookSecret {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("hook secret file {0} is empty")]
    EmptyHookSecret(PathBuf),
    #[error("reading Git token file {path}: {source}")]
    GitToken {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("give --git-token-file or --git-ssh-key-file, not both")]
    TwoGitCredentials,
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "--commit-url-template {0:?}: write an http:// or https:// address containing {{commit}}"
    )]
    CommitUrlTemplate(String),
    #[error("--alert-webhook {0:?}: write an http:// or https:// address")]
    AlertWebhook(String),
}

/// Run the server until a shutdown signal. `on_listening` is called once
/// with the bound address, before the first request is accepted.
pub async fn serve(
    opts: ServeOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let keys = match (&opts.repo_url, &opts.pubkey, &opts.root) {
        (_, _, Some(pin)) => Some(Anchor::load_pin(pin)?),
        (Some(_), None, None) => return Err(ServeError::NoPubkey),
        (_, Some(p), None) if p.is_dir() => Some(Anchor::Keys(TrustedKeys::load_dir(p)?)),
        (_, Some(p), None) => Some(Anchor::Keys(TrustedKeys::from_keys(vec![
            TrustedKeys::load_file(p)?,
        ]))),
        (None, None, None) => None,
    };
    let hook_secret = match &opts.hook_secret_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ServeError::HookSecret {
                path: path.clone(),
                source,
            })?;
            let secret = text.trim().as_bytes().to_vec();
            if secret.is_empty() {
                return Err(ServeError::EmptyHookSecret(path.clone()));
            }
            Some(Arc::new(secret))
        }
    };
    let credentials = match (&opts.git_token_file, &opts.git_ssh_key_file) {
        (Some(_), Some(_)) => return Err(ServeError::TwoGitCredentials),
        (Some(path), None) => Credentials::Token(
            std::fs::read_to_string(path)
                .map_err(|source| ServeError::GitToken {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_owned(),
        ),
        (None, Some(key)) => Credentials::SshKey(key.clone()),
        (None, None) => Credentials::None,
    };
    let commit_url_template = match &opts.commit_url_template {
        None => None,
        Some(t) if commit_url_template_ok(t) => Some(Arc::<str>::from(t.as_str())),
        Some(t) => return Err(ServeError::CommitUrlTemplate(t.clone())),
    };
    if let Some(url) = &opts.alert_webhook
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ServeError::AlertWebhook(url.clone()));
    }
    // libgit2 hashes every object it reads again by default. The fleet
    // repo's objects were hashed when their pack was indexed at the fetch,
    // and every release read is checked against its minisign signature, so
    // a second SHA-1 (with collision detection) of each one only slows the
    // scan of a change: a fifth of a 10,000-store wake (ADR 48).
    git2::opts::strict_hash_verification(false);
    let db = store::open(&opts.database_url).await?;
    info!("Database open and migrated.");
    let (desired_changed, _) = watch::channel(0u64);
    let (stop, stopping) = watch::channel(false);
    let state = AppState {
        store: db.clone(),
        desired_changed,
        stopping,
        fetch_now: Arc::new(Notify::new()),
        hook_secret,
        report_interval: chrono::Duration::from_std(opts.report_interval)
            .unwrap_or(chrono::Duration::seconds(60)),
        stale_within: chrono::Duration::days(opts.stale_within_days),
        metrics: Arc::new(Metrics::default()),
        commit_url_template,
        actions: Default::default(),
        clock: crate::api::Clock::system(),
        rollouts: Default::default(),
        alert_counts: Default::default(),
        scanned: Default::default(),
        known_keys: Default::default(),
        relay: opts.repo_url.as_ref().map(|url| {
            Arc::new(api::Relay::new(Mirror::new(
                &opts.state_dir,
                url,
                &opts.branch,
                Credentials::None,
                Duration::from_secs(120),
            )))
        }),
    };
    // Replicas on one PostgreSQL (DESIGN.md §13): one fetch at a time,
    // and another replica's fetch wakes this one's long-polls and fetch.
    let cluster = crate::cluster::Cluster::for_url(&opts.database_url).map(Arc::new);
    let replicas = cluster.as_ref().map(|c| {
        let state = state.clone();
        tokio::spawn(crate::cluster::listen(
            opts.database_url.clone(),
            c.id().to_owned(),
            {
                let state = state.clone();
                move || {
                    state.desired_changed.send_modify(|g| *g += 1);
                    state.fetch_now.notify_one();
                }
            },
            move |store: Option<&str>| match store {
                Some(s) => state.actions.wake(s),
                None => state.actions.wake_all(),
            },
        ))
    });
    let fetcher = match (&opts.repo_url, keys) {
        (Some(url), Some(keys)) => Some(tokio::spawn(fetch_loop(
            state.clone(),
            cluster.clone(),
            FetchConfig {
                url: url.clone(),
                branch: opts.branch.clone(),
                state_dir: opts.state_dir.clone(),
                interval: opts.fetch_interval,
                anchor: keys,
                credentials,
            },
        ))),
        _ => {
            warn!("No --repo-url: desired revisions are unknown.");
            None
        }
    };
    let pruner = tokio::spawn(housekeeping(db.clone(), opts.retain_reports_days));
    let alerter = tokio::spawn(crate::alerts::run(
        state.clone(),
        opts.alert_webhook.clone(),
        opts.alert_interval,
        state.alert_counts.clone(),
        cluster.clone(),
        fetcher.is_some(),
    ));
    let listener = TcpListener::bind(&opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: opts.listen.clone(),
        source,
    })?;
    on_listening(addr);
    info!(%addr, "fleet-status listening on {addr}.");
    // Every request in a span with its method and URI, and the store once
    // a node's signature is verified (`api::reports`); a line when it
    // completes at DEBUG.
    let app = api::router(state).layer(
        tower_http::trace::TraceLayer::new_for_http().make_span_with(
            |req: &axum::http::Request<axum::body::Body>| {
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    uri = %req.uri(),
                    store = tracing::field::Empty,
                )
            },
        ),
    );
    wire::serve::serve_http1(listener, app, None, async move {
        wire::serve::shutdown_signal().await;
        // Long-polls answer now rather than hold the stop up.
        stop.send_replace(true);
    })
    .await;
    if let Some(f) = fetcher {
        f.abort();
    }
    if let Some(r) = replicas {
        r.abort();
    }
    pruner.abort();
    alerter.abort();
    if let Err(e) = db.close().await {
        warn!(error = %e, "Closing the database failed.");
    }
    info!("fleet-status stopped.");
    Ok(())
}

/// A commit link template must be a web address (no `javascript:`) with
/// the `{commit}` placeholder.
fn commit_url_template_ok(t: &str) -> bool {
    (t.starts_with("https://") || t.starts_with("http://")) && t.contains("{commit}")
}

#[derive(Debug)]
struct FetchConfig {
    url: String,
    branch: String,
    state_dir: PathBuf,
    interval: Duration,
    /// What the service pins: a trust root, or release keys.
    anchor: Anchor,
    credentials: Credentials,
}

/// What one fetch found.
enum Fetch {
    /// The same commit as last time and no release has expired since:
    /// the recorded rows still hold.
    Unchanged,
    Scanned {
        commit: String,
        scan: desired::Scan,
        /// How long the Git fetch and the scan took, for the log.
        took: (Duration, Duration),
    },
}

/// The last scan: its commit and when its verdicts must be redone (the
/// earliest expiry of a release that verified).
type LastScan = Option<(String, Option<i64>)>;

fn fetch_and_scan(cfg: &FetchConfig, last: &LastScan) -> Result<Fetch, desired::ScanError> {
    let mirror = Mirror::new(
        &cfg.state_dir,
        &cfg.url,
        &cfg.branch,
        cfg.credentials.clone(),
        Duration::from_secs(120),
    );
    let started = std::time::Instant::now();
    let fetched = mirror.fetch()?;
    let fetch_took = started.elapsed();
    if let Some(w) = &fetched.warning {
        warn!(warning = %w, "The Git mirror needed a rebuild; see the warning.");
    }
    let now = chrono::Utc::now();
    if let Some((commit, recheck_at)) = last
        && *commit == fetched.commit
        && recheck_at.is_none_or(|t| now.timestamp() < t)
    {
        return Ok(Fetch::Unchanged);
    }
    // `Mirror` keeps its bare repo in `<state_dir>/mirror.git`.
    let scan = desired::read_stores(
        &mirror,
        &cfg.state_dir.join("mirror.git"),
        &fetched.commit,
        &cfg.anchor,
        &cfg.state_dir,
        now,
    )?;
    Ok(Fetch::Scanned {
        commit: fetched.commit,
        scan,
        took: (fetch_took, started.elapsed() - fetch_took),
    })
}

/// Fetch every `interval`, or at once when the hook asks; record each
/// store's desired release and wake the long-polls.
async fn fetch_loop(
    state: AppState,
    cluster: Option<Arc<crate::cluster::Cluster>>,
    cfg: FetchConfig,
) {
    let cfg = Arc::new(cfg);
    let mut last: LastScan = None;
    loop {
        // Other replicas may be fetching: wait for the lock, and keep it
        // until what this fetch found is recorded.
        let mut lock = match &cluster {
            None => None,
            Some(c) => match c.lock_fetch().await {
                Ok(l) => Some(l),
                Err(e) => {
                    state.metrics.fetch_errors.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "Cannot take the fetch lock; retrying later.");
                    tokio::select! {
                        () = tokio::time::sleep(cfg.interval.min(Duration::from_secs(10))) => {}
                        () = state.fetch_now.notified() => {}
                    }
                    continue;
                }
            },
        };
        let (c, l) = (cfg.clone(), last.clone());
        let result = tokio::task::spawn_blocking(move || fetch_and_scan(&c, &l)).await;
        state.metrics.fetches.fetch_add(1, Ordering::Relaxed);
        let failed = match result {
            Ok(Ok(Fetch::Unchanged)) => None,
            Ok(Ok(Fetch::Scanned { commit, scan, took })) => {
                // Wake first (ADR 54): a woken poll answers from the scan's
                // own rows and fetches from the relay, neither of which
                // waits for the database. Should recording fail, the next
                // fetch scans and records again; until then the dashboard
                // shows the revisions before.
                if let Some(relay) = &state.relay {
                    relay.set_commit(&commit);
                }
                state.scanned.set(&commit, &scan.rows);
                state.desired_changed.send_modify(|g| *g += 1);
                let recording = std::time::Instant::now();
                match state.store.set_desired(&scan.rows).await {
                    Ok(()) => {
                        if let Ok(mut r) = state.rollouts.write() {
                            *r = std::sync::Arc::new(scan.rollouts);
                        }
                        let rows = &scan.rows;
                        let (version, expires) =
                            scan.root.map_or((0, 0), |r| (r.version, r.expires_at));
                        state
                            .metrics
                            .trust_root_version
                            .store(version, Ordering::Relaxed);
                        state
                            .metrics
                            .trust_root_expires_at
                            .store(expires, Ordering::Relaxed);
                        info!(
                            %commit,
                            stores = rows.len(),
                            fetch_ms = took.0.as_millis() as u64,
                            verify_ms = took.1.as_millis() as u64,
                            record_ms = recording.elapsed().as_millis() as u64,
                            "Fleet repo fetched; desired revisions recorded."
                        );
                        let recheck_at = rows
                            .iter()
                            .filter(|r| r.valid)
                            .filter_map(|r| r.expires_at)
                            .min();
                        last = Some((commit, recheck_at));
                        if let Some(lock) = lock.as_mut()
                            && let Err(e) = lock.notify().await
                        {
                            warn!(error = %e, "Cannot tell the other replicas about this fetch; they see it at their next one.");
                        }
                        None
                    }
                    Err(e) => Some(format!("recording desired revisions: {e}")),
                }
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("the fetch task died: {e}")),
        };
        if let Some(lock) = lock {
            lock.release().await;
        }
        if let Some(error) = failed {
            state.metrics.fetch_errors.fetch_add(1, Ordering::Relaxed);
            warn!(url = %cfg.url, %error, "Fetching the fleet repo failed; retrying later.");
        }
        tokio::select! {
            () = tokio::time::sleep(cfg.interval) => {}
            () = state.fetch_now.notified() => {}
        }
    }
}

/// Every minute, forget nonces older than twice the allowed skew (a
/// request that old fails the timestamp check before its nonce is looked
/// at) and reports older than the retention.
async fn housekeeping(db: std::sync::Arc<dyn crate::store::Store>, retain_reports_days: i64) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let now = chrono::Utc::now().timestamp();
        if let Err(e) = db
            .forget_nonces(now - 2 * crate::node_auth::MAX_SKEW_SECS)
            .await
        {
            warn!(error = %e, "Forgetting old nonces failed; retrying in a minute.");
        }
        if retain_reports_days > 0 {
            match db.forget_reports(now - retain_reports_days * 86_400).await {
                Ok(0) => {}
                Ok(n) => info!(deleted = n, retain_reports_days, "Old reports deleted."),
                Err(e) => warn!(error = %e, "Deleting old reports failed; retrying in a minute."),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_url_templates() {
        assert!(commit_url_template_ok(
            "https://git.example.com/acme/fleet/-/commit/{commit}"
        ));
        assert!(!commit_url_template_ok(
            "https://git.example.com/acme/fleet"
        ));
        assert!(!commit_url_template_ok("javascript:alert('{commit}')"));
    }
}
