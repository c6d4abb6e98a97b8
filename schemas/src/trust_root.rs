//! `trust/root/<n>.yaml`: one version of the fleet's root of trust
//! (DESIGN.md §10). Which keys may sign store releases, and which keys (how
//! many of them) must sign the next version of this file. Verifying the
//! chain is `release::root`'s; this is the document.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{ApiVersion, TrustRootKind};

/// Where the versions live in the fleet repo.
pub const ROOT_DIR: &str = "trust/root";

/// One version of the trust root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustRoot {
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    pub kind: TrustRootKind,
    /// 1 for the first root; each later version exactly one more.
    pub version: u64,
    /// After this instant a store refuses to trust this version as its
    /// newest: sign a new version before it comes.
    pub expires_at: DateTime<Utc>,
    /// The keys that sign the next version, and how many of them must.
    pub root: RootKeys,
    /// The keys that sign store releases: any one of them suffices.
    pub releases: ReleaseKeys,
}

/// The root keys of a version and their threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RootKeys {
    /// How many distinct root keys must sign (a key counts once).
    pub threshold: u32,
    /// Minisign public keys, the base64 line of a `*.pub` file.
    pub keys: Vec<String>,
}

/// The keys that sign store releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseKeys {
    /// Minisign public keys, the base64 line of a `*.pub` file.
    pub keys: Vec<String>,
}

/// The file name of version `n`: `<n>.yaml`.
pub fn file_name(version: u64) -> String {
    format!("{version}.yaml")
}

/// The signature file of version `n` by key `key_id`:
/// `<n>.yaml.<KEYID>.minisig`.
pub fn signature_name(version: u64, key_id: &str) -> String {
    format!("{version}.yaml.{key_id}.minisig")
}

/// What a file name of `trust/root/` is: a version, a signature of one, or
/// something else (ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootFileName {
    Version(u64),
    Signature { version: u64, key_id: String },
    Other,
}

impl RootFileName {
    pub fn parse(name: &str) -> RootFileName {
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0'))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        if let Some(n) = name.strip_suffix(".yaml").and_then(number) {
            return RootFileName::Version(n);
        }
        if let Some(rest) = name.strip_suffix(".minisig")
            && let Some((n, key_id)) = rest.split_once(".yaml.")
            && let Some(version) = number(n)
            && !key_id.is_empty()
            && key_id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return RootFileName::Signature {
                version,
                key_id: key_id.to_owned(),
            };
        }
        RootFileName::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_odd_names_are_other() {
        assert_eq!(
            RootFileName::parse(&file_name(12)),
            RootFileName::Version(12)
        );
        assert_eq!(
            RootFileName::parse(&signature_name(3, "ABCDEF0123456789")),
            RootFileName::Signature {
                version: 3,
                key_id: "ABCDEF0123456789".into()
            }
        );
        for other in [
            "01.yaml",
            "0x.yaml",
            "README.md",
            "2.yml",
            "2.yaml.minisig",
            "2.yaml.zz.minisig",
            ".yaml",
        ] {
            assert_eq!(RootFileName::parse(other), RootFileName::Other, "{other}");
        }
    }

    #[test]
    fn a_root_document_decodes_strictly() {
        let text = "apiVersion: fleet/v1\nkind: TrustRoot\nversion: 2\nexpires_at: 2027-12-01T00:00:00Z\nroot: {threshold: 2, keys: [a, b, c]}\nreleases: {keys: [r]}\n";
        let root: TrustRoot = crate::yaml::decode("2.yaml", text).expect("decodes");
        assert_eq!(root.version, 2);
        assert_eq!(root.root.threshold, 2);
        let bad = text.replace("releases:", "release:");
        let err = crate::yaml::decode::<TrustRoot>("2.yaml", &bad).expect_err("unknown field");
        assert!(err.to_string().contains("release"), "{err}");
    }
}
