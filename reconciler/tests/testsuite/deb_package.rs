//! The Debian packages of `scripts/build-deb` (issue #16), built from the
//! real binaries and installed with the real `dpkg` into a throwaway root
//! (`dpkg --root`, maintainer scripts run outside it with `DPKG_ROOT`):
//! the `fleet` user from sysusers.d, the directories and their owners from
//! tmpfiles.d, the edge token, fleet-edge enabled on install, the docs at
//! the paths the units name, `systemd-analyze verify` clean on the result,
//! an upgrade that keeps the token and the administrator's conffile edit,
//! and a purge that leaves the POS database and nothing else of ours.
//!
//! `dpkg --root` changes owners, so this needs root: CI runs the suite as
//! root.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::process::Command;

use crate::packages::{as_root, build, dpkg, new_root, present, run, user_in};

#[test]
fn the_store_package_installs_upgrades_and_purges_in_a_root() {
    if !as_root("the_store_package_installs_upgrades_and_purges_in_a_root") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store_deb, office_deb) = build(&tmp.path().join("v1"), "0.1.0");
    assert!(
        store_deb.ends_with("fleet-store_0.1.0_amd64.deb"),
        "{store_deb:?}"
    );
    let info = run(Command::new("dpkg-deb").arg("--field").arg(&store_deb));
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("Depends: libc6 (>= 2.34), systemd"), "{info}");
    let conffiles = run(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&store_deb)
        .arg("conffiles"));
    assert_eq!(
        String::from_utf8_lossy(&conffiles.stdout),
        "/etc/fleet/edge.env\n"
    );

    let root = new_root(&tmp.path().join("root"));
    let o = dpkg(&root, &["-i", &store_deb.display().to_string()]);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("fleet-edge is serving"), "{said}");

    // The user, the directories and the secrets.
    let (fleet, _) = user_in(&root, "fleet");
    for (dir, mode, owner) in [
        ("etc/fleet", 0o750, 0),
        ("etc/fleet/trust", 0o750, 0),
        ("var/lib/fleet", 0o750, fleet),
        ("var/lib/fleet-edge", 0o750, fleet),
        ("var/backups/fleet-edge", 0o750, fleet),
    ] {
        let m = std::fs::metadata(root.join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!((m.mode() & 0o7777, m.uid()), (mode, owner), "{dir}");
    }
    let token = root.join("etc/fleet/edge.token");
    let m = std::fs::metadata(&token).expect("edge.token");
    assert_eq!((m.mode() & 0o777, m.uid()), (0o600, fleet));
    let token_text = std::fs::read_to_string(&token).expect("token");
    assert!(token_text.trim().len() >= 40, "{token_text}");
    let env = std::fs::metadata(root.join("etc/fleet/edge.env")).expect("edge.env");
    assert_eq!(env.mode() & 0o777, 0o640);
    assert_eq!(env.gid(), fleet, "edge.env is readable by the fleet group");

    // The binaries run, fleet-edge is enabled, the reconciler waits for
    // its config.
    let edge = root.join("usr/bin/fleet-edge");
    assert!(
        std::fs::metadata(&edge)
            .expect("fleet-edge")
            .permissions()
            .mode()
            & 0o111
            != 0
    );
    run(Command::new(&edge).arg("--version"));
    let wants = root.join("etc/systemd/system");
    assert!(present(
        &wants.join("multi-user.target.wants/fleet-edge.service")
    ));
    assert!(present(
        &wants.join("timers.target.wants/fleet-edge-backup.timer")
    ));
    assert!(!present(
        &wants.join("multi-user.target.wants/fleet-reconciler.service")
    ));

    // Every unit names docs that the package installed.
    let units = root.join("usr/lib/systemd/system");
    let mut ours = Vec::new();
    for e in std::fs::read_dir(&units).expect("units") {
        let name = e.expect("unit").file_name().to_string_lossy().into_owned();
        if !name.starts_with("fleet-") {
            continue;
        }
        let text = std::fs::read_to_string(units.join(&name)).expect("unit text");
        assert!(
            !text.contains("/usr/local/"),
            "{name} still names /usr/local"
        );
        for doc in text
            .lines()
            .filter_map(|l| l.strip_prefix("Documentation=file://"))
        {
            assert!(
                root.join(doc.trim_start_matches('/')).is_file(),
                "{name}: {doc} is not installed"
            );
        }
        ours.push(name);
    }
    assert_eq!(ours.len(), 6, "{ours:?}");

    // systemd-analyze verify on the installed units, with the machine's own
    // units and the two programs the backup unit runs.
    for e in std::fs::read_dir("/usr/lib/systemd/system").expect("system units") {
        let e = e.expect("unit");
        let to = units.join(e.file_name());
        if !to.exists() && e.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::copy(e.path(), to).expect("copy unit");
        }
    }
    for (from, to) in [("/bin/sh", "bin/sh"), ("/usr/bin/find", "usr/bin/find")] {
        std::fs::create_dir_all(root.join(to).parent().expect("dir")).expect("dir");
        std::fs::copy(from, root.join(to)).expect("copy program");
    }
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args(&ours)
        .output()
        .expect("systemd-analyze");
    let said = String::from_utf8_lossy(&verify.stderr);
    let about_ours: Vec<&str> = said.lines().filter(|l| l.contains("fleet")).collect();
    assert!(
        about_ours.is_empty(),
        "systemd-analyze verify:\n{}",
        about_ours.join("\n")
    );

    // Upgrade: the token and an administrator's edit of the conffile stay.
    let env_path = root.join("etc/fleet/edge.env");
    let mut edited = std::fs::read_to_string(&env_path).expect("edge.env");
    edited.push_str("FLEET_BACKUP_KEEP_DAYS=30\n");
    std::fs::write(&env_path, &edited).expect("edit edge.env");
    let (store_v2, _) = build(&tmp.path().join("v2"), "0.1.1");
    dpkg(&root, &["-i", &store_v2.display().to_string()]);
    assert_eq!(std::fs::read_to_string(&token).expect("token"), token_text);
    assert_eq!(
        std::fs::read_to_string(&env_path).expect("edge.env"),
        edited
    );
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).expect("status");
    assert!(status.contains("Version: 0.1.1"), "{status}");

    // Purge: ours gone, the POS database kept.
    std::fs::write(
        root.join("var/lib/fleet-edge/edge.db"),
        b"the store's sales",
    )
    .expect("db");
    dpkg(&root, &["--purge", "fleet-store"]);
    for gone in [
        "usr/bin/fleet-edge",
        "usr/bin/fleet-reconciler",
        "usr/lib/systemd/system/fleet-edge.service",
        "etc/systemd/system/multi-user.target.wants/fleet-edge.service",
        "etc/fleet",
        "var/lib/fleet",
        "usr/share/doc/fleet-store",
    ] {
        assert!(!present(&root.join(gone)), "{gone} is left after purge");
    }
    assert_eq!(
        std::fs::read(root.join("var/lib/fleet-edge/edge.db")).expect("db kept"),
        b"the store's sales"
    );

    // Head office: installs, runs, purges.
    let office = new_root(&tmp.path().join("office"));
    dpkg(&office, &["-i", &office_deb.display().to_string()]);
    run(Command::new(office.join("usr/bin/fleet-status")).arg("--version"));
    run(Command::new(office.join("usr/bin/fleet")).arg("--version"));
    let unit = std::fs::read_to_string(office.join("usr/lib/systemd/system/fleet-status.service"))
        .expect("fleet-status.service");
    assert!(
        unit.contains("ExecStart=/usr/bin/fleet-status-entrypoint"),
        "{unit}"
    );
    for doc in unit
        .lines()
        .filter_map(|l| l.strip_prefix("Documentation=file://"))
    {
        assert!(office.join(doc.trim_start_matches('/')).is_file(), "{doc}");
    }
    dpkg(&office, &["--purge", "fleet-headoffice"]);
    assert!(!office.join("usr/bin/fleet-status").exists());
    assert!(!office.join("etc/fleet-status/env").exists());
}
