//! The trust root chain end to end (DESIGN.md §10, THREATS.md rows 19–22):
//! real `fleet root` commands make and sign the versions in a real fleet
//! repo served by `git daemon`; the real `fleet-reconciler` walks them into
//! a real `fleet-edge`; a real `fleet-status`, pinned to the same root,
//! receives the reports. After every attack nothing is applied (the edge,
//! its audit log and the applied record are unchanged) and the refusal,
//! with its code, reaches the status service. The same rows run as a table
//! against the library in `release/src/root/tests.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::e2e::{Fixture, STORE, StatusService, VARIATION, fleet};

/// A fleet whose stores pin trust root version 1 (three root keys, two of
/// them must sign; the fixture's key signs releases), enrolled with a
/// status service pinned to the same root, revision 1 applied.
struct Rooted {
    fx: Fixture,
    status: StatusService,
    operator: String,
}

impl Rooted {
    fn new() -> Rooted {
        let fx = Fixture::new();
        for k in ["root1", "root2", "root3", "release2"] {
            fleet(&fx.root, &["keygen", "--out", k]);
        }
        let pubkey = |k: &str| fx.root.join(k).join("minisign.pub").display().to_string();
        let release = fx.keys.join("minisign.pub").display().to_string();
        let rooted = Rooted::root_cmd(
            &fx,
            &[
                "init",
                "--root-key",
                &pubkey("root1"),
                "--root-key",
                &pubkey("root2"),
                "--root-key",
                &pubkey("root3"),
                "--threshold",
                "2",
                "--release-key",
                &release,
            ],
        );
        assert!(rooted.contains("wrote"), "{rooted}");
        Rooted::sign_root(&fx, "root1", None);
        Rooted::sign_root(&fx, "root2", None);
        fx.commit_and_publish("trust root version 1");
        // The store pins version 1 instead of the release key.
        let pin = fx.trust.join("root.yaml");
        std::fs::copy(fx.path("trust/root/1.yaml"), &pin).expect("pin the root");
        std::fs::remove_file(fx.trust.join("release.pub")).expect("unpin the key");
        let status_pin = fx.root.join("status-root.yaml");
        std::fs::copy(&pin, &status_pin).expect("the service's pin");
        let status = StatusService::start(&fx.root.join("status"), &fx.daemon.url(), &status_pin);
        fx.write_config_with_status(&status, "");
        fx.enroll(&status);
        let operator = status.operator("acme");
        let run = fx.once();
        run.expect_code(0, "revision 1 under root version 1");
        assert_eq!(run.outcome(), "converged", "{run}");
        let r = Rooted {
            fx,
            status,
            operator,
        };
        let view = r.status.store_view(&r.operator, STORE);
        assert_eq!(view["reports"][0]["report"]["root_version"], 1, "{view:#}");
        r
    }

