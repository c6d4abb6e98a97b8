//! Benchmark (not a test): the dashboard's fleet overview with 10,000
//! stores, on SQLite and on PostgreSQL, through the real server.
//!
//! For each backend: a fresh database filled through `status::store`
//! (10,000 stores in 20 tenants with verified desired revisions, a node key
//! for 95 % of them and `--reports` reports each, in a spread of outcomes),
//! an operator token for every tenant, then the real `fleet-status serve`
//! (the binary next to this example). It signs in through `POST /login`
//! and times, `--runs` times each after two warm-ups:
//!
//! - `GET /` with the cookie: the first page (100 rows) of the overview;
//! - `GET /api/v1/stores` with the bearer token: every store (no paging);
//! - `GET /api/v1/stores?per_page=100`: the API's first page;
//! - baselines in the same run: `GET /healthz` (the HTTP floor) and
//!   `Store::list_stores` called in this process (the SQL floor: the one
//!   query every overview runs, and its row decoding).
//!
//! ```sh
//! cargo build --release -p status --bins --examples
//! ./target/release/examples/bench_overview [--stores 10000] [--reports 3] [--runs 15]
//!     [--server target/release/fleet-status] [--postgres postgres://postgres@127.0.0.1:5432/postgres]
//!     [--no-postgres]
//! ```

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use sqlx::Connection as _;
use status::store::{DesiredRow, Ingested, NewReport, Node, Store};

const TENANTS: usize = 20;

