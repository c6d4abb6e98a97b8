//! Operator actions (DESIGN.md §13, issue #20 item 3) over real HTTP, on
//! SQLite and on PostgreSQL: an editor asks; the store's held long-poll
//! answers at once with the action; a handed-out action is not handed out
//! again at once; a report naming it answers it (another store's report
//! cannot); an uploaded bundle answers a bundle action and is downloaded
//! from the database; a refused bundle fails its action with the reason;
//! viewers, other tenants, unknown kinds and unenrolled stores are refused.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Node, Server, ServerOpts, TestDb, report};

const STORE: &str = "acme/soho";

async fn ask(server: &Server, operator: &str, store: &str, kind: &str) -> crate::common::Resp {
    crate::common::send(
        server
            .client
            .post(format!("{}/api/v1/stores/{store}/actions", server.base))
            .bearer_auth(operator)
            .json(&json!({ "kind": kind })),
    )
    .await
}

/// The store's actions, newest first, from its JSON.
async fn actions(server: &Server, operator: &str) -> Vec<Value> {
    let view = server.store_view(operator, STORE).await;
    view["actions"].as_array().cloned().unwrap_or_default()
}

async fn action(server: &Server, operator: &str, id: &Value) -> Value {
    actions(server, operator)
        .await
        .into_iter()
        .find(|a| &a["id"] == id)
        .unwrap_or_else(|| panic!("action {id} is not listed"))
}

/// A signed upload of `body` as a bundle, for `action` if any.
async fn upload(
    server: &Server,
    node: &Node,
    action: Option<&Value>,
    body: &[u8],
) -> crate::common::Resp {
    let path = match action {
        Some(id) => format!("/api/v1/support-bundles?action={id}"),
        None => "/api/v1/support-bundles".to_owned(),
    };
    server.signed(node, "POST", &path, body).await
}

/// Bytes that pass the service's check (gzip magic) and differ by `n`.
fn bundle_bytes(n: u8) -> Vec<u8> {
    let mut b = vec![0x1f, 0x8b, 0x08, 0x00];
    b.extend(std::iter::repeat_n(n, 64));
    b
}

async fn download(server: &Server, operator: &str, id: &str) -> (u16, Vec<u8>) {
    let r = server
        .client
        .get(format!(
            "{}/api/v1/stores/{STORE}/support-bundles/{id}",
            server.base
        ))
        .bearer_auth(operator)
        .send()
        .await
        .expect("GET bundle");
    let status = r.status().as_u16();
    (status, r.bytes().await.expect("bytes").to_vec())
}

