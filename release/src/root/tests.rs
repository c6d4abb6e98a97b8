//! The chain walk as tables (THREATS.md rows 19–22): every root version,
//! key and signature is made in memory with the `minisign` crate, the clock
//! is fixed. The same rows run end to end with real Git, the real
//! reconciler and edge in `reconciler/tests/testsuite/trust_root_e2e.rs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use minisign::KeyPair;
use schemas::model::{ApiVersion, TrustRootKind};
use schemas::trust_root::{ReleaseKeys, RootKeys, TrustRoot};

use super::*;

const NOW: &str = "2026-12-01T09:00:00Z";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW)
        .expect("a fixed time")
        .with_timezone(&Utc)
}

/// A key pair made in memory.
struct Key {
    pair: KeyPair,
}

impl Key {
    fn new() -> Key {
        Key {
            pair: KeyPair::generate_unencrypted_keypair().expect("a key pair"),
        }
    }

    /// The base64 line of its `*.pub`, as a root lists it.
    fn public(&self) -> String {
        self.pair.pk.to_base64()
    }

    fn id(&self) -> String {
        TrustedKeys::parse_key(&self.public(), "test")
            .expect("our key parses")
            .key_id
    }

    fn sign(&self, bytes: &[u8]) -> (String, Vec<u8>) {
        let sig = minisign::sign(None, &self.pair.sk, bytes, Some("root"), None)
            .expect("an unencrypted key signs")
            .to_string()
            .into_bytes();
        (format!("x.yaml.{}.minisig", self.id()), sig)
    }
}

/// Five root keys, three release keys, a rogue.
struct Keys {
    root: Vec<Key>,
    release: Vec<Key>,
    rogue: Key,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            root: (0..5).map(|_| Key::new()).collect(),
            release: (0..3).map(|_| Key::new()).collect(),
            rogue: Key::new(),
        }
    }
}

/// A root document: version, root key indices, threshold, release key
/// indices, expiry (days from now).
fn doc(
    k: &Keys,
    version: u64,
    root: &[usize],
    threshold: u32,
    release: &[usize],
    days: i64,
) -> TrustRoot {
    TrustRoot {
        api_version: ApiVersion,
        kind: TrustRootKind,
        version,
        expires_at: now() + Duration::days(days),
        root: RootKeys {
            threshold,
            keys: root.iter().map(|&i| k.root[i].public()).collect(),
        },
        releases: ReleaseKeys {
            keys: release.iter().map(|&i| k.release[i].public()).collect(),
        },
    }
}

fn bytes(d: &TrustRoot) -> Vec<u8> {
    schemas::yaml::to_canonical_yaml(d)
        .expect("a root is plain data")
        .into_bytes()
}

/// A version offered with signatures of the given root keys.
fn offered(k: &Keys, d: &TrustRoot, signed_by: &[usize]) -> Offered {
    let b = bytes(d);
    Offered {
        signatures: signed_by.iter().map(|&i| k.root[i].sign(&b)).collect(),
        bytes: b,
    }
}

fn pinned(d: &TrustRoot) -> VerifiedRoot {
    VerifiedRoot::pinned(&bytes(d), "root.yaml").expect("a well-formed pin")
}

/// Walk with a persistence log.
fn walk_logged(
    trusted: VerifiedRoot,
    chain: &OfferedChain,
) -> (Result<Walked, WalkError>, Vec<u64>) {
    let mut log = Vec::new();
    let r = walk(trusted, chain, now(), |v| {
        log.push(v.version());
        Ok(())
    });
    (r, log)
}

fn refusal(r: Result<Walked, WalkError>) -> RootRefusal {
    match r {
        Err(WalkError::Refused(x)) => x,
        Err(e) => panic!("not a refusal: {e}"),
        Ok(w) => panic!("walked to {}", w.root.version()),
    }
}

