//! The real `fleet-edge` binary on port 0 with a temporary SQLite file and
//! token file, and a small reqwest client for it.
//!
//! The server prints `listening on <addr>` on stdout; its logs go to
//! `server.log` in the server's directory (read them when a test fails).

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_fleet-edge");
pub const TOKEN: &str = "test-token-0123456789";

/// One running server.
pub struct Server {
    pub base: String,
    pub dir: Arc<tempfile::TempDir>,
    pub database: PathBuf,
    pub client: reqwest::Client,
    child: Option<Child>,
}

/// An answer: status, JSON body (Null when empty) and headers.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
    pub fn version(&self) -> u64 {
        self.body["version"].as_u64().unwrap()
    }
}

impl Server {
    /// A fresh server on a fresh database.
    pub fn start() -> Server {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let db = dir.path().join("edge.db");
        Server::start_on(dir, db)
    }

    /// A server on `database` (created when missing), files in `dir`.
    pub fn start_on(dir: Arc<tempfile::TempDir>, database: PathBuf) -> Server {
        let token_file = dir.path().join("token");
        // Surrounding whitespace is trimmed by the server.
        std::fs::write(&token_file, format!("  {TOKEN}\n")).unwrap();
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.path().join("server.log"))
            .unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(&database)
            .arg("--token-file")
            .arg(&token_file)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let addr = testkit::listening_addr(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|line| panic!("unexpected first line {line:?}; see server.log"));
        Server {
            base: format!("http://{addr}"),
            dir,
            database,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            child: Some(child),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGTERM and wait: the graceful path.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        child.wait().unwrap()
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        Self::send(self.request(Method::GET, path)).await
    }

    /// `PUT` with `If-None-Match: *`.
    pub async fn create(&self, path: &str, body: Value) -> Resp {
        Self::send(
            self.request(Method::PUT, path)
                .header("If-None-Match", "*")
                .json(&body),
        )
        .await
    }

    /// `PUT` with `If-Match: <version>`.
    pub async fn update(&self, path: &str, version: u64, body: Value) -> Resp {
        Self::send(
            self.request(Method::PUT, path)
                .header("If-Match", version.to_string())
                .json(&body),
        )
        .await
    }

    pub async fn delete(&self, path: &str, version: u64) -> Resp {
        Self::send(
            self.request(Method::DELETE, path)
                .header("If-Match", version.to_string()),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        Self::send(self.request(Method::POST, path).json(&body)).await
    }

    /// Create or replace whatever is there.
    pub async fn upsert(&self, path: &str, body: Value) -> Resp {
        let cur = self.get(path).await;
        if cur.status == 200 {
            self.update(path, cur.version(), body).await
        } else {
            self.create(path, body).await
        }
    }

    /// Create and expect 201.
    pub async fn must_create(&self, path: &str, body: Value) -> Value {
        let r = self.create(path, body).await;
        assert_eq!(r.status, 201, "PUT {path}: {:?}", r.body);
        r.body
    }

    /// Every audit entry.
    pub async fn audit(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let r = self.get(&format!("/audit?after={after}&limit=1000")).await;
            assert_eq!(r.status, 200);
            let entries = r.body["entries"].as_array().unwrap().clone();
            out.extend(entries);
            match r.body["next_after"].as_u64() {
                Some(n) => after = n,
                None => return out,
            }
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

/// Run the binary with `args`; (success, stderr).
pub fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small menu and kitchen: tax, categories, stations, routing, groups,
/// items, discounts (the POS-MODEL.md example, trimmed).
pub async fn seed_example(s: &Server) {
    s.must_create(
        "/stations/grill",
        json!({"id": "grill", "name": "Grill Line", "kind": "printer"}),
    )
    .await;
    s.must_create(
        "/stations/bar",
        json!({"id": "bar", "name": "Bar", "kind": "kds"}),
    )
    .await;
    s.must_create(
        "/menu/taxes/sales-tax",
        json!({"id": "sales-tax", "name": "Sales Tax", "rate": "7.25", "inclusion": "exclusive"}),
    )
    .await;
    s.must_create(
        "/menu/categories/burgers",
        json!({"id": "burgers", "name": "Burgers", "sort": 10}),
    )
    .await;
    s.must_create(
        "/menu/categories/drinks",
        json!({"id": "drinks", "name": "Drinks", "sort": 20}),
    )
    .await;
    s.must_create(
        "/menu/modifier-groups/addons",
        json!({"id": "addons", "name": "Add-ons", "min": 0, "max": 3, "modifiers": [
            {"id": "bacon", "name": "Bacon", "price": 200},
            {"id": "cheese", "name": "Cheese", "price": 100}]}),
    )
    .await;
    s.must_create(
        "/menu/items/classic-burger",
        json!({"id": "classic-burger", "name": "Classic Burger", "category": "burgers",
            "taxes": ["sales-tax"], "modifier_groups": ["addons"],
            "variations": [
                {"id": "classic-single", "name": "Single", "sku": "BRG-001", "price": 1099},
                {"id": "classic-double", "name": "Double", "sku": "BRG-002", "price": 1499}]}),
    )
    .await;
    s.must_create(
        "/menu/items/soda",
        json!({"id": "soda", "name": "Fountain Soda", "category": "drinks",
            "taxes": ["sales-tax"], "stations": ["bar"],
            "variations": [{"id": "soda-small", "name": "Small", "price": 199}]}),
    )
    .await;
    s.must_create(
        "/menu/discounts/two-off",
        json!({"id": "two-off", "name": "$2 Off", "kind": "amount", "amount": 200}),
    )
    .await;
    let r = s
        .update(
            "/routing",
            0,
            json!({"default": ["grill"], "categories": {"drinks": ["bar"]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

/// An argon2id PHC hash of `pin`, as `fleet hash-pin` makes one.
pub fn pin_hash(pin: &str) -> String {
    use argon2::PasswordHasher as _;
    let salt = argon2::password_hash::SaltString::encode_b64(b"fleet-test-salt!").unwrap();
    argon2::Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// Staff: role `cashier` (order.create, discount.apply) and `manager`
/// (inherits cashier; order.void, discount.restricted); users `sam`
/// (cashier, PIN 1234) and `jane` (manager, PIN 9876). Answers the roles'
/// versions.
pub async fn seed_staff(s: &Server) -> (u64, u64) {
    let cashier = s
        .must_create(
            "/roles/cashier",
            json!({"id": "cashier", "name": "Cashier", "level": 10,
                "permissions": ["order.create", "discount.apply"]}),
        )
        .await;
    let manager = s
        .must_create(
            "/roles/manager",
            json!({"id": "manager", "name": "Manager", "level": 50, "inherits": ["cashier"],
                "permissions": ["order.void", "discount.restricted"]}),
        )
        .await;
    s.must_create(
        "/users/sam",
        json!({"id": "sam", "name": "Sam Lee", "role": "cashier", "pin_hash": pin_hash("1234")}),
    )
    .await;
    s.must_create(
        "/users/jane",
        json!({"id": "jane", "name": "Jane Doe", "role": "manager", "pin_hash": pin_hash("9876")}),
    )
    .await;
    (
        cashier["version"].as_u64().unwrap(),
        manager["version"].as_u64().unwrap(),
    )
}
