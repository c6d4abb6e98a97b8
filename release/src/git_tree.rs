//! A fleet repo read straight from a Git tree object: no checkout, so a
//! path in the tree can never point the reader outside it.
//!
//! Entry kinds follow Git's file modes: a symlink (120000) or submodule
//! (160000) is reported as such and refused by the loader; only blobs with a
//! regular mode are files.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;

use git2::{ObjectType, Oid, Repository, Tree};
use schemas::load::{Entry, EntryKind, SourceTree};

/// A tree of one commit in an open repository.
pub struct GitTree<'r> {
    repo: &'r Repository,
    tree: Tree<'r>,
    /// Directories already looked up: a fleet repo lists each store directory
    /// once and reads its files, and walking from the root for every file
    /// would unpack the large `stores` tree thousands of times.
    dirs: RefCell<HashMap<String, Tree<'r>>>,
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
        Ok((GitTree::new(repo, commit.tree()?), id))
    }

    pub fn new(repo: &'r Repository, tree: Tree<'r>) -> Self {
        GitTree {
            repo,
            tree,
            dirs: RefCell::new(HashMap::new()),
        }
    }

    /// The tree at `dir`, found from its (cached) parent.
    fn subtree(&self, dir: &str) -> io::Result<Tree<'r>> {
        if dir.is_empty() {
            return Ok(self.tree.clone());
        }
        if let Some(t) = self.dirs.borrow().get(dir) {
            return Ok(t.clone());
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let parent = self.subtree(parent)?;
        let entry = parent.get_name(name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{dir} does not exist"))
        })?;
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{dir} is not a directory"),
            ));
        }
        let tree = entry
            .to_object(self.repo)
            .and_then(|o| o.peel_to_tree())
            .map_err(other)?;
        self.dirs.borrow_mut().insert(dir.to_owned(), tree.clone());
        Ok(tree)
    }
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
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let parent = self.subtree(dir)?;
        let entry = parent.get_name(name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{path} does not exist"))
        })?;
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
