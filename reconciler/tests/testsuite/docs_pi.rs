//! The commands of `docs/operations/pi.md`, re-run as written (issue #16),
//! so that a doc which drifts from the code fails CI.
//!
//! Every command of every `sh` block is either run here, against a fake
//! root, or named in [`NEEDS_A_BOOTED_MACHINE`] with the reason; a command
//! that is neither fails the test, so a changed or added command must be
//! looked at. Running "as written" means: `sudo` and `sudo -u fleet` are
//! dropped (the test is the only user), `/tmp/…` is a sandbox directory,
//! and `/etc/fleet`, `/var/lib` and `/var/backups` are the staging root the
//! doc's own `install.sh --root` command made. The binaries are the real
//! ones, the status service is a real `fleet-status` on a real database.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::e2e::{Edge, Fixture, StatusService, edge_bin, status_bin};

/// Commands that need a booted Pi (systemd, the journal, installing into
/// `/`), with why; each is covered elsewhere where it can be.
const NEEDS_A_BOOTED_MACHINE: &[(&str, &str)] = &[
    (
        "systemctl status fleet-edge fleet-reconciler",
        "a booted systemd; the units are checked by systemd-analyze verify (deploy_pi)",
    ),
    (
        "journalctl -u fleet-reconciler -n 50",
        "the journal of a booted machine",
    ),
    (
        "sudo systemctl stop fleet-reconciler fleet-edge",
        "a booted systemd",
    ),
    (
        "sudo systemctl start fleet-edge fleet-reconciler",
        "a booted systemd",
    ),
    (
        "sudo deploy/pi/install.sh … --bootstrap-token-file /tmp/soho.token --reenroll",
        "installs into / and enrolls; its order is checked through --dry-run (deploy_pi)",
    ),
];

/// The commands of every ```` ```sh ```` block of `markdown`: continuation
/// lines joined, comments and indentation dropped.
fn shell_commands(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_block = !in_block && t == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        let code = strip_comment(t).trim_end();
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(code);
        let command = std::mem::take(&mut pending)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !command.is_empty() {
            out.push(command);
        }
    }
    out
}

/// A line without its `# comment` (a `#` after whitespace).
fn strip_comment(line: &str) -> &str {
    match line.find(" #") {
        Some(i) => &line[..i],
        None if line.starts_with('#') => "",
        None => line,
    }
}

#[test]
fn every_command_of_pi_md_runs_against_a_fake_root() {
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(repo_root.join("docs/operations/pi.md")).expect("pi.md");
    let commands = shell_commands(&doc);
    assert!(commands.len() >= 8, "found only {commands:?}");

    // The world the doc assumes: a status service at head office, the
    // binaries and the release key in /tmp on the Pi.
    let fx = Fixture::new();
    let status = StatusService::for_fixture(&fx);
    let sandbox = fx.root.join("pi");
    let tmp = sandbox.join("tmp");
    let bin = tmp.join("fleet-bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    for b in [edge_bin(), crate::e2e::RECONCILER.as_ref()] {
        let b: &Path = b;
        std::fs::copy(b, bin.join(b.file_name().expect("a name"))).expect("copy binary");
    }
    std::fs::copy(fx.keys.join("minisign.pub"), tmp.join("release.pub")).expect("release key");
    let staging = tmp.join("fleet-staging");
    let path_dirs: Vec<PathBuf> = [edge_bin(), status_bin(), crate::e2e::RECONCILER.as_ref()]
        .iter()
        .map(|b| b.parent().expect("a dir").to_path_buf())
        .collect();
    let path = std::env::join_paths(path_dirs.into_iter().chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");

    let mut last_install = String::new();
    let mut ran = Vec::new();
    for command in &commands {
        if let Some((_, why)) = NEEDS_A_BOOTED_MACHINE.iter().find(|(c, _)| c == command) {
            eprintln!("not run here ({why}): {command}");
            continue;
        }
        // As written, in the sandbox.
        let mut c = command.clone();
        if c.starts_with("sudo deploy/pi/install.sh") {
            if c.contains(" … ") {
                c = c.replacen(" … ", &format!(" {} ", last_install.trim()), 1);
            } else {
                last_install = c["sudo deploy/pi/install.sh".len()..].to_owned();
            }
        }
        let c = c
            .replace("sudo -u fleet ", "")
            .replace("sudo ", "")
            .replace(" /tmp/", &format!(" {}/", tmp.display()))
            .replace(
                "fleet-reconciler status",
                &format!(
                    "fleet-reconciler --config {}/etc/fleet/reconciler.toml status",
                    staging.display()
                ),
            )
            .replace(" /var/", &format!(" {}/var/", staging.display()));
        let known = c.starts_with("fleet-status token create")
            || c.starts_with("install -m")
            || c.starts_with("deploy/pi/install.sh")
            || c.starts_with("fleet-reconciler --config")
            || c.starts_with("ls ")
            || c.starts_with("fleet-edge restore");
        assert!(
            known,
            "pi.md has a command this test neither runs nor lists as needing a booted machine: {command:?}"
        );
        if c.starts_with("ls ") {
            // The doc lists backups before restoring one: make the one it names.
            make_backup(&staging, &c, &sandbox);
        }
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &c])
            .current_dir(if c.starts_with("deploy/") {
                repo_root.clone()
            } else {
                sandbox.clone()
            })
            .env("PATH", &path)
            .env("FLEET_STATUS_DATABASE_URL", &status.database_url)
            .output()
            .expect("run a doc command");
        assert!(
            out.status.success(),
            "pi.md command failed: {command}\nrun as: {c}\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran.push(command.clone());
    }
    // What the runnable commands must have left.
    assert!(std::fs::read_to_string(tmp.join("soho.token")).is_ok_and(|t| t.starts_with("fsb_")));
    assert!(staging.join("etc/fleet/reconciler.toml").is_file());
    assert!(ran.len() >= 6, "ran only {ran:?}");
}

/// The backup file the doc's `restore` command names, made by the real
/// `fleet-edge backup` from a real edge database in the staging root.
fn make_backup(staging: &Path, ls_command: &str, sandbox: &Path) {
    let backups = staging.join("var/backups/fleet-edge");
    assert!(
        ls_command.contains(&backups.display().to_string()),
        "{ls_command}"
    );
    let database = staging.join("var/lib/fleet-edge/edge.db");
    drop(Edge::start(&sandbox.join("edge"), &database));
    let out = Command::new(edge_bin())
        .args(["backup", "--database"])
        .arg(&database)
        .arg("--out")
        .arg(backups.join("edge-20261201T033012Z.db"))
        .output()
        .expect("fleet-edge backup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
