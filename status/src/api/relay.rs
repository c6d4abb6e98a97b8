//! `GET /api/v1/release?root=<n>`: the release relay (DESIGN.md §13,
//! [`wire::relay`]). A signed node request; the store is the key's. The
//! answer is read from the mirror at the commit of the service's last
//! fetch, with the reads a store makes of its own mirror
//! ([`release::relay::pack`]); 503 until that first fetch.

use std::sync::RwLock;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use release::source::Mirror;
use serde::Deserialize;
use wire::relay::{COMMIT_HEADER, NOT_FETCHED};

use super::{ApiResult, AppError, AppState, authenticate_node};

/// What the relay reads from: the service's mirror, and the commit its
/// last fetch recorded.
#[derive(Debug)]
pub struct Relay {
    mirror: Mirror,
    commit: RwLock<Option<String>>,
}

impl Relay {
    pub fn new(mirror: Mirror) -> Relay {
        Relay {
            mirror,
            commit: RwLock::new(None),
        }
    }

    /// The commit the next answers are read from (after a fetch is recorded).
    pub fn set_commit(&self, commit: &str) {
        if let Ok(mut c) = self.commit.write() {
            *c = Some(commit.to_owned());
        }
    }

    pub fn commit(&self) -> Option<String> {
        self.commit.read().ok().and_then(|c| c.clone())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReleaseQuery {
    /// The trust root version the store holds (0: none).
    root: Option<u64>,
}

pub(super) async fn release(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<ReleaseQuery>,
) -> ApiResult<Response> {
    let node = authenticate_node(&state, &method, &uri, &headers, &[]).await?;
    let Some(relay) = state.relay.clone() else {
        return Err(AppError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_repo",
            "this status service is not given the fleet repo (--repo-url), so it relays no releases: give it one, or set source = \"git\" in the store's reconciler.toml",
        ));
    };
    let Some(commit) = relay.commit() else {
        return Err(AppError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            NOT_FETCHED,
            "the status service has not fetched the fleet repo yet; try again shortly",
        ));
    };
    let store: schemas::StoreId = node.store.parse().map_err(AppError::internal)?;
    let root = q.root.unwrap_or(0);
    let at = commit.clone();
    let packed =
        tokio::task::spawn_blocking(move || release::relay::pack(&relay.mirror, &at, &store, root))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
    let answer = packed.map_err(|refusal| {
        AppError::client(
            StatusCode::CONFLICT,
            "release_unusable",
            format!(
                "the release of {} at {} is not one a store would accept: {refusal}",
                node.store,
                &commit[..commit.len().min(12)]
            ),
        )
    })?;
    let etag = wire::relay::etag(&answer, root);
    let commit_header = HeaderValue::from_str(&commit).map_err(AppError::internal)?;
    let etag_header = HeaderValue::from_str(&etag).map_err(AppError::internal)?;
    if if_none_match(&headers, &etag) {
        state
            .metrics
            .relay_not_modified
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag_header),
                (HeaderName::from_static(COMMIT_HEADER), commit_header),
            ],
        )
            .into_response());
    }
    state
        .metrics
        .relay_answers
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok((
        [
            (header::ETAG, etag_header),
            (HeaderName::from_static(COMMIT_HEADER), commit_header),
        ],
        axum::Json(answer),
    )
        .into_response())
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let mut h = HeaderMap::new();
        assert!(!if_none_match(&h, "\"a\""));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"b\", W/\"a\""),
        );
        assert!(if_none_match(&h, "\"a\""));
        assert!(!if_none_match(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, "\"c\""));
    }
}
