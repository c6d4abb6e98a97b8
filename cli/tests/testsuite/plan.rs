//! `fleet plan` on real Git repositories: the effective per-store diff of a
//! change, with the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, copy_dir};

const FLEET: &str = env!("CARGO_BIN_EXE_fleet");

/// A Git repository holding the template (optionally in a subdirectory).
struct Repo {
    _tmp: tempfile::TempDir,
    git_root: PathBuf,
    fleet: PathBuf,
}

impl Repo {
    fn new(subdir: Option<&str>) -> Repo {
        let tmp = tempfile::tempdir().expect("tempdir");
        let git_root = tmp.path().join("repo");
        let fleet = subdir
            .map(|s| git_root.join(s))
            .unwrap_or_else(|| git_root.clone());
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet-repo-template"),
            &fleet,
        );
        git2::Repository::init(&git_root).expect("init");
        let repo = Repo {
            _tmp: tmp,
            git_root,
            fleet,
        };
        repo.commit("base");
        repo
    }

    fn commit(&self, message: &str) -> String {
        common::commit_all(&self.git_root, message)
    }

    fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.fleet.join(rel);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{rel} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    }

    /// Run `fleet plan` (head = working tree unless given).
    fn plan(&self, base: &str, head: Option<&str>, format: &str) -> (i32, String, String) {
        let mut cmd = Command::new(FLEET);
        cmd.args(["plan", "--base", base, "--format", format, "--repo"])
            .arg(&self.fleet);
        if let Some(h) = head {
            cmd.args(["--head", h]);
        }
        let out = cmd.output().expect("run fleet plan");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (
            out.status.code().expect("exit code"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        )
    }

    fn plan_json(&self, base: &str, head: Option<&str>) -> serde_json::Value {
        let (code, out, err) = self.plan(base, head, "json");
        assert!(code == 0 || code == 1, "exit {code}: {err}");
        serde_json::from_str(&out).expect("json plan")
    }
}

fn stores(plan: &serde_json::Value) -> Vec<String> {
    plan["stores"]
        .as_array()
        .expect("stores")
        .iter()
        .map(|s| s["store"].as_str().expect("id").to_owned())
        .collect()
}

fn store<'a>(plan: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    plan["stores"]
        .as_array()
        .expect("stores")
        .iter()
        .find(|s| s["store"] == id)
        .unwrap_or_else(|| panic!("{id} not in plan"))
}

#[test]
fn no_change_exits_zero() {
    let r = Repo::new(None);
    let (code, out, _) = r.plan("HEAD", None, "text");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("No store changes (3 unchanged)"), "{out}");
}

#[test]
fn tenant_change_reaches_every_store() {
    let r = Repo::new(None);
    r.edit(
        "tenants/acme/menu.yaml",
        "{id: burgers, name: Burgers, sort: 10}",
        "{id: burgers, name: Burgers, sort: 5}",
    );
    let plan = r.plan_json("HEAD", None);
    assert_eq!(
        stores(&plan),
        ["acme/brooklyn", "acme/jfk-airport", "acme/soho"]
    );
    let change = &store(&plan, "acme/soho")["diff"]["changes"][0];
    assert_eq!(change["kind"], "category");
    assert_eq!(change["id"], "burgers");
    assert_eq!(change["fields"][0]["field"], "sort");
    assert_eq!(
        (
            change["fields"][0]["before"].clone(),
            change["fields"][0]["after"].clone()
        ),
        (10.into(), 5.into())
    );
}

#[test]
fn override_masks_a_tenant_price_change() {
    let r = Repo::new(None);
    // soho and jfk-airport override classic-single's price; brooklyn does not.
    r.edit(
        "tenants/acme/menu.yaml",
        "{id: classic-single, name: Single, sku: BRG-001, price: 1099}",
        "{id: classic-single, name: Single, sku: BRG-001, price: 1149}",
    );
    let plan = r.plan_json("HEAD", None);
    assert_eq!(stores(&plan), ["acme/brooklyn"]);
    let fields = &store(&plan, "acme/brooklyn")["diff"]["changes"][0]["fields"];
    assert_eq!(fields[0]["field"], "variations.classic-single.price");
    assert_eq!(plan["unchanged"], 2);
}

#[test]
fn store_only_change_shows_under_that_store_alone() {
    let r = Repo::new(None);
    r.edit(
        "tenants/acme/stores/soho/store.yaml",
        "receipt.footer: \"Thanks for visiting Acme SoHo!\"",
        "receipt.footer: \"See you soon!\"",
    );
    let head = r.commit("soho footer");
    let plan = r.plan_json("HEAD~1", Some(&head));
    assert_eq!(stores(&plan), ["acme/soho"]);
    let c = &store(&plan, "acme/soho")["diff"]["changes"][0];
    assert_eq!(
        (c["kind"].as_str(), c["id"].as_str()),
        (Some("setting"), Some("receipt.footer"))
    );
}

