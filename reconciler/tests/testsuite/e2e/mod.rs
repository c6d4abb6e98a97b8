//! Shared parts of the reconciler's end-to-end tests: real processes in a
//! temporary directory, nothing of ours mocked.
//!
//! A [`Fixture`] is one store's world:
//!
//! - `work/`: a Git working repo made from `fleet-repo-template/`, where the
//!   tests edit sources and run the real `fleet sign` (key pair from the real
//!   `fleet keygen` in `keys/`);
//! - `srv/repo.git`: the bare repo the Git host serves, updated by
//!   `git push` (a force-push is a real force-push), served by a real
//!   `git daemon` on a free loopback port as `git://127.0.0.1:PORT/repo`;
//! - `trust/`: the store's pinned trust directory with the public key;
//! - `edge/`: the real `fleet-edge` on port 0 with its SQLite file and token;
//! - `state/`: the reconciler's `state_dir`, and `reconciler.toml`.
//!
//! # Where `fleet-edge` comes from
//!
//! The reconciler crate does not depend on the edge crate, so Cargo does not
//! build `fleet-edge` for these tests. [`edge_bin`] looks for it beside the
//! `fleet-reconciler` binary (`target/<profile>/fleet-edge`, the directory of
//! `CARGO_BIN_EXE_fleet-reconciler`); `fleet` (the `cli` crate) is found the
//! same way by [`fleet_bin`] and, when it is missing or older than the edge's
//! sources, runs `$CARGO build -p edge --bin fleet-edge` once per test
//! process (guarded by a `OnceLock`). Cargo releases its build lock before
//! it runs test binaries, so this does not deadlock; it costs one edge build
//! the first time.
//!
//! # Processes
//!
//! Every child process (edge, git daemon, reconciler) is owned by a value
//! that kills and reaps it on drop, so a failing assertion (a panic) leaves
//! nothing running. Every wait is bounded. Ports are picked by the OS (port 0),
//! except the git daemon's, which takes a port the OS just handed out and
//! retries with another one if it is taken meanwhile.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reqwest::Method;

use serde_json::{Map, Value};
pub use testkit::copy_dir;

pub const RECONCILER: &str = env!("CARGO_BIN_EXE_fleet-reconciler");
/// The store every fixture reconciles.
pub const STORE: &str = "acme/soho";
/// A variation of the template's menu whose price the tests change.
pub const VARIATION: &str = "bacon-cheeseburger-single";
/// The edge's bearer token (the file holds it with surrounding whitespace).
pub const EDGE_TOKEN: &str = "e2e-edge-token-0123456789";
/// Longest any one child process may run before the test gives up on it.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(90);

// ------------------------------------------------------------ binaries

/// The operator's `fleet` binary of this build profile (the `cli` crate),
/// built once if missing or stale (see `testkit::workspace_binary`).
pub fn fleet_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        testkit::workspace_binary(
            Path::new(RECONCILER),
            "cli",
            "fleet",
            &["cli/src", "cli/Cargo.toml", "release/src", "schemas/src"],
        )
    })
}

/// The `fleet-edge` binary of this build profile, built once if missing or
/// stale (see `testkit::workspace_binary`).
pub fn edge_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        testkit::workspace_binary(
            Path::new(RECONCILER),
            "edge",
            "fleet-edge",
            &[
                "edge/src",
                "edge/Cargo.toml",
                "schemas/src",
                "migrations/edge",
            ],
        )
    })
}

// ------------------------------------------------------------ processes

/// A child process that is killed and reaped when dropped.
#[derive(Debug)]
pub struct Guarded {
    child: Option<Child>,
}

impl Guarded {
    pub fn new(child: Child) -> Guarded {
        Guarded { child: Some(child) }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the child is still owned")
    }

    /// Has it exited (without waiting)?
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child().try_wait().expect("try_wait")
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Send SIGTERM (through `kill(1)`: the tests have no libc binding).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.id());
    }

    /// Wait up to `timeout` for the exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A finished process: exit code, output and how long it ran.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.elapsed,
            self.stdout.trim_end(),
            tail(&self.stderr, 4000)
        )
    }
}

impl Run {
    /// Panic with the whole output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32, what: &str) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit {code}\n{self}"
        );
        self
    }

    /// The outcome word of `fleet-reconciler once`'s summary line.
    pub fn outcome(&self) -> &str {
        self.outcome_of(STORE)
    }

    /// The outcome word of the summary line of `store` (`tenant/store`).
    pub fn outcome_of(&self, store: &str) -> &str {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{store}: ")))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("")
    }
}

