//! `fleet sign` and `fleet rollout` on the repo template with the real
//! binary (DESIGN.md §12): a tenant with `rollout:` gets a change in waves;
//! a newer change supersedes the running rollout and starts again from the
//! first wave; pause and resume; an urgent sign supersedes and signs every
//! store; an aborted rollout is not started again for the same sources.
//! (Gates against a real status service: reconciler's `rollout_e2e`.)

use std::path::PathBuf;
use std::process::Output;

use schemas::rollout::{RolloutFile, RolloutState};

use crate::common;

fn fleet(args: &[&str]) -> Output {
    common::fleet(args, None)
}

fn ok(args: &[&str]) -> String {
    common::ok(args, None)
}

struct Repo {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    key: String,
}

impl Repo {
    /// The template signed once, then given waves: soho the canary,
    /// brooklyn east, jfk-airport the rest.
    fn new() -> Repo {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        common::template_repo(&repo);
        let keys = tmp.path().join("keys");
        ok(&["keygen", "--out", &keys.display().to_string()]);
        let r = Repo {
            key: keys.join("minisign.key").display().to_string(),
            repo,
            _tmp: tmp,
        };
        r.sign(&[]);
        std::fs::write(
            r.repo.join("tenants/acme/rollout.yaml"),
            "apiVersion: fleet/v1\nkind: Tenant\nrollout:\n  waves:\n    - {name: canary, stores: [soho]}\n    - {name: east, stores: [brooklyn]}\n    - {name: rest}\n  bake: 10m\n",
        )
        .expect("rollout.yaml");
        common::commit_all(&r.repo, "waves");
        let out = r.sign(&[]);
        assert!(
            out.contains("0 release(s) signed"),
            "waves change no state: {out}"
        );
        r
    }

    fn r(&self) -> String {
        self.repo.display().to_string()
    }

    /// `fleet sign`, then commit what it wrote.
    fn sign(&self, extra: &[&str]) -> String {
        let mut args = vec![
            "sign",
            "--key",
            &self.key,
            "--repo",
            &self.repo.to_str().expect("path"),
        ];
        args.extend_from_slice(extra);
        let out = ok(&args);
        common::commit_all(&self.repo, "release");
        out
    }

    /// A tenant-wide change every store renders.
    fn change(&self, value: &str) {
        let path = self.repo.join("tenants/acme/tenant.yaml");
        let text = std::fs::read_to_string(&path).expect("tenant.yaml");
        let text = match text.find("  custom.wave_test:") {
            Some(at) => {
                let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
                format!(
                    "{}  custom.wave_test: \"{value}\"{}",
                    &text[..at],
                    &text[end..]
                )
            }
            None => text.replacen(
                "settings:\n",
                &format!("settings:\n  custom.wave_test: \"{value}\"\n"),
                1,
            ),
        };
        std::fs::write(&path, text).expect("tenant.yaml");
        common::commit_all(&self.repo, &format!("wave test {value}"));
    }

    fn revision(&self, store: &str) -> u64 {
        let text = std::fs::read_to_string(
            self.repo
                .join(format!("tenants/acme/stores/{store}/release.yaml")),
        )
        .expect("release.yaml");
        let v: serde_json::Value = schemas::yaml::decode("release.yaml", &text).expect("yaml");
        v["revision"].as_u64().expect("revision")
    }

    fn release(&self, store: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(
            self.repo
                .join(format!("tenants/acme/stores/{store}/release.yaml")),
        )
        .expect("release.yaml");
        schemas::yaml::decode("release.yaml", &text).expect("yaml")
    }

    fn rollouts(&self) -> Vec<RolloutFile> {
        let dir = self.repo.join("rollouts/acme");
        let mut out: Vec<RolloutFile> = std::fs::read_dir(&dir)
            .expect("rollouts/acme")
            .map(|e| {
                let text = std::fs::read_to_string(e.expect("entry").path()).expect("read");
                schemas::yaml::decode("rollout", &text).expect("a rollout file")
            })
            .collect();
        out.sort_by_key(|r| (r.started_at, r.state.is_active(), r.id.clone()));
        out
    }
}

fn custom(release: &serde_json::Value) -> &serde_json::Value {
    &release["state"]["settings"]["custom.wave_test"]
}

