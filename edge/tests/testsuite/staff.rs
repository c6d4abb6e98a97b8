//! Staff sessions and permission checks (DESIGN.md §14, THREATS.md row
//! 26), against the real `fleet-edge`: a PIN login answers the role and
//! every permission it grants; the sixth wrong PIN within the window locks
//! the user out (429) and is audited; a session survives a restart; what a
//! session may do is read from the roles at every order, so a role changed
//! takes effect on the next order; voids need `order.void` or an approver;
//! refusals are audited with the staff member and the device.

#![allow(clippy::unwrap_used)]

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Resp, Server, seed_example, seed_staff};

async fn login(s: &Server, user: &str, pin: &str) -> Resp {
    s.post("/sessions", json!({"user": user, "pin": pin})).await
}

async fn order_as(s: &Server, session: &str, body: Value) -> Resp {
    Server::send(
        s.request(Method::POST, "/orders")
            .header("X-Fleet-Session", session)
            .json(&body),
    )
    .await
}

/// The staff entries of the audit log: (kind, entity, actor, detail).
async fn staff_events(s: &Server) -> Vec<(String, String, String, Value)> {
    s.audit()
        .await
        .into_iter()
        .filter(|e| e["domain"] == "staff")
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["entity_id"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["after"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_login_answers_the_role_with_inherited_permissions_and_survives_a_restart() {
    let s = Server::start();
    seed_example(&s).await;
    seed_staff(&s).await;
    let r = login(&s, "jane", "9876").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["user"], "jane");
    assert_eq!(r.body["role"], "manager");
    assert_eq!(
        r.body["permissions"],
        json!([
            "discount.apply",
            "discount.restricted",
            "order.create",
            "order.void"
        ])
    );
    let session = r.body["session"].as_str().unwrap().to_owned();
    assert!(session.starts_with("fss_"), "{session}");
    assert!(r.body["expires_at"].as_str().unwrap().ends_with('Z'));
    let soda = json!({"lines": [{"variation": "soda-small"}]});
    assert_eq!(order_as(&s, &session, soda.clone()).await.status, 201);

    // Restarted on the same database: the session still works.
    let (dir, db) = (s.dir.clone(), s.database.clone());
    assert!(s.stop().success());
    let s = Server::start_on(dir, db);
    let r = order_as(&s, &session, soda.clone()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // A made-up session is refused, not ignored.
    let fake = format!("fss_{}", "0".repeat(64));
    let r = order_as(&s, &fake, soda).await;
    assert_eq!((r.status, r.code()), (401, "bad_session"), "{:?}", r.body);
    let events = staff_events(&s).await;
    assert!(
        events.iter().any(|(k, u, a, d)| k == "login"
            && u == "jane"
            && a == "staff:jane@admin"
            && d["device"] == "local:admin"),
        "{events:?}"
    );
}

#[tokio::test]
async fn row26_the_sixth_wrong_pin_within_the_window_locks_the_user_out_and_is_audited() {
    let s = Server::start();
    seed_example(&s).await;
    seed_staff(&s).await;
    for attempt in 1..=5 {
        let r = login(&s, "sam", "0000").await;
        assert_eq!(
            (r.status, r.code()),
            (401, "wrong_pin"),
            "attempt {attempt}: {:?}",
            r.body
        );
    }
    // An unknown user answers the same, and is not counted.
    let r = login(&s, "nobody", "0000").await;
    assert_eq!((r.status, r.code()), (401, "wrong_pin"));
    let r = login(&s, "sam", "0000").await;
    assert_eq!((r.status, r.code()), (429, "locked_out"), "{:?}", r.body);
    let retry: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    // Locked: the right PIN does not help, and is not even checked.
    let r = login(&s, "sam", "1234").await;
    assert_eq!((r.status, r.code()), (429, "locked_out"), "{:?}", r.body);
    // Another user is not affected.
    assert_eq!(login(&s, "jane", "9876").await.status, 201);
    let events = staff_events(&s).await;
    let failed = events
        .iter()
        .filter(|(k, u, ..)| k == "pin_failed" && u == "sam")
        .count();
    assert_eq!(failed, 5, "{events:?}");
    let lockouts: Vec<_> = events.iter().filter(|(k, ..)| k == "lockout").collect();
    assert_eq!(lockouts.len(), 1, "{events:?}");
    assert_eq!(lockouts[0].1, "sam");
    assert_eq!(lockouts[0].3["device"], "local:admin");
    assert!(!events.iter().any(|(_, u, ..)| u == "nobody"), "{events:?}");
    let r = s.get("/audit/verify").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Wrong PINs sent at once are all counted, and the right PIN sent while
/// they are being checked opens no session once they have locked the user
/// out (it had passed the lockout check before they were counted: the
/// check is made again where the success is written). A PIN that is not
/// 4 to 12 digits is wrong without a hash computed, and not counted.
#[tokio::test]
async fn row26_wrong_pins_at_once_lock_out_and_a_right_pin_among_them_opens_nothing() {
    let s = Server::start();
    seed_example(&s).await;
    seed_staff(&s).await;
    // Twelve: however early the right PIN is checked (and clears the
    // count), at least six wrong ones follow it.
    let wrong: Vec<_> = (0..12).map(|_| login(&s, "sam", "0000")).collect();
    let right = async {
        // Sent after the wrong ones: it waits behind them for its turn.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        login(&s, "sam", "1234").await
    };
    let (wrong, right) = tokio::join!(futures_util::future::join_all(wrong), right);
    let locked = wrong.iter().filter(|r| r.status == 429).count();
    assert!(
        locked >= 1,
        "{:?}",
        wrong.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    if right.status == 201 {
        // It was checked before the sixth failure was counted: fine, but
        // then it may not have cleared the count the others built.
        let events = staff_events(&s).await;
        let logins = events
            .iter()
            .position(|(k, u, ..)| k == "login" && u == "sam");
        let lockout = events
            .iter()
            .position(|(k, u, ..)| k == "lockout" && u == "sam");
        assert!(
            logins < lockout,
            "a session opened after the lockout: {events:?}"
        );
    } else {
        assert_eq!(
            (right.status, right.code()),
            (429, "locked_out"),
            "{:?}",
            right.body
        );
    }
    let r = login(&s, "sam", "1234").await;
    assert_eq!(
        (r.status, r.code()),
        (429, "locked_out"),
        "still locked: {:?}",
        r.body
    );
    let r = s.get("/audit/verify").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[test]
fn a_pin_of_the_wrong_shape_is_wrong_before_any_hash() {
    use edge::staff::well_formed;
    assert!(well_formed("sam", "1234"));
    assert!(well_formed("priya-shah", "123456789012"));
    for (user, pin) in [
        ("sam", "123"),
        ("sam", "1234567890123"),
        ("sam", "12a4"),
        ("Sam", "1234"),
        ("", "1234"),
        ("sam", &"1".repeat(1 << 20)),
    ] {
        assert!(!well_formed(user, pin), "{user:?} {}", pin.len());
    }
}

#[tokio::test]
async fn permissions_are_read_at_every_order_and_refusals_are_audited() {
    let s = Server::start();
    seed_example(&s).await;
    let (cashier_v, _) = seed_staff(&s).await;
    s.must_create(
        "/menu/discounts/staff-meal",
        json!({"id": "staff-meal", "name": "Staff Meal", "kind": "percent", "rate": "50",
            "requires": "discount.restricted"}),
    )
    .await;
    let sam = login(&s, "sam", "1234").await.body["session"]
        .as_str()
        .unwrap()
        .to_owned();
    let soda = json!({"lines": [{"variation": "soda-small"}]});
    assert_eq!(order_as(&s, &sam, soda.clone()).await.status, 201);
    let tickets = s.get("/tickets").await.body["tickets"]
        .as_array()
        .unwrap()
        .len();

    // A discount that requires a permission the cashier lacks.
    let r = order_as(
        &s,
        &sam,
        json!({"lines": [{"variation": "soda-small"}], "discounts": ["staff-meal"]}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "permission_denied"),
        "{:?}",
        r.body
    );
    assert!(
        r.message().contains("discount.restricted"),
        "{}",
        r.message()
    );

    // The role loses order.create: the same session's next order is refused.
    let r = s
        .update(
            "/roles/cashier",
            cashier_v,
            json!({"id": "cashier", "name": "Cashier", "level": 10, "permissions": ["discount.apply"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = order_as(&s, &sam, soda.clone()).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "permission_denied"),
        "{:?}",
        r.body
    );
    assert_eq!(
        s.get("/tickets").await.body["tickets"]
            .as_array()
            .unwrap()
            .len(),
        tickets,
        "refused orders reach no kitchen"
    );
    let refused: Vec<_> = staff_events(&s)
        .await
        .into_iter()
        .filter(|(k, ..)| k == "refused")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused.iter().all(|(_, u, a, d)| u == "sam"
            && a == "staff:sam@admin"
            && d["device"] == "local:admin")
    );
    assert_eq!(refused[0].3["permission"], "discount.restricted");
    assert_eq!(refused[1].3["permission"], "order.create");
}

#[tokio::test]
async fn a_void_needs_order_void_or_an_approver_and_names_both() {
    let s = Server::start();
    seed_example(&s).await;
    seed_staff(&s).await;
    let sam = login(&s, "sam", "1234").await.body["session"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = order_as(&s, &sam, json!({"lines": [{"variation": "soda-small"}]})).await;
    let id = order.body["id"].as_str().unwrap().to_owned();
    let void = |body: Value| {
        Server::send(
            s.request(Method::POST, &format!("/orders/{id}/void"))
                .header("X-Fleet-Session", &sam)
                .json(&body),
        )
    };
    // The cashier alone may not; a cashier as approver may not either.
    let r = void(json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "permission_denied"),
        "{:?}",
        r.body
    );
    let r = void(json!({"approver": {"user": "sam", "pin": "1234"}})).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "permission_denied"),
        "{:?}",
        r.body
    );
    // A wrong approver PIN counts against the approver.
    let r = void(json!({"approver": {"user": "jane", "pin": "1111"}})).await;
    assert_eq!((r.status, r.code()), (401, "wrong_pin"), "{:?}", r.body);
    // The manager approves at the register.
    let r =
        void(json!({"approver": {"user": "jane", "pin": "9876"}, "reason": "wrong table"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["voided_by"], "staff:sam@admin");
    assert_eq!(r.body["approved_by"], "staff:jane@admin");
    assert_eq!(r.body["device"], "local:admin");
    let got = s.get(&format!("/orders/{id}")).await;
    assert_eq!(
        got.body["void"]["approved_by"], "staff:jane@admin",
        "{:?}",
        got.body
    );
    let r = void(json!({"approver": {"user": "jane", "pin": "9876"}})).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "already_voided"),
        "{:?}",
        r.body
    );
    let events = staff_events(&s).await;
    let voids: Vec<_> = events.iter().filter(|(k, ..)| k == "void").collect();
    assert_eq!(voids.len(), 1, "{events:?}");
    assert_eq!(voids[0].1, id);
    assert_eq!(voids[0].2, "staff:sam@admin");
    assert_eq!(voids[0].3["approved_by"], "staff:jane@admin");
    assert!(
        events
            .iter()
            .any(|(k, u, ..)| k == "pin_failed" && u == "jane")
    );
    // The manager's own session voids without an approver.
    let jane = login(&s, "jane", "9876").await.body["session"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = order_as(&s, &jane, json!({"lines": [{"variation": "soda-small"}]})).await;
    let r = Server::send(
        s.request(
            Method::POST,
            &format!("/orders/{}/void", other.body["id"].as_str().unwrap()),
        )
        .header("X-Fleet-Session", &jane)
        .json(&json!({})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["approved_by"].clone()),
        (200, Value::Null),
        "{:?}",
        r.body
    );
}

/// Availability (86, DESIGN.md §14): staff with `menu.sold_out` mark a
/// variation unavailable until the business day ends; orders for it are
/// refused; `/state` shows it as store-owned; selling it again is one PUT.
#[tokio::test]
async fn staff_with_the_permission_mark_an_item_unavailable_until_the_day_ends() {
    let s = Server::start();
    seed_example(&s).await;
    let (cashier_v, _) = seed_staff(&s).await;
    s.must_create(
        "/settings/store.timezone",
        json!({"value": "America/New_York"}),
    )
    .await;
    s.must_create("/settings/store.day_end", json!({"value": "03:30"}))
        .await;
    let session = |user: &'static str, pin: &'static str| {
        let s = &s;
        async move {
            login(s, user, pin).await.body["session"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let sam = session("sam", "1234").await;
    let put = |session: String, variation: &'static str, available: bool| {
        let s = &s;
        async move {
            Server::send(
                s.request(Method::PUT, &format!("/menu/availability/{variation}"))
                    .header("X-Fleet-Session", session)
                    .json(&json!({"available": available})),
            )
            .await
        }
    };
    // A cashier without menu.sold_out may not.
    let r = put(sam.clone(), "soda-small", false).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "permission_denied"),
        "{:?}",
        r.body
    );
    // Granted in the role: the same session may.
    let r = s
        .update(
            "/roles/cashier",
            cashier_v,
            json!({"id": "cashier", "name": "Cashier", "level": 10,
                "permissions": ["order.create", "discount.apply", "menu.sold_out"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = put(sam.clone(), "soda-small", false).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["set_by"], "staff:sam@admin");
    let until: chrono::DateTime<chrono::Utc> = r.body["until"].as_str().unwrap().parse().unwrap();
    let local = until.with_timezone(&chrono_tz::America::New_York);
    assert_eq!(local.format("%H:%M").to_string(), "03:30", "{until}");
    assert!(
        until > chrono::Utc::now() && until - chrono::Utc::now() <= chrono::Duration::hours(25)
    );
    let r = put(sam.clone(), "no-such-variation", false).await;
    assert_eq!(r.status, 404, "{:?}", r.body);

    // Orders for it are refused; others go through.
    let r = order_as(&s, &sam, json!({"lines": [{"variation": "soda-small"}]})).await;
    assert_eq!(
        (r.status, r.field()),
        (422, "lines[0].variation"),
        "{:?}",
        r.body
    );
    assert!(r.message().contains("unavailable"), "{}", r.message());
    let r = order_as(
        &s,
        &sam,
        json!({"lines": [{"variation": "classic-single"}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    // Store-owned in /state (not with ?domain=).
    let state = s.get("/state").await.body;
    assert_eq!(
        state["store_owned"]["unavailable"][0]["variation"], "soda-small",
        "{state}"
    );
    assert_eq!(
        state["store_owned"]["unavailable"][0]["device"],
        "local:admin"
    );
    assert!(
        s.get("/state?domain=menu")
            .await
            .body
            .get("store_owned")
            .is_none()
    );

    // Available again.
    let r = put(sam.clone(), "soda-small", true).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, Value::Null),
        "{:?}",
        r.body
    );
    assert_eq!(
        s.get("/state").await.body["store_owned"]["unavailable"],
        json!([])
    );
    let r = order_as(&s, &sam, json!({"lines": [{"variation": "soda-small"}]})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let events = staff_events(&s).await;
    let set: Vec<_> = events
        .iter()
        .filter(|(k, ..)| k == "availability")
        .collect();
    assert_eq!(set.len(), 2, "{events:?}");
    assert_eq!(set[0].3["available"], false);
    assert_eq!(set[1].3["available"], true);
}
