//! The trust gate: whether a store may apply a release (DESIGN.md §3,
//! THREATS.md rows 1–11).
//!
//! [`check`] is a pure function of the release bytes, the signature text,
//! the trusted public keys, the last applied record and the time. It reads
//! no file, no clock and no network; the agent and `fleet verify` supply
//! those. Nothing of the release is parsed before its signature verified,
//! and the signature's trusted comment is read only after that, too.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use minisign_verify::{PublicKey, Signature};
use schemas::Release;
use schemas::state::{ReleaseHeader, parse_trusted_comment};

use crate::applied::AppliedRecord;

/// Largest `release.yaml` a store accepts (a 5,000-item menu is about 1 MiB).
pub const MAX_RELEASE_BYTES: usize = 16 * 1024 * 1024;
/// Largest `release.yaml.minisig` (a real one is about 300 bytes).
pub const MAX_SIGNATURE_BYTES: usize = 4096;

/// A public key the store trusts, with where it came from.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub key: PublicKey,
    /// The same key for [`batch`] verification; `None` when it is not a
    /// valid curve point (then every release it signs is checked the
    /// ordinary way, and refused).
    ed25519: Option<ed25519_dalek::VerifyingKey>,
    /// Minisign key id, upper-case hex as `minisign` prints it.
    pub key_id: String,
    /// The file it was read from, for messages.
    pub source: String,
}

/// The keys of a store's pinned trust directory. Several at once, so a key
/// can be rotated by adding the new one before removing the old.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

/// Why a trust directory or key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a minisign public key: {reason}")]
    Malformed {
        path: PathBuf,
        reason: KeyParseError,
    },
    #[error(
        "{0} holds neither root.yaml nor a *.pub minisign public key; a store trusts nothing without one"
    )]
    Empty(PathBuf),
    #[error("the pinned trust root {path} is not usable: {reason}")]
    Pin {
        path: PathBuf,
        reason: crate::root::RootRefusal,
    },
}

/// Why a text is not a minisign public key.
#[derive(Debug, thiserror::Error)]
pub enum KeyParseError {
    #[error("{0}")]
    Decode(#[from] minisign_verify::Error),
    #[error("cannot read the key id")]
    NoKeyId,
}

impl TrustedKeys {
    /// Parse one public key in minisign's file format (or its bare base64 line).
    pub fn parse_key(text: &str, source: &str) -> Result<TrustedKey, KeyParseError> {
        let trimmed = text.trim();
        // minisign's file: an untrusted comment, then the key line. The key
        // id is read from the same line the key is decoded from.
        let (key, b64) = if trimmed.lines().count() >= 2 {
            let line = trimmed.lines().nth(1).unwrap_or("").trim();
            (PublicKey::decode(trimmed)?, line)
        } else {
            (PublicKey::from_base64(trimmed)?, trimmed)
        };
        // The blob: algorithm (2 bytes), key id (8), Ed25519 key (32).
        let blob = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| KeyParseError::NoKeyId)?;
        let key_id = blob
            .get(2..10)
            .map(key_id_hex)
            .ok_or(KeyParseError::NoKeyId)?;
        let ed25519 = blob
            .get(10..42)
            .and_then(|raw| <[u8; 32]>::try_from(raw).ok())
            .and_then(|raw| ed25519_dalek::VerifyingKey::from_bytes(&raw).ok());
        Ok(TrustedKey {
            key,
            ed25519,
            key_id,
            source: source.to_owned(),
        })
    }

    /// Read every `*.pub` file of `dir`.
    pub fn load_dir(dir: &Path) -> Result<TrustedKeys, KeyError> {
        let io = |source| KeyError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        paths.sort();
        let mut keys = TrustedKeys::default();
        for path in paths {
            keys.keys.push(Self::load_file(&path)?);
        }
        if keys.keys.is_empty() {
            return Err(KeyError::Empty(dir.to_path_buf()));
        }
        Ok(keys)
    }

    /// Read one public key file.
    pub fn load_file(path: &Path) -> Result<TrustedKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_key(&text, &path.display().to_string()).map_err(|reason| KeyError::Malformed {
            path: path.to_path_buf(),
            reason,
        })
    }

    pub fn from_keys(keys: Vec<TrustedKey>) -> Self {
        TrustedKeys { keys }
    }

    pub fn iter(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The id of the key that made a minisign signature (its file text), as
/// `minisign` prints it; `None` when the text is not a signature.
pub fn key_id_of_signature(text: &str) -> Option<String> {
    key_id_of_blob(text.lines().nth(1)?, 2)
}

/// The key id stored at `offset` of a base64 minisign blob (after the
/// 2-byte algorithm), as `minisign` prints it.
fn key_id_of_blob(b64: &str, offset: usize) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    Some(key_id_hex(bytes.get(offset..offset + 8)?))
}

