//! `source = "status"` (DESIGN.md §13): the store reads its release from
//! the status service's relay ([`wire::relay`]) instead of fetching the
//! fleet repo. The answer is kept in `state_dir/relay/answer.json` (one
//! file, replaced at each change, so the state directory stays the same
//! size however many revisions come), sent back as `If-None-Match` next
//! time, and put through the same trust gate as a release read from Git
//! ([`release::relay::unpack`]).

use std::path::{Path, PathBuf};

use wire::relay::{COMMIT_HEADER, PATH, RelayedRelease};

use crate::status_client::{StatusClient, StatusError};

/// The directory of the cached answer, under the state directory.
pub const RELAY_DIR: &str = "relay";
const ANSWER_FILE: &str = "answer.json";
const ETAG_FILE: &str = "etag";

/// Largest answer read: a release and its signature at their limits, in
/// base64, and the trust root versions.
pub const MAX_ANSWER_BYTES: usize = release::trust::MAX_RELEASE_BYTES * 4 / 3 + 4 * 1024 * 1024;

/// The last answer the relay gave, as cached.
#[derive(Debug, Clone)]
pub struct Cached {
    pub answer: RelayedRelease,
    pub etag: String,
}

/// Why the relay could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error(
        "the release relay at {url} answered 304 Not Modified, but nothing is cached in {path}"
    )]
    NothingCached { url: String, path: PathBuf },
    #[error("the release relay at {url} answered a release for {got}, not {want}")]
    OtherStore {
        url: String,
        want: String,
        got: String,
    },
    #[error("caching the relayed release in {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join(RELAY_DIR)
}

/// The cached answer, if there is a readable one.
pub fn read_cache(state_dir: &Path) -> Option<Cached> {
    let d = dir(state_dir);
    let answer = std::fs::read(d.join(ANSWER_FILE)).ok()?;
    let answer: RelayedRelease = serde_json::from_slice(&answer).ok()?;
    let etag = std::fs::read_to_string(d.join(ETAG_FILE)).ok()?;
    Some(Cached {
        answer,
        etag: etag.trim().to_owned(),
    })
}

fn write_cache(state_dir: &Path, cached: &Cached) -> Result<(), RelayError> {
    let d = dir(state_dir);
    let err = |path: PathBuf| move |source| RelayError::Cache { path, source };
    std::fs::create_dir_all(&d).map_err(err(d.clone()))?;
    // The answer first: a power cut between the two leaves an ETag that
    // matches nothing, which costs one full answer, never a wrong one.
    let _ = std::fs::remove_file(d.join(ETAG_FILE));
    let body = serde_json::to_vec(&cached.answer).expect("plain data");
    release::applied::write_atomically(&d.join(ANSWER_FILE), &body)
        .map_err(err(d.join(ANSWER_FILE)))?;
    release::applied::write_atomically(&d.join(ETAG_FILE), cached.etag.as_bytes())
        .map_err(err(d.join(ETAG_FILE)))
}

/// Ask the relay for `store`'s release, holding trust root version `root`
/// (0: none). Unchanged since the cached answer: the cache, at the
/// service's current commit. Nothing here is trusted yet.
pub async fn fetch(
    client: &StatusClient,
    state_dir: &Path,
    store: &str,
    root: u64,
) -> Result<RelayedRelease, RelayError> {
    let cached = read_cache(state_dir);
    let path = format!("{PATH}?root={root}");
    let etag = cached.as_ref().map(|c| c.etag.as_str());
    let got = client
        .get_cached(&path, etag, MAX_ANSWER_BYTES, "the release relay")
        .await?;
    match got {
        Conditional::NotModified { commit } => {
            let Some(mut c) = cached else {
                return Err(RelayError::NothingCached {
                    url: client.url().to_owned(),
                    path: dir(state_dir).join(ANSWER_FILE),
                });
            };
            if let Some(commit) = commit
                && commit != c.answer.commit
            {
                c.answer.commit = commit;
                write_cache(state_dir, &c)?;
            }
            Ok(c.answer)
        }
        Conditional::Body { body, etag } => {
            let answer: RelayedRelease =
                serde_json::from_slice(&body).map_err(|e| StatusError::BadAnswer {
                    what: "the release relay".into(),
                    reason: e.to_string(),
                })?;
            if answer.store != store {
                return Err(RelayError::OtherStore {
                    url: client.url().to_owned(),
                    want: store.to_owned(),
                    got: answer.store,
                });
            }
            let cached = Cached {
                answer,
                etag: etag.unwrap_or_default(),
            };
            write_cache(state_dir, &cached)?;
            Ok(cached.answer)
        }
    }
}

/// A conditional GET's answer.
#[derive(Debug)]
pub enum Conditional {
    /// 304: what the caller has still holds; the service's commit.
    NotModified { commit: Option<String> },
    /// 200, with its ETag.
    Body { body: Vec<u8>, etag: Option<String> },
}

/// The header the relay names its commit with.
pub fn commit_of(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get(COMMIT_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_round_trips_and_a_torn_one_reads_as_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_cache(dir.path()).is_none());
        let c = Cached {
            answer: RelayedRelease {
                store: "acme/soho".into(),
                commit: "a".repeat(40),
                release: Some(b"r".to_vec()),
                signature: Some(b"s".to_vec()),
                root: Vec::new(),
            },
            etag: "\"x\"".into(),
        };
        write_cache(dir.path(), &c).expect("write");
        let back = read_cache(dir.path()).expect("cached");
        assert_eq!(back.answer, c.answer);
        assert_eq!(back.etag, c.etag);
        std::fs::write(dir.path().join(RELAY_DIR).join(ANSWER_FILE), b"{").expect("tear");
        assert!(read_cache(dir.path()).is_none());
    }

    #[test]
    fn only_hex_commits_are_taken_from_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(commit_of(&h), None);
        h.insert(COMMIT_HEADER, "abc123".parse().expect("value"));
        assert_eq!(commit_of(&h).as_deref(), Some("abc123"));
        h.insert(COMMIT_HEADER, "../x".parse().expect("value"));
        assert_eq!(commit_of(&h), None);
    }
}
