//! Device tokens (DESIGN.md §10, THREATS.md row 23), against the real
//! `fleet-edge` binary: `fleet-edge device add | list | revoke` on the
//! served database; a device token reads configuration and places orders,
//! but a configuration write is 403, an identity header (`X-Fleet-Revision`,
//! `X-Fleet-Commit`, `X-Fleet-Actor`) is refused, nothing of it reaches the
//! audit log, and the server's log names the device from its credential.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use reqwest::Method;
use serde_json::json;

use crate::common::{BIN, Server, path_str, seed_example};

fn device(args: &[&str], db: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("device")
        .args(args)
        .args(["--database", path_str(db)])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn row23_a_device_token_reads_and_orders_but_never_writes_or_claims_an_identity() {
    let s = Server::start();
    seed_example(&s).await;
    let (ok, out, err) = device(&["add", "register-1"], &s.database);
    assert!(ok, "{err}");
    let line = out.lines().last().unwrap();
    let (name, token) = line.split_once(' ').unwrap();
    assert_eq!(name, "register-1");
    assert!(token.starts_with("fdt_") && token.len() > 40, "{line}");
    let as_device = |m: Method, p: &str| {
        s.client
            .request(m, format!("{}{p}", s.base))
            .bearer_auth(token)
    };

    // Reads configuration; places orders with a staff session only.
    crate::common::seed_staff(&s).await;
    let r = Server::send(as_device(Method::GET, "/state")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let soda = json!({"lines": [{"variation": "soda-small"}]});
    let r = Server::send(as_device(Method::POST, "/orders").json(&soda)).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "session_required"),
        "{:?}",
        r.body
    );
    let r = Server::send(
        as_device(Method::POST, "/sessions").json(&json!({"user": "sam", "pin": "1234"})),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let session = r.body["session"].as_str().unwrap().to_owned();
    let r = Server::send(
        as_device(Method::POST, "/orders")
            .header("X-Fleet-Session", &session)
            .json(&soda),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    // Never writes configuration, never claims an identity.
    let audit_before = s.audit().await;
    let state_before = s.get("/state").await.body;
    let footer = json!({"key": "receipt.footer", "value": "pwned"});
    let writes = [
        (
            as_device(Method::PUT, "/settings/receipt.footer").json(&footer),
            "device_forbidden",
        ),
        (
            as_device(Method::DELETE, "/menu/taxes/vat").header("If-Match", "\"1\""),
            "device_forbidden",
        ),
        (
            as_device(Method::PUT, "/settings/receipt.footer")
                .header("X-Fleet-Revision", "99")
                .header("X-Fleet-Commit", "made-up")
                .json(&footer),
            "identity_header",
        ),
        (
            as_device(Method::POST, "/orders")
                .header("X-Fleet-Actor", "local:manager")
                .json(&json!({"lines": [{"variation": "soda-small"}]})),
            "identity_header",
        ),
        (
            as_device(Method::GET, "/state").header("X-Fleet-Revision", "99"),
            "identity_header",
        ),
    ];
    for (rb, code) in writes {
        let r = Server::send(rb).await;
        assert_eq!((r.status, r.code()), (403, code), "{:?}", r.body);
        assert!(r.message().contains("device:register-1"), "{:?}", r.body);
    }
    assert_eq!(
        s.audit().await,
        audit_before,
        "nothing reached the audit log"
    );
    assert_eq!(
        s.get("/state").await.body,
        state_before,
        "nothing was written"
    );
    let log = s.log();
    assert!(
        log.contains("device:register-1"),
        "the log names the device: {log}"
    );
    assert!(!log.contains("actor=reconciler"), "{log}");

    // Listed; revoked → 401; the admin token is untouched.
    let (ok, out, _) = device(&["list"], &s.database);
    assert!(
        ok && out.contains("register-1") && out.contains("active"),
        "{out}"
    );
    assert!(!out.contains(token), "a list never shows a token");
    let (ok, out, err) = device(&["revoke", "register-1"], &s.database);
    assert!(
        ok && out.contains("revoked the token of device register-1"),
        "{out}{err}"
    );
    let r = Server::send(as_device(Method::GET, "/state")).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(s.get("/state").await.status, 200);
    let (ok, out, _) = device(&["list"], &s.database);
    assert!(ok && out.contains("revoked"), "{out}");

    // Refused: a bad name, a name taken, an unknown device, a missing database.
    for (args, needle) in [
        (vec!["add", "Register 1"], "is not a device name"),
        (vec!["add", "register-1"], "exists already"),
        (vec!["revoke", "nobody"], "no active device named nobody"),
    ] {
        let (ok, out, err) = device(&args, &s.database);
        assert!(!ok, "{args:?}");
        assert!(out.is_empty(), "{args:?} printed {out}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let missing = s.dir.path().join("missing.db");
    let (ok, _, err) = device(&["list"], &missing);
    assert!(!ok && err.contains("does not exist"), "{err}");
    assert!(!missing.exists(), "no database is made by a device command");

    // The OpenAPI document says which credential each route takes.
    let doc = s.get("/openapi.json").await.body;
    let security = |path: &str, method: &str| doc["paths"][path][method]["security"].clone();
    assert_eq!(security("/settings/{key}", "put"), json!([{"bearer": []}]));
    assert_eq!(
        security("/settings/{key}", "get"),
        json!([{"bearer": []}, {"device": []}])
    );
    assert_eq!(
        security("/orders", "post"),
        json!([{"bearer": []}, {"device": []}])
    );
    assert!(doc["paths"]["/menu/batch"]["post"]["responses"]["403"].is_object());
    assert!(doc["components"]["securitySchemes"]["device"].is_object());
}