struct Args {
    stores: usize,
    reports: usize,
    runs: usize,
    server: PathBuf,
    postgres: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        stores: 10_000,
        reports: 3,
        runs: 15,
        server: std::env::current_exe()?
            .parent()
            .and_then(|d| d.parent())
            .context("no target dir")?
            .join("fleet-status"),
        postgres: Some("postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(x) = args.next() {
        match x.as_str() {
            "--stores" => a.stores = args.next().context("--stores N")?.parse()?,
            "--reports" => a.reports = args.next().context("--reports N")?.parse()?,
            "--runs" => a.runs = args.next().context("--runs N")?.parse()?,
            "--server" => a.server = args.next().context("--server PATH")?.into(),
            "--postgres" => a.postgres = Some(args.next().context("--postgres URL")?),
            "--no-postgres" => a.postgres = None,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn store_id(i: usize) -> String {
    format!("tenant-{:02}/store-{i:05}", i % TENANTS)
}

/// 10,000 stores through the storage layer, as the fetch loop and the
/// report endpoint would leave them.
async fn fill(db: Arc<dyn Store>, stores: usize, reports: usize) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    let commit = "3f2c4b5a6d7e8f9012345678901234567890abcd";
    let rows: Vec<DesiredRow> = (0..stores)
        .map(|i| DesiredRow {
            store: store_id(i),
            revision: Some(40 + (i % 3) as u64),
            commit: commit.to_owned(),
            expires_at: Some(now + 60 * 86_400),
            valid: true,
            error: None,
            checked_at: now,
        })
        .collect();
    db.set_desired(&rows).await?;
    let mut tasks = tokio::task::JoinSet::new();
    // Eight writers: the ingest path's own concurrency, roughly.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..8 {
        let (db, next) = (db.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= stores {
                    return anyhow::Ok(());
                }
                if i % 20 == 19 {
                    continue; // 5 % never enrolled
                }
                let store = store_id(i);
                let key_id = format!("{i:016x}");
                db.enroll_node(&Node {
                    key_id: key_id.clone(),
                    public_key: format!("bench-key-{i}"),
                    store: store.clone(),
                    enrolled_at: now - 86_400,
                    revoked_at: None,
                    recipient: None,
                })
                .await?;
                let desired = 40 + (i % 3) as u64;
                for k in 0..reports {
                    let last = k + 1 == reports;
                    let (outcome, applied) = match (last, i % 10) {
                        (true, 0) => ("failed", desired - 1),
                        (true, 1) => ("no_change", desired - 1),
                        (true, 2) => ("drift_corrected", desired),
                        (true, 3) => ("refused", desired - 1),
                        _ => ("converged", desired),
                    };
                    let body = json!({
                        "store": store, "outcome": outcome,
                        "desired_revision": desired, "applied_revision": applied,
                        "commit": commit, "fetched_commit": commit,
                        "changes": [{"kind": "item", "id": "classic-burger", "change": "changed",
                                     "fields": [{"field": "price", "before": 1099, "after": 1199}]}],
                        "drift": [], "overridden": [], "refusal": null, "errors": [], "warnings": [],
                        "started_at": "2026-12-01T12:00:00Z", "duration_ms": 850,
                        "reconciler_version": "0.1.0",
                    });
                    let report = NewReport {
                        store: store.clone(),
                        key_id: key_id.clone(),
                        received_at: now - 30 * (reports - k) as i64,
                        outcome: outcome.to_owned(),
                        desired_revision: Some(desired),
                        applied_revision: Some(applied),
                        commit: Some(commit.to_owned()),
                        drift: usize::from(outcome == "drift_corrected"),
                        overridden: 0,
                        reconciler_version: "0.1.0".to_owned(),
                        root_version: None,
                        release_api: None,
                        body: body.to_string(),
                    };
                    // The production write path: a fresh nonce, an enrolled node.
                    let stored = db
                        .ingest_report(&status::tokens::nonce(), &report, None)
                        .await?;
                    anyhow::ensure!(
                        matches!(stored, Ingested::Stored(_)),
                        "report of {store} not stored: {stored:?}"
                    );
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

struct Stats {
    median: Duration,
    min: Duration,
    max: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    Stats {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

struct Server {
    child: std::process::Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(bin: &PathBuf, url: &str, dir: &std::path::Path) -> anyhow::Result<Server> {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let addr = testkit::listening_addr(&mut child, Duration::from_secs(60));
    match addr {
        Ok(addr) => Ok(Server {
            child,
            base: format!("http://{addr}"),
        }),
        Err(line) => {
            let _ = child.kill();
            bail!("fleet-status did not announce its address (got {line:?})")
        }
    }
}

/// Time `runs` GETs of `path` (after two warm-ups); answers the stats and
/// the answer's size.
async fn time_get(
    client: &reqwest::Client,
    url: &str,
    auth: (&str, &str),
    runs: usize,
) -> anyhow::Result<(Stats, usize)> {
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for i in 0..runs + 2 {
        let t = Instant::now();
        let r = client
            .get(url)
            .header(auth.0, auth.1)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !r.status().is_success() {
            bail!("GET {url}: {}", r.status());
        }
        let body = r.bytes().await?;
        let d = t.elapsed();
        size = body.len();
        if i >= 2 {
            times.push(d);
        }
    }
    Ok((stats(times), size))
}

async fn bench(backend: &str, url: &str, args: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    let db = status::store::open(url).await?;
    fill(db.clone(), args.stores, args.reports).await?;
    println!(
        "{backend}: filled {} stores, {} reports in {:.1} s",
        args.stores,
        db.report_count().await?,
        t.elapsed().as_secs_f64()
    );
    let tenants: Vec<String> = (0..TENANTS).map(|t| format!("tenant-{t:02}")).collect();
    let spec = status::admin::OperatorSpec {
        tenants,
        stores: Vec::new(),
        role: status::api::Role::Viewer,
        ttl: std::time::Duration::from_secs(86_400),
    };
    let (_, token) = status::admin::operator_create(url, &spec).await?;
    let server = start_server(&args.server, url, dir.path())?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()?;
    // Sign in through the form; keep the cookie it sets.
    let r = client
        .post(format!("{}/login", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await?;
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no cookie from /login")?
        .to_owned();
    let bearer = format!("Bearer {token}");
    let runs = args.runs;
    let base = &server.base;
    let page = time_get(&client, &format!("{base}/"), ("cookie", &cookie), runs).await?;
    let api = time_get(
        &client,
        &format!("{base}/api/v1/stores"),
        ("authorization", &bearer),
        runs,
    )
    .await?;
    let api_page = time_get(
        &client,
        &format!("{base}/api/v1/stores?per_page=100"),
        ("authorization", &bearer),
        runs,
    )
    .await?;
    let health = time_get(&client, &format!("{base}/healthz"), ("x-bench", "1"), runs).await?;
    let mut sql = Vec::new();
    for i in 0..runs + 2 {
        let t = Instant::now();
        let rows = db.list_stores().await?;
        let d = t.elapsed();
        assert_eq!(rows.len(), args.stores);
        if i >= 2 {
            sql.push(d);
        }
    }
    let sql = stats(sql);
    println!("{backend}: {runs} runs each, milliseconds: median (min–max), answer size");
    let line = |name: &str, s: &Stats, size: Option<usize>| {
        println!(
            "  {name:<34} {:>7} ({}–{}){}",
            ms(s.median),
            ms(s.min),
            ms(s.max),
            size.map(|b| format!("  {:.1} KiB", b as f64 / 1024.0))
                .unwrap_or_default()
        );
    };
    line("GET / (first page, cookie)", &page.0, Some(page.1));
    line("GET /api/v1/stores (all)", &api.0, Some(api.1));
    line(
        "GET /api/v1/stores?per_page=100",
        &api_page.0,
        Some(api_page.1),
    );
    line("baseline GET /healthz", &health.0, None);
    line("baseline Store::list_stores", &sql, None);
    println!(
        "  ratio GET / : list_stores = {:.2}, GET /api/v1/stores : list_stores = {:.2}",
        page.0.median.as_secs_f64() / sql.median.as_secs_f64(),
        api.0.median.as_secs_f64() / sql.median.as_secs_f64()
    );
    drop(server);
    db.close().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("status.db").display());
    bench("sqlite", &sqlite, &args).await?;
    if let Some(admin) = &args.postgres {
        let name = format!("bench_overview_{}", status::tokens::nonce());
        let mut c = sqlx::PgConnection::connect(admin)
            .await
            .with_context(|| format!("connecting to {admin}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await?;
        let (base, _) = admin.rsplit_once('/').context("no database in the URL")?;
        let result = bench("postgres", &format!("{base}/{name}"), &args).await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut c)
            .await?;
        result?;
    }
    Ok(())
}