#[test]
fn the_chain_walks_when_each_step_meets_both_thresholds() {
    let k = Keys::new();
    // v1: root keys 0,1,2 (2 of 3), release key 0.
    let v1 = doc(&k, 1, &[0, 1, 2], 2, &[0], 365);
    // v2 adds release key 1, signed by 0 and 1 (both old and new roots).
    let v2 = doc(&k, 2, &[0, 1, 2], 2, &[0, 1], 365);
    // v3 rotates root key 2 out for 3, threshold 2: old 0+1, new 0+3.
    let v3 = doc(&k, 3, &[0, 1, 3], 2, &[1], 365);
    let chain: OfferedChain = BTreeMap::from([
        (1, offered(&k, &v1, &[0, 1])),
        (2, offered(&k, &v2, &[0, 1])),
        (3, offered(&k, &v3, &[0, 1, 3])),
    ]);
    let (r, log) = walk_logged(pinned(&v1), &chain);
    let walked = r.expect("walks");
    assert_eq!(walked.root.version(), 3);
    assert_eq!(walked.steps, 2);
    assert_eq!(log, vec![2, 3], "each step persisted, in order");
    let releases: Vec<String> = walked
        .root
        .release_keys
        .iter()
        .map(|k| k.key_id.clone())
        .collect();
    assert_eq!(releases, vec![k.release[1].id()]);
    // Nothing offered beyond the trusted version: nothing to do.
    let (r, log) = walk_logged(walked.root.clone(), &chain);
    assert_eq!(r.expect("walks").steps, 0);
    assert!(log.is_empty());
}

/// THREATS row 19: a leaked release key is dropped by root N+1; once the
/// store walked there, a release signed by the leaked key is refused by
/// the release gate (the keys it verifies with are the new root's).
#[test]
fn row_19_a_release_key_dropped_by_the_next_root_signs_nothing_after_the_walk() {
    let k = Keys::new();
    let v1 = doc(&k, 1, &[0, 1, 2], 2, &[0, 1], 365);
    let v2 = doc(&k, 2, &[0, 1, 2], 2, &[1], 365);
    let chain: OfferedChain = BTreeMap::from([
        (1, offered(&k, &v1, &[0, 1])),
        (2, offered(&k, &v2, &[1, 2])),
    ]);
    let before = pinned(&v1);
    assert!(
        before
            .release_keys
            .iter()
            .any(|x| x.key_id == k.release[0].id())
    );
    let after = walk_logged(before, &chain).0.expect("walks").root;
    assert!(
        !after
            .release_keys
            .iter()
            .any(|x| x.key_id == k.release[0].id()),
        "the leaked key is no longer a release key"
    );
    let release = b"any release bytes";
    let (_, sig) = k.release[0].sign(release);
    let refused = crate::trust::check(
        release,
        &sig,
        &after.release_keys,
        crate::trust::Expectations {
            store: "acme/soho",
            last: None,
            now: now(),
        },
    )
    .expect_err("refused");
    assert_eq!(refused.code(), "signature/unknown-key", "{refused}");
}

