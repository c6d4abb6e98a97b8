//! THREATS.md rows 1–11 against the trust gate, on real release files made
//! by the real `fleet keygen` and `fleet sign` in real Git repositories, and
//! interoperability with the reference `minisign` tool in both directions.
//!
//! The end-to-end form of these rows (reconciler exit 3, edge untouched,
//! refusal reported) comes with the reconciler.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Duration, Utc};
use cli::ops::sign::{release_bytes, sign_bytes};
use release::applied::{self, AppliedRecord};
use release::trust::{self, Expectations, Refusal, TrustedKeys};
use schemas::Release;

use crate::common::{commit_all, template_repo};

const FLEET: &str = env!("CARGO_BIN_EXE_fleet");

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
}

fn fleet(args: &[&str], cwd: &Path) -> std::process::Output {
    let out = Command::new(FLEET)
        .args(args)
        .current_dir(cwd)
        .env_remove("FLEET_SIGNING_PASSWORD")
        .output()
        .expect("run fleet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "fleet panicked: {stderr}");
    out
}

impl Fixture {
    /// The template as a Git repo, a fresh key pair, and signed releases.
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        let repo = root.join("repo");
        template_repo(&repo);
        let out = fleet(&["keygen", "--out", "keys"], &root);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fx = Fixture {
            _tmp: tmp,
            root,
            repo,
        };
        fx.sign(&[]);
        fx
    }

    fn key(&self) -> String {
        self.root.join("keys/minisign.key").display().to_string()
    }

    fn sign(&self, extra: &[&str]) -> String {
        let key = self.key();
        let mut args = vec!["sign", "--key", &key];
        args.extend_from_slice(extra);
        let out = fleet(&args, &self.repo);
        assert!(
            out.status.success(),
            "fleet sign failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        commit_all(&self.repo, "release");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self) -> TrustedKeys {
        TrustedKeys::from_keys(vec![
            TrustedKeys::load_file(&self.root.join("keys/minisign.pub")).expect("pubkey"),
        ])
    }

    fn store_dir(&self, store: &str) -> PathBuf {
        self.repo.join("tenants/acme/stores").join(store)
    }

    fn files(&self, store: &str) -> (Vec<u8>, Vec<u8>) {
        let d = self.store_dir(store);
        (
            std::fs::read(d.join("release.yaml")).expect("release"),
            std::fs::read(d.join("release.yaml.minisig")).expect("signature"),
        )
    }

    /// Change a base price so every store gets a new revision.
    fn change_menu(&self, from: &str, to: &str) {
        let path = self.repo.join("tenants/acme/menu.yaml");
        let text = std::fs::read_to_string(&path).expect("menu");
        assert!(text.contains(from), "menu.yaml has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write menu");
        commit_all(&self.repo, "price change");
    }

    fn secret_key(&self) -> minisign::SecretKey {
        cli::ops::keygen::load_secret_key(&self.root.join("keys/minisign.key"), None)
            .expect("secret key")
    }
}

fn check(
    release: &[u8],
    sig: &[u8],
    keys: &TrustedKeys,
    store: &str,
    last: Option<&AppliedRecord>,
) -> Result<trust::Accepted, Refusal> {
    trust::check(
        release,
        sig,
        keys,
        Expectations {
            store,
            last,
            now: Utc::now(),
        },
    )
}

/// The refusal, or a short failure naming what was accepted instead.
fn refused(result: Result<trust::Accepted, Refusal>) -> Refusal {
    match result {
        Ok(accepted) => panic!("expected a refusal, but {accepted} was accepted"),
        Err(refusal) => refusal,
    }
}

fn record_of(accepted: &trust::Accepted) -> AppliedRecord {
    AppliedRecord {
        store: accepted
            .release
            .store
            .parse()
            .expect("a verified release names a store id"),
        revision: accepted.release.revision,
        commit: accepted.release.source_commit.clone(),
        digest: accepted.digest.clone(),
        applied_at: Utc::now(),
    }
}

#[test]
fn signed_release_is_accepted() {
    let fx = Fixture::new();
    let (rel, sig) = fx.files("soho");
    let ok = check(&rel, &sig, &fx.keys(), "acme/soho", None).expect("accepted");
    assert_eq!(ok.release.store, "acme/soho");
    assert_eq!(ok.release.revision, 1);
    assert!(!ok.already_applied);
    // The same release again is "already applied", not a refusal.
    let again =
        check(&rel, &sig, &fx.keys(), "acme/soho", Some(&record_of(&ok))).expect("accepted");
    assert!(again.already_applied);
}

/// THREATS row 1: one byte of release.yaml changed after signing.
#[test]
fn row01_flipped_byte_is_refused() {
    let fx = Fixture::new();
    let (mut rel, sig) = fx.files("soho");
    let at = rel.len() / 2;
    rel[at] ^= 0x01;
    assert_eq!(
        refused(check(&rel, &sig, &fx.keys(), "acme/soho", None)),
        Refusal::BadSignature
    );
}

/// THREATS row 2: release signed by an unknown key.
#[test]
fn row02_unknown_key_is_refused() {
    let fx = Fixture::new();
    let out = fleet(&["keygen", "--out", "rogue"], &fx.root);
    assert!(out.status.success());
    let rogue = fx.root.join("rogue/minisign.key").display().to_string();
    let out = fleet(&["sign", "--key", &rogue, "--all"], &fx.repo);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (rel, sig) = fx.files("soho");
    let err = refused(check(&rel, &sig, &fx.keys(), "acme/soho", None));
    assert!(matches!(err, Refusal::UnknownKey { .. }), "{err}");
    assert_eq!(err.code(), "signature/unknown-key");
}

/// THREATS row 3: an older signed release replayed, also after a restart.
#[test]
fn row03_rollback_is_refused_also_after_restart() {
    let fx = Fixture::new();
    let (old_rel, old_sig) = fx.files("soho");
    for sort in ["11", "12"] {
        let from = if sort == "11" {
            "{id: burgers, name: Burgers, sort: 10}"
        } else {
            "{id: burgers, name: Burgers, sort: 11}"
        };
        fx.change_menu(
            from,
            &format!("{{id: burgers, name: Burgers, sort: {sort}}}"),
        );
        fx.sign(&[]);
    }
    let (rel, sig) = fx.files("soho");
    let applied = check(&rel, &sig, &fx.keys(), "acme/soho", None).expect("r3 accepted");
    assert_eq!(applied.release.revision, 3);

    let err = refused(check(
        &old_rel,
        &old_sig,
        &fx.keys(),
        "acme/soho",
        Some(&record_of(&applied)),
    ));
    assert_eq!(
        err,
        Refusal::Rollback {
            offered: 1,
            applied: 3
        }
    );

    // "Restart": the record is written to a state dir and read back.
    let state = tempfile::tempdir().expect("state dir");
    applied::write(state.path(), &record_of(&applied)).expect("write record");
    let reloaded = applied::read(state.path())
        .expect("read record")
        .expect("a record");
    let err = refused(check(
        &old_rel,
        &old_sig,
        &fx.keys(),
        "acme/soho",
        Some(&reloaded),
    ));
    assert_eq!(err.code(), "release/rollback");
}

/// THREATS row 4: the same revision with other content (equivocation).
#[test]
fn row04_equivocation_is_refused() {
    let fx = Fixture::new();
    let (rel, sig) = fx.files("soho");
    let first = check(&rel, &sig, &fx.keys(), "acme/soho", None).expect("accepted");
    // A second, different revision 1, validly signed by the trusted key.
    let text = std::str::from_utf8(&rel).expect("utf8");
    let mut other: Release = schemas::yaml::decode("release.yaml", text).expect("decode");
    other.state.settings.insert(
        "receipt.footer".into(),
        schemas::model::SettingValue::Str("forked".into()),
    );
    let bytes = release_bytes(&other);
    let other_sig =
        sign_bytes(&bytes, &other.store, other.revision, &fx.secret_key()).expect("sign");
    let err = refused(check(
        &bytes,
        other_sig.as_bytes(),
        &fx.keys(),
        "acme/soho",
        Some(&record_of(&first)),
    ));
    assert_eq!(err, Refusal::Equivocation { revision: 1 });
}

/// THREATS row 5: an expired release served forever.
#[test]
fn row05_expired_release_is_refused() {
    let fx = Fixture::new();
    fx.sign(&["--all", "--expires-in", "2s", "--refresh-within", "1s"]);
    let (rel, sig) = fx.files("soho");
    // The gate takes the time as an argument: a day later it has expired.
    let later = Utc::now() + Duration::days(1);
    let err = refused(trust::check(
        &rel,
        &sig,
        &fx.keys(),
        Expectations {
            store: "acme/soho",
            last: None,
            now: later,
        },
    ));
    assert!(matches!(err, Refusal::Expired { .. }), "{err}");
    assert!(
        err.to_string().contains("keeps its last applied state"),
        "{err}"
    );
}

/// THREATS row 6: store A's release copied into store B's directory.
#[test]
fn row06_release_of_another_store_is_refused() {
    let fx = Fixture::new();
    let (rel, sig) = fx.files("soho");
    let b = fx.store_dir("brooklyn");
    std::fs::write(b.join("release.yaml"), &rel).expect("copy");
    std::fs::write(b.join("release.yaml.minisig"), &sig).expect("copy");
    let (rel, sig) = fx.files("brooklyn");
    let err = refused(check(&rel, &sig, &fx.keys(), "acme/brooklyn", None));
    assert_eq!(
        err,
        Refusal::WrongStore {
            expected: "acme/brooklyn".into(),
            signed_for: "acme/soho".into()
        }
    );
    // `fleet verify` says the same of the repo.
    let out = fleet(&["verify", "--pubkey", "../keys/minisign.pub"], &fx.repo);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL acme/brooklyn") && stdout.contains("release/wrong-store"),
        "{stdout}"
    );
}

