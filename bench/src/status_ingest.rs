//! `bench status-ingest`: how many signed reports per second the real
//! `fleet-status serve` ingests (DESIGN.md §8: ≥ 2,000/s on SQLite and on
//! PostgreSQL), with the raw insert rate of the same database, measured in
//! the same run, as the baseline.
//!
//! For each backend it starts the real binary on 127.0.0.1, port 0, on a
//! fresh database (a SQLite file in a temporary directory, or a uniquely
//! named PostgreSQL database that is dropped afterwards), enrolls the nodes
//! through the real path (bootstrap tokens recorded with the service's own
//! store functions, as `fleet-status token create` does, then
//! `POST /api/v1/enroll`; not timed), then sends signed
//! `POST /api/v1/reports` over keep-alive HTTP with a fixed number of
//! requests in flight, spread over the nodes, each with a fresh nonce.
//!
//! Requests are signed before the clock starts: on a real fleet each node
//! signs on its own machine, so the client's signing must not eat the
//! server's two cores. The body is a `wire::report::Report` as the
//! reconciler serializes it (nine in ten `no_change`, one in ten
//! `converged` with a few changes).
//!
//! It talks to loopback only; every loop is bounded in count and time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use ed25519_dalek::SigningKey;
use schemas::diff::{Change, EntityChange, EntityKind, FieldChange};
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use status::node_auth::{self, SignedHeaders};
use wire::report::{Outcome, Report};

/// The path every report is posted to.
const REPORTS_PATH: &str = "/api/v1/reports";

/// The budget of DESIGN.md §8.
pub const BUDGET_PER_SEC: f64 = 2000.0;

/// A database kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Options of `bench status-ingest`.
#[derive(Debug, Clone)]
pub struct StatusIngest {
    /// The `fleet-status` binary (a release build).
    pub fleet_status: PathBuf,
    pub backends: Vec<Backend>,
    /// Maintenance connection of the PostgreSQL server; a fresh database is
    /// created beside it for each measurement and dropped afterwards.
    pub postgres_url: String,
    /// Node counts to measure; the first is the main row.
    pub nodes: Vec<usize>,
    /// Reports per timed run.
    pub reports: usize,
    /// Requests in flight (and connections of the baseline).
    pub concurrency: usize,
    /// Timed runs per measurement.
    pub runs: usize,
    /// Untimed reports sent first (connections, caches, the first pages).
    pub warmup: usize,
    /// A run that takes longer than this is abandoned as a failure.
    pub run_timeout: Duration,
}

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Db {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{what}: {source}")]
    Store {
        what: String,
        #[source]
        source: status::store::StoreError,
    },
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{bin} is missing: build it with `cargo build --release -p status`")]
    NoBinary { bin: PathBuf },
    #[error("fleet-status did not announce its address (got {line:?}); log:\n{log}")]
    NoAddress { line: String, log: String },
    #[error("{what}: answered {status}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("a run did not finish within {secs} s ({done} of {total} reports)")]
    Timeout {
        secs: u64,
        done: usize,
        total: usize,
    },
    #[error("serializing a report: {0}")]
    Json(#[from] serde_json::Error),
}

type Result<T> = std::result::Result<T, IngestError>;

/// One row of results: one backend at one node count.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub backend: Backend,
    pub nodes: usize,
    pub concurrency: usize,
    pub reports: usize,
    /// Reports per second of each timed run.
    pub rates: Vec<f64>,
    /// Raw INSERTs per second, `concurrency` connections, one row per transaction.
    pub baseline: Vec<f64>,
    /// The same from one connection.
    pub baseline_one: Vec<f64>,
    /// `VmHWM` of `fleet-status` at the end, kB.
    pub peak_rss_kb: Option<u64>,
    /// CPU time (user + system) of `fleet-status` per report in the timed runs.
    pub server_cpu_us_per_report: Option<f64>,
    /// The same of every `postgres` process (all of the machine's, so
    /// only meaningful for the PostgreSQL rows).
    pub pg_cpu_us_per_report: f64,
    /// The same of this client (HTTP only: requests are signed beforehand).
    pub client_cpu_us_per_report: f64,
    pub enroll_secs: f64,
    pub body_bytes_mean: usize,
}

