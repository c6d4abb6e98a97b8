//! The reconciler's side of the status service (DESIGN.md §6): the node
//! key, enrollment, delivery of the report outbox and the long-poll for a
//! newer revision. Every call is outbound; the store opens no port.
//!
//! - The node key is an Ed25519 key in `state_dir/node.key` (base64 of the
//!   32-byte seed, mode 0600), made by `fleet-reconciler enroll`; what it
//!   was enrolled as is in `state_dir/node.json`. A re-enrollment makes a
//!   new key and replaces the old one only once the service accepted it.
//! - Every request after enrollment is signed with [`node_auth`].
//! - [`StatusClient::deliver`] sends the outbox oldest first and removes a
//!   report only once the service stored it. It stops at the first failure
//!   that a retry may cure (network, 5xx, 401, 404, 429) and keeps the rest; a
//!   report the service refuses for what it says (400, 403, 413, 422) would
//!   be refused forever, so it is moved to `outbox/rejected/` (kept for a
//!   person, not retried) and delivery goes on.
//!
//! This module decides nothing about timing: the daemon and `once` choose
//! when to deliver and how long to back off.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use rand_core::{OsRng, RngCore as _};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::outbox::{Outbox, Queued};
use release::applied::write_atomically;
use wire::node_auth;
use wire::report::Report;

/// The node key's file in `state_dir`.
pub const KEY_FILE: &str = "node.key";
/// What the key was enrolled as, in `state_dir`.
pub const NODE_FILE: &str = "node.json";
/// The store's age identity (DESIGN.md §11), made at the first enrollment
/// and kept across re-enrollments and key rotations: the store decrypts
/// its secret values with it. Mode 0600, never leaves the node.
pub const AGE_IDENTITY_FILE: &str = "age.key";

/// Longest a single report delivery may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What `state_dir/node.json` records of an enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// The store the service bound the key to.
    pub store: String,
    pub key_id: String,
    pub status_url: String,
    pub enrolled_at: chrono::DateTime<chrono::Utc>,
}

/// Why enrollment or a status call failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a node key (base64 of 32 bytes): remove it and enroll again")]
    BadKey { path: PathBuf },
    #[error("{path} is unreadable ({reason}): remove it and enroll again")]
    BadEnrollment { path: PathBuf, reason: String },
    #[error("this node is not enrolled ({path} is missing): run `fleet-reconciler enroll`")]
    NotEnrolled { path: PathBuf },
    #[error("cannot reach the status service at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the status service answered {status} to {what}: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
    #[error("the status service enrolled this key for {got}, but the config says {want}")]
    OtherStore { want: String, got: String },
    #[error(
        "the status service answered {what} with something that is not the expected JSON: {reason}"
    )]
    BadAnswer { what: String, reason: String },
}

impl StatusError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StatusError + '_ {
        move |source| StatusError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Whether a failed delivery may succeed later with the same report. Only
/// answers about the report itself are final; anything else (a proxy's
/// 404 or 502, a revoked key, a clock off by minutes) may be mended, so the
/// report waits.
fn retry_may_cure(status: StatusCode) -> bool {
    !matches!(status.as_u16(), 400 | 403 | 413 | 415 | 422)
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("fleet-reconciler/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a reqwest client with rustls builds")
}

/// The error message of a `{"error": {"message"}}` body, or the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

/// A fresh nonce for a signed request: 16 random bytes, hex.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Write `bytes` to `path` readable by the owner only, atomically.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key")
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Read the node key in `state_dir`.
pub fn load_key(state_dir: &Path) -> Result<SigningKey, StatusError> {
    let path = state_dir.join(KEY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StatusError::NotEnrolled { path });
        }
        Err(source) => return Err(StatusError::Io { path, source }),
    };
    Ok(SigningKey::from_bytes(&decode_seed(&text, &path)?))
}

