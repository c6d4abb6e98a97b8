//! `deploy/pi/install.sh` (issues #8 and #16), a thin wrapper around the
//! `fleet-store` package, run for real: it installs the package built from
//! this build's binaries into a throwaway root (`--root`, the real `dpkg
//! --root`) and writes the store's own files there. Checked: the files,
//! their modes and owners (the root's `fleet` user, from the package's
//! sysusers.d), the config (parsed by the reconciler's own loader), the
//! unit links, that a second run keeps the edge token and drops a
//! rotated-out trust key, that `--dry-run` changes nothing and prints the
//! real machine's steps in order, and that bad flags are refused. The units
//! are checked with `systemd-analyze verify` (`deploy/pi/verify-units.sh`;
//! `.ci/run` installs systemd), and the backup unit's commands are run as
//! written against a real, served edge.

use crate::e2e;
use crate::packages::{as_root, present, store_package, user_in};

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/pi")
}

fn sh(cmd: &mut Command) -> Output {
    cmd.output().expect("run a script")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Staging {
    tmp: tempfile::TempDir,
    package: PathBuf,
}

impl Staging {
    fn new() -> Staging {
        let tmp = tempfile::tempdir().expect("tempdir");
        let keys = tmp.path().join("keys");
        std::fs::create_dir_all(&keys).expect("keys");
        for k in ["release.pub", "next.pub"] {
            std::fs::write(keys.join(k), format!("untrusted comment: {k}\nRWQ{k}\n")).expect("key");
        }
        std::fs::write(tmp.path().join("git.token"), "git-secret-token\n").expect("git token");
        std::fs::write(
            tmp.path().join("root.yaml"),
            "apiVersion: fleet/v1\nkind: TrustRoot\nversion: 1\n",
        )
        .expect("trust root");
        let package = store_package(&tmp.path().join("deb"));
        Staging { tmp, package }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn root(&self, rel: &str) -> PathBuf {
        self.p("root").join(rel.trim_start_matches('/'))
    }

    /// install.sh with the store and repo, `extra` and `--root`.
    fn install(&self, extra: &[&str]) -> Output {
        let mut cmd = Command::new("bash");
        cmd.arg(deploy_dir().join("install.sh"))
            .args(["--store", "acme/soho"])
            .args(["--repo-url", "https://git.example.com/acme/fleet.git"])
            .arg("--root")
            .arg(self.p("root"))
            .args(extra);
        sh(&mut cmd)
    }

    fn package_arg(&self) -> String {
        self.package.display().to_string()
    }
}

#[test]
fn install_sh_installs_the_package_and_writes_the_store_config_in_a_root() {
    if !as_root("install_sh_installs_the_package_and_writes_the_store_config_in_a_root") {
        return;
    }
    let s = Staging::new();
    let release = s.p("keys/release.pub").display().to_string();
    let next = s.p("keys/next.pub").display().to_string();
    let git_token = s.p("git.token").display().to_string();
    let trust_root = s.p("root.yaml").display().to_string();
    let package = s.package_arg();
    let o = s.install(&[
        "--package",
        &package,
        "--trust-root",
        &trust_root,
        "--trust-key",
        &release,
        "--trust-key",
        &next,
        "--status-url",
        "https://status.example.com",
        "--git-token-file",
        &git_token,
        "--interval",
        "120",
        "--edge-listen",
        "0.0.0.0:7171",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("skipping enrollment"));

    let (fleet_uid, fleet_gid) = user_in(&s.p("root"), "fleet");
    // path, mode, owner (None: root), group (None: root).
    let expect = [
        ("/etc/fleet", 0o750, None, Some(fleet_gid)),
        ("/etc/fleet/trust", 0o750, None, Some(fleet_gid)),
        ("/etc/fleet/trust/root.yaml", 0o640, None, Some(fleet_gid)),
        ("/etc/fleet/trust/release.pub", 0o640, None, Some(fleet_gid)),
        ("/etc/fleet/trust/next.pub", 0o640, None, Some(fleet_gid)),
        ("/etc/fleet/reconciler.toml", 0o640, None, Some(fleet_gid)),
        ("/etc/fleet/edge.env", 0o640, None, Some(fleet_gid)),
        (
            "/etc/fleet/edge.token",
            0o600,
            Some(fleet_uid),
            Some(fleet_gid),
        ),
        (
            "/etc/fleet/git.token",
            0o600,
            Some(fleet_uid),
            Some(fleet_gid),
        ),
        ("/var/lib/fleet", 0o750, Some(fleet_uid), Some(fleet_gid)),
        (
            "/var/lib/fleet-edge",
            0o750,
            Some(fleet_uid),
            Some(fleet_gid),
        ),
        (
            "/var/backups/fleet-edge",
            0o750,
            Some(fleet_uid),
            Some(fleet_gid),
        ),
        ("/usr/bin/fleet-edge", 0o755, None, None),
        ("/usr/bin/fleet-reconciler", 0o755, None, None),
        // The pages the units' Documentation= lines name.
        ("/usr/share/doc/fleet-store/edge.md", 0o644, None, None),
        (
            "/usr/share/doc/fleet-store/reconciler.md",
            0o644,
            None,
            None,
        ),
        (
            "/usr/lib/systemd/system/fleet-edge.service",
            0o644,
            None,
            None,
        ),
        (
            "/usr/lib/systemd/system/fleet-reconciler.service",
            0o644,
            None,
            None,
        ),
    ];
    for (path, want, uid, gid) in expect {
        let m = std::fs::metadata(s.root(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (want, uid.unwrap_or(0), gid.unwrap_or(0)),
            "{path}: mode, owner, group"
        );
    }
    let token = std::fs::read_to_string(s.root("/etc/fleet/edge.token")).expect("edge token");
    assert!(token.trim().len() >= 40, "a generated token: {token:?}");
    assert_eq!(
        std::fs::read_to_string(s.root("/etc/fleet/git.token")).expect("git token"),
        "git-secret-token\n"
    );
    // The POS and the reconciler are enabled (links only, in a root).
    let wants = s.root("/etc/systemd/system/multi-user.target.wants");
    assert!(present(&wants.join("fleet-edge.service")));
    assert!(present(&wants.join("fleet-reconciler.service")));

    let config_path = s.root("/etc/fleet/reconciler.toml");
    let config_text = std::fs::read_to_string(&config_path).expect("config");
    let config = reconciler::config::Config::parse(&config_text, &config_path)
        .unwrap_or_else(|e| panic!("{e}\n{config_text}"));
    assert_eq!(config.store, "acme/soho");
    assert_eq!(config.edge_url, "http://127.0.0.1:7171");
    assert_eq!(
        config.status_url.as_deref(),
        Some("https://status.example.com")
    );
    assert_eq!(config.interval_secs, 120);
    assert_eq!(config.state_dir, Path::new("/var/lib/fleet"));
    assert_eq!(config.edge_token_file, Path::new("/etc/fleet/edge.token"));
    assert_eq!(
        config.git_token_file.as_deref(),
        Some(Path::new("/etc/fleet/git.token"))
    );
    assert!(
        !config_text.contains("git-secret-token"),
        "no secret in the config"
    );
    // Only the settings given change the package's edge.env.
    let env = std::fs::read_to_string(s.root("/etc/fleet/edge.env")).expect("edge.env");
    assert!(env.contains("\nFLEET_EDGE_LISTEN=0.0.0.0:7171\n"), "{env}");
    assert!(!env.contains("FLEET_EDGE_LISTEN=0.0.0.0:7070"), "{env}");
    assert!(env.contains("\nFLEET_BACKUP_KEEP_DAYS=14\n"), "{env}");

    // Again, without --package (the root has it), with the old key rotated
    // out, no Git token, the timer: the token stays, the key and the Git
    // token go, the edge keeps its port, the timer replaces the daemon.
    let o = s.install(&[
        "--trust-key",
        &next,
        "--status-url",
        "https://status.example.com",
        "--timer",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(s.root("/etc/fleet/edge.token")).expect("edge token"),
        token,
        "a second run keeps the edge token"
    );
    assert!(!s.root("/etc/fleet/trust/release.pub").exists());
    assert!(s.root("/etc/fleet/trust/next.pub").exists());
    assert!(
        s.root("/etc/fleet/trust/root.yaml").exists(),
        "a pinned root stays when a later run does not give --trust-root"
    );
    assert!(!s.root("/etc/fleet/git.token").exists());
    let config_text = std::fs::read_to_string(&config_path).expect("config");
    assert!(!config_text.contains("git_token_file"), "{config_text}");
    assert!(
        config_text.contains("edge_url = \"http://127.0.0.1:7171\""),
        "the port edge.env has: {config_text}"
    );
    assert!(!present(&wants.join("fleet-reconciler.service")));
    assert!(present(&s.root(
        "/etc/systemd/system/timers.target.wants/fleet-reconciler-once.timer"
    )));
}

#[test]
fn install_sh_dry_run_changes_nothing_and_bad_flags_are_refused() {
    let s = Staging::new();
    let release = s.p("keys/release.pub").display().to_string();
    let package = s.package_arg();
    let o = s.install(&["--package", &package, "--trust-key", &release, "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("would run: dpkg --root="), "{}", text(&o));
    assert!(!s.p("root").exists(), "a dry run makes no staging root");
    assert!(
        out.contains("/etc/fleet/reconciler.toml (0640)")
            && out.contains("    | store = \"acme/soho\""),
        "the dry run shows the config it would write:\n{out}"
    );
    assert!(
        out.trim_end().ends_with("Dry run: nothing was changed."),
        "{out}"
    );
    assert!(!out.contains("Installed"), "{out}");

    // A store on the status service's release relay (DESIGN.md §13): the
    // config it would write says so, and parses; Git stays the fallback.
    let o = s.install(&[
        "--package",
        &package,
        "--trust-key",
        &release,
        "--source",
        "status",
        "--status-url",
        "https://status.example.com",
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let config: String = out
        .lines()
        .skip_while(|l| !l.contains("/etc/fleet/reconciler.toml (0640)"))
        .skip(1)
        .map_while(|l| l.strip_prefix("    | "))
        .map(|l| format!("{l}\n"))
        .collect();
    let parsed = reconciler::config::Config::parse(&config, Path::new("reconciler.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(
        parsed.source,
        reconciler::config::Source::Status,
        "{config}"
    );
    assert_eq!(
        parsed.repo_url.as_deref(),
        Some("https://git.example.com/acme/fleet.git")
    );

    let help = sh(Command::new("bash")
        .arg(deploy_dir().join("install.sh"))
        .arg("--help"));
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--package FILE.deb"));

    let headoffice = s.package.with_file_name("fleet-headoffice_0.1.0_amd64.deb");
    let headoffice = headoffice.display().to_string();
    let not_a_package = s.p("git.token").display().to_string();
    for (bad, needle) in [
        (
            vec!["--trust-key", release.as_str(), "--store", "Soho"],
            "--store",
        ),
        (
            vec!["--package", package.as_str()],
            "--trust-root (or --trust-key) is required",
        ),
        (
            vec![
                "--package",
                package.as_str(),
                "--trust-root",
                not_a_package.as_str(),
            ],
            "is not a trust root",
        ),
        (
            vec!["--trust-key", release.as_str(), "--interval", "0"],
            "--interval",
        ),
        (
            vec!["--trust-key", release.as_str(), "--source", "status"],
            "--source status needs --status-url",
        ),
        (
            vec!["--trust-key", release.as_str(), "--source", "ftp"],
            "--source must be git or status",
        ),
        (
            vec!["--trust-key", release.as_str(), "--colour"],
            "unknown argument",
        ),
        (
            vec!["--trust-key", release.as_str(), "--bin-dir", "/tmp"],
            "--bin-dir is gone",
        ),
        // Nothing installed in the root and no package to install.
        (
            vec!["--trust-key", release.as_str()],
            "the fleet-store package is not installed",
        ),
        (
            vec!["--trust-key", release.as_str(), "--package", &headoffice],
            "is the fleet-headoffice package",
        ),
        (
            vec!["--trust-key", release.as_str(), "--package", &not_a_package],
            "is not a Debian package",
        ),
        (
            vec![
                "--package",
                package.as_str(),
                "--trust-key",
                release.as_str(),
                "--edge-listen",
                "7070",
            ],
            "--edge-listen must be ADDRESS:PORT",
        ),
    ] {
        let o = s.install(&bad);
        assert_eq!(o.status.code(), Some(1), "{bad:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(needle),
            "{bad:?}: {}",
            text(&o)
        );
        assert!(!s.p("root").exists(), "{bad:?} changed nothing");
    }
}

#[test]
fn the_pi_units_pass_systemd_analyze_verify() {
    // `.ci/run` installs systemd-analyze: without it this fails, never skips.
    assert!(
        Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok(),
        "systemd-analyze is not installed (Debian: apt-get install systemd)"
    );
    let o = sh(Command::new("bash").arg(deploy_dir().join("verify-units.sh")));
    assert!(o.status.success(), "{}", text(&o));
}

/// The value of `Key=` in a unit, `%%` unescaped.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key}= in the unit"))
        .replace("%%", "%")
}

#[test]
fn the_backup_unit_backs_up_a_served_edge_and_deletes_old_backups() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db_dir = tmp.path().join("var/lib/fleet-edge");
    let backups = tmp.path().join("var/backups/fleet-edge");
    std::fs::create_dir_all(&backups).expect("backup dir");
    let edge = e2e::Edge::start(&db_dir, &db_dir.join("edge.db"));
    let old = backups.join("edge-20200101T000000Z.db");
    std::fs::write(&old, "old").expect("old backup");
    let month_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| f.set_modified(month_ago))
        .expect("age the old backup");

    let unit = std::fs::read_to_string(deploy_dir().join("fleet-edge-backup.service"))
        .expect("backup unit");
    let map = |v: String| {
        v.replace(
            "/usr/bin/fleet-edge",
            &e2e::edge_bin().display().to_string(),
        )
        .replace("/var/lib/fleet-edge", &db_dir.display().to_string())
        .replace("/var/backups/fleet-edge", &backups.display().to_string())
        .replace("${FLEET_BACKUP_KEEP_DAYS}", "14")
    };
    // ExecStart= is `/bin/sh -c '…'`: run its script with sh.
    let start = map(unit_value(&unit, "ExecStart"));
    let script = start
        .strip_prefix("/bin/sh -c '")
        .and_then(|s| s.strip_suffix('\''))
        .expect("ExecStart=/bin/sh -c '…'");
    let o = sh(Command::new("sh").args(["-c", script]));
    assert!(o.status.success(), "backup: {}", text(&o));
    let post = map(unit_value(&unit, "ExecStartPost"));
    let words: Vec<&str> = post.split_whitespace().collect();
    let o = sh(Command::new(words[0]).args(&words[1..]));
    assert!(o.status.success(), "prune: {}", text(&o));

    let names: Vec<String> = std::fs::read_dir(&backups)
        .expect("backups")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("edge-") && names[0].ends_with("Z.db"),
        "{names:?}"
    );
    assert!(
        !old.exists(),
        "a backup older than the kept days is deleted"
    );
    // The copy is a database `fleet-edge restore` accepts.
    let restored = tmp.path().join("restored.db");
    let o = sh(Command::new(e2e::edge_bin())
        .args(["restore", "--from"])
        .arg(backups.join(&names[0]))
        .arg("--database")
        .arg(&restored));
    assert!(o.status.success(), "restore: {}", text(&o));
    drop(edge);
}

/// Issue #16: on the real machine the POS backend is started before the
/// enrollment (a head-office token problem must not keep the POS down),
/// and a bootstrap token without a status service to enroll with is
/// refused before anything changes. The real-machine path is read from
/// `--dry-run` without `--root`, which prints every step it would run.
#[test]
fn install_sh_starts_the_edge_before_it_enrolls() {
    let s = Staging::new();
    let release = s.p("keys/release.pub").display().to_string();
    let token = s.p("soho.token");
    std::fs::write(&token, "fsb_made-up\n").expect("token file");
    let token = token.display().to_string();
    let run = |extra: &[&str]| {
        sh(Command::new("bash")
            .arg(deploy_dir().join("install.sh"))
            .args(["--store", "acme/soho"])
            .args(["--repo-url", "https://git.example.com/acme/fleet.git"])
            .args(["--package", &s.package_arg()])
            .args(["--trust-key", &release, "--bootstrap-token-file", &token])
            .args(extra))
    };
    let o = run(&[
        "--status-url",
        "https://status.example.com",
        "--device",
        "register-1",
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{out}"))
    };
    let package = at("would run: dpkg --force-confold -i");
    let edge = at("would run: systemctl enable --now fleet-edge.service");
    let enroll = at("would run: runuser -u fleet -- /usr/bin/fleet-reconciler");
    let reconciler = at("would run: systemctl enable fleet-reconciler.service");
    let device = at(
        "would run: runuser -u fleet -- /usr/bin/fleet-edge device add register-1 --database /var/lib/fleet-edge/edge.db",
    );
    assert!(
        package < edge && edge < device && device < enroll && enroll < reconciler,
        "{out}"
    );
    let o = run(&[
        "--status-url",
        "https://status.example.com",
        "--device",
        "Register 1",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--device Register 1: a device name"),
        "{}",
        text(&o)
    );

    let o = run(&["--dry-run"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--bootstrap-token-file needs --status-url"),
        "{}",
        text(&o)
    );
}
