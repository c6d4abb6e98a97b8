//! Node request signatures: how a store's reconciler proves which store it
//! is on every request to the status service (DESIGN.md §6, THREATS.md
//! rows 13–15).
//!
//! A node signs, with its enrolled Ed25519 key, the canonical string
//!
//! ```text
//! METHOD\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nSHA256_HEX(body)
//! ```
//!
//! and sends it in four headers ([`HEADER_KEY`], [`HEADER_TIMESTAMP`],
//! [`HEADER_NONCE`], [`HEADER_SIGNATURE`]). This module is pure: it takes
//! the time as an argument and keeps no nonce memory; the server checks
//! nonce reuse and revocation against its database. The reconciler can
//! reuse [`sign_request`] as it is.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

/// The node's key id or its base64 public key.
pub const HEADER_KEY: &str = "X-Fleet-Node-Key";
/// RFC 3339 or unix seconds.
pub const HEADER_TIMESTAMP: &str = "X-Fleet-Timestamp";
/// Any string of 8 to 128 visible ASCII characters, never reused.
pub const HEADER_NONCE: &str = "X-Fleet-Nonce";
/// Base64 Ed25519 signature over [`canonical_string`].
pub const HEADER_SIGNATURE: &str = "X-Fleet-Signature";

/// Largest accepted distance between the node's clock and the server's.
pub const MAX_SKEW_SECS: i64 = 300;

/// The headers of one signed request, in the order they are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub key: String,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

impl SignedHeaders {
    /// `(name, value)` pairs to put on the request.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (HEADER_KEY, self.key.as_str()),
            (HEADER_TIMESTAMP, self.timestamp.as_str()),
            (HEADER_NONCE, self.nonce.as_str()),
            (HEADER_SIGNATURE, self.signature.as_str()),
        ]
    }
}

/// Why a signed request was refused. Every variant answers 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeAuthError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("{HEADER_TIMESTAMP} {0:?} is neither RFC 3339 nor unix seconds")]
    BadTimestamp(String),
    #[error(
        "the request was signed {skew_secs} s away from the server's clock (limit {MAX_SKEW_SECS} s)"
    )]
    Skew { skew_secs: i64 },
    #[error("{HEADER_NONCE} must be 8 to 128 visible ASCII characters")]
    BadNonce,
    #[error("{HEADER_SIGNATURE} is not a base64 Ed25519 signature")]
    MalformedSignature,
    #[error("the signature does not verify with the node's key")]
    BadSignature,
    #[error("not a base64 Ed25519 public key")]
    BadPublicKey,
}

/// SHA-256 of `bytes`, lower-case hex.
pub use crate::digest::sha256_hex;

/// What is signed.
pub fn canonical_string(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path_and_query,
        timestamp,
        nonce,
        sha256_hex(body)
    )
}

/// A node public key's id: the first 16 hex digits of SHA-256 of its bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())[..16].to_owned()
}

/// Base64 of a public key, as enrolled and as sent in [`HEADER_KEY`].
pub fn encode_public_key(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

/// Parse a base64 Ed25519 public key.
pub fn decode_public_key(text: &str) -> Result<VerifyingKey, NodeAuthError> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|_| NodeAuthError::BadPublicKey)?;
    let bytes: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| NodeAuthError::BadPublicKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| NodeAuthError::BadPublicKey)
}

/// Sign a request with `key` at `now`. `nonce` must be fresh for every
/// request (16 random bytes, hex or base64, are plenty).
pub fn sign_request(
    key: &SigningKey,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: DateTime<Utc>,
    nonce: &str,
) -> SignedHeaders {
    let timestamp = now.timestamp().to_string();
    let text = canonical_string(method, path_and_query, &timestamp, nonce, body);
    let signature = key.sign(text.as_bytes());
    SignedHeaders {
        key: key_id(&key.verifying_key()),
        timestamp,
        nonce: nonce.to_owned(),
        signature: B64.encode(signature.to_bytes()),
    }
}

/// The body of `POST /api/v1/nodes/rotate`, as the node sends it and the
/// service reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Base64 of the new Ed25519 public key.
    pub node_public_key: String,
    /// Base64 of the new key's signature over [`rotation_message`].
    pub proof: String,
}

impl RotateRequest {
    /// The request that replaces the key `old_key_id` by `new`.
    pub fn new(new: &SigningKey, old_key_id: &str) -> RotateRequest {
        RotateRequest {
            node_public_key: encode_public_key(&new.verifying_key()),
            proof: sign_rotation(new, old_key_id),
        }
    }
}

