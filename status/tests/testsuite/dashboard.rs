//! The dashboard pages and their JSON twins through the real binary, on
//! SQLite and on PostgreSQL: sign-in, the overview's counts, filters,
//! sorting and paging, the store page (summary, node keys, revoke, report
//! timeline with commit links and drift diffs), the tenant rollout page —
//! and THREATS row 16 for pages: another tenant's store and tenant answer
//! 404. (Row 16 for the API routes is in `threats.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, Server, ServerOpts, TestDb, entity_change, ingest, report};
use chrono::Utc;
use serde_json::{Value, json};
use status::store::{DesiredRow, NewReport, Node};

const COMMIT: &str = "3f2c000000000000000000000000000000000000";
const TEMPLATE: &str = "https://git.example.com/acme/fleet/-/commit/{commit}";

on_both!(
    pages_are_tenant_scoped,
    overview_counts_filters_sorts_and_pages,
    store_page_shows_nodes_timeline_and_commit_links,
    tenant_page_shows_rollout,
    every_page_escapes_store_names_and_report_texts,
    stylesheet_is_served_with_a_type_and_a_cache_header,
);

fn with_commit_links() -> ServerOpts {
    ServerOpts {
        extra: vec!["--commit-url-template".into(), TEMPLATE.into()],
        ..ServerOpts::default()
    }
}

/// `acme/s000`…`acme/s249` at desired revision 2 and `globex/g1` at 1,
/// written through the storage layer: s000–s009 synced, s010–s014 behind
/// (applied 1), s015 failed, the rest unenrolled.
async fn fleet_of_250(db: &TestDb) {
    let store = db.open().await;
    let now = Utc::now().timestamp();
    let desired = |s: String, rev| DesiredRow {
        store: s,
        revision: Some(rev),
        commit: COMMIT.to_owned(),
        expires_at: Some(now + 90 * 86_400),
        valid: true,
        error: None,
        checked_at: now,
    };
    let mut rows: Vec<DesiredRow> = (0..250)
        .map(|i| desired(format!("acme/s{i:03}"), 2))
        .collect();
    rows.push(desired("globex/g1".to_owned(), 1));
    store.set_desired(&rows).await.unwrap();
    for i in 0..16 {
        let s = format!("acme/s{i:03}");
        let key_id = format!("{i:016x}");
        assert!(
            store
                .enroll_node(&Node {
                    key_id: key_id.clone(),
                    public_key: format!("test-key-{i}"),
                    store: s.clone(),
                    enrolled_at: now - 3600,
                    revoked_at: None,
                    recipient: None,
                })
                .await
                .unwrap()
        );
        let (outcome, applied) = match i {
            0..10 => ("converged", 2),
            10..15 => ("no_change", 1),
            _ => ("failed", 1),
        };
        let body = report(&s, outcome, Some(2), Some(applied));
        ingest(
            &store,
            &NewReport {
                store: s.clone(),
                key_id,
                received_at: now - i64::from(i) * 10,
                outcome: outcome.to_owned(),
                desired_revision: Some(2),
                applied_revision: Some(applied),
                commit: Some(COMMIT.to_owned()),
                drift: 0,
                overridden: 0,
                reconciler_version: format!("0.1.{i}"),
                root_version: None,
                release_api: None,
                body: body.to_string(),
            },
        )
        .await;
    }
    store.close().await.unwrap();
}

