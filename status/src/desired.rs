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
use release::source::{Mirror, ReleaseFiles};
use release::trust::{self, Expectations, Refusal, TrustedKeys};
use schemas::load::{EntryKind, SourceTree};

use crate::store::DesiredRow;

/// Why a fetch or scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Source(#[from] release::source::SourceError),
    #[error("reading the tree of {commit}: {message}")]
    Tree { commit: String, message: String },
}

/// Every store's desired release at `commit` of the mirror at `mirror_path`.
pub fn read_stores(
    mirror: &Mirror,
    mirror_path: &Path,
    commit: &str,
    keys: &TrustedKeys,
    now: DateTime<Utc>,
) -> Result<Vec<DesiredRow>, ScanError> {
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
    let checked_at = now.timestamp();
    let mut rows = Vec::with_capacity(stores.len());
    for store in stores {
        let release_dir = format!("tenants/{}/stores/{}", store.tenant(), store.store());
        let files = mirror.read_release(commit, &release_dir)?;
        rows.push(verify(store.as_str(), commit, files, keys, now, checked_at));
    }
    Ok(rows)
}

/// What one store's release files amount to.
fn verify(
    store: &str,
    commit: &str,
    files: ReleaseFiles,
    keys: &TrustedKeys,
    now: DateTime<Utc>,
    checked_at: i64,
) -> DesiredRow {
    let mut row = DesiredRow {
        store: store.to_owned(),
        revision: None,
        commit: commit.to_owned(),
        expires_at: None,
        valid: false,
        error: None,
        checked_at,
    };
    match files {
        ReleaseFiles::Missing => {
            row.error = Some("not released yet: no release.yaml".to_owned());
        }
        ReleaseFiles::Refused(r) => row.error = Some(refusal_text(&r)),
        ReleaseFiles::Found { release, signature } => {
            let expect = Expectations {
                store,
                last: None,
                now,
            };
            match trust::check(&release, &signature, keys, expect) {
                Ok(accepted) => {
                    row.revision = Some(accepted.release.revision);
                    row.expires_at = Some(accepted.release.expires_at.timestamp());
                    row.valid = true;
                }
                Err(r) => {
                    if let Refusal::Expired { expires_at } = &r {
                        row.expires_at = Some(expires_at.timestamp());
                    }
                    row.error = Some(refusal_text(&r));
                }
            }
        }
    }
    row
}

fn refusal_text(r: &Refusal) -> String {
    format!("{}: {r}", r.code())
}