/// What the new key of a rotation signs to prove it is held by the node
/// that asks (`POST /api/v1/nodes/rotate`): the old key's id, so a proof
/// cannot be replayed for another node's rotation.
pub fn rotation_message(old_key_id: &str) -> String {
    format!("fleet node key rotation\nreplaces {old_key_id}\n")
}

/// The `proof` of a rotation: base64 of `new`'s signature over
/// [`rotation_message`].
pub fn sign_rotation(new: &SigningKey, old_key_id: &str) -> String {
    B64.encode(new.sign(rotation_message(old_key_id).as_bytes()).to_bytes())
}

/// Check a rotation's `proof` with the new key.
pub fn verify_rotation(
    new: &VerifyingKey,
    old_key_id: &str,
    proof: &str,
) -> Result<(), NodeAuthError> {
    let bytes: [u8; 64] = B64
        .decode(proof.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(NodeAuthError::MalformedSignature)?;
    new.verify_strict(
        rotation_message(old_key_id).as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&bytes),
    )
    .map_err(|_| NodeAuthError::BadSignature)
}

/// Parse [`HEADER_TIMESTAMP`].
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, NodeAuthError> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| NodeAuthError::BadTimestamp(t.to_owned()));
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| NodeAuthError::BadTimestamp(t.to_owned()))
}

/// Check the signature, the clock skew and the nonce's shape of a request
/// whose node key the caller already looked up. Nonce reuse and
/// revocation are the caller's to check (they need the database).
pub fn verify_request(
    key: &VerifyingKey,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    headers: &SignedHeaders,
    now: DateTime<Utc>,
) -> Result<(), NodeAuthError> {
    check_request(key, method, path_and_query, body, headers, now)?.verify()
}

/// Every check of [`verify_request`] but the last, the Ed25519 one, which
/// the answer holds: verify it alone ([`PendingSignature::verify`]) or
/// with others as one batch ([`verify_batch`]).
pub fn check_request(
    key: &VerifyingKey,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    headers: &SignedHeaders,
    now: DateTime<Utc>,
) -> Result<PendingSignature, NodeAuthError> {
    let at = parse_timestamp(&headers.timestamp)?;
    let skew = now - at;
    if skew.num_milliseconds().abs() > MAX_SKEW_SECS * 1000 {
        return Err(NodeAuthError::Skew {
            skew_secs: skew.num_seconds(),
        });
    }
    let n = &headers.nonce;
    if n.len() < 8 || n.len() > 128 || !n.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(NodeAuthError::BadNonce);
    }
    let sig_bytes = B64
        .decode(headers.signature.trim())
        .map_err(|_| NodeAuthError::MalformedSignature)?;
    let sig_bytes: [u8; 64] = sig_bytes
        .as_slice()
        .try_into()
        .map_err(|_| NodeAuthError::MalformedSignature)?;
    Ok(PendingSignature {
        key: *key,
        message: canonical_string(method, path_and_query, &headers.timestamp, n, body),
        signature: Signature::from_bytes(&sig_bytes),
    })
}

/// A request that passed every check of [`check_request`]: its Ed25519
/// signature is all that is left to verify.
#[derive(Debug, Clone)]
pub struct PendingSignature {
    key: VerifyingKey,
    message: String,
    signature: Signature,
}

impl PendingSignature {
    /// The last check of [`verify_request`].
    pub fn verify(&self) -> Result<(), NodeAuthError> {
        self.key
            .verify(self.message.as_bytes(), &self.signature)
            .map_err(|_| NodeAuthError::BadSignature)
    }
}

