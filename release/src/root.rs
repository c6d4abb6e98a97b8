//! The trust root chain (DESIGN.md §10, THREATS.md rows 19–22).
//!
//! A store pins one version of `trust/root/<n>.yaml` (a [`TrustRoot`]) and,
//! on every pass, walks the versions the fleet repo offers: version n+1 is
//! trusted when its version number is exactly n+1, when a threshold of
//! version n's root keys signed its exact bytes, and when a threshold of
//! its own root keys did too — a key counts once however many signature
//! files it made. Each step is persisted before the next. The newest
//! trusted version must not have expired; its `releases` keys verify store
//! releases.
//!
//! Like [`crate::trust::check`], everything here is a pure function of
//! bytes, keys and the time handed in; the caller reads the repo, the
//! trust directory and the clock, and writes the persisted version through
//! the callback [`walk`] takes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use minisign_verify::Signature;
use schemas::trust_root::{ROOT_DIR, TrustRoot};

use crate::trust::{KeyError, MAX_SIGNATURE_BYTES, TrustedKey, TrustedKeys};

/// Largest `trust/root/<n>.yaml` accepted (a root of 50 keys is ~3 KiB).
pub const MAX_ROOT_BYTES: usize = 64 * 1024;
/// Most signature files read for one version.
pub const MAX_SIGNATURES: usize = 64;
/// Most keys of either list in one version.
pub const MAX_KEYS: usize = 64;
/// Most versions walked in one pass (a store offline for years catches up
/// over several passes rather than doing unbounded work in one).
pub const MAX_STEPS_PER_WALK: usize = 1024;

/// One version as the repo offers it: the file's bytes and every signature
/// file beside it (name, bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offered {
    pub bytes: Vec<u8>,
    pub signatures: Vec<(String, Vec<u8>)>,
}

/// The versions `trust/root/` of one commit holds, by version number.
pub type OfferedChain = BTreeMap<u64, Offered>;

/// A version of the root that is trusted: pinned by the installer, or
/// reached by a verified walk.
#[derive(Debug, Clone)]
pub struct VerifiedRoot {
    pub doc: TrustRoot,
    /// The exact bytes, to persist and to compare with the repo's copy.
    pub bytes: Vec<u8>,
    pub root_keys: Vec<TrustedKey>,
    pub release_keys: TrustedKeys,
}

/// Why a root, or a step of the chain, is not trusted. Each has a stable
/// [`RootRefusal::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootRefusal {
    #[error("{file} is {size} bytes; the limit is {max}")]
    TooLarge {
        file: String,
        size: usize,
        max: usize,
    },
    #[error("{file} is not a valid trust root: {reason}")]
    Malformed { file: String, reason: String },
    #[error("{file} says version {found}, but the version after {current} must be {expected}")]
    WrongVersion {
        file: String,
        current: u64,
        expected: u64,
        found: u64,
    },
    #[error(
        "{file} has {have} valid signature(s) by distinct root keys of {by}, and needs {need}{signed}"
    )]
    Threshold {
        file: String,
        /// "version 2" (the previous root) or "version 3 itself".
        by: String,
        have: usize,
        need: u32,
        /// ": signed by KEYID, …" when some signed.
        signed: String,
    },
    #[error(
        "the trust root chain has a gap: this store trusts version {current}, the repo has no {ROOT_DIR}/{missing}.yaml but has version {next}"
    )]
    Gap {
        current: u64,
        missing: u64,
        next: u64,
    },
    #[error(
        "rollback: this store trusts root version {trusted}, but the repo's trust root chain ends at {newest}"
    )]
    Rollback { trusted: u64, newest: String },
    #[error(
        "equivocation: the repo's {ROOT_DIR}/{version}.yaml differs from the version {version} this store trusts"
    )]
    Equivocation { version: u64 },
    #[error(
        "trust root version {version} expired at {expires_at}: sign a new root version (fleet root propose, then sign); nothing new is applied until then"
    )]
    Expired {
        version: u64,
        expires_at: DateTime<Utc>,
    },
}

