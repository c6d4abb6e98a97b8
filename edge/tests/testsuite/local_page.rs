//! The store-local page (issue #21 item 5), against the real `fleet-edge`
//! over HTTP as a browser uses it: the sign-in form, a PIN login that sets
//! a session cookie, the page with the applied revision and when, local
//! overrides, store-owned state and the local audit log (escaped), a role
//! without `reports.view` refused, signing out.

#![allow(clippy::unwrap_used)]

use reqwest::Method;
use serde_json::json;

use crate::common::{Server, seed_example, seed_staff};

const NASTY: &str = "<script>alert(1)</script>";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sign_in(s: &Server, user: &str, pin: &str) -> reqwest::Response {
    browser()
        .post(format!("{}/local/login", s.base))
        .form(&[("user", user), ("pin", pin)])
        .send()
        .await
        .unwrap()
}

async fn page_with(s: &Server, cookie: &str) -> (u16, String) {
    let r = browser()
        .get(format!("{}/local", s.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The example menu, staff, and `reports.view` for jane's manager role
/// (the page's permission).
async fn store_with_a_manager() -> Server {
    let s = Server::start();
    seed_example(&s).await;
    seed_staff(&s).await;
    let manager = s.get("/roles/manager").await;
    let r = s
        .update(
            "/roles/manager",
            manager.version(),
            json!({"id": "manager", "name": "Manager", "level": 50, "inherits": ["cashier"],
                "permissions": ["order.void", "discount.restricted", "reports.view"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    s
}

#[tokio::test]
async fn a_manager_signs_in_and_sees_what_was_applied_overridden_and_set_locally() {
    let s = store_with_a_manager().await;
    // A reconciler write, a local override and an 86 give the page
    // something to show.
    s.must_create("/settings/store.name", json!({"value": NASTY}))
        .await;
    let r = Server::send(
        s.request(Method::PUT, "/menu/categories/sides")
            .header("If-None-Match", "*")
            .header("X-Fleet-Revision", "7")
            .header("X-Fleet-Commit", "abc123def")
            .json(&json!({"id": "sides", "name": NASTY})),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sam = s.get("/users/sam").await;
    let r = Server::send(
        s.request(Method::POST, "/users/sam/override")
            .header("If-Match", sam.version().to_string())
            .header("X-Fleet-Actor", "local:jane")
            .json(&json!({"local_override": true})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = Server::send(
        s.request(Method::PUT, "/menu/availability/soda-small")
            .json(&json!({"available": false})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Without a session: the sign-in form, and nothing else.
    let (status, body) = page_with(&s, "").await;
    assert_eq!(status, 200);
    assert!(body.contains("action=\"/local/login\""), "{body}");
    assert!(!body.contains("id=\"audit\""), "{body}");
    assert!(!body.contains(NASTY), "the store name is escaped: {body}");

    // A wrong PIN; a cashier (no reports.view).
    let r = sign_in(&s, "jane", "0000").await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Wrong user or PIN"));
    let r = sign_in(&s, "sam", "1234").await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("reports.view"));
    // A malformed form is a page, not a raw error.
    let r = browser()
        .post(format!("{}/local/login", s.base))
        .form(&[("user", "jane")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("a user and a PIN"));

    // The manager.
    let r = sign_in(&s, "jane", "9876").await;
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let (status, body) = page_with(&s, &pair).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("signed in as <b>jane</b>"), "{body}");
    assert!(
        body.contains("Revision <b>7</b> from commit <code>abc123def</code>"),
        "{body}"
    );
    assert!(body.contains("user <b>sam</b>"), "the override: {body}");
    assert!(body.contains("<b>soda-small</b>"), "the 86: {body}");
    assert!(body.contains("The hash chain of all"), "{body}");
    assert!(body.contains("local:jane"), "the audit log: {body}");
    assert!(!body.contains(NASTY), "escaped: {body}");
    assert!(
        body.contains("&#60;script&#62;") || body.contains("&lt;script&gt;"),
        "{body}"
    );

    // A register's session does not open the page (bound to its credential).
    let r = s
        .post("/sessions", json!({"user": "jane", "pin": "9876"}))
        .await;
    let api_session = r.body["session"].as_str().unwrap();
    let (_, body) = page_with(&s, &format!("fleet_session={api_session}")).await;
    assert!(body.contains("action=\"/local/login\""), "{body}");

    // Sign out: the cookie's session ends.
    let r = browser()
        .post(format!("{}/local/logout", s.base))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, body) = page_with(&s, &pair).await;
    assert!(body.contains("Your session ended"), "{body}");
}

/// The same page in a real browser (headless Chromium through
/// ChromeDriver): sign in with the form, read the sections, sign out.
#[tokio::test]
async fn the_store_page_in_a_real_browser() {
    let s = store_with_a_manager().await;
    let r = Server::send(
        s.request(Method::PUT, "/menu/availability/soda-small")
            .json(&json!({"available": false})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let base = s.base.clone();
    // WebDriver calls block: off the async runtime.
    tokio::task::spawn_blocking(move || {
        let b = testkit::browser::Browser::start(1100, 900);
        b.goto(&format!("{base}/local"));
        let user = b.find("#user");
        b.type_into(&user, "jane");
        let pin = b.find("#pin");
        b.type_into(&pin, "9876");
        b.click(&b.find("#sign-in button"));
        b.wait_until(
            "the signed-in page",
            std::time::Duration::from_secs(20),
            |b| !b.find_all("#audit").is_empty(),
        );
        let applied = b.text(&b.find("#applied"));
        assert!(
            applied.contains("Nothing applied by the reconciler yet"),
            "{applied}"
        );
        let owned = b.text(&b.find("#store-owned"));
        assert!(owned.contains("soda-small"), "{owned}");
        let audit = b.text(&b.find("#audit"));
        assert!(audit.contains("The hash chain of all"), "{audit}");
        assert!(audit.contains("staff · login"), "{audit}");
        assert!(audit.contains("access · role · update"), "{audit}");
        b.screenshot(&testkit::browser::screenshot_dir().join("edge-local-page.png"));
        b.click(&b.find("header form button"));
        b.wait_until(
            "the sign-in form again",
            std::time::Duration::from_secs(20),
            |b| !b.find_all("#sign-in").is_empty(),
        );
    })
    .await
    .unwrap();
}
