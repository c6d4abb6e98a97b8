//! The release relay (DESIGN.md §13): `GET /api/v1/release?root=<n>`, a
//! signed node request the status service answers with the calling store's
//! release files as its last Git fetch holds them, so 10,000 stores make
//! one Git fetch, not 10,000.
//!
//! The relay is not trusted: the answer carries the files' bytes exactly
//! as they are in Git, and the store puts them through the same trust gate
//! as a release it read from its own mirror (signature, store, revision,
//! expiry, trust root walk). A relay can withhold a release, as a Git host
//! can; it cannot make a store apply anything that was not signed for it.
//!
//! Caching: the answer's `ETag` is a digest of the files it carries (and
//! the `root` asked for), so a fetch that changed other stores answers
//! `304 Not Modified` to this one; `X-Fleet-Commit` names the
//! service's commit on both answers.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The relay's path.
pub const PATH: &str = "/api/v1/release";

/// The fleet repo commit the answer was read from (on 200 and 304).
pub const COMMIT_HEADER: &str = "x-fleet-commit";

/// The code of the 503 answered before the service's first Git fetch.
pub const NOT_FETCHED: &str = "not_fetched";

/// What the relay answers: a store's release files and the trust root
/// versions it needs, as bytes (base64) exactly as Git holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayedRelease {
    /// `<tenant>/<store>`: the calling node's store.
    pub store: String,
    /// The fleet repo commit the files were read from.
    pub commit: String,
    /// `release.yaml`, or `None` when the store has no release at `commit`.
    #[serde(default, with = "opt_b64", skip_serializing_if = "Option::is_none")]
    pub release: Option<Vec<u8>>,
    /// `release.yaml.minisig`, or `None` when there is none.
    #[serde(default, with = "opt_b64", skip_serializing_if = "Option::is_none")]
    pub signature: Option<Vec<u8>>,
    /// Every trust root version from the one asked for (`root=n`, so the
    /// store can check its own copy) upward; every version for `root=0`.
    #[serde(default)]
    pub root: Vec<RelayedRoot>,
}

/// One version of the trust root: `trust/root/<version>.yaml` and its
/// `<version>.yaml.<KEYID>.minisig` files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayedRoot {
    pub version: u64,
    #[serde(with = "b64")]
    pub file: Vec<u8>,
    #[serde(default)]
    pub signatures: Vec<RelayedSignature>,
}

/// A signature file of a trust root version, by its file name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayedSignature {
    pub name: String,
    #[serde(with = "b64")]
    pub file: Vec<u8>,
}

/// The ETag of an answer: a digest of the files it carries and the
/// `root` asked for, so it is the same on every replica at the same commit
/// and changes only when this store's files (or the root versions it
/// gets) change.
pub fn etag(answer: &RelayedRelease, root: u64) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(root.to_be_bytes());
    let mut part = |bytes: Option<&[u8]>| match bytes {
        None => h.update([0]),
        Some(b) => {
            h.update([1]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
    };
    part(answer.release.as_deref());
    part(answer.signature.as_deref());
    for r in &answer.root {
        part(Some(&r.version.to_be_bytes()));
        part(Some(&r.file));
        for s in &r.signatures {
            part(Some(s.name.as_bytes()));
            part(Some(&s.file));
        }
    }
    format!("\"{}\"", &hex::encode(h.finalize())[..32])
}

mod b64 {
    use super::*;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

mod opt_b64 {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        bytes: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => b64::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t.as_bytes())
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_and_bad_base64_is_named() {
        let a = RelayedRelease {
            store: "acme/soho".into(),
            commit: "a".repeat(40),
            release: Some(b"apiVersion: fleet/v1\n".to_vec()),
            signature: None,
            root: vec![RelayedRoot {
                version: 2,
                file: vec![0, 1, 2, 255],
                signatures: vec![RelayedSignature {
                    name: "2.yaml.ABCD.minisig".into(),
                    file: b"sig".to_vec(),
                }],
            }],
        };
        let text = serde_json::to_string(&a).expect("JSON");
        assert!(
            !text.contains("signature\""),
            "absent files are left out: {text}"
        );
        assert_eq!(
            serde_json::from_str::<RelayedRelease>(&text).expect("decodes"),
            a
        );
        let bad = text.replace("AAEC/w==", "not base64!");
        let e = serde_json::from_str::<RelayedRelease>(&bad).expect_err("bad base64");
        assert!(e.to_string().contains("Invalid"), "{e}");
        let extra = text.replacen('{', "{\"x\":1,", 1);
        assert!(serde_json::from_str::<RelayedRelease>(&extra).is_err());
    }

    #[test]
    fn etags_follow_what_the_store_gets_not_the_commit() {
        let a = RelayedRelease {
            store: "acme/soho".into(),
            commit: "a".repeat(40),
            release: Some(b"r".to_vec()),
            signature: Some(b"s".to_vec()),
            root: Vec::new(),
        };
        let one = etag(&a, 1);
        let other_commit = RelayedRelease {
            commit: "b".repeat(40),
            ..a.clone()
        };
        assert_eq!(one, etag(&other_commit, 1));
        assert_ne!(one, etag(&a, 2));
        let moved = RelayedRelease {
            release: Some(b"rs".to_vec()),
            signature: Some(Vec::new()),
            ..a.clone()
        };
        assert_ne!(one, etag(&moved, 1), "bytes moved between files");
        let none = RelayedRelease {
            release: None,
            ..a.clone()
        };
        assert_ne!(one, etag(&none, 1));
        assert!(one.starts_with('"') && one.ends_with('"'));
    }
}
