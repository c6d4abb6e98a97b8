//! The last applied release record of a store, kept in `state_dir`.
//!
//! It is what stops rollback and equivocation after a restart, so it is
//! written atomically (temp file, fsync, rename, fsync of the directory) and
//! a corrupt record is an error, never a silent reset to "nothing applied".

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// File name of the record inside `state_dir`.
pub const FILE_NAME: &str = "applied.json";

/// What a store applied last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedRecord {
    /// `<tenant>/<store>`.
    pub store: schemas::StoreId,
    pub revision: u64,
    /// The release's `source_commit`.
    pub commit: String,
    /// SHA-256 of the exact release bytes, hex.
    pub digest: String,
    pub applied_at: DateTime<Utc>,
}

/// Why the record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is corrupt ({reason}); refusing to guess the last applied revision, since that would re-open rollback. \
         Restore it from a backup, or remove it deliberately to accept the next release as the first"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Read the record in `state_dir`: `Ok(None)` if none was ever written.
pub fn read(state_dir: &Path) -> Result<Option<AppliedRecord>, RecordError> {
    let path = state_dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RecordError::Read { path, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| RecordError::Corrupt {
            path,
            reason: e.to_string(),
        })
}

/// Write the record atomically: a reader sees the old record or the new one,
/// never a torn one, even across a power cut.
pub fn write(state_dir: &Path, record: &AppliedRecord) -> Result<(), RecordError> {
    let path = state_dir.join(FILE_NAME);
    let bytes = serde_json::to_vec_pretty(record).expect("the record is plain data");
    write_atomically(&path, &bytes).map_err(|source| RecordError::Write { path, source })
}

/// Write `bytes` to `path` via a synced temp file in the same directory and
/// a rename, then sync the directory so the rename itself is durable.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    via_temp_file(path, bytes, true)
}

/// Replace `path` by `bytes` via a temp file and a rename, so a reader sees
/// the old file or the new one, never half of one; not synced, for files
/// whose durability comes from elsewhere (a Git commit that follows).
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    via_temp_file(path, bytes, false)
}

fn via_temp_file(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    if sync {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if sync {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(revision: u64) -> AppliedRecord {
        AppliedRecord {
            store: "acme/soho".parse().expect("store id"),
            revision,
            commit: "3f2c".into(),
            digest: "ab".repeat(32),
            applied_at: DateTime::parse_from_rfc3339("2026-11-24T18:00:00Z")
                .expect("date")
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn missing_record_means_nothing_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read(dir.path()).expect("read"), None);
    }

    #[test]
    fn written_record_reads_back_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &record(7)).expect("write");
        write(dir.path(), &record(8)).expect("write");
        assert_eq!(read(dir.path()).expect("read"), Some(record(8)));
        // No temp files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
    }

    /// A crash between writing the temp file and the rename leaves a stray
    /// temp file and the previous record intact.
    #[test]
    fn crash_before_rename_keeps_the_previous_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &record(7)).expect("write");
        let mut stray = tempfile::Builder::new()
            .prefix(".tmp")
            .tempfile_in(dir.path())
            .expect("tmp");
        stray
            .write_all(b"{\"store\": \"acme/soho\", \"revision\": 8")
            .expect("partial write");
        let (_file, _path) = stray.keep().expect("leave it behind, as a crash would");
        assert_eq!(read(dir.path()).expect("read"), Some(record(7)));
        // The next write still succeeds.
        write(dir.path(), &record(8)).expect("write");
        assert_eq!(read(dir.path()).expect("read"), Some(record(8)));
    }

    #[test]
    fn corrupt_record_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in [&b""[..], b"{", b"{\"store\":1}", b"\xff\xfe"] {
            std::fs::write(dir.path().join(FILE_NAME), bad).expect("write");
            let err = read(dir.path()).expect_err("corrupt");
            assert!(matches!(err, RecordError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("rollback"), "{err}");
        }
    }
}
