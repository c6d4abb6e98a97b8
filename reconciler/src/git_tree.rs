//! A fleet repo read straight from a Git tree object: no checkout, so a
//! path in the tree can never point the reader outside it.
//!
//! Entry kinds follow Git's file modes: a symlink (120000) or submodule
//! (160000) is reported as such and refused by the loader; only blobs with a
//! regular mode are files.

use std::io;
use std::path::Path;

use git2::{ObjectType, Oid, Repository, Tree};
use schemas::load::{Entry, EntryKind, SourceTree};

/// A tree of one commit in an open repository.
pub struct GitTree<'r> {
    repo: &'r Repository,
    tree: Tree<'r>,
}

impl std::fmt::Debug for GitTree<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GitTree({})", self.tree.id())
    }
}

impl<'r> GitTree<'r> {
    /// The tree of the commit that `rev` names (`main`, `HEAD~1`, a hash…).
    pub fn at_revision(repo: &'r Repository, rev: &str) -> Result<(GitTree<'r>, Oid), git2::Error> {
        let commit = repo.revparse_single(rev)?.peel_to_commit()?;
        let id = commit.id();
        Ok((
            GitTree {
                repo,
                tree: commit.tree()?,
            },
            id,
        ))
    }

    pub fn new(repo: &'r Repository, tree: Tree<'r>) -> Self {
        GitTree { repo, tree }
    }

    fn subtree(&self, dir: &str) -> io::Result<Tree<'r>> {
        if dir.is_empty() {
            return Ok(self.tree.clone());
        }
        let entry = self.tree.get_path(Path::new(dir)).map_err(not_found)?;
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{dir} is not a directory"),
            ));
        }
        entry
            .to_object(self.repo)
            .and_then(|o| o.peel_to_tree())
            .map_err(other)
    }
}

fn not_found(e: git2::Error) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, e.message().to_owned())
}

fn other(e: git2::Error) -> io::Error {
    io::Error::other(e.message().to_owned())
}

/// Git file modes.
const MODE_SYMLINK: i32 = 0o120000;
const MODE_SUBMODULE: i32 = 0o160000;

impl SourceTree for GitTree<'_> {
    fn list(&self, dir: &str) -> io::Result<Vec<Entry>> {
        let tree = self.subtree(dir)?;
        let odb = self.repo.odb().map_err(other)?;
        let mut out = Vec::with_capacity(tree.len());
        for e in tree.iter() {
            let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
            let mode = e.filemode();
            let (kind, size) = match e.kind() {
                Some(ObjectType::Tree) => (EntryKind::Dir, 0),
                _ if mode == MODE_SYMLINK => (EntryKind::Symlink, 0),
                _ if mode == MODE_SUBMODULE => (EntryKind::Other, 0),
                Some(ObjectType::Blob) => {
                    let (size, _) = odb.read_header(e.id()).map_err(other)?;
                    (EntryKind::File, size as u64)
                }
                _ => (EntryKind::Other, 0),
            };
            out.push(Entry { name, kind, size });
        }
        Ok(out)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let entry = self.tree.get_path(Path::new(path)).map_err(not_found)?;
        if entry.filemode() == MODE_SYMLINK || entry.kind() != Some(ObjectType::Blob) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path} is not a regular file"),
            ));
        }
        let blob = self.repo.find_blob(entry.id()).map_err(other)?;
        Ok(blob.content().to_vec())
    }
}
