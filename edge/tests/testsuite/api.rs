//! The configuration API of the real `fleet-edge` binary: every route,
//! preconditions, error bodies, business rules, batches, concurrent writers,
//! the local override and the actor recorded in the audit log.

#![allow(clippy::unwrap_used)]

use crate::common::{Server, seed_example};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn health_openapi_and_bearer_token() {
    let s = Server::start();
    // /healthz and /openapi.json need no token.
    let r = Server::send(s.client.get(format!("{}/healthz", s.base))).await;
    // DESIGN.md §14: the contract version; part one's `ok` stays.
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"status": "ok", "contract": 1, "ok": true}))
    );
    let doc = Server::send(s.client.get(format!("{}/openapi.json", s.base))).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));

    // Every other route of the document refuses a missing or wrong token.
    let paths = doc.body["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            if path == "/healthz" || path == "/openapi.json" {
                continue;
            }
            let url = format!(
                "{}{}",
                s.base,
                path.replace("{id}", "x").replace("{key}", "tax.rounding")
            );
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let none = Server::send(s.client.request(m.clone(), &url)).await;
            assert_eq!(none.status, 401, "{method} {path} without token");
            assert_eq!(none.code(), "unauthorized");
            let wrong = Server::send(s.client.request(m, &url).bearer_auth("nope")).await;
            assert_eq!(wrong.status, 401, "{method} {path} with a wrong token");
            checked += 1;
        }
    }
    assert!(checked >= 35, "only {checked} operations in the document");
    for p in [
        "/state",
        "/settings/{key}",
        "/menu/taxes/{id}",
        "/menu/categories/{id}",
        "/menu/modifier-groups/{id}",
        "/menu/items/{id}",
        "/menu/discounts/{id}",
        "/menu/batch",
        "/roles/{id}",
        "/roles/{id}/override",
        "/users/{id}",
        "/users/{id}/override",
        "/stations/{id}",
        "/devices/{id}",
        "/routing",
        "/orders",
        "/orders/{id}",
        "/tickets",
        "/audit",
        "/audit/verify",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    // Entity schemas come from the schemas crate.
    let item = &doc.body["components"]["schemas"]["Item"]["properties"];
    assert!(item["variations"].is_object() && item["modifier_groups"].is_object());

    // With the token (whitespace around it in the file is trimmed).
    assert_eq!(s.get("/state").await.status, 200);
    // Unknown route: JSON 404.
    let r = s.get("/nope").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

#[tokio::test]
async fn settings_crud_with_preconditions() {
    let s = Server::start();
    let r = s.get("/settings/tax.rounding").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));

    let r = s
        .create("/settings/tax.rounding", json!({"value": "half_up"}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let v1 = r.version();
    assert_eq!(r.body["key"], "tax.rounding");
    assert_eq!(r.body["value"], "half_up");
    assert_eq!(r.headers["etag"], format!("\"{v1}\"").as_str());

    let r = s.get("/settings/tax.rounding").await;
    assert_eq!(
        r.body,
        json!({"key": "tax.rounding", "value": "half_up", "version": v1})
    );

    // Create again: 412. Update without a precondition: 428. Wrong version: 412.
    let r = s
        .create("/settings/tax.rounding", json!({"value": "half_even"}))
        .await;
    assert_eq!((r.status, r.code()), (412, "version_mismatch"));
    let r = Server::send(
        s.request(Method::PUT, "/settings/tax.rounding")
            .json(&json!({"value": "half_even"})),
    )
    .await;
    assert_eq!((r.status, r.code()), (428, "precondition_required"));
    let r = s
        .update(
            "/settings/tax.rounding",
            v1 + 100,
            json!({"value": "half_even"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (412, "version_mismatch", "If-Match")
    );

    // Quoted ETag form works too.
    let r = Server::send(
        s.request(Method::PUT, "/settings/tax.rounding")
            .header("If-Match", format!("\"{v1}\""))
            .json(&json!({"value": "half_even"})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let v2 = r.version();
    assert!(v2 > v1);

    // The same value again keeps the version (no write, no audit entry).
    let audit_before = s.audit().await.len();
    let r = s
        .update("/settings/tax.rounding", v2, json!({"value": "half_even"}))
        .await;
    assert_eq!((r.status, r.version()), (200, v2));
    assert_eq!(s.audit().await.len(), audit_before);

    // Value and key checks: 422 naming the field.
    let r = s
        .update("/settings/tax.rounding", v2, json!({"value": "up"}))
        .await;
    assert_eq!((r.status, r.code(), r.field()), (422, "invalid", "value"));
    let r = s.create("/settings/nope.nope", json!({"value": 1})).await;
    assert_eq!((r.status, r.field()), (422, "key"));
    let r = s
        .create("/settings/order.auto_close_minutes", json!({"value": 5000}))
        .await;
    assert_eq!((r.status, r.field()), (422, "value"));
    let r = s
        .create("/settings/custom.banner", json!({"value": 1.5}))
        .await;
    assert_eq!((r.status, r.field()), (422, "value"));
    let r = s
        .create("/settings/custom.banner", json!({"value": "Double points"}))
        .await;
    assert_eq!(r.status, 201);
    // Aliases resolve to the current key.
    let r = s
        .create("/settings/receipt.footer_text", json!({"value": "Thanks!"}))
        .await;
    assert_eq!(
        (r.status, r.body["key"].as_str()),
        (201, Some("receipt.footer"))
    );

    // A body that is not `{"value": …}`: 422 about the body as a whole,
    // with no `field` (regression: `"field": ""` once the error type was
    // shared between the services).
    let r = s.create("/settings/custom.banner", json!(["x"])).await;
    assert_eq!((r.status, r.code()), (422, "invalid"));
    assert!(r.body["error"].get("field").is_none(), "{}", r.body);

    // Malformed JSON: 400.
    let r = Server::send(
        s.request(Method::PUT, "/settings/locale")
            .header("If-None-Match", "*")
            .body("{not json"),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));

    // A key named twice: 400 naming it, nothing written (issue #21 item 6;
    // serde_json alone would take the last one).
    let r = Server::send(
        s.request(Method::PUT, "/settings/locale")
            .header("If-None-Match", "*")
            .header("Content-Type", "application/json")
            .body(r#"{"value": "en-US", "value": "fr-FR"}"#),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("duplicate key \"value\""), "{}", r.body);
    assert_eq!(
        s.get("/settings/locale").await.status,
        404,
        "nothing written"
    );

    // Delete needs the version.
    let r = Server::send(s.request(Method::DELETE, "/settings/tax.rounding")).await;
    assert_eq!(r.status, 428);
    let r = s.delete("/settings/tax.rounding", v1).await;
    assert_eq!(r.status, 412);
    let r = s.delete("/settings/tax.rounding", v2).await;
    assert_eq!(r.status, 204);
    assert_eq!(s.get("/settings/tax.rounding").await.status, 404);
    assert_eq!(s.delete("/settings/tax.rounding", v2).await.status, 404);

    // Re-created: a fresh version, never one used before.
    let r = s
        .create("/settings/tax.rounding", json!({"value": "half_up"}))
        .await;
    assert!(r.version() > v2 + 1);
}

#[tokio::test]
async fn menu_entities_round_trip_with_versions() {
    let s = Server::start();
    seed_example(&s).await;

    // Items carry their variations, groups their modifiers, as POS-MODEL.
    let item = s.get("/menu/items/classic-burger").await;
    assert_eq!(item.status, 200);
    assert_eq!(item.body["variations"][1]["id"], "classic-double");
    assert_eq!(item.body["variations"][0]["sku"], "BRG-001");
    assert!(item.body.get("local_override").is_none());
    let group = s.get("/menu/modifier-groups/addons").await;
    assert_eq!(group.body["modifiers"][0]["price"], 200);

    // GET → edit → PUT the answer back (version in the body is ignored).
    let mut body = item.body.clone();
    body["variations"][0]["price"] = json!(1199);
    let r = s
        .update("/menu/items/classic-burger", item.version(), body)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.version() > item.version());
    assert_eq!(r.body["variations"][0]["price"], 1199);

    // /state answers every domain with versions, lists sorted by id.
    let st = s.get("/state").await;
    assert_eq!(st.status, 200);
    let items = st.body["menu"]["items"].as_array().unwrap();
    assert_eq!(items[0]["id"], "classic-burger");
    assert_eq!(items[0]["version"], r.version());
    assert_eq!(items[1]["id"], "soda");
    assert_eq!(st.body["kitchen"]["routing"]["default"], json!(["grill"]));
    assert_eq!(st.body["kitchen"]["stations"].as_array().unwrap().len(), 2);
    assert!(st.body["settings"].is_object() && st.body["access"]["users"].is_array());
    assert!(st.body["version"].as_u64().unwrap() >= r.version());
    let menu_only = s.get("/state?domain=menu").await;
    assert!(menu_only.body.get("kitchen").is_none());
    assert_eq!(menu_only.body["menu"], st.body["menu"]);
    let r = s.get("/state?domain=nope").await;
    assert_eq!((r.status, r.field()), (400, "domain"));

    // Every menu kind: get, 404, delete.
    for (path, id) in [
        ("/menu/discounts", "two-off"),
        ("/menu/items", "soda"),
        ("/menu/taxes", "nope"),
    ] {
        let url = format!("{path}/{id}");
        let cur = s.get(&url).await;
        if id == "nope" {
            assert_eq!((cur.status, cur.code()), (404, "not_found"));
            continue;
        }
        assert_eq!(s.delete(&url, cur.version()).await.status, 204);
        assert_eq!(s.get(&url).await.status, 404);
    }
}

#[tokio::test]
async fn every_entity_route_creates_reads_updates_and_deletes() {
    let s = Server::start();
    // In dependency order; deleted in reverse.
    let entities = [
        (
            "/settings/receipt.header",
            json!({"value": "Welcome"}),
            json!({"value": "Hello"}),
        ),
        (
            "/menu/taxes/vat",
            json!({"id": "vat", "name": "VAT", "rate": "20", "inclusion": "inclusive"}),
            json!({"id": "vat", "name": "VAT", "rate": "19", "inclusion": "inclusive"}),
        ),
        (
            "/menu/categories/mains",
            json!({"id": "mains", "name": "Mains"}),
            json!({"id": "mains", "name": "Main courses", "sort": 5}),
        ),
        (
            "/menu/modifier-groups/sides",
            json!({"id": "sides", "name": "Sides", "min": 1, "max": 1,
            "modifiers": [{"id": "chips", "name": "Chips", "default": true}, {"id": "salad", "name": "Salad", "price": 50}]}),
            json!({"id": "sides", "name": "Sides", "min": 0, "max": 2,
            "modifiers": [{"id": "chips", "name": "Chips", "price": 0}, {"id": "salad", "name": "Salad", "price": 75}]}),
        ),
        (
            "/stations/pass",
            json!({"id": "pass", "name": "Pass", "kind": "kds"}),
            json!({"id": "pass", "name": "The Pass", "kind": "printer"}),
        ),
        (
            "/menu/items/steak",
            json!({"id": "steak", "name": "Steak", "category": "mains", "taxes": ["vat"],
            "modifier_groups": ["sides"], "stations": ["pass"],
            "variations": [{"id": "steak-200", "name": "200 g", "price": 2200}]}),
            json!({"id": "steak", "name": "Steak", "category": "mains", "description": "Grass fed",
            "variations": [{"id": "steak-200", "name": "200 g", "price": 2400}, {"id": "steak-300", "name": "300 g", "price": 3100}]}),
        ),
        (
            "/menu/discounts/staff",
            json!({"id": "staff", "name": "Staff", "kind": "percent", "rate": "50", "requires": "discount.restricted"}),
            json!({"id": "staff", "name": "Staff", "kind": "amount", "amount": 500}),
        ),
        (
            "/roles/waiter",
            json!({"id": "waiter", "name": "Waiter", "level": 10, "permissions": ["order.create"]}),
            json!({"id": "waiter", "name": "Waiter", "level": 20, "permissions": ["order.create", "order.settle"]}),
        ),
        (
            "/users/kim",
            json!({"id": "kim", "name": "Kim", "role": "waiter"}),
            json!({"id": "kim", "name": "Kim Lee", "role": "waiter",
                "pin_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"}),
        ),
        (
            "/devices/pass-kds",
            json!({"id": "pass-kds", "station": "pass", "type": "kds", "address": "10.0.1.9:8080"}),
            json!({"id": "pass-kds", "station": "pass", "type": "star_net", "address": "10.0.1.9:9100"}),
        ),
    ];
    let mut last_version = 0;
    for (path, first, second) in &entities {
        let created = s.create(path, first.clone()).await;
        assert_eq!(created.status, 201, "{path}: {:?}", created.body);
        assert!(created.version() > last_version, "versions only grow");
        let got = s.get(path).await;
        assert_eq!((got.status, &got.body), (200, &created.body), "{path}");
        let updated = s.update(path, created.version(), second.clone()).await;
        assert_eq!(updated.status, 200, "{path}: {:?}", updated.body);
        assert!(updated.version() > created.version());
        // The stored body is the POS-MODEL body sent, plus version (and local_override).
        let mut expect = second.clone();
        if let Some(o) = expect.as_object_mut() {
            if path.starts_with("/settings/") {
                o.insert("key".into(), json!(path.trim_start_matches("/settings/")));
            }
            o.insert("version".into(), json!(updated.version()));
            if path.starts_with("/users/") || path.starts_with("/roles/") {
                o.insert("local_override".into(), json!(false));
            }
        }
        assert_eq!(s.get(path).await.body, expect, "{path}");
        last_version = updated.version();
    }
    let state = s.get("/state").await.body;
    assert_eq!(state["settings"]["receipt.header"]["value"], "Hello");
    assert_eq!(
        state["menu"]["modifier_groups"][0]["modifiers"][1]["price"],
        75
    );
    assert_eq!(state["access"]["users"][0]["name"], "Kim Lee");
    assert_eq!(state["kitchen"]["devices"][0]["type"], "star_net");
    assert_eq!(state["version"], last_version);
    for (path, _, _) in entities.iter().rev() {
        let cur = s.get(path).await;
        let r = s.delete(path, cur.version()).await;
        assert_eq!(r.status, 204, "{path}: {:?}", r.body);
        assert_eq!(s.get(path).await.status, 404, "{path}");
    }
    let audit = s.audit().await;
    assert_eq!(audit.len(), entities.len() * 3);
    assert!(audit.iter().all(|e| e["actor"] == "local:admin"));
    assert_eq!(s.get("/audit/verify").await.body["ok"], true);
}

#[tokio::test]
async fn business_rules_answer_409_and_422_naming_the_problem() {
    let s = Server::start();
    seed_example(&s).await;

    // An item's category, taxes, groups and stations must exist.
    for (field, patch, missing) in [
        ("category", json!({"category": "pizza"}), "pizza"),
        ("taxes", json!({"taxes": ["vat"]}), "vat"),
        (
            "modifier_groups",
            json!({"modifier_groups": ["sauces"]}),
            "sauces",
        ),
        ("stations", json!({"stations": ["fryer"]}), "fryer"),
    ] {
        let mut body = json!({"id": "fries", "name": "Fries", "category": "burgers",
            "variations": [{"id": "fries-r", "name": "Regular", "price": 399}]});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = s.create("/menu/items/fries", body).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (409, "missing_reference", field),
            "{:?}",
            r.body
        );
        assert!(r.message().contains(missing), "{}", r.message());
    }
    assert_eq!(s.get("/menu/items/fries").await.status, 404);

    // A category with items cannot be deleted: the message names them.
    let cat = s.get("/menu/categories/burgers").await;
    let r = s.delete("/menu/categories/burgers", cat.version()).await;
    assert_eq!((r.status, r.code()), (409, "in_use"));
    assert!(r.message().contains("classic-burger"), "{}", r.message());
    // …nor one routing uses; a tax or group an item uses; a station with routes or devices.
    let drinks = s.get("/menu/categories/drinks").await;
    let soda = s.get("/menu/items/soda").await;
    assert_eq!(
        s.delete("/menu/items/soda", soda.version()).await.status,
        204
    );
    let r = s.delete("/menu/categories/drinks", drinks.version()).await;
    assert_eq!(r.status, 409);
    assert!(r.message().contains("routing"), "{}", r.message());
    let tax = s.get("/menu/taxes/sales-tax").await;
    assert_eq!(
        s.delete("/menu/taxes/sales-tax", tax.version())
            .await
            .status,
        409
    );
    let g = s.get("/menu/modifier-groups/addons").await;
    assert_eq!(
        s.delete("/menu/modifier-groups/addons", g.version())
            .await
            .status,
        409
    );
    s.must_create(
        "/devices/bar-kds-1",
        json!({"id": "bar-kds-1", "station": "bar", "type": "kds", "address": "10.0.1.40:8080"}),
    )
    .await;
    let bar = s.get("/stations/bar").await;
    let r = s.delete("/stations/bar", bar.version()).await;
    assert_eq!(r.status, 409);
    assert!(
        r.message().contains("bar-kds-1") && r.message().contains("routing"),
        "{}",
        r.message()
    );
    let r = s
        .create(
            "/devices/x",
            json!({"id": "x", "station": "nowhere", "type": "kds", "address": "a"}),
        )
        .await;
    assert_eq!((r.status, r.field()), (409, "station"));

    // Value checks: 422 naming the field.
    let cases = [
        (
            "/menu/items/bad",
            json!({"id": "bad", "name": "B", "category": "burgers",
            "variations": [{"id": "bad-1", "name": "1", "price": -1}]}),
            "variations[0].price",
        ),
        (
            "/menu/items/bad",
            json!({"id": "bad", "name": "B", "category": "burgers",
            "variations": [{"id": "bad-1", "name": "1", "price": 1_000_000_000_000u64}]}),
            "variations[0].price",
        ),
        (
            "/menu/items/bad",
            json!({"id": "bad", "name": "B", "category": "burgers",
            "variations": [{"id": "bad-1", "name": "1", "price": 10.5}]}),
            "variations[0].price",
        ),
        (
            "/menu/items/bad",
            json!({"id": "bad", "name": "B", "category": "burgers", "variations": []}),
            "variations",
        ),
        (
            "/menu/items/bad",
            json!({"id": "other", "name": "B", "category": "burgers",
            "variations": [{"id": "bad-1", "name": "1", "price": 1}]}),
            "id",
        ),
        (
            "/menu/items/bad",
            json!({"id": "bad", "name": "B", "category": "burgers", "colour": "red",
            "variations": [{"id": "bad-1", "name": "1", "price": 1}]}),
            "colour",
        ),
        (
            "/menu/taxes/vat",
            json!({"id": "vat", "name": "VAT", "rate": "100.5", "inclusion": "inclusive"}),
            "rate",
        ),
        (
            "/menu/taxes/vat",
            json!({"id": "vat", "name": "VAT", "rate": 20, "inclusion": "inclusive"}),
            "rate",
        ),
        (
            "/menu/taxes/vat",
            json!({"id": "vat", "name": "VAT", "rate": "20", "inclusion": "sometimes"}),
            "inclusion",
        ),
        (
            "/menu/modifier-groups/g",
            json!({"id": "g", "name": "G", "min": 2, "max": 1,
            "modifiers": [{"id": "m1", "name": "1"}, {"id": "m2", "name": "2"}]}),
            "min",
        ),
        (
            "/menu/modifier-groups/g",
            json!({"id": "g", "name": "G", "max": 1, "modifiers": []}),
            "modifiers",
        ),
        (
            "/menu/discounts/d",
            json!({"id": "d", "name": "D", "kind": "percent", "rate": "0"}),
            "rate",
        ),
        (
            "/menu/discounts/d",
            json!({"id": "d", "name": "D", "kind": "amount"}),
            "amount",
        ),
        (
            "/menu/discounts/d",
            json!({"id": "d", "name": "D", "kind": "amount", "amount": 5, "requires": "nope"}),
            "requires",
        ),
        (
            "/roles/r",
            json!({"id": "r", "name": "R", "permissions": ["order.fly"]}),
            "permissions[0]",
        ),
        (
            "/users/u",
            json!({"id": "u", "name": "U", "role": "cashier", "pin": "1234"}),
            "pin",
        ),
        (
            "/users/u",
            json!({"id": "u", "name": "U", "role": "cashier", "stores": ["*"]}),
            "stores",
        ),
        (
            "/users/u",
            json!({"id": "u", "name": "U", "role": "cashier", "pin_hash": "plain"}),
            "pin_hash",
        ),
        (
            "/menu/categories/Bad",
            json!({"id": "Bad", "name": "B"}),
            "id",
        ),
    ];
    for (path, body, field) in cases {
        let r = s.create(path, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid"),
            "{path} {body}: {:?}",
            r.body
        );
        assert_eq!(r.field(), field, "{path} {body}: {:?}", r.body);
        assert!(!r.message().is_empty());
    }

    // A user's role must exist (409); roles used by users or inherited cannot go.
    let r = s
        .create(
            "/users/sam",
            json!({"id": "sam", "name": "Sam", "role": "cashier"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (409, "missing_reference", "role")
    );
    s.must_create(
        "/roles/cashier",
        json!({"id": "cashier", "name": "Cashier", "level": 10,
            "permissions": ["order.create", "order.settle", "discount.apply"]}),
    )
    .await;
    s.must_create(
        "/roles/manager",
        json!({"id": "manager", "name": "Manager", "level": 50, "inherits": ["cashier"],
            "permissions": ["order.void"]}),
    )
    .await;
    let user = s
        .must_create(
            "/users/sam",
            json!({"id": "sam", "name": "Sam", "role": "cashier",
                "pin_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"}),
        )
        .await;
    assert_eq!(user["local_override"], false);
    assert!(user["pin_hash"].as_str().unwrap().starts_with("$argon2id$"));
    let cashier = s.get("/roles/cashier").await;
    let r = s.delete("/roles/cashier", cashier.version()).await;
    assert_eq!(r.status, 409);
    assert!(
        r.message().contains("sam") && r.message().contains("manager"),
        "{}",
        r.message()
    );
    // Inheritance cycles are refused.
    let r = s
        .update(
            "/roles/cashier",
            cashier.version(),
            json!({"id": "cashier", "name": "Cashier", "inherits": ["manager"]}),
        )
        .await;
    assert_eq!((r.status, r.field()), (422, "inherits"), "{:?}", r.body);

    // A variation id belongs to one item only.
    let r = s
        .create(
            "/menu/items/burger-2",
            json!({"id": "burger-2", "name": "B2", "category": "burgers",
                "variations": [{"id": "classic-single", "name": "S", "price": 1}]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "duplicate"), "{:?}", r.body);
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    let s = Server::start();
    seed_example(&s).await;
    let state_before = s.get("/state").await.body;
    let audit_before = s.audit().await.len();
    let tax = s.get("/menu/taxes/sales-tax").await;

    // Op 2 references a missing category: nothing at all is applied.
    let r = s
        .post(
            "/menu/batch",
            json!({"ops": [
                {"op": "upsert", "kind": "tax", "id": "sales-tax", "if_match": tax.version(),
                 "body": {"id": "sales-tax", "name": "Sales Tax", "rate": "8.875", "inclusion": "exclusive"}},
                {"op": "upsert", "kind": "category", "id": "sides", "if_none_match": "*",
                 "body": {"id": "sides", "name": "Sides"}},
                {"op": "upsert", "kind": "item", "id": "fries", "if_none_match": "*",
                 "body": {"id": "fries", "name": "Fries", "category": "snacks",
                          "variations": [{"id": "fries-r", "name": "R", "price": 399}]}}
            ]}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "missing_reference"),
        "{:?}",
        r.body
    );
    assert_eq!(r.field(), "ops[2].body.category");
    assert!(
        r.message().starts_with("op 2 (item `fries`)"),
        "{}",
        r.message()
    );
    assert_eq!(s.get("/state").await.body, state_before);
    assert_eq!(s.audit().await.len(), audit_before);
    assert_eq!(s.get("/menu/categories/sides").await.status, 404);

    // A stale if_match in op 1: 412, nothing applied.
    let r = s
        .post(
            "/menu/batch",
            json!({"ops": [
                {"op": "upsert", "kind": "category", "id": "sides", "if_none_match": "*",
                 "body": {"id": "sides", "name": "Sides"}},
                {"op": "upsert", "kind": "tax", "id": "sales-tax", "if_match": tax.version() + 1000,
                 "body": {"id": "sales-tax", "name": "Sales Tax", "rate": "8.875", "inclusion": "exclusive"}}
            ]}),
        )
        .await;
    assert_eq!((r.status, r.field()), (412, "ops[1].if_match"));
    // A bad value in op 1: 422 naming it.
    let r = s
        .post(
            "/menu/batch",
            json!({"ops": [
                {"op": "upsert", "kind": "category", "id": "sides", "if_none_match": "*",
                 "body": {"id": "sides", "name": "Sides"}},
                {"op": "upsert", "kind": "item", "id": "fries", "if_none_match": "*",
                 "body": {"id": "fries", "name": "Fries", "category": "sides",
                          "variations": [{"id": "fries-r", "name": "R", "price": -5}]}}
            ]}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (422, "ops[1].body.variations[0].price")
    );
    // Deleting something still referenced, and a kind that is not menu.
    let cat = s.get("/menu/categories/burgers").await;
    let r = s
        .post(
            "/menu/batch",
            json!({"ops": [{"op": "delete", "kind": "category", "id": "burgers", "if_match": cat.version()}]}),
        )
        .await;
    assert_eq!((r.status, r.code(), r.field()), (409, "in_use", "ops[0]"));
    let r = s
        .post(
            "/menu/batch",
            json!({"ops": [{"op": "delete", "kind": "user", "id": "x", "if_match": 1}]}),
        )
        .await;
    assert_eq!((r.status, r.field()), (422, "ops[0].kind"));
    assert_eq!(s.get("/state").await.body, state_before);
    assert_eq!(s.audit().await.len(), audit_before);

    // Order inside a batch does not matter for references (checked at the end),
    // and every op answers its resulting version.
    let r = s
        .post(
            "/menu/batch",
            json!({"ops": [
                {"op": "upsert", "kind": "item", "id": "fries", "if_none_match": "*",
                 "body": {"id": "fries", "name": "Fries", "category": "sides",
                          "variations": [{"id": "fries-r", "name": "R", "price": 399}]}},
                {"op": "upsert", "kind": "category", "id": "sides", "if_none_match": "*",
                 "body": {"id": "sides", "name": "Sides"}},
                {"op": "upsert", "kind": "tax", "id": "sales-tax", "if_match": tax.version(),
                 "body": {"id": "sales-tax", "name": "Sales Tax", "rate": "8.875", "inclusion": "exclusive"}},
                {"op": "delete", "kind": "discount", "id": "two-off",
                 "if_match": s.get("/menu/discounts/two-off").await.version()}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let results = r.body["results"].as_array().unwrap();
    let versions: Vec<u64> = results[..3]
        .iter()
        .map(|x| x["version"].as_u64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert_eq!(results[0]["result"], "created");
    assert_eq!(results[2]["result"], "updated");
    assert_eq!(
        results[3],
        json!({"kind": "discount", "id": "two-off", "result": "deleted", "version": null})
    );
    assert_eq!(s.get("/menu/items/fries").await.version(), versions[0]);
    assert_eq!(s.audit().await.len(), audit_before + 4);
    let v = s.get("/audit/verify").await;
    assert_eq!(v.body["ok"], true);
}

#[tokio::test]
async fn batch_ops_see_the_ops_before_them() {
    let s = Server::start();
    let item = |id: &str, variation: &str| {
        json!({"id": id, "name": id, "category": "c1",
            "variations": [{"id": variation, "name": variation, "price": 100}]})
    };
    let r = s
        .post(
            "/menu/batch",
            json!({"ops": [
                {"op": "upsert", "kind": "category", "id": "c1", "if_none_match": "*", "body": {"id": "c1", "name": "C1"}},
                {"op": "upsert", "kind": "item", "id": "a", "if_none_match": "*", "body": item("a", "v")}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let a = s.get("/menu/items/a").await.version();

    // A variation moves from item a to item b within one batch, in either order.
    let r = s
        .post(
            "/menu/batch",
            json!({"ops": [
                {"op": "upsert", "kind": "item", "id": "b", "if_none_match": "*", "body": item("b", "v")},
                {"op": "upsert", "kind": "item", "id": "a", "if_match": a, "body": item("a", "w")}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let o = s
        .post("/orders", json!({"lines": [{"variation": "v"}]}))
        .await;
    assert_eq!(o.status, 201);

    // Create, update and delete one entity in one batch: each op sees the one before.
    let base = s.get("/state").await.body["version"].as_u64().unwrap();
    let tax = |rate: &str| json!({"id": "t", "name": "T", "rate": rate, "inclusion": "exclusive"});
    let r = s
        .post(
            "/menu/batch",
            json!({"ops": [
                {"op": "upsert", "kind": "tax", "id": "t", "if_none_match": "*", "body": tax("5")},
                {"op": "upsert", "kind": "tax", "id": "t", "if_match": base + 1, "body": tax("6")},
                {"op": "delete", "kind": "tax", "id": "t", "if_match": base + 2},
                {"op": "upsert", "kind": "tax", "id": "t", "if_none_match": "*", "body": tax("7")}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let t = s.get("/menu/taxes/t").await;
    assert_eq!(
        (t.body["rate"].as_str(), t.version()),
        (Some("7"), base + 4)
    );
    let audit = s.audit().await;
    let actions: Vec<&str> = audit
        .iter()
        .filter(|e| e["entity_id"] == "t")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update", "delete", "create"]);

    // A category and its items deleted together, category first.
    let st = s.get("/state?domain=menu").await.body;
    let v = |i: usize| st["menu"]["items"][i]["version"].as_u64().unwrap();
    let r = s
        .post(
            "/menu/batch",
            json!({"ops": [
                {"op": "delete", "kind": "category", "id": "c1",
                 "if_match": st["menu"]["categories"][0]["version"]},
                {"op": "delete", "kind": "item", "id": "a", "if_match": v(0)},
                {"op": "delete", "kind": "item", "id": "b", "if_match": v(1)}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        s.get("/state?domain=menu").await.body["menu"]["items"],
        json!([])
    );
    let o = s
        .post("/orders", json!({"lines": [{"variation": "v"}]}))
        .await;
    assert_eq!((o.status, o.field()), (422, "lines[0].variation"));
    assert_eq!(s.get("/audit/verify").await.body["ok"], true);
}

#[tokio::test]
async fn concurrent_if_match_writers_get_one_winner_per_version() {
    let s = std::sync::Arc::new(Server::start());
    let created = s
        .must_create(
            "/menu/categories/race",
            json!({"id": "race", "name": "start"}),
        )
        .await;
    let first = created["version"].as_u64().unwrap();
    const TASKS: usize = 8;
    const WINS_EACH: usize = 5;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            let mut conflicts = 0;
            while wins.len() < WINS_EACH {
                let cur = s.get("/menu/categories/race").await.version();
                let r = s
                    .update(
                        "/menu/categories/race",
                        cur,
                        json!({"id": "race", "name": format!("task {t} write {}", wins.len())}),
                    )
                    .await;
                match r.status {
                    200 => wins.push((cur, r.version())),
                    412 => conflicts += 1,
                    other => panic!("unexpected {other}: {:?}", r.body),
                }
            }
            (wins, conflicts)
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        let (wins, _conflicts) = h.await.unwrap();
        all.extend(wins);
    }
    assert_eq!(all.len(), TASKS * WINS_EACH);
    // Exactly one winner per version: every If-Match that won is distinct,
    // and the wins form one chain from the first version to the last.
    all.sort();
    let mut expected = first;
    for (if_match, new_version) in &all {
        assert_eq!(*if_match, expected, "chain broken at {if_match}: {all:?}");
        assert!(*new_version > *if_match);
        expected = *new_version;
    }
    let last = s.get("/menu/categories/race").await;
    assert_eq!(last.version(), expected);
    let entries: Vec<Value> = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e["entity_id"] == "race")
        .collect();
    assert_eq!(entries.len(), 1 + TASKS * WINS_EACH);
    for (e, (if_match, v)) in entries[1..].iter().zip(&all) {
        assert_eq!(e["before"]["version"].as_u64(), Some(*if_match));
        assert_eq!(e["version"].as_u64(), Some(*v));
    }
    assert_eq!(s.get("/audit/verify").await.body["ok"], true);
}

#[tokio::test]
async fn local_override_and_actors_are_recorded() {
    let s = Server::start();
    s.must_create(
        "/roles/cashier",
        json!({"id": "cashier", "name": "Cashier", "permissions": ["order.create"]}),
    )
    .await;
    // The reconciler writes with its revision and commit.
    let r = Server::send(
        s.request(Method::PUT, "/users/sam")
            .header("If-None-Match", "*")
            .header("X-Fleet-Revision", "18")
            .header("X-Fleet-Commit", "3f2c9a")
            .json(&json!({"id": "sam", "name": "Sam", "role": "cashier"})),
    )
    .await;
    assert_eq!(r.status, 201);
    let v1 = r.version();

    // The manager sets the override locally.
    let r = Server::send(
        s.request(Method::POST, "/users/sam/override")
            .header("X-Fleet-Actor", "local:jane")
            .json(&json!({"local_override": true})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["local_override"], true);
    let v2 = r.version();
    assert!(v2 > v1);
    assert_eq!(s.get("/users/sam").await.body["local_override"], true);
    assert_eq!(
        s.get("/state?domain=access").await.body["access"]["users"][0]["local_override"],
        true
    );

    // The reconciler may neither write the overridden user nor toggle overrides.
    let r = Server::send(
        s.request(Method::PUT, "/users/sam")
            .header("If-Match", v2.to_string())
            .header("X-Fleet-Revision", "19")
            .header("X-Fleet-Commit", "4a1b")
            .json(&json!({"id": "sam", "name": "Samuel", "role": "cashier"})),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "locally_overridden"));
    let r = Server::send(
        s.request(Method::POST, "/roles/cashier/override")
            .header("X-Fleet-Revision", "19")
            .header("X-Fleet-Commit", "4a1b")
            .json(&json!({"local_override": true})),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "override_is_local"));
    // A local edit is fine, and keeps the override.
    let r = s
        .update(
            "/users/sam",
            v2,
            json!({"id": "sam", "name": "Samuel", "role": "cashier"}),
        )
        .await;
    assert_eq!((r.status, &r.body["local_override"]), (200, &json!(true)));

    // Roles too; clearing hands the entity back.
    let r = s
        .post("/roles/cashier/override", json!({"local_override": true}))
        .await;
    assert_eq!((r.status, &r.body["local_override"]), (200, &json!(true)));
    let r = s
        .post("/users/sam/override", json!({"local_override": false}))
        .await;
    assert_eq!(r.body["local_override"], false);
    let r = s
        .post("/users/nobody/override", json!({"local_override": true}))
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .post("/users/sam/override", json!({"local_override": "yes"}))
        .await;
    assert_eq!((r.status, r.field()), (422, "local_override"));

    // Bad actor headers are refused, never taken as the reconciler.
    let r = Server::send(
        s.request(Method::POST, "/users/sam/override")
            .header("X-Fleet-Actor", "reconciler")
            .json(&json!({"local_override": true})),
    )
    .await;
    assert_eq!((r.status, r.field()), (400, "X-Fleet-Actor"));
    // Nor as a staff member, whose actor only a checked PIN makes.
    let r = Server::send(
        s.request(Method::POST, "/users/sam/override")
            .header("X-Fleet-Actor", "staff:jane@register-1")
            .json(&json!({"local_override": true})),
    )
    .await;
    assert_eq!((r.status, r.field()), (400, "X-Fleet-Actor"));
    let r = Server::send(
        s.request(Method::POST, "/users/sam/override")
            .header("X-Fleet-Revision", "19")
            .json(&json!({"local_override": true})),
    )
    .await;
    assert_eq!(r.status, 400);

    let audit = s.audit().await;
    let sam: Vec<&Value> = audit.iter().filter(|e| e["entity_id"] == "sam").collect();
    assert_eq!(sam[0]["actor"], "reconciler");
    assert_eq!(sam[0]["revision"], 18);
    assert_eq!(sam[0]["commit"], "3f2c9a");
    assert_eq!(sam[0]["action"], "create");
    assert_eq!(sam[0]["before"], Value::Null);
    assert_eq!(sam[0]["domain"], "access");
    assert_eq!(sam[0]["kind"], "user");
    assert_eq!(sam[1]["actor"], "local:jane");
    assert_eq!(sam[1]["action"], "override");
    assert_eq!(sam[1]["before"]["local_override"], false);
    assert_eq!(sam[1]["after"]["local_override"], true);
    assert_eq!(sam[1]["revision"], Value::Null);
    assert_eq!(sam[2]["actor"], "local:admin");
    let roles: Vec<&Value> = audit
        .iter()
        .filter(|e| e["entity_id"] == "cashier" && e["action"] == "override")
        .collect();
    assert_eq!(roles.len(), 1);
    // Paging: after and limit.
    let page = s.get("/audit?after=1&limit=2").await;
    let seqs: Vec<u64> = page.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3]);
    assert_eq!(page.body["next_after"], 3);
    let r = s.get("/audit?after=x").await;
    assert_eq!((r.status, r.field()), (400, "after"));
    assert_eq!(
        s.get("/audit/verify").await.body,
        json!({"ok": true, "entries": audit.len()})
    );
}

#[tokio::test]
async fn kitchen_routes_and_sigterm() {
    let s = Server::start();
    let r = s.get("/routing").await;
    assert_eq!(
        r.body,
        json!({"default": [], "categories": {}, "version": 0})
    );
    s.must_create(
        "/stations/grill",
        json!({"id": "grill", "name": "Grill", "kind": "printer"}),
    )
    .await;
    let r = s
        .update(
            "/routing",
            0,
            json!({"default": ["grill"], "categories": {"nope": ["grill"]}}),
        )
        .await;
    assert_eq!((r.status, r.field()), (409, "categories.nope"));
    let r = s.update("/routing", 0, json!({"default": ["fryer"]})).await;
    assert_eq!((r.status, r.field()), (409, "default"));
    let r = s.update("/routing", 0, json!({"default": ["grill"]})).await;
    assert_eq!(r.status, 201);
    let v = r.version();
    let r = Server::send(
        s.request(Method::PUT, "/routing")
            .json(&json!({"default": []})),
    )
    .await;
    assert_eq!(r.status, 428);
    let r = s.update("/routing", v, json!({"default": []})).await;
    assert_eq!(r.status, 200);
    let d = s
        .must_create(
            "/devices/grill-printer-1",
            json!({"id": "grill-printer-1", "station": "grill", "type": "escpos_net", "address": "10.0.1.21:9100"}),
        )
        .await;
    assert_eq!(s.get("/devices/grill-printer-1").await.body, d);
    assert_eq!(
        s.delete("/devices/grill-printer-1", d["version"].as_u64().unwrap())
            .await
            .status,
        204
    );
    let st = s.get("/stations/grill").await;
    assert_eq!(s.delete("/stations/grill", st.version()).await.status, 204);
    let status = s.stop();
    assert!(status.success(), "graceful stop on SIGTERM: {status:?}");
}
