//! THREATS.md rows 12–16 and 28, each a test against the real `fleet-status`
//! binary, run on a fresh SQLite database and on a fresh PostgreSQL one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::{self, Node, Server, ServerOpts, TestDb, report};
use chrono::Utc;
use serde_json::json;

const STORE: &str = "acme/soho";

fn start(db: &TestDb) -> Server {
    Server::start(&db.url, ServerOpts::default())
}

on_both!(
    row12_bootstrap_token_reused_expired_or_for_another_store,
    row13_node_reports_as_another_store,
    row14_replayed_or_skewed_requests,
    row14_forged_reports_sent_with_good_ones_are_refused_alone,
    row15_revoked_node_keeps_reporting,
    row16_operator_of_another_tenant,
    row28_operator_tokens_expire_are_revoked_and_keep_to_their_stores,
    node_key_rotation_needs_the_current_key_and_a_proof_of_the_new_one,
    an_enrolled_store_has_the_age_recipient_its_node_sent,
);

/// Every text column of the bootstrap token table.
async fn stored_token_columns(db: &TestDb) -> String {
    use sqlx::Connection as _;
    use sqlx::Row as _;
    let sql = "SELECT token_hash, store FROM status_bootstrap_tokens";
    let rows: Vec<(String, String)> = if db.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql)
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql)
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    rows.iter().map(|(h, s)| format!("{h} {s}\n")).collect()
}

async fn refusals(db: &TestDb, action: &str) -> Vec<status::store::AuditEntry> {
    db.open()
        .await
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action && e.result == "refused")
        .collect()
}

/// Row 12: a bootstrap token reused, expired, or for another store → 401
/// and an audit entry; tokens are stored hashed.
async fn row12_bootstrap_token_reused_expired_or_for_another_store(db: TestDb) {
    let server = start(&db);

    // Reused.
    let token = server.token(STORE);
    assert_eq!(server.enroll(&token, &Node::new()).await.status, 201);
    let again = server.enroll(&token, &Node::new()).await;
    assert_eq!(again.status, 401, "{:?}", again.body);

    // Expired.
    let short = server.admin(&["token", "create", STORE, "--ttl", "1s"]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(server.enroll(&short, &Node::new()).await.status, 401);

    // For another store: refused, and the token stays usable for its own.
    let brooklyn = server.token("acme/brooklyn");
    let node = Node::new();
    let r = server
        .post_json(
            "/api/v1/enroll",
            &json!({"token": brooklyn, "node_public_key": node.public_key(), "store": STORE}),
        )
        .await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    let r = server.enroll(&brooklyn, &node).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body["store"], "acme/brooklyn",
        "bound to the token's store"
    );

    // Unknown.
    assert_eq!(server.enroll("fsb_made-up", &Node::new()).await.status, 401);

    let details: Vec<String> = refusals(&db, "enroll")
        .await
        .into_iter()
        .map(|e| e.detail)
        .collect();
    assert_eq!(
        details,
        [
            "token already used",
            "token expired",
            "token is for another store",
            "unknown token"
        ]
    );

    // Hashed at rest: only SHA-256 hex digests are stored.
    let stored = stored_token_columns(&db).await;
    for t in [&token, &short, &brooklyn] {
        assert!(!stored.contains(t.as_str()), "token {t} stored in clear");
        assert!(stored.contains(&status::tokens::hash(t)), "{stored}");
    }
}

/// Row 13: node A reports as store B → refused with 403 and audited;
/// nothing is recorded for B.
async fn row13_node_reports_as_another_store(db: TestDb) {
    let server = start(&db);
    let a = server.enrolled_node(STORE).await;
    let _b = server.enrolled_node("acme/brooklyn").await;
    let op = server.operator(&["acme"]);

    let r = server
        .report(&a, &report("acme/brooklyn", "converged", Some(9), Some(9)))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "wrong_store");
    let b = server.store_view(&op, "acme/brooklyn").await;
    assert_eq!(b["reports"].as_array().unwrap().len(), 0);
    assert_eq!(b["applied_revision"], serde_json::Value::Null);
    let a_view = server.store_view(&op, STORE).await;
    assert_eq!(a_view["reports"].as_array().unwrap().len(), 0);
    assert_eq!(refusals(&db, "POST /api/v1/reports").await.len(), 1);

    // Its own store is fine.
    let r = server
        .report(&a, &report(STORE, "converged", Some(1), Some(1)))
        .await;
    assert_eq!(r.status, 201);
}