/// The median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

impl Measurement {
    pub fn median(&self) -> f64 {
        median(&self.rates)
    }

    pub fn passes(&self) -> bool {
        self.median() >= BUDGET_PER_SEC
    }
}

/// A Markdown table of the measurements.
pub fn to_markdown(rows: &[Measurement]) -> String {
    let mut out = String::from(
        "| backend | nodes | in flight | reports/run | runs | median reports/s | spread (min–max) | \
         baseline raw INSERT/s (same conns) | ratio | baseline, 1 conn | CPU/report: fleet-status, \
         postgres, client | peak RSS | budget | result |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n",
    );
    for m in rows {
        let (lo, hi) = min_max(&m.rates);
        let base = median(&m.baseline);
        let base1 = median(&m.baseline_one);
        let cpu = format!(
            "{}, {}, {:.0} µs",
            m.server_cpu_us_per_report
                .map(|us| format!("{us:.0}"))
                .unwrap_or_else(|| "—".into()),
            match m.backend {
                Backend::Postgres => format!("{:.0}", m.pg_cpu_us_per_report),
                Backend::Sqlite => "—".into(),
            },
            m.client_cpu_us_per_report
        );
        let shown = |v: f64| {
            if v > 0.0 {
                format!("{v:.0}")
            } else {
                "—".to_owned()
            }
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0}–{:.0} | {} | {} | {} | {} | {} | ≥ {:.0}/s | {} |\n",
            m.backend.as_str(),
            m.nodes,
            m.concurrency,
            m.reports,
            m.rates.len(),
            m.median(),
            lo,
            hi,
            shown(base),
            if base > 0.0 {
                format!("{:.2}", m.median() / base)
            } else {
                "—".to_owned()
            },
            shown(base1),
            cpu,
            m.peak_rss_kb
                .map(|kb| format!("{kb} kB"))
                .unwrap_or_else(|| "—".into()),
            BUDGET_PER_SEC,
            if m.passes() { "**pass**" } else { "**fail**" },
        ));
    }
    out
}

// ------------------------------------------------------------ databases

/// A fresh database: a SQLite file in a temporary directory, or a
/// PostgreSQL database created for this measurement.
#[derive(Debug)]
struct FreshDb {
    url: String,
    /// Maintenance URL and name of a PostgreSQL database to drop.
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl FreshDb {
    async fn new(backend: Backend, postgres_url: &str, what: &str) -> Result<FreshDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().map_err(|source| IngestError::Io {
                    what: "making a temporary directory".into(),
                    source,
                })?;
                Ok(FreshDb {
                    url: format!(
                        "sqlite://{}",
                        dir.path().join(format!("{what}.db")).display()
                    ),
                    pg: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let name = format!("bench_{what}_{}", status::tokens::nonce());
                let mut c = sqlx::PgConnection::connect(postgres_url)
                    .await
                    .map_err(|source| IngestError::Db {
                        what: format!("connecting to {postgres_url}"),
                        source,
                    })?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await
                    .map_err(|source| IngestError::Db {
                        what: format!("creating database {name}"),
                        source,
                    })?;
                let _ = c.close().await;
                let base = postgres_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(postgres_url);
                Ok(FreshDb {
                    url: format!("{base}/{name}"),
                    pg: Some((postgres_url.to_owned(), name)),
                    _dir: None,
                })
            }
        }
    }

