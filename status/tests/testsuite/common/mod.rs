//! Shared parts of the status service's tests: the real `fleet-status`
//! binary on port 0, a fresh database (a temporary SQLite file, or a fresh
//! uniquely named PostgreSQL database dropped afterwards), signed node
//! requests, and a real fleet repo signed by the real `fleet` binary.
//!
//! # Where `fleet` comes from
//!
//! The status crate uses the reconciler as a library, so Cargo does not
//! build the `fleet` binary for these tests. [`fleet_bin`] looks for it
//! beside `fleet-status` (`target/<profile>/fleet`) and, when it is missing
//! or older than its sources, runs `$CARGO build -p cli --bin fleet`
//! once per test process, as the reconciler's tests do for `fleet-edge`.
//!
//! # PostgreSQL
//!
//! `FLEET_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) names the maintenance
//! connection. A PostgreSQL test fails, never skips, when it cannot connect.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use ed25519_dalek::SigningKey;
use rand_core::OsRng;
use serde_json::{Value, json};
use sqlx::Connection as _;

pub const BIN: &str = env!("CARGO_BIN_EXE_fleet-status");
pub const HOOK_SECRET: &str = "hook-secret-0123456789";

/// `on_both!(test_a, test_b)`: each `async fn test_a(db: TestDb)` of the
/// calling file runs twice, as `sqlite::test_a` and `postgres::test_a`.
#[allow(unused_macros)]
macro_rules! on_both {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(super::TestDb::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(super::TestDb::postgres()).await;
                }
            )*
        }
    };
}

// ------------------------------------------------------------ databases

/// A fresh database for one test; a PostgreSQL one is dropped on drop.
pub struct TestDb {
    pub url: String,
    pg_drop: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("status.db").display());
        TestDb {
            url,
            pg_drop: None,
            _dir: Some(dir),
        }
    }

    pub fn postgres() -> TestDb {
        let admin = std::env::var("FLEET_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("status_test_{}", status::tokens::nonce());
        // On its own thread: the tests call this from inside a runtime.
        let (a, n) = (admin.clone(), name.clone());
        std::thread::spawn(move || create_pg_database(&a, &n))
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        let (base, _) = admin.rsplit_once('/').unwrap();
        TestDb {
            url: format!("{base}/{name}"),
            pg_drop: Some((admin, name)),
            _dir: None,
        }
    }

    /// The database through the service's own storage layer.
    pub async fn open(&self) -> std::sync::Arc<dyn status::store::Store> {
        status::store::open(&self.url).await.unwrap()
    }
}

/// Store `report` the way `POST /api/v1/reports` does, through
/// [`Store::ingest_report`] with a fresh nonce, so that a test that fills
/// a database meets the same checks as production: `report.key_id` must
/// be an enrolled, unrevoked node. Answers the report's id; panics unless
/// it was stored.
///
/// [`Store::ingest_report`]: status::store::Store::ingest_report
pub async fn ingest(
    store: &std::sync::Arc<dyn status::store::Store>,
    report: &status::store::NewReport,
) -> i64 {
    let nonce = status::tokens::nonce();
    match store.ingest_report(&nonce, report, None).await.unwrap() {
        status::store::Ingested::Stored(id) => id,
        other => panic!(
            "report of {} by key {} not stored: {other:?}",
            report.store, report.key_id
        ),
    }
}

fn create_pg_database(admin: &str, name: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {admin} ({e}); these tests need it \
                 (CI starts it; set FLEET_TEST_POSTGRES_URL to point elsewhere)"
                )
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_drop.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

// ------------------------------------------------------------ server

/// One running `fleet-status serve`, killed on drop.
pub struct Server {
    pub base: String,
    pub db_url: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    child: Option<Child>,
}

/// Options of a server beyond the database.
#[derive(Default)]
pub struct ServerOpts {
    pub repo: Option<PathBuf>,
    pub pubkey: Option<PathBuf>,
    pub extra: Vec<String>,
}

impl ServerOpts {
    /// A server that fetches `repo` and verifies with its release key.
    pub fn fetching(repo: &FleetRepo) -> ServerOpts {
        ServerOpts {
            repo: Some(repo.work()),
            pubkey: Some(repo.pubkey()),
            extra: Vec::new(),
        }
    }
}