fn tail(s: &str, max: usize) -> &str {
    let start = s.len().saturating_sub(max);
    let start = (start..=s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    &s[start..]
}

/// Run `cmd` to completion (bounded by `timeout`), capturing its output.
/// A panic of the child (a Rust panic message on stderr) fails the test.
pub fn run_process(cmd: &mut Command, timeout: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = Guarded::new(cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")));
    let stdout = drain(child.child().stdout.take().expect("piped stdout"));
    let stderr = drain(child.child().stderr.take().expect("piped stderr"));
    let status = child.wait_timeout(timeout);
    let elapsed = started.elapsed();
    let Some(status) = status else {
        child.kill();
        let out = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        panic!("{cmd:?} ran over {timeout:?}; killed.\n--- stdout\n{out}\n--- stderr\n{err}");
    };
    let run = Run {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed,
    };
    assert!(
        !run.stderr.contains("panicked at"),
        "{cmd:?} panicked:\n{run}"
    );
    run
}

fn drain(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The `fleet` CLI in `cwd`; panics unless it succeeds.
pub fn fleet(cwd: &Path, args: &[&str]) -> Run {
    let run = run_process(
        Command::new(fleet_bin())
            .args(args)
            .current_dir(cwd)
            .env_remove("FLEET_SIGNING_PASSWORD"),
        PROCESS_TIMEOUT,
    );
    run.expect_code(0, &format!("fleet {}", args.join(" ")));
    run
}

/// What enrollment and head office do for a store's secrets (DESIGN.md
/// §11), without a status service: the store's age identity in
/// `state_dir`, its recipient in its store.yaml, and the template's values
/// re-encrypted for it with the template's demo escrow identity.
pub fn enroll_secrets(cwd: &Path, work: &Path, state_dir: &Path, store: &str) {
    std::fs::create_dir_all(state_dir).expect("state dir");
    let key = state_dir.join("age.key");
    let run = fleet(
        cwd,
        &["secret", "keygen", "--out", &key.display().to_string()],
    );
    let recipient = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("recipient: "))
        .expect("keygen prints the recipient")
        .to_owned();
    let repo = work.display().to_string();
    fleet(
        cwd,
        &[
            "secret",
            "recipients",
            "--store",
            store,
            "--recipient",
            &recipient,
            "--repo",
            &repo,
        ],
    );
    let escrow = work.join(".fleet/DEMO-escrow.key").display().to_string();
    fleet(
        cwd,
        &["secret", "rewrap", "--identity", &escrow, "--repo", &repo],
    );
}

/// A `reconciler.toml` for `store` reading `repo_url` (a URL or a local
/// Git repository), trusting `trust_dir`, converging `edge`.
pub fn reconciler_config(
    store: &str,
    repo_url: &str,
    trust_dir: &Path,
    edge: &Edge,
    state_dir: &Path,
    interval_secs: u64,
) -> String {
    format!(
        "store = \"{store}\"\n\
         repo_url = \"{repo_url}\"\n\
         branch = \"main\"\n\
         trust_dir = \"{}\"\n\
         edge_url = \"{}\"\n\
         edge_token_file = \"{}\"\n\
         state_dir = \"{}\"\n\
         interval_secs = {interval_secs}\n\
         fetch_timeout_secs = 20\n",
        trust_dir.display(),
        edge.base(),
        edge.token_file.display(),
        state_dir.display(),
    )
}

/// `fleet-reconciler --config <config> <args>`.
pub fn reconciler_cmd(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(RECONCILER);
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    cmd
}

/// A `git` command isolated from the machine's Git configuration.
pub fn git_cmd(cwd: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Release Bot")
        .env("GIT_AUTHOR_EMAIL", "bot@example.com")
        .env("GIT_COMMITTER_NAME", "Release Bot")
        .env("GIT_COMMITTER_EMAIL", "bot@example.com");
    cmd
}

/// Run `git args` in `cwd`; panics unless it succeeds; answers stdout.
pub fn git(cwd: &Path, args: &[&str]) -> String {
    let run = run_process(git_cmd(cwd).args(args), PROCESS_TIMEOUT);
    run.expect_code(0, &format!("git {}", args.join(" ")));
    run.stdout
}

// ------------------------------------------------------------ HTTP

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime for the test's HTTP client")
    })
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        runtime().block_on(async {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                // Edges are killed and restarted on the same port: a pooled
                // connection to the old process would fail the next request.
                .pool_max_idle_per_host(0)
                .build()
                .expect("an HTTP client")
        })
    })
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", tail(&self.text, 2000)))
    }
}

/// One request to the edge at `base`, with the bearer token.
pub fn http_call(
    base: &str,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&Value>,
) -> Resp {
    let url = format!("{base}{path}");
    let mut req = client()
        .request(method.clone(), &url)
        .bearer_auth(EDGE_TOKEN);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    runtime().block_on(async {
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = r.status().as_u16();
        let text = r
            .text()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        Resp { status, text }
    })
}

/// A local edit of a setting at the edge at `base`, as `local:<user>`,
/// on whatever version it has now.
pub fn local_setting_edit(base: &str, key: &str, value: &Value, user: &str) -> Resp {
    let path = format!("/settings/{key}");
    let current = http_call(base, Method::GET, &path, &[], None);
    assert_eq!(current.status, 200, "GET {path}: {}", current.text);
    let version = current.json()["version"].as_u64().expect("a version");
    http_call(
        base,
        Method::PUT,
        &path,
        &[
            ("X-Fleet-Actor", format!("local:{user}")),
            ("If-Match", version.to_string()),
        ],
        Some(&serde_json::json!({ "value": value })),
    )
}

// ------------------------------------------------------------ fault proxy

/// A TCP proxy in front of the edge (fault injection between real parts,
/// STYLE.md): it forwards both ways untouched, except that before it
/// forwards a client chunk containing `trigger` it runs `hook` (up to
/// `max_hits` times), e.g. a local edit that races the reconciler's write.
#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(
        upstream: u16,
        trigger: &'static [u8],
        max_hits: usize,
        hook: impl Fn(usize) + Send + Sync + 'static,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hook: Arc<dyn Fn(usize) + Send + Sync> = Arc::new(hook);
        {
            let (hits, stop) = (hits.clone(), stop.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let (hits, hook) = (hits.clone(), hook.clone());
                    std::thread::spawn(move || {
                        proxy_connection(client, upstream, trigger, max_hits, &hits, &*hook)
                    });
                }
            });
        }
        Proxy { port, hits, stop }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many forwarded chunks carried the trigger (the hook ran for the
    /// first `max_hits` of them).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn proxy_connection(
    mut client: TcpStream,
    upstream: u16,
    trigger: &[u8],
    max_hits: usize,
    hits: &AtomicUsize,
    hook: &(dyn Fn(usize) + Send + Sync),
) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (Ok(mut server_read), Ok(mut client_write)) = (server.try_clone(), client.try_clone())
    else {
        return;
    };
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_read, &mut client_write);
        let _ = client_write.shutdown(std::net::Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if chunk.windows(trigger.len()).any(|w| w == trigger) {
            let hit = hits.fetch_add(1, Ordering::SeqCst);
            if hit < max_hits {
                hook(hit);
            }
        }
        if server.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = server.shutdown(std::net::Shutdown::Write);
    let _ = back.join();
}

