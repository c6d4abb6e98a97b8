//! Support bundles (`fleet-reconciler diagnose --upload`): `POST
//! /api/v1/support-bundles`, a node-signed `.tar.gz`, kept as files in
//! `<state_dir>/support-bundles/<tenant>/<store>/`, newest
//! [`KEEP_PER_STORE`] per store, and listed in the store's JSON.
//!
//! The service never unpacks a bundle: it checks the size and the gzip
//! magic and stores the bytes; operators download and read them.

use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use tracing::info;

use crate::api::{AppError, AppState, authenticate_node};

/// Largest bundle accepted.
pub const MAX_BUNDLE_BYTES: usize = 8 * 1024 * 1024;

/// Bundles kept per store; older ones are deleted as new ones arrive.
pub const KEEP_PER_STORE: usize = 20;

fn dir_for(root: &Path, store: &str) -> PathBuf {
    // A store id is `<tenant>/<store>`, both slugs (checked at enrollment).
    root.join(store)
}

/// `POST /api/v1/support-bundles`.
pub async fn post_bundle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let node = authenticate_node(&state, &method, &uri, &headers, &body).await?;
    if body.len() > MAX_BUNDLE_BYTES {
        return Err(AppError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a support bundle may be {MAX_BUNDLE_BYTES} bytes at most"),
        ));
    }
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Err(AppError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_gzip",
            "a support bundle is a .tar.gz",
        ));
    }
    let Some(root) = state.support_bundles.clone() else {
        return Err(AppError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_bundle_dir",
            "this service keeps no support bundles",
        ));
    };
    let store = node.store.clone();
    let id = format!(
        "{}-{}.tar.gz",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        node.key_id
    );
    let dir = dir_for(&root, &store);
    let path = dir.join(&id);
    let bytes = body.len();
    let tmp = dir.join(format!(".{id}.tmp"));
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&tmp, &body)?;
        std::fs::rename(&tmp, &path)?;
        let mut names = bundle_names(&dir)?;
        names.sort();
        let excess = names.len().saturating_sub(KEEP_PER_STORE);
        for old in names.into_iter().take(excess) {
            std::fs::remove_file(dir.join(old))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
    .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("storing a support bundle")))?;
    info!(store = %store, key_id = %node.key_id, id = %id, bytes, "Support bundle received.");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "store": store, "bytes": bytes})),
    )
        .into_response())
}

fn bundle_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tar.gz") && !name.starts_with('.') {
            names.push(name);
        }
    }
    Ok(names)
}

/// One support bundle of a store, in the store's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bundle {
    /// The file name: `<time>-<key id>.tar.gz`.
    pub id: String,
    pub bytes: u64,
}

/// The store's bundles, newest first, for the store JSON.
pub async fn list(state: &AppState, store: &str) -> Vec<Bundle> {
    let Some(root) = state.support_bundles.clone() else {
        return Vec::new();
    };
    let dir = dir_for(&root, store);
    tokio::task::spawn_blocking(move || {
        let mut names = bundle_names(&dir).unwrap_or_default();
        names.sort();
        names.reverse();
        names
            .into_iter()
            .map(|n| {
                let bytes = std::fs::metadata(dir.join(&n))
                    .map(|m| m.len())
                    .unwrap_or(0);
                Bundle { id: n, bytes }
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default()
}