#[test]
fn a_newer_change_supersedes_the_running_rollout_and_starts_from_the_canary() {
    let r = Repo::new();
    let (soho, brooklyn, jfk) = (
        r.revision("soho"),
        r.revision("brooklyn"),
        r.revision("jfk-airport"),
    );
    r.change("A");
    let out = r.sign(&["--effective-at", "2030-01-07T06:00"]);
    assert!(out.contains("2 held for later rollout waves"), "{out}");
    // Every wave takes effect at that time: the rollout remembers it.
    assert_eq!(
        r.rollouts()[0].effective_at.map(|t| t.to_string()),
        Some("2030-01-07 06:00:00".to_owned())
    );
    assert_eq!(r.release("soho")["effective_at"], "2030-01-07T06:00:00");
    assert_eq!(r.revision("soho"), soho + 1);
    assert_eq!(r.revision("brooklyn"), brooklyn);
    let first = &r.rollouts()[0];
    assert_eq!(first.state, RolloutState::InProgress);
    assert_eq!(first.waves[0].stores, ["soho"]);
    assert_eq!(first.waves[1].stores, ["brooklyn"]);
    assert_eq!(first.waves[2].stores, ["jfk-airport"]);
    assert_eq!(first.waves[0].revisions["soho"], soho + 1);
    assert!(first.bake.is_some());
    // The release job's `fleet verify` passes: held stores are noted.
    let pubkey = r.key.replace("minisign.key", "minisign.pub");
    let out = ok(&["verify", "--pubkey", &pubkey, "--repo", &r.r()]);
    assert!(
        out.contains("rollout") && out.contains("is in_progress"),
        "{out}"
    );

    // Paused: signing again keeps everything held, and says so.
    let id = first.id.clone();
    assert!(ok(&["rollout", "pause", &id, "--repo", &r.r()]).contains("paused"));
    let out = r.sign(&[]);
    assert!(out.contains("is paused"), "{out}");
    assert_eq!(r.revision("brooklyn"), brooklyn);
    assert!(ok(&["rollout", "resume", "--all", "--repo", &r.r()]).contains("resumed"));

    // A newer change: the running rollout is superseded, a new one starts
    // from the canary with both changes; east and rest still wait.
    r.change("B");
    let out = r.sign(&[]);
    assert!(
        out.contains(&format!("rollout {id} superseded by")),
        "{out}"
    );
    let all = r.rollouts();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].state, RolloutState::Superseded);
    assert_eq!(all[0].superseded_by.as_deref(), Some(all[1].id.as_str()));
    assert_eq!(all[1].state, RolloutState::InProgress);
    assert_eq!(all[1].waves[0].stores, ["soho"]);
    assert_eq!(r.revision("soho"), soho + 2);
    assert_eq!(custom(&r.release("soho")), "B");
    assert_eq!(r.revision("brooklyn"), brooklyn);
    assert_eq!(r.revision("jfk-airport"), jfk);
    let status = ok(&["rollout", "status", "--repo", &r.r()]);
    assert!(status.contains("superseded by"), "{status}");
    assert!(status.contains("→ canary"), "{status}");

    // An urgent fix: every store now, the rollout superseded.
    r.change("C");
    let out = r.sign(&["--urgent"]);
    assert!(out.contains("superseded by an urgent sign"), "{out}");
    for store in ["soho", "brooklyn", "jfk-airport"] {
        let release = r.release(store);
        assert_eq!(custom(&release), "C", "{store}");
        assert_eq!(release["urgent"], true, "{store}");
        assert_eq!(release["apiVersion"], "fleet/v2", "{store}");
    }
    assert!(r.rollouts().iter().all(|f| !f.state.is_active()));
}

#[test]
fn an_aborted_rollout_is_not_started_again_until_the_sources_change() {
    let r = Repo::new();
    let brooklyn = r.revision("brooklyn");
    r.change("A");
    r.sign(&[]);
    let id = r.rollouts()[0].id.clone();
    let out = ok(&[
        "rollout",
        "abort",
        &id,
        "--reason",
        "bad buns",
        "--repo",
        &r.r(),
    ]);
    assert!(out.contains("aborted: bad buns"), "{out}");
    assert_eq!(r.rollouts()[0].state, RolloutState::Aborted);
    assert_eq!(r.rollouts()[0].abort_reason.as_deref(), Some("bad buns"));
    let out = r.sign(&[]);
    assert!(out.contains("was aborted (bad buns)"), "{out}");
    assert_eq!(r.revision("brooklyn"), brooklyn, "later waves never move");
    assert_eq!(r.rollouts().len(), 1);
    // Aborting it twice is refused; a new change starts a new rollout.
    let again = fleet(&["rollout", "abort", &id, "--repo", &r.r()]);
    assert_eq!(again.status.code(), Some(2));
    r.change("B");
    r.sign(&[]);
    assert_eq!(r.rollouts().len(), 2);
    assert_eq!(r.rollouts()[1].state, RolloutState::InProgress);
    // The stores' first release is never staged: a new store goes out at once.
    ok(&["new-store", "acme/harlem", "--repo", &r.r()]);
    common::commit_all(&r.repo, "harlem");
    let brooklyn_before = r.revision("brooklyn");
    let soho_at = r.revision("soho");
    r.sign(&[]);
    assert_eq!(r.revision("harlem"), 1);
    // The new store changed what the tenant renders: the running rollout is
    // superseded, but its canary wave in flight keeps its gate — soho is
    // carried with the revision it was signed, and east still waits.
    let all = r.rollouts();
    assert_eq!(all[1].state, RolloutState::Superseded);
    assert_eq!(all[2].state, RolloutState::InProgress);
    assert_eq!(all[2].current_wave, 0);
    assert_eq!(all[2].waves[0].stores, ["soho"]);
    assert_eq!(all[2].waves[0].revisions["soho"], soho_at);
    assert_eq!(all[2].waves[1].stores, ["brooklyn"]);
    assert_eq!(
        r.revision("brooklyn"),
        brooklyn_before,
        "not let out ungated"
    );
    // A comment or a label changes no release: nothing is superseded.
    let path = r.repo.join("tenants/acme/tenant.yaml");
    let text = std::fs::read_to_string(&path).expect("tenant.yaml");
    std::fs::write(&path, format!("# a comment\n{text}")).expect("tenant.yaml");
    common::commit_all(&r.repo, "a comment");
    r.sign(&[]);
    assert_eq!(r.rollouts().len(), 3);
    assert_eq!(r.rollouts()[2].state, RolloutState::InProgress);
}
