//! Push-to-applied latency (DESIGN.md §8: "daemon with long-poll, 50 stores
//! on loopback: p99 under 3 s"), with the polling it replaces as baseline.
//!
//! ```sh
//! cargo bench -p reconciler --bench push_latency               # 50 stores, 10 rounds
//! cargo bench -p reconciler --bench push_latency -- --quick    # 10 stores, 3 rounds
//! cargo bench -p reconciler --bench push_latency -- --stores 50 --rounds 20 --poll-interval 10
//! cargo bench -p reconciler --bench push_latency -- --json out.json   # also write the samples
//! ```
//!
//! `bench suite` (docs/BENCHMARKS.md) runs it with `--json` and reads the
//! samples from there.
//!
//! Everything is real and on loopback: a fleet repo from the template plus N
//! stores made with `fleet new-store`, signed by `fleet sign`, served by
//! `git daemon`; `fleet-status` with the Git hook on (and no other fetch);
//! N `fleet-edge` servers and N `fleet-reconciler run` daemons, enrolled,
//! with an hour between passes. A round changes one base price (so every
//! store gets a new revision), signs, commits and pushes, then calls the
//! hook as a Git host would; the clock starts when the push has returned.
//! A store's latency is the time of the last edge audit entry written for
//! the new revision (the edge's own clock, milliseconds) minus that start.
//! The round ends when the status service shows every store at the new
//! revision, so the reports arrived too.
//!
//! The baseline: the same daemons with `long_poll = false` and
//! `interval_secs = --poll-interval`, the same rounds without the hook.

#[path = "../tests/testsuite/e2e/mod.rs"]
mod e2e;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::{Edge, Fixture, Guarded, StatusService};

const VARIATION: &str = "bacon-cheeseburger-single";

struct Options {
    stores: usize,
    rounds: usize,
    baseline_rounds: usize,
    poll_interval: u64,
    /// Write the options and every sample here as JSON.
    json: Option<PathBuf>,
}

fn options() -> Options {
    let mut o = Options {
        stores: 50,
        rounds: 10,
        baseline_rounds: 3,
        poll_interval: 10,
        json: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} takes a number"))
        };
        match a.as_str() {
            "--quick" => {
                o.stores = 10;
                o.rounds = 3;
                o.baseline_rounds = 2;
                o.poll_interval = 5;
            }
            "--stores" => o.stores = value("--stores"),
            "--rounds" => o.rounds = value("--rounds"),
            "--baseline-rounds" => o.baseline_rounds = value("--baseline-rounds"),
            "--poll-interval" => o.poll_interval = value("--poll-interval") as u64,
            "--json" => o.json = Some(PathBuf::from(it.next().expect("--json takes a path"))),
            // `cargo bench` passes --bench.
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    o
}

struct Store {
    id: String,
    edge: Edge,
    config: PathBuf,
    _daemon: Guarded,
}

/// Everything a round needs.
struct World {
    fx: Fixture,
    status: StatusService,
    operator: String,
    stores: Vec<Store>,
}

fn config_text(fx: &Fixture, store: &str, edge: &Edge, state: &std::path::Path) -> String {
    fx.config_text_for(edge, state)
        .replace(
            &format!("store = \"{}\"", e2e::STORE),
            &format!("store = \"{store}\""),
        )
        .replace(
            &format!("interval_secs = {}", fx.interval_secs),
            "interval_secs = 3600",
        )
}