/// A validly signed release whose file disagrees with its trusted comment.
#[test]
fn comment_and_file_must_agree() {
    let fx = Fixture::new();
    let (rel, _) = fx.files("soho");
    let sig = sign_bytes(&rel, "acme/soho", 9, &fx.secret_key()).expect("sign");
    let err = refused(check(&rel, sig.as_bytes(), &fx.keys(), "acme/soho", None));
    assert!(
        matches!(
            err,
            Refusal::CommentMismatch {
                field: "revision",
                ..
            }
        ),
        "{err}"
    );
    let sig = sign_bytes(&rel, "acme/soho", 1, &fx.secret_key()).expect("sign");
    assert!(check(&rel, sig.as_bytes(), &fx.keys(), "acme/soho", None).is_ok());
}

fn minisign_cli() -> &'static str {
    // CI installs Debian's `minisign` (.ci/run); it is a required part of these tests.
    "minisign"
}

/// THREATS row 7: a legacy (non-prehashed) signature.
#[test]
fn row07_legacy_signature_is_refused() {
    let fx = Fixture::new();
    let dir = fx.store_dir("soho");
    let status = Command::new(minisign_cli())
        .args(["-S", "-l", "-W", "-s"])
        .arg(fx.root.join("keys/minisign.key"))
        .arg("-m")
        .arg(dir.join("release.yaml"))
        .args(["-t", "store=acme/soho revision=1", "-x"])
        .arg(fx.root.join("legacy.minisig"))
        .status()
        .expect("run minisign (install Debian's minisign package)");
    assert!(status.success());
    let (rel, _) = fx.files("soho");
    let sig = std::fs::read(fx.root.join("legacy.minisig")).expect("legacy sig");
    assert_eq!(
        refused(check(&rel, &sig, &fx.keys(), "acme/soho", None)),
        Refusal::LegacySignature
    );
}

