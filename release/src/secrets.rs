//! Secret values in a release (DESIGN.md §11), opened at the store.
//!
//! Every operation is the `age` crate's (X25519 identities, the binary age
//! format); nothing here is cryptography of its own. A value used at every
//! store of a tenant is encrypted to the tenant key, which the release
//! carries wrapped to the store's recipient; a value used at some stores is
//! encrypted to those stores' recipients. Encrypting is head office's work
//! and lives with the operator CLI (`cli::ops::secret::seal`), which the
//! store's binaries do not link (DESIGN.md §9); escrow identities use the
//! opening functions here too.

use std::io::Read as _;
use std::path::Path;

use age::x25519::Identity;
use base64::Engine as _;
use schemas::diff::EntityKind;
use schemas::model::{Sealed, Secret, SettingValue};
use schemas::{Release, StoreState};
use wire::report::HeldBack;

/// Largest plaintext a secret value may have (a PHC hash is ~100 bytes, a
/// terminal key a few hundred).
pub const MAX_PLAINTEXT: usize = 64 * 1024;

/// Why a secret operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {why}")]
    Identity { path: String, why: String },
    #[error("{0}")]
    Decrypt(String),
}

/// Decrypt a binary age file with any of `identities`.
pub fn decrypt(identities: &[&Identity], file: &[u8]) -> Result<Vec<u8>, SecretError> {
    let d = age::Decryptor::new_buffered(file)
        .map_err(|e| SecretError::Decrypt(format!("not an age file: {e}")))?;
    let mut r = d
        .decrypt(identities.iter().map(|i| *i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => {
                SecretError::Decrypt("it is not encrypted to this identity".into())
            }
            other => SecretError::Decrypt(other.to_string()),
        })?;
    let mut out = Vec::new();
    (&mut r)
        .take(MAX_PLAINTEXT as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| SecretError::Decrypt(format!("the ciphertext is damaged: {e}")))?;
    if out.len() > MAX_PLAINTEXT {
        return Err(SecretError::Decrypt(format!(
            "the value is over {MAX_PLAINTEXT} bytes"
        )));
    }
    Ok(out)
}

/// Decrypt a `{age, to}` value with any of `identities`.
pub fn unseal(sealed: &Sealed, identities: &[&Identity]) -> Result<String, SecretError> {
    let file = base64::engine::general_purpose::STANDARD
        .decode(sealed.age.as_bytes())
        .map_err(|e| SecretError::Decrypt(format!("`age` is not base64: {e}")))?;
    let bytes = decrypt(identities, &file)?;
    String::from_utf8(bytes).map_err(|_| SecretError::Decrypt("the value is not UTF-8".into()))
}

/// An age identity from the text of an identity file (`age-keygen`'s
/// format: `#` comments and one `AGE-SECRET-KEY-1…` line).
pub fn parse_identity(text: &str) -> Option<Identity> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|l| l.parse::<Identity>().ok())
}

/// Read an identity file, saying what is wrong with it.
pub fn read_identity(path: &Path) -> Result<Identity, SecretError> {
    let err = |why: String| SecretError::Identity {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    parse_identity(&text)
        .ok_or_else(|| err("holds no age identity (a line AGE-SECRET-KEY-1…)".into()))
}

/// The desired state with its secret values decrypted, and what could not
/// be.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub state: StoreState,
    /// Entities whose value this store cannot decrypt: left out of the pass
    /// (see [`keep_applied`]).
    pub held_back: Vec<HeldBack>,
}