/// The newest edge audit time of `revision`, as unix milliseconds.
fn applied_at_ms(edge: &Edge, revision: u64) -> Option<i64> {
    edge.audit()
        .iter()
        .filter(|e| e["revision"].as_u64() == Some(revision))
        .filter_map(|e| e["time"].as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
        .max()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Run `rounds` price changes; answers every store's latency in seconds.
fn rounds(w: &World, rounds: usize, price: &mut u32, timeout: Duration) -> Vec<f64> {
    let (fx, status, operator, stores) = (&w.fx, &w.status, w.operator.as_str(), &w.stores);
    let mut out = Vec::new();
    for round in 1..=rounds {
        *price += 10;
        fx.set_base_price(VARIATION, *price);
        fx.sign_files(&[]);
        fx.commit("release");
        let revision = fx.release(&stores[0].id.replace("acme/", ""))["revision"]
            .as_u64()
            .expect("revision");
        fx.publish();
        let start_ms = chrono::Utc::now().timestamp_millis();
        let started = Instant::now();
        // As a Git host does after a push. Without long-poll no daemon
        // listens to what it triggers; the status service still has to
        // learn the revision for the round to end.
        status.hook();
        loop {
            let view = status.get(operator, "/api/v1/stores?tenant=acme");
            let behind = view["stores"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| stores.iter().any(|x| s["store"] == x.id.as_str()))
                .filter(|s| s["applied_revision"].as_u64() != Some(revision))
                .count();
            if behind == 0 {
                break;
            }
            assert!(
                started.elapsed() < timeout,
                "round {round}: {behind} store(s) not at revision {revision} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut worst = 0.0f64;
        for s in stores {
            let at = applied_at_ms(&s.edge, revision)
                .unwrap_or_else(|| panic!("{}: no audit entry of revision {revision}", s.id));
            let secs = (at - start_ms) as f64 / 1000.0;
            worst = worst.max(secs);
            out.push(secs);
        }
        eprintln!(
            "  round {round}: revision {revision}, all {} stores applied; slowest {worst:.3} s",
            stores.len()
        );
    }
    out
}

fn summary(name: &str, mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&v, 50.0), percentile(&v, 99.0));
    println!(
        "{name}: {} samples; min {:.3} s, p50 {p50:.3} s, p90 {:.3} s, p99 {p99:.3} s, max {:.3} s",
        v.len(),
        v.first().copied().unwrap_or(f64::NAN),
        percentile(&v, 90.0),
        v.last().copied().unwrap_or(f64::NAN),
    );
    (p50, p99)
}

fn main() {
    let o = options();
    eprintln!(
        "push-to-applied: {} stores, {} long-poll rounds, {} polling rounds at {} s",
        o.stores, o.rounds, o.baseline_rounds, o.poll_interval
    );
    let fx = Fixture::new();
    let repo = fx.work.display().to_string();
    let ids: Vec<String> = (1..=o.stores)
        .map(|i| format!("acme/bench-{i:03}"))
        .collect();
    for id in &ids {
        e2e::fleet(&fx.root, &["new-store", id, "--repo", &repo]);
    }
    fx.sign(&[]);
    let status = StatusService::with_hook(&fx);
    status.hook();
    let operator = status.operator("acme");
    let setup = Instant::now();
    let mut stores = Vec::new();
    for id in &ids {
        let dir = fx.root.join("stores").join(id.replace('/', "_"));
        let edge = Edge::start(&dir.join("edge"), &dir.join("edge/edge.db"));
        let state = dir.join("state");
        let config = dir.join("reconciler.toml");
        std::fs::write(
            &config,
            format!(
                "{}status_url = \"{}\"\n",
                config_text(&fx, id, &edge, &state),
                status.url()
            ),
        )
        .expect("config");
        let token = status.bootstrap_token(id);
        e2e::run_process(
            &mut e2e::reconciler_cmd(&config, &["enroll", "--token", &token]),
            e2e::PROCESS_TIMEOUT,
        )
        .expect_code(0, "enroll");
        let log = std::fs::File::create(dir.join("daemon.log")).expect("log");
        let daemon = Guarded::new(
            e2e::reconciler_cmd(&config, &["run"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn fleet-reconciler run"),
        );
        stores.push(Store {
            id: id.clone(),
            edge,
            config,
            _daemon: daemon,
        });
    }
    // Every daemon's first pass converges revision 1 and reports it.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let view = status.get(&operator, "/api/v1/stores?tenant=acme");
        let ready = view["stores"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| ids.iter().any(|x| s["store"] == x.as_str()))
            .filter(|s| s["applied_revision"].as_u64().is_some())
            .count();
        if ready == ids.len() {
            break;
        }
        assert!(Instant::now() < deadline, "only {ready} stores converged");
        std::thread::sleep(Duration::from_millis(200));
    }
    let setup_secs = setup.elapsed().as_secs_f64();
    eprintln!(
        "set up {} stores (edge, enrollment, daemon, first converge) in {setup_secs:.1} s",
        ids.len(),
    );

    let w = World {
        fx,
        status,
        operator,
        stores,
    };
    let mut price = 1349;
    eprintln!("long-poll rounds:");
    let long_poll = rounds(&w, o.rounds, &mut price, Duration::from_secs(60));

    // The baseline: the same daemons polling, no long-poll.
    for s in &w.stores {
        let text = std::fs::read_to_string(&s.config).expect("config");
        let text = text.replace(
            "interval_secs = 3600",
            &format!("interval_secs = {}\nlong_poll = false", o.poll_interval),
        );
        std::fs::write(&s.config, text).expect("config");
    }
    // Let every daemon reload and pass once with the new interval.
    std::thread::sleep(Duration::from_secs(2 + o.poll_interval));
    eprintln!("polling rounds (interval {} s):", o.poll_interval);
    let polling = rounds(
        &w,
        o.baseline_rounds,
        &mut price,
        Duration::from_secs(60 + 3 * o.poll_interval),
    );

    if let Some(path) = &o.json {
        let doc = serde_json::json!({
            "stores": o.stores,
            "rounds": o.rounds,
            "baseline_rounds": o.baseline_rounds,
            "poll_interval_secs": o.poll_interval,
            "setup_secs": setup_secs,
            "long_poll_secs": long_poll,
            "polling_secs": polling,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc).expect("json")).expect("write --json");
    }
    println!();
    let (lp50, lp99) = summary("long-poll", long_poll);
    if !polling.is_empty() {
        let (pp50, pp99) = summary(
            &format!("polling every {} s (baseline)", o.poll_interval),
            polling,
        );
        println!(
            "ratio long-poll / polling: p50 {:.3}, p99 {:.3}",
            lp50 / pp50,
            lp99 / pp99
        );
    }
    println!(
        "budget p99 < 3 s: {}",
        if lp99 < 3.0 { "pass" } else { "FAIL" }
    );
}
