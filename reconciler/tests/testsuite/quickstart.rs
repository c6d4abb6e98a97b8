//! `fleet quickstart` end to end (DESIGN.md §7, issue #8 items 1–2): the
//! real command with the real servers beside it, in a temporary directory.
//! It must converge its demo change on both stores, say where the dashboard
//! is and which token signs in, leave the demo commit in the repo's history,
//! and leave no process behind: after `--exit-after-demo`, after Ctrl-C,
//! and after being killed outright. Re-running on its directory replaces
//! it; a directory it did not make is refused and left alone.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::e2e::{self, Guarded, RECONCILER, Run, fleet_bin, run_process};

/// One quickstart run may take this long in a debug build on a busy machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(400);

/// The servers beside `fleet`, so that the quickstart never builds them.
fn binaries_ready() {
    e2e::edge_bin();
    e2e::status_bin();
    assert!(
        Path::new(RECONCILER).is_file(),
        "cargo builds fleet-reconciler for the reconciler's tests"
    );
}

fn quickstart(args: &[&str]) -> Command {
    let mut cmd = Command::new(fleet_bin());
    cmd.arg("quickstart")
        .args(args)
        .env_remove("FLEET_SIGNING_PASSWORD");
    cmd
}

/// Processes whose command line mentions `dir` (Linux `/proc`).
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        if pid == std::process::id().to_string() {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// No process of the quickstart in `dir` may be left (bounded wait).
fn assert_nothing_left(dir: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_under(dir);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes of the quickstart are still running after {within:?}:\n{}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every `http://127.0.0.1:PORT` the output names is closed.
fn assert_ports_closed(stdout: &str) {
    let ports: Vec<u16> = stdout
        .split("http://127.0.0.1:")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse().ok())
        })
        .collect();
    assert!(ports.len() >= 3, "status and two edges: {stdout}");
    for port in ports {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
            "port {port} still answers after the quickstart stopped"
        );
    }
}

fn assert_demo_ran(run: &Run, dir: &Path) {
    let out = &run.stdout;
    assert!(out.contains("Dashboard:        http://127.0.0.1:"), "{run}");
    assert!(out.contains("Operator token:   fso_"), "{run}");
    for store in ["acme/soho", "acme/brooklyn"] {
        assert!(
            out.contains(&format!("{store} applied revision 2")),
            "{store} converged on the demo change: {run}"
        );
        assert!(
            out.contains(&format!(
                "{store}: fleet-edge now sells bacon-cheeseburger-single at 13.99"
            )),
            "{run}"
        );
    }
    // The demo change went out in two waves: SoHo, then the rest.
    let started = out
        .find("rollout: acme: rollout ")
        .expect("the rollout started");
    let soho = out.find("acme/soho applied revision 2").expect("soho");
    let passed = out
        .find("wave canary passed")
        .expect("the canary's gate passed");
    let brooklyn = out
        .find("acme/brooklyn applied revision 2")
        .expect("brooklyn");
    let done = out
        .find("rollout completed")
        .expect("the rollout completed");
    assert!(
        started < soho && soho < passed && passed < brooklyn && brooklyn < done,
        "in wave order: {run}"
    );
    let log = e2e::git(&dir.join("repo"), &["log", "--format=%s"]);
    assert!(
        log.contains("Demo: bacon-cheeseburger-single costs 13.99"),
        "the demo commit is in the repo's history:\n{log}"
    );
    let pushed = e2e::git(&dir.join("git/fleet.git"), &["log", "--format=%s", "main"]);
    assert_eq!(log, pushed, "the Git host has the repo's main");
}

#[test]
fn quickstart_converges_the_demo_exits_clean_and_reruns_on_its_directory() {
    binaries_ready();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("qs");
    let d = dir.display().to_string();

    let run = run_process(
        &mut quickstart(&["--dir", &d, "--exit-after-demo"]),
        RUN_TIMEOUT,
    );
    run.expect_code(0, "first quickstart");
    assert_demo_ran(&run, &dir);
    assert!(
        run.stdout
            .contains("everything the quickstart started has stopped"),
        "{run}"
    );
    assert_nothing_left(&dir, Duration::from_secs(5));
    assert_ports_closed(&run.stdout);

    let again = run_process(
        &mut quickstart(&["--dir", &d, "--exit-after-demo"]),
        RUN_TIMEOUT,
    );
    again.expect_code(0, "second quickstart on the same directory");
    assert!(
        again
            .stdout
            .contains("replaced the one of an earlier quickstart"),
        "{again}"
    );
    assert_demo_ran(&again, &dir);
    assert_nothing_left(&dir, Duration::from_secs(5));
    assert_ports_closed(&again.stdout);
}

#[test]
fn quickstart_refuses_a_directory_it_did_not_make() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("notes.txt"), "keep me").expect("write");
    let d = tmp.path().display().to_string();
    let run = run_process(&mut quickstart(&["--dir", &d]), Duration::from_secs(60));
    run.expect_code(2, "a foreign directory");
    assert!(
        run.stderr.contains("refusing to use")
            && run.stderr.contains("only deletes directories it made"),
        "{run}"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("notes.txt")).expect("still there"),
        "keep me"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("ls").count(),
        1,
        "nothing added"
    );
}

/// A quickstart left running; its stdout lines arrive on a channel.
fn start_running(dir: &Path) -> (Guarded, mpsc::Receiver<String>) {
    let mut child = Guarded::new(
        quickstart(&["--dir", &dir.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn fleet quickstart"),
    );
    let stdout = child.child().stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let ready = line.contains("Press Ctrl-C to stop.");
                seen.push(line);
                if ready {
                    return (child, rx);
                }
            }
            Err(_) => panic!(
                "the quickstart did not get ready within {RUN_TIMEOUT:?}:\n{}",
                seen.join("\n")
            ),
        }
    }
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
    rustix::process::kill_process(pid, sig).expect("kill");
}

#[test]
fn ctrl_c_stops_every_part_and_a_second_quickstart_is_refused_meanwhile() {
    binaries_ready();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("qs");
    let (mut child, rx) = start_running(&dir);

    let second = run_process(
        &mut quickstart(&["--dir", &dir.display().to_string()]),
        Duration::from_secs(60),
    );
    second.expect_code(2, "a second quickstart on a running one's directory");
    assert!(second.stderr.contains("already running"), "{second}");

    signal(child.id(), rustix::process::Signal::INT);
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .expect("the quickstart stops within 60 s of Ctrl-C");
    assert_eq!(status.code(), Some(0), "Ctrl-C is the normal way to stop");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("stopping (SIGINT)")),
        "{rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.contains("everything the quickstart started has stopped")),
        "{rest:?}"
    );
    assert_nothing_left(&dir, Duration::from_secs(5));
}

#[test]
fn children_die_with_a_killed_quickstart() {
    binaries_ready();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("qs");
    let (mut child, _rx) = start_running(&dir);
    assert!(
        processes_under(&dir).len() >= 6,
        "guard, status, two edges, two reconcilers: {:?}",
        processes_under(&dir)
    );
    // SIGKILL: the quickstart cannot stop anything itself; its guard must.
    child.kill();
    assert_nothing_left(&dir, Duration::from_secs(30));
}