/// THREATS rows 20–22 and the rest of the refusals, one row each: what the
/// store trusts, what the repo offers, the code the walk must answer, and
/// the versions it must have persisted before stopping.
#[test]
fn every_bad_chain_is_refused_with_its_code() {
    let k = Keys::new();
    let v1 = doc(&k, 1, &[0, 1, 2], 2, &[0], 365);
    let v2 = doc(&k, 2, &[0, 1, 2], 2, &[1], 365);
    let v3 = doc(&k, 3, &[0, 1, 2], 2, &[2], 365);
    let v2_other = doc(&k, 2, &[0, 1, 2], 2, &[2], 365);
    let good1 = offered(&k, &v1, &[0, 1]);
    let good2 = offered(&k, &v2, &[0, 1]);
    let good3 = offered(&k, &v3, &[1, 2]);

    // One key, two signature files: counts once.
    let mut twice = offered(&k, &v2, &[0]);
    let again = k.root[0].sign(&twice.bytes);
    twice
        .signatures
        .push((again.0.replace("x.yaml", "copy.yaml"), again.1));
    // A version that adds two new root keys and raises the threshold to 3:
    // the old keys sign, the new ones do not.
    let grow = doc(&k, 2, &[0, 1, 3, 4], 3, &[0], 365);
    let grow_unsigned = offered(&k, &grow, &[0, 1]);
    // The same key listed twice so that one signer meets a threshold of 2.
    let dup = doc(&k, 2, &[0, 0], 2, &[0], 365);
    let dup_offered = offered(&k, &dup, &[0, 1]);
    // A rogue's signature file named after a root key.
    let mut rogue = offered(&k, &v2, &[0]);
    let (_, rogue_sig) = k.rogue.sign(&rogue.bytes);
    rogue
        .signatures
        .push((format!("2.yaml.{}.minisig", k.root[1].id()), rogue_sig));
    // Signed correctly, then altered.
    let mut altered = offered(&k, &v2, &[0, 1]);
    altered.bytes = String::from_utf8(altered.bytes)
        .expect("text")
        .replace("threshold: 2", "threshold: 1")
        .into_bytes();
    // Version 3's file under the name of version 2.
    let misnumbered = offered(&k, &v3, &[0, 1]);
    let expired_last = doc(&k, 2, &[0, 1, 2], 2, &[1], -1);
    let expired_middle = doc(&k, 2, &[0, 1, 2], 2, &[1], -30);

    type Row<'a> = (
        &'a str,
        VerifiedRoot,
        Vec<(u64, Offered)>,
        &'a str,
        Vec<u64>,
    );
    let rows: Vec<Row<'_>> = vec![
        (
            "row 20: a skipped version",
            pinned(&v1),
            vec![(1, good1.clone()), (3, good3.clone())],
            "root/gap",
            vec![],
        ),
        (
            "row 20: a gap after a good step",
            pinned(&v1),
            vec![(1, good1.clone()), (2, good2.clone()), (4, good3.clone())],
            "root/gap",
            vec![2],
        ),
        (
            "row 20: the repo's chain ends below the trusted version (rolled back)",
            pinned(&v2),
            vec![(1, good1.clone())],
            "root/rollback",
            vec![],
        ),
        (
            "row 20: no trust/root at all under a root store",
            pinned(&v1),
            vec![],
            "root/rollback",
            vec![],
        ),
        (
            "row 20: the trusted version with other bytes",
            pinned(&v2),
            vec![(1, good1.clone()), (2, offered(&k, &v2_other, &[0, 1]))],
            "root/equivocation",
            vec![],
        ),
        (
            "row 21: below the old threshold",
            pinned(&v1),
            vec![(1, good1.clone()), (2, offered(&k, &v2, &[0]))],
            "root/threshold",
            vec![],
        ),
        (
            "row 21: one key signing twice",
            pinned(&v1),
            vec![(1, good1.clone()), (2, twice)],
            "root/threshold",
            vec![],
        ),
        (
            "row 21: the new root's own threshold unmet",
            pinned(&v1),
            vec![(1, good1.clone()), (2, grow_unsigned)],
            "root/threshold",
            vec![],
        ),
        (
            "row 21: one key listed twice in root.keys",
            pinned(&v1),
            vec![(1, good1.clone()), (2, dup_offered)],
            "root/malformed",
            vec![],
        ),
        (
            "a rogue signature under a root key's name",
            pinned(&v1),
            vec![(1, good1.clone()), (2, rogue)],
            "root/threshold",
            vec![],
        ),
        (
            "bytes altered after signing",
            pinned(&v1),
            vec![(1, good1.clone()), (2, altered)],
            "root/threshold",
            vec![],
        ),
        (
            "a file whose version is not n+1",
            pinned(&v1),
            vec![(1, good1.clone()), (2, misnumbered)],
            "root/wrong-version",
            vec![],
        ),
        (
            "row 22: the newest version expired",
            pinned(&v1),
            vec![(1, good1.clone()), (2, offered(&k, &expired_last, &[0, 1]))],
            "root/expired",
            vec![2],
        ),
        (
            "row 22: an expired pin and nothing newer",
            pinned(&expired_last),
            vec![(2, offered(&k, &expired_last, &[0, 1]))],
            "root/expired",
            vec![],
        ),
    ];
    for (name, trusted, chain, code, persisted) in rows {
        let chain: OfferedChain = chain.into_iter().collect();
        let (r, log) = walk_logged(trusted, &chain);
        let refused = refusal(r);
        assert_eq!(refused.code(), code, "{name}: {refused}");
        assert_eq!(log, persisted, "{name}: persisted before the refusal");
        assert!(!refused.to_string().is_empty());
    }

    // An expired version in the middle of the chain does not stop the walk:
    // only the newest must be current.
    let v3_after_expired = doc(&k, 3, &[0, 1, 2], 2, &[2], 365);
    let chain: OfferedChain = BTreeMap::from([
        (1, good1.clone()),
        (2, offered(&k, &expired_middle, &[0, 1])),
        (3, offered(&k, &v3_after_expired, &[0, 1])),
    ]);
    assert_eq!(
        walk_logged(pinned(&v1), &chain)
            .0
            .expect("walks")
            .root
            .version(),
        3
    );
}

