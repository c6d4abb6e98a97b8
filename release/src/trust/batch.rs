//! [`check_head`] for many releases at once (ADR 54).
//!
//! At every fetch the status service checks the release of every store:
//! 10,000 stores are 20,000 Ed25519 signatures (a minisign signature is
//! one over the BLAKE2b-512 hash of the file and one over that signature
//! and its trusted comment). Checked one by one they were most of the
//! time between a hook and the long-polls' answers. Here a release signed
//! the way `fleet sign` signs it (prehashed, by a trusted key) has
//! everything but its two signatures checked at once, and the signatures
//! of many releases are then verified together as one Ed25519 batch
//! (`ed25519_dalek::verify_batch`), about three times faster each.
//!
//! A batch answers only "all hold" or "one does not". When one does not,
//! the caller checks each release of the batch with [`check_head`]: the
//! refusal is then exactly the one-by-one gate's, and so is every release
//! this module does not understand (another algorithm, an unknown key, a
//! signature file it cannot read), which it leaves to [`check_head`] at
//! once.
//!
//! The store never uses this: the reconciler checks its one release with
//! [`super::check`]. A batch accepts what the one-by-one check accepts; the
//! only signatures the two could judge differently are ones with
//! small-order parts, which only the holder of a trusted secret key can
//! make, and such a release would still be refused at the store.

use base64::Engine as _;
use blake2::{Blake2b512, Digest as _};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature as Ed25519Signature, VerifyingKey};
use minisign_verify::Signature;
use schemas::state::parse_trusted_comment;

use super::{
    AcceptedHead, MAX_RELEASE_BYTES, MAX_SIGNATURE_BYTES, Refusal, TrustedKeys, check_head,
    head_when_signed, key_id_hex,
};

/// One Ed25519 signature to verify.
#[derive(Debug, Clone)]
struct Check {
    key: VerifyingKey,
    message: Vec<u8>,
    signature: Ed25519Signature,
}

/// A release whose gate waits only on its two signatures.
#[derive(Debug, Clone)]
pub struct Deferred {
    checks: [Check; 2],
    /// What [`check_head`] answers when both signatures hold.
    outcome: Result<AcceptedHead, Refusal>,
}

impl Deferred {
    /// What the release's gate answers, once [`verify`] said its
    /// signatures hold.
    pub fn outcome(self) -> Result<AcceptedHead, Refusal> {
        self.outcome
    }
}

/// A release checked as far as it can be without its signatures.
#[derive(Debug, Clone)]
pub enum Head {
    /// Answered already, by [`check_head`].
    Checked(Result<AcceptedHead, Refusal>),
    /// Waits for [`verify`] of its signatures.
    Deferred(Box<Deferred>),
}

/// [`check_head`] of one release, with its two signatures left to
/// [`verify`] when it is signed the way `fleet sign` signs.
pub fn check_head_deferred(
    release: &[u8],
    signature: &[u8],
    keys: &TrustedKeys,
    store: &str,
    now: DateTime<Utc>,
) -> Head {
    match defer(release, signature, keys, store, now) {
        Some(deferred) => Head::Deferred(Box::new(deferred)),
        None => Head::Checked(check_head(release, signature, keys, store, now)),
    }
}

/// The deferred gate, or `None` for anything but a prehashed signature by
/// a trusted key whose signed comment names `store`.
fn defer(
    release: &[u8],
    signature: &[u8],
    keys: &TrustedKeys,
    store: &str,
    now: DateTime<Utc>,
) -> Option<Deferred> {
    if release.len() > MAX_RELEASE_BYTES || signature.len() > MAX_SIGNATURE_BYTES {
        return None;
    }
    let text = std::str::from_utf8(signature).ok()?;
    // minisign's reading of the file decides its trusted comment; the raw
    // signatures are read here from the same lines.
    let parsed = Signature::decode(text).ok()?;
    let mut lines = text.lines().skip(1);
    let b64 = base64::engine::general_purpose::STANDARD;
    let first = b64.decode(lines.next()?).ok()?;
    lines.next()?;
    let global = b64.decode(lines.next()?).ok()?;
    // "ED": Ed25519 over the BLAKE2b-512 hash of the file.
    if first.len() != 74 || &first[..2] != b"ED" {
        return None;
    }
    let key_id = key_id_hex(&first[2..10]);
    let key = keys.iter().find(|k| k.key_id == key_id)?.ed25519?;
    let file_signature: [u8; 64] = first[10..74].try_into().ok()?;
    let global_signature: [u8; 64] = global.as_slice().try_into().ok()?;
    let comment = parsed.trusted_comment();
    let (signed_store, signed_revision) = parse_trusted_comment(comment)?;
    if signed_store != store {
        return None;
    }
    let mut signed_comment = file_signature.to_vec();
    signed_comment.extend_from_slice(comment.as_bytes());
    let checks = [
        Check {
            key,
            message: Blake2b512::digest(release).to_vec(),
            signature: Ed25519Signature::from_bytes(&file_signature),
        },
        Check {
            key,
            message: signed_comment,
            signature: Ed25519Signature::from_bytes(&global_signature),
        },
    ];
    let outcome = head_when_signed(
        release,
        signature,
        keys,
        store,
        now,
        key_id,
        signed_revision,
    );
    Some(Deferred { checks, outcome })
}