/// THREATS row 8: malformed signature files never panic.
#[test]
fn row08_malformed_signatures_are_refused() {
    let fx = Fixture::new();
    let (rel, sig) = fx.files("soho");
    let text = String::from_utf8(sig.clone()).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    let corpus: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\xff\xfe\x00garbage".to_vec(),
        lines[..1].join("\n").into_bytes(),
        lines[..2].join("\n").into_bytes(),
        lines[..3].join("\n").into_bytes(),
        format!(
            "{}\n{}!!notbase64\n{}\n{}\n",
            lines[0], lines[1], lines[2], lines[3]
        )
        .into_bytes(),
        format!(
            "{}\n{}\ntrusted comment: \n{}\n",
            lines[0], lines[1], lines[3]
        )
        .into_bytes(),
        format!(
            "{}\n{}\ntrusted comment: store=acme/soho\n{}\n",
            lines[0], lines[1], lines[3]
        )
        .into_bytes(),
        format!("{}\nRWQ=\n{}\n{}\n", lines[0], lines[2], lines[3]).into_bytes(),
        text.replace("trusted comment: ", "trusted: ").into_bytes(),
        format!(
            "{}\n{}\n{}\n{}\n",
            lines[0],
            lines[1],
            lines[2],
            &lines[3][..10]
        )
        .into_bytes(),
        vec![b'A'; trust::MAX_SIGNATURE_BYTES + 1],
    ];
    for (i, bad) in corpus.iter().enumerate() {
        let err = refused(check(&rel, bad, &fx.keys(), "acme/soho", None));
        assert!(
            matches!(
                err,
                Refusal::MalformedSignature(_)
                    | Refusal::BadSignature
                    | Refusal::TooLarge { .. }
                    | Refusal::UnknownKey { .. }
            ),
            "case {i}: {err:?}"
        );
    }
    // A trusted comment edited by hand breaks the global signature.
    let edited = text.replace("revision=1", "revision=2");
    assert_eq!(
        refused(check(
            &rel,
            edited.as_bytes(),
            &fx.keys(),
            "acme/soho",
            None
        )),
        Refusal::BadSignature
    );
}

