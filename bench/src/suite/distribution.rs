//! Distribution at fleet scale (DESIGN.md §17, issue #20 item 4), on a
//! 10,000-store fleet served by `git daemon` and one real `fleet-status`
//! (SQLite) that fetches it over `git://`:
//!
//! - **Long-polls.** A node key per store, enrolled; 10,000 signed
//!   `GET /api/v1/desired?after=<rev>&wait=60` held at once (the bench
//!   raises its open-files limit, and the service inherits it). A change
//!   that moves every store's revision is pushed, then the Git hook is
//!   posted; each poll's answer is timed from the hook. Budget: the
//!   service's RSS under 300 MB while it holds them all, and p99 of the
//!   wake under 2 s. Baselines: the idle service's RSS, and the hook's
//!   first answer (the fetch itself).
//! - **Relay vs Git.** What one store pays for the change: a signed
//!   `GET /api/v1/release` from the relay against a `git fetch --depth 1`
//!   of the same change into a shallow mirror of the repo (what a store in
//!   Git mode does), from the same `git daemon`. Budget: under 0.1×.
//!
//! Per change, the Git host answers one fetch per status replica in relay
//! mode, against one per store in Git mode: the relay measurement shows it
//! (the service fetched once; every store's answer came from it).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ed25519_dalek::SigningKey;

use super::fleets::{commit, git_daemon};
use super::measure::{Cmd, Samples, Server};
use super::rollout::sorted_names;
use super::{BudgetRow, Ctx, PartResult, git, secs, thousands};

/// DESIGN.md §17.
pub const RSS_BUDGET_MB: f64 = 300.0;
pub const WAKE_P99_BUDGET_SECS: f64 = 2.0;
pub const RELAY_BUDGET_RATIO: f64 = 0.1;

const HOOK_SECRET: &str = "bench-hook-secret";

/// Stores in Git mode fetching the change, for the requests-per-change
/// curve.
const GIT_MODE_STORES: [usize; 3] = [1, 10, 100];