fn store_names(v: &Value) -> Vec<String> {
    v["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["store"].as_str().unwrap().to_owned())
        .collect()
}

async fn pages_are_tenant_scoped(db: TestDb) {
    let server = Server::start(&db.url, ServerOpts::default());
    let node = server.enrolled_node("acme/soho").await;
    let _other = server.enrolled_node("globex/uptown").await;
    let mut r = report("acme/soho", "drift_corrected", Some(1), Some(1));
    r["drift"] = json!([{"kind": "item", "id": "classic-burger", "change": "changed",
        "fields": [], "diff": "-<script>alert(1)</script>\n"}]);
    assert_eq!(server.report(&node, &r).await.status, 201);
    let acme = server.operator(&["acme"]);

    // Not signed in: to the sign-in page.
    let p = server.page("GET", "/", None, None).await;
    assert_eq!((p.status, p.location.as_str()), (303, "/login"));
    for path in ["/stores/acme/soho", "/tenants/acme"] {
        let p = server.page("GET", path, None, None).await;
        assert_eq!((p.status, p.location.as_str()), (303, "/login"), "{path}");
    }
    let p = server.page("GET", "/", Some("fso_made-up"), None).await;
    assert_eq!(p.status, 303);
    let p = server
        .page("POST", "/login", None, Some("token=fso_made-up"))
        .await;
    assert_eq!(p.status, 401);

    // Sign in: an HttpOnly, SameSite=Strict cookie.
    let p = server
        .page("POST", "/login", None, Some(&format!("token={acme}")))
        .await;
    assert_eq!(p.status, 303);
    assert!(p.set_cookie.contains("HttpOnly") && p.set_cookie.contains("SameSite=Strict"));

    let p = server.page("GET", "/", Some(&acme), None).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("acme/soho"), "{}", p.body);
    assert!(
        !p.body.contains("globex"),
        "another tenant's store is listed: {}",
        p.body
    );
    // Asking for another tenant's stores shows none of them.
    let p = server
        .page("GET", "/?tenant=globex", Some(&acme), None)
        .await;
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("uptown"), "{}", p.body);
    let p = server
        .page("GET", "/?state=drifted", Some(&acme), None)
        .await;
    assert!(p.body.contains("acme/soho"));
    let p = server
        .page("GET", "/?state=synced", Some(&acme), None)
        .await;
    assert!(!p.body.contains("href=\"/stores/acme/soho\""));

    let p = server
        .page("GET", "/stores/acme/soho", Some(&acme), None)
        .await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("drifted") && p.body.contains("classic-burger"));
    assert!(!p.body.contains("<script>"), "report text is escaped");
    assert!(p.body.contains("&lt;script&gt;"));

    // THREATS row 16 for pages: another tenant's store, its revoke and its
    // tenant page answer 404, exactly like ones that do not exist.
    let p = server
        .page("GET", "/stores/globex/uptown", Some(&acme), None)
        .await;
    assert_eq!(p.status, 404);
    let missing = server
        .page("GET", "/stores/acme/nowhere", Some(&acme), None)
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        p.body, missing.body,
        "indistinguishable from a missing store"
    );
    let p = server
        .page("POST", "/stores/globex/uptown/revoke", Some(&acme), None)
        .await;
    assert_eq!(p.status, 404);
    let p = server
        .page("GET", "/tenants/globex", Some(&acme), None)
        .await;
    assert_eq!(p.status, 404);
    let missing = server
        .page("GET", "/tenants/nowhere", Some(&acme), None)
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        p.body, missing.body,
        "indistinguishable from a missing tenant"
    );
    assert_eq!(
        server
            .page("GET", "/tenants/acme", Some(&acme), None)
            .await
            .status,
        200
    );
    let globex = server.operator(&["globex"]);
    let p = server
        .page("GET", "/stores/globex/uptown", Some(&globex), None)
        .await;
    assert_eq!(p.status, 200, "still there and still enrolled");
    assert!(p.body.contains("badge s-synced\">active"), "{}", p.body);

    // Revoke from the page.
    let p = server
        .page("POST", "/stores/acme/soho/revoke", Some(&acme), None)
        .await;
    assert_eq!((p.status, p.location.as_str()), (303, "/stores/acme/soho"));
    let again = server
        .report(&node, &report("acme/soho", "no_change", Some(1), Some(1)))
        .await;
    assert_eq!(again.status, 401);
    let p = server
        .page("GET", "/stores/acme/soho", Some(&acme), None)
        .await;
    assert!(p.body.contains("badge s-offline\">revoked"), "{}", p.body);
    assert!(
        !p.body.contains("Revoke node key…"),
        "nothing left to revoke"
    );
}