/// The 32-byte seed of a key file (base64).
fn decode_seed(text: &str, path: &Path) -> Result<[u8; 32], StatusError> {
    B64.decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StatusError::BadKey {
            path: path.to_path_buf(),
        })
}

/// What `state_dir/node.json` says, `None` if the node never enrolled.
pub fn enrollment(state_dir: &Path) -> Result<Option<Enrollment>, StatusError> {
    let path = state_dir.join(NODE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StatusError::BadEnrollment {
                    path,
                    reason: e.to_string(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StatusError::Io { path, source }),
    }
}

/// The store's age identity in `state_dir`, made (0600) when missing;
/// answers its recipient (`age1…`).
pub fn age_recipient(state_dir: &Path) -> Result<String, StatusError> {
    use age::secrecy::ExposeSecret as _;
    let path = state_dir.join(AGE_IDENTITY_FILE);
    let identity = match std::fs::read_to_string(&path) {
        Ok(text) => release::secrets::parse_identity(&text)
            .ok_or_else(|| StatusError::BadKey { path: path.clone() })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let identity = age::x25519::Identity::generate();
            let text = format!(
                "# The store's age identity (fleet-reconciler); it decrypts this store's secret values.\n{}\n",
                identity.to_string().expose_secret()
            );
            write_private(&path, text.as_bytes()).map_err(StatusError::io(&path))?;
            identity
        }
        Err(source) => return Err(StatusError::Io { path, source }),
    };
    Ok(identity.to_public().to_string())
}

/// Make a new node key and enroll it for `store` with a bootstrap token.
/// The key replaces an earlier one only once the service accepted it.
pub async fn enroll(
    state_dir: &Path,
    status_url: &str,
    token: &str,
    store: &str,
) -> Result<Enrollment, StatusError> {
    std::fs::create_dir_all(state_dir).map_err(StatusError::io(state_dir))?;
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key();
    let base = status_url.trim_end_matches('/');
    let url = format!("{base}/api/v1/enroll");
    let recipient = age_recipient(state_dir)?;
    let body = serde_json::json!({
        "token": token.trim(),
        "node_public_key": node_auth::encode_public_key(&public),
        "store": store,
        "recipient": recipient,
    });
    let resp = http_client(REQUEST_TIMEOUT)
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| StatusError::Unreachable {
            url: base.to_owned(),
            reason: describe(&e),
        })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status != StatusCode::CREATED {
        return Err(StatusError::Refused {
            what: "the enrollment".into(),
            status: status.as_u16(),
            message: error_message(&text),
        });
    }
    #[derive(Deserialize)]
    struct Answer {
        store: String,
        key_id: String,
    }
    let answer: Answer = serde_json::from_str(&text).map_err(|e| StatusError::BadAnswer {
        what: "the enrollment".into(),
        reason: e.to_string(),
    })?;
    if answer.store != store {
        return Err(StatusError::OtherStore {
            want: store.to_owned(),
            got: answer.store,
        });
    }
    let enrolled = Enrollment {
        store: answer.store,
        key_id: answer.key_id,
        status_url: base.to_owned(),
        enrolled_at: chrono::Utc::now(),
    };
    save_node(state_dir, &seed, &enrolled)?;
    Ok(enrolled)
}

/// Make `seed` the node key and `enrolled` its record (the key first: a
/// record never names a key the node does not hold).
fn save_node(state_dir: &Path, seed: &[u8; 32], enrolled: &Enrollment) -> Result<(), StatusError> {
    let key_path = state_dir.join(KEY_FILE);
    write_private(&key_path, B64.encode(seed).as_bytes()).map_err(StatusError::io(&key_path))?;
    let node_path = state_dir.join(NODE_FILE);
    let json = serde_json::to_vec_pretty(enrolled).expect("an enrollment is plain data");
    write_atomically(&node_path, &json).map_err(StatusError::io(&node_path))
}

/// The new node key waiting for the service to bind it (`rotate-key`).
pub const PENDING_KEY_FILE: &str = "node.key.next";

