//! Node requests: the signature checks every node endpoint runs (THREATS.md
//! rows 13–15) and `POST /api/v1/reports`, which stores a report. The store
//! is always the signing key's, never the body's; every refusal is logged
//! and audited.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::warn;
use wire::report::Report;

use super::{ApiResult, AppError, AppState, audit};
use crate::node_auth::{self, PendingSignature, SignedHeaders};
use crate::store::{Ingested, NewReport, Node};

/// Node keys that verified a report before, by the key header's text:
/// the node and its decoded public key, so that a report costs no key
/// look-up and no point decompression (docs/BENCHMARKS.md, ingest).
///
/// Only `POST /api/v1/reports` reads it, because only there does the write
/// check once more, in its transaction, that the key is active
/// ([`Store::ingest_report`](crate::store::Store::ingest_report)): a key
/// revoked after it was cached, by this replica, another one or the admin
/// command, is refused all the same, and forgotten here. A key's public
/// key and store never change, so nothing else can go stale. Bounded:
/// past [`MAX_KNOWN_KEYS`] it starts again empty.
#[derive(Debug, Clone, Default)]
pub struct KnownKeys(Arc<RwLock<HashMap<String, Arc<KnownKey>>>>);

#[derive(Debug)]
pub struct KnownKey {
    node: Node,
    key: ed25519_dalek::VerifyingKey,
}

/// Most keys [`KnownKeys`] holds (about 300 bytes each).
pub const MAX_KNOWN_KEYS: usize = 100_000;

impl KnownKeys {
    fn get(&self, key: &str) -> Option<Arc<KnownKey>> {
        self.0.read().ok()?.get(key).cloned()
    }

    fn insert(&self, key: &str, known: KnownKey) {
        if let Ok(mut m) = self.0.write() {
            if m.len() >= MAX_KNOWN_KEYS {
                m.clear();
            }
            m.insert(key.to_owned(), Arc::new(known));
        }
    }

