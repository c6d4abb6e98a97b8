//! `deploy/cloud/` (issue #8 item 7) tested the only way it can be here,
//! without a container engine: the real `fleet-status` is started through
//! the image's entrypoint with exactly the environment and flags of the
//! `status` service in `compose.yaml`, and of `fleet-status.service`,
//! against the local PostgreSQL. Only what names the container world is
//! mapped: `/run/secrets/*`, `/etc/fleet-status`, `/var/lib/fleet-status`
//! and `%d` to temporary directories, the `db` host to the test database,
//! the listen address to a free loopback port, and the repo to a local one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn cloud_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cloud")
}

/// A killed-on-drop child.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct World {
    tmp: tempfile::TempDir,
    db: common::TestDb,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["secrets", "config", "state", "creds"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        std::fs::write(
            tmp.path().join("secrets/postgres_password"),
            "pw-0123456789\n",
        )
        .unwrap();
        std::fs::write(tmp.path().join("secrets/hook_secret"), "hook-0123456789\n").unwrap();
        std::fs::write(tmp.path().join("creds/db-password"), "pw-0123456789\n").unwrap();
        std::fs::write(tmp.path().join("creds/hook-secret"), "hook-0123456789\n").unwrap();
        common::fleet_keygen(&tmp.path().join("keys"));
        std::fs::copy(
            tmp.path().join("keys/minisign.pub"),
            tmp.path().join("config/release.pub"),
        )
        .unwrap();
        git2::Repository::init_bare(tmp.path().join("repo.git")).unwrap();
        World {
            tmp,
            db: common::TestDb::postgres(),
        }
    }

    fn path(&self, rel: &str) -> String {
        self.tmp.path().join(rel).display().to_string()
    }

    /// A value of the deployment with the container world mapped to ours.
    fn map(&self, v: &str) -> String {
        if let Some(rest) = v.strip_prefix("postgres://") {
            // postgres://USER@db:5432/NAME → the test database (the local
            // server trusts loopback; the password file is still read).
            assert!(
                rest.contains("@db:5432/") || rest.contains("@127.0.0.1:5432/"),
                "{v}"
            );
            return self.db.url.clone();
        }
        if v == "0.0.0.0:8080" || v == "127.0.0.1:8080" {
            return "127.0.0.1:0".to_owned();
        }
        if v.starts_with("https://git.example.com/") {
            return self.path("repo.git");
        }
        v.replace("/run/secrets/", &format!("{}/", self.path("secrets")))
            .replace("/etc/fleet-status/", &format!("{}/", self.path("config")))
            .replace("/var/lib/fleet-status", &self.path("state"))
            .replace("%d/", &format!("{}/", self.path("creds")))
    }

    /// Start the entrypoint with `env` and `args`; answer the service and
    /// its base URL once it printed `listening on`.
    fn start(&self, env: &[(String, String)], args: &[String]) -> (Service, String) {
        let mut cmd = Command::new("sh");
        cmd.arg(cloud_dir().join("fleet-status-entrypoint"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FLEET_STATUS_BIN", env!("CARGO_BIN_EXE_fleet-status"))
            .current_dir(self.tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(self.tmp.path().join("status.log")).unwrap(),
            ));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let service = Service(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("fleet-status announces its address within 60 s");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(self.tmp.path().join("status.log"));
                panic!("first line {line:?}; log:\n{}", log.unwrap_or_default())
            })
            .to_owned();
        (service, format!("http://{addr}"))
    }
}