/// Replace the node key: a new key, bound to the store by a request the
/// current key signs (the service revokes the current key in the same
/// transaction), then made the node's key. The new key is saved first as
/// [`PENDING_KEY_FILE`], so an answer lost on the way (the service bound it,
/// the node never heard) is recovered by running it again: the pending key
/// is tried and kept if the service knows it.
pub async fn rotate_key(
    state_dir: &Path,
    status_url: Option<&str>,
) -> Result<Enrollment, StatusError> {
    let client = StatusClient::open(state_dir, status_url)?;
    let old = enrollment(state_dir)?.ok_or_else(|| StatusError::NotEnrolled {
        path: state_dir.join(NODE_FILE),
    })?;
    let pending_path = state_dir.join(PENDING_KEY_FILE);
    let (pending, resumed) = match std::fs::read_to_string(&pending_path) {
        Ok(text) => (decode_seed(&text, &pending_path)?, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            write_private(&pending_path, B64.encode(seed).as_bytes())
                .map_err(StatusError::io(&pending_path))?;
            (seed, false)
        }
        Err(source) => {
            return Err(StatusError::Io {
                path: pending_path,
                source,
            });
        }
    };
    let refused = |status: StatusCode, text: &str| StatusError::Refused {
        what: "the key rotation".into(),
        status: status.as_u16(),
        message: error_message(text),
    };
    let new_key = SigningKey::from_bytes(&pending);
    let body = node_auth::RotateRequest::new(&new_key, &old.key_id);
    let body = serde_json::to_vec(&body).expect("a rotation request is plain data");
    let (status, text) = client
        .signed(
            reqwest::Method::POST,
            "/api/v1/nodes/rotate",
            body,
            REQUEST_TIMEOUT,
        )
        .await?;
    let key_id = if status == StatusCode::CREATED {
        #[derive(Deserialize)]
        struct Answer {
            key_id: String,
        }
        serde_json::from_str::<Answer>(&text)
            .map_err(|e| StatusError::BadAnswer {
                what: "the key rotation".into(),
                reason: e.to_string(),
            })?
            .key_id
    } else if status == StatusCode::UNAUTHORIZED && resumed {
        // The current key is refused: did an earlier run's rotation go
        // through? Ask with the pending key.
        let probe = StatusClient {
            base: client.base.clone(),
            key: new_key.clone(),
            http: client.http.clone(),
        };
        let (probe_status, _) = probe
            .signed(
                reqwest::Method::GET,
                "/api/v1/desired?wait=0",
                Vec::new(),
                REQUEST_TIMEOUT,
            )
            .await?;
        if !probe_status.is_success() {
            return Err(refused(status, &text));
        }
        node_auth::key_id(&new_key.verifying_key())
    } else {
        if status.is_client_error() {
            // Refused for good: the pending key will never be bound.
            let _ = std::fs::remove_file(&pending_path);
        }
        return Err(refused(status, &text));
    };
    let enrolled = Enrollment {
        store: old.store,
        key_id,
        status_url: client.base.clone(),
        enrolled_at: chrono::Utc::now(),
    };
    save_node(state_dir, &pending, &enrolled)?;
    let _ = std::fs::remove_file(&pending_path);
    Ok(enrolled)
}

/// A short description of a reqwest error, with its cause.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        e.to_string()
    };
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

/// What a delivery of the outbox did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Reports the service stored.
    pub delivered: usize,
    /// Reports the service refused for good, moved to `outbox/rejected/`.
    pub rejected: usize,
    /// Reports still queued.
    pub pending: usize,
    /// Why delivery stopped early, if it did (retry later).
    pub error: Option<String>,
}

/// The long-poll's answer: one definition, in `wire`.
pub use wire::desired::Desired;

/// A node's signed client of the status service.
#[derive(Debug, Clone)]
pub struct StatusClient {
    base: String,
    key: SigningKey,
    http: reqwest::Client,
}