    /// Drop the PostgreSQL database (the SQLite directory goes with `self`).
    async fn remove(self) {
        if let Some((admin, name)) = &self.pg {
            match sqlx::PgConnection::connect(admin).await {
                Ok(mut c) => {
                    if let Err(e) =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut c)
                            .await
                    {
                        eprintln!("bench status-ingest: dropping database {name}: {e}");
                    }
                    let _ = c.close().await;
                }
                Err(e) => eprintln!("bench status-ingest: dropping database {name}: {e}"),
            }
        }
    }
}

// ------------------------------------------------------------ server

/// One running `fleet-status serve`, stopped on drop.
#[derive(Debug)]
struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(bin: &Path, db_url: &str) -> Result<Server> {
        let dir = tempfile::tempdir().map_err(|source| IngestError::Io {
            what: "making a temporary directory".into(),
            source,
        })?;
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).map_err(|source| IngestError::Io {
            what: format!("creating {}", log_path.display()),
            source,
        })?;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", db_url])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|source| IngestError::Io {
                what: format!("starting {}", bin.display()),
                source,
            })?;
        match testkit::listening_addr(&mut child, Duration::from_secs(60)) {
            Ok(addr) => Ok(Server {
                child,
                base: format!("http://{addr}"),
                _dir: dir,
            }),
            Err(line) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(IngestError::NoAddress {
                    line,
                    log: std::fs::read_to_string(&log_path).unwrap_or_default(),
                })
            }
        }
    }

    fn proc_status_kb(&self, field: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// User + system CPU time so far, in clock ticks.
    fn cpu_ticks(&self) -> Option<u64> {
        pid_cpu_ticks(&self.child.id().to_string()).map(|(_, t)| t)
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 10 s.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User + system CPU time of a process, in clock ticks (100 per second on Linux).
fn pid_cpu_ticks(pid: &str) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// CPU ticks of every `postgres` process (the server and its backends)
/// and of this process.
fn other_cpu_ticks() -> (u64, u64) {
    let mut pg = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if let Some((comm, ticks)) = pid_cpu_ticks(pid)
                && comm == "postgres"
            {
                pg += ticks;
            }
        }
    }
    let me = pid_cpu_ticks("self").map(|(_, t)| t).unwrap_or(0);
    (pg, me)
}

// ------------------------------------------------------------ nodes and reports

/// An enrolled node: its key and its store.
#[derive(Debug)]
struct Node {
    key: SigningKey,
    store: String,
}

fn store_of(i: usize) -> String {
    format!("tenant-{:02}/store-{i:05}", i % 20)
}

/// A report as the reconciler serializes it: nine in ten `no_change`, one
/// in ten `converged` with eight changed prices.
fn report_body(store: &str, i: usize) -> Result<Vec<u8>> {
    let converged = i.is_multiple_of(10);
    let changes = if converged {
        (0..8)
            .map(|k| EntityChange {
                kind: EntityKind::Item,
                id: format!("item-{k:03}"),
                change: Change::Changed {
                    fields: vec![FieldChange {
                        field: format!("variations.regular-{k}.price"),
                        before: Some(serde_json::json!(1099 + k)),
                        after: Some(serde_json::json!(1199 + k)),
                    }],
                },
            })
            .collect()
    } else {
        Vec::new()
    };
    let report = Report {
        store: store.parse().expect("bench store ids are <tenant>/<store>"),
        outcome: if converged {
            Outcome::Converged
        } else {
            Outcome::NoChange
        },
        desired_revision: Some(42),
        applied_revision: Some(42),
        commit: Some("3f2c9a1b7d4e5f60718293a4b5c6d7e8f9012345".into()),
        fetched_commit: Some("9b8a7c6d5e4f30211203f4e5d6c7b8a9f0123456".into()),
        changes,
        drift: Vec::new(),
        overridden: Vec::new(),
        refusal: None,
        errors: Vec::new(),
        warnings: if i.is_multiple_of(7) {
            vec!["release expires in 20 days; sign a fresh one".into()]
        } else {
            Vec::new()
        },
        started_at: Utc::now(),
        duration_ms: 38 + (i % 50) as u64,
        reconciler_version: "0.1.0".into(),
        dropped_reports: 0,
        root_version: None,
        release_api_versions: Vec::new(),
        waiting_until: None,
        actions: Vec::new(),
        held_back: Vec::new(),
        unavailable: Vec::new(),
    };
    Ok(serde_json::to_vec(&report)?)
}

