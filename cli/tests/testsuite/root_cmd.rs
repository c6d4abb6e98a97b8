//! `fleet root init | propose | sign | verify` and `fleet verify --root`
//! (DESIGN.md §10), run as the real binary on the template as a real Git
//! repo: what each prints, its exit code, what it refuses and why, and
//! that a release signed by a key the root dropped fails `fleet verify`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{commit_all, template_repo};

const FLEET: &str = env!("CARGO_BIN_EXE_fleet");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn fleet(cwd: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(FLEET)
        .args(args)
        .current_dir(cwd)
        .env_remove("FLEET_SIGNING_PASSWORD")
        .output()
        .expect("run fleet");
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "fleet panicked: {run}");
    run
}

struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
}

impl Repo {
    /// The template as a Git repo, keys r1..r3 and rel1, rel2.
    fn new() -> Repo {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        let repo = root.join("repo");
        template_repo(&repo);
        for k in ["r1", "r2", "r3", "rel1", "rel2"] {
            let run = fleet(&root, &["keygen", "--out", k]);
            assert_eq!(run.code, Some(0), "{run}");
        }
        Repo {
            _tmp: tmp,
            root,
            repo,
        }
    }

    fn pubkey(&self, k: &str) -> String {
        self.root.join(k).join("minisign.pub").display().to_string()
    }

    fn secret(&self, k: &str) -> String {
        self.root.join(k).join("minisign.key").display().to_string()
    }

    fn root_cmd(&self, args: &[&str]) -> Run {
        let mut all = vec!["root"];
        all.extend_from_slice(args);
        fleet(&self.repo, &all)
    }

    fn init(&self) -> Run {
        let (r1, r2, r3, rel1) = (
            self.pubkey("r1"),
            self.pubkey("r2"),
            self.pubkey("r3"),
            self.pubkey("rel1"),
        );
        self.root_cmd(&[
            "init",
            "--root-key",
            &r1,
            "--root-key",
            &r2,
            "--root-key",
            &r3,
            "--threshold",
            "2",
            "--release-key",
            &rel1,
        ])
    }

    fn sign(&self, k: &str, version: Option<&str>) -> Run {
        let key = self.secret(k);
        let mut args = vec!["sign", "--key", key.as_str()];
        if let Some(v) = version {
            args.extend(["--version", v]);
        }
        self.root_cmd(&args)
    }
}

#[test]
fn init_sign_propose_and_verify_say_what_signs_and_what_is_missing() {
    let r = Repo::new();
    let run = r.init();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("trust/root/1.yaml (unsigned)"), "{run}");
    assert!(run.stdout.contains("2 signature(s) needed"), "{run}");
    // Unsigned: verify fails and says how many are missing.
    let run = r.root_cmd(&["verify"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout
            .contains("needs 2 more of its own root keys (has 0 of 2)"),
        "{run}"
    );
    let run = r.sign("r1", None);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("needs 1 more"), "{run}");
    assert_eq!(r.sign("r2", None).code, Some(0));
    let run = r.root_cmd(&["verify"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains("Releases are signed by any one of:"),
        "{run}"
    );

    // A release key cannot sign a later version: it would count for nothing.
    let run = r.root_cmd(&["propose", "--add-release-key", &r.pubkey("rel2")]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains("from 2 of version 1's root keys and 2 of its own"),
        "{run}"
    );
    let run = r.sign("rel1", None);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("is a root key of neither version 2 nor version 1"),
        "{run}"
    );
    // A proposal on top of an unsigned one is written, but the chain stops
    // at the first version that lacks signatures.
    let run = r.root_cmd(&["propose", "--threshold", "3"]);
    assert_eq!(run.code, Some(0), "{run}");
    let run = r.root_cmd(&["verify"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("version 2: NOT YET TRUSTED: needs 2 more of version 1's root keys (has 0 of 2) and 2 more of its own root keys (has 0 of 2)"),
        "{run}"
    );
}

