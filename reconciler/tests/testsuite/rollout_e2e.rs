//! Rollouts in waves with real parts (DESIGN.md §12, issue #19 item 5,
//! THREATS.md row 30): the real Git host, `fleet-status`, one `fleet-edge`
//! and `fleet-reconciler` per store, `fleet sign` starting a rollout and
//! `fleet rollout advance` deciding from what the stores reported.

use std::path::PathBuf;
use std::time::Duration;

use crate::e2e::{
    self, Edge, Fixture, Run, StatusService, VARIATION, reconciler_cmd, reconciler_config,
    run_process,
};

/// Another store of the fixture's tenant with its own edge and state.
struct Store {
    edge: Edge,
    config: PathBuf,
}

impl Store {
    fn start(fx: &Fixture, status: &StatusService, dir: &str, enroll: bool) -> Store {
        let id = format!("acme/{dir}");
        let edge = Edge::start(
            &fx.root.join(format!("edge-{dir}")),
            &fx.root.join(format!("edge-{dir}/edge.db")),
        );
        let state = fx.root.join(format!("state-{dir}"));
        let config = fx.root.join(format!("reconciler-{dir}.toml"));
        let text = format!(
            "{}status_url = \"{}\"\n",
            reconciler_config(&id, &fx.daemon.url(), &fx.trust, &edge, &state, 3600),
            status.url()
        );
        std::fs::write(&config, text).expect("config");
        if enroll {
            let token = status.bootstrap_token(&id);
            let run = run_process(
                &mut reconciler_cmd(
                    &config,
                    &["enroll", "--status-url", &status.url(), "--token", &token],
                ),
                Duration::from_secs(60),
            );
            run.expect_code(0, "enroll");
        }
        Store { edge, config }
    }

    fn once(&self) -> Run {
        run_process(
            &mut reconciler_cmd(&self.config, &["once"]),
            Duration::from_secs(120),
        )
    }

    /// The price of the fixture's variation at this store's edge.
    fn price(&self) -> Option<u64> {
        price_in(&self.edge.pos_state())
    }
}

fn price_in(pos: &serde_json::Value) -> Option<u64> {
    pos["menu"]["items"].as_array()?.iter().find_map(|item| {
        item["variations"].as_array()?.iter().find_map(|v| {
            (v["id"] == VARIATION)
                .then(|| v["price"].as_u64())
                .flatten()
        })
    })
}