/// A signed report, ready to send.
#[derive(Debug)]
struct Prepared {
    body: Vec<u8>,
    headers: SignedHeaders,
}

fn prepare(nodes: &[Node], count: usize, offset: usize) -> Result<Vec<Prepared>> {
    let now = Utc::now();
    (0..count)
        .map(|i| {
            let node = &nodes[(offset + i) % nodes.len()];
            let body = report_body(&node.store, offset + i)?;
            let headers = node_auth::sign_request(
                &node.key,
                "POST",
                REPORTS_PATH,
                &body,
                now,
                &status::tokens::nonce(),
            );
            Ok(Prepared { body, headers })
        })
        .collect()
}

fn client(concurrency: usize) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|source| IngestError::Http {
            what: "building the HTTP client".into(),
            source,
        })
}

/// Enroll `count` fresh nodes, each for its own store.
async fn enroll(db_url: &str, base: &str, count: usize, concurrency: usize) -> Result<Vec<Node>> {
    let store = status::store::open(db_url)
        .await
        .map_err(|source| IngestError::Store {
            what: "opening the service's database".into(),
            source,
        })?;
    let now = Utc::now().timestamp();
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        // What `fleet-status token create` does, without a process per token.
        let token = status::tokens::generate(status::tokens::BOOTSTRAP_PREFIX);
        let store_id = store_of(i);
        store
            .create_bootstrap_token(&status::tokens::hash(&token), &store_id, now, now + 3600)
            .await
            .map_err(|source| IngestError::Store {
                what: format!("recording a bootstrap token for {store_id}"),
                source,
            })?;
        pending.push((token, store_id));
    }
    let _ = store.close().await;
    let http = client(concurrency)?;
    let pending = Arc::new(std::sync::Mutex::new(pending));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (http, pending, url) = (
            http.clone(),
            pending.clone(),
            format!("{base}/api/v1/enroll"),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let next = pending.lock().map(|mut p| p.pop()).unwrap_or(None);
                let Some((token, store)) = next else {
                    return Ok::<_, IngestError>(mine);
                };
                let key = SigningKey::generate(&mut rand_core::OsRng);
                let body = serde_json::json!({
                    "token": token,
                    "node_public_key": node_auth::encode_public_key(&key.verifying_key()),
                    "store": store,
                });
                let what = format!("enrolling a node for {store}");
                let r = http.post(&url).json(&body).send().await.map_err(|source| {
                    IngestError::Http {
                        what: what.clone(),
                        source,
                    }
                })?;
                let status = r.status().as_u16();
                if status != 201 {
                    let body = r.text().await.unwrap_or_default();
                    return Err(IngestError::Refused { what, status, body });
                }
                mine.push(Node { key, store });
            }
        }));
    }
    let mut nodes = Vec::with_capacity(count);
    for t in tasks {
        match t.await {
            Ok(r) => nodes.extend(r?),
            Err(e) => {
                return Err(IngestError::Io {
                    what: "an enrollment task died".into(),
                    source: std::io::Error::other(e.to_string()),
                });
            }
        }
    }
    // Deterministic order, so that consecutive requests go to different nodes.
    nodes.sort_by(|a, b| a.store.cmp(&b.store));
    Ok(nodes)
}

