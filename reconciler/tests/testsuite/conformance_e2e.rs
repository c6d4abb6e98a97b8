//! `fleet conformance edge` (DESIGN.md §14, issue #21 item 1): the real
//! `fleet` binary's kit against the real `fleet-edge` passes every check,
//! twice on the same backend (it leaves it empty); and against backends
//! that break the contract (another contract version, one that answers
//! everything with 200, one that already holds configuration) it fails
//! with exit 1 and names the check, writing nothing.

use std::process::Command;

use reconciler::conformance::CHECKS;
use serde_json::{Value, json};

use crate::e2e::{Edge, PROCESS_TIMEOUT, StandIn, fleet_bin, run_process};

fn kit(url: &str, token_file: &std::path::Path) -> crate::e2e::Run {
    run_process(
        Command::new(fleet_bin())
            .args(["conformance", "edge", "--url", url, "--token-file"])
            .arg(token_file)
            .args(["--timeout", "20s"]),
        PROCESS_TIMEOUT,
    )
}

/// The line of `check` in the kit's output.
fn line<'a>(out: &'a str, check: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(check))
        .unwrap_or_else(|| panic!("no line for check `{check}` in:\n{out}"))
}

#[test]
fn fleet_edge_passes_the_edge_conformance_kit_and_is_left_empty() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let edge = Edge::start(&tmp.path().join("edge"), &tmp.path().join("edge.db"));
    let empty = edge.pos_state();
    for round in 1..=2 {
        let run = kit(&edge.base(), &edge.token_file);
        run.expect_code(0, &format!("conformance round {round}"));
        for (check, _) in CHECKS {
            let l = line(&run.stdout, check);
            assert!(l.starts_with("ok "), "round {round}: {l}\n{run}");
        }
        assert!(
            run.stdout
                .contains(&format!("{n} of {n} checks passed", n = CHECKS.len())),
            "{run}"
        );
        // Left as found: empty, with an intact audit chain that recorded
        // the kit's writes.
        assert_eq!(edge.pos_state(), empty, "round {round}");
        edge.assert_audit_verifies();
    }
    let audit = edge.audit();
    assert!(
        audit
            .iter()
            .any(|e| e["actor"] == "reconciler" && e["commit"].as_str().is_some()),
        "the kit writes as the reconciler"
    );
    assert!(
        !audit.iter().any(|e| e["revision"] == json!(3)),
        "no audit entry for a refused write"
    );
}

#[test]
fn a_backend_of_another_contract_fails_the_first_check_and_is_asked_nothing_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let token = tmp.path().join("token");
    std::fs::write(&token, "stand-in-token\n").expect("token");
    let other = StandIn::start(
        "/healthz",
        r#"{"status": "ok", "contract": 2}"#,
        ("500 Internal Server Error", "{}"),
    );
    let run = kit(&other.base(), &token);
    run.expect_code(1, "a backend of contract 2");
    let first = line(&run.stdout, "contract");
    assert!(first.starts_with("FAIL"), "{run}");
    assert!(first.contains("edge contract 2"), "{first}");
    for (check, _) in &CHECKS[1..] {
        let l = line(&run.stdout, check);
        assert!(l.starts_with("skip") && l.contains("`contract`"), "{l}");
    }
    assert!(
        other.others.lock().expect("seen").is_empty(),
        "asked more than /healthz: {:?}",
        other.others.lock().expect("seen")
    );
}

#[test]
fn a_backend_that_answers_everything_with_200_fails_auth_and_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let token = tmp.path().join("token");
    std::fs::write(&token, "stand-in-token\n").expect("token");
    // Contract 1 at /healthz, and `{"version": 0, "settings": {}}` (no
    // menu, access or kitchen) with 200 to anything else, with or without
    // the token.
    let lax = StandIn::start(
        "/healthz",
        r#"{"status": "ok", "contract": 1}"#,
        ("200 OK", r#"{"version": 0, "settings": {}}"#),
    );
    let run = kit(&lax.base(), &token);
    run.expect_code(1, "a backend without auth or a full /state");
    assert!(line(&run.stdout, "contract").starts_with("ok "), "{run}");
    let auth = line(&run.stdout, "auth");
    assert!(
        auth.starts_with("FAIL") && auth.contains("answered 200, not 401"),
        "{auth}"
    );
    let state = line(&run.stdout, "state");
    assert!(
        state.starts_with("FAIL") && state.contains("menu") && state.contains("missing"),
        "{state}"
    );
    assert!(line(&run.stdout, "empty").starts_with("skip"), "{run}");
    let asked = lax.others.lock().expect("seen").clone();
    assert!(
        asked.iter().all(|l| l.starts_with("GET ")),
        "the kit wrote to a backend it could not read: {asked:?}"
    );
}

