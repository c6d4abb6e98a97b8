//! The Git source: fetch the fleet repo outbound into a bare mirror in
//! `state_dir`, and read this store's release straight from the fetched
//! commit's tree, with no checkout.
//!
//! Only regular blobs are read (a symlink or submodule in place of a release
//! file is refused), and their size is checked from the object header before
//! they are loaded. A fetch that takes longer than its timeout is abandoned.
//!
//! Over the network (`https://`, `ssh://`, `git://`, `user@host:path`) the
//! mirror is shallow: each fetch asks for depth 1, so it holds the newest
//! commit and not the repo's history. libgit2 keeps what earlier fetches
//! brought, so when the mirror has grown past twice its size after the last
//! rebuild (plus [`COMPACT_SLACK_BYTES`]) it is rebuilt by a fresh depth-1
//! fetch into `mirror.git.new`, swapped in by two renames. A local-path
//! repo cannot be fetched shallow by libgit2 and is mirrored whole. A
//! mirror whose branch names a commit it no longer holds is rebuilt the
//! same way when its fetch fails, instead of failing every fetch. A fetch
//! whose branch has not moved ends at the ref advertisement (ADR 56).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use git2::{FetchOptions, ObjectType, RemoteCallbacks, Repository};

use crate::trust::{MAX_RELEASE_BYTES, MAX_SIGNATURE_BYTES};

/// How to reach the Git host.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// Local path, `git://` or a public HTTPS repo.
    #[default]
    None,
    /// HTTPS with a token as the password.
    Token(String),
    /// SSH with a deploy key file.
    SshKey(PathBuf),
}

/// Why a fetch or read failed (the pass is retried later).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open the mirror {path}: {source}")]
    Mirror { path: PathBuf, source: git2::Error },
    #[error("fetching {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("fetching {url} took over {secs} s; gave up")]
    Timeout { url: String, secs: u64 },
    #[error("branch `{branch}` is not in {url}")]
    NoBranch { url: String, branch: String },
    #[error("reading {path} at {commit}: {message}")]
    Read {
        path: String,
        commit: String,
        message: String,
    },
}

/// A fetched commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub commit: String,
    /// The fetch worked but rebuilding the grown mirror did not (it is
    /// tried again at the next fetch): for the caller's log and report.
    pub warning: Option<String>,
}

/// Growth beyond twice the rebuilt size that is tolerated before a rebuild.
pub const COMPACT_SLACK_BYTES: u64 = 1024 * 1024;

/// The file in the mirror that records its size after the last rebuild.
const COMPACTED_SIZE_FILE: &str = "fleet-compacted-size";

/// Whether `url` names a remote transport (which libgit2 fetches shallow).
pub fn is_network_url(url: &str) -> bool {
    let url = url.trim();
    ["https://", "http://", "ssh://", "git://", "git+ssh://", "ssh+git://"]
        .iter()
        .any(|p| url.starts_with(p))
        // scp-like `git@host:acme/fleet.git` (not `C:\…`, not a path).
        || url
            .split_once(':')
            .is_some_and(|(host, _)| host.contains('@') && !host.contains('/'))
}

/// A filesystem error on `path` of the mirror, for `map_err`.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError {
    let path = path.to_path_buf();
    move |e| SourceError::Mirror {
        path,
        source: git2::Error::from_str(&e.to_string()),
    }
}

/// What the store's release directory holds at a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseFiles {
    /// Both files are regular blobs of acceptable size.
    Found {
        release: Vec<u8>,
        signature: Vec<u8>,
    },
    /// No `release.yaml` (the store was never released).
    Missing,
    /// Present but not acceptable: the reason is a [`crate::trust::Refusal`] message.
    Refused(crate::trust::Refusal),
}

/// The bare mirror of the fleet repo in `state_dir/mirror.git`.
#[derive(Debug)]
pub struct Mirror {
    path: PathBuf,
    url: String,
    branch: String,
    credentials: Credentials,
    timeout: Duration,
}