// ------------------------------------------------------------ fleet-edge

/// The real `fleet-edge`, killed on drop.
#[derive(Debug)]
pub struct Edge {
    pub dir: PathBuf,
    pub database: PathBuf,
    pub token_file: PathBuf,
    pub port: u16,
    child: Option<Guarded>,
}

impl Edge {
    /// A server on `database` (created when missing) on a port the OS picks.
    pub fn start(dir: &Path, database: &Path) -> Edge {
        Edge::try_start(dir, database, 0).unwrap_or_else(|e| panic!("fleet-edge: {e}"))
    }

    fn try_start(dir: &Path, database: &Path, port: u16) -> Result<Edge, String> {
        std::fs::create_dir_all(dir).expect("edge dir");
        let token_file = dir.join("token");
        std::fs::write(&token_file, format!("  {EDGE_TOKEN}\n")).expect("token file");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.join("edge.log"))
            .expect("edge log");
        let mut child = Guarded::new(
            Command::new(edge_bin())
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .arg("--database")
                .arg(database)
                .arg("--token-file")
                .arg(&token_file)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn fleet-edge"),
        );
        let result = testkit::listening_addr(child.child(), Duration::from_secs(60));
        if matches!(&result, Err(line) if line.is_empty()) {
            return Err("fleet-edge printed no address within 60 s".to_owned());
        }
        let line = result.clone().err().unwrap_or_default();
        let Ok(addr) = result else {
            let log = std::fs::read_to_string(dir.join("edge.log")).unwrap_or_default();
            return Err(format!(
                "unexpected first line {line:?}; edge.log:\n{}",
                tail(&log, 2000)
            ));
        };
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("no port in {addr:?}"))?;
        Ok(Edge {
            dir: dir.to_path_buf(),
            database: database.to_path_buf(),
            token_file,
            port,
            child: Some(child),
        })
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("edge.log")).unwrap_or_default()
    }

    /// SIGKILL: the edge goes away as in a crash or power cut.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
    }

    /// Start again on the same database, on the same port if it is still
    /// free (else on a new one). Answers whether the port stayed the same.
    pub fn restart(&mut self) -> bool {
        self.kill();
        let old = self.port;
        for _ in 0..20 {
            if let Ok(e) = Edge::try_start(&self.dir, &self.database, old) {
                *self = e;
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        *self = Edge::start(&self.dir, &self.database);
        false
    }

    /// One request; `headers` besides the bearer token.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&Value>,
    ) -> Resp {
        http_call(&self.base(), method, path, headers, body)
    }

    /// `GET path`, expecting 200.
    pub fn get(&self, path: &str) -> Value {
        let r = self.call(Method::GET, path, &[], None);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.json()
    }

    /// `GET /state` exactly as the edge answers it.
    pub fn state_text(&self) -> String {
        let r = self.call(Method::GET, "/state", &[], None);
        assert_eq!(r.status, 200, "GET /state: {}", r.text);
        r.text
    }

    /// The applied configuration without the edge's bookkeeping fields.
    pub fn pos_state(&self) -> Value {
        pos_state(&self.get("/state"))
    }

    /// Every audit entry, oldest first.
    pub fn audit(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        for _ in 0..10_000 {
            let page = self.get(&format!("/audit?after={after}&limit=1000"));
            out.extend(page["entries"].as_array().cloned().unwrap_or_default());
            match page["next_after"].as_u64() {
                Some(n) => after = n,
                None => return out,
            }
        }
        panic!("the audit log does not end");
    }

    /// `GET /audit/verify` must answer ok.
    pub fn assert_audit_verifies(&self) {
        let r = self.call(Method::GET, "/audit/verify", &[], None);
        assert_eq!(r.status, 200, "GET /audit/verify: {}", r.text);
        assert_eq!(r.json()["ok"], Value::Bool(true), "{}", r.text);
    }

    /// A write by a person at the store: `X-Fleet-Actor: local:<user>`.
    pub fn local_put(&self, path: &str, if_match: u64, body: &Value, user: &str) -> Resp {
        self.call(
            Method::PUT,
            path,
            &[
                ("X-Fleet-Actor", format!("local:{user}")),
                ("If-Match", if_match.to_string()),
            ],
            Some(body),
        )
    }

    pub fn local_post(&self, path: &str, body: &Value, user: &str) -> Resp {
        self.call(
            Method::POST,
            path,
            &[("X-Fleet-Actor", format!("local:{user}"))],
            Some(body),
        )
    }
}

/// The POS fields of a `GET /state` answer: the top-level `version` and the
/// store-owned section gone (state the store owns is not configuration),
/// settings as `key: value`, and `version`/`local_override` dropped from
/// every entity, so that it compares with `fleet render`.
pub fn pos_state(edge: &Value) -> Value {
    let mut out = Map::new();
    let Some(domains) = edge.as_object() else {
        panic!("GET /state is not an object: {edge}");
    };
    for (domain, content) in domains {
        match domain.as_str() {
            "version" | "store_owned" => {}
            "settings" => {
                let settings = content
                    .as_object()
                    .expect("settings is a map")
                    .iter()
                    .map(|(k, v)| (k.clone(), v["value"].clone()))
                    .collect();
                out.insert(domain.clone(), Value::Object(settings));
            }
            _ => {
                let mut section = Map::new();
                for (name, v) in content.as_object().expect("a domain is a map") {
                    let v = match v {
                        Value::Array(list) => Value::Array(list.iter().map(strip_entity).collect()),
                        other => strip_entity(other),
                    };
                    section.insert(name.clone(), v);
                }
                out.insert(domain.clone(), Value::Object(section));
            }
        }
    }
    Value::Object(out)
}

