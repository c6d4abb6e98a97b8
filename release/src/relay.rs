//! Both ends of the release relay (DESIGN.md §13, [`wire::relay`]): the
//! status service packs a store's release files from its mirror with the
//! same reads a store makes of its own mirror ([`pack`]), and the store
//! unpacks the answer into exactly what a Git read gives it ([`unpack`]),
//! with the same size limits, before the same trust gate. Nothing the
//! relay says is trusted: a relay that alters a byte, serves an older
//! release or another store's is refused by the gate, as a Git host would be.

use wire::relay::{RelayedRelease, RelayedRoot, RelayedSignature};

use crate::root::{MAX_ROOT_BYTES, Offered, OfferedChain, RootRefusal};
use crate::source::{Mirror, ReleaseFiles, SourceError};
use crate::trust::{MAX_RELEASE_BYTES, MAX_SIGNATURE_BYTES, Refusal};

/// The relay's answer for `store` at `commit` of `mirror`, with the root
/// versions from `root_from` up (all of them for 0). `Ok(Err(_))`: the
/// files are there but no store would accept them (a symlink, an oversized
/// file); the service says why.
pub fn pack(
    mirror: &Mirror,
    commit: &str,
    store: &schemas::StoreId,
    root_from: u64,
) -> Result<Result<RelayedRelease, Refusal>, SourceError> {
    let (release, signature) = match mirror.read_release(commit, &store.release_dir())? {
        ReleaseFiles::Found { release, signature } => (Some(release), Some(signature)),
        ReleaseFiles::Missing => (None, None),
        ReleaseFiles::Refused(r) => return Ok(Err(r)),
    };
    let chain = match mirror.read_root_chain(commit)? {
        Ok(c) => c,
        Err(r) => return Ok(Err(r)),
    };
    let root = chain
        .into_iter()
        .filter(|(v, _)| *v >= root_from)
        .map(|(version, o)| RelayedRoot {
            version,
            file: o.bytes,
            signatures: o
                .signatures
                .into_iter()
                .map(|(name, file)| RelayedSignature { name, file })
                .collect(),
        })
        .collect();
    Ok(Ok(RelayedRelease {
        store: store.as_str().to_owned(),
        commit: commit.to_owned(),
        release,
        signature,
        root,
    }))
}

/// What a store reads from a relayed answer: its release files and the
/// offered root chain, as [`Mirror::read_release`] and
/// [`Mirror::read_root_chain`] would give them, with the same limits.
pub fn unpack(answer: &RelayedRelease) -> (ReleaseFiles, Result<OfferedChain, Refusal>) {
    let files = match (&answer.release, &answer.signature) {
        (None, _) => ReleaseFiles::Missing,
        (Some(r), _) if r.len() > MAX_RELEASE_BYTES => ReleaseFiles::Refused(Refusal::TooLarge {
            what: "release.yaml",
            size: r.len(),
            max: MAX_RELEASE_BYTES,
        }),
        (Some(_), None) => ReleaseFiles::Refused(Refusal::MalformedSignature(
            "the relay sent release.yaml without release.yaml.minisig".to_owned(),
        )),
        (Some(_), Some(s)) if s.len() > MAX_SIGNATURE_BYTES => {
            ReleaseFiles::Refused(Refusal::TooLarge {
                what: "release.yaml.minisig",
                size: s.len(),
                max: MAX_SIGNATURE_BYTES,
            })
        }
        (Some(r), Some(s)) => ReleaseFiles::Found {
            release: r.clone(),
            signature: s.clone(),
        },
    };
    (files, chain(&answer.root))
}

fn chain(root: &[RelayedRoot]) -> Result<OfferedChain, Refusal> {
    use schemas::trust_root::{ROOT_DIR, RootFileName};
    let mut chain = OfferedChain::new();
    for r in root {
        let file = format!("{ROOT_DIR}/{}.yaml", r.version);
        if r.file.len() > MAX_ROOT_BYTES {
            return Err(RootRefusal::TooLarge {
                file,
                size: r.file.len(),
                max: MAX_ROOT_BYTES,
            }
            .into());
        }
        if chain.contains_key(&r.version) {
            return Err(RootRefusal::Malformed {
                file,
                reason: "the relay sent this version twice".to_owned(),
            }
            .into());
        }
        let mut offered = Offered {
            bytes: r.file.clone(),
            signatures: Vec::new(),
        };
        for s in &r.signatures {
            // Only `<version>.yaml.<KEYID>.minisig` of this version counts,
            // as in Git; anything else is ignored.
            match RootFileName::parse(&s.name) {
                RootFileName::Signature { version, .. } if version == r.version => {}
                _ => continue,
            }
            if s.file.len() > MAX_SIGNATURE_BYTES {
                return Err(RootRefusal::TooLarge {
                    file: format!("{ROOT_DIR}/{}", s.name),
                    size: s.file.len(),
                    max: MAX_SIGNATURE_BYTES,
                }
                .into());
            }
            offered.signatures.push((s.name.clone(), s.file.clone()));
        }
        chain.insert(r.version, offered);
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> RelayedRelease {
        RelayedRelease {
            store: "acme/soho".into(),
            commit: "c".repeat(40),
            release: Some(b"release".to_vec()),
            signature: Some(b"sig".to_vec()),
            root: vec![RelayedRoot {
                version: 3,
                file: b"root".to_vec(),
                signatures: vec![
                    RelayedSignature {
                        name: "3.yaml.0123456789ABCDEF.minisig".into(),
                        file: b"s".to_vec(),
                    },
                    RelayedSignature {
                        name: "4.yaml.0123456789ABCDEF.minisig".into(),
                        file: b"s".to_vec(),
                    },
                    RelayedSignature {
                        name: "../../etc/passwd".into(),
                        file: b"s".to_vec(),
                    },
                ],
            }],
        }
    }

    #[test]
    fn unpacks_like_a_git_read() {
        let (files, chain) = unpack(&answer());
        assert_eq!(
            files,
            ReleaseFiles::Found {
                release: b"release".to_vec(),
                signature: b"sig".to_vec()
            }
        );
        let chain = chain.expect("chain");
        assert_eq!(chain.len(), 1);
        assert_eq!(
            chain[&3].signatures.len(),
            1,
            "other versions' and odd names are ignored"
        );
        let none = RelayedRelease {
            release: None,
            signature: None,
            ..answer()
        };
        assert_eq!(unpack(&none).0, ReleaseFiles::Missing);
    }

    #[test]
    fn oversized_and_doubled_files_are_refused() {
        let big = RelayedRelease {
            release: Some(vec![b'a'; MAX_RELEASE_BYTES + 1]),
            ..answer()
        };
        assert!(matches!(
            unpack(&big).0,
            ReleaseFiles::Refused(Refusal::TooLarge {
                what: "release.yaml",
                ..
            })
        ));
        let unsigned = RelayedRelease {
            signature: None,
            ..answer()
        };
        assert!(matches!(
            unpack(&unsigned).0,
            ReleaseFiles::Refused(Refusal::MalformedSignature(_))
        ));
        let mut twice = answer();
        twice.root.push(twice.root[0].clone());
        assert!(unpack(&twice).1.is_err());
        let mut huge_root = answer();
        huge_root.root[0].file = vec![b'a'; MAX_ROOT_BYTES + 1];
        assert!(unpack(&huge_root).1.is_err());
    }
}