    fn forget(&self, key: &str) {
        if let Ok(mut m) = self.0.write() {
            m.remove(key);
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> ApiResult<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::unauthorized(format!("missing header {name}")))
}

/// The node that signed this request, after every check of THREATS.md
/// rows 14 and 15. Each refusal leaves an audit entry.
pub(crate) async fn authenticate_node(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Node> {
    let (node, signed, _) = verify_node(state, method, uri, headers, body, None).await?;
    tracing::Span::current().record("store", node.store.as_str());
    if !state
        .store
        .use_nonce(&node.key_id, &signed.nonce, state.clock.now().timestamp())
        .await?
    {
        return refuse_nonce(
            state,
            &signed.key,
            &format!("{method} {}", uri.path()),
            &node,
        )
        .await;
    }
    Ok(node)
}

/// The node that signed this request, if its key is known and not revoked
/// and the signature and timestamp verify; the nonce is the caller's to
/// record ([`authenticate_node`], or with the report in
/// [`Store::ingest_report`](crate::store::Store::ingest_report)). Each refusal leaves an audit entry.
///
/// With `known`, a key found there is taken as it was when it last
/// verified, revocation included, and its request's Ed25519 signature is
/// answered still to verify, every other check passed: only for a caller
/// whose write checks revocation again and verifies that signature before
/// it writes anything ([`KnownKeys`], ADR 58). Otherwise the answer's
/// signature is `None`: it was verified here.
async fn verify_node(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    known: Option<&KnownKeys>,
) -> ApiResult<(Node, SignedHeaders, Option<PendingSignature>)> {
    let signed = SignedHeaders {
        key: header(headers, node_auth::HEADER_KEY)?.to_owned(),
        timestamp: header(headers, node_auth::HEADER_TIMESTAMP)?.to_owned(),
        nonce: header(headers, node_auth::HEADER_NONCE)?.to_owned(),
        signature: header(headers, node_auth::HEADER_SIGNATURE)?.to_owned(),
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if let Some(k) = known.and_then(|k| k.get(&signed.key)) {
        let checked = node_auth::check_request(
            &k.key,
            method.as_str(),
            path,
            body,
            &signed,
            state.clock.now(),
        );
        return match checked {
            Ok(pending) => Ok((k.node.clone(), signed, Some(pending))),
            Err(e) => {
                let action = format!("{method} {}", uri.path());
                refuse(
                    state,
                    &signed.key,
                    &action,
                    Some(&k.node.store),
                    e.to_string(),
                )
                .await
            }
        };
    }
    let action = format!("{method} {}", uri.path());
    let Some(node) = state.store.find_node(&signed.key).await? else {
        return refuse(
            state,
            &signed.key,
            &action,
            None,
            "unknown node key".to_owned(),
        )
        .await;
    };
    if node.revoked_at.is_some() {
        return refuse_revoked(state, &signed.key, &action, &node).await;
    }
    let key = node_auth::decode_public_key(&node.public_key)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored key of {}: {e}", node.key_id)))?;
    if let Err(e) = node_auth::verify_request(
        &key,
        method.as_str(),
        path,
        body,
        &signed,
        state.clock.now(),
    ) {
        return refuse(
            state,
            &signed.key,
            &action,
            Some(&node.store),
            e.to_string(),
        )
        .await;
    }
    if let Some(k) = known {
        k.insert(
            &signed.key,
            KnownKey {
                node: node.clone(),
                key,
            },
        );
    }
    Ok((node, signed, None))
}

async fn refuse_revoked<T>(state: &AppState, key: &str, action: &str, node: &Node) -> ApiResult<T> {
    refuse(
        state,
        key,
        action,
        Some(&node.store),
        "node key revoked".to_owned(),
    )
    .await
}

async fn refuse_nonce<T>(state: &AppState, key: &str, action: &str, node: &Node) -> ApiResult<T> {
    refuse(
        state,
        key,
        action,
        Some(&node.store),
        "nonce reused (replayed request)".to_owned(),
    )
    .await
}

/// Log, audit and answer 401 for a refused node request.
async fn refuse<T>(
    state: &AppState,
    key: &str,
    action: &str,
    store: Option<&str>,
    why: String,
) -> ApiResult<T> {
    // The header is the caller's text: keep what is logged and stored short.
    let key: String = key.chars().take(64).collect();
    let key = key.as_str();
    warn!(key, reason = %why, "Node request refused.");
    audit(
        state,
        &format!("node-key:{key}"),
        action,
        store,
        "refused",
        &why,
    )
    .await?;
    Err(AppError::unauthorized(why))
}
/// The release apiVersions a report says its reconciler reads, as stored:
/// space-separated, only names of the form `fleet/vN`, at most 16 (a node
/// cannot fill the overview with text); none when it does not say.
fn release_api(versions: &[String]) -> Option<String> {
    let kept: Vec<&str> = versions
        .iter()
        .map(String::as_str)
        .filter(|v| {
            v.strip_prefix("fleet/v").is_some_and(|n| {
                !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit())
            })
        })
        .take(16)
        .collect();
    (!kept.is_empty()).then(|| kept.join(" "))
}

/// `POST /api/v1/reports`. The signature is checked first; the nonce is
/// recorded together with the report, in one transaction
/// ([`Store::ingest_report`](crate::store::Store::ingest_report)), which also checks once more, as it writes,
/// that the key is not revoked. A known key's signature is verified by
/// that write, with the others of its batch (ADR 58), unless the body is
/// refused: then it is verified first, so that a request with a bad
/// signature is refused as such, whatever its body.
pub(super) async fn post_report(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let known = &state.known_keys;
    let (node, signed, pending) =
        verify_node(&state, &method, &uri, &headers, &body, Some(known)).await?;
    tracing::Span::current().record("store", node.store.as_str());
    let action = "POST /api/v1/reports";
    let parsed = serde_json::from_slice::<Report>(&body)
        .map_err(|e| AppError::bad_request(format!("report body: {e}")));
    // A body about to be refused: first, whether the request is the node's,
    // so that a forged request is refused as such whatever its body.
    if !matches!(&parsed, Ok(r) if r.store == node.store)
        && let Some(Err(e)) = pending.as_ref().map(PendingSignature::verify)
    {
        let why = e.to_string();
        return refuse(&state, &signed.key, action, Some(&node.store), why).await;
    }
    let report = parsed?;
    if report.store != node.store {
        // THREATS.md row 13: the key decides the store; a body naming
        // another store is refused, not silently re-labelled.
        let why = format!(
            "the report names store {} but this node is enrolled for {}",
            report.store, node.store
        );
        warn!(key_id = %node.key_id, store = %node.store, claimed = %report.store, "Report for another store refused.");
        audit(
            &state,
            &format!("node-key:{}", node.key_id),
            action,
            Some(&node.store),
            "refused",
            &why,
        )
        .await?;
        return Err(AppError::client(StatusCode::FORBIDDEN, "wrong_store", why));
    }
    let new = NewReport {
        store: node.store.clone(),
        key_id: node.key_id.clone(),
        received_at: state.clock.now().timestamp(),
        outcome: report.outcome.as_str().to_owned(),
        desired_revision: report.desired_revision,
        applied_revision: report.applied_revision,
        commit: report.commit,
        drift: report.drift.len(),
        overridden: report.overridden.len(),
        reconciler_version: report.reconciler_version,
        root_version: report.root_version,
        release_api: release_api(&report.release_api_versions),
        // Valid UTF-8: it just parsed as JSON.
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let id = match state
        .store
        .ingest_report(&signed.nonce, &new, pending)
        .await?
    {
        Ingested::Stored(id) => id,
        Ingested::BadSignature => {
            let why = node_auth::NodeAuthError::BadSignature.to_string();
            return refuse(&state, &signed.key, action, Some(&node.store), why).await;
        }
        Ingested::NonceReused => return refuse_nonce(&state, &signed.key, action, &node).await,
        Ingested::NodeRevoked => {
            known.forget(&signed.key);
            return refuse_revoked(&state, &signed.key, action, &node).await;
        }
    };
    tracing::debug!(store = %node.store, outcome = %new.outcome, id, "Report stored.");
    if !report.actions.is_empty() {
        super::actions::answer_reports(&state, &node.store, id, &new.outcome, &report.actions)
            .await?;
    }
    state
        .metrics
        .reports_ingested
        .fetch_add(1, Ordering::Relaxed);
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "store": node.store})),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::release_api;

    #[test]
    fn only_version_names_are_kept_of_what_a_node_says_it_reads() {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(release_api(&[]), None, "a part-one reconciler says nothing");
        assert_eq!(
            release_api(&owned(&["fleet/v1", "fleet/v2"])).as_deref(),
            Some("fleet/v1 fleet/v2")
        );
        assert_eq!(
            release_api(&owned(&[
                "<script>",
                "fleet/v",
                "fleet/v2x",
                "fleet/v1234567",
                "fleet/v3"
            ]))
            .as_deref(),
            Some("fleet/v3")
        );
        assert_eq!(release_api(&owned(&["x y"])), None);
        let many: Vec<String> = (0..100).map(|n| format!("fleet/v{n}")).collect();
        assert_eq!(
            release_api(&many).map(|s| s.split(' ').count()),
            Some(16),
            "bounded"
        );
    }
}
