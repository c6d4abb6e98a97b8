//! Encrypting secret values for the repo (DESIGN.md §11): head office's
//! side, which the store's binaries do not link (DESIGN.md §9). Every
//! operation is the `age` crate's; the store opens what is made here with
//! `release::secrets`.

use std::io::Write as _;

use age::secrecy::ExposeSecret as _;
use age::x25519::{Identity, Recipient};
use anyhow::{Context as _, anyhow};
use base64::Engine as _;
use schemas::model::Sealed;

/// Parse recipients, naming the first that is not one.
pub fn recipients<'a>(list: impl IntoIterator<Item = &'a str>) -> anyhow::Result<Vec<Recipient>> {
    list.into_iter()
        .map(|r| {
            r.parse::<Recipient>()
                .map_err(|_| anyhow!("`{r}` is not an age X25519 recipient (age1…)"))
        })
        .collect()
}

/// Encrypt `plaintext` to every recipient: the binary age file.
pub fn encrypt(to: &[Recipient], plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
    let encryptor = age::Encryptor::with_recipients(to.iter().map(|r| r as &dyn age::Recipient))
        .context("encrypting")?;
    let mut out = Vec::with_capacity(plaintext.len() + 200 * to.len() + 64);
    let mut w = encryptor.wrap_output(&mut out).context("encrypting")?;
    w.write_all(plaintext)
        .and_then(|()| w.finish().map(drop))
        .context("encrypting")?;
    Ok(out)
}

/// A value encrypted to `recipients`, in the repo's `{age, to}` form.
pub fn seal(value: &str, recipients: &[Recipient], to: Vec<String>) -> anyhow::Result<Sealed> {
    let file = encrypt(recipients, value.as_bytes())?;
    Ok(Sealed {
        age: base64::engine::general_purpose::STANDARD.encode(file),
        to,
    })
}

/// An identity file's text, as `age-keygen` writes it (what
/// `release::secrets::parse_identity` reads).
pub fn identity_text(identity: &Identity, what: &str) -> String {
    format!(
        "# {what}\n# public key: {}\n{}\n",
        identity.to_public(),
        identity.to_string().expose_secret()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_for_its_recipients_only() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let v = seal("v", &[a.to_public()], vec!["a".into(), "@escrow".into()]).expect("seal");
        assert_eq!(release::secrets::unseal(&v, &[&a]).expect("a"), "v");
        assert!(release::secrets::unseal(&v, &[&b]).is_err());
        let text = identity_text(&a, "a test");
        let back = release::secrets::parse_identity(&text).expect("parses");
        assert_eq!(back.to_public().to_string(), a.to_public().to_string());
        assert!(recipients(["age1nope"]).is_err());
    }
}