/// Row 14: a captured request replayed, or one signed too far from now → 401.
async fn row14_replayed_or_skewed_requests(db: TestDb) {
    let server = start(&db);
    let node = server.enrolled_node(STORE).await;
    let body = serde_json::to_vec(&report(STORE, "converged", Some(1), Some(1))).unwrap();

    let headers = node.sign("POST", "/api/v1/reports", &body, Utc::now());
    let first = server
        .send_signed("POST", "/api/v1/reports", &body, &headers)
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let replay = server
        .send_signed("POST", "/api/v1/reports", &body, &headers)
        .await;
    assert_eq!(replay.status, 401, "{:?}", replay.body);

    // Timestamps are whole seconds: 302 s is over the limit whatever the rounding.
    for skew in [-302i64, 302] {
        let at = Utc::now() + chrono::Duration::seconds(skew);
        let h = node.sign("POST", "/api/v1/reports", &body, at);
        let r = server
            .send_signed("POST", "/api/v1/reports", &body, &h)
            .await;
        assert_eq!(r.status, 401, "skew {skew}: {:?}", r.body);
    }

    // A signature lifted onto another body or path fails too.
    let h = node.sign("POST", "/api/v1/reports", &body, Utc::now());
    let r = server
        .send_signed("POST", "/api/v1/reports", b"{}", &h)
        .await;
    assert_eq!(r.status, 401);
    // An unsigned request.
    let r = server
        .post_json(
            "/api/v1/reports",
            &report(STORE, "converged", Some(1), Some(1)),
        )
        .await;
    assert_eq!(r.status, 401);

    let reasons: Vec<String> = refusals(&db, "POST /api/v1/reports")
        .await
        .into_iter()
        .map(|e| e.detail)
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons[0].contains("nonce reused"), "{reasons:?}");
    assert!(
        reasons[1].contains("away from the server's clock"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("does not verify"), "{reasons:?}");
    let op = server.operator(&["acme"]);
    let v = server.store_view(&op, STORE).await;
    assert_eq!(
        v["reports"].as_array().unwrap().len(),
        1,
        "only the first was stored"
    );
}