#[test]
fn added_and_removed_stores_are_shown_as_such() {
    let r = Repo::new(None);
    copy_dir(
        &r.fleet.join("tenants/acme/stores/soho"),
        &r.fleet.join("tenants/acme/stores/tribeca"),
    );
    r.edit(
        "tenants/acme/stores/tribeca/store.yaml",
        "id: soho ",
        "id: tribeca ",
    );
    // Store users are unique within a tenant: the copy gets its own.
    let text = std::fs::read_to_string(r.fleet.join("tenants/acme/stores/tribeca/store.yaml"))
        .expect("read");
    std::fs::write(
        r.fleet.join("tenants/acme/stores/tribeca/store.yaml"),
        text.replace("id: sam-rivera", "id: sam-rivera-2")
            .replace("id: priya-shah", "id: priya-shah-2")
            .replace("id: marco-bianchi", "id: marco-bianchi-2"),
    )
    .expect("write");
    std::fs::remove_dir_all(r.fleet.join("tenants/acme/stores/brooklyn")).expect("rm brooklyn");
    // Tenant users that named brooklyn must not any more.
    let access = std::fs::read_to_string(r.fleet.join("tenants/acme/access.yaml")).expect("access");
    std::fs::write(
        r.fleet.join("tenants/acme/access.yaml"),
        access
            .replace("soho, brooklyn", "soho")
            .replace("brooklyn, soho", "soho"),
    )
    .expect("write");
    // Their PINs follow them (DESIGN.md §11): re-encrypted for the stores
    // that now use them, with the template's demo escrow identity.
    let escrow = r.fleet.join(".fleet/DEMO-escrow.key");
    let out = Command::new(FLEET)
        .args(["secret", "rewrap", "--identity"])
        .arg(&escrow)
        .arg("--repo")
        .arg(&r.fleet)
        .output()
        .expect("run fleet secret rewrap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, text, err) = r.plan("HEAD", None, "text");
    assert_eq!(code, 1, "{text}{err}");
    assert!(text.contains("acme/tribeca (new store)"), "{text}");
    assert!(text.contains("acme/brooklyn (store removed)"), "{text}");
    let plan = r.plan_json("HEAD", None);
    assert_eq!(store(&plan, "acme/tribeca")["status"], "added");
    assert_eq!(store(&plan, "acme/brooklyn")["status"], "removed");
}

#[test]
fn renamed_id_is_remove_plus_add_with_a_warning() {
    let r = Repo::new(None);
    r.edit(
        "tenants/acme/menu.yaml",
        "{id: coleslaw-regular,",
        "{id: coleslaw-cup,",
    );
    let plan = r.plan_json("HEAD", None);
    let s = store(&plan, "acme/soho");
    let warnings = s["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("coleslaw-regular") && w.contains("rename"))),
        "{warnings:?}"
    );
}

#[test]
fn invalid_head_prints_its_errors_and_exits_2() {
    let r = Repo::new(None);
    r.edit("tenants/acme/menu.yaml", "price: 1099}", "price: 10.99}");
    let (code, out, err) = r.plan("HEAD", None, "markdown");
    assert_eq!(code, 2);
    assert!(out.contains("error[money/not-integer]"), "{out}");
    assert!(err.contains("does not validate"), "{err}");
}

#[test]
fn unknown_revision_is_an_error() {
    let r = Repo::new(None);
    let (code, _, err) = r.plan("no-such-branch", None, "text");
    assert_eq!(code, 2);
    assert!(err.contains("no-such-branch"), "{err}");
}

#[test]
fn fleet_repo_in_a_subdirectory() {
    let r = Repo::new(Some("fleet"));
    r.edit("tenants/acme/tenant.yaml", "locale: en-US", "locale: en-GB");
    let plan = r.plan_json("HEAD", None);
    assert_eq!(stores(&plan).len(), 3);
}

/// The three formats, on one change with a risk and a masked store.
#[test]
fn snapshots_of_the_three_formats() {
    let r = Repo::new(None);
    let base = r.commit("noop").to_string();
    r.edit(
        "tenants/acme/menu.yaml",
        "{id: classic-single, name: Single, sku: BRG-001, price: 1099}",
        "{id: classic-single, name: Single, sku: BRG-001, price: 1399}",
    );
    r.edit(
        "tenants/acme/menu.yaml",
        "{id: burgers, name: Burgers, sort: 10}",
        "{id: burgers, name: Burgers, sort: 5}",
    );
    let head = r.commit("price change");
    let redact = |s: String| {
        s.replace(&base, "BASE")
            .replace(&base[..7], "BASE")
            .replace(&head, "HEAD")
            .replace(&head[..7], "HEAD")
    };
    for format in ["text", "markdown", "json"] {
        let (code, out, _) = r.plan(&base, Some(&head), format);
        assert_eq!(code, 1);
        insta::assert_snapshot!(format!("plan_{format}"), redact(out));
    }
}

/// DESIGN.md §14: `tax.rounding` now defaults to `half_up` at the store; a
/// tenant that relied on the old `half_even` default by leaving it unset
/// sees a note in `fleet plan` (text, markdown and JSON) before it signs.
#[test]
fn a_tenant_without_tax_rounding_is_told_the_default_is_half_up() {
    let r = Repo::new(None);
    let (_, out, _) = r.plan("HEAD", None, "text");
    assert!(!out.contains("tax.rounding"), "the template sets it: {out}");
    r.edit(
        "tenants/acme/tenant.yaml",
        "  tax.rounding: half_even            # half_even | half_up\n",
        "",
    );
    let (code, out, _) = r.plan("HEAD", None, "text");
    assert_eq!(code, 1, "every store's setting goes: {out}");
    assert!(
        out.contains("note: tenant `acme` does not set tax.rounding (3 store(s))")
            && out.contains("half_up"),
        "{out}"
    );
    let (_, md, _) = r.plan("HEAD", None, "markdown");
    assert!(
        md.contains("> **Note:** tenant `acme` does not set tax.rounding"),
        "{md}"
    );
    let plan = r.plan_json("HEAD", None);
    assert_eq!(plan["notes"].as_array().map(Vec::len), Some(1), "{plan:#}");
}