/// THREATS row 9: a symlink in place of a release file.
#[test]
fn row09_symlinked_release_is_refused_by_verify() {
    let fx = Fixture::new();
    let soho = fx.store_dir("soho");
    std::fs::remove_file(soho.join("release.yaml")).expect("rm");
    std::os::unix::fs::symlink("../brooklyn/release.yaml", soho.join("release.yaml"))
        .expect("symlink");
    let b = fx.store_dir("brooklyn");
    std::fs::remove_file(b.join("release.yaml.minisig")).expect("rm");
    std::os::unix::fs::symlink("/etc/passwd", b.join("release.yaml.minisig")).expect("symlink");
    let out = fleet(&["verify", "--pubkey", "../keys/minisign.pub"], &fx.repo);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for store in ["acme/soho", "acme/brooklyn"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(store))
            .expect("a line per store");
        assert!(
            line.starts_with("FAIL") && line.contains("not a regular file"),
            "{line}"
        );
    }
}

/// THREATS row 10: a 100 MB release, deep nesting, an alias bomb.
#[test]
fn row10_oversized_and_hostile_yaml_is_refused_fast() {
    let fx = Fixture::new();
    let keys = fx.keys();
    let key = fx.secret_key();
    let huge = vec![b'#'; 100 * 1024 * 1024];
    let started = std::time::Instant::now();
    let err = refused(check(&huge, b"", &keys, "acme/soho", None));
    assert!(matches!(err, Refusal::TooLarge { .. }), "{err}");
    assert!(started.elapsed().as_secs_f64() < 1.0);

    for (name, text) in testkit::hostile_releases("acme/soho", 2) {
        // Signed by the trusted key: the budgets must hold even then.
        let sig = sign_bytes(text.as_bytes(), "acme/soho", 2, &key).expect("sign");
        let started = std::time::Instant::now();
        let err = refused(check(
            text.as_bytes(),
            sig.as_bytes(),
            &keys,
            "acme/soho",
            None,
        ));
        assert!(
            matches!(err, Refusal::Malformed(_) | Refusal::UnknownField(_)),
            "{name}: {err}"
        );
        assert!(
            started.elapsed().as_secs_f64() < 1.0,
            "{name} took {:?}",
            started.elapsed()
        );
    }
}