/// An entity without the edge's `version` and `local_override`.
pub fn strip_entity(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("version");
        o.remove("local_override");
    }
    v
}

/// Every entity of a POS state by `(kind, id)`, with kinds named as the
/// edge's audit log names them.
pub fn entities(pos: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    if let Some(settings) = pos["settings"].as_object() {
        for (k, v) in settings {
            out.insert(("setting".to_owned(), k.clone()), v.clone());
        }
    }
    for (domain, list, kind) in [
        ("menu", "taxes", "tax"),
        ("menu", "categories", "category"),
        ("menu", "modifier_groups", "modifier_group"),
        ("menu", "items", "item"),
        ("menu", "discounts", "discount"),
        ("access", "roles", "role"),
        ("access", "users", "user"),
        ("kitchen", "stations", "station"),
        ("kitchen", "devices", "device"),
    ] {
        for e in pos[domain][list].as_array().into_iter().flatten() {
            let id = e["id"].as_str().expect("an entity has an id").to_owned();
            out.insert((kind.to_owned(), id), e.clone());
        }
    }
    let routing = &pos["kitchen"]["routing"];
    if !routing.is_null() {
        out.insert(
            ("routing".to_owned(), "routing".to_owned()),
            routing.clone(),
        );
    }
    out
}

/// The `(kind, id)` of every entity that differs between two POS states.
pub fn changed_entities(from: &Value, to: &Value) -> BTreeSet<(String, String)> {
    let a = entities(from);
    let b = entities(to);
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// Where two JSON values differ, as short `path: left != right` lines.
pub fn json_differences(a: &Value, b: &Value) -> Vec<String> {
    fn short(v: Option<&Value>) -> String {
        let s = v.map(Value::to_string).unwrap_or_else(|| "(absent)".into());
        if s.len() > 160 {
            let cut = (0..=160)
                .rev()
                .find(|i| s.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{}…", &s[..cut])
        } else {
            s
        }
    }
    fn walk(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
        if out.len() >= 30 || a == b {
            return;
        }
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    walk(&format!("{path}.{k}"), x.get(k), y.get(k), out);
                }
            }
            (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    let label = p["id"].as_str().map(str::to_owned).unwrap_or(i.to_string());
                    walk(&format!("{path}[{label}]"), Some(p), Some(q), out);
                }
            }
            _ => out.push(format!("{path}: {} != {}", short(a), short(b))),
        }
    }
    let mut out = Vec::new();
    walk("", Some(a), Some(b), &mut out);
    out
}

// ------------------------------------------------------------ git daemon

/// A real `git daemon` serving the bare repos under `base`, killed on drop.
#[derive(Debug)]
pub struct GitDaemon {
    base: PathBuf,
    log: PathBuf,
    pub port: u16,
    child: Option<Guarded>,
}

/// A port the OS considers free right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl GitDaemon {
    pub fn start(base: &Path, log: &Path) -> GitDaemon {
        for _ in 0..10 {
            let port = free_port();
            if let Some(child) = spawn_git_daemon(base, log, port) {
                return GitDaemon {
                    base: base.to_path_buf(),
                    log: log.to_path_buf(),
                    port,
                    child: Some(child),
                };
            }
        }
        panic!(
            "git daemon did not start on any of 10 ports; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    /// `git://127.0.0.1:PORT/repo`: the bare repo `base/repo.git`.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/repo", self.port)
    }

    /// The Git host goes down.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
    }

    /// Start again, on the same port if possible. Answers whether the port
    /// stayed the same (else the caller rewrites the config).
    pub fn restart(&mut self) -> bool {
        self.stop();
        for _ in 0..10 {
            if let Some(child) = spawn_git_daemon(&self.base, &self.log, self.port) {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        *self = GitDaemon::start(&self.base, &self.log);
        false
    }
}

/// `$(git --exec-path)/git-daemon`.
fn git_daemon_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new("git")
            .arg("--exec-path")
            .output()
            .expect("run git --exec-path (is git installed?)");
        assert!(out.status.success(), "git --exec-path failed");
        let bin = Path::new(String::from_utf8_lossy(&out.stdout).trim()).join("git-daemon");
        assert!(bin.exists(), "{} is missing", bin.display());
        bin
    })
}

