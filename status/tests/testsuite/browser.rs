//! The dashboard in a real headless Chromium (through ChromeDriver, see
//! `testkit::browser`): the real `fleet-status` reading a real signed fleet
//! repo, stores that report with signed requests, an operator who signs
//! in through the real `/login` form, the overview and a store page on a
//! desktop and on a phone-sized window. Screenshots go to
//! `target/screenshots/` (paths printed).
//!
//! Fails, never skips, when Chromium or ChromeDriver is missing.
//!
//! The reports come from the test's own signed node requests
//! (`common::Server::report`), so every badge colour and a second page of
//! stores can be shown; `reconciler/tests/testsuite/dashboard_browser.rs` shows
//! reports of the real `fleet-reconciler` and `fleet-edge` the same way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::{FleetRepo, Server, ServerOpts, TestDb, entity_change, git, ingest, report};
use chrono::Utc;
use serde_json::json;
use status::store::{DesiredRow, NewReport, Node};
use testkit::browser::{Browser, screenshot_dir};

const TEMPLATE: &str = "https://git.example.com/acme/fleet/-/commit/{commit}";

/// 120 `globex/store-NNN` stores in a spread of states, written through
/// the storage layer, so the overview has pages and every badge colour.
async fn globex_stores(db: &TestDb, commit: &str) {
    let store = db.open().await;
    let now = Utc::now().timestamp();
    let rows: Vec<DesiredRow> = (0..120)
        .map(|i| DesiredRow {
            store: format!("globex/store-{i:03}"),
            revision: Some(7),
            commit: commit.to_owned(),
            expires_at: Some(now + if i % 17 == 0 { 5 } else { 60 } * 86_400),
            valid: true,
            error: None,
            checked_at: now,
        })
        .collect();
    // Record them without dropping acme's rows from the repo scan.
    let mut all = rows.clone();
    for s in ["acme/brooklyn", "acme/jfk-airport", "acme/soho"] {
        let row = store.get_store(s).await.unwrap().unwrap();
        all.push(DesiredRow {
            store: s.to_owned(),
            revision: row.desired_revision,
            commit: row.desired_commit.unwrap_or_default(),
            expires_at: row.expires_at,
            valid: row.release_valid,
            error: row.release_error,
            checked_at: row.checked_at.unwrap_or(now),
        });
    }
    store.set_desired(&all).await.unwrap();
    for i in 0..110 {
        let s = format!("globex/store-{i:03}");
        let key_id = format!("{:016x}", 0xa000 + i);
        store
            .enroll_node(&Node {
                key_id: key_id.clone(),
                public_key: format!("browser-test-key-{i}"),
                store: s.clone(),
                enrolled_at: now - 86_400,
                revoked_at: None,
                recipient: None,
            })
            .await
            .unwrap();
        // DESIGN.md §12's two states: a release held for its effective
        // time, and one held while a deny window is open.
        let (outcome, applied, ago) = match i % 10 {
            _ if i == 4 => ("scheduled", 6, 9),
            _ if i == 14 => ("waiting_window", 6, 19),
            0 => ("failed", 6, 40),
            1 => ("no_change", 6, 100),
            2 => ("drift_corrected", 7, 20),
            3 => ("converged", 7, 1000),
            _ => ("converged", 7, 5 + i64::from(i)),
        };
        ingest(
            &store,
            &NewReport {
                store: s.clone(),
                key_id,
                received_at: now - ago,
                outcome: outcome.to_owned(),
                desired_revision: Some(7),
                applied_revision: Some(applied),
                commit: Some(commit.to_owned()),
                drift: usize::from(outcome == "drift_corrected"),
                overridden: 0,
                reconciler_version: if i % 4 == 0 { "0.1.0" } else { "0.2.0" }.to_owned(),
                root_version: None,
                release_api: None,
                body: report(&s, outcome, Some(7), Some(applied)).to_string(),
            },
        )
        .await;
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_in_a_real_browser() {
    let db = TestDb::sqlite();
    let repo = FleetRepo::new();
    let commit = git(&repo.work(), &["rev-parse", "HEAD"]).trim().to_owned();
    let server = Server::start(
        &db.url,
        ServerOpts {
            extra: vec![
                "--fetch-interval-secs".into(),
                "3600".into(),
                "--commit-url-template".into(),
                TEMPLATE.into(),
            ],
            ..ServerOpts::fetching(&repo)
        },
    );
    let operator = server.operator(&["acme", "globex"]);
    server
        .wait_for(&operator, "acme/soho", "desired revision 1", |v| {
            v["desired_revision"] == 1
        })
        .await;
    globex_stores(&db, &commit).await;

    // Three acme stores report with signed requests.
    let with_commit = |mut r: serde_json::Value| {
        r["commit"] = json!(commit);
        r["fetched_commit"] = json!(commit);
        r
    };
    let brooklyn = server.enrolled_node("acme/brooklyn").await;
    let mut r = with_commit(report("acme/brooklyn", "converged", Some(1), Some(1)));
    r["changes"] = json!([
        entity_change("item", "classic-burger"),
        {"kind": "setting", "id": "receipt-footer", "change": "changed",
         "fields": [{"field": "text", "before": "Thanks!", "after": "Thank you, see you soon!"}]},
    ]);
    assert_eq!(server.report(&brooklyn, &r).await.status, 201);
    let soho = server.enrolled_node("acme/soho").await;
    let mut r = with_commit(report("acme/soho", "converged", Some(1), Some(1)));
    r["changes"] = json!([entity_change("item", "classic-burger")]);
    assert_eq!(server.report(&soho, &r).await.status, 201);
    let mut r = with_commit(report("acme/soho", "drift_corrected", Some(1), Some(1)));
    let mut d = entity_change("item", "classic-burger");
    d["diff"] = json!(
        "--- item classic-burger (store)\n+++ item classic-burger (repo)\n@@ -1,2 +1,2 @@\n name: Classic Burger\n-price: 1099\n+price: 1199\n"
    );
    r["drift"] = json!([d]);
    r["warnings"] = json!(["the edge answered slowly (2.1 s)"]);
    assert_eq!(server.report(&soho, &r).await.status, 201);
    let jfk = server.enrolled_node("acme/jfk-airport").await;
    let r = with_commit(report("acme/jfk-airport", "refused", Some(1), None));
    assert_eq!(server.report(&jfk, &r).await.status, 201);

    let dir = screenshot_dir();
    // What the window shows, and the whole page as `NAME-full.png`.
    let shot = move |b: &Browser, name: &str| {
        let path = dir.join(format!("{name}.png"));
        b.screenshot(&path);
        println!("screenshot: {}", path.display());
        let full = dir.join(format!("{name}-full.png"));
        b.screenshot_full_page(&full);
        println!("screenshot: {}", full.display());
    };

    let counts = server.get_as(&operator, "/api/v1/stores").await.body["counts"].clone();

    // Blocking WebDriver calls: off the async runtime.
    let base = server.base.clone();
    let commit2 = commit.clone();
    tokio::task::spawn_blocking(move || {
        let commit = commit2;
        let b = Browser::start(1280, 900);

        // Not signed in: the sign-in form; sign in through it.
        b.goto(&format!("{base}/"));
        assert!(b.url().ends_with("/login"), "{}", b.url());
        shot(&b, "login");
        b.type_into(&b.find("input[name=token]"), &operator);
        b.click(&b.find("form[action='/login'] button"));
        b.wait_until("the overview", Duration::from_secs(10), |b| {
            b.url() == format!("{base}/")
        });
        assert!(b.title().starts_with("Fleet"), "{}", b.title());

        // The counts, each a link that filters.
        let count = |state: &str| b.text(&b.find(&format!("a.count[data-state={state}] .n")));
        for (state, n) in counts.as_object().unwrap() {
            assert_eq!(count(state), n.to_string(), "{state}");
        }
        // What the stores above report: the acme three and globex's spread.
        assert_eq!(counts["synced"], 61);
        assert_eq!(
            (count("drifted"), count("refused"), count("stale")),
            ("11".into(), "1".into(), "7".into())
        );
        assert_eq!(
            (count("scheduled"), count("waiting_window")),
            ("1".into(), "1".into())
        );
        assert_eq!(b.text(&b.find("b.total")), "123");
        assert_eq!(b.find_all("table.stores tbody tr").len(), 100);
        shot(&b, "overview-desktop");

        // The store row.
        b.goto(&format!("{base}/?q=soho"));
        let rows = b.find_all("table.stores tbody tr");
        assert_eq!(rows.len(), 1);
        let row = b.text(&rows[0]);
        assert!(
            row.contains("acme/soho") && row.contains("drifted"),
            "{row}"
        );
        let cells: Vec<String> = b
            .find_all("table.stores tbody tr td")
            .iter()
            .map(|c| b.text(c))
            .collect();
        assert_eq!(cells[2..4], ["1", "1"], "desired and applied: {cells:?}");
        assert!(
            cells[4].ends_with("ago") || cells[4] == "just now",
            "{cells:?}"
        );
        let badge = b.find("table.stores .badge");
        assert_eq!(b.css(&badge, "background-color"), "rgba(255, 248, 197, 1)");

        // The held states, each with its own colour and words.
        b.goto(&format!("{base}/?state=waiting_window"));
        let rows = b.find_all("table.stores tbody tr");
        assert_eq!(rows.len(), 1);
        assert!(b.text(&rows[0]).contains("globex/store-014"));
        let badge = b.find("table.stores .badge.s-waiting_window");
        assert_eq!(b.text(&badge), "waiting for window");
        assert_eq!(b.css(&badge, "background-color"), "rgba(251, 239, 255, 1)");
        b.goto(&format!("{base}/stores/globex/store-004"));
        assert!(
            b.text(&b.find("section.explain"))
                .contains("keeps it until its effective time"),
            "the scheduled state explained"
        );

        // A count filters.
        b.goto(&format!("{base}/"));
        b.click(&b.find("a.count[data-state=refused]"));
        b.wait_until("the refused filter", Duration::from_secs(10), |b| {
            b.url().ends_with("?state=refused")
        });
        assert_eq!(b.find_all("table.stores tbody tr").len(), 1);

        // The store page: revisions, the drift diff, a commit link.
        b.goto(&format!("{base}/?q=soho"));
        b.click(&b.find("table.stores a[href='/stores/acme/soho']"));
        b.wait_until("the store page", Duration::from_secs(10), |b| {
            b.url().ends_with("/stores/acme/soho")
        });
        assert!(b.text(&b.find("h1")).contains("acme/soho"));
        assert_eq!(b.text(&b.find("dd.applied")), "1");
        assert!(b.text(&b.find("dd.desired")).starts_with("1 at "));
        let add = b.find("pre.diff span.add");
        assert_eq!(b.text(&add), "+price: 1199");
        assert_eq!(b.css(&add, "background-color"), "rgba(218, 251, 225, 1)");
        assert_eq!(b.text(&b.find("pre.diff span.del")), "-price: 1099");
        let link = b.find("a.commit");
        assert_eq!(
            b.attr(&link, "href").unwrap(),
            format!("https://git.example.com/acme/fleet/-/commit/{commit}")
        );
        assert_eq!(b.text(&link), commit[..10]);
        assert_eq!(b.find_all("ol.timeline > li").len(), 2);
        shot(&b, "store-desktop");

        b.goto(&format!("{base}/tenants/acme"));
        assert!(b.text(&b.find(".big")).contains("2 of 3"));
        shot(&b, "tenant-desktop");

        // A phone: no sideways scrolling, the table becomes cards.
        b.set_window(390, 844);
        let page_width = |b: &Browser| {
            b.execute("return document.documentElement.scrollWidth;", vec![])
                .as_u64()
                .unwrap()
        };
        b.goto(&format!("{base}/"));
        assert_eq!(b.css(&b.find("table.stores thead"), "display"), "none");
        assert!(
            page_width(&b) <= 390,
            "overview is {} px wide",
            page_width(&b)
        );
        shot(&b, "overview-phone");
        b.goto(&format!("{base}/stores/acme/soho"));
        assert!(
            page_width(&b) <= 390,
            "store page is {} px wide",
            page_width(&b)
        );
        shot(&b, "store-phone");
        b.goto(&format!("{base}/tenants/globex"));
        assert!(
            page_width(&b) <= 390,
            "tenant page is {} px wide",
            page_width(&b)
        );
        shot(&b, "tenant-phone");
    })
    .await
    .unwrap();
}