/// Decrypt a release's secret values for the store `slug` with its
/// identity; `tenant_key` is the release's wrap of the tenant key (binary
/// age file). Plaintext values pass as they are. A value the store cannot
/// decrypt holds its entity back, with the reason; nothing else does.
pub fn open_state(
    state: &StoreState,
    slug: &str,
    store: &Identity,
    tenant_key: Option<&[u8]>,
) -> Opened {
    let tenant: Result<Identity, String> = match tenant_key {
        None => Err("the release carries no tenant key for this store (run `fleet secret rewrap` for it, then sign)".into()),
        Some(wrap) => decrypt(&[store], wrap)
            .map_err(|e| format!("its tenant-key wrap cannot be opened here ({e}); the store's identity changed since its rewrap"))
            .and_then(|bytes| {
                std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(parse_identity)
                    .ok_or_else(|| "its tenant-key wrap holds no age identity".to_owned())
            }),
    };
    let open = |sealed: &Sealed| -> Result<String, String> {
        if sealed.to_all() {
            let key = tenant.as_ref().map_err(Clone::clone)?;
            unseal(sealed, &[key]).map_err(|e| format!("a value for every store: {e}"))
        } else if !sealed.is_for(slug) {
            Err(format!(
                "the value is encrypted for {} only, not this store",
                sealed.to.join(", ")
            ))
        } else {
            unseal(sealed, &[store]).map_err(|e| {
                format!("{e}; the store's recipient changed since it was encrypted (run `fleet secret rewrap`)")
            })
        }
    };
    let mut out = state.clone();
    let mut held_back = Vec::new();
    out.settings.retain(|key, value| {
        let SettingValue::Sealed(sealed) = value else {
            return true;
        };
        match open(sealed) {
            Ok(plain) => {
                *value = SettingValue::Str(plain);
                true
            }
            Err(reason) => {
                held_back.push(HeldBack {
                    kind: EntityKind::Setting,
                    id: key.clone(),
                    reason,
                });
                false
            }
        }
    });
    out.access.users.retain_mut(|u| {
        let Some(Secret::Sealed(sealed)) = &u.pin_hash else {
            return true;
        };
        match open(sealed) {
            Ok(plain) => {
                u.pin_hash = Some(Secret::Plain(plain));
                true
            }
            Err(reason) => {
                held_back.push(HeldBack {
                    kind: EntityKind::User,
                    id: u.id.0.clone(),
                    reason,
                });
                false
            }
        }
    });
    Opened {
        state: out,
        held_back,
    }
}

/// Open a release's secret values for the store `slug`, whose identity
/// file is `identity_file` (`state_dir/age.key`). A release with no
/// encrypted value is returned as it is, without reading the identity.
pub fn open_release(release: &Release, slug: &str, identity_file: &Path) -> Opened {
    let state = &release.state;
    if !state.has_sealed() {
        return Opened {
            state: state.clone(),
            held_back: Vec::new(),
        };
    }
    let identity = match read_identity(identity_file) {
        Ok(i) => i,
        Err(e) => {
            return hold_all(
                state,
                &format!(
                    "this store has no age identity to decrypt with ({e}); enroll it (`fleet-reconciler enroll`)"
                ),
            );
        }
    };
    let wrap = match release
        .tenant_key
        .as_deref()
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
    {
        None => None,
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(e)) => {
            return hold_all(
                state,
                &format!("the release's tenant_key is not base64 ({e})"),
            );
        }
    };
    open_state(state, slug, &identity, wrap.as_deref())
}

/// Every entity with an encrypted value held back for one reason (the store
/// has no identity, or the release's wrap is damaged).
pub fn hold_all(state: &StoreState, reason: &str) -> Opened {
    let mut out = state.clone();
    let mut held_back = Vec::new();
    out.settings.retain(|k, v| {
        let sealed = matches!(v, SettingValue::Sealed(_));
        if sealed {
            held_back.push(HeldBack {
                kind: EntityKind::Setting,
                id: k.clone(),
                reason: reason.to_owned(),
            });
        }
        !sealed
    });
    out.access.users.retain(|u| {
        let sealed = matches!(u.pin_hash, Some(Secret::Sealed(_)));
        if sealed {
            held_back.push(HeldBack {
                kind: EntityKind::User,
                id: u.id.0.clone(),
                reason: reason.to_owned(),
            });
        }
        !sealed
    });
    Opened {
        state: out,
        held_back,
    }
}

/// Put back into `desired` what the store has applied of each held-back
/// entity, so the pass neither writes nor deletes it.
pub fn keep_applied(desired: &mut StoreState, applied: &StoreState, held_back: &[HeldBack]) {
    for h in held_back {
        match h.kind {
            EntityKind::Setting => {
                if let Some(v) = applied.settings.get(&h.id) {
                    desired.settings.insert(h.id.clone(), v.clone());
                }
            }
            EntityKind::User => {
                if let Some(u) = applied.access.users.iter().find(|u| u.id.0 == h.id) {
                    desired.access.users.push(u.clone());
                    desired.access.users.sort_by(|a, b| a.id.cmp(&b.id));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
