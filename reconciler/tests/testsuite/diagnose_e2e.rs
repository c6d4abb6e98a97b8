//! `fleet-reconciler diagnose` (issue #8 item 5) on a real state directory
//! left by a real `once` pass: the bundle holds versions, the redacted
//! config, logs (or why there are none), state, outbox and mirror refs, and
//! never the edge token or the node key; `--upload` reaches the real
//! `fleet-status` as a signed node request, which lists it in the store's
//! JSON and refuses a node that is not enrolled or was revoked.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use crate::e2e::{self, EDGE_TOKEN, Fixture, STORE, StatusService};

/// Every entry of a `.tar.gz`, by its path below the bundle's top directory.
fn unpack(path: &Path) -> BTreeMap<String, String> {
    let file = std::fs::File::open(path).expect("bundle");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = BTreeMap::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let name = entry.path().expect("entry path").display().to_string();
        let (top, rest) = name.split_once('/').expect("one top directory");
        assert!(top.starts_with("fleet-diagnose-"), "{name}");
        let mut text = String::new();
        entry.read_to_string(&mut text).expect("text entry");
        out.insert(rest.to_owned(), text);
    }
    out
}

fn assert_no_secret(fx: &Fixture, entries: &BTreeMap<String, String>) {
    let node_key = std::fs::read_to_string(fx.state.join("node.key")).unwrap_or_default();
    for (name, text) in entries {
        assert!(
            !name.contains("node.key"),
            "the node key file is never bundled"
        );
        assert!(!text.contains(EDGE_TOKEN), "{name} holds the edge token");
        if !node_key.trim().is_empty() {
            assert!(!text.contains(node_key.trim()), "{name} holds the node key");
        }
        assert!(
            !name.contains("age.key"),
            "the age identity is never bundled"
        );
        assert!(
            !text.contains("AGE-SECRET-KEY-"),
            "{name} holds the store's age identity"
        );
    }
}