impl RootRefusal {
    /// A stable machine-readable code, e.g. `root/threshold`.
    pub fn code(&self) -> &'static str {
        match self {
            RootRefusal::TooLarge { .. } => "root/too-large",
            RootRefusal::Malformed { .. } => "root/malformed",
            RootRefusal::WrongVersion { .. } => "root/wrong-version",
            RootRefusal::Threshold { .. } => "root/threshold",
            RootRefusal::Gap { .. } => "root/gap",
            RootRefusal::Rollback { .. } => "root/rollback",
            RootRefusal::Equivocation { .. } => "root/equivocation",
            RootRefusal::Expired { .. } => "root/expired",
        }
    }
}

impl VerifiedRoot {
    /// A root taken as trusted without signatures (a pin the installer
    /// wrote, or the version this store persisted after verifying it):
    /// only its form is checked.
    pub fn pinned(bytes: &[u8], file: &str) -> Result<VerifiedRoot, RootRefusal> {
        if bytes.len() > MAX_ROOT_BYTES {
            return Err(RootRefusal::TooLarge {
                file: file.to_owned(),
                size: bytes.len(),
                max: MAX_ROOT_BYTES,
            });
        }
        let malformed = |reason: String| RootRefusal::Malformed {
            file: file.to_owned(),
            reason,
        };
        let text =
            std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8 text".to_owned()))?;
        let doc: TrustRoot = schemas::yaml::decode(file, text).map_err(|d| {
            malformed(format!(
                "line {}, column {}: {}",
                d.line, d.column, d.message
            ))
        })?;
        let root_keys = parse_keys(&doc.root.keys, "root.keys", file)?;
        let release_keys = parse_keys(&doc.releases.keys, "releases.keys", file)?;
        if doc.version == 0 {
            return Err(malformed("version must be 1 or more".to_owned()));
        }
        if release_keys.is_empty() {
            return Err(malformed(
                "releases.keys is empty: no key could sign a release".to_owned(),
            ));
        }
        if doc.root.threshold == 0 || doc.root.threshold as usize > root_keys.len() {
            return Err(malformed(format!(
                "root.threshold is {}, but it must be between 1 and the {} root key(s)",
                doc.root.threshold,
                root_keys.len()
            )));
        }
        Ok(VerifiedRoot {
            doc,
            bytes: bytes.to_vec(),
            root_keys,
            release_keys: TrustedKeys::from_keys(release_keys),
        })
    }

    pub fn version(&self) -> u64 {
        self.doc.version
    }
}

/// The keys of one list, each once: a duplicate (the same key twice, so
/// that one key could meet a threshold of two) is malformed.
fn parse_keys(keys: &[String], field: &str, file: &str) -> Result<Vec<TrustedKey>, RootRefusal> {
    let malformed = |reason: String| RootRefusal::Malformed {
        file: file.to_owned(),
        reason,
    };
    if keys.len() > MAX_KEYS {
        return Err(malformed(format!(
            "{field} has {} keys; the limit is {MAX_KEYS}",
            keys.len()
        )));
    }
    let mut out: Vec<TrustedKey> = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let key = TrustedKeys::parse_key(k, &format!("{file} {field}[{i}]"))
            .map_err(|e| malformed(format!("{field}[{i}] is not a minisign public key: {e}")))?;
        if out.iter().any(|o| o.key_id == key.key_id) {
            return Err(malformed(format!(
                "{field}[{i}] repeats key {}: list each key once",
                key.key_id
            )));
        }
        out.push(key);
    }
    Ok(out)
}

