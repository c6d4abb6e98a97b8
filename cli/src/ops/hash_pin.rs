//! `fleet hash-pin`: turn a PIN into the argon2id PHC string that goes in
//! `pin_hash`, so no plaintext PIN is ever committed.

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};

/// Why a PIN was refused.
#[derive(Debug, thiserror::Error)]
pub enum HashPinError {
    #[error("a PIN is 4 to 12 digits")]
    BadPin,
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Hash `pin` with argon2id (m=19456 KiB, t=2, p=1: OWASP's minimum for
/// argon2id, cheap enough for a Pi to check at the register).
pub fn hash_pin(pin: &str) -> Result<String, HashPinError> {
    if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HashPinError::BadPin);
    }
    let params = Params::new(19_456, 2, 1, None).map_err(|e| HashPinError::Hash(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashPinError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn hash_verifies_and_is_argon2id() {
        let h = hash_pin("123456").expect("valid pin");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let parsed = PasswordHash::new(&h).expect("PHC string");
        assert!(
            Argon2::default()
                .verify_password(b"123456", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"654321", &parsed)
                .is_err()
        );
    }

    #[test]
    fn refuses_non_pins() {
        assert!(hash_pin("12").is_err());
        assert!(hash_pin("12ab").is_err());
    }
}