#[test]
fn a_backend_holding_configuration_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let edge = Edge::start(&tmp.path().join("edge"), &tmp.path().join("edge.db"));
    let r = edge.call(
        reqwest::Method::PUT,
        "/menu/categories/store-own",
        &[("If-None-Match", "*".to_owned())],
        Some(&json!({"id": "store-own", "name": "The store's own"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let before: Value = edge.pos_state();
    let audit_before = edge.audit().len();

    let run = kit(&edge.base(), &edge.token_file);
    run.expect_code(1, "a backend with configuration");
    let empty = line(&run.stdout, "empty");
    assert!(
        empty.starts_with("FAIL") && empty.contains("category `store-own`"),
        "{empty}"
    );
    assert!(line(&run.stdout, "create").starts_with("skip"), "{run}");
    assert_eq!(
        edge.pos_state(),
        before,
        "the kit changed a backend it refused"
    );
    assert_eq!(edge.audit().len(), audit_before, "the kit wrote");
}

/// Optional TLS (DESIGN.md §14): the kit, the reconciler's own client,
/// drives a `fleet-edge` serving HTTPS with a self-signed certificate
/// given as `--ca-file`; without it, the first check fails on the
/// certificate and nothing is written.
#[test]
fn the_kit_passes_over_tls_with_the_edges_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a cert");
    let (cert, key, token) = (
        tmp.path().join("edge.crt"),
        tmp.path().join("edge.key"),
        tmp.path().join("token"),
    );
    std::fs::write(&cert, issued.cert.pem()).expect("cert");
    std::fs::write(&key, issued.key_pair.serialize_pem()).expect("key");
    std::fs::write(&token, "tls-token-0123456789\n").expect("token");
    let mut child = crate::e2e::Guarded::new(
        Command::new(crate::e2e::edge_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(tmp.path().join("edge.db"))
            .arg("--token-file")
            .arg(&token)
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn fleet-edge"),
    );
    let addr = testkit::listening_addr(child.child(), std::time::Duration::from_secs(60))
        .expect("listening");
    let port = addr.rsplit(':').next().expect("a port");
    let url = format!("https://localhost:{port}");
    let run = run_process(
        Command::new(fleet_bin())
            .args(["conformance", "edge", "--url", &url, "--token-file"])
            .arg(&token)
            .arg("--ca-file")
            .arg(&cert),
        PROCESS_TIMEOUT,
    );
    run.expect_code(0, "the kit over TLS");
    let run = kit(&url, &token);
    run.expect_code(1, "without the certificate");
    assert!(line(&run.stdout, "contract").starts_with("FAIL"), "{run}");

    // The reconciler's own setup reads `edge_ca_file` from its config:
    // with it, its client talks to the HTTPS edge; a file that is not a
    // certificate stops setup with an error naming that file.
    let trust = tmp.path().join("trust");
    run_process(
        Command::new(fleet_bin())
            .arg("keygen")
            .arg("--out")
            .arg(&trust),
        PROCESS_TIMEOUT,
    )
    .expect_code(0, "keygen");
    let config = |ca: &std::path::Path| {
        let text = format!(
            "store = \"acme/soho\"\nrepo_url = \"file:///nowhere\"\nbranch = \"main\"\n\
             trust_dir = \"{}\"\nedge_url = \"{url}\"\nedge_token_file = \"{}\"\n\
             edge_ca_file = \"{}\"\nstate_dir = \"{}\"\n",
            trust.display(),
            token.display(),
            ca.display(),
            tmp.path().join("state").display(),
        );
        reconciler::config::Config::parse(&text, &tmp.path().join("reconciler.toml"))
            .expect("a valid config")
    };
    let agent = reconciler::agent::Agent::new(config(&cert)).expect("setup with the edge's CA");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    assert_eq!(
        runtime
            .block_on(agent.edge.contract())
            .expect("the agent's client trusts the edge's certificate"),
        wire::edge::CONTRACT
    );
    let not_pem = tmp.path().join("not-a-cert.pem");
    std::fs::write(
        &not_pem,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let empty = tmp.path().join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    for bad in [&not_pem, &empty, &tmp.path().join("missing.pem")] {
        let err = reconciler::agent::Agent::new(config(bad))
            .expect_err("a CA file that is not a certificate");
        let text = err.to_string();
        assert!(
            text.contains("edge CA file") && text.contains(&bad.display().to_string()),
            "{text}"
        );
    }
}