/// Row 14, with a known key: its reports' signatures are verified by the
/// write, as one batch (ADR 58). Forged reports sent at the same time as
/// good ones are refused, each with its own audit entry, and write nothing
/// (their nonces stay unused); every good one is stored.
async fn row14_forged_reports_sent_with_good_ones_are_refused_alone(db: TestDb) {
    let server = start(&db);
    let node = server.enrolled_node(STORE).await;
    // The first report makes the key known (verified at once).
    let r = server
        .report(&node, &report(STORE, "converged", Some(1), Some(1)))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    let path = "/api/v1/reports";
    let mut sends = tokio::task::JoinSet::new();
    let mut forged_nonces = Vec::new();
    for i in 0..24u64 {
        let forged = i % 3 == 1;
        let body =
            serde_json::to_vec(&report(STORE, "converged", Some(i + 2), Some(i + 2))).unwrap();
        let mut headers = node.sign("POST", path, &body, Utc::now());
        let sent = if forged {
            // The node's signature of another body of the same store.
            let other = report(STORE, "failed", Some(i + 2), Some(1));
            let other = serde_json::to_vec(&other).unwrap();
            let h = node.sign("POST", path, &other, Utc::now());
            headers.signature = h.signature;
            forged_nonces.push((headers.nonce.clone(), body.clone()));
            other
        } else {
            body
        };
        let client = server.client.clone();
        let url = format!("{}{path}", server.base);
        sends.spawn(async move {
            let mut rb = client
                .post(url)
                .header("content-type", "application/json")
                .body(sent);
            for (k, v) in headers.pairs() {
                rb = rb.header(k, v);
            }
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (forged, status, body)
        });
    }
    let (mut stored, mut refused) = (0, 0);
    while let Some(done) = sends.join_next().await {
        let (forged, status, body) = done.unwrap();
        if forged {
            assert_eq!(status, 401, "{body:?}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("does not verify")),
                "{body:?}"
            );
            refused += 1;
        } else {
            assert_eq!(status, 201, "{body:?}");
            stored += 1;
        }
    }
    assert_eq!((stored, refused), (16, 8));
    let reasons: Vec<String> = refusals(&db, "POST /api/v1/reports")
        .await
        .into_iter()
        .map(|e| e.detail)
        .collect();
    assert_eq!(reasons.len(), 8, "{reasons:?}");
    assert!(
        reasons.iter().all(|r| r.contains("does not verify")),
        "{reasons:?}"
    );
    let op = server.operator(&["acme"]);
    let v = server.store_view(&op, STORE).await;
    assert_eq!(
        v["reports"].as_array().unwrap().len(),
        17,
        "the first and 16 good ones"
    );
    // Nothing of a forged request was written, its nonce included: the
    // node's own request with that nonce is still taken.
    let (nonce, body) = forged_nonces.swap_remove(0);
    let headers =
        status::node_auth::sign_request(&node.key, "POST", path, &body, Utc::now(), &nonce);
    let r = server.send_signed("POST", path, &body, &headers).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

/// Row 15: a revoked node gets 401 on its next request.
async fn row15_revoked_node_keeps_reporting(db: TestDb) {
    let server = start(&db);
    let node = server.enrolled_node(STORE).await;
    let r = server
        .report(&node, &report(STORE, "converged", Some(1), Some(1)))
        .await;
    assert_eq!(r.status, 201);

    // Revoked by another process, after the service verified (and kept)
    // the key: the report's write refuses it, and so does every later one.
    let out = server.admin(&["node", "revoke", STORE]);
    assert!(out.contains("revoked 1"), "{out}");
    for _ in 0..2 {
        let r = server
            .report(&node, &report(STORE, "converged", Some(1), Some(1)))
            .await;
        assert_eq!(r.status, 401, "{:?}", r.body);
    }
    let r = server
        .signed(&node, "GET", "/api/v1/desired?wait=0", b"")
        .await;
    assert_eq!(r.status, 401);
    let refused = refusals(&db, "POST /api/v1/reports").await;
    assert_eq!(refused.len(), 2);
    assert!(
        refused.iter().all(|r| r.detail == "node key revoked"),
        "{refused:?}"
    );

    // The store shows as unenrolled; a new token enrolls a new key.
    let op = server.operator(&["acme"]);
    assert_eq!(server.store_view(&op, STORE).await["state"], "unenrolled");
    let fresh = server.enrolled_node(STORE).await;
    let r = server
        .report(&fresh, &report(STORE, "converged", Some(1), Some(1)))
        .await;
    assert_eq!(r.status, 201);
}

/// Row 16: an operator of tenant X cannot read or revoke tenant Y's stores:
/// every call answers 404, as for a store that does not exist.
async fn row16_operator_of_another_tenant(db: TestDb) {
    let server = start(&db);
    let node = server.enrolled_node(STORE).await;
    let _other = server.enrolled_node("globex/uptown").await;
    let acme = server.operator(&["acme"]);
    let globex = server.operator(&["globex"]);
    let both = server.operator(&["acme", "globex"]);

    let list = server.get_as(&globex, "/api/v1/stores").await;
    assert_eq!(list.status, 200);
    let names: Vec<&str> = list.body["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["store"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["globex/uptown"]);

    let r = server.get_as(&globex, "/api/v1/stores/acme/soho").await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let missing = server
        .get_as(&globex, "/api/v1/stores/globex/nowhere")
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        r.body, missing.body,
        "indistinguishable from a missing store"
    );
    let r = server
        .post_as(&globex, "/api/v1/stores/acme/soho/revoke")
        .await;
    assert_eq!(r.status, 404);
    // Still enrolled: the revoke did nothing.
    let r = server
        .report(&node, &report(STORE, "converged", Some(1), Some(1)))
        .await;
    assert_eq!(r.status, 201);

    assert_eq!(
        server
            .get_as(&acme, "/api/v1/stores/acme/soho")
            .await
            .status,
        200
    );
    let all = server.get_as(&both, "/api/v1/stores").await;
    assert_eq!(all.body["stores"].as_array().unwrap().len(), 2);
    // The tenant rollout: another tenant's answers 404 like a missing one.
    let r = server.get_as(&globex, "/api/v1/tenants/acme").await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let missing = server.get_as(&globex, "/api/v1/tenants/nowhere").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        r.body, missing.body,
        "indistinguishable from a missing tenant"
    );
    let r = server.get_as(&acme, "/api/v1/tenants/acme").await;
    assert_eq!((r.status, r.body["stores"].clone()), (200, json!(1)));
    // Filters and paging cannot widen what a token sees.
    let r = server
        .get_as(&globex, "/api/v1/stores?tenant=acme&per_page=10")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["stores"], json!([]));
    assert_eq!(r.body["total"], 0);
    assert_eq!(r.body["tenants"], json!({}));
    let r = server.get_as(&globex, "/api/v1/stores?q=soho").await;
    assert_eq!(r.body["stores"], json!([]));
    // The store detail's node keys are the store's own.
    let v = server.store_view(&acme, STORE).await;
    assert_eq!(v["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["nodes"][0]["key_id"].as_str().unwrap(),
        status::node_auth::key_id(&node.key.verifying_key())
    );
    // No token, or a made-up one: 401.
    assert_eq!(
        server.get_as("fso_made-up", "/api/v1/stores").await.status,
        401
    );
    assert_eq!(
        server
            .get_as("fso_made-up", "/api/v1/tenants/acme")
            .await
            .status,
        401
    );
    let r = common::send(server.client.get(format!("{}/api/v1/stores", server.base))).await;
    assert_eq!(r.status, 401);

    // The tenant's own operator can revoke.
    let r = server
        .post_as(&acme, "/api/v1/stores/acme/soho/revoke")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["revoked"], 1);
    let r = server
        .report(&node, &report(STORE, "converged", Some(1), Some(1)))
        .await;
    assert_eq!(r.status, 401);
}

