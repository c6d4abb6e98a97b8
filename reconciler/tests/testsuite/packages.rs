//! Shared by the tests that build the Debian packages of
//! `scripts/build-deb` and install them with the real `dpkg` into a
//! throwaway root (`deb_package`, `deploy_pi`, `docs_pi`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::e2e::{edge_bin, fleet_bin, status_bin};

/// Whether this test can install packages: `dpkg --root` sets owners,
/// which needs root. CI runs the suite as root, so there a missing root is
/// a failure; elsewhere the test says why it did nothing.
pub fn as_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI must run the suite as root (dpkg --root sets owners)"
    );
    eprintln!("{test}: not root, so not run here: dpkg --root sets owners; CI runs it as root");
    false
}

/// `cmd`, which must succeed.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Both packages, version `version`, from this build's binaries, into
/// `out`: (fleet-store, fleet-headoffice). Needs no root.
pub fn build(out: &Path, version: &str) -> (PathBuf, PathBuf) {
    // Every binary the packages hold, built (the reconciler's come with
    // this test binary; fleet and fleet-status are built on demand).
    let _ = (fleet_bin(), status_bin());
    let bin_dir = edge_bin().parent().expect("target dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-deb");
    let o = run(Command::new(script)
        .args([
            "--arch",
            "amd64",
            "--compress",
            "none",
            "--version",
            version,
        ])
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--out")
        .arg(out));
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    let paths: Vec<PathBuf> = printed.lines().map(PathBuf::from).collect();
    assert_eq!(paths.len(), 2, "{printed}");
    (paths[0].clone(), paths[1].clone())
}

/// The fleet-store package alone.
pub fn store_package(out: &Path) -> PathBuf {
    build(out, "0.1.0").0
}

/// An empty root dpkg can install into.
pub fn new_root(dir: &Path) -> PathBuf {
    let root = dir.to_path_buf();
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        std::fs::create_dir_all(root.join(d)).expect("root dirs");
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").expect("dpkg status");
    root
}

/// `dpkg --root=root args…`, which must succeed.
pub fn dpkg(root: &Path, args: &[&str]) -> Output {
    // libc6 and systemd are the machine's, not the throwaway root's.
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--force-depends"])
        .args(args))
}

/// Whether `path` is there, a dangling symlink included (the root's unit
/// links point at absolute paths inside the root).
pub fn present(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// The uid and gid of `name` in the root's own /etc/passwd.
pub fn user_in(root: &Path, name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("passwd in the root");
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name))
                .then(|| (f[2].parse().expect("uid"), f[3].parse().expect("gid")))
        })
        .unwrap_or_else(|| panic!("no {name} in {passwd}"))
}