async fn actions_reach_the_store(db: &TestDb) {
    let server = Server::start(&db.url, ServerOpts::default());
    let node = server.enrolled_node(STORE).await;
    let other = server.enrolled_node("acme/tribeca").await;
    let editor = server.operator(&["acme"]);
    let viewer = server.operator_with(&["--tenant", "acme", "--role", "viewer"]);
    let stranger = server.operator(&["globex"]);

    // A long-poll held by the store, then an editor asks for a pass: the
    // poll answers at once with the action.
    let held = {
        let (base, client) = (server.base.clone(), server.client.clone());
        let headers = node.sign("GET", "/api/v1/desired?wait=30", b"", chrono::Utc::now());
        tokio::spawn(async move {
            let mut rb = client.get(format!("{base}/api/v1/desired?wait=30"));
            for (k, v) in headers.pairs() {
                rb = rb.header(k, v);
            }
            let started = Instant::now();
            let r = crate::common::send(rb).await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = ask(&server, &editor, STORE, "reconcile").await;
    assert_eq!(asked.status, 202, "{:?}", asked.body);
    assert_eq!(asked.body["kind"], "reconcile");
    let id = asked.body["id"].clone();
    let (answer, took) = held.await.expect("the long-poll");
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        answer.body["actions"],
        json!([{ "id": id, "kind": "reconcile" }]),
        "{:?}",
        answer.body
    );
    assert!(took < Duration::from_secs(10), "the poll waited {took:?}");
    assert_eq!(action(&server, &editor, &id).await["state"], "delivered");

    // Handed out: the next poll does not hand it out again at once.
    let again = server
        .signed(&node, "GET", "/api/v1/desired?wait=1", b"")
        .await;
    assert_eq!(again.status, 200);
    assert!(again.body.get("actions").is_none(), "{:?}", again.body);

    // Another store's report cannot answer it; the store's own does.
    let mut foreign = report("acme/tribeca", "no_change", None, None);
    foreign["actions"] = json!([id]);
    assert_eq!(server.report(&other, &foreign).await.status, 201);
    assert_eq!(action(&server, &editor, &id).await["state"], "delivered");
    let mut own = report(STORE, "no_change", None, None);
    own["actions"] = json!([id]);
    let stored = server.report(&node, &own).await;
    assert_eq!(stored.status, 201, "{:?}", stored.body);
    let done = action(&server, &editor, &id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["report_id"], stored.body["id"], "{done}");
    assert_eq!(done["detail"], "pass no_change");

    // A bundle: asked, handed out, uploaded for it, downloaded as sent.
    let asked = ask(&server, &editor, STORE, "support_bundle").await;
    assert_eq!(asked.status, 202, "{:?}", asked.body);
    let bid = asked.body["id"].clone();
    let poll = server
        .signed(&node, "GET", "/api/v1/desired?wait=5", b"")
        .await;
    assert_eq!(
        poll.body["actions"],
        json!([{ "id": bid, "kind": "support_bundle" }])
    );
    let sent = bundle_bytes(1);
    let up = upload(&server, &node, Some(&bid), &sent).await;
    assert_eq!(up.status, 201, "{:?}", up.body);
    let bundle_id = up.body["id"].as_str().expect("bundle id").to_owned();
    let done = action(&server, &editor, &bid).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["bundle_id"], bundle_id.as_str());
    let view = server.store_view(&editor, STORE).await;
    assert_eq!(view["support_bundles"][0]["id"], bundle_id.as_str());
    assert_eq!(view["support_bundles"][0]["action_id"], bid);
    assert_eq!(download(&server, &editor, &bundle_id).await, (200, sent));
    // A download is for editors of the store's tenant.
    assert_eq!(download(&server, &viewer, &bundle_id).await.0, 403);
    assert_eq!(download(&server, &stranger, &bundle_id).await.0, 404);
    assert_eq!(download(&server, &editor, "nope.tar.gz").await.0, 404);

    // A refused bundle fails its action, and says why.
    let bad = ask(&server, &editor, STORE, "support_bundle").await.body["id"].clone();
    let up = upload(&server, &node, Some(&bad), b"not a tarball").await;
    assert_eq!(up.status, 422, "{:?}", up.body);
    let failed = action(&server, &editor, &bad).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(".tar.gz"),
        "{failed}"
    );
    // Another store's node cannot answer this store's action.
    let mine = ask(&server, &editor, STORE, "support_bundle").await.body["id"].clone();
    assert_eq!(
        upload(&server, &other, Some(&mine), &bundle_bytes(2))
            .await
            .status,
        201
    );
    assert_eq!(action(&server, &editor, &mine).await["state"], "waiting");
    // An answer of the other kind leaves an action open: a report cannot
    // close a bundle request, a bundle cannot close a reconcile.
    let mut wrong = report(STORE, "no_change", None, None);
    wrong["actions"] = json!([mine]);
    assert_eq!(server.report(&node, &wrong).await.status, 201);
    assert_eq!(action(&server, &editor, &mine).await["state"], "waiting");
    let pass = ask(&server, &editor, STORE, "reconcile").await.body["id"].clone();
    let up = upload(&server, &node, Some(&pass), &bundle_bytes(9)).await;
    assert_eq!(up.status, 201, "{:?}", up.body);
    assert_eq!(action(&server, &editor, &pass).await["state"], "waiting");

    // A query that is not an action id: a clear 400, nothing kept.
    let r = upload(&server, &node, None, &bundle_bytes(3)).await;
    assert_eq!(r.status, 201);
    let kept = server.store_view(&editor, STORE).await["support_bundles"]
        .as_array()
        .map_or(0, Vec::len);
    let r = server
        .signed(
            &node,
            "POST",
            "/api/v1/support-bundles?action=abc",
            &bundle_bytes(4),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "bad_request", "{:?}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("action"),
        "{:?}",
        r.body
    );
    let view = server.store_view(&editor, STORE).await;
    assert_eq!(view["support_bundles"].as_array().map_or(0, Vec::len), kept);

    // Refusals, each naming the problem.
    let r = ask(&server, &viewer, STORE, "reconcile").await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("viewer")
    );
    assert_eq!(
        ask(&server, &stranger, STORE, "reconcile").await.status,
        404
    );
    let r = ask(&server, &editor, STORE, "reboot").await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "unknown_action");
    let r = crate::common::send(
        server
            .client
            .post(format!("{}/api/v1/stores/{STORE}/actions", server.base))
            .bearer_auth(&editor)
            .json(&json!({ "kind": "reconcile", "extra": 1 })),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    server.token("acme/bare");
    let r = ask(&server, &editor, "acme/bare", "reconcile").await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "not_enrolled");

    // Bundles kept: the newest 20 of a store.
    for n in 0..21u8 {
        let up = upload(&server, &node, None, &bundle_bytes(10 + n)).await;
        assert_eq!(up.status, 201, "{:?}; log:\n{}", up.body, server.log());
    }
    let view = server.store_view(&editor, STORE).await;
    assert_eq!(view["support_bundles"].as_array().map(Vec::len), Some(20));

    // Every ask is in the audit log, naming the operator.
    let audit = db.open().await.audit_entries().await.expect("audit");
    for kind in ["reconcile", "support_bundle"] {
        assert!(
            audit.iter().any(|e| e.action == kind
                && e.actor.starts_with("operator:")
                && e.store.as_deref() == Some(STORE)),
            "{kind}: {audit:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_reach_the_store_through_its_long_poll_on_sqlite() {
    actions_reach_the_store(&TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_reach_the_store_through_its_long_poll_on_postgres() {
    actions_reach_the_store(&TestDb::postgres()).await;
}
