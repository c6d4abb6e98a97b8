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