    /// `fleet root ARGS --repo work`, which must succeed; its stdout.
    fn root_cmd(fx: &Fixture, args: &[&str]) -> String {
        let repo = fx.work.display().to_string();
        let mut all = vec!["root"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--repo", &repo]);
        let run = fleet(&fx.root, &all);
        run.expect_code(0, &format!("fleet root {args:?}"));
        run.stdout.clone()
    }

    /// Sign the newest (or `version`) root version with a root key.
    fn sign_root(fx: &Fixture, key: &str, version: Option<u64>) {
        let key = fx.root.join(key).join("minisign.key").display().to_string();
        let v = version.map(|v| v.to_string());
        let mut args = vec!["sign", "--key", key.as_str()];
        if let Some(v) = &v {
            args.extend(["--version", v.as_str()]);
        }
        Rooted::root_cmd(fx, &args);
    }

    fn key(&self, name: &str) -> String {
        self.fx
            .root
            .join(name)
            .join("minisign.pub")
            .display()
            .to_string()
    }

    /// `fleet sign` with another release key, committed and published.
    fn sign_releases_with(&self, key_dir: &Path, extra: &[&str]) {
        let key = key_dir.join("minisign.key").display().to_string();
        let repo = self.fx.work.display().to_string();
        let mut args = vec!["sign", "--key", key.as_str(), "--repo", repo.as_str()];
        args.extend_from_slice(extra);
        fleet(&self.fx.root, &args).expect_code(0, "fleet sign");
        self.fx.commit_and_publish("release");
    }

    /// A pass that must be refused with `code`, change nothing at the
    /// store, and reach the status service with that code.
    fn expect_refused(&self, code: &str, what: &str) -> Value {
        let before = self.fx.snapshot();
        let run = self.fx.once();
        run.expect_code(3, what);
        assert_eq!(run.outcome(), "refused", "{what}: {run}");
        let after = self.fx.snapshot();
        assert_eq!(
            (before.state, before.audit, before.applied),
            (after.state, after.audit, after.applied),
            "{what}: nothing may be applied"
        );
        let view =
            self.status
                .wait_for_store(&self.operator, STORE, Duration::from_secs(20), what, |v| {
                    v["reports"][0]["report"]["refusal"]["code"] == code
                });
        let message = view["reports"][0]["report"]["refusal"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!message.is_empty(), "{what}: a refusal says why");
        view
    }

    fn persisted_version(&self) -> u64 {
        let text = std::fs::read_to_string(self.fx.state.join("trust-root.yaml"))
            .expect("the store persisted a root");
        text.lines()
            .find_map(|l| l.strip_prefix("version: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("a version line")
    }
}

/// Row 19, and the rotation a store must follow: root version 2 adds a new
/// release key, the release job switches to it, version 3 drops the old
/// (leaked) key. The store walks 1 → 2 → 3; a release the leaked key signs
/// afterwards is refused.
#[test]
fn row_19_a_store_follows_a_key_rotation_and_refuses_the_dropped_key() {
    let r = Rooted::new();
    let fx = &r.fx;
    // Version 2: add the new release key.
    let out = Rooted::root_cmd(fx, &["propose", "--add-release-key", &r.key("release2")]);
    assert!(out.contains("wrote"), "{out}");
    Rooted::sign_root(fx, "root1", None);
    Rooted::sign_root(fx, "root3", None);
    fx.commit_and_publish("trust root version 2");
    // The release job switches to the new key and re-signs everything.
    fx.set_base_price(VARIATION, 1299);
    r.sign_releases_with(&fx.root.join("release2"), &["--all"]);
    let run = fx.once();
    run.expect_code(0, "a release signed by the new key, under version 2");
    assert_eq!(run.outcome(), "converged", "{run}");
    assert_eq!(r.persisted_version(), 2);
    fx.assert_converged();
    // Version 3: drop the old key.
    let old = fx.keys.join("minisign.pub").display().to_string();
    Rooted::root_cmd(fx, &["propose", "--remove-release-key", &old]);
    Rooted::sign_root(fx, "root2", None);
    Rooted::sign_root(fx, "root3", None);
    fx.commit_and_publish("trust root version 3");
    fx.once().expect_code(0, "walks to version 3");
    assert_eq!(r.persisted_version(), 3);
    // The overview shows who has followed the rotation.
    let behind = r
        .status
        .get(&r.operator, "/api/v1/stores?q=soho&root_below=3");
    assert_eq!(behind["stores"], serde_json::json!([]), "{behind:#}");
    let all = r
        .status
        .get(&r.operator, "/api/v1/stores?q=soho&root_below=4");
    assert_eq!(all["stores"][0]["root_version"], 3, "{all:#}");
    let page = r.status.page(&r.operator, "/?root_below=4");
    assert!(page.contains("root v3"), "{page}");
    let status = fx.reconciler(&["status"]);
    let release2 = release::trust::TrustedKeys::load_file(&fx.root.join("release2/minisign.pub"))
        .expect("release2")
        .key_id;
    assert!(
        status
            .stdout
            .contains("trust: trust root version 3 (expires ")
            && status
                .stdout
                .contains(&format!("releases signed by {release2};")),
        "{status}"
    );
    // The leaked key signs a new release: refused.
    fx.set_base_price(VARIATION, 1);
    r.sign_releases_with(&fx.keys, &[]);
    let view = r.expect_refused(
        "signature/unknown-key",
        "a release signed by the dropped key",
    );
    assert_eq!(view["reports"][0]["report"]["root_version"], 3, "{view:#}");
    // The store page says which root the store trusts.
    let page = r.status.page(&r.operator, &format!("/stores/{STORE}"));
    assert!(
        page.contains("<dt>Trust root</dt><dd>version 3</dd>"),
        "{page}"
    );
    assert!(page.contains("trust root v3"), "{page}");
    assert_ne!(
        fx.edge.pos_state(),
        fx.render(),
        "the price of 1 never arrives"
    );
}

/// Row 20: a skipped version, a chain rolled back below the version the
/// store walked to, and the same version with other bytes.
#[test]
fn row_20_a_skipped_rolled_back_or_replaced_root_version_is_refused() {
    let r = Rooted::new();
    let fx = &r.fx;
    Rooted::root_cmd(fx, &["propose", "--add-release-key", &r.key("release2")]);
    Rooted::sign_root(fx, "root1", None);
    Rooted::sign_root(fx, "root2", None);
    fx.commit_and_publish("trust root version 2");
    fx.once().expect_code(0, "walks to version 2");
    assert_eq!(r.persisted_version(), 2);
    let at_v2 = fx.head();

    // Skip: versions 3 and 4 signed, then 3 removed.
    for _ in 3..=4 {
        Rooted::root_cmd(fx, &["propose", "--expires-in", "200d"]);
        Rooted::sign_root(fx, "root1", None);
        Rooted::sign_root(fx, "root2", None);
    }
    for e in std::fs::read_dir(fx.path("trust/root")).expect("trust/root") {
        let p = e.expect("entry").path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("3.yaml"))
        {
            std::fs::remove_file(p).expect("drop version 3");
        }
    }
    fx.commit_and_publish("trust root: version 3 skipped");
    r.expect_refused("root/gap", "a skipped version");
    assert_eq!(r.persisted_version(), 2);

    // Rolled back: the Git host serves a commit from before version 2.
    let v1_only = git_first_commit_with_root(fx);
    fx.force_push(&v1_only);
    r.expect_refused(
        "root/rollback",
        "a chain that ends below the trusted version",
    );
    assert_eq!(
        r.persisted_version(),
        2,
        "the persisted version never goes down"
    );

    // Replaced: version 2 with other bytes, properly signed.
    fx.reset_to(&at_v2);
    let v2 = fx.path("trust/root/2.yaml");
    let text = std::fs::read_to_string(&v2).expect("2.yaml");
    std::fs::write(&v2, text.replace("threshold: 2", "threshold: 1")).expect("other bytes");
    Rooted::sign_root(fx, "root1", Some(2));
    Rooted::sign_root(fx, "root2", Some(2));
    fx.commit_and_publish("trust root version 2, replaced");
    r.expect_refused("root/equivocation", "the same version with other bytes");
}

/// The oldest commit of the work repo that has trust/root/1.yaml.
fn git_first_commit_with_root(fx: &Fixture) -> String {
    let log = crate::e2e::git(
        &fx.work,
        &["log", "--format=%H", "--reverse", "--", "trust/root/1.yaml"],
    );
    log.lines()
        .next()
        .expect("a commit with version 1")
        .to_owned()
}

/// Row 21: a version signed by fewer root keys than the threshold, and
/// one key's signature under two names.
#[test]
fn row_21_a_root_below_the_threshold_or_signed_twice_by_one_key_is_refused() {
    let r = Rooted::new();
    let fx = &r.fx;
    Rooted::root_cmd(fx, &["propose", "--add-release-key", &r.key("release2")]);
    Rooted::sign_root(fx, "root1", None);
    fx.commit_and_publish("trust root version 2, one signature");
    r.expect_refused("root/threshold", "one signature of two");

    // The same signature again, named as if another key made it.
    let dir = fx.path("trust/root");
    let sig: PathBuf = std::fs::read_dir(&dir)
        .expect("trust/root")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.to_string_lossy().contains("2.yaml.") && p.to_string_lossy().ends_with(".minisig")
        })
        .expect("version 2's signature");
    let other_id = std::fs::read_to_string(fx.root.join("root2/minisign.pub"))
        .ok()
        .and_then(|t| release::trust::TrustedKeys::parse_key(&t, "root2").ok())
        .map(|k| k.key_id)
        .expect("root2's id");
    std::fs::copy(&sig, dir.join(format!("2.yaml.{other_id}.minisig"))).expect("copy");
    fx.commit_and_publish("trust root version 2, one key twice");
    let view = r.expect_refused("root/threshold", "one key signing twice");
    let message = view["reports"][0]["report"]["refusal"]["message"].to_string();
    assert!(message.contains("has 1 valid signature"), "{message}");
}

