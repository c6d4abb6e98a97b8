//! Secrets handed to people: bootstrap tokens and operator tokens. Only
//! their SHA-256 is stored; the token itself is printed once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore as _};

use crate::node_auth::sha256_hex;

/// Prefix of bootstrap tokens (`fleet-status token create`).
pub const BOOTSTRAP_PREFIX: &str = "fsb_";
/// Prefix of operator tokens (`fleet-status operator create`).
pub const OPERATOR_PREFIX: &str = "fso_";

/// A fresh random token: `prefix` and 32 random bytes, base64url.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a token.
pub fn hash(token: &str) -> String {
    sha256_hex(token.trim().as_bytes())
}

/// A fresh nonce for a signed request.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `s` is a full store id, `<tenant>/<store>`, both slugs.
pub fn is_store_id(s: &str) -> bool {
    schemas::StoreId::is_valid(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_hashed() {
        let a = generate(BOOTSTRAP_PREFIX);
        let b = generate(BOOTSTRAP_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("fsb_") && a.len() > 40);
        assert_eq!(hash(&a), hash(&format!(" {a}\n")));
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn store_ids() {
        assert!(is_store_id("acme/soho"));
        assert!(!is_store_id("acme"));
        assert!(!is_store_id("acme/Soho"));
        assert!(!is_store_id("acme/soho/x"));
    }
}