/// THREATS row 11: unknown apiVersion or unknown fields in the signed state.
#[test]
fn row11_unknown_version_or_fields_ask_for_an_upgrade() {
    let fx = Fixture::new();
    let (rel, _) = fx.files("soho");
    let text = String::from_utf8(rel).expect("utf8");
    let key = fx.secret_key();

    // fleet/v2 is read since part two (DESIGN.md §9); v3 is not.
    let v3 = text
        .replace("apiVersion: fleet/v1", "apiVersion: fleet/v3")
        .replace("apiVersion: fleet/v2", "apiVersion: fleet/v3");
    assert_ne!(v3, text);
    let sig = sign_bytes(v3.as_bytes(), "acme/soho", 1, &key).expect("sign");
    let err = refused(check(
        v3.as_bytes(),
        sig.as_bytes(),
        &fx.keys(),
        "acme/soho",
        None,
    ));
    assert_eq!(
        err,
        Refusal::UnsupportedVersion {
            found: "fleet/v3".into()
        }
    );
    assert!(err.to_string().contains("upgrade the reconciler"));

    let extra = text.replace("state:\n", "state:\n  loyalty: {points: 2}\n");
    let sig = sign_bytes(extra.as_bytes(), "acme/soho", 1, &key).expect("sign");
    let err = refused(check(
        extra.as_bytes(),
        sig.as_bytes(),
        &fx.keys(),
        "acme/soho",
        None,
    ));
    assert!(matches!(err, Refusal::UnknownField(_)), "{err}");
    assert!(err.to_string().contains("upgrade the reconciler"), "{err}");
}

/// `fleet sign` numbers revisions +1, signs only what changed or expires,
/// and never reuses a revision even when a release file was deleted.
#[test]
fn sign_bumps_only_changed_stores_and_never_reuses_a_revision() {
    let fx = Fixture::new();
    assert!(
        fx.sign(&[])
            .contains("0 release(s) signed, 3 store(s) unchanged")
    );
    // A store-only change reaches that store alone.
    let path = fx.store_dir("soho").join("store.yaml");
    let text = std::fs::read_to_string(&path).expect("store.yaml");
    std::fs::write(
        &path,
        text.replacen("name: Acme Burgers SoHo", "name: Acme Burgers SoHo West", 1),
    )
    .expect("write");
    assert_ne!(
        std::fs::read_to_string(&path).expect("store.yaml"),
        text,
        "the fixture names the store"
    );
    commit_all(&fx.repo, "rename soho");
    let out = fx.sign(&[]);
    assert!(
        out.contains("1 release(s) signed, 2 store(s) unchanged"),
        "{out}"
    );
    let rev = |store: &str| -> u64 {
        let (rel, sig) = fx.files(store);
        check(&rel, &sig, &fx.keys(), &format!("acme/{store}"), None)
            .expect("valid")
            .release
            .revision
    };
    assert_eq!((rev("soho"), rev("brooklyn")), (2, 1));
    // Deleting the release file does not restart the numbering at 1.
    std::fs::remove_file(fx.store_dir("soho").join("release.yaml")).expect("rm");
    fx.sign(&[]);
    assert_eq!(rev("soho"), 3);
    // Refresh: releases expiring within the window are re-signed.
    let out = fx.sign(&["--expires-in", "200d", "--refresh-within", "100d"]);
    assert!(
        out.contains("3 release(s) signed, 0 store(s) unchanged"),
        "{out}"
    );
    assert_eq!((rev("soho"), rev("brooklyn")), (4, 2));
    let out = fx.sign(&["--expires-in", "200d", "--refresh-within", "100d"]);
    assert!(
        out.contains("0 release(s) signed, 3 store(s) unchanged"),
        "{out}"
    );
    let verify = fleet(&["verify", "--pubkey", "../keys/minisign.pub"], &fx.repo);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// Interoperability: `minisign -V` verifies what `fleet sign` made, and the
/// trust gate accepts what `minisign -S` made.
#[test]
fn minisign_tool_interoperates_both_ways() {
    let fx = Fixture::new();
    let dir = fx.store_dir("soho");
    let out = Command::new(minisign_cli())
        .args(["-V", "-p"])
        .arg(fx.root.join("keys/minisign.pub"))
        .arg("-m")
        .arg(dir.join("release.yaml"))
        .output()
        .expect("run minisign");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("store=acme/soho revision=1"));

    // The reference tool signs with its own (password-protected) key.
    let status = Command::new("sh")
        .arg("-c")
        .arg("printf 'pw\\npw\\n' | minisign -G -f -p cli.pub -s cli.key >/dev/null")
        .current_dir(&fx.root)
        .status()
        .expect("minisign -G");
    assert!(status.success());
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'pw\\n' | minisign -S -s cli.key -m {} -x cli.minisig -t 'store=acme/soho revision=1' >/dev/null",
            dir.join("release.yaml").display()
        ))
        .current_dir(&fx.root)
        .status()
        .expect("minisign -S");
    assert!(status.success());
    let cli_keys = TrustedKeys::from_keys(vec![
        TrustedKeys::load_file(&fx.root.join("cli.pub")).expect("cli pub"),
    ]);
    let (rel, _) = fx.files("soho");
    let sig = std::fs::read(fx.root.join("cli.minisig")).expect("cli sig");
    check(&rel, &sig, &cli_keys, "acme/soho", None).expect("the gate accepts minisign's signature");

    // Several trusted keys at once (rotation): either key's release passes.
    let both = TrustedKeys::from_keys(
        fx.keys()
            .iter()
            .cloned()
            .chain(cli_keys.iter().cloned())
            .collect(),
    );
    check(&rel, &sig, &both, "acme/soho", None).expect("new key accepted");
    let (rel, sig) = fx.files("soho");
    check(&rel, &sig, &both, "acme/soho", None).expect("old key accepted");
}

