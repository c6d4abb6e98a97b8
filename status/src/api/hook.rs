//! `POST /api/v1/hooks/git`: the Git host says the fleet repo changed, with
//! an HMAC-SHA256 of the body (`X-Hub-Signature-256`, GitHub's and Gitea's
//! form) under `--hook-secret-file`. A good signature asks the fetch loop
//! for a fetch now; the body itself is never read.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac as _};
use serde_json::json;
use sha2::Sha256;
use tracing::warn;

use super::{ApiResult, AppError, AppState, audit};

/// Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`.
pub fn hook_signature_ok(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(super) async fn git_hook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let Some(secret) = &state.hook_secret else {
        return Err(AppError::client(
            StatusCode::NOT_FOUND,
            "not_found",
            "the Git hook is off: start with --hook-secret-file",
        ));
    };
    let signature = headers
        .get("X-Hub-Signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !hook_signature_ok(secret, &body, signature) {
        warn!("Git hook with a bad signature refused.");
        audit(
            &state,
            "git-hook",
            "hook",
            None,
            "refused",
            "bad X-Hub-Signature-256",
        )
        .await?;
        return Err(AppError::unauthorized("bad X-Hub-Signature-256"));
    }
    state.fetch_now.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"fetch": "scheduled"})),
    )
        .into_response())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_signatures() {
        // GitHub's documented example: secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(hook_signature_ok(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            sig
        ));
        assert!(!hook_signature_ok(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            sig
        ));
        assert!(!hook_signature_ok(b"other", b"Hello, World!", sig));
        assert!(!hook_signature_ok(b"x", b"y", "sha1=00"));
        assert!(!hook_signature_ok(b"x", b"y", "sha256=zz"));
    }
}