/// The distinct keys among `keys` that made a valid signature of `bytes`
/// in `signatures`, by key id. A signature file that does not verify, is
/// too large or is not a signature counts for nothing; a key that signed
/// twice counts once.
pub fn signers(
    keys: &[TrustedKey],
    bytes: &[u8],
    signatures: &[(String, Vec<u8>)],
) -> BTreeSet<String> {
    let mut ok = BTreeSet::new();
    for (_, sig) in signatures.iter().take(MAX_SIGNATURES) {
        if sig.len() > MAX_SIGNATURE_BYTES {
            continue;
        }
        let Ok(text) = std::str::from_utf8(sig) else {
            continue;
        };
        let Ok(sig) = Signature::decode(text) else {
            continue;
        };
        for k in keys {
            if k.key.verify(bytes, &sig, false).is_ok() {
                ok.insert(k.key_id.clone());
            }
        }
    }
    ok
}

/// What a version still needs before it is trusted from `prev`: signatures
/// of `prev`'s root keys, then of its own (for `fleet root verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    pub by_previous: (usize, u32),
    pub by_itself: (usize, u32),
}

/// Verify version `prev.version() + 1`, offered as `next`.
pub fn step(prev: &VerifiedRoot, next: &Offered) -> Result<VerifiedRoot, RootRefusal> {
    let expected = prev.version() + 1;
    let file = format!("{ROOT_DIR}/{expected}.yaml");
    let candidate = VerifiedRoot::pinned(&next.bytes, &file)?;
    if candidate.version() != expected {
        return Err(RootRefusal::WrongVersion {
            file,
            current: prev.version(),
            expected,
            found: candidate.version(),
        });
    }
    let by_prev = signers(&prev.root_keys, &next.bytes, &next.signatures);
    if by_prev.len() < prev.doc.root.threshold as usize {
        return Err(threshold(
            &file,
            format!("version {}", prev.version()),
            &by_prev,
            prev.doc.root.threshold,
        ));
    }
    let by_self = signers(&candidate.root_keys, &next.bytes, &next.signatures);
    if by_self.len() < candidate.doc.root.threshold as usize {
        return Err(threshold(
            &file,
            format!("version {expected} itself"),
            &by_self,
            candidate.doc.root.threshold,
        ));
    }
    Ok(candidate)
}

/// The signatures `next` has and needs to follow `prev`.
pub fn needs(prev: &VerifiedRoot, next: &VerifiedRoot, offered: &Offered) -> Needs {
    Needs {
        by_previous: (
            signers(&prev.root_keys, &offered.bytes, &offered.signatures).len(),
            prev.doc.root.threshold,
        ),
        by_itself: (
            signers(&next.root_keys, &offered.bytes, &offered.signatures).len(),
            next.doc.root.threshold,
        ),
    }
}

fn threshold(file: &str, by: String, have: &BTreeSet<String>, need: u32) -> RootRefusal {
    RootRefusal::Threshold {
        file: file.to_owned(),
        by,
        have: have.len(),
        need,
        signed: if have.is_empty() {
            String::new()
        } else {
            format!(
                ": signed by {}",
                have.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        },
    }
}

/// Why a walk stopped short.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Refused(#[from] RootRefusal),
    /// The step was verified but could not be persisted; nothing after it
    /// is trusted.
    #[error("cannot persist trust root version {version}: {source}")]
    Persist {
        version: u64,
        source: std::io::Error,
    },
}

/// The result of a walk: the newest trusted version, and how many steps
/// were taken in this walk.
#[derive(Debug, Clone)]
pub struct Walked {
    pub root: VerifiedRoot,
    pub steps: usize,
}