pub fn run(ctx: &Ctx) -> anyhow::Result<PartResult> {
    let stores = if ctx.opts.quick { 1_000 } else { 10_000 };
    // Each side holds a socket per long-poll, plus its own files.
    let limit = raise_open_files(stores as u64 + 2048)?;
    ctx.say(&format!("distribution: open-files limit {limit}"));
    let (base, keys) = {
        let mut f = ctx.fleets.lock().expect("fleets");
        let fleet = f.sized(ctx, stores)?;
        let fleet = f.signed(ctx, &fleet)?;
        (fleet, f.keys(ctx)?)
    };
    let work = ctx.dir("distribution")?;
    for d in [
        "change",
        "status-state",
        "mirror-r1.git",
        "fetch.git",
        "served",
    ] {
        let p = work.join(d);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    // The Git host: a `git daemon` of its own, logging every request.
    let served = work.join("served").join("distribution.git");
    std::fs::create_dir_all(work.join("served"))?;
    let daemon_log = work.join("git-daemon.log");
    let (_daemon, port) = git_daemon(&work.join("served"), &daemon_log, true)?;
    git(&work)
        .args(["clone", "-q", "--bare"])
        .arg(&base.dir)
        .arg(&served)
        .output()?;
    let url = format!("git://127.0.0.1:{port}/distribution.git");

    // The change, signed now and pushed later: quiet hours for every
    // tenant, so every store gets a new revision.
    let change = work.join("change");
    git(&work)
        .args(["clone", "-q"])
        .arg(&served)
        .arg(&change)
        .output()?;
    for t in sorted_names(&change.join("tenants"))? {
        std::fs::write(
            change.join("tenants").join(&t).join("windows.yaml"),
            "apiVersion: fleet/v1\nkind: Tenant\nwindows:\n  deny: [{days: [sun], from: \"03:00\", to: \"04:00\"}]\n",
        )?;
    }
    commit(&change, "quiet hours")?;
    ctx.say(&format!(
        "distribution: signing the change for {} stores",
        thousands(stores)
    ));
    Cmd::new(ctx.bin("fleet"))
        .arg("sign")
        .arg("--key")
        .arg(&keys.secret)
        .arg("--repo")
        .arg(&change)
        .output()
        .context("fleet sign of the change")?;
    commit(&change, "quiet hours signed")?;

    // A shallow mirror at the first revision: the Git baseline's start.
    git(&work)
        .args(["clone", "-q", "--bare", "--depth", "1", &url])
        .arg(work.join("mirror-r1.git"))
        .output()
        .context("a shallow mirror of the fleet repo")?;

    // One node key per store, enrolled through the storage layer.
    let db = work.join("status.db");
    for f in ["status.db", "status.db-wal", "status.db-shm"] {
        let _ = std::fs::remove_file(work.join(f));
    }
    let db_url = format!("sqlite://{}?mode=rwc", db.display());
    let ids = store_ids(&base.dir)?;
    let nodes: Vec<SigningKey> = (0..ids.len())
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    ctx.say(&format!(
        "distribution: enrolling {} node keys",
        thousands(ids.len())
    ));
    ctx.runtime.block_on(enroll(&db_url, &ids, &nodes))?;

    let secret_file = work.join("hook-secret");
    std::fs::write(&secret_file, format!("{HOOK_SECRET}\n"))?;
    let server = Server::start(
        &Cmd::new(ctx.bin("fleet-status"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
            .arg(&db_url)
            .arg("--repo-url")
            .arg(&url)
            .arg("--pubkey")
            .arg(keys.trust_dir.join("minisign.pub"))
            .arg("--state-dir")
            .arg(work.join("status-state"))
            .arg("--hook-secret-file")
            .arg(&secret_file)
            .args(["--fetch-interval-secs", "3600"])
            .env("RUST_LOG", "info,sqlx=warn"),
        &work.join("status.log"),
        true,
    )?;
    let pid = server.child.id();
    let base_url = format!(
        "http://{}",
        server
            .addr
            .as_deref()
            .context("fleet-status did not say where it listens")?
    );
    let r = ctx.runtime.block_on(long_polls(
        ctx,
        &base_url,
        &ids,
        &nodes,
        pid,
        &change,
        &daemon_log,
    ))?;
    // Git-host requests per change: the service fetched it once; now every
    // store takes its release from the relay, then some stores in Git mode
    // fetch it themselves.
    let before_relay = upload_packs(&daemon_log)?;
    ctx.say(&format!(
        "distribution: every one of {} stores fetches the change from the relay",
        thousands(ids.len())
    ));
    ctx.runtime
        .block_on(relay_all(&base_url, &nodes, r.revision_after))?;
    let relay_requests = upload_packs(&daemon_log)? - before_relay;
    let mut git_mode = Vec::new();
    for n in GIT_MODE_STORES {
        let before = upload_packs(&daemon_log)?;
        for _ in 0..n {
            git_fetch(&work, &url)?;
        }
        git_mode.push((n, upload_packs(&daemon_log)? - before));
    }
    ctx.say(&format!(
        "distribution: Git-host requests for the change: {} with {} stores on the relay (plus the service's fetch), {git_mode:?} in Git mode",
        relay_requests,
        thousands(ids.len())
    ));

    // What one store pays for the change: the relay against `git fetch`.
    let runs = ctx.runs(
        super::Runs {
            warmup: 1,
            runs: 10,
        },
        super::Runs { warmup: 1, runs: 3 },
    );
    ctx.say(&format!(
        "distribution: relay GET vs git fetch --depth 1, {}+{} runs each",
        runs.warmup, runs.runs
    ));
    let (mut relay, mut fetch) = (Samples::default(), Samples::default());
    let (mut relay_bytes, mut fetch_bytes) = (0u64, 0u64);
    for i in 0..runs.warmup + runs.runs {
        let (t, bytes) = ctx
            .runtime
            .block_on(relay_get(&base_url, &nodes[0], r.revision_after))?;
        let (g, gbytes) = git_fetch(&work, &url)?;
        if i >= runs.warmup {
            relay.push(t);
            fetch.push(g);
            relay_bytes = bytes;
            fetch_bytes = gbytes;
        }
    }
    let fetches = fetches_total(&ctx.runtime, &base_url)?;
    drop(server);

    let ratio = relay.median() / fetch.median();
    let rows = vec![
        BudgetRow {
            budget: format!(
                "one status replica holds {} long-polls: RSS under {RSS_BUDGET_MB:.0} MB",
                thousands(stores)
            ),
            measured: format!("{:.0} MB", r.rss_held_mb),
            spread: format!("peak {:.0} MB", r.rss_peak_mb),
            baseline: format!("idle {:.0} MB", r.rss_idle_mb),
            ratio: format!("{:.1}×", r.rss_held_mb / r.rss_idle_mb),
            pass: r.rss_held_mb < RSS_BUDGET_MB,
        },
        BudgetRow {
            budget: format!(
                "…and wakes them all after a hook: p99 under {WAKE_P99_BUDGET_SECS:.0} s"
            ),
            measured: secs(r.wake.percentile(99.0)),
            spread: format!("p50 {}, max {}", secs(r.wake.median()), secs(r.wake.max())),
            baseline: format!("first answer {}", secs(r.wake.min())),
            ratio: format!("{:.1}×", r.wake.percentile(99.0) / r.wake.min()),
            pass: r.wake.percentile(99.0) < WAKE_P99_BUDGET_SECS,
        },
        BudgetRow {
            budget: format!(
                "with the relay, Git-host requests per change do not grow with the stores ({} stores, one replica)",
                thousands(stores)
            ),
            measured: format!("{} + {relay_requests}", r.hook_fetches),
            spread: "the service's fetch + the stores'".to_owned(),
            baseline: format!(
                "Git mode {} for {} stores",
                git_mode.last().map_or(0, |g| g.1),
                git_mode.last().map_or(0, |g| g.0)
            ),
            ratio: "—".to_owned(),
            pass: r.hook_fetches == 1
                && relay_requests == 0
                && git_mode.iter().all(|(n, got)| n == got),
        },
        BudgetRow {
            budget: format!(
                "a relay fetch costs a store under {RELAY_BUDGET_RATIO}× a `git fetch` of a {}-store repo",
                thousands(stores)
            ),
            measured: format!("{:.1} ms", relay.median() * 1000.0),
            spread: relay.spread(1000.0, 1, " ms"),
            baseline: format!("git fetch {:.0} ms", fetch.median() * 1000.0),
            ratio: format!("{ratio:.3}×"),
            pass: ratio < RELAY_BUDGET_RATIO,
        },
    ];
    let mut d = String::new();
    writeln!(
        d,
        "`bench gen-fleet` with {} stores, signed, in a bare repo served by `git daemon`; one \
         `fleet-status serve` on SQLite fetching it over `git://` (`--fetch-interval-secs 3600`: \
         only the hook fetches), with a node key enrolled per store. After its first fetch, \
         {} signed long-polls (`wait=60`) are opened from this process and held (the service's \
         `fleet_status_long_polls` gauge says when all are); RSS is the service's `VmRSS` then \
         (idle: before they were opened; peak: `VmHWM` at the end). The change (a deny window in \
         every tenant, so all {} releases move to revision {}) was signed beforehand and is pushed; \
         then `POST /api/v1/hooks/git`, and every poll's answer is timed from the hook: the service \
         fetches, verifies all releases and wakes every poll. Open-files limit raised to {limit}.\n",
        thousands(stores),
        thousands(stores),
        thousands(stores),
        r.revision_after,
    )?;
    d.push_str("| measurement | value |\n| --- | ---: |\n");
    for (k, v) in [
        ("long-polls held".to_owned(), thousands(r.held)),
        (
            "answered with the new revision".to_owned(),
            thousands(r.answered),
        ),
        (
            "service RSS idle / holding / peak".to_owned(),
            format!(
                "{:.0} / {:.0} / {:.0} MB",
                r.rss_idle_mb, r.rss_held_mb, r.rss_peak_mb
            ),
        ),
        (
            "RSS per held long-poll".to_owned(),
            format!(
                "{:.1} KB",
                (r.rss_held_mb - r.rss_idle_mb) * 1024.0 / r.held as f64
            ),
        ),
        (
            "wake after the hook: first / p50 / p99 / max".to_owned(),
            format!(
                "{} / {} / {} / {}",
                secs(r.wake.min()),
                secs(r.wake.median()),
                secs(r.wake.percentile(99.0)),
                secs(r.wake.max())
            ),
        ),
        (
            "Git fetches by the service for the change".to_owned(),
            format!(
                "{} (in all since start: {fetches})",
                fetches.saturating_sub(1)
            ),
        ),
    ] {
        writeln!(d, "| {k} | {v} |")?;
    }
    writeln!(
        d,
        "\nRelay against Git, for one store and the same change, {}+{} runs each: the relay \
         answer is one signed `GET /api/v1/release?root=0` (the store's release, signature and \
         commit; {relay_bytes} bytes of JSON); the baseline is `git fetch --depth 1` of `main` \
         into a copy of a shallow bare mirror at the previous commit, from the same `git daemon` \
         (what a store in Git mode does after a change; {fetch_bytes} bytes of new pack). With \
         the relay, the Git host served one fetch for the change whatever the number of stores \
         (one per replica); in Git mode it serves one per store.\n",
        runs.warmup, runs.runs
    )?;
    writeln!(
        d,
        "\nGit-host requests for the change, counted in the `git daemon --verbose` log \
         (`Request upload-pack`): the service's fetch at the hook, then all {} stores taking the \
         change from the relay, then stores in Git mode fetching it themselves (`git fetch \
         --depth 1` each, what their mirror does):\n",
        thousands(stores)
    )?;
    d.push_str("| stores fetching the change | Git mode | relay mode |\n| ---: | ---: | ---: |\n");
    for (n, got) in &git_mode {
        writeln!(d, "| {} | {got} | — |", thousands(*n))?;
    }
    writeln!(
        d,
        "| {} | (one per store) | {} (the service's fetch) + {relay_requests} |\n",
        thousands(stores),
        r.hook_fetches
    )?;
    writeln!(
        d,
        "| per store and change | median | spread | bytes |\n| --- | ---: | --- | ---: |\n| relay `GET /api/v1/release` | {:.1} ms | {} | {} |\n| `git fetch --depth 1` | {:.1} ms | {} | {} |",
        relay.median() * 1000.0,
        relay.spread(1000.0, 1, " ms"),
        thousands(relay_bytes as usize),
        fetch.median() * 1000.0,
        fetch.spread(1000.0, 1, " ms"),
        thousands(fetch_bytes as usize),
    )?;
    Ok(PartResult {
        rows,
        details: d,
        charts: Vec::new(),
    })
}

/// Raise this process's open-files limit to at least `want` (up to the
/// hard limit, which root may raise too); children inherit it. Answers
/// the new soft limit.
fn raise_open_files(want: u64) -> anyhow::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if soft >= want {
        return Ok(soft);
    }
    let target = want.max(soft);
    if setrlimit(Resource::RLIMIT_NOFILE, target, hard.max(target)).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("raising RLIMIT_NOFILE")?;
    }
    let (now, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if now < want {
        bail!(
            "the open-files limit is {now}, below the {want} this part needs (hard limit {hard}); raise it with `ulimit -Hn`"
        );
    }
    Ok(now)
}

/// `tenant/store` of every store of the repo, sorted.
fn store_ids(repo: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for t in sorted_names(&repo.join("tenants"))? {
        let dir = repo.join("tenants").join(&t).join("stores");
        if dir.is_dir() {
            out.extend(sorted_names(&dir)?.into_iter().map(|s| format!("{t}/{s}")));
        }
    }
    Ok(out)
}

async fn enroll(url: &str, ids: &[String], keys: &[SigningKey]) -> anyhow::Result<()> {
    let store = status::store::open(url)
        .await
        .context("opening the status database")?;
    let now = chrono::Utc::now().timestamp();
    for (id, key) in ids.iter().zip(keys) {
        let vk = key.verifying_key();
        let enrolled = store
            .enroll_node(&status::store::Node {
                key_id: wire::node_auth::key_id(&vk),
                public_key: wire::node_auth::encode_public_key(&vk),
                store: id.clone(),
                enrolled_at: now - 60,
                revoked_at: None,
                recipient: None,
            })
            .await?;
        if !enrolled {
            bail!("the node key of {id} was not enrolled");
        }
    }
    store.close().await?;
    Ok(())
}

/// A signed GET of `path` by `key`.
fn signed_get(
    client: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    path: &str,
) -> reqwest::RequestBuilder {
    let headers = wire::node_auth::sign_request(
        key,
        "GET",
        path,
        b"",
        chrono::Utc::now(),
        &status::tokens::nonce(),
    );
    let mut rb = client.get(format!("{base}{path}"));
    for (k, v) in headers.pairs() {
        rb = rb.header(k, v);
    }
    rb
}

/// What the long-poll measurement found.
struct Polls {
    /// Requests the Git host answered between the hook and the last answer.
    hook_fetches: usize,
    held: usize,
    answered: usize,
    revision_after: u64,
    rss_idle_mb: f64,
    rss_held_mb: f64,
    rss_peak_mb: f64,
    /// Seconds from the hook to each answer.
    wake: Samples,
}

async fn long_polls(
    ctx: &Ctx,
    base: &str,
    ids: &[String],
    nodes: &[SigningKey],
    pid: u32,
    change: &Path,
    daemon_log: &Path,
) -> anyhow::Result<Polls> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(0)
        .build()?;
    // The service's first fetch: every store has a desired revision.
    let deadline = Instant::now() + Duration::from_secs(300);
    let before = loop {
        let r = signed_get(&client, base, &nodes[0], "/api/v1/desired?wait=0")
            .send()
            .await?;
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        if let Some(rev) = v["desired_revision"].as_u64() {
            break rev;
        }
        if Instant::now() > deadline {
            bail!("fleet-status did not fetch the fleet repo within 300 s: {v}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The change reaches the Git host now; the service is not told yet.
    git(change)
        .args(["push", "-q", "origin", "HEAD:main"])
        .output()
        .context("pushing the change")?;
    let rss_idle_mb = rss_mb(pid, "VmRSS")?;

    ctx.say(&format!(
        "distribution: opening {} long-polls",
        thousands(ids.len())
    ));
    let hooked: Arc<tokio::sync::OnceCell<Instant>> = Arc::new(tokio::sync::OnceCell::new());
    let mut tasks = Vec::with_capacity(ids.len());
    let path = format!("/api/v1/desired?after={before}&wait=60");
    for (i, key) in nodes.iter().enumerate() {
        let rb = signed_get(&client, base, key, &path);
        let hooked = hooked.clone();
        tasks.push(tokio::spawn(async move {
            let r = rb.send().await;
            let at = Instant::now();
            let v: serde_json::Value = match r {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            };
            let since = hooked.get().map(|h| at.saturating_duration_since(*h));
            (v, since)
        }));
        // Let the accept queue drain.
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    let held = loop {
        let n = gauge(&client, base, "fleet_status_long_polls").await?;
        if n as usize >= ids.len() {
            break n as usize;
        }
        if Instant::now() > deadline {
            bail!("only {n} of {} long-polls were held after 40 s", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let rss_held_mb = rss_mb(pid, "VmRSS")?;
    ctx.say(&format!(
        "distribution: {} long-polls held, RSS {rss_held_mb:.0} MB; posting the hook",
        thousands(held)
    ));

    let body = br#"{"ref":"refs/heads/main"}"#;
    let sig = hook_signature(body);
    let packs_before = upload_packs(daemon_log)?;
    hooked.set(Instant::now()).ok();
    let r = client
        .post(format!("{base}/api/v1/hooks/git"))
        .header("X-Hub-Signature-256", sig)
        .body(body.to_vec())
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("the hook was refused: {}", r.status());
    }
    let mut wake = Samples::default();
    let mut answered = 0;
    let mut after = 0;
    let mut problems = Vec::new();
    for t in tasks {
        let (v, since) = t.await?;
        if v["changed"] == true {
            answered += 1;
            after = v["desired_revision"].as_u64().unwrap_or(0);
            if let Some(s) = since {
                wake.push(s.as_secs_f64());
            }
        } else if problems.len() < 3 {
            problems.push(v.to_string());
        }
    }
    if answered != ids.len() {
        bail!(
            "{answered} of {} long-polls were answered with a new revision; e.g. {problems:?}",
            ids.len()
        );
    }
    let hook_fetches = upload_packs(daemon_log)? - packs_before;
    let rss_peak_mb = rss_mb(pid, "VmHWM")?;
    ctx.say(&format!(
        "distribution: all woken; p99 {}, RSS peak {rss_peak_mb:.0} MB",
        secs(wake.percentile(99.0))
    ));
    Ok(Polls {
        hook_fetches,
        held,
        answered,
        revision_after: after,
        rss_idle_mb,
        rss_held_mb,
        rss_peak_mb,
        wake,
    })
}

/// `X-Hub-Signature-256` of `body` under [`HOOK_SECRET`].
fn hook_signature(body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(HOOK_SECRET.as_bytes())
        .expect("HMAC takes any key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A gauge or counter of `GET /metrics`.
async fn gauge(client: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .with_context(|| format!("{name} is not in /metrics"))
}

fn fetches_total(rt: &tokio::runtime::Runtime, base: &str) -> anyhow::Result<u64> {
    rt.block_on(gauge(
        &reqwest::Client::new(),
        base,
        "fleet_status_fetches_total",
    ))
}

/// `VmRSS` or `VmHWM` of a process, in MB.
fn rss_mb(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kb / 1024.0)
}

/// One relay answer for `key`'s store: seconds and body bytes; checks it
/// carries revision `revision`.
async fn relay_get(base: &str, key: &SigningKey, revision: u64) -> anyhow::Result<(f64, u64)> {
    let client = reqwest::Client::new();
    let t = Instant::now();
    let r = signed_get(&client, base, key, "/api/v1/release?root=0")
        .send()
        .await?;
    let status = r.status();
    let bytes = r.bytes().await?;
    let took = t.elapsed().as_secs_f64();
    if !status.is_success() {
        bail!(
            "the relay answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    check_revision(&serde_json::from_slice(&bytes)?, revision)?;
    Ok((took, bytes.len() as u64))
}

/// `git fetch --depth 1` of main into a fresh copy of the shallow mirror:
/// seconds and the bytes of new pack.
fn git_fetch(work: &Path, url: &str) -> anyhow::Result<(f64, u64)> {
    let copy = work.join("fetch.git");
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    Cmd::new("cp")
        .arg("-a")
        .arg(work.join("mirror-r1.git"))
        .arg(&copy)
        .output()?;
    let before = pack_bytes(&copy)?;
    let t = Instant::now();
    git(&copy)
        .args([
            "fetch",
            "-q",
            "--depth",
            "1",
            url,
            "+refs/heads/main:refs/heads/main",
        ])
        .output()
        .context("git fetch of the change")?;
    let took = t.elapsed().as_secs_f64();
    Ok((took, pack_bytes(&copy)?.saturating_sub(before)))
}

fn pack_bytes(repo: &Path) -> anyhow::Result<u64> {
    let dir = repo.join("objects/pack");
    let mut n = 0;
    if dir.is_dir() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            if e.file_name().to_string_lossy().ends_with(".pack") {
                n += e.metadata()?.len();
            }
        }
    }
    Ok(n)
}

/// Requests the Git host answered so far: `upload-pack` (a fetch or a
/// clone) lines of its `--verbose` log.
fn upload_packs(log: &Path) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    Ok(text.matches("Request upload-pack").count())
}

/// Every store's signed relay GET, 32 at a time; each must serve
/// `revision`.
async fn relay_all(base: &str, nodes: &[SigningKey], revision: u64) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut set = tokio::task::JoinSet::new();
    for key in nodes {
        if set.len() >= 32
            && let Some(r) = set.join_next().await
        {
            r??;
        }
        let rb = signed_get(&client, base, key, "/api/v1/release?root=0");
        set.spawn(async move {
            let r = rb.send().await?;
            if !r.status().is_success() {
                bail!("the relay answered {}", r.status());
            }
            let v: serde_json::Value = r.json().await?;
            check_revision(&v, revision)
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

/// That a relay answer's release has `revision`.
fn check_revision(answer: &serde_json::Value, revision: u64) -> anyhow::Result<()> {
    use base64::Engine as _;
    let release = base64::engine::general_purpose::STANDARD
        .decode(answer["release"].as_str().unwrap_or_default())
        .context("the relayed release")?;
    if !String::from_utf8_lossy(&release).contains(&format!("revision: {revision}\n")) {
        bail!("the relay did not serve revision {revision}");
    }
    Ok(())
}
