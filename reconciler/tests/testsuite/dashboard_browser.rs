//! The status dashboard in a real headless Chromium (`testkit::browser`)
//! showing what a real `fleet-reconciler` reported: the real `fleet-edge`,
//! `fleet-reconciler enroll` and `once` passes against the real
//! `fleet-status` (see `e2e/mod.rs`), a signed price change, a local edit
//! the next pass reverts (drift), then the overview and the store page as an
//! operator signed in through the `/login` form sees them. Screenshots go to
//! `target/screenshots/real-*.png`.
//!
//! Fails, never skips, when Chromium or ChromeDriver is missing.

use std::time::Duration;

use crate::e2e::{self, Fixture, STORE, StatusService, VARIATION};
use serde_json::json;
use testkit::browser::{Browser, screenshot_dir};

const TEMPLATE: &str = "https://git.example.com/acme/fleet/-/commit/{commit}";

/// A browser signed in to the dashboard at `base` through its form.
fn sign_in(base: &str, operator: &str) -> Browser {
    let b = Browser::start(1280, 900);
    b.goto(&format!("{base}/login"));
    b.type_into(&b.find("input[name=token]"), operator);
    b.click(&b.find("form[action='/login'] button"));
    b.wait_until("the overview", Duration::from_secs(10), |b| {
        b.url() == format!("{base}/")
    });
    b
}

#[test]
fn the_dashboard_shows_real_reconciler_reports_in_a_browser() {
    let fx = Fixture::new();
    // Commit ids become links to the (made-up) Git host's pages.
    let status = StatusService::start_with(
        &fx.root.join("status"),
        &fx.daemon.url(),
        &fx.keys.join("minisign.pub"),
        &[
            "--fetch-interval-secs",
            "1",
            "--commit-url-template",
            TEMPLATE,
        ],
    );
    fx.write_config_with_status(&status, "");
    fx.enroll(&status);
    let run = fx.once();
    run.expect_code(0, "first pass");
    assert_eq!(run.outcome(), "converged", "{run}");

    // A signed price change, then a local edit the next pass reverts.
    fx.set_base_price(VARIATION, 1399);
    fx.sign(&[]);
    let run = fx.once();
    run.expect_code(0, "revision 2");
    assert_eq!(run.outcome(), "converged", "{run}");
    let edit = e2e::local_setting_edit(
        &fx.edge.base(),
        "receipt.footer",
        &json!("Jane was here"),
        "jane",
    );
    assert_eq!(edit.status, 200, "{}", edit.text);
    let run = fx.once();
    run.expect_code(0, "the pass that reverts the local edit");
    assert_eq!(run.outcome(), "drift_corrected", "{run}");

    let operator = status.operator("acme");
    let view = status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "three reports, the newest drift_corrected",
        |v| v["reports"].as_array().is_some_and(|r| r.len() == 3) && v["state"] == "drifted",
    );
    let commit = view["reports"][1]["commit"]
        .as_str()
        .expect("the converge names its commit")
        .to_owned();

    let base = status.url();

    let dir = screenshot_dir();
    let shot = |b: &Browser, name: &str| {
        let path = dir.join(format!("real-{name}.png"));
        b.screenshot_full_page(&path);
        println!("screenshot: {}", path.display());
    };
    let b = Browser::start(1280, 900);
    b.goto(&format!("{base}/"));
    assert!(b.url().ends_with("/login"), "{}", b.url());
    b.type_into(&b.find("input[name=token]"), &operator);
    b.click(&b.find("form[action='/login'] button"));
    b.wait_until("the overview", Duration::from_secs(10), |b| {
        b.url() == format!("{base}/")
    });
    // The template's three acme stores; soho reported, the others never enrolled.
    assert_eq!(b.text(&b.find("a.count[data-state=drifted] .n")), "1");
    assert_eq!(b.text(&b.find("a.count[data-state=unenrolled] .n")), "2");
    let row = b
        .find_all("table.stores tbody tr")
        .into_iter()
        .map(|r| b.text(&r))
        .find(|t| t.contains(STORE))
        .expect("the store's row");
    assert!(row.contains("drifted"), "{row}");
    assert!(
        row.contains(env!("CARGO_PKG_VERSION")),
        "reconciler version: {row}"
    );
    shot(&b, "overview");

    b.click(&b.find(&format!("a[href='/stores/{STORE}']")));
    b.wait_until("the store page", Duration::from_secs(10), |b| {
        b.url().ends_with(&format!("/stores/{STORE}"))
    });
    assert_eq!(b.text(&b.find("dd.applied")), "2");
    assert!(b.text(&b.find("dd.desired")).starts_with("2 at "));
    assert_eq!(b.find_all("ol.timeline > li").len(), 3);
    let diff = b.text(&b.find("pre.diff"));
    assert!(diff.contains("Jane was here"), "the drift diff: {diff}");
    assert!(!b.find_all("pre.diff span.add").is_empty());
    let menu = b
        .find_all("ol.timeline h4")
        .into_iter()
        .find(|h| b.text(h).starts_with("menu"))
        .expect("a menu change heading");
    assert!(b.text(&menu).contains("from"), "{}", b.text(&menu));
    let links: Vec<String> = b
        .find_all("a.commit")
        .iter()
        .filter_map(|a| b.attr(a, "href"))
        .collect();
    assert!(
        links.contains(&format!(
            "https://git.example.com/acme/fleet/-/commit/{commit}"
        )),
        "{links:?}"
    );
    shot(&b, "store");
}