/// Whether every signature of `deferred` holds, verified as one batch.
/// `false` says only that one does not: check each release with
/// [`check_head`] to learn which, and why.
pub fn verify(deferred: &[&Deferred]) -> bool {
    let checks: Vec<&Check> = deferred.iter().flat_map(|d| d.checks.iter()).collect();
    if checks.is_empty() {
        return true;
    }
    let messages: Vec<&[u8]> = checks.iter().map(|c| c.message.as_slice()).collect();
    let signatures: Vec<Ed25519Signature> = checks.iter().map(|c| c.signature).collect();
    let keys: Vec<VerifyingKey> = checks.iter().map(|c| c.key).collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A release for `store` at `revision` signed by `pair`, as `fleet sign`
    /// writes it: prehashed, with its trusted comment.
    fn signed_release(
        pair: &minisign::KeyPair,
        store: &str,
        revision: u64,
        expires: &str,
    ) -> (Vec<u8>, Vec<u8>) {
        let release = format!(
            "apiVersion: fleet/v1\nkind: StoreRelease\nstore: {store}\nrevision: {revision}\n\
             expires_at: {expires}\nstate:\n  menu: {{}}\n"
        );
        let comment = schemas::state::trusted_comment(store, revision);
        let sig = minisign::sign(
            None,
            &pair.sk,
            release.as_bytes(),
            Some(&comment),
            Some("signature from fleet sign"),
        )
        .expect("an unencrypted key signs");
        (release.into_bytes(), sig.to_string().into_bytes())
    }

    fn pair() -> minisign::KeyPair {
        minisign::KeyPair::generate_unencrypted_keypair().expect("a key pair")
    }

    fn trusting(pair: &minisign::KeyPair) -> TrustedKeys {
        let file = pair.pk.to_box().expect("a key box").into_string();
        TrustedKeys::from_keys(vec![
            TrustedKeys::parse_key(&file, "test").expect("our own key parses"),
        ])
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T09:00:00Z".parse().expect("a fixed time")
    }

    /// Generated batches of releases, some signed by another key, altered,
    /// expired or in another store's place: the batch gate answers what
    /// the one-by-one gate answers, and a batch holds exactly when no
    /// deferred release has a bad signature.
    #[test]
    fn batches_agree_with_the_one_by_one_gate() {
        let (trusted, other) = (pair(), pair());
        let keys = trusting(&trusted);
        let mut rng = testkit::Rng::new(54);
        let mut failed_batches = 0;
        for round in 0..40 {
            let mut items = Vec::new();
            for i in 0..rng.range(1, 10) {
                let store = format!("acme/s{round}-{i}");
                let signer = if rng.one_in(8) { &other } else { &trusted };
                let expires = if rng.one_in(8) {
                    "2026-01-01T00:00:00Z"
                } else {
                    "2027-01-01T00:00:00Z"
                };
                let (mut release, mut sig) = signed_release(signer, &store, 3, expires);
                match rng.below(12) {
                    // A byte of the release changed after signing.
                    0 => {
                        let at = rng.below(release.len());
                        release[at] ^= 0x01;
                    }
                    // A character of a signature line changed.
                    1 => {
                        let text = String::from_utf8(sig.clone()).expect("text");
                        let line = text.lines().nth(1 + 2 * rng.below(2)).expect("a line");
                        let at = text.find(line).expect("the line") + 12;
                        sig[at] = if sig[at] == b'A' { b'B' } else { b'A' };
                    }
                    _ => {}
                }
                // Another store's release in this store's place.
                let asked = if rng.one_in(10) {
                    format!("acme/other-{i}")
                } else {
                    store
                };
                items.push((release, sig, asked));
            }
            let heads: Vec<Head> = items
                .iter()
                .map(|(r, s, store)| check_head_deferred(r, s, &keys, store, now()))
                .collect();
            let one_by_one: Vec<Result<AcceptedHead, Refusal>> = items
                .iter()
                .map(|(r, s, store)| check_head(r, s, &keys, store, now()))
                .collect();
            let deferred: Vec<&Deferred> = heads
                .iter()
                .filter_map(|h| match h {
                    Head::Deferred(d) => Some(&**d),
                    Head::Checked(_) => None,
                })
                .collect();
            let all_hold = verify(&deferred);
            let none_bad = heads.iter().zip(&one_by_one).all(|(h, answer)| {
                matches!(h, Head::Checked(_)) || !matches!(answer, Err(Refusal::BadSignature))
            });
            assert_eq!(all_hold, none_bad, "round {round}");
            failed_batches += usize::from(!all_hold);
            for (head, answer) in heads.into_iter().zip(one_by_one) {
                match head {
                    Head::Checked(checked) => assert_eq!(checked, answer),
                    Head::Deferred(d) if all_hold => assert_eq!(d.outcome(), answer),
                    // A failed batch: the caller asks the one-by-one gate.
                    Head::Deferred(_) => {}
                }
            }
        }
        assert!(failed_batches > 0, "no round altered a signature");
    }

    #[test]
    fn one_altered_release_fails_its_batch_and_only_its_own() {
        let trusted = pair();
        let keys = trusting(&trusted);
        let heads: Vec<Head> = (0..5)
            .map(|i| {
                let store = format!("acme/s{i}");
                let (mut release, sig) =
                    signed_release(&trusted, &store, 1, "2027-01-01T00:00:00Z");
                if i == 3 {
                    // The menu's closing brace becomes another character.
                    let at = release.len() - 2;
                    release[at] = b']';
                }
                check_head_deferred(&release, &sig, &keys, &store, now())
            })
            .collect();
        let deferred: Vec<&Deferred> = heads
            .iter()
            .map(|h| match h {
                Head::Deferred(d) => &**d,
                Head::Checked(c) => panic!("not deferred: {c:?}"),
            })
            .collect();
        assert!(!verify(&deferred));
        assert!(verify(&[
            deferred[0],
            deferred[1],
            deferred[2],
            deferred[4]
        ]));
        assert!(verify(&[]));
    }
}