/// Walk from `trusted` through the versions `offered`, calling `persist`
/// after each verified step and before the next. Refused: the repo holds no
/// copy of the trusted version or a chain ending below it (a rollback), a
/// different copy of it (equivocation), a later version that does not
/// verify, a gap, or a newest version that expired before `now`.
pub fn walk(
    trusted: VerifiedRoot,
    offered: &OfferedChain,
    now: DateTime<Utc>,
    mut persist: impl FnMut(&VerifiedRoot) -> std::io::Result<()>,
) -> Result<Walked, WalkError> {
    let have = trusted.version();
    match offered.get(&have) {
        Some(o) if o.bytes == trusted.bytes => {}
        Some(_) => return Err(RootRefusal::Equivocation { version: have }.into()),
        None => {
            return Err(RootRefusal::Rollback {
                trusted: have,
                newest: match offered.keys().next_back() {
                    Some(v) => format!("version {v}"),
                    None => format!("nothing (no {ROOT_DIR}/*.yaml)"),
                },
            }
            .into());
        }
    }
    let mut current = trusted;
    let mut steps = 0;
    while steps < MAX_STEPS_PER_WALK {
        let Some(next) = offered.get(&(current.version() + 1)) else {
            break;
        };
        let verified = step(&current, next)?;
        persist(&verified).map_err(|source| WalkError::Persist {
            version: verified.version(),
            source,
        })?;
        current = verified;
        steps += 1;
    }
    if steps < MAX_STEPS_PER_WALK
        && let Some((&next, _)) = offered.range(current.version() + 1..).next()
    {
        return Err(RootRefusal::Gap {
            current: current.version(),
            missing: current.version() + 1,
            next,
        }
        .into());
    }
    if current.doc.expires_at <= now {
        return Err(RootRefusal::Expired {
            version: current.version(),
            expires_at: current.doc.expires_at,
        }
        .into());
    }
    Ok(Walked {
        root: current,
        steps,
    })
}

/// A `*.pub` store's way onto the chain (DESIGN.md §10, migration): it
/// adopts version 1 of the repo when one of its pinned keys signed that
/// exact version and the version's own root keys met their threshold.
/// `None` when the repo has no version 1 or no pinned key signed it.
pub fn adopt(
    pinned: &TrustedKeys,
    offered: &OfferedChain,
) -> Option<Result<VerifiedRoot, RootRefusal>> {
    let first = offered.get(&1)?;
    let keys: Vec<TrustedKey> = pinned.iter().cloned().collect();
    if signers(&keys, &first.bytes, &first.signatures).is_empty() {
        return None;
    }
    let file = format!("{ROOT_DIR}/1.yaml");
    Some(VerifiedRoot::pinned(&first.bytes, &file).and_then(|root| {
        if root.version() != 1 {
            return Err(RootRefusal::WrongVersion {
                file: file.clone(),
                current: 0,
                expected: 1,
                found: root.version(),
            });
        }
        let own = signers(&root.root_keys, &first.bytes, &first.signatures);
        if own.len() < root.doc.root.threshold as usize {
            return Err(threshold(
                &file,
                "version 1 itself".to_owned(),
                &own,
                root.doc.root.threshold,
            ));
        }
        Ok(root)
    }))
}

/// The file of a store's trust directory that pins a root.
pub const PIN_FILE: &str = "root.yaml";
/// The file of a store's state directory that holds the newest version it
/// walked to.
pub const PERSISTED_FILE: &str = "trust-root.yaml";

/// What a store's trust directory pins.
#[derive(Debug, Clone)]
pub enum Anchor {
    /// `root.yaml`: a version of the trust root; releases verify against
    /// the newest version the chain walks to.
    Root(VerifiedRoot),
    /// Bare `*.pub` keys (part one): releases verify against them until
    /// the repo offers a version 1 one of them signed.
    Keys(TrustedKeys),
}