/// DESIGN.md §11 on the store page: a replaced Pi enrolls with a new age
/// identity that nothing in the repo is encrypted to yet; its pass holds
/// back the users whose PIN hash it cannot open and converges the rest. The
/// store page shows a "Held back" section naming each entity and why (never
/// a hash), and the operator's fix — `fleet secret recipients` from the
/// status service, `fleet secret rewrap`, sign — makes it go away.
#[test]
fn the_store_page_shows_what_a_replaced_pi_held_back_until_the_rewrap() {
    let fx = Fixture::new();
    let status = StatusService::for_fixture(&fx);
    fx.write_config_with_status(&status, "");
    // The replacement Pi: no identity yet; enrollment makes one.
    std::fs::remove_file(fx.state.join("age.key")).expect("remove the old identity");
    fx.enroll(&status);
    let run = fx.once();
    run.expect_code(0, "held back is not a failure");
    assert_eq!(run.outcome(), "converged", "{run}");

    let operator = status.operator("acme");
    status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "a report holding back users",
        |v| {
            v["reports"][0]["report"]["held_back"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
        },
    );
    let base = status.url();
    let b = sign_in(&base, &operator);
    b.goto(&format!("{base}/stores/{STORE}"));
    let section = b.find("section.held-back");
    let text = b.text(&section);
    assert!(text.contains("Held back"), "{text}");
    assert!(text.contains("sam-rivera"), "{text}");
    assert!(text.contains("fleet secret rewrap"), "the fix: {text}");
    assert!(text.contains("user"), "{text}");
    // Held back in the timeline too, and the page carries no hash.
    assert!(
        b.find_all("ol.timeline h4")
            .iter()
            .any(|h| b.text(h).starts_with("held back")),
        "a held-back heading in the report"
    );
    let html = b.source();
    assert!(!html.contains("$argon2id$"), "no PIN hash on the page");
    assert!(!html.contains("AGE-SECRET-KEY"), "no identity on the page");
    let shot = screenshot_dir().join("real-store-held-back.png");
    b.screenshot_full_page(&shot);
    println!("screenshot: {}", shot.display());

    // The operator's fix, as docs/operations/secrets.md tells it.
    let token_file = fx.root.join("operator.token");
    std::fs::write(&token_file, format!("{operator}\n")).expect("token file");
    let repo = fx.work.display().to_string();
    let url = status.url();
    let token = token_file.display().to_string();
    e2e::fleet(
        &fx.root,
        &[
            "secret",
            "recipients",
            "--status-url",
            &url,
            "--token-file",
            &token,
            "--repo",
            &repo,
        ],
    )
    .expect_code(0, "recipients");
    fx.rewrap().expect_code(0, "rewrap");
    fx.commit("soho's new Pi");
    fx.sign(&[]).expect_code(0, "sign");
    let run = fx.once();
    run.expect_code(0, "after the rewrap");
    assert_eq!(run.outcome(), "converged", "{run}");
    status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(20),
        "a report holding nothing back",
        |v| {
            v["reports"][0]["report"].get("held_back").is_none()
                && v["reports"].as_array().is_some_and(|r| r.len() == 2)
        },
    );
    b.goto(&format!("{base}/stores/{STORE}"));
    assert!(
        b.find_all("section.held-back").is_empty(),
        "nothing held back any more"
    );
}

