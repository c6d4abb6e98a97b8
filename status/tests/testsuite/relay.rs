//! `GET /api/v1/release?root=<n>` over real HTTP (DESIGN.md §13): the
//! calling store's files as the fleet repo holds them, with the commit and
//! an ETag; `304` for that ETag; and clear refusals for an unsigned call,
//! a malformed query and a service that has no repo. (The store's side,
//! and a rogue relay, are in the reconciler's `relay_e2e` tests.)

use std::time::{Duration, Instant};

use crate::common::{FleetRepo, Node, Server, ServerOpts, TestDb, git};

/// A node-signed GET with extra headers; status, headers and body.
async fn get(
    server: &Server,
    node: &Node,
    path: &str,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let signed = node.sign("GET", path, b"", chrono::Utc::now());
    let mut rb = server.client.get(format!("{}{path}", server.base));
    for (k, v) in signed.pairs().into_iter().chain(extra.iter().copied()) {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.expect("GET");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_answers_the_store_s_own_files_with_an_etag_and_304() {
    let db = TestDb::sqlite();
    let repo = FleetRepo::new();
    let server = Server::start(&db.url, ServerOpts::fetching(&repo));
    let node = server.enrolled_node("acme/soho").await;
    let path = "/api/v1/release?root=0";
    let deadline = Instant::now() + Duration::from_secs(30);
    let (status, headers, body) = loop {
        let got = get(&server, &node, path, &[]).await;
        if got.0 != 503 {
            break got;
        }
        assert!(Instant::now() < deadline, "never fetched: {}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let head = git(&repo.work(), &["rev-parse", "HEAD"]);
    assert_eq!(headers["x-fleet-commit"], head.trim());
    let etag = headers["etag"].to_str().expect("etag").to_owned();
    let answer: wire::relay::RelayedRelease = serde_json::from_slice(&body).expect("the wire type");
    assert_eq!(answer.store, "acme/soho");
    let dir = repo.work().join("tenants/acme/stores/soho");
    assert_eq!(
        answer.release.as_deref(),
        Some(&std::fs::read(dir.join("release.yaml")).expect("release")[..]),
        "the exact bytes of soho's release, not another store's"
    );
    assert_eq!(
        answer.signature.as_deref(),
        Some(&std::fs::read(dir.join("release.yaml.minisig")).expect("sig")[..])
    );

    let (status, headers, body) = get(&server, &node, path, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 304);
    assert!(body.is_empty());
    assert_eq!(headers["etag"].to_str().expect("etag"), etag);
    assert_eq!(headers["x-fleet-commit"], head.trim());
    // Another root version asked for: another answer.
    let (status, headers, _) = get(
        &server,
        &node,
        "/api/v1/release?root=1",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(headers["etag"].to_str().expect("etag"), etag);

    let (status, _, body) = get(&server, &node, "/api/v1/release?root=x", &[]).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let r = crate::common::send(server.client.get(format!("{}{path}", server.base))).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_without_the_repo_says_it_relays_nothing() {
    let db = TestDb::sqlite();
    let server = Server::start(&db.url, ServerOpts::default());
    let node = server.enrolled_node("acme/soho").await;
    let (status, _, body) = get(&server, &node, "/api/v1/release?root=0", &[]).await;
    assert_eq!(status, 503);
    let body: serde_json::Value = serde_json::from_slice(&body).expect("error body");
    assert_eq!(body["error"]["code"], "no_repo", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--repo-url")),
        "{body}"
    );
}
