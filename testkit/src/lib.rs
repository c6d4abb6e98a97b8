//! Test support shared by the integration tests of several crates: finding
//! (and if needed building) another crate's binary, and copying fixture
//! trees, reading a server's announced address, and a headless browser
//! ([`browser`]). A dev-dependency only; nothing here ships.

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace root")
        .to_path_buf()
}

/// Binary `bin` of package `package`, from the same build profile as
/// `beside` (a binary Cargo built for the calling test, e.g.
/// `env!("CARGO_BIN_EXE_fleet")`). A crate's tests only get their own
/// crate's binaries built, so another crate's is built here with
/// `$CARGO build` when it is missing or older than any of `sources`
/// (workspace-relative paths): an old binary would test old code. Cargo
/// releases its build lock before it runs test binaries, so this does not
/// deadlock. Call it once per process (behind a `OnceLock`).
pub fn workspace_binary(beside: &Path, package: &str, bin: &str, sources: &[&str]) -> PathBuf {
    let profile_dir = beside.parent().expect("a binary lives in a directory");
    let path = profile_dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    let root = workspace();
    let stale = match std::fs::metadata(&path).and_then(|m| m.modified()) {
        Err(_) => true,
        Ok(built) => sources
            .iter()
            .any(|p| newest_mtime(&root.join(p)).is_some_and(|t| t > built)),
    };
    if !stale {
        return path;
    }
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("release") => {
            cmd.arg("--release");
        }
        Some("debug") | None => {}
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(target_dir) = profile_dir.parent() {
        cmd.arg("--target-dir").arg(target_dir);
    }
    let out = cmd.output().expect("run cargo to build a workspace binary");
    assert!(
        out.status.success() && path.exists(),
        "building {bin} for the tests failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// The newest modification time of a file or of anything below a directory.
pub fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

/// Copy a directory tree (regular files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The first line a server child prints on its stdout, `listening on ADDR`
/// (the convention of `fleet-edge` and `fleet-status`): `Ok(ADDR)`, or
/// `Err` with the line it printed instead (empty when nothing came within
/// `timeout`). Takes the child's piped stdout.
pub fn listening_addr(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> Result<String, String> {
    use std::io::{BufRead as _, BufReader};
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| "stdout is not piped".to_owned())?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(timeout).unwrap_or_default();
    line.trim()
        .strip_prefix("listening on ")
        .map(str::to_owned)
        .ok_or(line)
}

/// Well-formed release headers followed by hostile YAML (THREATS.md row 10):
/// 200-deep nesting and a "billion laughs" alias bomb. Each names `store`
/// at `revision`.
pub fn hostile_releases(store: &str, revision: u64) -> Vec<(&'static str, String)> {
    let header = format!(
        "apiVersion: fleet/v1\nkind: StoreRelease\nstore: {store}\nrevision: {revision}\nsource_commit: x\nissued_at: 2026-01-01T00:00:00Z\nexpires_at: 2099-01-01T00:00:00Z\nstate:\n"
    );
    let deep = format!(
        "{header}  settings: {}{}\n",
        "[".repeat(200),
        "]".repeat(200)
    );
    let mut bomb = format!(
        "{header}  settings: {{}}\n  menu: {{}}\n  access: {{}}\n  kitchen: {{}}\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    );
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    vec![("deep nesting", deep), ("alias bomb", bomb)]
}

/// Test generators' randomness: xorshift64*, seeded, so a seed is a
/// case (a failure prints its seed and reruns exactly).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// 0..n
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// lo..=hi
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    pub fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }
    /// A subset of `from` in a random order, of `lo..=hi` members.
    pub fn some<T: Clone>(&mut self, from: &[T], lo: usize, hi: usize) -> Vec<T> {
        let mut pool = from.to_vec();
        let n = self.range(lo.min(pool.len()), hi.min(pool.len()));
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(pool.remove(self.below(pool.len())));
        }
        out
    }
}
