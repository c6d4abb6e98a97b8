//! Staff permissions from Git (DESIGN.md §14, issue #21 item 3): the real
//! reconciler converges the template's store; a cashier logs in at the
//! real `fleet-edge` with the template's demo PIN and takes an order; the
//! cashier role loses `order.create` in the fleet repo (commit, sign,
//! reconcile); the same session's next order is refused (403), and the
//! refusal is in the store's audit chain.

use reqwest::Method;
use serde_json::json;

use crate::e2e::Fixture;

#[test]
fn a_role_changed_in_git_takes_effect_on_the_next_order_after_the_reconciler_applies_it() {
    let fx = Fixture::converged();
    // sam-rivera: a cashier at soho (PIN from .fleet/DEMO-PINS.md).
    let r = fx.edge.call(
        Method::POST,
        "/sessions",
        &[],
        Some(&json!({"user": "sam-rivera", "pin": "101010"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let session = r.json()["session"].as_str().expect("a session").to_owned();
    assert_eq!(r.json()["role"], "cashier");
    let order = |session: &str| {
        fx.edge.call(
            Method::POST,
            "/orders",
            &[("X-Fleet-Session", session.to_owned())],
            Some(&json!({"lines": [{"variation": "fries-regular"}]})),
        )
    };
    let r = order(&session);
    assert_eq!(r.status, 201, "{}", r.text);

    // Head office takes order.create away from cashiers.
    fx.edit(
        "tenants/acme/access.yaml",
        "permissions: [order.create, order.settle, discount.apply, kitchen.view]",
        "permissions: [order.settle, discount.apply, kitchen.view]",
    );
    fx.commit("cashiers no longer take orders");
    fx.sign(&[]);
    let run = fx.once();
    run.expect_code(0, "applying the role change");
    assert_eq!(run.outcome(), "converged", "{run}");

    let r = order(&session);
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["error"]["code"], "permission_denied", "{}", r.text);
    let audit = fx.edge.audit();
    let role_write = audit
        .iter()
        .position(|e| {
            e["kind"] == "role" && e["entity_id"] == "cashier" && e["actor"] == "reconciler"
        })
        .expect("the reconciler wrote the role");
    let refusal = audit
        .iter()
        .position(|e| {
            e["domain"] == "staff" && e["kind"] == "refused" && e["entity_id"] == "sam-rivera"
        })
        .expect("the refusal is audited");
    assert!(role_write < refusal, "the refusal follows the role change");
    fx.edge.assert_audit_verifies();
}