/// Start `git daemon` on `port` and wait until it serves `repo`; `None` if
/// it could not (the port was taken meanwhile).
fn spawn_git_daemon(base: &Path, log: &Path, port: u16) -> Option<Guarded> {
    let log_file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("git daemon log");
    // `git daemon` is a wrapper process that runs `git-daemon` as a child
    // and would orphan it when killed: run the real daemon directly, so that
    // stopping it (SIGKILL) takes the Git host down for real.
    let mut cmd = Command::new(git_daemon_bin());
    cmd.current_dir(base);
    for (k, v) in git_cmd(base).get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let mut child = Guarded::new(
        cmd.arg("--reuseaddr")
            .arg(format!("--base-path={}", base.display()))
            .arg("--export-all")
            .arg(format!("--port={port}"))
            .arg("--listen=127.0.0.1")
            // Over 32 clients (the default limit) git-daemon kills a
            // connection from an address that has several, and on loopback
            // every store is 127.0.0.1: the push-latency bench's 50
            // simultaneous fetches lost some of theirs to that. A Git host
            // is not what the tests measure.
            .arg("--max-connections=0")
            .arg("--verbose")
            .arg(base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("spawn git daemon (is git installed?)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.exited().is_some() {
            return None;
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Something accepts connections there; make sure it is our daemon.
    let check = run_process(
        git_cmd(base).args(["ls-remote", &format!("git://127.0.0.1:{port}/repo")]),
        Duration::from_secs(20),
    );
    (check.code == Some(0) && child.exited().is_none()).then_some(child)
}

// ------------------------------------------------------------ the fixture

/// One store's world; see the module docs.
#[derive(Debug)]
pub struct Fixture {
    pub root: PathBuf,
    pub work: PathBuf,
    pub served: PathBuf,
    pub keys: PathBuf,
    pub trust: PathBuf,
    pub state: PathBuf,
    pub config: PathBuf,
    pub edge: Edge,
    pub daemon: GitDaemon,
    pub interval_secs: u64,
    // Last, so that the processes above are gone before the files are.
    _tmp: tempfile::TempDir,
}

/// What an attack must not change.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub state: String,
    pub audit: Vec<Value>,
    pub applied: Option<String>,
    pub outbox: usize,
}

impl Fixture {
    /// The template signed (every store at revision 1) and served; an
    /// empty edge; nothing reconciled yet.
    pub fn new() -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("fleet-e2e-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().to_path_buf();
        let work = root.join("work");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet-repo-template"),
            &work,
        );
        enroll_secrets(&root, &work, &root.join("state"), STORE);
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["add", "-A"]);
        git(
            &work,
            &["commit", "-q", "-m", "fleet repo from the template"],
        );
        fleet(&root, &["keygen", "--out", "keys"]);
        let keys = root.join("keys");
        let trust = root.join("trust");
        std::fs::create_dir_all(&trust).expect("trust dir");
        std::fs::copy(keys.join("minisign.pub"), trust.join("release.pub")).expect("pin key");
        let served = root.join("srv/repo.git");
        std::fs::create_dir_all(&served).expect("srv dir");
        git(&served, &["init", "-q", "--bare", "-b", "main"]);
        let edge = Edge::start(&root.join("edge"), &root.join("edge/edge.db"));
        let daemon = GitDaemon::start(&root.join("srv"), &root.join("git-daemon.log"));
        let fx = Fixture {
            work,
            served,
            keys,
            trust,
            state: root.join("state"),
            config: root.join("reconciler.toml"),
            edge,
            daemon,
            interval_secs: 60,
            root,
            _tmp: tmp,
        };
        fx.sign(&[]);
        fx.write_config();
        fx
    }

    /// [`Fixture::new`] and a first pass that converged revision 1.
    pub fn converged() -> Fixture {
        let fx = Fixture::new();
        let run = fx.once();
        run.expect_code(0, "first converge");
        assert_eq!(run.outcome(), "converged", "{run}");
        fx
    }

    // -------------------------------------------------------- config

    pub fn config_text(&self) -> String {
        reconciler_config(
            STORE,
            &self.daemon.url(),
            &self.trust,
            &self.edge,
            &self.state,
            self.interval_secs,
        )
    }

    /// A configuration for another edge and state directory (same repo and trust).
    pub fn config_text_for(&self, edge: &Edge, state: &Path) -> String {
        self.config_text()
            .replace(&self.edge.base(), &edge.base())
            .replace(
                &self.edge.token_file.display().to_string(),
                &edge.token_file.display().to_string(),
            )
            .replace(
                &self.state.display().to_string(),
                &state.display().to_string(),
            )
    }

    /// Write `reconciler.toml` for the current edge and daemon addresses.
    pub fn write_config(&self) {
        std::fs::write(&self.config, self.config_text()).expect("write config");
    }

    // -------------------------------------------------------- the reconciler

    pub fn reconciler_cmd(&self, args: &[&str]) -> Command {
        reconciler_cmd(&self.config, args)
    }

    pub fn reconciler(&self, args: &[&str]) -> Run {
        run_process(&mut self.reconciler_cmd(args), PROCESS_TIMEOUT)
    }

    /// `fleet-reconciler once`.
    pub fn once(&self) -> Run {
        self.reconciler(&["once"])
    }

    /// Start the reconciler without waiting (output to files in the root).
    pub fn spawn_reconciler(&self, args: &[&str], name: &str) -> Guarded {
        // Not beside the config: the daemon watches that directory.
        let logs = self.root.join("logs");
        std::fs::create_dir_all(&logs).expect("logs dir");
        let out = std::fs::File::create(logs.join(format!("{name}.stdout"))).expect("out");
        let err = std::fs::File::create(logs.join(format!("{name}.stderr"))).expect("err");
        Guarded::new(
            self.reconciler_cmd(args)
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .spawn()
                .expect("spawn fleet-reconciler"),
        )
    }

    pub fn spawned_output(&self, name: &str) -> (String, String) {
        let read = |ext: &str| {
            std::fs::read_to_string(self.root.join("logs").join(format!("{name}.{ext}")))
                .unwrap_or_default()
        };
        (read("stdout"), read("stderr"))
    }

    // -------------------------------------------------------- the fleet repo

    pub fn path(&self, rel: &str) -> PathBuf {
        self.work.join(rel)
    }

    /// `tenants/acme/stores/<store>/<file>` in the work repo.
    pub fn store_file(&self, store: &str, file: &str) -> PathBuf {
        self.work.join("tenants/acme/stores").join(store).join(file)
    }

    /// Replace the first `from` by `to` in a work repo file.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.path(rel);
        let text = std::fs::read_to_string(&path).expect("read source");
        assert!(text.contains(from), "{rel} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write source");
    }

    /// Set a variation's base price in `tenants/acme/menu.yaml` (a line
    /// `{id: <variation>, …, price: N}`) and commit.
    pub fn set_base_price(&self, variation: &str, price: u32) {
        let path = self.path("tenants/acme/menu.yaml");
        let text = std::fs::read_to_string(&path).expect("menu.yaml");
        let needle = format!("{{id: {variation},");
        let mut found = false;
        let lines: Vec<String> = text
            .lines()
            .map(|line| {
                if !line.contains(&needle) {
                    return line.to_owned();
                }
                found = true;
                let at = line.find("price: ").expect("the variation has a price") + 7;
                let end = line[at..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map(|n| at + n)
                    .unwrap_or(line.len());
                format!("{}{price}{}", &line[..at], &line[end..])
            })
            .collect();
        assert!(found, "menu.yaml has no variation {variation}");
        std::fs::write(&path, lines.join("\n") + "\n").expect("write menu.yaml");
        self.commit(&format!("{variation} costs {price}"));
    }

    /// `git add -A` and commit in the work repo.
    pub fn commit(&self, message: &str) {
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
    }

    /// The Git host gets the work repo's HEAD as `main` (force-push).
    pub fn publish(&self) {
        let served = self.served.display().to_string();
        git(
            &self.work,
            &["push", "-q", "--force", &served, "HEAD:refs/heads/main"],
        );
    }

    pub fn commit_and_publish(&self, message: &str) {
        self.commit(message);
        self.publish();
    }

    /// Force-push an older commit to the host's `main`.
    pub fn force_push(&self, commit: &str) {
        let served = self.served.display().to_string();
        git(
            &self.work,
            &[
                "push",
                "-q",
                "--force",
                &served,
                &format!("{commit}:refs/heads/main"),
            ],
        );
    }

    pub fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// Throw away the work repo's changes back to `commit`.
    pub fn reset_to(&self, commit: &str) {
        git(&self.work, &["reset", "-q", "--hard", commit]);
        git(&self.work, &["clean", "-q", "-fdx"]);
    }

    /// Run `fleet sign` with the trusted key (plus `extra` flags) on the
    /// work repo, without committing.
    pub fn sign_files(&self, extra: &[&str]) -> Run {
        let key = self.keys.join("minisign.key").display().to_string();
        let repo = self.work.display().to_string();
        let mut args = vec!["sign", "--key", &key, "--repo", &repo];
        args.extend_from_slice(extra);
        fleet(&self.root, &args)
    }

    /// `fleet secret rewrap` of the work repo with the template's demo
    /// escrow identity.
    pub fn rewrap(&self) -> Run {
        let repo = self.work.display().to_string();
        let escrow = self
            .work
            .join(".fleet/DEMO-escrow.key")
            .display()
            .to_string();
        fleet(
            &self.root,
            &["secret", "rewrap", "--identity", &escrow, "--repo", &repo],
        )
    }

    /// Sign, commit and publish.
    pub fn sign(&self, extra: &[&str]) -> Run {
        let run = self.sign_files(extra);
        self.commit_and_publish("release");
        run
    }

    /// The trusted secret key, for hand-made releases.
    pub fn secret_key(&self) -> minisign::SecretKey {
        cli::ops::keygen::load_secret_key(&self.keys.join("minisign.key"), None)
            .expect("the fixture's secret key")
    }

    /// `fleet render acme/soho --repo work` as JSON, its secret values
    /// decrypted with the store's identity as the reconciler does (render
    /// prints them encrypted, as they go into the release).
    pub fn render(&self) -> Value {
        let repo = self.work.display().to_string();
        let run = fleet(&self.root, &["render", STORE, "--repo", &repo]);
        let state: schemas::StoreState =
            schemas::yaml::decode("render", &run.stdout).expect("fleet render prints a state");
        let identity = release::secrets::read_identity(&self.state.join("age.key"))
            .expect("the store's identity");
        let wrap = std::fs::read(self.store_file("soho", "tenant-key.age")).ok();
        let opened = release::secrets::open_state(&state, "soho", &identity, wrap.as_deref());
        assert!(opened.held_back.is_empty(), "{:?}", opened.held_back);
        serde_json::to_value(&opened.state).expect("a state is JSON")
    }

    /// A release file of the work repo, parsed.
    pub fn release(&self, store: &str) -> Value {
        let text =
            std::fs::read_to_string(self.store_file(store, "release.yaml")).expect("release.yaml");
        serde_saphyr::from_str::<Value>(&text).expect("release.yaml is YAML")
    }

    // -------------------------------------------------------- checks

    /// The edge's applied configuration equals `fleet render` of the work repo.
    pub fn assert_converged(&self) {
        self.assert_edge_equals(&self.render());
    }

    pub fn assert_edge_equals(&self, render: &Value) {
        let edge = self.edge.pos_state();
        if &edge != render {
            panic!(
                "the edge's state differs from `fleet render {STORE}` (edge != render):\n{}",
                json_differences(&edge, render).join("\n")
            );
        }
    }

    /// The reports queued in `state_dir/outbox/`, oldest first.
    pub fn outbox(&self) -> Vec<(u64, PathBuf)> {
        let mut out: Vec<(u64, PathBuf)> = match std::fs::read_dir(self.state.join("outbox")) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter_map(|p| {
                    let n = p
                        .file_name()?
                        .to_str()?
                        .strip_suffix(".json")?
                        .parse()
                        .ok()?;
                    Some((n, p))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        out.sort();
        out
    }

    /// The newest queued report: what reaches the status service next.
    pub fn newest_report(&self) -> Value {
        let (_, path) = self.outbox().pop().expect("a report in the outbox");
        serde_json::from_slice(&std::fs::read(&path).expect("read report")).expect("report JSON")
    }

    /// `state_dir/applied.json`, as bytes (to compare), if any.
    pub fn applied_text(&self) -> Option<String> {
        std::fs::read_to_string(self.state.join("applied.json")).ok()
    }

    pub fn applied_revision(&self) -> Option<u64> {
        self.applied_text()
            .map(|t| serde_json::from_str::<Value>(&t).expect("applied.json"))
            .and_then(|v| v["revision"].as_u64())
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.edge.state_text(),
            audit: self.edge.audit(),
            applied: self.applied_text(),
            outbox: self.outbox().len(),
        }
    }
}

// ------------------------------------------------------------ fleet-status

/// The `fleet-status` binary of this build profile, built once if missing
/// or stale (the reconciler crate does not depend on the status crate).
pub fn status_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        testkit::workspace_binary(
            Path::new(RECONCILER),
            "status",
            "fleet-status",
            &[
                "status/src",
                "status/Cargo.toml",
                "migrations/status",
                "release/src",
                "wire/src",
                "schemas/src",
            ],
        )
    })
}