mod fuzz {
    //! THREATS row 8 as a property: arbitrary and mutated signature files and
    //! releases never make the gate panic; they are refused.

    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    struct Real {
        _fx: Fixture,
        release: Vec<u8>,
        signature: Vec<u8>,
        keys: TrustedKeys,
    }

    fn real() -> &'static Real {
        static REAL: OnceLock<Real> = OnceLock::new();
        REAL.get_or_init(|| {
            let fx = Fixture::new();
            let (release, signature) = fx.files("soho");
            let keys = fx.keys();
            Real {
                _fx: fx,
                release,
                signature,
                keys,
            }
        })
    }

    fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)]) -> Vec<u8> {
        for (at, value) in edits {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = *value;
            }
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn arbitrary_signatures_are_refused(sig in prop::collection::vec(any::<u8>(), 0..400)) {
            let r = real();
            prop_assert!(check(&r.release, &sig, &r.keys, "acme/soho", None).is_err());
        }

        #[test]
        fn mutated_signatures_are_refused(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            let r = real();
            let sig = mutate(r.signature.clone(), &edits);
            if sig != r.signature {
                // Comment-line edits may leave the signature intact only if
                // they touch the untrusted comment; anything else is refused.
                let untouched_tail = sig.splitn(2, |b| *b == b'\n').nth(1) == r.signature.splitn(2, |b| *b == b'\n').nth(1);
                let result = check(&r.release, &sig, &r.keys, "acme/soho", None);
                prop_assert!(result.is_err() || untouched_tail);
            }
        }

        #[test]
        fn mutated_releases_are_refused(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            let r = real();
            let release = mutate(r.release.clone(), &edits);
            if release != r.release {
                prop_assert!(check(&release, &r.signature, &r.keys, "acme/soho", None).is_err());
            }
        }
    }
}

/// `FLEET_SIGNING_PASSWORD` encrypts the key at `keygen` and unlocks it at
/// `sign`; without it, `sign` says what is missing instead of prompting.
#[test]
fn encrypted_signing_key_needs_the_password() {
    let fx = Fixture::new();
    let out = Command::new(FLEET)
        .args(["keygen", "--out", "enc"])
        .current_dir(&fx.root)
        .env("FLEET_SIGNING_PASSWORD", "correct horse")
        .output()
        .expect("keygen");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("(encrypted)"));
    let key = fx.root.join("enc/minisign.key").display().to_string();

    let out = fleet(&["sign", "--all", "--key", &key], &fx.repo);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FLEET_SIGNING_PASSWORD"));

    let run = |password: &str| {
        Command::new(FLEET)
            .args(["sign", "--all", "--key", &key])
            .current_dir(&fx.repo)
            .env("FLEET_SIGNING_PASSWORD", password)
            .output()
            .expect("sign")
    };
    assert_eq!(run("wrong").status.code(), Some(2));
    let out = run("correct horse");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = TrustedKeys::from_keys(vec![
        TrustedKeys::load_file(&fx.root.join("enc/minisign.pub")).expect("pub"),
    ]);
    let (rel, sig) = fx.files("soho");
    assert_eq!(
        check(&rel, &sig, &keys, "acme/soho", None)
            .expect("signed by the new key")
            .release
            .revision,
        2
    );
}