#[test]
fn propose_refuses_nonsense_and_warns_about_the_rotation_order() {
    let r = Repo::new();
    let run = r.root_cmd(&["propose", "--threshold", "1"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("start with `fleet root init`"), "{run}");
    assert_eq!(r.init().code, Some(0));
    let run = r.init();
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("already holds version 1"), "{run}");
    for (args, needle) in [
        (
            vec!["--remove-release-key".to_owned(), r.pubkey("rel2")],
            "is not in version 1",
        ),
        (
            vec!["--add-root-key".to_owned(), r.pubkey("r1")],
            "is already in version 1",
        ),
        (
            vec!["--threshold".to_owned(), "4".to_owned()],
            "lower the threshold",
        ),
        (
            vec!["--add-release-key".to_owned(), "RWQnot-a-key".to_owned()],
            "neither a minisign public key file nor a key's base64 text",
        ),
    ] {
        let mut all = vec!["propose"];
        all.extend(args.iter().map(String::as_str));
        let run = r.root_cmd(&all);
        assert_eq!(run.code, Some(2), "{args:?}: {run}");
        assert!(run.stderr.contains(needle), "{args:?}: {run}");
        assert!(
            !r.repo.join("trust/root/2.yaml").exists(),
            "{args:?} wrote nothing"
        );
    }
    let run = r.root_cmd(&[
        "propose",
        "--add-release-key",
        &r.pubkey("rel2"),
        "--remove-release-key",
        &r.pubkey("rel1"),
    ]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains("adds and removes release keys at once"),
        "{run}"
    );
    // The init with a bad threshold writes nothing.
    let other = Repo::new();
    let r1 = other.pubkey("r1");
    let rel = other.pubkey("rel1");
    let run = other.root_cmd(&[
        "init",
        "--root-key",
        &r1,
        "--threshold",
        "2",
        "--release-key",
        &rel,
    ]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("root.threshold is 2, but it must be between 1 and the 1 root key(s)"),
        "{run}"
    );
    assert!(!other.repo.join("trust/root/1.yaml").exists());
}

#[test]
fn fleet_verify_with_a_pinned_root_uses_the_newest_release_keys() {
    let r = Repo::new();
    assert_eq!(r.init().code, Some(0));
    assert_eq!(r.sign("r1", None).code, Some(0));
    assert_eq!(r.sign("r3", None).code, Some(0));
    let pin = r.root.join("pin.yaml");
    std::fs::copy(r.repo.join("trust/root/1.yaml"), &pin).expect("pin");
    let pin = pin.display().to_string();
    // Releases signed by rel1, which version 1 lists.
    commit_all(&r.repo, "trust root version 1");
    let run = fleet(&r.repo, &["sign", "--key", &r.secret("rel1")]);
    assert_eq!(run.code, Some(0), "{run}");
    commit_all(&r.repo, "releases");
    let run = fleet(&r.repo, &["verify", "--root", &pin]);
    assert_eq!(run.code, Some(0), "{run}");
    // Version 2 drops rel1 for rel2: the same releases no longer verify.
    let run = r.root_cmd(&[
        "propose",
        "--add-release-key",
        &r.pubkey("rel2"),
        "--remove-release-key",
        &r.pubkey("rel1"),
    ]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(r.sign("r1", None).code, Some(0));
    assert_eq!(r.sign("r2", None).code, Some(0));
    let run = fleet(&r.repo, &["verify", "--root", &pin]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("FAIL"), "{run}");
    // Re-signed with rel2: good again.
    let run = fleet(&r.repo, &["sign", "--key", &r.secret("rel2"), "--all"]);
    assert_eq!(run.code, Some(0), "{run}");
    let run = fleet(&r.repo, &["verify", "--root", &pin]);
    assert_eq!(run.code, Some(0), "{run}");
    // Version 2 removed from the repo: the chain ends at the pin, whose
    // release key no longer signed anything.
    std::fs::remove_file(r.repo.join("trust/root/2.yaml")).expect("drop 2");
    let run = fleet(&r.repo, &["verify", "--root", &pin]);
    assert_eq!(run.code, Some(1), "{run}");
    // A pin that is not a root: exit 2, naming the file.
    let run = fleet(&r.repo, &["verify", "--root", &r.pubkey("rel1")]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("rel1/minisign.pub"), "{run}");
    // Neither --pubkey nor --root.
    let run = fleet(&r.repo, &["verify"]);
    assert_eq!(run.code, Some(2), "{run}");
}