impl StatusClient {
    /// The client for the node enrolled in `state_dir`, talking to
    /// `status_url` (the config's) or else the URL it enrolled with.
    pub fn open(state_dir: &Path, status_url: Option<&str>) -> Result<StatusClient, StatusError> {
        let key = load_key(state_dir)?;
        let enrolled = enrollment(state_dir)?;
        let base = match (status_url, &enrolled) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(e)) => e.status_url.clone(),
            (None, None) => {
                return Err(StatusError::NotEnrolled {
                    path: state_dir.join(NODE_FILE),
                });
            }
        };
        Ok(StatusClient {
            base,
            key,
            // Long-polls set their own, longer timeout per request.
            http: http_client(Duration::from_secs(90)),
        })
    }

    /// The service's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn signed(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(StatusCode, String), StatusError> {
        let headers = node_auth::sign_request(
            &self.key,
            method.as_str(),
            path_and_query,
            &body,
            chrono::Utc::now(),
            &nonce(),
        );
        let mut rb = self
            .http
            .request(method, format!("{}{path_and_query}", self.base))
            .timeout(timeout);
        for (name, value) in headers.pairs() {
            rb = rb.header(name, value);
        }
        if !body.is_empty() {
            rb = rb.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        let resp = rb
            .body(body)
            .send()
            .await
            .map_err(|e| StatusError::Unreachable {
                url: self.base.clone(),
                reason: describe(&e),
            })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| StatusError::Unreachable {
            url: self.base.clone(),
            reason: describe(&e),
        })?;
        Ok((status, text))
    }

    /// A signed conditional `GET path_and_query` (`If-None-Match: etag`),
    /// reading at most `max` bytes of the answer (the release relay).
    pub async fn get_cached(
        &self,
        path_and_query: &str,
        etag: Option<&str>,
        max: usize,
        what: &str,
    ) -> Result<crate::relay::Conditional, StatusError> {
        let unreachable = |e: reqwest::Error| StatusError::Unreachable {
            url: self.base.clone(),
            reason: describe(&e),
        };
        let headers = node_auth::sign_request(
            &self.key,
            "GET",
            path_and_query,
            &[],
            chrono::Utc::now(),
            &nonce(),
        );
        let mut rb = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .timeout(REQUEST_TIMEOUT);
        for (name, value) in headers.pairs() {
            rb = rb.header(name, value);
        }
        if let Some(etag) = etag.filter(|e| !e.is_empty()) {
            rb = rb.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let mut resp = rb.send().await.map_err(unreachable)?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(crate::relay::Conditional::NotModified {
                commit: crate::relay::commit_of(resp.headers()),
            });
        }
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > max {
                return Err(StatusError::BadAnswer {
                    what: what.to_owned(),
                    reason: format!("the answer is over {max} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(StatusError::Refused {
                what: what.to_owned(),
                status: status.as_u16(),
                message: error_message(&String::from_utf8_lossy(&body)),
            });
        }
        Ok(crate::relay::Conditional::Body { body, etag })
    }

    /// Send one report.
    pub async fn send_report(&self, report: &Report) -> Result<(), StatusError> {
        let body = serde_json::to_vec(report).expect("a report is plain data");
        let (status, text) = self
            .signed(
                reqwest::Method::POST,
                "/api/v1/reports",
                body,
                REQUEST_TIMEOUT,
            )
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(StatusError::Refused {
                what: "a report".into(),
                status: status.as_u16(),
                message: error_message(&text),
            })
        }
    }

    /// Deliver the outbox, oldest first (see the module docs). A count of
    /// reports dropped because the outbox was full travels with the first
    /// report delivered, and is forgotten only once that one arrived.
    pub async fn deliver(&self, outbox: &Outbox) -> Delivery {
        let mut d = Delivery::default();
        let pending = match outbox.pending() {
            Ok(p) => p,
            Err(e) => {
                d.error = Some(format!("reading the outbox: {e}"));
                return d;
            }
        };
        d.pending = pending.len();
        for q in pending {
            let mut report = match outbox.read(&q) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Trimmed by the bound meanwhile.
                    d.pending -= 1;
                    continue;
                }
                Err(e) => {
                    tracing::error!(file = %q.path.display(), error = %e, "A queued report is unreadable; set aside in outbox/rejected.");
                    self.set_aside(outbox, &q, &mut d);
                    continue;
                }
            };
            let dropped = outbox.dropped().unwrap_or(0);
            if dropped > 0 {
                report.dropped_reports = dropped;
                report.warnings.push(format!(
                    "{dropped} earlier report(s) were dropped: the outbox was full while the status service was unreachable"
                ));
            }
            match self.send_report(&report).await {
                Ok(()) => {
                    if dropped > 0
                        && let Err(e) = outbox.clear_dropped()
                    {
                        tracing::warn!(error = %e, "Cannot reset the dropped-report count.");
                    }
                    if let Err(e) = outbox.remove(&q) {
                        d.error = Some(format!("removing a delivered report: {e}"));
                        return d;
                    }
                    d.delivered += 1;
                    d.pending -= 1;
                }
                Err(StatusError::Refused {
                    status, message, ..
                }) if !StatusCode::from_u16(status).is_ok_and(retry_may_cure) => {
                    tracing::error!(seq = q.seq, status, reason = %message, "The status service refused a report for good; set aside in outbox/rejected.");
                    self.set_aside(outbox, &q, &mut d);
                }
                Err(e) => {
                    d.error = Some(e.to_string());
                    return d;
                }
            }
        }
        d
    }

    fn set_aside(&self, outbox: &Outbox, q: &Queued, d: &mut Delivery) {
        match outbox.reject(q) {
            Ok(()) => {
                d.rejected += 1;
                d.pending -= 1;
            }
            Err(e) => d.error = Some(format!("setting a report aside: {e}")),
        }
    }

    /// Ask whether a revision newer than `after` exists, waiting up to
    /// `wait` for one (the service caps the wait at 60 s).
    pub async fn desired(
        &self,
        after: Option<u64>,
        wait: Duration,
    ) -> Result<Desired, StatusError> {
        let mut path = format!("{}?wait={}", wire::desired::PATH, wait.as_secs());
        if let Some(a) = after {
            path.push_str(&format!("&after={a}"));
        }
        let (status, text) = self
            .signed(
                reqwest::Method::GET,
                &path,
                Vec::new(),
                wait + Duration::from_secs(15),
            )
            .await?;
        if !status.is_success() {
            return Err(StatusError::Refused {
                what: "the long-poll".into(),
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| StatusError::BadAnswer {
            what: "the long-poll".into(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_private_and_garbage_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            load_key(dir.path()),
            Err(StatusError::NotEnrolled { .. })
        ));
        let path = dir.path().join(KEY_FILE);
        write_private(&path, B64.encode([9u8; 32]).as_bytes()).expect("write");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            load_key(dir.path()).expect("key").to_bytes(),
            SigningKey::from_bytes(&[9u8; 32]).to_bytes()
        );
        std::fs::write(&path, "not a key").expect("write");
        let err = load_key(dir.path()).expect_err("garbage");
        assert!(err.to_string().contains("node.key"), "{err}");
    }

    #[test]
    fn which_refusals_are_retried() {
        for s in [500, 502, 503, 401, 404, 429, 408] {
            assert!(
                retry_may_cure(StatusCode::from_u16(s).expect("code")),
                "{s}"
            );
        }
        for s in [400, 403, 413, 415, 422] {
            assert!(
                !retry_may_cure(StatusCode::from_u16(s).expect("code")),
                "{s}"
            );
        }
    }

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(
            error_message(r#"{"error":{"code":"x","message":"no such store"}}"#),
            "no such store"
        );
        assert_eq!(error_message("plain"), "plain");
    }
}
