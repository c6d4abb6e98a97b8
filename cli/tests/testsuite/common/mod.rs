//! Helpers shared by the CLI's integration tests: copying the fleet repo
//! template and committing with git2.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The fleet repo template of this workspace.
pub fn template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet-repo-template")
}

pub use testkit::copy_dir;

/// The template copied to `repo` as a new Git repo with one commit.
pub fn template_repo(repo: &Path) {
    copy_dir(&template(), repo);
    git2::Repository::init(repo).expect("git init");
    commit_all(repo, "initial");
}

/// Stage everything (additions, edits, deletions) and commit on HEAD with
/// git2; returns the commit id.
pub fn commit_all(repo: &Path, message: &str) -> String {
    let git = git2::Repository::open(repo).expect("open repo");
    let mut index = git.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index.update_all(["*"], None).expect("update");
    index.write().expect("write index");
    let tree = git
        .find_tree(index.write_tree().expect("tree"))
        .expect("find tree");
    let sig = git2::Signature::now("Fleet Tests", "tests@example.com").expect("signature");
    let parents: Vec<git2::Commit> = git
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .into_iter()
        .collect();
    let parents: Vec<&git2::Commit> = parents.iter().collect();
    git.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .expect("commit")
        .to_string()
}

/// The `fleet` binary with `args` and `stdin`; never a panic in its stderr.
pub fn fleet(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fleet"));
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .env_remove("FLEET_SIGNING_PASSWORD");
    let mut child = cmd.spawn().expect("run fleet");
    let mut input = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut input, stdin.unwrap_or("").as_bytes()).expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

pub fn ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = fleet(args, stdin);
    assert!(
        out.status.success(),
        "fleet {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
