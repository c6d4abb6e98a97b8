//! The quickstart's working directory: made fresh, replaced when an earlier
//! quickstart made it, refused otherwise.
//!
//! A directory counts as a quickstart's only when it holds the marker file
//! [`MARKER`]; nothing else is ever deleted. The marker is also the lock: a
//! running quickstart holds an exclusive lock on it, so a second one on the
//! same directory is refused instead of deleting files under live servers.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::QuickstartError;

/// The file that marks (and locks) a quickstart's working directory.
pub const MARKER: &str = ".fleet-quickstart";

const MARKER_TEXT: &str = "This directory was made by `fleet quickstart`.\n\
Running `fleet quickstart` on it again deletes everything here and starts afresh.\n";

/// A prepared working directory, locked for as long as this value lives.
#[derive(Debug)]
pub struct WorkDir {
    /// Absolute path.
    pub path: PathBuf,
    /// Whether an earlier quickstart's files were deleted.
    pub replaced: bool,
    _lock: File,
}

/// Create `dir`, or empty it when an earlier quickstart made it; refuse a
/// non-empty directory without the marker, and one whose quickstart runs.
pub fn prepare(dir: &Path) -> Result<WorkDir, QuickstartError> {
    let io = |what: &str, p: &Path| {
        let what = format!("{what} {}", p.display());
        move |source| QuickstartError::Io { what, source }
    };
    let mut replaced = false;
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(QuickstartError::NotQuickstartDir {
                dir: dir.to_path_buf(),
                why: "it is not a directory".into(),
            });
        }
        Ok(_) => {
            let marker = dir.join(MARKER);
            let empty = std::fs::read_dir(dir)
                .map_err(io("reading", dir))?
                .next()
                .is_none();
            if !empty && !marker.is_file() {
                return Err(QuickstartError::NotQuickstartDir {
                    dir: dir.to_path_buf(),
                    why: format!("it is not empty and has no {MARKER} file"),
                });
            }
            replaced = !empty;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        }
        Err(e) => return Err(io("reading", dir)(e)),
    }
    let path = std::fs::canonicalize(dir).map_err(io("resolving", dir))?;
    let marker = path.join(MARKER);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&marker)
        .map_err(io("opening", &marker))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(QuickstartError::AlreadyRunning { dir: path });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("locking", &marker)(e)),
    }
    if replaced {
        for entry in std::fs::read_dir(&path).map_err(io("reading", &path))? {
            let entry = entry.map_err(io("reading", &path))?;
            if entry.file_name() == MARKER {
                continue;
            }
            let p = entry.path();
            let is_dir = entry.file_type().map_err(io("reading", &p))?.is_dir();
            if is_dir {
                std::fs::remove_dir_all(&p).map_err(io("deleting", &p))?;
            } else {
                std::fs::remove_file(&p).map_err(io("deleting", &p))?;
            }
        }
    }
    std::fs::write(&marker, MARKER_TEXT).map_err(io("writing", &marker))?;
    Ok(WorkDir {
        path,
        replaced,
        _lock: lock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_directory_is_made_and_marked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let w = prepare(&tmp.path().join("qs")).expect("prepare");
        assert!(!w.replaced);
        assert!(w.path.join(MARKER).is_file());
        drop(w);
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        assert!(!prepare(&empty).expect("prepare").replaced);
    }

    #[test]
    fn an_earlier_quickstart_is_replaced_and_a_running_one_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("qs");
        drop(prepare(&dir).expect("first"));
        std::fs::create_dir_all(dir.join("repo/sub")).expect("mkdir");
        std::fs::write(dir.join("repo/sub/f"), "x").expect("write");
        let w = prepare(&dir).expect("second");
        assert!(w.replaced);
        assert!(!dir.join("repo").exists());
        assert!(matches!(
            prepare(&dir),
            Err(QuickstartError::AlreadyRunning { .. })
        ));
    }

    #[test]
    fn a_foreign_directory_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("thesis.tex"), "x").expect("write");
        assert!(matches!(
            prepare(tmp.path()),
            Err(QuickstartError::NotQuickstartDir { .. })
        ));
        assert!(tmp.path().join("thesis.tex").is_file());
        assert!(!tmp.path().join(MARKER).exists());
    }
}
