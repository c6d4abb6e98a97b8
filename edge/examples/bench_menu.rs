//! Benchmark (not a test): a 5,000-item menu through the real server.
//!
//! Starts the `fleet-edge` binary next to this example (build both with
//! `cargo build --release -p edge --bins --examples`), upserts a 5,000-item
//! menu with one `POST /menu/batch`, times `GET /state`, changes one price,
//! and reads the server's peak RSS (VmHWM). The baseline, measured in the
//! same run, inserts the same 5,000 item bodies into a fresh SQLite file (WAL,
//! synchronous=NORMAL, as the server uses) in one transaction, and reads them
//! back.
//!
//! ```sh
//! cargo build --release -p edge --bins --examples
//! ./target/release/examples/bench_menu [--items 5000] [--server target/release/fleet-edge]
//! ```

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sqlx::Executor;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

const TOKEN: &str = "bench-token";

fn item(i: usize) -> Value {
    json!({
        "id": format!("item-{i:05}"),
        "name": format!("Menu item {i}"),
        "category": format!("cat-{}", i % 20),
        "description": "A bench item with a description of ordinary length.",
        "taxes": ["sales-tax"],
        "modifier_groups": ["addons"],
        "variations": [
            {"id": format!("item-{i:05}-s"), "name": "Small", "sku": format!("SKU-{i:05}-S"), "price": 500 + (i % 700)},
            {"id": format!("item-{i:05}-l"), "name": "Large", "sku": format!("SKU-{i:05}-L"), "price": 900 + (i % 700)}
        ]
    })
}