/// Send every prepared report with `concurrency` in flight; answers
/// reports per second.
async fn send_all(
    http: &reqwest::Client,
    base: &str,
    prepared: Vec<Prepared>,
    concurrency: usize,
    timeout: Duration,
) -> Result<f64> {
    let total = prepared.len();
    let prepared = Arc::new(prepared);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let url = format!("{base}{REPORTS_PATH}");
    let started = Instant::now();
    let deadline = started + timeout;
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (http, prepared, next, done, url) = (
            http.clone(),
            prepared.clone(),
            next.clone(),
            done.clone(),
            url.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = prepared.get(i) else {
                    return Ok::<(), IngestError>(());
                };
                if Instant::now() > deadline {
                    return Ok(());
                }
                let mut rb = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(p.body.clone());
                for (k, v) in p.headers.pairs() {
                    rb = rb.header(k, v);
                }
                let r = rb.send().await.map_err(|source| IngestError::Http {
                    what: "posting a report".into(),
                    source,
                })?;
                let status = r.status().as_u16();
                let body = r.bytes().await.map_err(|source| IngestError::Http {
                    what: "reading a report's answer".into(),
                    source,
                })?;
                if status != 201 {
                    return Err(IngestError::Refused {
                        what: "a report".into(),
                        status,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        match t.await {
            Ok(r) => r?,
            Err(e) => {
                return Err(IngestError::Io {
                    what: "a sending task died".into(),
                    source: std::io::Error::other(e.to_string()),
                });
            }
        }
    }
    let elapsed = started.elapsed();
    let done = done.load(Ordering::Relaxed);
    if done < total {
        return Err(IngestError::Timeout {
            secs: timeout.as_secs(),
            done,
            total,
        });
    }
    Ok(done as f64 / elapsed.as_secs_f64())
}

// ------------------------------------------------------------ baseline

/// `status_reports` as migrations 0001 and 0002 make it (columns and
/// indexes), per backend.
fn baseline_table(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "CREATE TABLE raw_reports (id INTEGER PRIMARY KEY AUTOINCREMENT, store TEXT NOT NULL, \
             key_id TEXT NOT NULL, received_at INTEGER NOT NULL, outcome TEXT NOT NULL, \
             desired_revision INTEGER, applied_revision INTEGER, source_commit TEXT, body TEXT NOT NULL)"
        }
        Backend::Postgres => {
            "CREATE TABLE raw_reports (id BIGSERIAL PRIMARY KEY, store TEXT NOT NULL, \
             key_id TEXT NOT NULL, received_at BIGINT NOT NULL, outcome TEXT NOT NULL, \
             desired_revision BIGINT, applied_revision BIGINT, source_commit TEXT, body TEXT NOT NULL)"
        }
    }
}

const BASELINE_INSERT: &str = "INSERT INTO raw_reports (store, key_id, received_at, outcome, \
     desired_revision, applied_revision, source_commit, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Plain INSERTs of the same rows, one transaction per row, from
/// `connections` connections; answers rows per second.
async fn baseline(
    backend: Backend,
    postgres_url: &str,
    bodies: Arc<Vec<(String, Vec<u8>)>>,
    connections: usize,
) -> Result<f64> {
    let db = FreshDb::new(backend, postgres_url, "baseline").await?;
    let result = baseline_on(backend, &db.url, bodies, connections).await;
    db.remove().await;
    result
}

macro_rules! insert_rows {
    ($pool:expr, $bodies:expr, $connections:expr) => {{
        let pool = $pool;
        let bodies: Arc<Vec<(String, Vec<u8>)>> = $bodies;
        for ddl in [
            baseline_table(BACKEND),
            "CREATE INDEX raw_reports_store ON raw_reports (store, id)",
            "CREATE INDEX raw_reports_received ON raw_reports (received_at)",
        ] {
            sqlx::query(ddl)
                .execute(&pool)
                .await
                .map_err(|source| IngestError::Db {
                    what: "creating the baseline table".into(),
                    source,
                })?;
        }
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..$connections {
            let (pool, bodies, next) = (pool.clone(), bodies.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((store, body)) = bodies.get(i) else {
                        return Ok::<(), sqlx::Error>(());
                    };
                    sqlx::query(BASELINE_INSERT)
                        .bind(store)
                        .bind("0123456789abcdef")
                        .bind(Utc::now().timestamp())
                        .bind("no_change")
                        .bind(42_i64)
                        .bind(42_i64)
                        .bind("3f2c9a1b7d4e5f60718293a4b5c6d7e8f9012345")
                        .bind(String::from_utf8_lossy(body).into_owned())
                        .execute(&pool)
                        .await?;
                }
            }));
        }
        for t in tasks {
            match t.await {
                Ok(r) => r.map_err(|source| IngestError::Db {
                    what: "a baseline INSERT".into(),
                    source,
                })?,
                Err(e) => {
                    return Err(IngestError::Io {
                        what: "a baseline task died".into(),
                        source: std::io::Error::other(e.to_string()),
                    });
                }
            }
        }
        let rate = bodies.len() as f64 / started.elapsed().as_secs_f64();
        pool.close().await;
        Ok(rate)
    }};
}