async fn overview_counts_filters_sorts_and_pages(db: TestDb) {
    fleet_of_250(&db).await;
    let server = Server::start(&db.url, ServerOpts::default());
    let acme = server.operator(&["acme"]);

    // The API without paging parameters answers every store, as before.
    let all = server.get_as(&acme, "/api/v1/stores").await;
    assert_eq!(all.status, 200);
    assert_eq!(store_names(&all.body).len(), 250);
    assert_eq!(all.body["total"], 250);
    let c = &all.body["counts"];
    assert_eq!(
        (
            &c["synced"],
            &c["out_of_sync"],
            &c["failed"],
            &c["unenrolled"]
        ),
        (&json!(10), &json!(5), &json!(1), &json!(234))
    );
    assert_eq!(all.body["tenants"]["acme"]["stores"], 250);
    assert_eq!(all.body["tenants"]["acme"]["at_desired_revision"], 10);

    // Paging, sorting, filtering.
    let v = server
        .get_as(&acme, "/api/v1/stores?per_page=100&page=3")
        .await
        .body;
    assert_eq!(
        (v["total"].clone(), v["pages"].clone(), v["page"].clone()),
        (json!(250), json!(3), json!(3))
    );
    let names = store_names(&v);
    assert_eq!((names.len(), names[0].as_str()), (50, "acme/s200"));
    let v = server
        .get_as(&acme, "/api/v1/stores?sort=applied&dir=desc&per_page=3")
        .await
        .body;
    assert_eq!(store_names(&v), ["acme/s000", "acme/s001", "acme/s002"]);
    let v = server
        .get_as(&acme, "/api/v1/stores?sort=last_seen&dir=desc&per_page=2")
        .await
        .body;
    assert_eq!(store_names(&v), ["acme/s000", "acme/s001"]);
    let v = server.get_as(&acme, "/api/v1/stores?q=S01").await.body;
    assert_eq!(store_names(&v).len(), 10, "search is case-insensitive");
    assert_eq!(v["counts"]["out_of_sync"], 5, "counts follow the search");
    let v = server
        .get_as(&acme, "/api/v1/stores?state=out_of_sync")
        .await
        .body;
    assert_eq!(store_names(&v).len(), 5);
    assert_eq!(v["counts"]["synced"], 10, "counts ignore the state filter");
    let r = server.get_as(&acme, "/api/v1/stores?state=happy").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = server.get_as(&acme, "/api/v1/stores?per_page=5000").await;
    assert_eq!(r.status, 400);
    // The tenant filter cannot widen what an operator sees.
    let v = server
        .get_as(&acme, "/api/v1/stores?tenant=globex")
        .await
        .body;
    assert_eq!((store_names(&v).len(), v["total"].clone()), (0, json!(0)));

    // The page: 100 rows of 250, counts that filter, sortable columns.
    let p = server.page("GET", "/", Some(&acme), None).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("name=\"viewport\""));
    assert_eq!(p.body.matches("data-label=\"Store\"").count(), 100);
    assert!(
        p.body
            .contains("1–100 of <b class=\"total\">250</b> stores · page 1 of 3"),
        "{}",
        p.body
    );
    assert!(p.body.contains("href=\"/?page=2\" rel=\"next\""));
    assert!(p.body.contains("acme/s099") && !p.body.contains("acme/s100"));
    assert!(
        p.body
            .contains("href=\"/?state=synced\" data-state=\"synced\"><span class=\"n\">10</span>")
    );
    assert!(p.body.contains("<span class=\"n\">234</span>"));
    assert!(p.body.contains("href=\"/?sort=last_seen\""));
    assert!(p.body.contains("title=\""), "exact times in titles");
    assert!(p.body.contains("min ago"), "relative last-seen times");
    assert!(p.body.contains("href=\"/tenants/acme\""));
    let p = server.page("GET", "/?page=3", Some(&acme), None).await;
    assert_eq!(p.body.matches("data-label=\"Store\"").count(), 50);
    assert!(p.body.contains("acme/s249") && !p.body.contains("rel=\"next\""));
    assert!(p.body.contains("href=\"/?page=2\" rel=\"prev\""));
    let p = server
        .page(
            "GET",
            "/?sort=store&dir=desc&per_page=10",
            Some(&acme),
            None,
        )
        .await;
    let first = p.body.find("acme/s249").unwrap();
    let second = p.body.find("acme/s248").unwrap();
    assert!(first < second, "descending store order");
    // A second click on the sorted column reverses it.
    assert!(p.body.contains("href=\"/?per_page=10\""), "{}", p.body);
    let p = server
        .page("GET", "/?tenant=&state=failed&q=", Some(&acme), None)
        .await;
    assert_eq!(p.body.matches("data-label=\"Store\"").count(), 1);
    assert!(p.body.contains("acme/s015"));
    let p = server
        .page("GET", "/?q=s01&sort=state", Some(&acme), None)
        .await;
    assert_eq!(p.body.matches("data-label=\"Store\"").count(), 10);
    let p = server.page("GET", "/?state=happy", Some(&acme), None).await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("is not a store state"));
}