impl Server {
    pub fn start(db_url: &str, opts: ServerOpts) -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hook-secret"), format!("{HOOK_SECRET}\n")).unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url", db_url])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--hook-secret-file")
            .arg(dir.path().join("hook-secret"));
        if let Some(r) = &opts.repo {
            cmd.arg("--repo-url").arg(r);
        }
        if let Some(p) = &opts.pubkey {
            cmd.arg("--pubkey").arg(p);
        }
        cmd.args(&opts.extra);
        let mut child = cmd
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let result = testkit::listening_addr(&mut child, Duration::from_secs(60));
        let line = result.clone().err().unwrap_or_default();
        let Ok(addr) = result else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "fleet-status did not announce its address (got {line:?}); log:\n{}",
                std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
            );
        };
        Server {
            base: format!("http://{addr}"),
            db_url: db_url.to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap(),
            dir,
            child: Some(child),
        }
    }

    /// SIGTERM (through `kill(1)`); answers the exit status if the server
    /// stopped within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGKILL: the replica dies mid-work.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `fleet-status <args> --database-url <this server's>`; panics unless it succeeds.
    pub fn admin(&self, args: &[&str]) -> String {
        admin(&self.db_url, args)
    }

    pub fn token(&self, store: &str) -> String {
        self.admin(&["token", "create", store, "--ttl", "1h"])
    }

    /// An operator token for `tenants`: the last word of `operator
    /// create`'s output (`<id> <token>`).
    pub fn operator(&self, tenants: &[&str]) -> String {
        let mut args = vec!["operator", "create"];
        for t in tenants {
            args.push("--tenant");
            args.push(t);
        }
        self.operator_with(&args[2..])
    }

    /// `operator create` with these flags; answers the token.
    pub fn operator_with(&self, flags: &[&str]) -> String {
        let mut args = vec!["operator", "create"];
        args.extend_from_slice(flags);
        let out = self.admin(&args);
        out.split_whitespace().last().unwrap_or_default().to_owned()
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Resp {
        send(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    pub async fn post_as(&self, token: &str, path: &str) -> Resp {
        send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        send(self.client.post(format!("{}{path}", self.base)).json(body)).await
    }

    /// `POST /api/v1/enroll`.
    pub async fn enroll(&self, token: &str, node: &Node) -> Resp {
        self.post_json(
            "/api/v1/enroll",
            &json!({"token": token, "node_public_key": node.public_key()}),
        )
        .await
    }

    /// Enroll a fresh node for `store`; panics unless it works.
    pub async fn enrolled_node(&self, store: &str) -> Node {
        let node = Node::new();
        let r = self.enroll(&self.token(store), &node).await;
        assert_eq!(r.status, 201, "enroll {store}: {:?}", r.body);
        assert_eq!(r.body["store"], store);
        node
    }

    /// A node-signed request.
    pub async fn signed(&self, node: &Node, method: &str, path: &str, body: &[u8]) -> Resp {
        let headers = node.sign(method, path, body, Utc::now());
        self.send_signed(method, path, body, &headers).await
    }

    pub async fn send_signed(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &status::node_auth::SignedHeaders,
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self
            .client
            .request(m, format!("{}{path}", self.base))
            .body(body.to_vec());
        for (k, v) in headers.pairs() {
            rb = rb.header(k, v);
        }
        if !body.is_empty() {
            rb = rb.header("content-type", "application/json");
        }
        send(rb).await
    }

    /// A node-signed report.
    pub async fn report(&self, node: &Node, report: &Value) -> Resp {
        let body = serde_json::to_vec(report).unwrap();
        self.signed(node, "POST", "/api/v1/reports", &body).await
    }

    /// `POST /api/v1/hooks/git` signed with [`HOOK_SECRET`].
    pub async fn hook(&self, body: &[u8], secret: &str) -> Resp {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let sig: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        send(
            self.client
                .post(format!("{}/api/v1/hooks/git", self.base))
                .header("X-Hub-Signature-256", format!("sha256={sig}"))
                .body(body.to_vec()),
        )
        .await
    }

    /// A dashboard request as a browser sends it: the operator cookie (if
    /// any), an optional form body, redirects not followed.
    pub async fn page(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
    ) -> Page {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = client.request(m, format!("{}{path}", self.base));
        if let Some(c) = cookie {
            rb = rb.header("cookie", format!("fleet_operator={c}"));
        }
        if let Some(f) = form {
            rb = rb
                .header("content-type", "application/x-www-form-urlencoded")
                .body(f.to_owned());
        }
        let r = rb.send().await.unwrap();
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        Page {
            status: r.status().as_u16(),
            location,
            set_cookie,
            body: r.text().await.unwrap(),
        }
    }

    /// The store as an operator of its tenant sees it.
    pub async fn store_view(&self, operator: &str, store: &str) -> Value {
        let r = self
            .get_as(operator, &format!("/api/v1/stores/{store}"))
            .await;
        assert_eq!(r.status, 200, "GET store {store}: {:?}", r.body);
        r.body
    }

    /// Poll until `cond` holds for the store's view (30 s at most).
    pub async fn wait_for(
        &self,
        operator: &str,
        store: &str,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self
                .get_as(operator, &format!("/api/v1/stores/{store}"))
                .await;
            let v = r.body;
            if r.status == 200 && cond(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} of {store}; last view {v:#}\nlog:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `fleet-status <args> --database-url URL`; panics unless it succeeds; stdout trimmed.
pub fn admin(db_url: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .args(["--database-url", db_url])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fleet-status {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A dashboard answer.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: String,
    pub set_cookie: String,
    pub body: String,
}

/// An answer: status and JSON body (a string when not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
}

pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Resp { status, body }
}

// ------------------------------------------------------------ nodes

/// A store node's key pair.
pub struct Node {
    pub key: SigningKey,
}

impl Node {
    pub fn new() -> Node {
        Node {
            key: SigningKey::generate(&mut OsRng),
        }
    }

    pub fn public_key(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key.verifying_key().as_bytes())
    }

    pub fn sign(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        at: chrono::DateTime<Utc>,
    ) -> status::node_auth::SignedHeaders {
        status::node_auth::sign_request(&self.key, method, path, body, at, &status::tokens::nonce())
    }
}

/// A report as the reconciler sends it.
pub fn report(store: &str, outcome: &str, desired: Option<u64>, applied: Option<u64>) -> Value {
    json!({
        "store": store,
        "outcome": outcome,
        "desired_revision": desired,
        "applied_revision": applied,
        "commit": "3f2c000000000000000000000000000000000000",
        "fetched_commit": "3f2c000000000000000000000000000000000000",
        "changes": [],
        "drift": [],
        "overridden": [],
        "refusal": if outcome == "refused" {
            json!({"code": "release/expired", "message": "the release expired"})
        } else {
            Value::Null
        },
        "errors": if outcome == "failed" { json!(["edge unreachable"]) } else { json!([]) },
        "warnings": [],
        "started_at": Utc::now().to_rfc3339(),
        "duration_ms": 12,
        "reconciler_version": "0.1.0",
    })
}

/// One entity change, as in `changes`, `overridden` and (with `diff`) `drift`.
pub fn entity_change(kind: &str, id: &str) -> Value {
    json!({"kind": kind, "id": id, "change": "changed",
           "fields": [{"field": "price", "before": 1099, "after": 1199}]})
}

// ------------------------------------------------------------ fleet repo

/// The `fleet` binary of this build profile, built once if missing or
/// stale (see `testkit::workspace_binary`).
pub fn fleet_bin() -> &'static Path {
    static BIN_PATH: OnceLock<PathBuf> = OnceLock::new();
    BIN_PATH.get_or_init(|| {
        testkit::workspace_binary(
            Path::new(BIN),
            "cli",
            "fleet",
            &["cli/src", "cli/Cargo.toml", "release/src", "schemas/src"],
        )
    })
}

/// A minisign key pair in `dir` from the real `fleet keygen`.
pub fn fleet_keygen(dir: &Path) {
    let out = std::process::Command::new(fleet_bin())
        .arg("keygen")
        .arg("--out")
        .arg(dir)
        .output()
        .expect("run fleet keygen");
    assert!(
        out.status.success(),
        "fleet keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real fleet repo made from `fleet-repo-template/`, signed by the real
/// `fleet sign` with a key from the real `fleet keygen`.
pub struct FleetRepo {
    pub root: tempfile::TempDir,
}

impl FleetRepo {
    pub fn new() -> FleetRepo {
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("work");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet-repo-template"),
            &work,
        );
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["add", "-A"]);
        git(
            &work,
            &["commit", "-q", "-m", "fleet repo from the template"],
        );
        let repo = FleetRepo { root };
        repo.fleet(&["keygen", "--out", "keys"]);
        repo.sign(&[]);
        repo
    }

    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    pub fn pubkey(&self) -> PathBuf {
        self.root.path().join("keys/minisign.pub")
    }

    pub fn fleet(&self, args: &[&str]) -> String {
        let out = Command::new(fleet_bin())
            .args(args)
            .current_dir(self.root.path())
            .env_remove("FLEET_SIGNING_PASSWORD")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fleet {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `fleet sign` with `extra` flags, then commit.
    pub fn sign(&self, extra: &[&str]) {
        let key = self
            .root
            .path()
            .join("keys/minisign.key")
            .display()
            .to_string();
        let work = self.work().display().to_string();
        let mut args = vec!["sign", "--key", key.as_str(), "--repo", work.as_str()];
        args.extend_from_slice(extra);
        self.fleet(&args);
        git(&self.work(), &["add", "-A"]);
        git(
            &self.work(),
            &["commit", "-q", "--allow-empty", "-m", "release"],
        );
    }
}

pub fn git(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Release Bot")
        .env("GIT_AUTHOR_EMAIL", "bot@example.com")
        .env("GIT_COMMITTER_NAME", "Release Bot")
        .env("GIT_COMMITTER_EMAIL", "bot@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub use testkit::copy_dir;
