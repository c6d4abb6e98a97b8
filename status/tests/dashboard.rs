//! The dashboard pages through the real binary: sign-in, the overview, a
//! store page, revoke — and THREATS row 16 for pages: another tenant's
//! store page and revoke answer 404.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, ServerOpts, TestDb, report};

struct Page {
    status: u16,
    location: String,
    set_cookie: String,
    body: String,
}

async fn call(
    server: &Server,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Page {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = client.request(m, format!("{}{path}", server.base));
    if let Some(c) = cookie {
        rb = rb.header("cookie", format!("fleet_operator={c}"));
    }
    if let Some(f) = form {
        rb = rb
            .header("content-type", "application/x-www-form-urlencoded")
            .body(f.to_owned());
    }
    let r = rb.send().await.unwrap();
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (location, set_cookie) = (header("location"), header("set-cookie"));
    Page {
        status: r.status().as_u16(),
        location,
        set_cookie,
        body: r.text().await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_are_tenant_scoped() {
    let db = TestDb::sqlite();
    let server = Server::start(&db.url, ServerOpts::default());
    let node = server.enrolled_node("acme/soho").await;
    let _other = server.enrolled_node("globex/uptown").await;
    let mut r = report("acme/soho", "drift_corrected", Some(1), Some(1));
    r["drift"] = serde_json::json!([{"kind": "item", "id": "classic-burger", "change": "changed",
        "fields": [], "diff": "-<script>alert(1)</script>\n"}]);
    assert_eq!(server.report(&node, &r).await.status, 201);
    let acme = server.operator(&["acme"]);

    // Not signed in: to the sign-in page.
    let p = call(&server, "GET", "/", None, None).await;
    assert_eq!((p.status, p.location.as_str()), (303, "/login"));
    let p = call(&server, "GET", "/", Some("fso_made-up"), None).await;
    assert_eq!(p.status, 303);
    let p = call(&server, "POST", "/login", None, Some("token=fso_made-up")).await;
    assert_eq!(p.status, 401);

    // Sign in: an HttpOnly, SameSite=Strict cookie.
    let p = call(
        &server,
        "POST",
        "/login",
        None,
        Some(&format!("token={acme}")),
    )
    .await;
    assert_eq!(p.status, 303);
    assert!(p.set_cookie.contains("HttpOnly") && p.set_cookie.contains("SameSite=Strict"));

    let p = call(&server, "GET", "/", Some(&acme), None).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("acme/soho"), "{}", p.body);
    assert!(
        !p.body.contains("globex"),
        "another tenant's store is listed: {}",
        p.body
    );
    let p = call(&server, "GET", "/?state=drifted", Some(&acme), None).await;
    assert!(p.body.contains("acme/soho"));
    let p = call(&server, "GET", "/?state=synced", Some(&acme), None).await;
    assert!(!p.body.contains("href=\"/stores/acme/soho\""));

    let p = call(&server, "GET", "/stores/acme/soho", Some(&acme), None).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("drifted") && p.body.contains("classic-burger"));
    assert!(!p.body.contains("<script>"), "report text is escaped");
    assert!(p.body.contains("&lt;script&gt;"));

    // THREATS row 16 for pages.
    let p = call(&server, "GET", "/stores/globex/uptown", Some(&acme), None).await;
    assert_eq!(p.status, 404);
    let p = call(
        &server,
        "POST",
        "/stores/globex/uptown/revoke",
        Some(&acme),
        None,
    )
    .await;
    assert_eq!(p.status, 404);
    let globex = server.operator(&["globex"]);
    let p = call(&server, "GET", "/stores/globex/uptown", Some(&globex), None).await;
    assert_eq!(p.status, 200, "still there and still enrolled");
    assert!(p.body.contains("enrolled"));

    // Revoke from the page.
    let p = call(
        &server,
        "POST",
        "/stores/acme/soho/revoke",
        Some(&acme),
        None,
    )
    .await;
    assert_eq!((p.status, p.location.as_str()), (303, "/stores/acme/soho"));
    let again = server
        .report(&node, &report("acme/soho", "no_change", Some(1), Some(1)))
        .await;
    assert_eq!(again.status, 401);
}