impl Mirror {
    pub fn new(
        state_dir: &Path,
        url: &str,
        branch: &str,
        credentials: Credentials,
        timeout: Duration,
    ) -> Mirror {
        Mirror {
            path: state_dir.join("mirror.git"),
            url: url.to_owned(),
            branch: branch.to_owned(),
            credentials,
            timeout,
        }
    }

    /// The mirror as it is, for reading (never created here: a read during
    /// a rebuild's swap must fail and be retried, not leave an empty repo
    /// where the rebuilt one is about to go).
    fn open(&self) -> Result<Repository, SourceError> {
        Repository::open_bare(&self.path).map_err(|source| SourceError::Mirror {
            path: self.path.clone(),
            source,
        })
    }

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.branch)
    }

    /// Fetch the branch; answers the commit it now points at. Over the
    /// network the fetch is shallow, and a mirror that has grown past its
    /// bound is rebuilt (see the module docs).
    pub fn fetch(&self) -> Result<Fetched, SourceError> {
        let shallow = is_network_url(&self.url);
        let mut fetched = match self.fetch_into(&self.path, shallow) {
            // A mirror whose branch names a commit it no longer holds
            // (its packs deleted by hand, say) fails every fetch the same
            // way: fetch it afresh beside it and swap it in.
            Err(e @ SourceError::Fetch { .. }) if self.lost_its_tip() => {
                let repaired = self.rebuild(shallow, None)?.ok_or(e)?;
                Fetched {
                    warning: Some(format!(
                        "the mirror {} had lost the objects of its last fetch; it was fetched afresh",
                        self.path.display()
                    )),
                    ..repaired
                }
            }
            other => other?,
        };
        // A mirror that cannot be rebuilt now (a full disk, say) is still a
        // good mirror: the release is read from it, and the rebuild waits.
        if shallow && let Err(e) = self.compact_if_grown(&fetched) {
            fetched.warning = Some(format!(
                "the fleet repo was fetched, but rebuilding the grown mirror {} failed ({e}); tried again at the next fetch",
                self.path.display()
            ));
        }
        Ok(fetched)
    }

    fn side(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    /// Rebuild the mirror with one fresh shallow fetch when it holds more
    /// than twice what the last rebuild left (plus the slack).
    fn compact_if_grown(&self, fetched: &Fetched) -> Result<(), SourceError> {
        let size = dir_size(&self.path).map_err(io(&self.path))?;
        let record = self.path.join(COMPACTED_SIZE_FILE);
        let baseline = std::fs::read_to_string(&record)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        let grown = match baseline {
            Some(baseline) => size > 2 * baseline + COMPACT_SLACK_BYTES,
            // A mirror made before fetches were shallow holds the whole
            // history: rebuild it once.
            None => !self.open()?.is_shallow(),
        };
        if !grown {
            if baseline.is_none() {
                std::fs::write(&record, size.to_string()).map_err(io(&record))?;
            }
            return Ok(());
        }
        // The branch may move between the two fetches: then the caller
        // reads the commit it was given, which the old mirror holds, so
        // the old one stays this time and is rebuilt at the next fetch.
        self.rebuild(true, Some(&fetched.commit)).map(|_| ())
    }

    /// Fetch the branch afresh into `mirror.git.new` and swap it in for
    /// the mirror; with `only_at`, only when the fresh fetch found that
    /// commit (else the fresh one is dropped and `None` answered).
    fn rebuild(
        &self,
        shallow: bool,
        only_at: Option<&str>,
    ) -> Result<Option<Fetched>, SourceError> {
        let new = self.side(".new");
        let old = self.side(".old");
        for leftover in [&new, &old] {
            if leftover.exists() {
                std::fs::remove_dir_all(leftover).map_err(io(leftover))?;
            }
        }
        let rebuilt = self.fetch_into(&new, shallow)?;
        if only_at.is_some_and(|c| c != rebuilt.commit) {
            std::fs::remove_dir_all(&new).map_err(io(&new))?;
            return Ok(None);
        }
        if shallow {
            let fresh = dir_size(&new).map_err(io(&new))?;
            std::fs::write(new.join(COMPACTED_SIZE_FILE), fresh.to_string()).map_err(io(&new))?;
        }
        std::fs::rename(&self.path, &old).map_err(io(&self.path))?;
        std::fs::rename(&new, &self.path).map_err(io(&new))?;
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
        Ok(Some(rebuilt))
    }

    /// Whether the mirror's tracking ref names a commit the mirror does
    /// not hold.
    fn lost_its_tip(&self) -> bool {
        let Ok(repo) = self.open() else { return false };
        repo.refname_to_id(&self.tracking_ref())
            .is_ok_and(|tip| repo.find_commit(tip).is_err())
    }

    /// Fetch the branch into the bare repo at `path` (created if missing).
    fn fetch_into(&self, path: &Path, shallow: bool) -> Result<Fetched, SourceError> {
        let repo = open_or_init(path)?;
        let fetch_err = |message: String| SourceError::Fetch {
            url: self.url.clone(),
            message,
        };
        let mut remote = repo
            .remote_anonymous(&self.url)
            .map_err(|e| fetch_err(e.message().to_owned()))?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + self.timeout;
        let outcome = self.negotiate(&repo, &mut remote, shallow, deadline, &cancelled);
        if cancelled.load(Ordering::SeqCst) || Instant::now() > deadline + Duration::from_secs(1) {
            return Err(SourceError::Timeout {
                url: self.url.clone(),
                secs: self.timeout.as_secs(),
            });
        }
        if let Some(unchanged) = outcome.map_err(|e| fetch_err(e.message().to_owned()))? {
            return Ok(Fetched {
                commit: unchanged.to_string(),
                warning: None,
            });
        }
        let commit = repo
            .find_reference(&self.tracking_ref())
            .and_then(|r| r.peel_to_commit())
            .map_err(|_| SourceError::NoBranch {
                url: self.url.clone(),
                branch: self.branch.clone(),
            })?;
        Ok(Fetched {
            commit: commit.id().to_string(),
            warning: None,
        })
    }

    /// Connect to the host and read its ref advertisement: `Some(tip)`
    /// when the branch is where the mirror already has it (nothing is
    /// asked for), else the branch fetched on the same connection and
    /// `None`. A shallow fetch of an unchanged branch would otherwise still
    /// have the host walk the commit's whole tree (ADR 56), and a second
    /// connection would be a second request to it.
    fn negotiate(
        &self,
        repo: &Repository,
        remote: &mut git2::Remote<'_>,
        shallow: bool,
        deadline: Instant,
        cancelled: &Arc<AtomicBool>,
    ) -> Result<Option<git2::Oid>, git2::Error> {
        let branch = format!("refs/heads/{}", self.branch);
        let mut connection = remote.connect_auth(
            git2::Direction::Fetch,
            Some(self.callbacks(deadline, cancelled)),
            None,
        )?;
        let advertised = connection
            .list()?
            .iter()
            .find(|head| head.name() == branch)
            .map(|head| head.oid());
        if let Some(tip) = advertised
            && repo.refname_to_id(&self.tracking_ref()).ok() == Some(tip)
            && repo.find_commit(tip).is_ok()
        {
            return Ok(Some(tip));
        }
        let mut options = FetchOptions::new();
        options.remote_callbacks(self.callbacks(deadline, cancelled));
        options.download_tags(git2::AutotagOption::None);
        if shallow {
            options.depth(1);
        }
        let refspec = format!("+{branch}:{}", self.tracking_ref());
        connection
            .remote()
            .fetch(&[refspec.as_str()], Some(&mut options), None)?;
        Ok(None)
    }

    /// The callbacks of one fetch: it gives up (setting `cancelled`) once
    /// `deadline` has passed, and answers the host's credential request
    /// from the configured token or deploy key.
    fn callbacks(
        &self,
        deadline: Instant,
        cancelled: &Arc<AtomicBool>,
    ) -> RemoteCallbacks<'static> {
        let mut callbacks = RemoteCallbacks::new();
        let cancelled = cancelled.clone();
        callbacks.transfer_progress(move |_| {
            if Instant::now() > deadline {
                cancelled.store(true, Ordering::SeqCst);
                return false;
            }
            true
        });
        let credentials = self.credentials.clone();
        callbacks.credentials(move |_url, username, allowed| match &credentials {
            Credentials::Token(token) if allowed.is_user_pass_plaintext() => {
                git2::Cred::userpass_plaintext(username.unwrap_or("x-access-token"), token)
            }
            Credentials::SshKey(key) if allowed.is_ssh_key() => {
                git2::Cred::ssh_key(username.unwrap_or("git"), None, key, None)
            }
            _ => Err(git2::Error::from_str(
                "the repository needs credentials: set git_token_file or git_ssh_key_file",
            )),
        });
        callbacks
    }

    /// Remove lock files that a killed fetch left in the mirror. Call only
    /// while holding the state directory's lock ([`StateLock`]): then no
    /// other process can be writing the mirror, and a leftover `*.lock`
    /// would otherwise fail every later fetch.
    pub fn clear_stale_locks(&self) -> std::io::Result<usize> {
        fn walk(dir: &Path, removed: &mut usize) -> std::io::Result<()> {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    walk(&path, removed)?;
                } else if path.extension().is_some_and(|e| e == "lock") {
                    std::fs::remove_file(&path)?;
                    *removed += 1;
                }
            }
            Ok(())
        }
        let mut removed = 0;
        walk(&self.path, &mut removed)?;
        Ok(removed)
    }

    /// The commit of the last successful fetch, if any (for offline passes).
    pub fn last_fetched(&self) -> Option<Fetched> {
        let repo = Repository::open_bare(&self.path).ok()?;
        let commit = repo
            .find_reference(&self.tracking_ref())
            .ok()?
            .peel_to_commit()
            .ok()?;
        Some(Fetched {
            commit: commit.id().to_string(),
            warning: None,
        })
    }

    /// This store's release files at `commit`, read as regular blobs only.
    pub fn read_release(
        &self,
        commit: &str,
        release_dir: &str,
    ) -> Result<ReleaseFiles, SourceError> {
        let mut out = self.map_releases(commit, &[release_dir], |files| files)?;
        Ok(out.pop().expect("one release asked, one answered"))
    }

    /// `f` of the release files of each of `release_dirs` at `commit`, one
    /// release in memory at a time, with the repository opened and the
    /// commit's tree found once.
    pub fn map_releases<S: AsRef<str>, R>(
        &self,
        commit: &str,
        release_dirs: &[S],
        mut f: impl FnMut(ReleaseFiles) -> R,
    ) -> Result<Vec<R>, SourceError> {
        let repo = self.open()?;
        let read_err = |path: &str, message: String| SourceError::Read {
            path: path.to_owned(),
            commit: commit.to_owned(),
            message,
        };
        let first = release_dirs.first().map_or("", |d| d.as_ref());
        let oid =
            git2::Oid::from_str(commit).map_err(|e| read_err(first, e.message().to_owned()))?;
        let tree = repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(|e| read_err(first, e.message().to_owned()))?;
        let mut dirs = LargeDirs::default();
        release_dirs
            .iter()
            .map(|d| {
                let d = d.as_ref();
                match read_release_plain(&repo, &tree, &mut dirs, d) {
                    Some(files) => Ok(files),
                    None => read_release_in(&repo, &tree, d),
                }
                .map(&mut f)
            })
            .collect()
    }
}

