//! Helpers shared by the reconciler crate's integration tests: copying the
//! fleet repo template, committing with git2, and the hostile releases of
//! THREATS.md row 10.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The fleet repo template of this workspace.
pub fn template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet-repo-template")
}

pub use testkit::copy_dir;

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