/// Row 28: an operator token that expired or was revoked gets 401 on the
/// API and is sent to sign in on the pages; a token scoped to one store
/// sees no other store of its tenant (404 like a missing one, on every
/// API call and page); a viewer may read but not revoke (403). The
/// dashboard says who is signed in, with role and expiry.
async fn row28_operator_tokens_expire_are_revoked_and_keep_to_their_stores(db: TestDb) {
    let server = start(&db);
    let soho = server.enrolled_node(STORE).await;
    let _brooklyn = server.enrolled_node("acme/brooklyn").await;

    // Expired. (Four seconds: on a loaded 2-core machine the admin
    // command and the first request took over one.)
    let short = server.operator_with(&["--tenant", "acme", "--ttl", "4s"]);
    assert_eq!(server.get_as(&short, "/api/v1/stores").await.status, 200);
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let r = server.get_as(&short, "/api/v1/stores").await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert!(r.body.to_string().contains("expired"), "{:?}", r.body);
    let page = server.page("GET", "/", Some(&short), None).await;
    assert_eq!((page.status, page.location.as_str()), (303, "/login"));
    let login = server
        .page("POST", "/login", None, Some(&format!("token={short}")))
        .await;
    assert_eq!(login.status, 401);
    assert!(login.body.contains("expired"), "{}", login.body);

    // Revoked, by the id `operator create` printed first.
    let line = server.admin(&["operator", "create", "--tenant", "acme"]);
    let (id, token) = line.rsplit_once(' ').unwrap();
    assert_eq!(server.get_as(token, "/api/v1/stores").await.status, 200);
    let listed = server.admin(&["operator", "list"]);
    assert!(
        listed.contains(id) && listed.contains(" active"),
        "{listed}"
    );
    assert!(!listed.contains(token), "the list never shows a token");
    let said = server.admin(&["operator", "revoke", id]);
    assert!(
        said.contains(&format!("revoked operator token {id}")),
        "{said}"
    );
    let r = server.get_as(token, "/api/v1/stores").await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert!(r.body.to_string().contains("revoked"), "{:?}", r.body);
    let listed = server.admin(&["operator", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(id) && l.ends_with("revoked")),
        "{listed}"
    );
    // Revoking it again, or an unknown id: an error naming it.
    let out = std::process::Command::new(crate::common::BIN)
        .args(["--database-url", &db.url, "operator", "revoke", id])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("no active operator token {id}"))
    );

    // Scoped to one store: the other store of the tenant is not there.
    let scoped = server.operator_with(&["--tenant", "acme", "--store", STORE, "--role", "viewer"]);
    let list = server.get_as(&scoped, "/api/v1/stores").await;
    let names: Vec<&str> = list.body["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["store"].as_str().unwrap())
        .collect();
    assert_eq!(names, [STORE]);
    let other = server.get_as(&scoped, "/api/v1/stores/acme/brooklyn").await;
    let missing = server.get_as(&scoped, "/api/v1/stores/acme/nowhere").await;
    assert_eq!((other.status, &other.body), (404, &missing.body));
    let tenant = server.get_as(&scoped, "/api/v1/tenants/acme").await;
    assert_eq!(tenant.body["stores"], json!(1), "{:?}", tenant.body);
    for path in ["/stores/acme/brooklyn", "/stores/acme/nowhere"] {
        let page = server.page("GET", path, Some(&scoped), None).await;
        assert_eq!(page.status, 404, "{path}");
    }
    let overview = server.page("GET", "/", Some(&scoped), None).await;
    assert!(
        !overview.body.contains("acme/brooklyn"),
        "{}",
        overview.body
    );
    // A viewer reads its store but may not revoke its node key.
    assert_eq!(
        server
            .get_as(&scoped, "/api/v1/stores/acme/soho")
            .await
            .status,
        200
    );
    let r = server
        .post_as(&scoped, "/api/v1/stores/acme/soho/revoke")
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.body.to_string().contains("viewer"), "{:?}", r.body);
    let page = server
        .page("POST", "/stores/acme/soho/revoke", Some(&scoped), Some(""))
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    let page = server
        .page("GET", "/stores/acme/soho", Some(&scoped), None)
        .await;
    assert!(
        !page.body.contains("Revoke node key"),
        "a viewer gets no revoke button"
    );
    assert!(
        page.body
            .contains("· viewer · tenants acme · stores acme/soho · expires 20"),
        "who is signed in: {}",
        page.body
    );
    let r = server
        .report(&soho, &report(STORE, "converged", Some(1), Some(1)))
        .await;
    assert_eq!(r.status, 201, "the node key is still active");
    // Out-of-scope or bad flags for `operator create`.
    for (flags, needle) in [
        (
            vec!["--tenant", "acme", "--store", "globex/uptown"],
            "is not a store of the tenants given",
        ),
        (
            vec!["--tenant", "acme", "--ttl", "0s"],
            "TTL must be positive",
        ),
    ] {
        let out = std::process::Command::new(crate::common::BIN)
            .args(["--database-url", &db.url, "operator", "create"])
            .args(&flags)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?}");
        assert!(out.stdout.is_empty(), "{flags:?} printed a token");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{flags:?}"
        );
    }
}

