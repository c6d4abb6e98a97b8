//! `fleet secret` on the repo template with the real binary and real age
//! keys (DESIGN.md §11): threat rows 24 and 25, `set`, `rewrap` with a
//! rotated tenant key, and what `render`, `plan` and `sign` show.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use age::x25519::Identity;
use base64::Engine as _;
use schemas::model::{Sealed, Secret, SettingValue};

use crate::common;

const TERMINAL_KEY: &str = "tk-soho-7f3a9c";

use common::{fleet, ok};

/// The template with two enrolled stores (soho, brooklyn), their
/// recipients written and the values re-encrypted for them.
struct Fleet {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    soho: Identity,
    brooklyn: Identity,
    escrow: PathBuf,
}

impl Fleet {
    fn new() -> Fleet {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        common::template_repo(&repo);
        let r = repo.display().to_string();
        let mut ids = Vec::new();
        for store in ["soho", "brooklyn"] {
            let key = tmp.path().join(format!("{store}.key"));
            let out = ok(
                &["secret", "keygen", "--out", &key.display().to_string()],
                None,
            );
            let recipient = out
                .lines()
                .find_map(|l| l.strip_prefix("recipient: "))
                .expect("recipient line")
                .to_owned();
            ok(
                &[
                    "secret",
                    "recipients",
                    "--store",
                    &format!("acme/{store}"),
                    "--recipient",
                    &recipient,
                    "--repo",
                    &r,
                ],
                None,
            );
            ids.push(release::secrets::read_identity(&key).expect("identity"));
        }
        let escrow = repo.join(".fleet/DEMO-escrow.key");
        ok(
            &[
                "secret",
                "rewrap",
                "--identity",
                &escrow.display().to_string(),
                "--repo",
                &r,
            ],
            None,
        );
        let brooklyn = ids.pop().expect("brooklyn");
        let soho = ids.pop().expect("soho");
        Fleet {
            _tmp: tmp,
            repo,
            soho,
            brooklyn,
            escrow,
        }
    }

    fn r(&self) -> String {
        self.repo.display().to_string()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.repo.join(rel)).expect(rel)
    }

    fn loaded(&self) -> schemas::FleetRepo {
        let (repo, diags) = schemas::validate::check_repo(&schemas::DirTree::new(&self.repo));
        assert!(!schemas::validate::has_errors(&diags), "{diags:?}");
        repo
    }

    /// The tenant key, as the store opens its wrap.
    fn tenant_key_for(&self, store: &str, identity: &Identity) -> Option<Identity> {
        let wrap = std::fs::read(
            self.repo
                .join(format!("tenants/acme/stores/{store}/tenant-key.age")),
        )
        .ok()?;
        let text = release::secrets::decrypt(&[identity], &wrap).ok()?;
        release::secrets::parse_identity(std::str::from_utf8(&text).ok()?)
    }
}

/// Every encrypted value written anywhere under `dir` (sources and
/// releases), with the file it is in.
fn sealed_values_under(dir: &Path) -> Vec<(PathBuf, Sealed)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        let Ok(text) = std::fs::read_to_string(&entry) else {
            continue;
        };
        if entry.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let doc: serde_json::Value = match schemas::yaml::decode("x", &text) {
            Ok(v) => v,
            Err(_) => continue,
        };
        collect(&doc, &entry, &mut out);
    }
    out
}