async fn store_page_shows_nodes_timeline_and_commit_links(db: TestDb) {
    let server = Server::start(&db.url, with_commit_links());
    let store = "acme/soho";
    let node = server.enrolled_node(store).await;
    let acme = server.operator(&["acme"]);

    let mut converged = report(store, "converged", Some(2), Some(2));
    converged["changes"] = json!([
        entity_change("item", "classic-burger"),
        {"kind": "user", "id": "maria", "change": "added", "value": {"name": "Maria"}},
        {"kind": "setting", "id": "tipping", "change": "removed", "value": true},
    ]);
    converged["duration_ms"] = json!(1530);
    let mut drift = report(store, "drift_corrected", Some(2), Some(2));
    let mut d = entity_change("item", "classic-burger");
    d["diff"] = json!(
        "--- item classic-burger (store)\n+++ item classic-burger (repo)\n@@ -1 +1 @@\n-price: 1099\n+price: 1199\n"
    );
    drift["drift"] = json!([d]);
    drift["overridden"] = json!([entity_change("role", "night-manager")]);
    let mut failed = report(store, "failed", Some(3), Some(2));
    failed["warnings"] = json!(["menu item without a category"]);
    let refused = report(store, "refused", Some(3), Some(2));
    for r in [&converged, &drift, &failed, &refused] {
        assert_eq!(server.report(&node, r).await.status, 201);
    }

    // The API: nodes, the explanation, commit links.
    let v = server.store_view(&acme, store).await;
    assert_eq!(v["state"], "refused");
    assert!(
        v["explanation"]["meaning"]
            .as_str()
            .unwrap()
            .contains("refused")
    );
    assert!(
        v["explanation"]["action"]
            .as_str()
            .unwrap()
            .contains("fleet sign")
    );
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["active"], true);
    assert!(nodes[0]["enrolled_at"].is_string() && nodes[0]["revoked_at"].is_null());
    let key_id = nodes[0]["key_id"].as_str().unwrap().to_owned();
    let reports = v["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 4);
    assert_eq!(reports[0]["outcome"], "refused", "newest first");
    let url = format!("https://git.example.com/acme/fleet/-/commit/{COMMIT}");
    assert_eq!(reports[0]["commit_url"], url.as_str());

    // The page.
    let p = server
        .page("GET", "/stores/acme/soho", Some(&acme), None)
        .await;
    assert_eq!(p.status, 200);
    let b = &p.body;
    assert!(b.contains("<span class=\"badge s-refused\">refused</span>"));
    assert!(b.contains("re-sign the release"), "what to do");
    assert!(b.contains(&key_id), "node key id");
    assert!(b.contains("Revoke node key…") && b.contains("action=\"/stores/acme/soho/revoke\""));
    let first_refused = b.find("badge o-refused").unwrap();
    let first_converged = b.find("badge o-converged").unwrap();
    assert!(first_refused < first_converged, "timeline newest first");
    assert!(b.contains(&format!("href=\"{url}\"")), "commit link");
    assert!(b.contains("<h4>menu · 1 change from"), "{b}");
    assert!(b.contains("<h4>access · 1 change from"));
    assert!(b.contains("<h4>settings · 1 change from"));
    assert!(b.contains("price: 1099 → 1199"));
    assert!(b.contains("<span class=\"del\">-price: 1099</span>"));
    assert!(b.contains("<span class=\"add\">+price: 1199</span>"));
    assert!(b.contains("night-manager"), "overrides");
    assert!(b.contains("the release expired"), "refusal reason");
    assert!(b.contains("edge unreachable"), "errors");
    assert!(b.contains("menu item without a category"), "warnings");
    assert!(b.contains("1.5 s"), "duration");

    // Without a template: the short id, no link.
    let plain = Server::start(&db.url, ServerOpts::default());
    let v = plain.store_view(&acme, store).await;
    assert!(v["reports"][0]["commit_url"].is_null());
    let p = plain
        .page("GET", "/stores/acme/soho", Some(&acme), None)
        .await;
    assert!(!p.body.contains("git.example.com"));
    assert!(p.body.contains("<code class=\"commit\" title=\"3f2c000000000000000000000000000000000000\">3f2c000000</code>"));

    // Revoked: the node shows when.
    let r = server
        .post_as(&acme, "/api/v1/stores/acme/soho/revoke")
        .await;
    assert_eq!(r.status, 200);
    let v = server.store_view(&acme, store).await;
    assert_eq!(v["nodes"][0]["active"], false);
    assert!(v["nodes"][0]["revoked_at"].is_string());
    assert_eq!(v["state"], "unenrolled");
}

