//! Desired revisions from Git: fetch the fleet repo into a bare mirror
//! (the reconciler's [`Mirror`]), list every store of the fetched commit,
//! read each release as regular blobs only and verify it with the
//! reconciler's own trust gate ([`release::trust::check`]) against the
//! service's pinned keys, as a store that has applied nothing would.
//!
//! Blocking (git2); the server runs [`scan`] on a blocking thread.

use std::path::Path;

use chrono::{DateTime, Utc};
use git2::Repository;
use release::root::{self, Anchor, RootRefusal, WalkError};
use release::source::{Mirror, ReleaseFiles};
use release::trust::{self, Refusal, TrustedKeys};
use schemas::load::{EntryKind, SourceTree};

use crate::store::DesiredRow;

/// Why a fetch or scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Source(#[from] release::source::SourceError),
    #[error("reading the tree of {commit}: {message}")]
    Tree { commit: String, message: String },
    /// A verified trust root step could not be saved in the state
    /// directory: the scan is retried; nothing is recorded meanwhile.
    #[error(transparent)]
    Persist(WalkError),
}

/// The trust root the service walked to at a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootSeen {
    pub version: u64,
    pub expires_at: i64,
}

/// What a scan found: each store's desired release, and the trust root.
#[derive(Debug, Clone)]
pub struct Scan {
    pub rows: Vec<DesiredRow>,
    /// `None` when the service pins release keys, or the chain did not
    /// verify (the rows say why).
    pub root: Option<RootSeen>,
    /// The rollout files of the commit (DESIGN.md §12).
    pub rollouts: Vec<crate::api::RolloutEntry>,
}

/// Every store's desired release at `commit` of the mirror at `mirror_path`.
pub fn read_stores(
    mirror: &Mirror,
    mirror_path: &Path,
    commit: &str,
    anchor: &Anchor,
    state_dir: &Path,
    now: DateTime<Utc>,
) -> Result<Scan, ScanError> {
    let tree_err = |message: String| ScanError::Tree {
        commit: commit.to_owned(),
        message,
    };
    let repo = Repository::open_bare(mirror_path).map_err(|e| tree_err(e.message().to_owned()))?;
    let (tree, _) = release::git_tree::GitTree::at_revision(&repo, commit)
        .map_err(|e| tree_err(e.message().to_owned()))?;
    let mut stores = Vec::new();
    let tenants = match tree.list("tenants") {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(tree_err(e.to_string())),
    };
    for tenant in tenants.iter().filter(|e| e.kind == EntryKind::Dir) {
        if !schemas::primitives::is_slug(&tenant.name) {
            continue;
        }
        let dir = format!("tenants/{}/stores", tenant.name);
        let entries = match tree.list(&dir) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(tree_err(e.to_string())),
        };
        for store in entries.iter().filter(|e| e.kind == EntryKind::Dir) {
            if let Ok(id) = schemas::StoreId::new(&tenant.name, &store.name) {
                stores.push(id);
            }
        }
    }
    let rollouts = crate::api::rollouts_read(&tree);
    let checked_at = now.timestamp();
    let mut rows = Vec::with_capacity(stores.len());
    // The keys releases verify with, as the stores find them: the trust
    // root chain walked from the pin (or the version persisted here).
    let keys = match trusted_keys(mirror, commit, anchor, state_dir, now)? {
        Ok(keys) => keys,
        Err((refusal, expired)) => {
            for store in stores {
                rows.push(DesiredRow {
                    store: store.as_str().to_owned(),
                    revision: None,
                    commit: commit.to_owned(),
                    expires_at: expired.map(|r| r.expires_at),
                    valid: false,
                    error: Some(refusal_text(&refusal)),
                    checked_at,
                });
            }
            return Ok(Scan {
                rows,
                root: expired,
                rollouts,
            });
        }
    };
    // On every core, each thread with the mirror opened once for its share
    // of the stores: 10,000 stores are verified in about a second (ADR 48).
    let shares: Vec<&[schemas::StoreId]> = stores
        .chunks(stores.len().div_ceil(schemas::par::threads()).max(1))
        .collect();
    let verified = schemas::par::map_in_order(&shares, 1, |share| {
        verify_share(mirror, commit, share, &keys.0, now, checked_at)
    });
    for share in verified {
        for mut row in share? {
            // A store's desired state lasts as long as the release and the
            // root it verifies under: the earlier expiry makes it stale.
            if let (Some(release), Some(root)) = (row.expires_at, keys.1.map(|r| r.expires_at)) {
                row.expires_at = Some(release.min(root));
            }
            rows.push(row);
        }
    }
    Ok(Scan {
        rows,
        root: keys.1,
        rollouts,
    })
}