/// A key id's 8 bytes as `minisign` prints them: the little-endian key
/// number in upper-case hex.
fn key_id_hex(id: &[u8]) -> String {
    id.iter().rev().map(|b| format!("{b:02X}")).collect()
}

/// What a release is checked against besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// This store's full id, `<tenant>/<store>`.
    pub store: &'a str,
    /// What this store applied last; `None` if nothing yet.
    pub last: Option<&'a AppliedRecord>,
    pub now: DateTime<Utc>,
}

/// A release that passed every check.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub release: Release,
    /// SHA-256 of the exact release bytes, hex.
    pub digest: String,
    /// Which trusted key signed it.
    pub key_id: String,
    /// Same revision and bytes as the last applied release.
    pub already_applied: bool,
}

/// Why a release was refused. Each has a stable [`Refusal::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{what} is {size} bytes; the limit is {max}")]
    TooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error("the signature file is malformed: {0}")]
    MalformedSignature(String),
    #[error("signed by key {key_id}, which is not in the trust directory")]
    UnknownKey { key_id: String },
    #[error("legacy (non-prehashed) minisign signature; only prehashed signatures are accepted")]
    LegacySignature,
    #[error("the signature does not match the release bytes (modified after signing?)")]
    BadSignature,
    #[error("the trusted comment {0:?} is not `store=<tenant>/<store> revision=<n>`")]
    BadTrustedComment(String),
    #[error("the release is signed for store {signed_for}, not for this store {expected}")]
    WrongStore {
        expected: String,
        signed_for: String,
    },
    #[error("the signed comment says {field} {comment} but release.yaml says {file}")]
    CommentMismatch {
        field: &'static str,
        comment: String,
        file: String,
    },
    #[error(
        "release apiVersion {found:?} is not understood by this reconciler (it reads fleet/v1 and fleet/v2): upgrade the reconciler"
    )]
    UnsupportedVersion { found: String },
    #[error("release.yaml has a field this reconciler does not know ({0}): upgrade the reconciler")]
    UnknownField(String),
    #[error("release.yaml is malformed: {0}")]
    Malformed(String),
    #[error("rollback: revision {offered} is older than the applied revision {applied}")]
    Rollback { offered: u64, applied: u64 },
    #[error("equivocation: revision {revision} is already applied with other content")]
    Equivocation { revision: u64 },
    #[error(
        "the release expired at {expires_at}; the store keeps its last applied state until a fresh release is signed"
    )]
    Expired { expires_at: DateTime<Utc> },
    #[error("{0} is not a regular file (symlink, submodule or other); only regular files are read")]
    NotRegularFile(String),
    /// The trust root chain did not verify: no release is checked against
    /// keys the store cannot trust.
    #[error(transparent)]
    Root(#[from] crate::root::RootRefusal),
}

impl Refusal {
    /// A stable machine-readable code, e.g. `signature/unknown-key`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::TooLarge { .. } => "input/too-large",
            Refusal::MalformedSignature(_) => "signature/malformed",
            Refusal::UnknownKey { .. } => "signature/unknown-key",
            Refusal::LegacySignature => "signature/legacy",
            Refusal::BadSignature => "signature/invalid",
            Refusal::BadTrustedComment(_) => "signature/trusted-comment",
            Refusal::WrongStore { .. } => "release/wrong-store",
            Refusal::CommentMismatch { .. } => "release/comment-mismatch",
            Refusal::UnsupportedVersion { .. } => "release/unsupported-version",
            Refusal::UnknownField(_) => "release/unknown-field",
            Refusal::Malformed(_) => "release/malformed",
            Refusal::Rollback { .. } => "release/rollback",
            Refusal::Equivocation { .. } => "release/equivocation",
            Refusal::Expired { .. } => "release/expired",
            Refusal::NotRegularFile(_) => "input/not-regular-file",
            Refusal::Root(r) => r.code(),
        }
    }
}

/// SHA-256 of `bytes`, lower-case hex.
pub use wire::digest::sha256_hex as digest;