async fn tenant_page_shows_rollout(db: TestDb) {
    fleet_of_250(&db).await;
    let server = Server::start(&db.url, ServerOpts::default());
    let acme = server.operator(&["acme"]);
    let r = server.get_as(&acme, "/api/v1/tenants/acme").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let v = r.body;
    assert_eq!(
        (v["stores"].clone(), v["applied"].clone()),
        (json!(250), json!(10))
    );
    assert_eq!(
        v["revisions"],
        json!([{"desired_revision": 2, "stores": 250, "applied": 10}])
    );
    assert_eq!(v["failing"].as_array().unwrap().len(), 1);
    assert_eq!(v["failing"][0]["store"], "acme/s015");
    assert_eq!(v["refused"].as_array().unwrap().len(), 0);
    // Behind: the 5 out of sync and the 234 unenrolled stores.
    assert_eq!(v["behind"].as_array().unwrap().len(), 239);
    assert_eq!(v["counts"]["unenrolled"], 234);

    let p = server.page("GET", "/tenants/acme", Some(&acme), None).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("10 of 250 (4%)"), "{}", p.body);
    assert!(p.body.contains("aria-valuenow=\"4\""));
    assert!(p.body.contains("Failing") && p.body.contains("acme/s015"));
    assert!(p.body.contains("All 239 on the overview"));
    assert!(p.body.contains("href=\"/?tenant=acme&amp;state=failed\""));
}

/// Text in HTML: a store name and report texts with markup and quotes.
const NASTY: &str = "<script>alert('x')</script>\"";