/// The tenant's rollout policy and store labels: soho is the canary,
/// brooklyn and jfk-airport are east, harlem (a new store) is the rest.
fn set_up_waves(fx: &Fixture, abort: &str) {
    std::fs::write(
        fx.path("tenants/acme/rollout.yaml"),
        format!(
            "apiVersion: fleet/v1\nkind: Tenant\nrollout:\n  waves:\n    - {{name: canary, select: {{labels: {{canary: \"true\"}}}}}}\n    - {{name: east, select: {{labels: {{region: east}}}}}}\n    - {{name: rest}}\n  abort: {abort}\n"
        ),
    )
    .expect("rollout.yaml");
    for (dir, labels) in [
        ("soho", "{canary: \"true\"}"),
        ("brooklyn", "{region: east}"),
        ("jfk-airport", "{region: east}"),
    ] {
        let path = fx.store_file(dir, "store.yaml");
        let text = std::fs::read_to_string(&path).expect("store.yaml");
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with(&format!("  id: {dir}")) {
                    format!("{l}\n  labels: {labels}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(text.contains("labels:"), "{dir}: {text}");
        std::fs::write(&path, text).expect("store.yaml");
    }
    let repo = fx.work.display().to_string();
    e2e::fleet(&fx.root, &["new-store", "acme/harlem", "--repo", &repo]);
    fx.commit("rollout waves and a new store");
}

struct World {
    fx: Fixture,
    status: StatusService,
    brooklyn: Store,
    jfk: Store,
    harlem: Store,
    operator: String,
    token_file: PathBuf,
}

impl World {
    /// Every store converged at its first release; jfk-airport enrolled but
    /// never reporting (offline).
    fn new(abort: &str) -> World {
        let fx = Fixture::new();
        set_up_waves(&fx, abort);
        fx.sign(&[]).expect_code(0, "first releases");
        let status = StatusService::for_fixture(&fx);
        fx.write_config_with_status(&status, "");
        fx.enroll(&status);
        let brooklyn = Store::start(&fx, &status, "brooklyn", true);
        let jfk = Store::start(&fx, &status, "jfk-airport", true);
        let harlem = Store::start(&fx, &status, "harlem", true);
        fx.once().expect_code(0, "soho");
        brooklyn.once().expect_code(0, "brooklyn");
        harlem.once().expect_code(0, "harlem");
        let operator = status.operator("acme");
        let token_file = fx.root.join("operator.token");
        std::fs::write(&token_file, format!("{operator}\n")).expect("token");
        World {
            fx,
            status,
            brooklyn,
            jfk,
            harlem,
            operator,
            token_file,
        }
    }

    /// `fleet rollout advance`, once the status service has the stores'
    /// latest reports (it ingests them as they arrive).
    fn advance(&self) -> Run {
        let key = self.fx.keys.join("minisign.key").display().to_string();
        let repo = self.fx.work.display().to_string();
        let url = self.status.url();
        let token = self.token_file.display().to_string();
        let run = e2e::fleet(
            &self.fx.root,
            &[
                "rollout",
                "advance",
                "--key",
                &key,
                "--status-url",
                &url,
                "--token-file",
                &token,
                "--repo",
                &repo,
            ],
        );
        self.fx.commit_and_publish("rollout advance");
        run
    }

    fn revision(&self, store: &str) -> u64 {
        self.fx.release(store)["revision"]
            .as_u64()
            .expect("revision")
    }
}

#[test]
fn a_three_wave_rollout_advances_only_through_passed_gates_and_offline_stores_do_not_stall_it() {
    let w = World::new("{failed_percent: 50, min_stores: 1, rollback: true}");
    let fx = &w.fx;
    let before = w.brooklyn.price();
    assert!(before.is_some(), "the variation is sold in brooklyn");
    let (soho1, brooklyn1, jfk1, harlem1) = (
        w.revision("soho"),
        w.revision("brooklyn"),
        w.revision("jfk-airport"),
        w.revision("harlem"),
    );

    // A price change for every store: only the canary is signed.
    fx.set_base_price(VARIATION, 1313);
    let run = fx.sign(&[]);
    run.expect_code(0, "sign");
    assert!(run.stdout.contains("rollout: acme: rollout "), "{run}");
    assert!(
        run.stdout.contains("3 held for later rollout waves"),
        "{run}"
    );
    assert_eq!(w.revision("soho"), soho1 + 1);
    assert_eq!(w.revision("brooklyn"), brooklyn1, "east waits");
    assert_eq!(w.revision("harlem"), harlem1, "rest waits");
    // Signing again changes nothing: the rollout holds them.
    let again = fx.sign(&[]);
    assert!(again.stdout.contains("0 release(s) signed"), "{again}");

    // The canary has not reported the new revision yet: the gate waits.
    let run = w.advance();
    assert!(run.stdout.contains("wave canary: 0 at target"), "{run}");
    assert_eq!(w.revision("brooklyn"), brooklyn1);

    // The canary converges; the next advance signs east.
    fx.once().expect_code(0, "soho at revision 2");
    let run = w.advance();
    assert!(run.stdout.contains("wave canary passed"), "{run}");
    assert!(
        run.stdout.contains("wave east signed (2 store(s))"),
        "{run}"
    );
    assert_eq!(w.revision("brooklyn"), brooklyn1 + 1);
    assert_eq!(w.revision("jfk-airport"), jfk1 + 1);
    assert_eq!(w.revision("harlem"), harlem1, "rest still waits");

    // brooklyn converges; jfk-airport never reports (offline): counted
    // apart, it does not stall the wave.
    w.brooklyn.once().expect_code(0, "brooklyn");
    assert_eq!(w.brooklyn.price(), Some(1313));
    // The status service shows the rollout: waves, stores, standing, gate.
    // (It reads rollouts/ at its next fetch of the Git host.)
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let view = loop {
        let v = w.status.get(&w.operator, "/api/v1/rollouts?tenant=acme");
        if v["rollouts"][0]["waves"][1]["phase"] == "current" {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{v:#}\n{}",
            w.status.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let r = &view["rollouts"][0];
    assert_eq!(r["state"], "in_progress", "{view:#}\n{}", w.status.log());
    assert_eq!(r["waves"][0]["phase"], "passed");
    assert_eq!(r["waves"][1]["phase"], "current");
    assert_eq!(r["waves"][1]["tally"]["offline"], 1, "{view:#}");
    assert_eq!(r["waves"][1]["tally"]["at_target"], 1, "{view:#}");
    assert_eq!(r["waves"][2]["phase"], "waiting");
    rollout_page_in_a_browser(&w);
    let run = w.advance();
    assert!(run.stdout.contains("1 offline of 2"), "shown: {run}");
    assert!(
        run.stdout.contains("wave rest signed (1 store(s))"),
        "{run}"
    );
    assert_eq!(w.revision("harlem"), harlem1 + 1);

    w.harlem.once().expect_code(0, "harlem");
    let run = w.advance();
    assert!(run.stdout.contains("rollout completed"), "{run}");
    let status = e2e::fleet(
        &fx.root,
        &[
            "rollout",
            "status",
            "--repo",
            &fx.work.display().to_string(),
        ],
    );
    assert!(status.stdout.contains("completed"), "{status}");
    // The jfk-airport Pi, back online, gets its release like any other.
    w.jfk.once().expect_code(0, "jfk back");
    assert_eq!(w.jfk.price(), Some(1313));
}

/// The rollout page as an operator sees it in Chromium mid-rollout.
fn rollout_page_in_a_browser(w: &World) {
    use testkit::browser::{Browser, screenshot_dir};
    let base = w.status.url();
    let b = Browser::start(1280, 900);
    b.goto(&format!("{base}/login"));
    b.type_into(&b.find("input[name=token]"), &w.operator);
    b.click(&b.find("form[action='/login'] button"));
    b.wait_until("the overview", Duration::from_secs(10), |b| {
        b.url() == format!("{base}/")
    });
    b.goto(&format!("{base}/tenants/acme"));
    b.click(&b.find("a.rollouts-link"));
    b.wait_until("the rollouts page", Duration::from_secs(10), |b| {
        b.url().ends_with("/tenants/acme/rollouts")
    });
    let section = b.find("section.rollout");
    let gate = b.text(&b.find("section.rollout p.gate"));
    assert!(gate.contains("wave east"), "{gate}");
    assert!(b.text(&section).contains("in progress"));
    let standing = |store: &str| {
        b.text(&b.find(&format!(
            "li.wave.w-current tr[data-store='{store}'] .standing"
        )))
    };
    assert_eq!(standing("acme/brooklyn"), "at target");
    assert_eq!(standing("acme/jfk-airport"), "offline");
    assert_eq!(
        b.find_all("li.wave.w-passed tr[data-store='acme/soho']")
            .len(),
        1,
        "the canary passed"
    );
    let shot = screenshot_dir().join("real-rollout.png");
    b.screenshot_full_page(&shot);
    println!("screenshot: {}", shot.display());
}

/// THREATS.md row 30: a wave that fails on many stores aborts the
/// rollout; later waves never move, and with rollback the moved stores
/// return to their previous state.
#[test]
fn row_30_a_failing_wave_aborts_the_rollout_rolls_back_and_later_waves_never_move() {
    let mut w = World::new("{failed_percent: 50, min_stores: 1, rollback: true}");
    let original = w.fx.edge.pos_state();
    let brooklyn1 = w.revision("brooklyn");
    let harlem1 = w.revision("harlem");
    w.fx.set_base_price(VARIATION, 1414);
    w.fx.sign(&[]).expect_code(0, "sign");
    let soho2 = w.revision("soho");

    // The canary's edge is down: its pass fails.
    w.fx.edge.kill();
    let run = w.fx.once();
    run.expect_code(1, "the canary fails");
    let run = w.advance();
    assert!(run.stdout.contains("aborted: wave canary: 1 of 1"), "{run}");
    assert!(run.stdout.contains("rolled back 1 store(s)"), "{run}");
    let release = w.fx.release("soho");
    assert_eq!(release["revision"], soho2 + 1, "a new revision");
    assert_eq!(release["urgent"], true, "rollbacks are urgent");
    assert_eq!(w.revision("brooklyn"), brooklyn1, "east never moved");
    assert_eq!(w.revision("harlem"), harlem1, "rest never moved");

    // Advancing again decides nothing; signing the same sources does not
    // start the rollout again.
    let run = w.advance();
    assert!(run.stdout.contains("no rollout in progress"), "{run}");
    let run = w.fx.sign(&[]);
    assert!(run.stdout.contains("was aborted"), "{run}");
    assert_eq!(w.revision("brooklyn"), brooklyn1);

    // The canary comes back and converges to what it had before.
    assert!(w.fx.edge.restart(), "the edge restarts");
    w.fx.once().expect_code(0, "soho after the rollback");
    assert_eq!(price_in(&w.fx.edge.pos_state()), price_in(&original));
}