fn healthz(base: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    rt.block_on(async {
        loop {
            let r = reqwest::get(format!("{base}/healthz")).await;
            if let Ok(r) = r
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "GET {base}/healthz never answered 200"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn compose_status_service_starts_with_its_env_and_command_on_postgres() {
    let text = std::fs::read_to_string(cloud_dir().join("compose.yaml")).unwrap();
    let compose: Value = serde_saphyr::from_str(&text).unwrap();
    let status = &compose["services"]["status"];
    let db = &compose["services"]["db"];
    assert!(db["healthcheck"]["test"].is_array(), "db healthcheck");
    assert!(
        status["healthcheck"]["test"].is_array(),
        "status healthcheck"
    );
    assert_eq!(status["depends_on"]["db"]["condition"], "service_healthy");
    let env: Vec<(String, String)> = status["environment"]
        .as_object()
        .expect("environment map")
        .iter()
        .map(|(k, v)| (k.clone(), scalar(v)))
        .collect();
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert!(
        var("FLEET_STATUS_DATABASE_URL").is_some_and(|u| u.starts_with("postgres://")),
        "{env:?}"
    );
    assert_eq!(
        var("FLEET_STATUS_DATABASE_PASSWORD_FILE"),
        Some("/run/secrets/postgres_password")
    );
    assert!(
        !env.iter().any(|(_, v)| v.contains("pw-")),
        "no password in the environment"
    );
    let world = World::new();
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k, world.map(&v))).collect();
    let args: Vec<String> = status["command"]
        .as_array()
        .expect("command list")
        .iter()
        .map(|v| world.map(&scalar(v)))
        .collect();
    let (service, base) = world.start(&env, &args);
    healthz(&base);
    drop(service);

    // The entrypoint hands the password file's content to the driver and
    // leaves no *_FILE variable behind.
    let out = Command::new("sh")
        .arg(cloud_dir().join("fleet-status-entrypoint"))
        .env_clear()
        .env("FLEET_STATUS_BIN", "/usr/bin/env")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("PGPASSWORD=pw-0123456789\n"), "{printed}");
    assert!(!printed.contains("_FILE="), "{printed}");

    // The admin commands run in the same container with the same environment.
    let out = Command::new("sh")
        .arg(cloud_dir().join("fleet-status-entrypoint"))
        .args(["token", "create", "acme/soho", "--ttl", "1h"])
        .env("FLEET_STATUS_BIN", env!("CARGO_BIN_EXE_fleet-status"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
}

#[test]
fn the_systemd_unit_starts_fleet_status_with_its_env_and_flags_on_postgres() {
    let unit = std::fs::read_to_string(cloud_dir().join("fleet-status.service")).unwrap();
    let world = World::new();
    // What /etc/fleet-status/env holds (documented in the unit's header).
    let mut vars: Vec<(String, String)> = vec![
        ("FLEET_STATUS_DATABASE_URL".into(), world.db.url.clone()),
        ("FLEET_STATUS_REPO_URL".into(), world.path("repo.git")),
    ];
    assert!(unit.contains("FLEET_STATUS_DATABASE_URL=postgres://"));
    assert!(unit.contains("EnvironmentFile=/etc/fleet-status/env"));
    for line in unit.lines() {
        if let Some(kv) = line.strip_prefix("Environment=") {
            let (k, v) = kv.split_once('=').expect("K=V");
            vars.push((k.to_owned(), world.map(v)));
        }
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/fleet-status-entrypoint"));
    let args: Vec<String> = words
        .map(|w| {
            let w = w.replace("${FLEET_STATUS_REPO_URL}", &world.path("repo.git"));
            world.map(&w)
        })
        .collect();
    assert!(
        !args.iter().any(|a| a.contains("hook-0123")),
        "the hook secret is a file, not a flag"
    );
    let (service, base) = world.start(&vars, &args);
    healthz(&base);
    drop(service);
}

/// Every store holds a long-poll, one file descriptor each: the unit sets a
/// hard open-files limit well above a large fleet, and `fleet-status
/// serve` raises its soft limit (systemd's default is 1024) to the hard one
/// at start, so it does not refuse the 1,025th store.
#[test]
fn serve_raises_its_open_files_limit_to_the_hard_one() {
    let unit = std::fs::read_to_string(cloud_dir().join("fleet-status.service")).unwrap();
    let in_unit: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("LimitNOFILE= in fleet-status.service")
        .trim()
        .parse()
        .expect("a number");
    assert!(in_unit >= 20_000, "LimitNOFILE={in_unit}");

    let dir = tempfile::tempdir().unwrap();
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("status.db").display()
    );
    let log = dir.path().join("server.log");
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -Sn 256 && exec "$0" serve --listen 127.0.0.1:0 --database-url "$1""#)
        .arg(common::BIN)
        .arg(&db)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut service = Service(child);
    let addr = testkit::listening_addr(&mut service.0, Duration::from_secs(60));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", service.0.id())).unwrap();
    drop(service);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(addr.is_ok(), "{addr:?}\n{text}");
    // "Max open files            1048576              1048576              files"
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let n: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(n.len(), 2, "{line}");
    let (soft, hard) = (n[0], n[1]);
    assert_eq!(soft, hard, "{line}\n{text}");
    assert_ne!(soft, "256", "{line}");
    assert!(text.contains("Open-files limit raised"), "{text}");
}
