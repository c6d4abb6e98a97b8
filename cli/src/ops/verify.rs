//! `fleet verify`: every store has a release that verifies against the
//! given public key(s), is unexpired and matches what its sources render to.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use schemas::render::render_store;

use crate::ops::sign::{RELEASE_FILE, SIGNATURE_FILE, store_rel_dir, stores};
use crate::ops::validate::validate_dir;
use release::trust::{self, Expectations, TrustedKeys};

/// One store's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub store: String,
    pub revision: Option<u64>,
    /// `None` when the release is good.
    pub problem: Option<String>,
    /// A note that does not fail verification (e.g. expires soon).
    pub note: Option<String>,
}

/// What `fleet verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Validation errors of the repo itself (symlinked release files among them).
    pub validation_errors: Vec<schemas::Diagnostic>,
    pub verdicts: Vec<Verdict>,
}

impl VerifyReport {
    pub fn failures(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| v.problem.is_some())
    }

    pub fn ok(&self) -> bool {
        self.validation_errors.is_empty() && self.failures().next().is_none()
    }
}

/// Load trusted keys from a `.pub` file or a directory of them.
pub fn load_keys(path: &Path) -> anyhow::Result<TrustedKeys> {
    Ok(if path.is_dir() {
        TrustedKeys::load_dir(path)?
    } else {
        TrustedKeys::from_keys(vec![TrustedKeys::load_file(path)?])
    })
}

/// The release keys of the repo's trust root: its `trust/root/` chain
/// walked from the root pinned in `pin`; refused when the chain does not
/// verify to its newest version.
pub fn keys_from_root(repo: &Path, pin: &Path, now: DateTime<Utc>) -> anyhow::Result<TrustedKeys> {
    let verdict = crate::ops::root::verify(repo, Some(pin), now)?;
    match (verdict.problem, verdict.trusted) {
        (None, Some(root)) => Ok(root.release_keys),
        (Some(p), _) => anyhow::bail!(
            "the trust root chain does not verify from {}: {p}",
            pin.display()
        ),
        (None, None) => anyhow::bail!(
            "the trust root chain does not verify from {}",
            pin.display()
        ),
    }
}

/// Verify every store of the repo at `repo`.
pub fn verify(
    repo_dir: &Path,
    keys: &TrustedKeys,
    now: DateTime<Utc>,
    warn_within: chrono::Duration,
) -> anyhow::Result<VerifyReport> {
    let validation = validate_dir(repo_dir)?;
    // An invalid repo fails verification, but every store that loaded is
    // still checked so the report says all that is wrong at once.
    let mut report = VerifyReport {
        validation_errors: validation
            .diagnostics
            .iter()
            .filter(|d| d.severity == schemas::diag::Severity::Error)
            .cloned()
            .collect(),
        verdicts: Vec::new(),
    };
    // A tenant whose rollout of these very sources is running, or was
    // aborted, holds stores back on purpose (DESIGN.md §12).
    let mut holding: std::collections::BTreeMap<String, String> = Default::default();
    for t in validation.repo.tenants.values() {
        let digest = crate::ops::rollout::sources_digest(t);
        if let Some((_, r)) = crate::ops::rollout::load_tenant(repo_dir, &t.dir)?
            .into_iter()
            .rev()
            .find(|(_, r)| r.sources_digest == digest)
            .filter(|(_, r)| {
                r.state.is_active() || r.state == schemas::rollout::RolloutState::Aborted
            })
        {
            holding.insert(
                t.dir.clone(),
                format!("rollout {} is {}", r.id, r.state.as_str()),
            );
        }
    }
    for (tenant, store) in stores(&validation.repo) {
        let id = format!("{}/{}", tenant.dir, store.dir);
        let dir: PathBuf = repo_dir.join(store_rel_dir(tenant, store));
        let mut verdict = Verdict {
            store: id.clone(),
            revision: None,
            problem: None,
            note: None,
        };
        match read_pair(&dir) {
            Err(problem) => verdict.problem = Some(problem),
            Ok((release, signature)) => {
                match trust::check(
                    &release,
                    &signature,
                    keys,
                    Expectations {
                        store: &id,
                        last: None,
                        now,
                    },
                ) {
                    Err(refusal) => {
                        verdict.problem = Some(format!("{refusal} [{}]", refusal.code()))
                    }
                    Ok(accepted) => {
                        verdict.revision = Some(accepted.release.revision);
                        let matches =
                            accepted.release.state == render_store(&tenant.base, &store.file);
                        if let (false, Some(why)) = (matches, holding.get(&tenant.dir)) {
                            verdict.note = Some(format!(
                                "revision {} is not the sources' state yet: {why} (fleet rollout status)",
                                accepted.release.revision
                            ));
                        } else if !matches {
                            verdict.problem = Some(format!(
                                "revision {} does not match the sources (changed since it was signed): run `fleet sign`",
                                accepted.release.revision
                            ));
                        } else if accepted.release.expires_at - now < warn_within {
                            verdict.note = Some(format!("expires {}", accepted.release.expires_at));
                        }
                    }
                }
            }
        }
        report.verdicts.push(verdict);
    }
    Ok(report)
}

/// The release and signature bytes of a store dir, as regular files only.
fn read_pair(dir: &Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    let read = |name: &str| -> Result<Vec<u8>, String> {
        let path = dir.join(name);
        match path.symlink_metadata() {
            Err(_) => Err(format!("no {name}: not released yet (run `fleet sign`)")),
            Ok(m) if !m.is_file() => Err(format!(
                "{name} is not a regular file (symlink or special file) [input/not-regular-file]"
            )),
            Ok(m) if m.len() as usize > trust::MAX_RELEASE_BYTES => Err(format!(
                "{name} is {} bytes, over the limit [input/too-large]",
                m.len()
            )),
            Ok(_) => std::fs::read(&path).map_err(|e| format!("cannot read {name}: {e}")),
        }
    };
    Ok((read(RELEASE_FILE)?, read(SIGNATURE_FILE)?))
}