/// Row 22: the newest root expired; the store refuses and the status
/// service, walking the same chain, shows the store `stale`.
#[test]
fn row_22_an_expired_root_is_refused_and_the_store_shows_stale() {
    let r = Rooted::new();
    let fx = &r.fx;
    Rooted::root_cmd(fx, &["propose", "--expires-in", "2s"]);
    Rooted::sign_root(fx, "root1", None);
    Rooted::sign_root(fx, "root2", None);
    fx.commit_and_publish("trust root version 2, expiring at once");
    std::thread::sleep(Duration::from_secs(3));
    r.expect_refused("root/expired", "an expired newest root");
    r.status.wait_for_store(
        &r.operator,
        STORE,
        Duration::from_secs(20),
        "the store shows stale",
        |v| v["state"] == "stale",
    );
    // The overview says the fleet is frozen, and /metrics has the root.
    let page = r.status.page(&r.operator, "/");
    assert!(
        page.contains("Trust root version 2 expired on"),
        "the overview warns: {page}"
    );
    let metrics = r.status.metrics();
    assert!(
        metrics.contains("fleet_status_trust_root_version 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fleet_status_trust_root_expires_at_seconds "),
        "{metrics}"
    );
}

/// Migration: a store that pins the release key as a bare `*.pub` adopts
/// version 1 once that key also signed it, then follows the chain.
#[test]
fn a_pub_store_adopts_version_1_signed_by_its_key_and_then_follows_the_chain() {
    let fx = Fixture::converged();
    for k in ["root1", "release2"] {
        fleet(&fx.root, &["keygen", "--out", k]);
    }
    let key = |k: &str| fx.root.join(k).join("minisign.pub").display().to_string();
    let release = fx.keys.join("minisign.pub").display().to_string();
    Rooted::root_cmd(
        &fx,
        &[
            "init",
            "--root-key",
            &key("root1"),
            "--threshold",
            "1",
            "--release-key",
            &release,
        ],
    );
    Rooted::sign_root(&fx, "root1", None);
    fx.commit_and_publish("trust root version 1, not yet signed by the release key");
    let run = fx.once();
    run.expect_code(0, "still on the *.pub key");
    assert!(
        run.stdout
            .contains("none of this store's *.pub keys signed it")
            || fx.newest_report()["warnings"]
                .to_string()
                .contains("none of this store's *.pub keys signed it"),
        "{run}"
    );
    assert!(!fx.state.join("trust-root.yaml").exists());

    let secret = fx.keys.join("minisign.key").display().to_string();
    Rooted::root_cmd(&fx, &["sign", "--key", &secret, "--version", "1"]);
    fx.commit_and_publish("the release key signs version 1: stores adopt it");
    fx.once().expect_code(0, "adopts version 1");
    assert!(fx.state.join("trust-root.yaml").exists());
    assert_eq!(fx.newest_report()["root_version"], 1);

    // From now on the chain decides: version 2 moves releases to release2.
    Rooted::root_cmd(
        &fx,
        &[
            "propose",
            "--add-release-key",
            &key("release2"),
            "--remove-release-key",
            &release,
        ],
    );
    Rooted::sign_root(&fx, "root1", None);
    fx.commit_and_publish("trust root version 2");
    fx.set_base_price(VARIATION, 1);
    fx.sign(&[]);
    let run = fx.once();
    run.expect_code(3, "the old key no longer signs releases");
    assert_eq!(
        fx.newest_report()["refusal"]["code"],
        "signature/unknown-key"
    );
}