/// The real `fleet-status` on a SQLite file, reading the fixture's Git
/// host and trusting its release key; killed on drop.
#[derive(Debug)]
pub struct StatusService {
    pub dir: PathBuf,
    pub database_url: String,
    pub repo_url: String,
    pub pubkey: PathBuf,
    pub port: u16,
    /// Flags of `serve` beyond the fixed ones.
    pub extra: Vec<String>,
    child: Option<Guarded>,
}

/// The HMAC secret of the status service's Git hook in these tests.
pub const HOOK_SECRET: &str = "e2e-hook-secret-0123456789";

impl StatusService {
    /// Start it on `dir/status.db`; it fetches `repo_url` every second.
    pub fn start(dir: &Path, repo_url: &str, pubkey: &Path) -> StatusService {
        StatusService::start_with(dir, repo_url, pubkey, &["--fetch-interval-secs", "1"])
    }

    /// Start it with other `serve` flags (`--fetch-interval-secs` among them).
    pub fn start_with(dir: &Path, repo_url: &str, pubkey: &Path, extra: &[&str]) -> StatusService {
        let database_url = format!("sqlite://{}", dir.join("status.db").display());
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        StatusService::try_start(dir, &database_url, repo_url, pubkey, 0, &extra)
            .unwrap_or_else(|e| panic!("fleet-status: {e}"))
    }

