//! Device tokens (DESIGN.md §10): one bearer token per LAN device, stored
//! as its SHA-256, made and revoked with `fleet-edge device add | list |
//! revoke`. What a device token may do is the API's to enforce
//! ([`crate::api`]); here are the records.

use chrono::{SecondsFormat, Utc};
use rand_core::{OsRng, RngCore as _};
use sqlx::{Row as _, SqlitePool};

/// Prefix of device tokens, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "fdt_";

/// A device's record (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// Why a device command failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "{0:?} is not a device name: 1 to 63 lower-case letters, digits and -, starting with a letter or digit"
    )]
    BadName(String),
    #[error("a device named {0} exists already (revoked ones too): pick another name")]
    Exists(String),
    #[error("no active device named {0}: `fleet-edge device list` shows them")]
    NoSuchDevice(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Whether `name` is a device name.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// SHA-256 of a token, hex.
pub fn hash(token: &str) -> String {
    wire::digest::sha256_hex(token.trim().as_bytes())
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Make a device token for `name`; answers the token (shown once).
pub async fn add(pool: &SqlitePool, name: &str) -> Result<String, DeviceError> {
    if !is_name(name) {
        return Err(DeviceError::BadName(name.to_owned()));
    }
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let inserted = sqlx::query(
        "INSERT INTO device_tokens (name, token_hash, created_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(hash(&token))
    .bind(now())
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DeviceError::Exists(name.to_owned()));
    }
    Ok(token)
}

/// Every device, by name.
pub async fn list(pool: &SqlitePool) -> Result<Vec<Device>, DeviceError> {
    let rows = sqlx::query("SELECT name, created_at, revoked_at FROM device_tokens ORDER BY name")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Device {
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Revoke `name`: its next request gets 401.
pub async fn revoke(pool: &SqlitePool, name: &str) -> Result<(), DeviceError> {
    let done = sqlx::query(
        "UPDATE device_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
    )
    .bind(name)
    .bind(now())
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(DeviceError::NoSuchDevice(name.to_owned()));
    }
    Ok(())
}

/// The active device whose token this is.
pub async fn by_token(pool: &SqlitePool, token: &str) -> Result<Option<String>, sqlx::Error> {
    let row =
        sqlx::query("SELECT name FROM device_tokens WHERE token_hash = ?1 AND revoked_at IS NULL")
            .bind(hash(token))
            .fetch_optional(pool)
            .await?;
    row.map(|r| r.try_get("name")).transpose()
}