/// Whether every one of `pending` holds, verified as one Ed25519 batch
/// (`ed25519_dalek::verify_batch`, several times cheaper a signature than
/// one by one once there are a dozen). `false` says only that one does
/// not: verify each ([`PendingSignature::verify`]) to learn which.
///
/// A batch accepts what one-by-one verification accepts; the only
/// signatures the two can judge differently have small-order parts,
/// which only the holder of the node's secret key can make, and which
/// would then sign for that node's store and no other.
pub fn verify_batch(pending: &[&PendingSignature]) -> bool {
    match pending {
        [] => true,
        [one] => one.verify().is_ok(),
        _ => {
            let messages: Vec<&[u8]> = pending.iter().map(|p| p.message.as_bytes()).collect();
            let signatures: Vec<Signature> = pending.iter().map(|p| p.signature).collect();
            let keys: Vec<VerifyingKey> = pending.iter().map(|p| p.key).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
    }

    #[test]
    fn a_signed_request_verifies() {
        let k = key();
        let h = sign_request(&k, "POST", "/api/v1/reports", b"{}", now(), "nonce-0001");
        assert_eq!(
            verify_request(
                &k.verifying_key(),
                "POST",
                "/api/v1/reports",
                b"{}",
                &h,
                now()
            ),
            Ok(())
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let k = key();
        let vk = k.verifying_key();
        let h = sign_request(&k, "POST", "/api/v1/reports", b"{}", now(), "nonce-0001");
        let bad =
            |m: &str, p: &str, b: &[u8], h: &SignedHeaders| verify_request(&vk, m, p, b, h, now());
        assert_eq!(
            bad("GET", "/api/v1/reports", b"{}", &h),
            Err(NodeAuthError::BadSignature)
        );
        assert_eq!(
            bad("POST", "/api/v1/reportz", b"{}", &h),
            Err(NodeAuthError::BadSignature)
        );
        assert_eq!(
            bad("POST", "/api/v1/reports", b"{ }", &h),
            Err(NodeAuthError::BadSignature)
        );
        let mut other_nonce = h.clone();
        other_nonce.nonce = "nonce-0002".into();
        assert_eq!(
            bad("POST", "/api/v1/reports", b"{}", &other_nonce),
            Err(NodeAuthError::BadSignature)
        );
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert_eq!(
            verify_request(&other, "POST", "/api/v1/reports", b"{}", &h, now()),
            Err(NodeAuthError::BadSignature)
        );
    }

    #[test]
    fn skew_over_five_minutes_is_refused() {
        let k = key();
        let h = sign_request(&k, "GET", "/x", b"", now(), "nonce-0001");
        let vk = k.verifying_key();
        let later = now() + chrono::Duration::seconds(MAX_SKEW_SECS);
        assert_eq!(verify_request(&vk, "GET", "/x", b"", &h, later), Ok(()));
        let too_late = now() + chrono::Duration::seconds(MAX_SKEW_SECS + 1);
        assert!(matches!(
            verify_request(&vk, "GET", "/x", b"", &h, too_late),
            Err(NodeAuthError::Skew { .. })
        ));
        let too_early = now() - chrono::Duration::seconds(MAX_SKEW_SECS + 1);
        assert!(matches!(
            verify_request(&vk, "GET", "/x", b"", &h, too_early),
            Err(NodeAuthError::Skew { .. })
        ));
    }

    #[test]
    fn timestamps_in_rfc3339_and_unix_seconds() {
        assert_eq!(parse_timestamp("1800000000"), Ok(now()));
        assert_eq!(parse_timestamp("2027-01-15T08:00:00Z"), Ok(now()));
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn public_keys_round_trip_and_garbage_is_refused() {
        let vk = key().verifying_key();
        assert_eq!(decode_public_key(&encode_public_key(&vk)), Ok(vk));
        assert_eq!(decode_public_key("AAAA"), Err(NodeAuthError::BadPublicKey));
        assert_eq!(decode_public_key("%%%"), Err(NodeAuthError::BadPublicKey));
    }

    /// What a request of a batch is: signed right, or spoiled one way.
    #[derive(Debug, Clone, Copy)]
    enum Signed {
        Right,
        BodyChanged,
        OtherKey,
    }

    proptest::proptest! {
        /// The second model: a batch holds exactly when each of its
        /// signatures holds alone.
        #[test]
        fn a_batch_holds_exactly_when_each_signature_does(
            requests in proptest::collection::vec(
                (0..3u8, proptest::sample::select(vec![Signed::Right, Signed::Right, Signed::BodyChanged, Signed::OtherKey])),
                0..24,
            )
        ) {
            let keys: Vec<SigningKey> = (0..3u8).map(|i| SigningKey::from_bytes(&[i + 1; 32])).collect();
            let pending: Vec<PendingSignature> = requests
                .iter()
                .enumerate()
                .map(|(i, (k, how))| {
                    let body = format!("{{\"n\":{i}}}");
                    let signer = match how {
                        Signed::OtherKey => &keys[(usize::from(*k) + 1) % keys.len()],
                        _ => &keys[usize::from(*k)],
                    };
                    let nonce = format!("nonce-{i:04}");
                    let h = sign_request(signer, "POST", "/api/v1/reports", body.as_bytes(), now(), &nonce);
                    let sent = match how {
                        Signed::BodyChanged => format!("{{\"n\":{}}}", i + 1),
                        _ => body,
                    };
                    let vk = keys[usize::from(*k)].verifying_key();
                    check_request(&vk, "POST", "/api/v1/reports", sent.as_bytes(), &h, now())
                        .expect("every check but the signature passes")
                })
                .collect();
            let refs: Vec<&PendingSignature> = pending.iter().collect();
            let each = pending.iter().all(|p| p.verify().is_ok());
            proptest::prop_assert_eq!(verify_batch(&refs), each);
            let spoiled = requests.iter().any(|(_, how)| !matches!(how, Signed::Right));
            proptest::prop_assert_eq!(each, !spoiled);
        }
    }
}