fn vm_hwm_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM line")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut items = 5000usize;
    let mut server: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--items" => items = args.next().context("--items N")?.parse()?,
            "--server" => server = Some(args.next().context("--server PATH")?.into()),
            other => bail!("unknown argument {other}"),
        }
    }
    let server = match server {
        Some(s) => s,
        None => std::env::current_exe()?
            .parent()
            .and_then(|d| d.parent())
            .context("locating the target directory")?
            .join("fleet-edge"),
    };
    if !server.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p edge --bins --examples`",
            server.display()
        );
    }

    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN)?;
    let mut child = Command::new(&server)
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(dir.path().join("edge.db"))
        .arg("--token-file")
        .arg(&token_file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", server.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("server stdout")?).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .context("server did not print its address")?
        .to_owned();
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let pid = child.id();
    let rss_idle = vm_hwm_kib(pid)?;

    // The supporting entities, then the items in one batch.
    let mut seed = vec![
        json!({"op": "upsert", "kind": "tax", "id": "sales-tax", "if_none_match": "*",
            "body": {"id": "sales-tax", "name": "Sales Tax", "rate": "8.875", "inclusion": "exclusive"}}),
        json!({"op": "upsert", "kind": "modifier_group", "id": "addons", "if_none_match": "*",
            "body": {"id": "addons", "name": "Add-ons", "max": 3, "modifiers": [
                {"id": "bacon", "name": "Bacon", "price": 200}, {"id": "cheese", "name": "Cheese", "price": 100}]}}),
    ];
    for c in 0..20 {
        seed.push(json!({"op": "upsert", "kind": "category", "id": format!("cat-{c}"), "if_none_match": "*",
            "body": {"id": format!("cat-{c}"), "name": format!("Category {c}"), "sort": c}}));
    }
    let r = client
        .post(format!("{base}/menu/batch"))
        .bearer_auth(TOKEN)
        .json(&json!({"ops": seed}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("seeding failed: {}", r.text().await?);
    }
    let bodies: Vec<Value> = (0..items).map(item).collect();
    let ops: Vec<Value> = bodies
        .iter()
        .map(|b| json!({"op": "upsert", "kind": "item", "id": b["id"], "if_none_match": "*", "body": b}))
        .collect();
    let payload = serde_json::to_vec(&json!({"ops": ops}))?;
    let t = Instant::now();
    let r = client
        .post(format!("{base}/menu/batch"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(payload.clone())
        .send()
        .await?;
    let status = r.status();
    let answer = r.bytes().await?;
    let batch_time = t.elapsed();
    if !status.is_success() {
        bail!("batch failed: {}", String::from_utf8_lossy(&answer));
    }

    let mut state_times = Vec::new();
    let mut state_bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let r = client
            .get(format!("{base}/state"))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        let body = r.bytes().await?;
        state_times.push(t.elapsed());
        state_bytes = body.len();
        let v: Value = serde_json::from_slice(&body)?;
        if v["menu"]["items"].as_array().map(Vec::len) != Some(items) {
            bail!("GET /state did not answer {items} items");
        }
    }

    // One changed price: one write.
    let one = client
        .get(format!("{base}/menu/items/item-02500"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json::<Value>()
        .await?;
    let mut changed = one.clone();
    changed["variations"][0]["price"] = json!(1234);
    let t = Instant::now();
    let r = client
        .put(format!("{base}/menu/items/item-02500"))
        .bearer_auth(TOKEN)
        .header("If-Match", one["version"].to_string())
        .json(&changed)
        .send()
        .await?;
    let one_time = t.elapsed();
    if !r.status().is_success() {
        bail!("one-price write failed: {}", r.text().await?);
    }
    let rss_peak = vm_hwm_kib(pid)?;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();

    // Baseline: the same item bodies into SQLite in one transaction.
    let base_db = dir.path().join("baseline.db");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&base_db)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal),
        )
        .await?;
    pool.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL) STRICT, WITHOUT ROWID")
        .await?;
    let texts: Vec<(String, String)> = bodies
        .iter()
        .map(|b| (b["id"].as_str().unwrap().to_owned(), b.to_string()))
        .collect();
    let t = Instant::now();
    let mut tx = pool.begin().await?;
    for (id, body) in &texts {
        sqlx::query("INSERT INTO t (id, body) VALUES (?, ?)")
            .bind(id)
            .bind(body)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let baseline_insert = t.elapsed();
    let mut read_times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let rows: Vec<(String,)> = sqlx::query_as("SELECT body FROM t ORDER BY id")
            .fetch_all(&pool)
            .await?;
        let parsed: Vec<Value> = rows
            .iter()
            .map(|(b,)| serde_json::from_str(b))
            .collect::<Result<_, _>>()?;
        let _ = serde_json::to_vec(&parsed)?;
        read_times.push(t.elapsed());
    }
    pool.close().await;
    let baseline_read = median(read_times);
    let state_median = median(state_times.clone());

    println!(
        "fleet-edge bench_menu: {items} items (2 variations each), 1 tax, 1 modifier group, 20 categories"
    );
    println!("batch request body: {} bytes", payload.len());
    println!(
        "POST /menu/batch ({items} upserts, one transaction, audit entries included): {}",
        ms(batch_time)
    );
    println!(
        "baseline: {items} INSERTs of the same JSON bodies into SQLite, one transaction: {}",
        ms(baseline_insert)
    );
    println!(
        "ratio batch / baseline: {:.1}x",
        batch_time.as_secs_f64() / baseline_insert.as_secs_f64()
    );
    println!(
        "GET /state ({state_bytes} bytes): first {}, median of 5 {}",
        ms(state_times[0]),
        ms(state_median)
    );
    println!(
        "baseline: SELECT + parse + serialize the same {items} bodies, median of 5: {}",
        ms(baseline_read)
    );
    println!(
        "ratio GET /state / baseline: {:.1}x",
        state_median.as_secs_f64() / baseline_read.as_secs_f64()
    );
    println!(
        "one changed price (PUT one item in the 5,000-item menu): {}",
        ms(one_time)
    );
    println!(
        "server peak RSS (VmHWM): {:.1} MiB (idle after start: {:.1} MiB)",
        rss_peak as f64 / 1024.0,
        rss_idle as f64 / 1024.0
    );
    Ok(())
}