/// Entries from which a directory's tree is kept by [`LargeDirs`].
/// libgit2 caches a parsed tree only when its object is under 4 KiB (about
/// 100 entries).
const LARGE_DIR_ENTRIES: usize = 64;

/// The large directory trees met on the way to each release, kept for the
/// next one. A `stores/` directory of 500 stores is an 18 KiB tree that
/// libgit2 does not cache: without this, every release read inflates and
/// parses it again, twice (ADR 48). Few directories are this large, so
/// what is kept stays small.
#[derive(Default)]
struct LargeDirs<'r> {
    kept: std::collections::HashMap<String, git2::Tree<'r>>,
}

impl<'r> LargeDirs<'r> {
    /// The tree at `dir` under `root` when every step of it is a plain
    /// directory; `None` for anything else (missing, a file, a submodule),
    /// which the caller reads the careful way.
    fn tree(
        &mut self,
        repo: &'r Repository,
        root: &git2::Tree<'r>,
        dir: &str,
    ) -> Option<git2::Tree<'r>> {
        let mut tree = root.clone();
        let mut end = 0;
        for (i, part) in dir.split('/').enumerate() {
            end += part.len() + usize::from(i > 0);
            let prefix = &dir[..end];
            if let Some(kept) = self.kept.get(prefix) {
                tree = kept.clone();
                continue;
            }
            let id = {
                let entry = tree.get_name(part)?;
                if entry.kind() != Some(ObjectType::Tree) || entry.filemode() != MODE_TREE {
                    return None;
                }
                entry.id()
            };
            tree = repo.find_tree(id).ok()?;
            if tree.len() >= LARGE_DIR_ENTRIES {
                self.kept.insert(prefix.to_owned(), tree.clone());
            }
        }
        Some(tree)
    }
}