impl Anchor {
    /// Read a pinned root file (`fleet verify --root`, `fleet-status
    /// serve --root`).
    pub fn load_pin(path: &Path) -> Result<Anchor, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        VerifiedRoot::pinned(&bytes, &path.display().to_string())
            .map(Anchor::Root)
            .map_err(|reason| KeyError::Pin {
                path: path.to_path_buf(),
                reason,
            })
    }

    /// Read a trust directory: `root.yaml` wins over `*.pub` keys.
    pub fn load(trust_dir: &Path) -> Result<Anchor, KeyError> {
        let pin = trust_dir.join(PIN_FILE);
        match std::fs::read(&pin) {
            Ok(bytes) => VerifiedRoot::pinned(&bytes, &pin.display().to_string())
                .map(Anchor::Root)
                .map_err(|reason| KeyError::Pin { path: pin, reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                TrustedKeys::load_dir(trust_dir).map(Anchor::Keys)
            }
            Err(source) => Err(KeyError::Io { path: pin, source }),
        }
    }
}

/// The version `state_dir` persisted, if any. A file that is there but
/// not a valid root is refused (nothing is trusted from it).
pub fn load_persisted(state_dir: &Path) -> Result<Option<VerifiedRoot>, RootRefusal> {
    let path = state_dir.join(PERSISTED_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => VerifiedRoot::pinned(&bytes, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RootRefusal::Malformed {
            file: path.display().to_string(),
            reason: format!("cannot read it: {e}"),
        }),
    }
}

/// Persist `root` in `state_dir`, atomically (a reader sees the old
/// version or the new one, across a power cut too).
pub fn persist(state_dir: &Path, root: &VerifiedRoot) -> std::io::Result<()> {
    crate::applied::write_atomically(&state_dir.join(PERSISTED_FILE), &root.bytes)
}

/// The keys releases verify against on this pass, and what the walk did.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub keys: TrustedKeys,
    /// The newest trusted version; `None` for a `*.pub` store that has not
    /// adopted a root.
    pub root: Option<VerifiedRoot>,
    /// Versions walked on this pass.
    pub steps: usize,
    /// Something the operator should know that does not stop the pass.
    pub warning: Option<String>,
}

/// Decide which keys verify releases on this pass: start from the pin or
/// from the persisted version (the higher), or for a `*.pub` store from a
/// version 1 it adopts, walk what `offered` holds, persisting each step.
pub fn resolve(
    anchor: &Anchor,
    persisted: Option<VerifiedRoot>,
    offered: &OfferedChain,
    now: DateTime<Utc>,
    mut persist: impl FnMut(&VerifiedRoot) -> std::io::Result<()>,
) -> Result<Resolved, WalkError> {
    let start = match (anchor, persisted) {
        (Anchor::Root(pin), Some(p)) if p.version() > pin.version() => p,
        (Anchor::Root(pin), _) => pin.clone(),
        (Anchor::Keys(_), Some(p)) => p,
        (Anchor::Keys(keys), None) => match adopt(keys, offered) {
            Some(Ok(v1)) => {
                persist(&v1).map_err(|source| WalkError::Persist { version: 1, source })?;
                v1
            }
            Some(Err(refusal)) => return Err(refusal.into()),
            None => {
                return Ok(Resolved {
                    keys: keys.clone(),
                    root: None,
                    steps: 0,
                    warning: offered.contains_key(&1).then(|| {
                        format!(
                            "the repo has {ROOT_DIR}/1.yaml, but none of this store's *.pub keys signed it: releases still verify against the *.pub keys (fleet root sign --key <release key> --version 1 lets stores adopt the root)"
                        )
                    }),
                });
            }
        },
    };
    let walked = walk(start, offered, now, persist)?;
    Ok(Resolved {
        keys: walked.root.release_keys.clone(),
        root: Some(walked.root),
        steps: walked.steps,
        warning: None,
    })
}

impl fmt::Display for VerifiedRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |keys: &mut dyn Iterator<Item = &TrustedKey>| {
            keys.map(|k| k.key_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "trust root version {} (expires {}): releases signed by {}; next version needs {} of {}",
            self.version(),
            self.doc.expires_at.format("%Y-%m-%d"),
            ids(&mut self.release_keys.iter()),
            self.doc.root.threshold,
            ids(&mut self.root_keys.iter()),
        )
    }
}

#[cfg(test)]
mod tests;