/// DESIGN.md §13, issue #20 item 3: the store page's "Reconcile now" and
/// "Collect support bundle" buttons reach a real `fleet-reconciler run`
/// through its long-poll (the store makes only outbound calls; its pass
/// interval is an hour, so only the button can cause the pass), and the
/// page, refreshing itself, shows the answer: the new report, linked, and
/// a bundle to download from the database.
#[test]
fn the_store_page_buttons_reach_the_store_through_its_long_poll() {
    let fx = Fixture::new();
    let status = StatusService::for_fixture(&fx);
    fx.write_config_with_status(&status, "");
    let config = std::fs::read_to_string(&fx.config).expect("config");
    assert!(config.contains("interval_secs = 60"), "{config}");
    std::fs::write(
        &fx.config,
        config.replace("interval_secs = 60", "interval_secs = 3600"),
    )
    .expect("config");
    fx.enroll(&status);
    let operator = status.operator("acme");
    let _daemon = fx.spawn_reconciler(&["run"], "daemon");
    status.wait_for_store(
        &operator,
        STORE,
        Duration::from_secs(60),
        "the daemon's first pass reported",
        |v| v["applied_revision"] == 1,
    );
    // The long-poll may announce revision 1 once more while the first pass
    // applies it (one more pass); after that the daemon is quiet for an hour.
    std::thread::sleep(Duration::from_secs(3));
    let before = status.store_view(&operator, STORE)["reports"]
        .as_array()
        .map_or(0, Vec::len);

    let base = status.url();
    let b = sign_in(&base, &operator);
    b.goto(&format!("{base}/stores/{STORE}"));
    assert_eq!(b.find_all("ol.timeline > li").len(), before);
    assert!(b.find_all("tr.action").is_empty(), "no action yet");

    // What the status service and the daemon say, when a wait fails.
    let wait = |what: &str, css: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while b.find_all(css).is_empty() {
            if std::time::Instant::now() > deadline {
                let (_, daemon) = fx.spawned_output("daemon");
                let page = b.source();
                let section = page
                    .find("<h2 id=\"actions\"")
                    .map_or(page.as_str(), |at| &page[at..(at + 3000).min(page.len())]);
                panic!(
                    "{what}: not within 60 s; the page at {}:\n{}\n{section}\nthe store view:\n{:#}\nthe daemon's log:\n{daemon}",
                    b.url(),
                    &page[..page.find("</head>").unwrap_or(0)],
                    status.store_view(&operator, STORE)["actions"]
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };

    // Reconcile now: a second pass, an hour before its time.
    b.click(&b.find("button#action-reconcile"));
    wait(
        "the action answered by a report, shown on the refreshed page",
        "tr.action.a-done td.result a",
    );
    let link = b.find("tr.action.a-done td.result a");
    let href = b.attr(&link, "href").expect("href");
    let view = status.store_view(&operator, STORE);
    let newest = &view["reports"][0];
    assert_eq!(href, format!("#report-{}", newest["id"]), "{view:#}");
    assert_eq!(newest["outcome"], "no_change", "{view:#}");
    assert_eq!(
        newest["report"]["actions"],
        json!([view["actions"][0]["id"]])
    );
    assert_eq!(b.find_all("ol.timeline > li").len(), before + 1);
    assert_eq!(b.find_all(&format!("li#report-{}", newest["id"])).len(), 1);
    let shot = screenshot_dir().join("real-store-reconcile-now.png");
    b.screenshot_full_page(&shot);
    println!("screenshot: {}", shot.display());

    // Collect support bundle: the daemon collects it and uploads it.
    b.click(&b.find("button#action-support-bundle"));
    wait(
        "the bundle's download link on the refreshed page",
        "tr.action.a-done td.result a.download",
    );
    let href = b
        .attr(&b.find("tr.action.a-done td.result a.download"), "href")
        .expect("href");
    assert!(
        href.starts_with(&format!("/stores/{STORE}/support-bundles/")),
        "{href}"
    );
    assert_eq!(b.find_all("table.bundles tbody tr").len(), 1);
    let shot = screenshot_dir().join("real-store-support-bundle.png");
    b.screenshot_full_page(&shot);
    println!("screenshot: {}", shot.display());

    // The link downloads, with the dashboard's cookie, a real bundle.
    let (code, bytes) = status.get_bytes(("Cookie", &format!("fleet_operator={operator}")), &href);
    assert_eq!(code, 200);
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    for entry in archive.entries().expect("a tar.gz") {
        let entry = entry.expect("an entry");
        names.push(entry.path().expect("path").display().to_string());
    }
    for want in ["versions.txt", "config.toml", "state/last_pass.json"] {
        assert!(
            names.iter().any(|n| n.ends_with(want)),
            "{want} in {names:?}"
        );
    }
    // Nothing left behind on the Pi.
    let leftovers: Vec<_> = std::fs::read_dir(&fx.state)
        .expect("state dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("support-bundle"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