/// The release files of `release_dir` when both are plain regular files in
/// plain directories, read through `dirs`; `None` for every other case,
/// which [`read_release_in`] answers with its exact refusal.
fn read_release_plain<'r>(
    repo: &'r Repository,
    root: &git2::Tree<'r>,
    dirs: &mut LargeDirs<'r>,
    release_dir: &str,
) -> Option<ReleaseFiles> {
    let dir = dirs.tree(repo, root, release_dir)?;
    let plain = |name: &str, max: usize| match read_blob(repo, &dir, name, max) {
        Ok(Blob::Bytes(b)) => Some(b),
        _ => None,
    };
    let release = plain("release.yaml", MAX_RELEASE_BYTES)?;
    let signature = plain("release.yaml.minisig", MAX_SIGNATURE_BYTES)?;
    Some(ReleaseFiles::Found { release, signature })
}

/// The release files of `release_dir` in `tree`.
fn read_release_in(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    release_dir: &str,
) -> Result<ReleaseFiles, SourceError> {
    let release_path = format!("{release_dir}/release.yaml");
    let signature_path = format!("{release_dir}/release.yaml.minisig");
    let release = match read_blob(repo, tree, &release_path, MAX_RELEASE_BYTES)? {
        Blob::Missing => return Ok(ReleaseFiles::Missing),
        Blob::Refused(r) => return Ok(ReleaseFiles::Refused(r)),
        Blob::Bytes(b) => b,
    };
    let signature = match read_blob(repo, tree, &signature_path, MAX_SIGNATURE_BYTES)? {
        Blob::Missing => {
            return Ok(ReleaseFiles::Refused(
                crate::trust::Refusal::MalformedSignature(
                    "release.yaml has no release.yaml.minisig beside it".to_owned(),
                ),
            ));
        }
        Blob::Refused(r) => return Ok(ReleaseFiles::Refused(r)),
        Blob::Bytes(b) => b,
    };
    Ok(ReleaseFiles::Found { release, signature })
}

