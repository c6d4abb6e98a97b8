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

/// Availability is store-owned (DESIGN.md §14, issue #21 item 4): an item
/// a shift lead marked unavailable at the edge stays so through a
/// reconcile pass that converges a change, and the pass reports it.
#[test]
fn an_item_marked_unavailable_at_the_store_is_never_reverted_and_is_reported() {
    let fx = Fixture::converged();
    // priya-shah: a shift lead at soho, whose role grants menu.sold_out.
    let r = fx.edge.call(
        Method::POST,
        "/sessions",
        &[],
        Some(&json!({"user": "priya-shah", "pin": "303030"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let session = r.json()["session"].as_str().expect("a session").to_owned();
    let r = fx.edge.call(
        Method::PUT,
        "/menu/availability/fries-regular",
        &[("X-Fleet-Session", session)],
        Some(&json!({"available": false})),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // A change from head office, converged.
    fx.set_base_price(crate::e2e::VARIATION, 1399);
    fx.sign(&[]);
    let run = fx.once();
    run.expect_code(0, "converging the price change");
    assert_eq!(run.outcome(), "converged", "{run}");

    let state = fx.edge.get("/state");
    assert_eq!(
        state["store_owned"]["unavailable"][0]["variation"], "fries-regular",
        "the pass left the store's 86 alone: {state}"
    );
    let report = fx.newest_report();
    assert_eq!(
        report["unavailable"][0]["variation"], "fries-regular",
        "{report}"
    );
    assert_eq!(
        report["unavailable"][0]["set_by"], "staff:priya-shah@admin",
        "{report}"
    );
    let r = fx.edge.call(
        Method::POST,
        "/orders",
        &[],
        Some(&json!({"lines": [{"variation": "fries-regular"}]})),
    );
    assert_eq!(r.status, 422, "{}", r.text);
}