/// Decide whether `release` (with `signature`) may be applied at `expect.store`.
pub fn check(
    release: &[u8],
    signature: &[u8],
    keys: &TrustedKeys,
    expect: Expectations<'_>,
) -> Result<Accepted, Refusal> {
    let (key_id, signed_revision) = signed(release, signature, keys, expect.store)?;
    let signed_store = expect.store;
    let text = std::str::from_utf8(release)
        .map_err(|_| Refusal::Malformed("not UTF-8 text".to_owned()))?;
    // Decode once. A release that decodes is `apiVersion: fleet/v1|v2` by its
    // type, so it passes the version gate. Only a release that fails is read
    // again for its header, so that a newer version is refused as such rather
    // than as an unknown field. (Reading the header first parsed every good
    // release twice: 60 % of the instructions of a 5,000-item pass.)
    let parsed: Release = match schemas::yaml::decode("release.yaml", text) {
        Ok(parsed) => parsed,
        Err(d) => {
            let header: ReleaseHeader =
                serde_saphyr::from_str_with_options(text, schemas::yaml::options()).map_err(
                    |e| Refusal::Malformed(schemas::yaml::classify("release.yaml", &e).to_string()),
                )?;
            if !schemas::state::RELEASE_API_VERSIONS.contains(&header.api_version.as_str()) {
                return Err(Refusal::UnsupportedVersion {
                    found: header.api_version,
                });
            }
            return Err(if d.rule == "schema/unknown-field" {
                Refusal::UnknownField(d.to_string())
            } else {
                Refusal::Malformed(d.to_string())
            });
        }
    };
    // DESIGN.md §9: part-two fields come with `fleet/v2`, so a part-one
    // reconciler refuses them as "upgrade", never applies half of them.
    if let Some(needed) = parsed.version_mismatch() {
        return Err(Refusal::Malformed(format!(
            "it says apiVersion {} but its content needs {} (encrypted values and a tenant key are fleet/v2 only)",
            version_name(parsed.api_version),
            version_name(needed)
        )));
    }
    matches_comment(
        &parsed.store,
        parsed.revision,
        signed_store,
        signed_revision,
    )?;

    let digest = digest(release);
    let mut already_applied = false;
    if let Some(last) = expect.last {
        if parsed.revision < last.revision {
            return Err(Refusal::Rollback {
                offered: parsed.revision,
                applied: last.revision,
            });
        }
        if parsed.revision == last.revision {
            if digest != last.digest {
                return Err(Refusal::Equivocation {
                    revision: parsed.revision,
                });
            }
            already_applied = true;
        }
    }
    if parsed.expires_at <= expect.now {
        return Err(Refusal::Expired {
            expires_at: parsed.expires_at,
        });
    }
    Ok(Accepted {
        release: parsed,
        digest,
        key_id,
        already_applied,
    })
}

/// The part of the gate that needs no decoding: sizes, the signature by a
/// trusted key, and the signed trusted comment naming `store`. Answers the
/// signing key's id and the signed revision.
fn signed(
    release: &[u8],
    signature: &[u8],
    keys: &TrustedKeys,
    store: &str,
) -> Result<(String, u64), Refusal> {
    if release.len() > MAX_RELEASE_BYTES {
        return Err(Refusal::TooLarge {
            what: "release.yaml",
            size: release.len(),
            max: MAX_RELEASE_BYTES,
        });
    }
    if signature.len() > MAX_SIGNATURE_BYTES {
        return Err(Refusal::TooLarge {
            what: "release.yaml.minisig",
            size: signature.len(),
            max: MAX_SIGNATURE_BYTES,
        });
    }
    let sig_text = std::str::from_utf8(signature)
        .map_err(|_| Refusal::MalformedSignature("not UTF-8 text".to_owned()))?;
    let sig =
        Signature::decode(sig_text).map_err(|e| Refusal::MalformedSignature(e.to_string()))?;

    let key_id = verify_with_any(keys, release, &sig, sig_text)?;

    // Only now is the trusted comment authentic.
    let comment = sig.trusted_comment();
    let (signed_store, signed_revision) = parse_trusted_comment(comment)
        .ok_or_else(|| Refusal::BadTrustedComment(comment.to_owned()))?;
    if signed_store != store {
        return Err(Refusal::WrongStore {
            expected: store.to_owned(),
            signed_for: signed_store.to_owned(),
        });
    }
    Ok((key_id, signed_revision))
}

/// What [`check_head`] found of a release it let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedHead {
    pub revision: u64,
    pub expires_at: DateTime<Utc>,
    /// Which trusted key signed it.
    pub key_id: String,
}

/// The release's head: what [`check_head`] decodes.
#[derive(Debug, serde::Deserialize)]
struct Head {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    store: String,
    revision: u64,
    expires_at: DateTime<Utc>,
    /// Part-two fields of the head: each needs `fleet/v2`.
    #[serde(default)]
    tenant_key: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    windows: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    effective_at: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    urgent: bool,
}