/// `POST /api/v1/nodes/rotate` (issue #17 item 4): signed by the current
/// key, with a proof made by the new key over the current key's id. A proof
/// by another key, a proof made for another node, an unknown or revoked
/// signer, or a new key already enrolled are refused and change nothing; a
/// good rotation revokes the current key in the same transaction.
async fn node_key_rotation_needs_the_current_key_and_a_proof_of_the_new_one(db: TestDb) {
    let server = start(&db);
    let node = server.enrolled_node(STORE).await;
    let other = server.enrolled_node("acme/brooklyn").await;
    let old_id = status::node_auth::key_id(&node.key.verifying_key());
    let other_id = status::node_auth::key_id(&other.key.verifying_key());
    let rotate = |new: &Node, proof_by: &Node, for_id: &str| {
        json!({
            "node_public_key": new.public_key(),
            "proof": status::node_auth::sign_rotation(&proof_by.key, for_id),
        })
    };
    let post = |signer: &Node, body: serde_json::Value| {
        let body = serde_json::to_vec(&body).unwrap();
        let signer_key = signer.key.clone();
        let server = &server;
        async move {
            let n = Node { key: signer_key };
            server
                .signed(&n, "POST", "/api/v1/nodes/rotate", &body)
                .await
        }
    };
    let new = Node::new();
    let stranger = Node::new();
    for (what, signer, body, want) in [
        (
            "a proof by another key",
            &node,
            rotate(&new, &stranger, &old_id),
            400,
        ),
        (
            "a proof made for another node",
            &node,
            rotate(&new, &new, &other_id),
            400,
        ),
        (
            "an unknown signer",
            &stranger,
            rotate(&new, &new, &old_id),
            401,
        ),
        (
            "a new key already enrolled",
            &node,
            rotate(&other, &other, &old_id),
            409,
        ),
        (
            "no proof",
            &node,
            json!({"node_public_key": new.public_key()}),
            400,
        ),
        (
            "not a key",
            &node,
            json!({"node_public_key": "AAAA", "proof": "AAAA"}),
            400,
        ),
    ] {
        let r = post(signer, body).await;
        assert_eq!(r.status, want, "{what}: {:?}", r.body);
        // Nothing changed: the current key still reports.
        let r = server
            .report(&node, &report(STORE, "converged", Some(1), Some(1)))
            .await;
        assert_eq!(r.status, 201, "{what}: the current key still works");
    }
    // A good rotation.
    let r = post(&node, rotate(&new, &new, &old_id)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.body["key_id"],
        json!(status::node_auth::key_id(&new.key.verifying_key()))
    );
    assert_eq!(r.body["store"], json!(STORE));
    let r = server
        .report(&node, &report(STORE, "converged", Some(1), Some(1)))
        .await;
    assert_eq!(r.status, 401, "the old key is revoked");
    let r = server
        .report(&new, &report(STORE, "converged", Some(1), Some(1)))
        .await;
    assert_eq!(r.status, 201, "the new key reports for the same store");
    // The revoked key cannot rotate again.
    let again = Node::new();
    let r = post(&node, rotate(&again, &again, &old_id)).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    // The other store's node was never touched.
    let r = server
        .report(
            &other,
            &report("acme/brooklyn", "converged", Some(1), Some(1)),
        )
        .await;
    assert_eq!(r.status, 201);
}

/// DESIGN.md §11: the node sends the store's age recipient at enrollment;
/// the store view shows it, an invalid one is refused (400, the token stays
/// unused), and a store whose node sent none shows none.
async fn an_enrolled_store_has_the_age_recipient_its_node_sent(db: TestDb) {
    let server = start(&db);
    let operator = server.operator(&["acme"]);
    let token = server.token(STORE);
    let node = Node::new();
    let bad = server
        .post_json(
            "/api/v1/enroll",
            &json!({"token": token, "node_public_key": node.public_key(), "recipient": "age1notakey"}),
        )
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert!(bad.body.to_string().contains("recipient"), "{:?}", bad.body);
    let recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let ok = server
        .post_json(
            "/api/v1/enroll",
            &json!({"token": token, "node_public_key": node.public_key(), "recipient": recipient}),
        )
        .await;
    assert_eq!(
        ok.status, 201,
        "the refused try left the token unused: {:?}",
        ok.body
    );
    assert_eq!(
        server.store_view(&operator, STORE).await["recipient"],
        json!(recipient)
    );
    let _other = server.enrolled_node("acme/brooklyn").await;
    assert_eq!(
        server.store_view(&operator, "acme/brooklyn").await["recipient"],
        json!(null)
    );
}