async fn baseline_on(
    backend: Backend,
    url: &str,
    bodies: Arc<Vec<(String, Vec<u8>)>>,
    connections: usize,
) -> Result<f64> {
    let connections = connections.max(1);
    let connect = |source| IngestError::Db {
        what: format!("connecting to {url}"),
        source,
    };
    match backend {
        Backend::Sqlite => {
            const BACKEND: Backend = Backend::Sqlite;
            // The service's own settings: WAL, synchronous=NORMAL, 10 s busy timeout.
            let options = url
                .parse::<SqliteConnectOptions>()
                .map_err(connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(connections as u32)
                .min_connections(connections as u32)
                .connect_with(options)
                .await
                .map_err(connect)?;
            insert_rows!(pool, bodies, connections)
        }
        Backend::Postgres => {
            const BACKEND: Backend = Backend::Postgres;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(connections as u32)
                .min_connections(connections as u32)
                .connect(url)
                .await
                .map_err(connect)?;
            insert_rows!(pool, bodies, connections)
        }
    }
}

// ------------------------------------------------------------ the measurement

/// Measure every backend at every node count.
pub async fn status_ingest(
    opts: &StatusIngest,
    progress: impl Fn(&str),
) -> Result<Vec<Measurement>> {
    if !opts.fleet_status.is_file() {
        return Err(IngestError::NoBinary {
            bin: opts.fleet_status.clone(),
        });
    }
    let mut rows = Vec::new();
    for &backend in &opts.backends {
        for (row, &nodes) in opts.nodes.iter().enumerate() {
            let db = FreshDb::new(backend, &opts.postgres_url, "status").await?;
            // The baseline does not depend on the node count: measured once.
            let result = measure(opts, backend, nodes, &db.url, row == 0, &progress).await;
            db.remove().await;
            rows.push(result?);
        }
    }
    Ok(rows)
}

async fn measure(
    opts: &StatusIngest,
    backend: Backend,
    nodes: usize,
    db_url: &str,
    with_baseline: bool,
    progress: &impl Fn(&str),
) -> Result<Measurement> {
    let server = Server::start(&opts.fleet_status, db_url)?;
    let started = Instant::now();
    let enrolled = enroll(db_url, &server.base, nodes.max(1), 16).await?;
    let enroll_secs = started.elapsed().as_secs_f64();
    progress(&format!(
        "{}: {} nodes enrolled in {enroll_secs:.1} s",
        backend.as_str(),
        enrolled.len()
    ));
    let http = client(opts.concurrency)?;
    let mut offset = 0;
    if opts.warmup > 0 {
        let warm = prepare(&enrolled, opts.warmup, offset)?;
        offset += opts.warmup;
        send_all(
            &http,
            &server.base,
            warm,
            opts.concurrency,
            opts.run_timeout,
        )
        .await?;
    }
    let mut rates = Vec::new();
    let mut body_bytes = 0;
    let mut cpu_ticks = 0;
    let mut cpu_known = true;
    let (mut pg_ticks, mut client_ticks) = (0, 0);
    for run in 0..opts.runs.max(1) {
        let prepared = prepare(&enrolled, opts.reports, offset)?;
        offset += opts.reports;
        body_bytes += prepared.iter().map(|p| p.body.len()).sum::<usize>();
        let before = server.cpu_ticks();
        let (pg_before, client_before) = other_cpu_ticks();
        let rate = send_all(
            &http,
            &server.base,
            prepared,
            opts.concurrency,
            opts.run_timeout,
        )
        .await?;
        let (pg_after, client_after) = other_cpu_ticks();
        pg_ticks += pg_after.saturating_sub(pg_before);
        client_ticks += client_after.saturating_sub(client_before);
        match (before, server.cpu_ticks()) {
            (Some(a), Some(b)) => cpu_ticks += b.saturating_sub(a),
            _ => cpu_known = false,
        }
        progress(&format!(
            "{}: {nodes} nodes, run {}: {rate:.0} reports/s",
            backend.as_str(),
            run + 1
        ));
        rates.push(rate);
    }
    let timed = opts.reports * rates.len();
    let peak_rss_kb = server.proc_status_kb("VmHWM:");
    server.stop();

    // The baseline: the same rows, plain INSERTs, in the same run.
    let bodies: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
        (0..opts.reports)
            .map(|i| {
                let store = store_of(i % nodes.max(1));
                report_body(&store, i).map(|b| (store, b))
            })
            .collect::<Result<_>>()?,
    );
    let mut base = Vec::new();
    let mut base_one = Vec::new();
    // One connection is slow on PostgreSQL (a WAL flush per row): fewer rows.
    let few: Arc<Vec<(String, Vec<u8>)>> = Arc::new(bodies.iter().take(5000).cloned().collect());
    // At most three: each needs a fresh database.
    let baseline_runs = if with_baseline {
        opts.runs.clamp(1, 3)
    } else {
        0
    };
    for run in 0..baseline_runs {
        let r = baseline(
            backend,
            &opts.postgres_url,
            bodies.clone(),
            opts.concurrency,
        )
        .await?;
        let r1 = baseline(backend, &opts.postgres_url, few.clone(), 1).await?;
        progress(&format!(
            "{}: baseline run {}: {r:.0} INSERT/s ({} conns), {r1:.0} INSERT/s (1 conn)",
            backend.as_str(),
            run + 1,
            opts.concurrency
        ));
        base.push(r);
        base_one.push(r1);
    }
    Ok(Measurement {
        backend,
        nodes,
        concurrency: opts.concurrency,
        reports: opts.reports,
        rates,
        baseline: base,
        baseline_one: base_one,
        peak_rss_kb,
        // 100 clock ticks per second: 10,000 µs per tick.
        server_cpu_us_per_report: (cpu_known && timed > 0)
            .then(|| cpu_ticks as f64 * 10_000.0 / timed as f64),
        pg_cpu_us_per_report: pg_ticks as f64 * 10_000.0 / timed.max(1) as f64,
        client_cpu_us_per_report: client_ticks as f64 * 10_000.0 / timed.max(1) as f64,
        enroll_secs,
        body_bytes_mean: body_bytes.checked_div(timed).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn report_bodies_are_reports_of_realistic_size() {
        for i in [0, 1, 7] {
            let body = report_body(&store_of(3), i).expect("serializes");
            let back: Report = serde_json::from_slice(&body).expect("a report");
            assert_eq!(back.store, store_of(3));
            assert!((300..4096).contains(&body.len()), "{} bytes", body.len());
        }
        assert!(status::tokens::is_store_id(&store_of(12_345)));
    }
}
