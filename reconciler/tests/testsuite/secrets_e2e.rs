//! Secret values end to end (DESIGN.md §11, THREATS.md rows 24–25): the real
//! `fleet`, `fleet-reconciler` and `fleet-edge`, the template's encrypted
//! PINs and real age keys. A store whose identity cannot open a value holds
//! that entity back and converges everything else; once head office writes
//! its recipient and rewraps, the next release converges it; and no PIN
//! hash reaches a report, the reconciler's output or a support bundle.

use std::path::Path;

use serde_json::Value;

use crate::e2e::{Fixture, fleet};

/// The ids of the users the edge has.
fn edge_users(fx: &Fixture) -> Vec<String> {
    let mut ids: Vec<String> = fx.edge.pos_state()["access"]["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Fail if anything under `dir` holds a PIN hash.
fn assert_no_hash_under(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            assert_no_hash_under(&p);
        } else if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains("$argon2id$"),
                "{} holds a PIN hash",
                p.display()
            );
        }
    }
}

#[test]
fn a_replaced_pi_holds_back_what_it_cannot_open_converges_the_rest_then_everything_after_the_rewrap()
 {
    let fx = Fixture::new();
    // The Pi is replaced before its first pass: a new identity, which
    // nothing in the repo is encrypted to yet.
    let key = fx.state.join("age.key");
    std::fs::remove_file(&key).expect("remove the old identity");
    let out = fleet(
        &fx.root,
        &["secret", "keygen", "--out", &key.display().to_string()],
    );
    let recipient = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("recipient: "))
        .expect("recipient")
        .to_owned();

    let run = fx.once();
    run.expect_code(0, "held back is not a failure");
    assert_eq!(run.outcome(), "converged", "{run}");
    assert!(
        edge_users(&fx).is_empty(),
        "no user could be opened: {:?}",
        edge_users(&fx)
    );
    let report = fx.newest_report();
    let held: Vec<&str> = report["held_back"]
        .as_array()
        .expect("held_back in the report")
        .iter()
        .map(|h| h["id"].as_str().expect("id"))
        .collect();
    assert!(
        held.contains(&"sam-rivera") && held.contains(&"alex-morgan"),
        "{held:?}"
    );
    assert!(
        report["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w
                .as_str()
                .is_some_and(|w| w.contains("user sam-rivera held back"))),
        "{report:#}"
    );
    // Everything else converged: the menu is the render's.
    let edge = fx.edge.pos_state();
    let render_menu = {
        let repo = fx.work.display().to_string();
        let r = fleet(&fx.root, &["render", crate::e2e::STORE, "--repo", &repo]);
        let v: Value = serde_saphyr::from_str(&r.stdout).expect("render");
        v["menu"].clone()
    };
    assert_eq!(edge["menu"], render_menu);

    // Head office: the new recipient, a rewrap, a release.
    let repo = fx.work.display().to_string();
    fleet(
        &fx.root,
        &[
            "secret",
            "recipients",
            "--store",
            crate::e2e::STORE,
            "--recipient",
            &recipient,
            "--repo",
            &repo,
        ],
    );
    fx.rewrap();
    fx.commit("soho's new Pi");
    fx.sign(&[]);
    let run = fx.once();
    run.expect_code(0, "after the rewrap");
    assert_eq!(run.outcome(), "converged", "{run}");
    assert!(
        fx.newest_report().get("held_back").is_none(),
        "nothing held back"
    );
    fx.assert_converged();
    assert!(edge_users(&fx).contains(&"sam-rivera".to_owned()));
    // The edge has the hashes it needs to check PINs...
    assert!(fx.edge.state_text().contains("$argon2id$"));
    // ...and nothing the store sends or keeps for people holds one.
    assert!(!run.stdout.contains("$argon2id$") && !run.stderr.contains("$argon2id$"));
    assert_no_hash_under(&fx.state.join("outbox"));
    let bundle = fx.root.join("bundle.tar.gz");
    let out = fx.reconciler(&[
        "diagnose",
        "--no-journal",
        "--out",
        &bundle.display().to_string(),
    ]);
    out.expect_code(0, "diagnose");
    let listing = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(&bundle)
        .output()
        .expect("tar");
    assert!(listing.status.success());
    assert!(!String::from_utf8_lossy(&listing.stdout).contains("$argon2id$"));
}