#[test]
fn threshold_messages_say_what_signed_and_what_is_missing() {
    let k = Keys::new();
    let v1 = doc(&k, 1, &[0, 1, 2], 2, &[0], 365);
    let v2 = doc(&k, 2, &[0, 1, 2], 2, &[1], 365);
    let chain: OfferedChain =
        BTreeMap::from([(1, offered(&k, &v1, &[0, 1])), (2, offered(&k, &v2, &[2]))]);
    let text = refusal(walk_logged(pinned(&v1), &chain).0).to_string();
    assert_eq!(
        text,
        format!(
            "trust/root/2.yaml has 1 valid signature(s) by distinct root keys of version 1, and needs 2: signed by {}",
            k.root[2].id()
        )
    );
    let next = VerifiedRoot::pinned(&bytes(&v2), "2.yaml").expect("form");
    let n = needs(&pinned(&v1), &next, &chain[&2]);
    assert_eq!(
        n,
        Needs {
            by_previous: (1, 2),
            by_itself: (1, 2)
        }
    );
}

#[test]
fn a_persist_failure_stops_the_walk_at_the_last_persisted_version() {
    let k = Keys::new();
    let v1 = doc(&k, 1, &[0], 1, &[0], 365);
    let v2 = doc(&k, 2, &[0], 1, &[1], 365);
    let v3 = doc(&k, 3, &[0], 1, &[2], 365);
    let chain: OfferedChain = BTreeMap::from([
        (1, offered(&k, &v1, &[0])),
        (2, offered(&k, &v2, &[0])),
        (3, offered(&k, &v3, &[0])),
    ]);
    let mut persisted = Vec::new();
    let r = walk(pinned(&v1), &chain, now(), |v| {
        if v.version() == 3 {
            return Err(std::io::Error::other("disk full"));
        }
        persisted.push(v.version());
        Ok(())
    });
    match r {
        Err(WalkError::Persist { version: 3, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(persisted, vec![2]);
}

/// A store installed with version 1 follows years of rotations: every
/// root key and release key replaced, one version at a time, with the
/// threshold going up and down.
#[test]
fn a_store_pinned_at_version_1_follows_forty_versions_of_rotation() {
    let k = Keys::new();
    let mut versions = Vec::new();
    let mut root: Vec<usize> = vec![0, 1];
    for v in 1..=40u64 {
        // Every fifth version swaps one root key for the spare one.
        if v % 5 == 0 {
            let spare = (0..5).find(|i| !root.contains(i)).expect("a spare key");
            root.remove(0);
            root.push(spare);
        }
        let threshold = if v % 2 == 0 { 1 } else { root.len() as u32 };
        let release = [(v as usize) % 3];
        versions.push((v, doc(&k, v, &root, threshold, &release, 365), root.clone()));
    }
    let mut chain = OfferedChain::new();
    for (i, (v, d, keys)) in versions.iter().enumerate() {
        // Signed by all keys of the previous version and of this one.
        let mut signers: Vec<usize> = keys.clone();
        if i > 0 {
            signers.extend(versions[i - 1].2.iter().copied());
        }
        signers.sort_unstable();
        signers.dedup();
        chain.insert(*v, offered(&k, d, &signers));
    }
    let (r, log) = walk_logged(pinned(&versions[0].1), &chain);
    let walked = r.expect("walks");
    assert_eq!(walked.root.version(), 40);
    assert_eq!(log, (2..=40).collect::<Vec<u64>>());
    assert_eq!(
        walked
            .root
            .release_keys
            .iter()
            .next()
            .map(|x| x.key_id.clone()),
        Some(k.release[40 % 3].id())
    );
}

#[test]
fn malformed_roots_are_refused_with_the_reason() {
    let k = Keys::new();
    let good = doc(&k, 1, &[0, 1], 2, &[0], 365);
    let text = String::from_utf8(bytes(&good)).expect("text");
    let cases: Vec<(String, &str)> = vec![
        (
            text.replace("threshold: 2", "threshold: 0"),
            "root.threshold is 0",
        ),
        (
            text.replace("threshold: 2", "threshold: 3"),
            "between 1 and the 2 root key(s)",
        ),
        (
            text.replace("version: 1", "version: 0"),
            "version must be 1 or more",
        ),
        (text.replace("kind: TrustRoot", "kind: Store"), "kind"),
        (format!("{text}extra: 1\n"), "extra"),
        (
            text.replace(&k.root[1].public(), "RWQnotakey"),
            "root.keys[1] is not a minisign public key",
        ),
        ("".to_owned(), "empty"),
        ("\u{0}\u{ff}".to_owned(), ""),
    ];
    for (bad, needle) in cases {
        let e = VerifiedRoot::pinned(bad.as_bytes(), "trust/root/1.yaml").expect_err("refused");
        assert_eq!(e.code(), "root/malformed", "{bad:?}: {e}");
        assert!(e.to_string().contains(needle), "{needle:?} in {e}");
        assert!(e.to_string().starts_with("trust/root/1.yaml"), "{e}");
    }
    let mut no_release = good.clone();
    no_release.releases.keys.clear();
    let e = VerifiedRoot::pinned(&bytes(&no_release), "1.yaml").expect_err("refused");
    assert!(e.to_string().contains("releases.keys is empty"), "{e}");
    let huge = vec![b'#'; MAX_ROOT_BYTES + 1];
    let e = VerifiedRoot::pinned(&huge, "1.yaml").expect_err("refused");
    assert_eq!(e.code(), "root/too-large");
}

#[test]
fn a_pub_store_adopts_version_1_only_when_a_pinned_key_signed_it() {
    let k = Keys::new();
    let v1 = doc(&k, 1, &[0, 1], 1, &[0], 365);
    let b = bytes(&v1);
    let pinned_keys = TrustedKeys::from_keys(vec![
        TrustedKeys::parse_key(&k.release[0].public(), "release.pub").expect("key"),
    ]);
    // Signed by a root key only: the store stays on its *.pub keys.
    let chain: OfferedChain = BTreeMap::from([(1, offered(&k, &v1, &[0]))]);
    assert!(adopt(&pinned_keys, &chain).is_none());
    // Also signed by the pinned release key: adopted.
    let mut with_pinned = offered(&k, &v1, &[0]);
    with_pinned.signatures.push(k.release[0].sign(&b));
    let chain: OfferedChain = BTreeMap::from([(1, with_pinned)]);
    let adopted = adopt(&pinned_keys, &chain)
        .expect("offered")
        .expect("adopted");
    assert_eq!(adopted.version(), 1);
    // Signed by the pinned key but not by its own root keys: refused.
    let only_pinned = Offered {
        bytes: b.clone(),
        signatures: vec![k.release[0].sign(&b)],
    };
    let chain: OfferedChain = BTreeMap::from([(1, only_pinned)]);
    let e = adopt(&pinned_keys, &chain)
        .expect("offered")
        .expect_err("refused");
    assert_eq!(e.code(), "root/threshold", "{e}");
    // No version 1 in the repo.
    assert!(adopt(&pinned_keys, &OfferedChain::new()).is_none());
}