impl Mirror {
    /// The trust root chain offered at `commit`: every `trust/root/<n>.yaml`
    /// with its `<n>.yaml.<KEYID>.minisig` files, read as regular blobs
    /// only (other names are ignored). An empty chain when the repo has no
    /// `trust/root/`.
    pub fn read_root_chain(
        &self,
        commit: &str,
    ) -> Result<Result<crate::root::OfferedChain, crate::trust::Refusal>, SourceError> {
        use crate::root::RootRefusal;
        use crate::trust::Refusal;
        use schemas::trust_root::{ROOT_DIR, RootFileName};
        let repo = self.open()?;
        let read_err = |message: String| SourceError::Read {
            path: ROOT_DIR.to_owned(),
            commit: commit.to_owned(),
            message,
        };
        let oid = git2::Oid::from_str(commit).map_err(|e| read_err(e.message().to_owned()))?;
        let tree = repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(|e| read_err(e.message().to_owned()))?;
        let mut chain = crate::root::OfferedChain::new();
        let dir = match tree.get_path(Path::new(ROOT_DIR)) {
            Ok(e) if e.kind() == Some(ObjectType::Tree) => e,
            Ok(_) => return Ok(Err(Refusal::NotRegularFile(ROOT_DIR.to_owned()))),
            Err(e) if e.code() == git2::ErrorCode::NotFound => {
                return Ok(match path_through_special(&tree, ROOT_DIR) {
                    Some(special) => Err(Refusal::NotRegularFile(special)),
                    None => Ok(chain),
                });
            }
            Err(e) => return Err(read_err(e.message().to_owned())),
        };
        let dir = repo
            .find_tree(dir.id())
            .map_err(|e| read_err(e.message().to_owned()))?;
        let mut signatures = Vec::new();
        for entry in dir.iter() {
            let Ok(name) = entry.name() else { continue };
            let parsed = RootFileName::parse(name);
            let max = match parsed {
                RootFileName::Other => continue,
                RootFileName::Version(_) => crate::root::MAX_ROOT_BYTES,
                RootFileName::Signature { .. } => MAX_SIGNATURE_BYTES,
            };
            let path = format!("{ROOT_DIR}/{name}");
            let bytes = match read_blob(&repo, &tree, &path, max)? {
                Blob::Bytes(b) => b,
                Blob::Missing => continue,
                Blob::Refused(Refusal::TooLarge { size, max, .. }) => {
                    return Ok(Err(RootRefusal::TooLarge {
                        file: path,
                        size,
                        max,
                    }
                    .into()));
                }
                Blob::Refused(r) => return Ok(Err(r)),
            };
            match parsed {
                RootFileName::Version(v) => chain.entry(v).or_default().bytes = bytes,
                RootFileName::Signature { version, .. } => {
                    signatures.push((version, name.to_owned(), bytes))
                }
                RootFileName::Other => {}
            }
        }
        for (version, name, bytes) in signatures {
            if let Some(o) = chain.get_mut(&version) {
                o.signatures.push((name, bytes));
            }
        }
        Ok(Ok(chain))
    }
}