/// The gate of [`check`] for a store that has applied nothing, without
/// decoding the release's state: the signature by a trusted key, the
/// signed store and revision, and from the head (the text before
/// `state:`) the apiVersion, the store, the revision and the expiry. What
/// the status service needs of every store at every fetch (ADR 48): the
/// state's content is the store's to check, and it reports what it
/// refuses. A release not laid out as `fleet sign` writes it is checked
/// the full way.
pub fn check_head(
    release: &[u8],
    signature: &[u8],
    keys: &TrustedKeys,
    store: &str,
    now: DateTime<Utc>,
) -> Result<AcceptedHead, Refusal> {
    let (key_id, signed_revision) = signed(release, signature, keys, store)?;
    head_when_signed(
        release,
        signature,
        keys,
        store,
        now,
        key_id,
        signed_revision,
    )
}

/// The rest of [`check_head`] once the signature by `key_id` and its
/// trusted comment naming `store` and `signed_revision` held.
fn head_when_signed(
    release: &[u8],
    signature: &[u8],
    keys: &TrustedKeys,
    store: &str,
    now: DateTime<Utc>,
    key_id: String,
    signed_revision: u64,
) -> Result<AcceptedHead, Refusal> {
    let text = std::str::from_utf8(release)
        .map_err(|_| Refusal::Malformed("not UTF-8 text".to_owned()))?;
    let full = || {
        let expect = Expectations {
            store,
            last: None,
            now,
        };
        check(release, signature, keys, expect).map(|a| AcceptedHead {
            revision: a.release.revision,
            expires_at: a.release.expires_at,
            key_id: a.key_id,
        })
    };
    let Some(at) = text.find("\nstate:\n") else {
        return full();
    };
    let Ok(head) = schemas::yaml::decode::<Head>("release.yaml", &text[..=at]) else {
        return full();
    };
    if !schemas::state::RELEASE_API_VERSIONS.contains(&head.api_version.as_str()) {
        return Err(Refusal::UnsupportedVersion {
            found: head.api_version,
        });
    }
    if head.kind != "StoreRelease" {
        return full();
    }
    // DESIGN.md §9: a part-two field of the head under fleet/v1. (Whether
    // the state's values need fleet/v2 is the store's to check.)
    let part_two = head.tenant_key.is_some()
        || head.windows.is_some()
        || head.effective_at.is_some()
        || head.urgent;
    if part_two && head.api_version == "fleet/v1" {
        return Err(Refusal::Malformed(
            "it says apiVersion fleet/v1 but its content needs fleet/v2 (encrypted values and a \
             tenant key are fleet/v2 only)"
                .to_owned(),
        ));
    }
    matches_comment(&head.store, head.revision, store, signed_revision)?;
    if head.expires_at <= now {
        return Err(Refusal::Expired {
            expires_at: head.expires_at,
        });
    }
    Ok(AcceptedHead {
        revision: head.revision,
        expires_at: head.expires_at,
        key_id,
    })
}

/// The store and revision a release file names must be the ones its
/// signed trusted comment names: a release copied to another store's
/// directory, or with its revision edited, is refused. Both gates ([`check`]
/// and [`check_head`]) ask this.
fn matches_comment(
    file_store: &str,
    file_revision: u64,
    signed_store: &str,
    signed_revision: u64,
) -> Result<(), Refusal> {
    if file_store != signed_store {
        return Err(Refusal::CommentMismatch {
            field: "store",
            comment: signed_store.to_owned(),
            file: file_store.to_owned(),
        });
    }
    if file_revision != signed_revision {
        return Err(Refusal::CommentMismatch {
            field: "revision",
            comment: signed_revision.to_string(),
            file: file_revision.to_string(),
        });
    }
    Ok(())
}

/// Verify against each trusted key; return the id of the one that signed.
fn verify_with_any(
    keys: &TrustedKeys,
    release: &[u8],
    sig: &Signature,
    sig_text: &str,
) -> Result<String, Refusal> {
    use minisign_verify::Error as E;
    for k in keys.iter() {
        match k.key.verify(release, sig, false) {
            Ok(()) => return Ok(k.key_id.clone()),
            Err(E::UnexpectedKeyId) => continue,
            Err(E::UnexpectedAlgorithm) | Err(E::UnsupportedLegacyMode) => {
                return Err(Refusal::LegacySignature);
            }
            Err(E::InvalidSignature) => return Err(Refusal::BadSignature),
            Err(e) => return Err(Refusal::MalformedSignature(e.to_string())),
        }
    }
    let key_id = key_id_of_signature(sig_text).unwrap_or_else(|| "?".to_owned());
    Err(Refusal::UnknownKey { key_id })
}

impl fmt::Display for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} revision {} (key {})",
            self.release.store, self.release.revision, self.key_id
        )
    }
}

fn version_name(v: schemas::state::ReleaseApiVersion) -> &'static str {
    match v {
        schemas::state::ReleaseApiVersion::V1 => "fleet/v1",
        schemas::state::ReleaseApiVersion::V2 => "fleet/v2",
    }
}

pub mod batch;

#[cfg(test)]
mod tests;
