//! Local-first orders against the real server: a table of pricing cases
//! (rounding edges, inclusive/exclusive/multiple taxes, modifiers, quantity,
//! discounts), ticket routing precedence, refusals, and orders staying as
//! priced when the menu changes. The rules: docs/decisions/0010-order-pricing.md.

#![allow(clippy::unwrap_used)]

use crate::common::{Server, seed_example};
use serde_json::{Value, json};

async fn pricing_menu(s: &Server) {
    for (id, rate, inclusion) in [
        ("t10", "10", "exclusive"),
        ("t5", "5", "exclusive"),
        ("t725", "7.25", "exclusive"),
        ("t8875", "8.875", "exclusive"),
        ("vat20", "20", "inclusive"),
    ] {
        s.must_create(
            &format!("/menu/taxes/{id}"),
            json!({"id": id, "name": id, "rate": rate, "inclusion": inclusion}),
        )
        .await;
    }
    s.must_create(
        "/menu/categories/food",
        json!({"id": "food", "name": "Food"}),
    )
    .await;
    s.must_create(
        "/menu/modifier-groups/addons",
        json!({"id": "addons", "name": "Add-ons", "min": 0, "max": 3, "modifiers": [
            {"id": "bacon", "name": "Bacon", "price": 200},
            {"id": "cheese", "name": "Cheese", "price": 100}]}),
    )
    .await;
    let items = [
        (
            "plain",
            json!([]),
            vec![("plain-1000", 1000), ("plain-105", 105), ("plain-0", 0)],
        ),
        (
            "ex10",
            json!(["t10"]),
            vec![("ex10-1000", 1000), ("ex10-25", 25), ("ex10-35", 35)],
        ),
        (
            "ex5",
            json!(["t5"]),
            vec![("ex5-10", 10), ("ex5-30", 30), ("ex5-50", 50)],
        ),
        ("multi", json!(["t10", "t5"]), vec![("multi-1000", 1000)]),
        (
            "inc",
            json!(["vat20"]),
            vec![("inc-1200", 1200), ("inc-3", 3)],
        ),
        ("mixed", json!(["vat20", "t10"]), vec![("mixed-1200", 1200)]),
        ("soda", json!(["t8875"]), vec![("soda-small", 199)]),
    ];
    for (id, taxes, variations) in items {
        let variations: Vec<Value> = variations
            .into_iter()
            .map(|(v, p)| json!({"id": v, "name": v, "price": p}))
            .collect();
        s.must_create(
            &format!("/menu/items/{id}"),
            json!({"id": id, "name": id, "category": "food", "taxes": taxes, "variations": variations}),
        )
        .await;
    }
    s.must_create(
        "/menu/items/burger",
        json!({"id": "burger", "name": "Burger", "category": "food", "taxes": ["t725"],
            "modifier_groups": ["addons"],
            "variations": [{"id": "classic-single", "name": "Single", "price": 1099}]}),
    )
    .await;
    for d in [
        json!({"id": "two-off", "name": "2 off", "kind": "amount", "amount": 200}),
        json!({"id": "big", "name": "Big", "kind": "amount", "amount": 100000}),
        json!({"id": "half", "name": "Half", "kind": "percent", "rate": "50"}),
    ] {
        let id = d["id"].as_str().unwrap().to_owned();
        s.must_create(&format!("/menu/discounts/{id}"), d).await;
    }
}

struct Case {
    name: &'static str,
    rounding: &'static str,
    lines: Value,
    discounts: Value,
    /// subtotal, discount_total, tax_total, total
    expect: (i64, i64, i64, i64),
}

fn case(
    name: &'static str,
    rounding: &'static str,
    lines: Value,
    discounts: Value,
    expect: (i64, i64, i64, i64),
) -> Case {
    Case {
        name,
        rounding,
        lines,
        discounts,
        expect,
    }
}

fn l(variation: &str, quantity: u64) -> Value {
    json!({"variation": variation, "quantity": quantity})
}