/// An exclusive lock on `state_dir` for the duration of a pass, so two
/// reconcilers (a timer and a daemon, say) never work on one store at once.
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    /// Take the lock; `Ok(None)` when another process holds it.
    pub fn try_acquire(state_dir: &Path) -> std::io::Result<Option<StateLock>> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(state_dir.join("pass.lock"))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StateLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// Open the bare repo at `path`, creating it when there is none.
fn open_or_init(path: &Path) -> Result<Repository, SourceError> {
    let err = |source| SourceError::Mirror {
        path: path.to_path_buf(),
        source,
    };
    match Repository::open_bare(path) {
        Ok(r) => Ok(r),
        Err(_) => {
            std::fs::create_dir_all(path)
                .map_err(|e| err(git2::Error::from_str(&e.to_string())))?;
            Repository::init_bare(path).map_err(err)
        }
    }
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        total += if kind.is_dir() {
            dir_size(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}

enum Blob {
    Missing,
    Refused(crate::trust::Refusal),
    Bytes(Vec<u8>),
}

const MODE_BLOB: i32 = 0o100644;
const MODE_TREE: i32 = 0o040000;
const MODE_BLOB_EXECUTABLE: i32 = 0o100755;

/// Whether some directory on `path` is a symlink or a submodule: libgit2
/// answers "not found" for paths through them, which must not read as "no
/// release yet".
fn path_through_special(tree: &git2::Tree<'_>, path: &str) -> Option<String> {
    let mut prefix = String::new();
    for part in path.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        match tree.get_path(Path::new(&prefix)) {
            Ok(e) if e.kind() == Some(ObjectType::Tree) => continue,
            Ok(e) if e.kind() == Some(ObjectType::Blob) && e.filemode() != 0o120000 => return None,
            Ok(_) => return Some(prefix),
            Err(_) => return None,
        }
    }
    None
}

fn read_blob(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    path: &str,
    max: usize,
) -> Result<Blob, SourceError> {
    let entry = match tree.get_path(Path::new(path)) {
        Ok(e) => e,
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            return Ok(match path_through_special(tree, path) {
                Some(special) => Blob::Refused(crate::trust::Refusal::NotRegularFile(special)),
                None => Blob::Missing,
            });
        }
        Err(e) => {
            return Err(SourceError::Read {
                path: path.to_owned(),
                commit: String::new(),
                message: e.message().to_owned(),
            });
        }
    };
    let mode = entry.filemode();
    if entry.kind() != Some(ObjectType::Blob)
        || !(mode == MODE_BLOB || mode == MODE_BLOB_EXECUTABLE)
    {
        return Ok(Blob::Refused(crate::trust::Refusal::NotRegularFile(
            path.to_owned(),
        )));
    }
    let odb = repo.odb().map_err(|e| SourceError::Read {
        path: path.to_owned(),
        commit: String::new(),
        message: e.message().to_owned(),
    })?;
    let (size, _) = odb.read_header(entry.id()).map_err(|e| SourceError::Read {
        path: path.to_owned(),
        commit: String::new(),
        message: e.message().to_owned(),
    })?;
    if size > max {
        let what = if path.ends_with(".minisig") {
            "release.yaml.minisig"
        } else {
            "release.yaml"
        };
        return Ok(Blob::Refused(crate::trust::Refusal::TooLarge {
            what,
            size,
            max,
        }));
    }
    let blob = repo.find_blob(entry.id()).map_err(|e| SourceError::Read {
        path: path.to_owned(),
        commit: String::new(),
        message: e.message().to_owned(),
    })?;
    Ok(Blob::Bytes(blob.content().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a store directory replaced by a symlink or a submodule
    /// read as "no release yet" instead of being refused.
    #[test]
    fn paths_through_symlinks_and_submodules_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init_bare(dir.path()).expect("repo");
        let blob = repo.blob(b"brooklyn").expect("blob");
        let mut stores = repo.treebuilder(None).expect("tb");
        stores.insert("soho", blob, 0o120000).expect("symlink");
        stores.insert("midtown", blob, 0o160000).expect("gitlink");
        let stores = stores.write().expect("write");
        let mut acme = repo.treebuilder(None).expect("tb");
        acme.insert("stores", stores, 0o040000).expect("dir");
        let acme = acme.write().expect("write");
        let mut tenants = repo.treebuilder(None).expect("tb");
        tenants.insert("acme", acme, 0o040000).expect("dir");
        let tenants = tenants.write().expect("write");
        let mut root = repo.treebuilder(None).expect("tb");
        root.insert("tenants", tenants, 0o040000).expect("dir");
        let tree = repo.find_tree(root.write().expect("write")).expect("tree");
        for store in ["soho", "midtown"] {
            let path = format!("tenants/acme/stores/{store}/release.yaml");
            match read_blob(&repo, &tree, &path, 1000).expect("read") {
                Blob::Refused(crate::trust::Refusal::NotRegularFile(p)) => {
                    assert_eq!(p, format!("tenants/acme/stores/{store}"))
                }
                Blob::Refused(other) => panic!("{store}: refused for {other}"),
                Blob::Missing => panic!("{store}: read as missing"),
                Blob::Bytes(_) => panic!("{store}: read as a file"),
            }
        }
        assert!(matches!(
            read_blob(&repo, &tree, "tenants/acme/stores/none/release.yaml", 1000).expect("read"),
            Blob::Missing
        ));
    }

    /// Releases read through the kept large directories
    /// ([`LargeDirs`]) are each store's own files, and every odd case
    /// answers what the careful read answers: two tenants of 100 stores
    /// (directories above [`LARGE_DIR_ENTRIES`]), among them a symlinked
    /// store, a release file that is a symlink or executable, a missing
    /// signature, a missing release and one too large.
    #[test]
    fn releases_read_through_large_directories_are_each_stores_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init_bare(dir.path().join("mirror.git")).expect("repo");
        let mut tenants = repo.treebuilder(None).expect("tb");
        let mut dirs = Vec::new();
        for tenant in ["acme", "zeta"] {
            let mut stores = repo.treebuilder(None).expect("tb");
            for i in 0..100 {
                let name = format!("s{i:03}");
                let release = repo
                    .blob(format!("{tenant}/{name} release").as_bytes())
                    .expect("blob");
                let signature = repo
                    .blob(format!("{tenant}/{name} signature").as_bytes())
                    .expect("blob");
                // (file name, its blob, its mode) of the release, and
                // whether the signature is beside it.
                let (file, blob, mode, signed) = match i {
                    7 => ("release.yaml", release, 0o120000, true),
                    8 => ("release.yaml", release, MODE_BLOB, false),
                    9 => ("store.yaml", release, MODE_BLOB, false),
                    10 => {
                        let big = repo.blob(&vec![b'x'; MAX_RELEASE_BYTES + 1]).expect("blob");
                        ("release.yaml", big, MODE_BLOB, true)
                    }
                    11 => ("release.yaml", release, MODE_BLOB_EXECUTABLE, true),
                    _ => ("release.yaml", release, MODE_BLOB, true),
                };
                let mut store = repo.treebuilder(None).expect("tb");
                store.insert(file, blob, mode).expect("release");
                if signed {
                    store
                        .insert("release.yaml.minisig", signature, MODE_BLOB)
                        .expect("sig");
                }
                let store = store.write().expect("write");
                if i == 12 {
                    stores
                        .insert(&name, release, 0o120000)
                        .expect("symlinked store");
                } else {
                    stores.insert(&name, store, 0o040000).expect("store");
                }
                dirs.push(format!("tenants/{tenant}/stores/{name}"));
            }
            dirs.push(format!("tenants/{tenant}/stores/never-made"));
            let stores = stores.write().expect("write");
            let mut t = repo.treebuilder(None).expect("tb");
            t.insert("stores", stores, 0o040000).expect("dir");
            tenants
                .insert(tenant, t.write().expect("write"), 0o040000)
                .expect("tenant");
        }
        let mut root = repo.treebuilder(None).expect("tb");
        root.insert("tenants", tenants.write().expect("write"), 0o040000)
            .expect("dir");
        let tree = repo.find_tree(root.write().expect("write")).expect("tree");
        let sig = git2::Signature::now("t", "t@example.com").expect("signature");
        let commit = repo
            .commit(None, &sig, &sig, "releases", &tree, &[])
            .expect("commit")
            .to_string();
        let mirror = Mirror::new(
            dir.path(),
            "unused",
            "main",
            Credentials::None,
            Duration::from_secs(1),
        );
        // Each store once, then in another order (kept trees met first
        // from another tenant).
        let mut order = dirs.clone();
        order.reverse();
        for dirs in [dirs, order] {
            let read = mirror.map_releases(&commit, &dirs, |f| f).expect("read");
            assert_eq!(read.len(), dirs.len());
            let mut found = 0;
            for (d, files) in dirs.iter().zip(read) {
                let careful = read_release_in(&repo, &tree, d).expect("careful read");
                assert_eq!(files, careful, "{d}");
                if let ReleaseFiles::Found { release, signature } = &files {
                    let (tenant, store) = d
                        .strip_prefix("tenants/")
                        .and_then(|r| r.split_once("/stores/"))
                        .expect("a store dir");
                    assert_eq!(release, format!("{tenant}/{store} release").as_bytes());
                    assert_eq!(signature, format!("{tenant}/{store} signature").as_bytes());
                    found += 1;
                }
            }
            assert_eq!(found, 2 * (100 - 5), "every plain release read");
        }
    }
}