    /// Started with the Git hook on (secret [`HOOK_SECRET`]) and a fetch
    /// only every hour otherwise: what a push triggers is the hook's doing.
    pub fn with_hook(fx: &Fixture) -> StatusService {
        let dir = fx.root.join("status");
        std::fs::create_dir_all(&dir).expect("status dir");
        let secret = dir.join("hook.secret");
        std::fs::write(&secret, HOOK_SECRET).expect("hook secret");
        let secret = secret.display().to_string();
        StatusService::start_with(
            &dir,
            &fx.daemon.url(),
            &fx.keys.join("minisign.pub"),
            &[
                "--fetch-interval-secs",
                "3600",
                "--hook-secret-file",
                &secret,
            ],
        )
    }

    /// Call the Git hook as a Git host does after a push; expects 202.
    pub fn hook(&self) {
        use hmac::Mac as _;
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(HOOK_SECRET.as_bytes())
            .expect("HMAC takes any key");
        mac.update(body);
        let signature: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let http = client();
        let status = runtime().block_on(async {
            http.post(format!("{}/api/v1/hooks/git", self.url()))
                .header("X-Hub-Signature-256", format!("sha256={signature}"))
                .body(body.to_vec())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or_else(|e| panic!("POST /api/v1/hooks/git: {e}"))
        });
        assert_eq!(status, 202, "the Git hook");
    }

    /// Started next to a fixture: its Git host, its trusted key.
    pub fn for_fixture(fx: &Fixture) -> StatusService {
        StatusService::start(
            &fx.root.join("status"),
            &fx.daemon.url(),
            &fx.keys.join("minisign.pub"),
        )
    }