#[test]
fn a_bundle_holds_versions_config_state_outbox_and_mirror_but_no_secret() {
    let fx = Fixture::converged();
    let out = fx.root.join("bundle.tar.gz");
    let run = fx.reconciler(&["diagnose", "--out", out.to_str().expect("utf-8 path")]);
    run.expect_code(0, "diagnose");
    assert!(run.stdout.contains("support bundle: "), "{run}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&out)
        .expect("bundle")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the bundle is the owner's only: {mode:o}"
    );
    let entries = unpack(&out);
    for name in [
        "versions.txt",
        "config.toml",
        "logs.txt",
        "state/applied.json",
        "state/last_pass.json",
        "state/node.json",
        "outbox/listing.txt",
        "mirror.txt",
    ] {
        assert!(entries.contains_key(name), "{name} in {:?}", entries.keys());
    }
    assert!(
        entries["versions.txt"]
            .contains(&format!("fleet-reconciler: {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        entries["versions.txt"]
    );
    assert!(entries["versions.txt"].contains("uname: "));
    let config = &entries["config.toml"];
    assert!(config.contains(&format!("store = \"{STORE}\"")), "{config}");
    assert!(
        config.contains(&fx.root.join("edge").display().to_string()),
        "the token file's path is kept: {config}"
    );
    let applied: serde_json::Value =
        serde_json::from_str(&entries["state/applied.json"]).expect("applied.json");
    assert_eq!(applied["revision"], 1, "{applied}");
    let last: serde_json::Value =
        serde_json::from_str(&entries["state/last_pass.json"]).expect("last_pass.json");
    assert_eq!(last["outcome"], "converged", "{last}");
    // Never enrolled: node.json says it is missing rather than failing.
    assert!(entries["state/node.json"].contains("node.json"));
    // No status service: the report of the pass waits in the outbox.
    assert!(
        entries["outbox/listing.txt"].contains("pending: 1"),
        "{}",
        entries["outbox/listing.txt"]
    );
    assert_eq!(
        entries
            .keys()
            .filter(|k| k.starts_with("outbox/newest/"))
            .count(),
        1
    );
    assert!(
        entries["mirror.txt"].contains("HEAD"),
        "{}",
        entries["mirror.txt"]
    );
    let head = e2e::git(&fx.work, &["rev-parse", "HEAD"]);
    assert!(
        entries["mirror.txt"].contains(head.trim()),
        "the mirror's commit {head}: {}",
        entries["mirror.txt"]
    );
    assert!(!entries["logs.txt"].is_empty());
    assert_no_secret(&fx, &entries);
}

/// A signed `POST /api/v1/support-bundles` with the node key of `state`.
fn post_signed(state: &Path, url: &str, body: Vec<u8>) -> (u16, String) {
    let key = reconciler::status_client::load_key(state).expect("node key");
    let headers = wire::node_auth::sign_request(
        &key,
        "POST",
        reconciler::diagnose::UPLOAD_PATH,
        &body,
        chrono::Utc::now(),
        "0123456789abcdef0123456789abcdef",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut rb = reqwest::Client::new()
            .post(format!("{url}{}", reconciler::diagnose::UPLOAD_PATH))
            .timeout(Duration::from_secs(30));
        for (n, v) in headers.pairs() {
            rb = rb.header(n, v);
        }
        let r = rb.body(body).send().await.expect("POST support bundle");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    })
}

/// `fleet-reconciler diagnose --no-journal --upload --out ROOT/<name>.tar.gz`.
fn upload(fx: &Fixture, name: &str) -> (std::path::PathBuf, e2e::Run) {
    let out = fx.root.join(format!("{name}.tar.gz"));
    let run = fx.reconciler(&[
        "diagnose",
        "--no-journal",
        "--upload",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    (out, run)
}

#[test]
fn an_enrolled_node_uploads_a_bundle_and_a_revoked_or_unenrolled_one_cannot() {
    let fx = Fixture::new();
    let status = StatusService::for_fixture(&fx);
    fx.write_config_with_status(&status, "");

    // Not enrolled: no key to sign with, nothing sent.
    let (_, run) = upload(&fx, "b0");
    run.expect_code(1, "upload before enrollment");
    assert!(run.stderr.contains("not enrolled"), "{run}");

    fx.enroll(&status);
    fx.once().expect_code(0, "a pass");
    let (out, run) = upload(&fx, "b1");
    run.expect_code(0, "upload");
    assert!(run.stdout.contains("uploaded to "), "{run}");
    let entries = unpack(&out);
    assert!(entries["logs.txt"].contains("not collected"));
    assert!(
        entries["state/node.json"].contains("key_id"),
        "enrolled now"
    );
    assert_no_secret(&fx, &entries);

    let operator = status.operator("acme");
    let view = status.store_view(&operator, STORE);
    let bundles = view["support_bundles"].as_array().expect("support_bundles");
    assert_eq!(bundles.len(), 1, "{view:#}");
    let id = bundles[0]["id"].as_str().expect("id");
    // Kept in the database and downloaded by an editor as sent.
    let (code, stored) = status.get_bytes(
        ("Authorization", &format!("Bearer {operator}")),
        &format!("/api/v1/stores/{STORE}/support-bundles/{id}"),
    );
    assert_eq!(code, 200);
    assert_eq!(
        stored,
        std::fs::read(&out).expect("bundle"),
        "stored as sent"
    );
    assert!(
        !status.dir.join("state/support-bundles").exists(),
        "nothing on the replica's disk"
    );

    // Signed with a key the service never enrolled: refused.
    let stranger = fx.root.join("stranger");
    std::fs::create_dir_all(&stranger).expect("stranger dir");
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8 + 7);
    use base64::Engine as _;
    std::fs::write(
        stranger.join("node.key"),
        base64::engine::general_purpose::STANDARD.encode(seed),
    )
    .expect("a stranger's key");
    let (code, text) = post_signed(
        &stranger,
        &status.url(),
        std::fs::read(&out).expect("bundle"),
    );
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("unknown node key"), "{text}");

    // Signed, but not a gzip: refused, not stored.
    let (code, text) = post_signed(&fx.state, &status.url(), b"plain text".to_vec());
    assert_eq!(code, 422, "{text}");

    status.admin(&["node", "revoke", STORE]);
    let (_, run) = upload(&fx, "b2");
    run.expect_code(1, "upload after revocation");
    assert!(run.stderr.contains("401"), "{run}");
    assert!(run.stderr.contains("revoked"), "{run}");
    let view = status.store_view(&operator, STORE);
    assert_eq!(view["support_bundles"].as_array().map(Vec::len), Some(1));
}