/// The release keys at `commit` (and the trust root walked to), or the
/// refusal that stops every store (with the root walked to when it is the
/// newest one's expiry that stops it).
#[allow(clippy::type_complexity)]
fn trusted_keys(
    mirror: &Mirror,
    commit: &str,
    anchor: &Anchor,
    state_dir: &Path,
    now: DateTime<Utc>,
) -> Result<Result<(TrustedKeys, Option<RootSeen>), (Refusal, Option<RootSeen>)>, ScanError> {
    let chain = match mirror.read_root_chain(commit)? {
        Ok(chain) => chain,
        Err(refusal) => return Ok(Err((refusal, None))),
    };
    let persisted = match root::load_persisted(state_dir) {
        Ok(p) => p,
        Err(refusal) => return Ok(Err((refusal.into(), None))),
    };
    let resolved = root::resolve(anchor, persisted, &chain, now, |v| {
        root::persist(state_dir, v)?;
        tracing::info!(version = v.version(), "Trust root updated.");
        Ok(())
    });
    Ok(match resolved {
        Ok(r) => {
            if let Some(w) = &r.warning {
                tracing::warn!(warning = %w, "Trust root not adopted.");
            }
            let seen = r.root.map(|v| RootSeen {
                version: v.version(),
                expires_at: v.doc.expires_at.timestamp(),
            });
            Ok((r.keys, seen))
        }
        Err(WalkError::Refused(refusal)) => {
            tracing::error!(code = refusal.code(), reason = %refusal, "The trust root chain does not verify; no release is trusted.");
            let expired = match &refusal {
                RootRefusal::Expired {
                    version,
                    expires_at,
                } => Some(RootSeen {
                    version: *version,
                    expires_at: expires_at.timestamp(),
                }),
                _ => None,
            };
            Err((refusal.into(), expired))
        }
        Err(e @ WalkError::Persist { .. }) => return Err(ScanError::Persist(e)),
    })
}

/// Releases whose signatures are verified as one Ed25519 batch (ADR 54).
const SIGNATURE_BATCH: usize = 256;

/// A store's row, or the row it gets once its signatures hold.
enum Pending {
    Done(DesiredRow),
    Signatures(Box<trust::batch::Deferred>),
}

/// The rows of `share`: each release read with everything but its
/// signatures checked, one release in memory at a time; then the
/// signatures of [`SIGNATURE_BATCH`] releases verified together. A batch
/// that does not hold is read and checked again one release at a time,
/// which names the refusal of each.
fn verify_share(
    mirror: &Mirror,
    commit: &str,
    share: &[schemas::StoreId],
    keys: &TrustedKeys,
    now: DateTime<Utc>,
    checked_at: i64,
) -> Result<Vec<DesiredRow>, release::source::SourceError> {
    let dirs: Vec<String> = share.iter().map(|s| s.release_dir()).collect();
    let mut stores = share.iter();
    let pending = mirror.map_releases(commit, &dirs, |files| {
        let store = stores.next().expect("one store per release read");
        match files {
            ReleaseFiles::Found { release, signature } => {
                match trust::batch::check_head_deferred(
                    &release,
                    &signature,
                    keys,
                    store.as_str(),
                    now,
                ) {
                    trust::batch::Head::Deferred(d) => Pending::Signatures(d),
                    trust::batch::Head::Checked(answer) => {
                        Pending::Done(row_of(store.as_str(), commit, checked_at, answer))
                    }
                }
            }
            files => Pending::Done(verify(store.as_str(), commit, files, keys, now, checked_at)),
        }
    })?;
    let mut rows = Vec::with_capacity(pending.len());
    let mut pending = pending.into_iter();
    let mut at = 0;
    loop {
        let batch: Vec<Pending> = pending.by_ref().take(SIGNATURE_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let deferred: Vec<&trust::batch::Deferred> = batch
            .iter()
            .filter_map(|p| match p {
                Pending::Signatures(d) => Some(&**d),
                Pending::Done(_) => None,
            })
            .collect();
        let range = at..at + batch.len();
        if trust::batch::verify(&deferred) {
            rows.extend(
                batch
                    .into_iter()
                    .zip(&share[range.clone()])
                    .map(|(p, store)| match p {
                        Pending::Done(row) => row,
                        Pending::Signatures(d) => {
                            row_of(store.as_str(), commit, checked_at, d.outcome())
                        }
                    }),
            );
        } else {
            let mut stores = share[range.clone()].iter();
            rows.extend(mirror.map_releases(commit, &dirs[range.clone()], |files| {
                let store = stores.next().expect("one store per release read");
                verify(store.as_str(), commit, files, keys, now, checked_at)
            })?);
        }
        at = range.end;
    }
    Ok(rows)
}

/// A row of `store` with no verified release (yet).
fn unverified(store: &str, commit: &str, checked_at: i64) -> DesiredRow {
    DesiredRow {
        store: store.to_owned(),
        revision: None,
        commit: commit.to_owned(),
        expires_at: None,
        valid: false,
        error: None,
        checked_at,
    }
}

/// The row of `store` whose release the gate answered `answer`.
fn row_of(
    store: &str,
    commit: &str,
    checked_at: i64,
    answer: Result<trust::AcceptedHead, Refusal>,
) -> DesiredRow {
    let mut row = unverified(store, commit, checked_at);
    match answer {
        Ok(accepted) => {
            row.revision = Some(accepted.revision);
            row.expires_at = Some(accepted.expires_at.timestamp());
            row.valid = true;
        }
        Err(r) => {
            if let Refusal::Expired { expires_at } = &r {
                row.expires_at = Some(expires_at.timestamp());
            }
            row.error = Some(refusal_text(&r));
        }
    }
    row
}

/// What one store's release files amount to, checked on their own.
fn verify(
    store: &str,
    commit: &str,
    files: ReleaseFiles,
    keys: &TrustedKeys,
    now: DateTime<Utc>,
    checked_at: i64,
) -> DesiredRow {
    let mut row = unverified(store, commit, checked_at);
    match files {
        ReleaseFiles::Missing => {
            row.error = Some("not released yet: no release.yaml".to_owned());
        }
        ReleaseFiles::Refused(r) => row.error = Some(refusal_text(&r)),
        ReleaseFiles::Found { release, signature } => {
            return row_of(
                store,
                commit,
                checked_at,
                trust::check_head(&release, &signature, keys, store, now),
            );
        }
    }
    row
}

fn refusal_text(r: &Refusal) -> String {
    format!("{}: {r}", r.code())
}