    fn try_start(
        dir: &Path,
        database_url: &str,
        repo_url: &str,
        pubkey: &Path,
        port: u16,
        extra: &[String],
    ) -> Result<StatusService, String> {
        std::fs::create_dir_all(dir).expect("status dir");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.join("status.log"))
            .expect("status log");
        let mut child = Guarded::new(
            Command::new(status_bin())
                .args(["--database-url", database_url])
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .args(["--repo-url", repo_url])
                // A pinned trust root (`*.yaml`) or release key(s).
                .arg(if pubkey.extension().is_some_and(|e| e == "yaml") {
                    "--root"
                } else {
                    "--pubkey"
                })
                .arg(pubkey)
                .arg("--state-dir")
                .arg(dir.join("state"))
                .args(["--report-interval-secs", "60"])
                .args(extra)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn fleet-status"),
        );
        let addr = testkit::listening_addr(child.child(), Duration::from_secs(60))
            .map_err(|line| format!("first line {line:?}"))?;
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("no port in {addr:?}"))?;
        Ok(StatusService {
            dir: dir.to_path_buf(),
            database_url: database_url.to_owned(),
            repo_url: repo_url.to_owned(),
            pubkey: pubkey.to_path_buf(),
            port,
            extra: extra.to_vec(),
            child: Some(child),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("status.log")).unwrap_or_default()
    }

    /// SIGKILL: the service becomes unreachable.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
    }

    /// Start again on the same database and port.
    pub fn restart(&mut self) {
        self.kill();
        let mut last = String::new();
        for _ in 0..50 {
            match StatusService::try_start(
                &self.dir,
                &self.database_url,
                &self.repo_url,
                &self.pubkey,
                self.port,
                &self.extra,
            ) {
                Ok(s) => {
                    *self = s;
                    return;
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "fleet-status did not come back on port {}: {last}",
            self.port
        );
    }

    /// An admin command on the same database; answers its stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let run = run_process(
            Command::new(status_bin())
                .args(["--database-url", &self.database_url])
                .args(args),
            PROCESS_TIMEOUT,
        );
        run.expect_code(0, &format!("fleet-status {}", args.join(" ")));
        run.stdout.trim().to_owned()
    }

    /// A single-use bootstrap token for `store`.
    pub fn bootstrap_token(&self, store: &str) -> String {
        self.admin(&["token", "create", store, "--ttl", "1h"])
    }

    /// An operator token for `tenant` (the last word of `operator
    /// create`'s last line, after the token's id).
    pub fn operator(&self, tenant: &str) -> String {
        let out = self.admin(&["operator", "create", "--tenant", tenant]);
        out.split_whitespace().last().unwrap_or_default().to_owned()
    }

    /// `GET path` with an operator token, expecting 200.
    pub fn get(&self, operator: &str, path: &str) -> Value {
        let http = client();
        let r = runtime().block_on(async {
            let resp = http
                .get(format!("{}{path}", self.url()))
                .bearer_auth(operator)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {path}: {e}"));
            let status = resp.status().as_u16();
            Resp {
                status,
                text: resp.text().await.unwrap_or_default(),
            }
        });
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.json()
    }

    /// `GET path` with a header (`Authorization: Bearer …` or the
    /// dashboard's cookie): the status and the raw bytes.
    pub fn get_bytes(&self, header: (&str, &str), path: &str) -> (u16, Vec<u8>) {
        let http = client();
        runtime().block_on(async {
            let resp = http
                .get(format!("{}{path}", self.url()))
                .header(header.0, header.1)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {path}: {e}"));
            let status = resp.status().as_u16();
            (status, resp.bytes().await.unwrap_or_default().to_vec())
        })
    }

    /// `GET /metrics` (no token needed).
    pub fn metrics(&self) -> String {
        let http = client();
        runtime().block_on(async {
            http.get(format!("{}/metrics", self.url()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
                .text()
                .await
                .unwrap_or_default()
        })
    }

    /// A dashboard page as the signed-in `operator` sees it (HTML).
    pub fn page(&self, operator: &str, path: &str) -> String {
        let http = client();
        let (status, text) = runtime().block_on(async {
            let resp = http
                .get(format!("{}{path}", self.url()))
                .header("Cookie", format!("fleet_operator={operator}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {path}: {e}"));
            (
                resp.status().as_u16(),
                resp.text().await.unwrap_or_default(),
            )
        });
        assert_eq!(status, 200, "GET {path}: {text}");
        text
    }

    /// The operator view of one store (`GET /api/v1/stores/{store}`).
    pub fn store_view(&self, operator: &str, store: &str) -> Value {
        self.get(operator, &format!("/api/v1/stores/{store}"))
    }

    /// Poll `check` on the store view until it holds (bounded).
    pub fn wait_for_store(
        &self,
        operator: &str,
        store: &str,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let view = self.store_view(operator, store);
            if check(&view) {
                return view;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: not within {timeout:?}; the status service shows:\n{view:#}\nlog:\n{}",
                    tail(&self.log(), 3000)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Fixture {
    /// THREATS row 1: flip one bit in the middle of soho's signed
    /// release.yaml in the work repo (not committed).
    pub fn flip_release_byte(&self) {
        let path = self.store_file("soho", "release.yaml");
        let mut bytes = std::fs::read(&path).expect("release");
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        std::fs::write(&path, bytes).expect("tamper");
    }

    /// Point the reconciler at `status` (and keep everything else).
    pub fn write_config_with_status(&self, status: &StatusService, extra: &str) {
        let text = format!(
            "{}status_url = \"{}\"\n{extra}",
            self.config_text(),
            status.url()
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    /// `fleet-reconciler enroll` with a fresh bootstrap token; must succeed.
    pub fn enroll(&self, status: &StatusService) -> Run {
        let token = status.bootstrap_token(STORE);
        let run = self.reconciler(&["enroll", "--status-url", &status.url(), "--token", &token]);
        run.expect_code(0, "enroll");
        run
    }
}

/// Assert that `run` was refused with one of `codes` and that nothing
/// changed since `before` but one more queued report; answers the code.
pub fn assert_refused(fx: &Fixture, before: &Snapshot, run: &Run, codes: &[&str]) -> String {
    assert_eq!(run.code, Some(3), "expected exit 3 (refused)\n{run}");
    assert_eq!(run.outcome(), "refused", "{run}");
    let code = codes
        .iter()
        .find(|c| run.stdout.contains(&format!("refused [{c}]")))
        .unwrap_or_else(|| panic!("stdout names none of the refusals {codes:?}\n{run}"));
    assert_eq!(
        fx.edge.state_text(),
        before.state,
        "a refused release changed the edge's GET /state"
    );
    assert_eq!(
        fx.edge.audit(),
        before.audit,
        "a refused release wrote to the edge's audit log"
    );
    fx.edge.assert_audit_verifies();
    assert_eq!(
        fx.applied_text(),
        before.applied,
        "a refused release changed the applied record"
    );
    assert_eq!(
        fx.outbox().len(),
        before.outbox + 1,
        "one report per pass is queued"
    );
    let report = fx.newest_report();
    assert_eq!(report["outcome"], "refused", "{report:#}");
    assert_eq!(report["refusal"]["code"], *code, "{report:#}");
    assert_eq!(report["store"], STORE, "{report:#}");
    (*code).to_owned()
}

/// A stand-in peer on real HTTP, for peers that are not ours or that must
/// misbehave (a rogue relay, a POS backend of another edge contract): it
/// answers `GET <route>…` with `200` and the current `answer` (JSON), and
/// anything else with `other` (status line, body), recording that
/// request's first line in `others`. One request per connection.
pub struct StandIn {
    pub port: u16,
    pub answer: std::sync::Arc<std::sync::Mutex<String>>,
    pub others: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl StandIn {
    pub fn start(
        route: &'static str,
        answer: &str,
        other: (&'static str, &'static str),
    ) -> StandIn {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let port = listener.local_addr().expect("addr").port();
        let answer = std::sync::Arc::new(std::sync::Mutex::new(answer.to_owned()));
        let others = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (shared, seen) = (answer.clone(), others.clone());
        let wanted = format!("GET {route}");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let (status, body) = if head.starts_with(&wanted) {
                    ("200 OK", shared.lock().expect("answer").clone())
                } else {
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    seen.lock().expect("seen").push(line);
                    (other.0, other.1.to_owned())
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        StandIn {
            port,
            answer,
            others,
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