#[tokio::test]
async fn pricing_table() {
    let s = Server::start();
    pricing_menu(&s).await;
    let he = "half_even";
    let hu = "half_up";
    let cases = vec![
        case(
            "no tax",
            he,
            json!([l("plain-1000", 1)]),
            json!([]),
            (1000, 0, 0, 1000),
        ),
        case(
            "quantity",
            he,
            json!([l("plain-105", 3)]),
            json!([]),
            (315, 0, 0, 315),
        ),
        case(
            "free item",
            he,
            json!([l("plain-0", 5)]),
            json!([]),
            (0, 0, 0, 0),
        ),
        case(
            "exclusive 10%",
            he,
            json!([l("ex10-1000", 1)]),
            json!([]),
            (1000, 0, 100, 1100),
        ),
        case(
            "2.5 half_even → 2",
            he,
            json!([l("ex10-25", 1)]),
            json!([]),
            (25, 0, 2, 27),
        ),
        case(
            "2.5 half_up → 3",
            hu,
            json!([l("ex10-25", 1)]),
            json!([]),
            (25, 0, 3, 28),
        ),
        case(
            "3.5 half_even → 4",
            he,
            json!([l("ex10-35", 1)]),
            json!([]),
            (35, 0, 4, 39),
        ),
        case(
            "0.5 half_even → 0",
            he,
            json!([l("ex5-10", 1)]),
            json!([]),
            (10, 0, 0, 10),
        ),
        case(
            "0.5 half_up → 1",
            hu,
            json!([l("ex5-10", 1)]),
            json!([]),
            (10, 0, 1, 11),
        ),
        case(
            "1.5 both → 2",
            he,
            json!([l("ex5-30", 1)]),
            json!([]),
            (30, 0, 2, 32),
        ),
        case(
            "2.5 of 5% half_even",
            he,
            json!([l("ex5-50", 1)]),
            json!([]),
            (50, 0, 2, 52),
        ),
        case(
            "2.5 of 5% half_up",
            hu,
            json!([l("ex5-50", 1)]),
            json!([]),
            (50, 0, 3, 53),
        ),
        case(
            "two exclusive taxes",
            he,
            json!([l("multi-1000", 1)]),
            json!([]),
            (1000, 0, 150, 1150),
        ),
        case(
            "inclusive 20% only reported",
            he,
            json!([l("inc-1200", 1)]),
            json!([]),
            (1200, 0, 200, 1200),
        ),
        case(
            "inclusive 0.5 half_even",
            he,
            json!([l("inc-3", 1)]),
            json!([]),
            (3, 0, 0, 3),
        ),
        case(
            "inclusive 0.5 half_up",
            hu,
            json!([l("inc-3", 1)]),
            json!([]),
            (3, 0, 1, 3),
        ),
        case(
            "inclusive + exclusive on the net",
            he,
            json!([l("mixed-1200", 1)]),
            json!([]),
            (1200, 0, 300, 1300),
        ),
        case(
            "8.875%",
            he,
            json!([l("soda-small", 1)]),
            json!([]),
            (199, 0, 18, 217),
        ),
        case(
            "modifier and quantity",
            he,
            json!([{"variation": "classic-single", "quantity": 2, "modifiers": ["bacon"]}]),
            json!([]),
            (2598, 0, 188, 2786),
        ),
        case(
            "DESIGN.md example",
            he,
            json!([{"variation": "classic-single", "quantity": 2, "modifiers": ["bacon"]}]),
            json!(["two-off"]),
            (2598, 200, 174, 2572),
        ),
        case(
            "two modifiers, quantity 3",
            he,
            json!([{"variation": "classic-single", "quantity": 3, "modifiers": ["bacon", "cheese"]}]),
            json!([]),
            (4197, 0, 304, 4501),
        ),
        case(
            "percent discount",
            he,
            json!([l("ex10-1000", 1)]),
            json!(["half"]),
            (1000, 500, 50, 550),
        ),
        case(
            "amount discount split over two lines",
            he,
            json!([l("ex10-1000", 1), l("plain-1000", 1)]),
            json!(["two-off"]),
            (2000, 200, 90, 1890),
        ),
        case(
            "uneven split: largest remainder",
            he,
            json!([l("ex10-1000", 1), l("ex5-30", 1)]),
            json!(["two-off"]),
            (1030, 200, 82, 912),
        ),
        case(
            "discount larger than the order",
            he,
            json!([l("ex10-25", 1)]),
            json!(["big"]),
            (25, 25, 0, 0),
        ),
        case(
            "percent then amount",
            he,
            json!([l("ex10-1000", 1)]),
            json!(["half", "two-off"]),
            (1000, 700, 30, 330),
        ),
        case(
            "amount then percent",
            he,
            json!([l("ex10-1000", 1)]),
            json!(["two-off", "half"]),
            (1000, 600, 40, 440),
        ),
        case(
            "percent discount 52.5 half_even",
            he,
            json!([l("plain-105", 1)]),
            json!(["half"]),
            (105, 52, 0, 53),
        ),
        case(
            "percent discount 52.5 half_up",
            hu,
            json!([l("plain-105", 1)]),
            json!(["half"]),
            (105, 53, 0, 52),
        ),
        case(
            "inclusive tax after a discount",
            he,
            json!([l("inc-1200", 1)]),
            json!(["two-off"]),
            (1200, 200, 167, 1000),
        ),
    ];
    assert!(cases.len() >= 20);
    let mut rounding_version: Option<u64> = None;
    let mut current = "";
    for c in &cases {
        if c.rounding != current {
            let body = json!({"value": c.rounding});
            let r = match rounding_version {
                None => s.create("/settings/tax.rounding", body).await,
                Some(v) => s.update("/settings/tax.rounding", v, body).await,
            };
            assert!(r.status == 200 || r.status == 201, "{:?}", r.body);
            rounding_version = Some(r.version());
            current = c.rounding;
        }
        let r = s
            .post(
                "/orders",
                json!({"lines": c.lines, "discounts": c.discounts}),
            )
            .await;
        assert_eq!(r.status, 201, "{}: {:?}", c.name, r.body);
        let got = (
            r.body["subtotal"].as_i64().unwrap(),
            r.body["discount_total"].as_i64().unwrap(),
            r.body["tax_total"].as_i64().unwrap(),
            r.body["total"].as_i64().unwrap(),
        );
        assert_eq!(got, c.expect, "{}: {}", c.name, r.body);
        // Line totals add up to the subtotal; unit × quantity.
        let lines = r.body["lines"].as_array().unwrap();
        let sum: i64 = lines
            .iter()
            .map(|x| x["line_total"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, got.0, "{}", c.name);
        for x in lines {
            assert_eq!(
                x["line_total"].as_i64().unwrap(),
                x["unit_price"].as_i64().unwrap() * x["quantity"].as_i64().unwrap()
            );
        }
        // Stored as answered.
        let id = r.body["id"].as_str().unwrap();
        assert_eq!(s.get(&format!("/orders/{id}")).await.body, r.body);
    }
}

#[tokio::test]
async fn design_example_shape_and_routing_precedence() {
    let s = Server::start();
    seed_example(&s).await;
    // A third station and two more items to exercise every routing rule.
    s.must_create(
        "/stations/fry",
        json!({"id": "fry", "name": "Fryer", "kind": "kds"}),
    )
    .await;
    s.must_create(
        "/menu/items/fries",
        json!({"id": "fries", "name": "Fries", "category": "burgers", "stations": ["fry"],
            "variations": [{"id": "fries-r", "name": "R", "price": 399}]}),
    )
    .await;
    s.must_create(
        "/menu/items/shake",
        json!({"id": "shake", "name": "Shake", "category": "drinks", "stations": ["fry", "grill"],
            "variations": [{"id": "shake-r", "name": "R", "price": 499}]}),
    )
    .await;
    s.must_create(
        "/menu/categories/sides",
        json!({"id": "sides", "name": "Sides"}),
    )
    .await;
    s.must_create(
        "/menu/items/salad",
        json!({"id": "salad", "name": "Salad", "category": "sides",
            "variations": [{"id": "salad-r", "name": "R", "price": 599}]}),
    )
    .await;

    let r = s
        .post(
            "/orders",
            json!({"lines": [
                {"variation": "classic-single", "quantity": 2, "modifiers": ["bacon"]},
                {"variation": "soda-small", "quantity": 1},
                {"variation": "fries-r", "quantity": 1},
                {"variation": "shake-r", "quantity": 1},
                {"variation": "salad-r", "quantity": 1}
            ], "discounts": ["two-off"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["location"], format!("/orders/{id}").as_str());
    assert_eq!(
        r.body["lines"][0],
        json!({"variation": "classic-single", "quantity": 2, "modifiers": ["bacon"],
            "unit_price": 1299, "line_total": 2598})
    );
    assert_eq!(r.body["lines"][1]["modifiers"], json!([]));
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    for k in [
        "id",
        "lines",
        "subtotal",
        "discount_total",
        "tax_total",
        "total",
        "tickets",
    ] {
        assert!(keys.iter().any(|x| *x == k), "{k} missing");
    }
    // burger: category route? burgers has none → default grill. soda: item
    // station bar. fries: item station fry beats the (default) route. shake:
    // item stations beat the drinks → bar route. salad: default.
    let tickets = &r.body["tickets"];
    let by_station = |st: &str| -> Vec<String> {
        tickets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["station"] == st)
            .map(|t| {
                t["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x["variation"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        by_station("grill"),
        ["classic-single", "shake-r", "salad-r"]
    );
    assert_eq!(by_station("bar"), ["soda-small"]);
    assert_eq!(by_station("fry"), ["fries-r", "shake-r"]);
    assert_eq!(
        tickets[0]["lines"][0],
        json!({"variation": "soda-small", "quantity": 1, "modifiers": []})
    );

    // Category route beats the default once routing has one for burgers.
    let routing = s.get("/routing").await;
    let r2 = s
        .update(
            "/routing",
            routing.version(),
            json!({"default": ["grill"], "categories": {"drinks": ["bar"], "burgers": ["fry"]}}),
        )
        .await;
    assert_eq!(r2.status, 200);
    let o2 = s
        .post(
            "/orders",
            json!({"lines": [{"variation": "classic-double", "quantity": 1}]}),
        )
        .await;
    assert_eq!(
        o2.body["tickets"],
        json!([{"station": "fry", "lines": [
        {"variation": "classic-double", "quantity": 1, "modifiers": []}]}])
    );

    // GET /tickets?station= lists that station's tickets, oldest first.
    let t = s.get("/tickets?station=fry").await;
    let list = t.body["tickets"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["order"], id.as_str());
    assert_eq!(list[0]["station"], "fry");
    assert_eq!(list[1]["lines"][0]["variation"], "classic-double");
    assert_eq!(
        s.get("/tickets?station=bar").await.body["tickets"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.get("/tickets?station=none").await.body["tickets"],
        json!([])
    );

    // Orders are kept as priced: a later price change does not touch them.
    let burger = s.get("/menu/items/classic-burger").await;
    let mut body = burger.body.clone();
    body["variations"][0]["price"] = json!(5000);
    assert_eq!(
        s.update("/menu/items/classic-burger", burger.version(), body)
            .await
            .status,
        200
    );
    let again = s.get(&format!("/orders/{id}")).await;
    assert_eq!(again.body, r.body);
    assert_eq!(s.get("/orders/o-999999").await.status, 404);
}

#[tokio::test]
async fn orders_refuse_what_the_menu_does_not_have() {
    let s = Server::start();
    seed_example(&s).await;
    s.must_create(
        "/menu/modifier-groups/sauces",
        json!({"id": "sauces", "name": "Sauces", "max": 1, "modifiers": [
            {"id": "ketchup", "name": "Ketchup"}, {"id": "mayo", "name": "Mayo"}]}),
    )
    .await;
    for (body, field) in [
        (json!({"lines": []}), "lines"),
        (
            json!({"lines": [{"variation": "nope", "quantity": 1}]}),
            "lines[0].variation",
        ),
        (
            json!({"lines": [{"variation": "classic-single", "quantity": 0}]}),
            "lines[0].quantity",
        ),
        (
            json!({"lines": [{"variation": "classic-single", "quantity": -1}]}),
            "lines[0].quantity",
        ),
        (
            json!({"lines": [{"variation": "classic-single", "modifiers": ["bacon", "nope"]}]}),
            "lines[0].modifiers[1]",
        ),
        (
            json!({"lines": [{"variation": "classic-single", "modifiers": ["ketchup"]}]}),
            "lines[0].modifiers[0]",
        ),
        (
            json!({"lines": [{"variation": "classic-single", "modifiers": ["bacon", "bacon", "bacon", "bacon"]}]}),
            "lines[0].modifiers",
        ),
        (
            json!({"lines": [{"variation": "soda-small"}], "discounts": ["nope"]}),
            "discounts[0]",
        ),
        (
            json!({"lines": [{"variation": "soda-small"}], "discounts": ["two-off", "two-off"]}),
            "discounts[1]",
        ),
        (
            json!({"lines": [{"variation": "soda-small"}], "tip": 5}),
            "tip",
        ),
    ] {
        let r = s.post("/orders", body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid"),
            "{body}: {:?}",
            r.body
        );
        assert_eq!(r.field(), field, "{body}: {:?}", r.body);
    }
    assert_eq!(s.get("/tickets").await.body["tickets"], json!([]));
    // Orders never write the audit log.
    let before = s.audit().await.len();
    let r = s
        .post("/orders", json!({"lines": [{"variation": "soda-small"}]}))
        .await;
    assert_eq!(
        (r.status, r.body["lines"][0]["quantity"].as_u64()),
        (201, Some(1))
    );
    assert_eq!(s.audit().await.len(), before);
}

/// DESIGN.md §14's order rules over HTTP (issue #21 item 6): a required
/// group's defaults are applied and charged, a required group left short
/// is refused, an optional group's defaults are not forced, modifiers per
/// line and a group's `max` are bounded, `tax.rounding` defaults to
/// `half_up`, and `tax.rounding_scope: order` rounds each tax once.
#[tokio::test]
async fn order_rules_min_defaults_bounds_and_rounding_scope() {
    let s = Server::start();
    seed_example(&s).await;
    s.must_create(
        "/menu/modifier-groups/doneness",
        json!({"id": "doneness", "name": "Doneness", "min": 1, "max": 1, "modifiers": [
            {"id": "rare", "name": "Rare"},
            {"id": "medium", "name": "Medium", "price": 50, "default": true}]}),
    )
    .await;
    s.must_create(
        "/menu/modifier-groups/sauce",
        json!({"id": "sauce", "name": "Sauce", "min": 1, "max": 2, "modifiers": [
            {"id": "ketchup", "name": "Ketchup"}, {"id": "mayo", "name": "Mayo"}]}),
    )
    .await;
    s.must_create(
        "/menu/modifier-groups/extras",
        json!({"id": "extras", "name": "Extras", "min": 0, "max": 50, "modifiers": [
            {"id": "pickles", "name": "Pickles", "price": 25, "default": true},
            {"id": "onion", "name": "Onion", "price": 0}]}),
    )
    .await;
    let steak = |groups: Value| {
        json!({"id": "steak", "name": "Steak", "category": "burgers",
            "modifier_groups": groups, "stations": ["grill"],
            "variations": [{"id": "steak-8oz", "name": "8 oz", "price": 2000}]})
    };
    let created = s
        .must_create("/menu/items/steak", steak(json!(["doneness", "extras"])))
        .await;

    // The required doneness, not named: its priced default is applied,
    // charged and sent to the kitchen; the optional extras' default is not.
    let r = s
        .post("/orders", json!({"lines": [{"variation": "steak-8oz"}]}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["lines"][0]["modifiers"], json!(["medium"]));
    assert_eq!(r.body["lines"][0]["unit_price"], json!(2050));
    assert_eq!(
        r.body["tickets"][0]["lines"][0]["modifiers"],
        json!(["medium"])
    );
    // Named: the choice replaces the default.
    let r = s
        .post(
            "/orders",
            json!({"lines": [{"variation": "steak-8oz", "modifiers": ["rare", "onion"]}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["lines"][0]["modifiers"], json!(["rare", "onion"]));
    assert_eq!(r.body["lines"][0]["unit_price"], json!(2000));

    // A required group without defaults, not named: refused, naming it.
    let r = s
        .update(
            "/menu/items/steak",
            created["version"].as_u64().unwrap(),
            steak(json!(["doneness", "sauce", "extras"])),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let tickets_before = s.get("/tickets").await.body["tickets"].clone();
    let r = s
        .post("/orders", json!({"lines": [{"variation": "steak-8oz"}]}))
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid"), "{:?}", r.body);
    assert_eq!(r.field(), "lines[0].modifiers");
    assert!(
        r.message().contains("group `sauce`") && r.message().contains("ketchup, mayo"),
        "{}",
        r.message()
    );
    assert_eq!(s.get("/tickets").await.body["tickets"], tickets_before);

    // At most 50 modifiers on a line; a group's max at most 50.
    let many: Vec<&str> = std::iter::repeat_n("onion", 51).collect();
    let r = s
        .post(
            "/orders",
            json!({"lines": [{"variation": "steak-8oz", "modifiers": many}]}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (422, "lines[0].modifiers"),
        "{:?}",
        r.body
    );
    let r = s
        .create(
            "/menu/modifier-groups/endless",
            json!({"id": "endless", "name": "Endless", "min": 0, "max": 4_000_000_000u64,
                "modifiers": [{"id": "more", "name": "More"}]}),
        )
        .await;
    assert_eq!((r.status, r.field()), (422, "max"), "{:?}", r.body);

    // Rounding: half_up by default; `order` scope rounds each tax once.
    // 2 sodas at 1.99 with 7.25 %: one line 28.855 → 29; two lines
    // 14.4275 → 14 + 14 = 28 per line, 29 on the order.
    let two_sodas = |split: bool| {
        if split {
            json!({"lines": [{"variation": "soda-small"}, {"variation": "soda-small"}]})
        } else {
            json!({"lines": [{"variation": "soda-small", "quantity": 2}]})
        }
    };
    let tax = |r: &crate::common::Resp| r.body["tax_total"].as_i64().unwrap();
    assert_eq!(tax(&s.post("/orders", two_sodas(false)).await), 29);
    assert_eq!(tax(&s.post("/orders", two_sodas(true)).await), 28);
    let r = s
        .create("/settings/tax.rounding_scope", json!({"value": "order"}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(tax(&s.post("/orders", two_sodas(false)).await), 29);
    assert_eq!(tax(&s.post("/orders", two_sodas(true)).await), 29);
    // An exact half (10 at 5 %: 0.5) goes up without a setting.
    s.must_create(
        "/menu/taxes/five",
        json!({"id": "five", "name": "Five", "rate": "5", "inclusion": "exclusive"}),
    )
    .await;
    s.must_create(
        "/menu/items/mint",
        json!({"id": "mint", "name": "Mint", "category": "drinks", "taxes": ["five"],
            "variations": [{"id": "mint-10", "name": "One", "price": 10}]}),
    )
    .await;
    let r = s
        .post("/orders", json!({"lines": [{"variation": "mint-10"}]}))
        .await;
    assert_eq!((r.status, tax(&r)), (201, 1), "{:?}", r.body);
}
