//! `fleet keygen --out DIR`: a new minisign key pair for signing releases.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use minisign::KeyPair;

/// Name of the environment variable that holds the signing key's password.
pub const PASSWORD_ENV: &str = "FLEET_SIGNING_PASSWORD";

/// What `keygen` wrote.
#[derive(Debug)]
pub struct Generated {
    pub public_key: PathBuf,
    pub secret_key: PathBuf,
    pub encrypted: bool,
    /// Key id as `minisign` prints it.
    pub key_id: String,
}

/// Write `out/minisign.pub` and `out/minisign.key`, the secret key encrypted
/// with `password` when given. Existing files are never overwritten.
pub fn keygen(out: &Path, password: Option<String>) -> anyhow::Result<Generated> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let public_key = out.join("minisign.pub");
    let secret_key = out.join("minisign.key");
    for p in [&public_key, &secret_key] {
        if p.exists() {
            bail!(
                "{} already exists; not overwriting a key (move it away first)",
                p.display()
            );
        }
    }
    let encrypted = password.is_some();
    let pair = match password {
        Some(pw) => KeyPair::generate_encrypted_keypair(Some(pw)),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .context("generating the key pair")?;
    let pk_text = pair
        .pk
        .to_box()
        .context("encoding the public key")?
        .to_string();
    let sk_text = pair
        .sk
        .to_box(None)
        .context("encoding the secret key")?
        .to_string();
    write_private(&secret_key, sk_text.as_bytes())?;
    std::fs::write(&public_key, pk_text.as_bytes())
        .with_context(|| format!("writing {}", public_key.display()))?;
    let key_id = release::trust::TrustedKeys::parse_key(&pk_text, "minisign.pub")
        .map(|k| k.key_id)
        .unwrap_or_default();
    Ok(Generated {
        public_key,
        secret_key,
        encrypted,
        key_id,
    })
}

/// Create `path` readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()
        .with_context(|| format!("writing {}", path.display()))
}

/// Load a secret key for signing, decrypting it with `password` if it is
/// encrypted. Never prompts.
pub fn load_secret_key(
    path: &Path,
    password: Option<String>,
) -> anyhow::Result<minisign::SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the signing key {}", path.display()))?;
    let sk_box = minisign::SecretKeyBox::from_string(&text)
        .with_context(|| format!("{} is not a minisign secret key", path.display()))?;
    match password {
        Some(pw) => sk_box
            .into_secret_key(Some(pw))
            .with_context(|| format!("decrypting {} (is {PASSWORD_ENV} right?)", path.display())),
        None => sk_box.into_unencrypted_secret_key().map_err(|e| {
            anyhow::anyhow!(
                "cannot use {} without a password ({e}); if it is encrypted, set {PASSWORD_ENV}",
                path.display()
            )
        }),
    }
}
