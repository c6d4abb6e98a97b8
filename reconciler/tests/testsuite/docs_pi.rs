//! The commands of `docs/operations/pi.md`, re-run as written (issue #16),
//! so that a doc which drifts from the code fails CI.
//!
//! Every command of every `sh` block is either run here, against a fake
//! root, or named in [`NEEDS_A_BOOTED_MACHINE`] with the reason; a command
//! that is neither fails the test, so a changed or added command must be
//! looked at. Running "as written" means: `sudo` is dropped (the test runs
//! as root), `sudo -u fleet` runs as the staging root's `fleet` user
//! (`setpriv`), `/tmp/…` is a sandbox directory, and `/etc/fleet`,
//! `/var/lib` and `/var/backups` are the staging root the doc's own
//! `install.sh --root` command made. The package is `scripts/build-deb`'s,
//! from this build's binaries, under the name the doc gives it; the status
//! service is a real `fleet-status` on a real database.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::e2e::{Edge, Fixture, StatusService, edge_bin, status_bin};
use crate::packages::{as_root, store_package, user_in};

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
    if !as_root("every_command_of_pi_md_runs_against_a_fake_root") {
        return;
    }
    let fx = Fixture::new();
    let status = StatusService::for_fixture(&fx);
    let sandbox = fx.root.join("pi");
    let tmp = sandbox.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    // The staging root's fleet user must reach the files it is given.
    std::fs::set_permissions(&fx.root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::copy(fx.keys.join("minisign.pub"), tmp.join("release.pub")).expect("release key");
    // The fleet's trust root version 1, as signing.md makes it.
    let key = fx.keys.join("minisign.pub").display().to_string();
    let repo = fx.work.display().to_string();
    crate::e2e::fleet(
        &fx.root,
        &[
            "root",
            "init",
            "--root-key",
            &key,
            "--threshold",
            "1",
            "--release-key",
            &key,
            "--repo",
            &repo,
        ],
    )
    .expect_code(0, "fleet root init");
    std::fs::copy(fx.work.join("trust/root/1.yaml"), tmp.join("root.yaml")).expect("root pin");
    // The package, under every name the doc gives it.
    let package = store_package(&fx.root.join("deb"));
    for name in commands.iter().flat_map(|c| c.split_whitespace()) {
        if let Some(file) = name.strip_prefix("/tmp/")
            && file.starts_with("fleet-store_")
            && file.ends_with(".deb")
        {
            std::fs::copy(&package, tmp.join(file)).expect("the package");
        }
    }
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
        let as_fleet = if c.contains("sudo -u fleet ") {
            let (uid, gid) = user_in(&staging, "fleet");
            format!("setpriv --reuid={uid} --regid={gid} --clear-groups ")
        } else {
            String::new()
        };
        let c = c
            .replace("sudo -u fleet ", &as_fleet)
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
        let bare = c.strip_prefix(as_fleet.as_str()).unwrap_or(&c);
        let known = bare.starts_with("fleet-status token create")
            || bare.starts_with("install -m")
            || bare.starts_with("deploy/pi/install.sh")
            || bare.starts_with("fleet-reconciler --config")
            || bare.starts_with("ls ")
            || bare.starts_with("fleet-edge restore");
        assert!(
            known,
            "pi.md has a command this test neither runs nor lists as needing a booted machine: {command:?}"
        );
        if c.starts_with("ls ") {
            // The doc lists backups before restoring one: make the one it names.
            make_backup(&staging, &c, &sandbox.join("edge"));
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
/// `fleet-edge backup` from a real edge database in `work`, and handed to
/// the staging root's fleet user as the backup timer would leave it.
fn make_backup(staging: &Path, ls_command: &str, work: &Path) {
    let backups = staging.join("var/backups/fleet-edge");
    assert!(
        ls_command.contains(&backups.display().to_string()),
        "{ls_command}"
    );
    let database = work.join("edge.db");
    drop(Edge::start(work, &database));
    let made = work.join("edge-backup.db");
    let out = Command::new(edge_bin())
        .args(["backup", "--database"])
        .arg(&database)
        .arg("--out")
        .arg(&made)
        .output()
        .expect("fleet-edge backup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = backups.join("edge-20261201T033012Z.db");
    std::fs::copy(&made, &backup).expect("into the backup directory");
    let (uid, gid) = user_in(staging, "fleet");
    std::os::unix::fs::chown(&backup, Some(uid), Some(gid)).expect("chown the backup");
}