fn collect(v: &serde_json::Value, file: &Path, out: &mut Vec<(PathBuf, Sealed)>) {
    match v {
        serde_json::Value::Object(map) => {
            if map.contains_key("age") && map.contains_key("to") {
                out.push((
                    file.to_owned(),
                    serde_json::from_value(v.clone()).expect("a sealed value"),
                ));
                return;
            }
            map.values().for_each(|x| collect(x, file, out));
        }
        serde_json::Value::Array(list) => list.iter().for_each(|x| collect(x, file, out)),
        _ => {}
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn row_24_a_stores_mirror_and_release_hold_nothing_of_another_store_it_can_decrypt() {
    let f = Fleet::new();
    let r = f.r();
    // A secret setting for soho only, and one for every store.
    ok(
        &[
            "secret",
            "set",
            "tenants/acme/stores/soho/store.yaml",
            "overrides.settings.payment.terminal_key",
            "--repo",
            &r,
        ],
        Some(TERMINAL_KEY),
    );
    ok(
        &[
            "secret",
            "set",
            "tenants/acme/tenant.yaml",
            "settings.payment.terminal_key",
            "--repo",
            &r,
        ],
        Some("tk-default"),
    );
    common::commit_all(&f.repo, "secrets");
    let keys = f.repo.parent().expect("tmp").join("keys");
    ok(&["keygen", "--out", &keys.display().to_string()], None);
    ok(
        &[
            "sign",
            "--key",
            &keys.join("minisign.key").display().to_string(),
            "--repo",
            &r,
        ],
        None,
    );
    // The mirror is the whole repo: every age blob in it.
    let soho_tenant_key = f
        .tenant_key_for("soho", &f.soho)
        .expect("soho opens its wrap");
    let values = sealed_values_under(&f.repo);
    assert!(values.len() >= 20, "sources and releases: {}", values.len());
    let mut for_soho = 0;
    for (file, v) in &values {
        let readable = release::secrets::unseal(v, &[&f.soho]).is_ok()
            || release::secrets::unseal(v, &[&soho_tenant_key]).is_ok();
        let meant = v.is_for("soho");
        assert_eq!(readable, meant, "{} to {:?}", file.display(), v.to);
        for_soho += usize::from(meant);
    }
    assert!(for_soho >= 5, "{for_soho}");
    // Brooklyn's wrap of the tenant key is not soho's to open, and nothing
    // in the repo is a plaintext PIN hash any more.
    let bk_wrap =
        std::fs::read(f.repo.join("tenants/acme/stores/brooklyn/tenant-key.age")).expect("wrap");
    assert!(release::secrets::decrypt(&[&f.soho], &bk_wrap).is_err());
    for file in walk(&f.repo) {
        if file.extension().is_none_or(|e| e != "yaml") {
            continue; // the template's README explains what a hash looks like
        }
        let text = std::fs::read(&file).expect("read");
        assert!(
            !String::from_utf8_lossy(&text).contains("$argon2id$"),
            "{} holds a plaintext hash",
            file.display()
        );
        assert!(!String::from_utf8_lossy(&text).contains(TERMINAL_KEY));
    }
    // Soho's release: only values meant for it, and its own wrap.
    let text = f.read("tenants/acme/stores/soho/release.yaml");
    let release: schemas::Release = schemas::yaml::decode("release.yaml", &text).expect("release");
    assert!(schemas::secrets::foreign_values(&release.state, "soho").is_empty());
    // Encrypted values are a part-two feature: the release says so
    // (DESIGN.md §9), so a part-one reconciler refuses it as "upgrade".
    assert_eq!(release.api_version, schemas::state::ReleaseApiVersion::V2);
    let wrap = base64::engine::general_purpose::STANDARD
        .decode(
            release
                .tenant_key
                .as_deref()
                .expect("soho's release carries its wrap"),
        )
        .expect("base64");
    assert_eq!(
        wrap,
        std::fs::read(f.repo.join("tenants/acme/stores/soho/tenant-key.age")).expect("wrap")
    );
    let opened = release::secrets::open_state(&release.state, "soho", &f.soho, Some(&wrap));
    assert!(opened.held_back.is_empty(), "{:?}", opened.held_back);
    assert_eq!(
        opened.state.settings["payment.terminal_key"],
        SettingValue::Str(TERMINAL_KEY.into())
    );
    let users: BTreeSet<&str> = opened
        .state
        .access
        .users
        .iter()
        .map(|u| u.id.as_str())
        .collect();
    assert!(
        users.contains("sam-rivera") && !users.contains("jamal-brooks"),
        "{users:?}"
    );
    // Brooklyn's release does not carry soho's users or terminal key.
    let bk: schemas::Release =
        schemas::yaml::decode("r", &f.read("tenants/acme/stores/brooklyn/release.yaml"))
            .expect("release");
    assert!(schemas::secrets::foreign_values(&bk.state, "brooklyn").is_empty());
    let bk_open = release::secrets::open_state(&bk.state, "brooklyn", &f.brooklyn, Some(&bk_wrap));
    assert_eq!(
        bk_open.state.settings["payment.terminal_key"],
        SettingValue::Str("tk-default".into())
    );
    assert!(bk_open.held_back.is_empty(), "{:?}", bk_open.held_back);
}

#[test]
fn row_25_a_plaintext_pin_hash_in_a_fleet_with_escrow_fails_validation() {
    let f = Fleet::new();
    let file = "tenants/acme/stores/soho/store.yaml";
    let text = f.read(file);
    let line = text
        .lines()
        .position(|l| l.contains("pin_hash: {age:"))
        .expect("an encrypted pin_hash");
    let plain = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let indent = lines[line].len() - lines[line].trim_start().len();
    lines[line] = format!("{}pin_hash: \"{plain}\"", " ".repeat(indent));
    std::fs::write(f.repo.join(file), lines.join("\n") + "\n").expect("write");
    let out = fleet(&["validate", "--repo", &f.r()], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let want = format!("{file}:{}:{}", line + 1, indent + 11);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(&want) && l.contains("secret/plaintext")),
        "{want} in:\n{stdout}"
    );
    // Without escrow it is a warning: the repo still validates.
    let fleet_yaml = f.read("fleet.yaml");
    let cut = fleet_yaml.find("secrets:").expect("secrets section");
    std::fs::write(f.repo.join("fleet.yaml"), &fleet_yaml[..cut]).expect("write");
    // (The encrypted values are now errors of their own: encrypted with no
    // escrow to re-encrypt them, `secret/recipients`.)
    let out = fleet(&["validate", "--repo", &f.r()], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(&want) && l.contains("warning") && l.contains("secret/plaintext")),
        "{stdout}"
    );
}