/// How `NASTY` reads once escaped.
const NASTY_ESCAPED: &str = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;";

/// Regression test for the stored XSS that one missed `esc()` call away
/// the hand-built pages were: store names (from the repo) and report
/// texts (from nodes) holding markup and quotes show escaped on the
/// overview, the store page and the tenant page.
async fn every_page_escapes_store_names_and_report_texts(db: TestDb) {
    // A store whose name holds markup, as the fetch loop would record it
    // from a repo directory, with a verified release: unenrolled, so it is
    // listed as behind on the tenant page too.
    let store = db.open().await;
    let now = Utc::now().timestamp();
    let nasty_store = format!("acme/{NASTY}");
    store
        .set_desired(&[DesiredRow {
            store: nasty_store.clone(),
            revision: Some(1),
            commit: COMMIT.to_owned(),
            expires_at: Some(now + 86_400 * 90),
            valid: true,
            error: None,
            checked_at: now,
        }])
        .await
        .unwrap();
    store.close().await.unwrap();
    let server = Server::start(&db.url, ServerOpts::default());
    let acme = server.operator(&["acme"]);

    // A report whose texts hold markup.
    let node = server.enrolled_node("acme/soho").await;
    let mut r = report("acme/soho", "refused", Some(1), None);
    r["refusal"] = json!({"code": NASTY, "message": NASTY});
    r["errors"] = json!([NASTY]);
    r["warnings"] = json!([NASTY]);
    r["reconciler_version"] = json!(NASTY);
    let mut change = entity_change("item", NASTY);
    change["fields"] = json!([{"field": "name", "before": NASTY, "after": "Classic"}]);
    r["changes"] = json!([change]);
    let mut drift = entity_change("item", NASTY);
    drift["diff"] = json!(format!("-{NASTY}\n+{NASTY}\n"));
    r["drift"] = json!([drift]);
    assert_eq!(server.report(&node, &r).await.status, 201);

    let nasty_path = format!("/stores/acme/{}", status::listing::encode_component(NASTY));
    for path in [
        "/".to_owned(),
        "/stores/acme/soho".to_owned(),
        nasty_path.clone(),
        "/tenants/acme".to_owned(),
        format!("/?q={}", status::listing::encode_component(NASTY)),
    ] {
        let p = server.page("GET", &path, Some(&acme), None).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        assert!(!p.body.contains("<script"), "{path}: {}", p.body);
        assert!(!p.body.contains("alert('x')"), "{path}: {}", p.body);
        assert!(p.body.contains(NASTY_ESCAPED), "{path}: {}", p.body);
    }
    // The JSON API answers the text as it is.
    let r = server.get_as(&acme, &format!("/api/v1{nasty_path}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["store"], nasty_store.as_str());
}

/// The stylesheet is a file of its own, linked from every page.
async fn stylesheet_is_served_with_a_type_and_a_cache_header(db: TestDb) {
    let server = Server::start(&db.url, ServerOpts::default());
    let login = server.page("GET", "/login", None, None).await;
    let href = login
        .body
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a stylesheet link")
        .to_owned();
    assert!(href.starts_with("/assets/dashboard.css?v="), "{href}");
    let r = reqwest::get(format!("{}{href}", server.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let header = |n: &str| r.headers()[n].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "text/css; charset=utf-8");
    assert!(header("cache-control").contains("max-age="));
    let css = r.text().await.unwrap();
    assert!(css.contains(".badge{"), "{css}");
}

/// A template that is not an http(s) address with `{commit}` stops the
/// server at start (it would become a link on every page).
#[test]
fn bad_commit_url_templates_are_refused_at_start() {
    let db = TestDb::sqlite();
    for t in [
        "javascript:alert('{commit}')",
        "https://git.example.com/no-placeholder",
    ] {
        let out = std::process::Command::new(common::BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db.url,
            ])
            .args(["--commit-url-template", t])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{t}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--commit-url-template"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
