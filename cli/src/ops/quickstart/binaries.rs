//! Where the quickstart's other programs and the repo template come from.
//!
//! `cargo run --bin fleet` builds only `fleet`. The servers are looked for
//! beside the running `fleet` executable; when one is missing and the Fleet
//! source tree is at hand, they are built there with the running binary's
//! profile. The template is `fleet-repo-template/` of that source tree
//! (ADR 27).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::QuickstartError;

/// The programs the quickstart runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub fleet: PathBuf,
    pub edge: PathBuf,
    pub status: PathBuf,
    pub reconciler: PathBuf,
}

/// The servers' file names (`fleet` itself is the running executable).
pub const SERVERS: [&str; 3] = ["fleet-edge", "fleet-status", "fleet-reconciler"];

/// Longest a first-run build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The Fleet source tree: the workspace this binary was built from, if it
/// is still there, else one above the executable or the current directory.
pub fn workspace(exe: &Path) -> Option<PathBuf> {
    let is_workspace = |d: &Path| {
        d.join("fleet-repo-template/fleet.yaml").is_file()
            && std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|t| t.contains("[workspace]"))
    };
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf);
    let cwd = std::env::current_dir().ok();
    built_from
        .into_iter()
        .chain(exe.ancestors().map(Path::to_path_buf))
        .chain(
            cwd.iter()
                .flat_map(|c| c.ancestors().map(Path::to_path_buf)),
        )
        .find(|d| is_workspace(d))
}

/// `fleet-repo-template/` of the source tree.
pub fn template(exe: &Path) -> Result<PathBuf, QuickstartError> {
    workspace(exe)
        .map(|w| w.join("fleet-repo-template"))
        .ok_or(QuickstartError::TemplateMissing)
}

fn beside(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The servers beside `exe`, or `None` with the missing names.
fn present(exe: &Path) -> Result<Binaries, Vec<&'static str>> {
    let dir = exe.parent().unwrap_or(Path::new("."));
    let missing: Vec<&'static str> = SERVERS
        .into_iter()
        .filter(|n| !beside(dir, n).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    Ok(Binaries {
        fleet: exe.to_path_buf(),
        edge: beside(dir, "fleet-edge"),
        status: beside(dir, "fleet-status"),
        reconciler: beside(dir, "fleet-reconciler"),
    })
}

/// The cargo command that builds the servers beside `exe` in `workspace`.
pub fn build_command(exe: &Path, workspace: &Path) -> Command {
    let dir = exe.parent().unwrap_or(Path::new("."));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "edge",
        "-p",
        "status",
        "-p",
        "reconciler",
        "--bins",
    ])
    .arg("--manifest-path")
    .arg(workspace.join("Cargo.toml"));
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("release") => {
            cmd.arg("--release");
        }
        Some("debug") | None => {}
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(target) = dir.parent() {
        cmd.arg("--target-dir").arg(target);
    }
    cmd
}

/// Find the servers beside `exe`, building them first (reported through
/// `building`) when they are missing and the source tree is at hand.
pub async fn locate(exe: &Path, building: impl FnOnce(&str)) -> Result<Binaries, QuickstartError> {
    let missing = match present(exe) {
        Ok(b) => return Ok(b),
        Err(m) => m,
    };
    let Some(ws) = workspace(exe) else {
        return Err(QuickstartError::BinariesMissing {
            dir: exe.parent().unwrap_or(Path::new(".")).to_path_buf(),
            missing: missing.join(", "),
        });
    };
    let mut cmd = build_command(exe, &ws);
    let shown: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    building(&shown.join(" "));
    // Cargo's own progress goes to the operator's terminal.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|source| QuickstartError::Io {
        what: "running cargo (is it on PATH?)".into(),
        source,
    })?;
    let status = super::children::wait_bounded(&mut child, BUILD_TIMEOUT).await;
    match status {
        Some(s) if s.success() => present(exe).map_err(|m| QuickstartError::BinariesMissing {
            dir: exe.parent().unwrap_or(Path::new(".")).to_path_buf(),
            missing: m.join(", "),
        }),
        other => {
            if other.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            Err(QuickstartError::Build {
                status: other
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "timed out".into()),
            })
        }
    }
}