#[test]
fn set_writes_one_line_that_the_store_and_escrow_open_and_plan_says_only_secret_changed() {
    let f = Fleet::new();
    let base = common::commit_all(&f.repo, "recipients");
    let file = "tenants/acme/stores/soho/store.yaml";
    let before = f.read(file);
    let out = ok(
        &[
            "secret",
            "set",
            file,
            "access.users.sam-rivera.pin_hash",
            "--pin",
            "--repo",
            &f.r(),
        ],
        Some("424242\n"),
    );
    assert!(out.contains("for soho, @escrow"), "{out}");
    let after = f.read(file);
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(before.lines().count(), after.lines().count());
    let repo = f.loaded();
    let sam = repo.tenants["acme"].stores["soho"]
        .file
        .access
        .users
        .iter()
        .find(|u| u.id.as_str() == "sam-rivera")
        .expect("sam");
    let Some(Secret::Sealed(sealed)) = &sam.pin_hash else {
        panic!("sam's pin_hash is encrypted: {:?}", sam.pin_hash)
    };
    let hash = release::secrets::unseal(sealed, &[&f.soho]).expect("soho opens it");
    let escrow = release::secrets::read_identity(&f.escrow).expect("escrow");
    assert_eq!(
        release::secrets::unseal(sealed, &[&escrow]).expect("escrow opens it"),
        hash
    );
    assert!(release::secrets::unseal(sealed, &[&f.brooklyn]).is_err());
    use argon2::PasswordVerifier as _;
    let parsed = argon2::PasswordHash::new(&hash).expect("a PHC string");
    assert!(
        argon2::Argon2::default()
            .verify_password(b"424242", &parsed)
            .is_ok()
    );
    // The plan names the change, never the value.
    let out = fleet(&["plan", "--base", &base, "--repo", &f.r()], None);
    assert_eq!(out.status.code(), Some(1), "a store changes");
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(plan.contains("pin_hash: secret changed"), "{plan}");
    assert!(
        !plan.contains("$argon2id") && !plan.contains(&sealed.age[..40]),
        "{plan}"
    );
    // Render prints the value as it goes into the release.
    let render = ok(&["render", "acme/soho", "--repo", &f.r()], None);
    assert!(
        render.contains(&sealed.age) && render.contains("to:"),
        "{render}"
    );
    // A refused value writes nothing.
    let out = fleet(
        &[
            "secret",
            "set",
            file,
            "access.users.sam-rivera.pin_hash",
            "--pin",
            "--repo",
            &f.r(),
        ],
        Some("12ab\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(f.read(file), after);
    let out = fleet(
        &[
            "secret",
            "set",
            file,
            "overrides.settings.receipt.footer",
            "--repo",
            &f.r(),
        ],
        Some("x"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a secret setting"));
}

#[test]
fn rotating_the_tenant_key_without_a_stolen_store_leaves_it_nothing_new() {
    let f = Fleet::new();
    let old_key = f
        .tenant_key_for("brooklyn", &f.brooklyn)
        .expect("brooklyn's wrap");
    let out = ok(
        &[
            "secret",
            "rewrap",
            "--identity",
            &f.escrow.display().to_string(),
            "--rotate-tenant-key",
            "--exclude-store",
            "acme/brooklyn",
            "--repo",
            &f.r(),
        ],
        None,
    );
    assert!(out.contains("new tenant key"), "{out}");
    assert!(
        !f.repo
            .join("tenants/acme/stores/brooklyn/tenant-key.age")
            .exists()
    );
    assert!(
        !f.read("tenants/acme/stores/brooklyn/store.yaml")
            .contains("recipient:")
    );
    let new_key = f
        .tenant_key_for("soho", &f.soho)
        .expect("soho has the new key");
    assert_ne!(
        new_key.to_public().to_string(),
        old_key.to_public().to_string()
    );
    let repo = f.loaded();
    let alex = repo.tenants["acme"]
        .base
        .access
        .users
        .iter()
        .find(|u| u.id.as_str() == "alex-morgan")
        .expect("alex");
    let Some(Secret::Sealed(v)) = &alex.pin_hash else {
        panic!("encrypted")
    };
    assert_eq!(v.to, ["*", "@escrow"]);
    assert!(release::secrets::unseal(v, &[&new_key]).is_ok());
    assert!(
        release::secrets::unseal(v, &[&old_key]).is_err(),
        "the stolen key reads nothing new"
    );
    assert!(release::secrets::unseal(v, &[&f.brooklyn]).is_err());
    // Brooklyn's own users were re-encrypted without its stolen identity
    // (and kept there, beside the removed recipient line).
    let jamal = repo.tenants["acme"].stores["brooklyn"]
        .file
        .access
        .users
        .iter()
        .find(|u| u.id.as_str() == "jamal-brooks")
        .expect("jamal");
    let Some(Secret::Sealed(v)) = &jamal.pin_hash else {
        panic!("encrypted")
    };
    assert_eq!(v.to, ["brooklyn", "@escrow"]);
    assert!(
        release::secrets::unseal(v, &[&f.brooklyn]).is_err(),
        "the stolen identity opens nothing new"
    );
    let escrow = release::secrets::read_identity(&f.escrow).expect("escrow");
    assert!(release::secrets::unseal(v, &[&escrow]).is_ok());
    // Without --rotate-tenant-key, excluding is refused and nothing moves.
    let lock = f.read("tenants/acme/secrets.lock");
    let out = fleet(
        &[
            "secret",
            "rewrap",
            "--identity",
            &f.escrow.display().to_string(),
            "--exclude-store",
            "acme/soho",
            "--repo",
            &f.r(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(f.read("tenants/acme/secrets.lock"), lock);
    // A second rewrap has nothing to do.
    let out = ok(
        &[
            "secret",
            "rewrap",
            "--identity",
            &f.escrow.display().to_string(),
            "--repo",
            &f.r(),
        ],
        None,
    );
    assert!(
        out.contains("0 re-encrypted, 0 tenant-key wrap(s) written"),
        "{out}"
    );
}

#[test]
fn encrypt_all_migrates_a_plaintext_repo_and_validation_then_passes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    common::copy_dir(&crate::corpus::mini_repo(), &repo);
    let r = repo.display().to_string();
    let hashes = |dir: &Path| -> BTreeSet<String> {
        walk(dir)
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| {
                        l.trim()
                            .strip_prefix("pin_hash: \"")
                            .map(|h| h.trim_end_matches('"').to_owned())
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let before = hashes(&repo);
    assert_eq!(before.len(), 3, "{before:?}");
    // Escrow named: every plaintext hash is now an error.
    let key = tmp.path().join("escrow.key");
    let out = ok(
        &["secret", "keygen", "--out", &key.display().to_string()],
        None,
    );
    let recipient = out
        .lines()
        .find_map(|l| l.strip_prefix("recipient: "))
        .expect("recipient");
    let fleet_yaml = repo.join("fleet.yaml");
    let text = std::fs::read_to_string(&fleet_yaml).expect("fleet.yaml");
    std::fs::write(
        &fleet_yaml,
        format!("{text}secrets:\n  escrow:\n    - {recipient}\n"),
    )
    .expect("write");
    let out = fleet(&["validate", "--repo", &r], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("secret/plaintext")
            .count(),
        3,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A second keygen never overwrites the identity.
    let again = fleet(
        &["secret", "keygen", "--out", &key.display().to_string()],
        None,
    );
    assert_eq!(again.status.code(), Some(2));
    let out = ok(&["secret", "encrypt-all", "--repo", &r], None);
    assert!(out.contains("acme: 3 encrypted"), "{out}");
    ok(&["validate", "--repo", &r], None);
    // The same hashes, now readable by escrow only (no store has a recipient yet).
    assert!(hashes(&repo).is_empty());
    let escrow = release::secrets::read_identity(&key).expect("escrow");
    let opened: BTreeSet<String> = sealed_values_under(&repo)
        .iter()
        .map(|(_, v)| release::secrets::unseal(v, &[&escrow]).expect("escrow opens all"))
        .collect();
    assert_eq!(opened, before);
    // A second run has nothing to encrypt, and rewrap needs the identity.
    let out = ok(&["secret", "encrypt-all", "--repo", &r], None);
    assert!(out.contains("0 encrypted, 0 re-encrypted"), "{out}");
    let out = fleet(&["secret", "rewrap", "--repo", &r], None);
    assert_eq!(out.status.code(), Some(2), "--identity is required");
}
