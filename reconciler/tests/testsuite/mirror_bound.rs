//! A store's Git mirror holds what it needs, not the repo's history
//! (DESIGN.md §13, issue #20 item 1): 1,000 revisions, each fetched by the
//! store's real mirror code from a real `git daemon`, each changing a
//! 16 KiB file (incompressible, so history would show); the mirror stays
//! within a bound set by one fresh fetch, and still reads the newest
//! release. Without the shallow fetch and compaction it grows past 16 MB.

use std::path::Path;
use std::time::Duration;

use release::source::{Credentials, Mirror, ReleaseFiles};

use crate::e2e::GitDaemon;

/// Bytes under `dir`.
fn size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Commit `release` (and a signature beside it) on `main` of `repo`.
fn commit(repo: &git2::Repository, release: &[u8], n: u64) {
    let sig = git2::Signature::now("Fleet test", "test@example.com").expect("signature");
    let blob = repo.blob(release).expect("blob");
    let minisig = repo.blob(format!("sig {n}\n").as_bytes()).expect("blob");
    let mut soho = repo.treebuilder(None).expect("tb");
    soho.insert("release.yaml", blob, 0o100644).expect("insert");
    soho.insert("release.yaml.minisig", minisig, 0o100644)
        .expect("insert");
    let soho = soho.write().expect("tree");
    let mut tree = None;
    for name in ["soho", "stores", "acme", "tenants"] {
        let mut tb = repo.treebuilder(None).expect("tb");
        tb.insert(name, tree.unwrap_or(soho), 0o040000)
            .expect("insert");
        tree = Some(tb.write().expect("tree"));
    }
    let tree = repo.find_tree(tree.expect("tree")).expect("find tree");
    let parent = repo
        .find_reference("refs/heads/main")
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        &format!("revision {n}"),
        &tree,
        &parents,
    )
    .expect("commit");
}

/// 16 KiB that do not compress (a xorshift stream seeded by `n`).
fn noise(n: u64) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..16 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A bare repo whose `main` holds revision 0, served by a real
/// `git daemon`, and a store's mirror of it (not fetched yet).
struct Served {
    repo: git2::Repository,
    state: std::path::PathBuf,
    mirror: Mirror,
    // Dropped after the fields above: the daemon stops, then the
    // directory goes.
    _daemon: GitDaemon,
    _tmp: tempfile::TempDir,
}

impl Served {
    fn start() -> Served {
        let tmp = tempfile::tempdir().expect("tempdir");
        let srv = tmp.path().join("srv");
        let served = git2::Repository::init_bare(srv.join("repo.git")).expect("bare repo");
        served.set_head("refs/heads/main").expect("HEAD to main");
        commit(&served, &noise(0), 0);
        let daemon = GitDaemon::start(&srv, &tmp.path().join("daemon.log"));
        let state = tmp.path().join("state");
        std::fs::create_dir_all(&state).expect("state dir");
        let mirror = Mirror::new(
            &state,
            &daemon.url(),
            "main",
            Credentials::None,
            Duration::from_secs(20),
        );
        Served {
            repo: served,
            state,
            mirror,
            _daemon: daemon,
            _tmp: tmp,
        }
    }

    /// The store's `release.yaml` as the mirror reads it at `commit`.
    fn release_at(&self, commit: &str) -> Vec<u8> {
        match self
            .mirror
            .read_release(commit, "tenants/acme/stores/soho")
            .unwrap_or_else(|e| panic!("read at {commit}: {e}"))
        {
            ReleaseFiles::Found { release, .. } => release,
            other => panic!("the release at {commit}: {other:?}"),
        }
    }
}

#[test]
fn the_git_mirror_stays_bounded_over_1000_revisions() {
    let srv = Served::start();
    srv.mirror.fetch().expect("first fetch");
    let fresh = size(&srv.state.join("mirror.git"));
    let mut largest = fresh;
    for n in 1..=1000 {
        commit(&srv.repo, &noise(n), n);
        let fetched = srv
            .mirror
            .fetch()
            .unwrap_or_else(|e| panic!("fetch {n}: {e}"));
        largest = largest.max(size(&srv.state.join("mirror.git")));
        if n % 250 == 0 {
            assert_eq!(
                srv.release_at(&fetched.commit),
                noise(n),
                "revision {n} reads back"
            );
        }
    }
    let history = 1000 * 16 * 1024;
    eprintln!(
        "mirror: {fresh} bytes after one fetch, at most {largest} over 1,000 revisions (their history: {history} bytes)"
    );
    assert!(
        largest <= 2 * fresh + 2 * 1024 * 1024,
        "the mirror grew to {largest} bytes (fresh: {fresh}): it keeps history"
    );
    assert!(
        !srv.state.join("mirror.git.new").exists(),
        "no rebuild left behind"
    );
}

/// A fetch whose branch has not moved ends at the ref advertisement: the
/// same connection negotiates a pack only when the tip differs (ADR 56).
/// libgit2 writes `FETCH_HEAD` for every fetch that negotiates, so it
/// stays away while the branch stands still and comes back when it moves.
/// A mirror that names a tip it no longer holds is rebuilt, not trusted.
#[test]
fn an_unchanged_branch_is_not_fetched_again() {
    let srv = Served::start();
    let first = srv.mirror.fetch().expect("first fetch");
    let fetch_head = srv.state.join("mirror.git/FETCH_HEAD");
    assert!(fetch_head.exists(), "the first fetch negotiates a pack");
    std::fs::remove_file(&fetch_head).expect("remove FETCH_HEAD");
    for _ in 0..3 {
        let again = srv.mirror.fetch().expect("fetch of the unchanged branch");
        assert_eq!(again.commit, first.commit);
        assert!(
            !fetch_head.exists(),
            "an unchanged branch was negotiated again"
        );
    }
    commit(&srv.repo, &noise(1), 1);
    let moved = srv.mirror.fetch().expect("fetch of the moved branch");
    assert_ne!(moved.commit, first.commit);
    assert!(fetch_head.exists(), "the moved branch is fetched");
    assert_eq!(srv.release_at(&moved.commit), noise(1));
    // A mirror that lost its objects but not its ref (packs deleted by
    // hand) is fetched afresh and swapped in, with a warning for the log.
    for pack in std::fs::read_dir(srv.state.join("mirror.git/objects/pack")).expect("packs") {
        std::fs::remove_file(pack.expect("entry").path()).expect("remove pack");
    }
    let repaired = srv.mirror.fetch().expect("fetch into the emptied mirror");
    assert_eq!(repaired.commit, moved.commit);
    let warning = repaired.warning.expect("the repair is reported");
    assert!(warning.contains("fetched afresh"), "{warning}");
    assert_eq!(srv.release_at(&repaired.commit), noise(1));
    assert!(!srv.state.join("mirror.git.new").exists());
    assert!(!srv.state.join("mirror.git.old").exists());
    let again = srv.mirror.fetch().expect("fetch after the repair");
    assert_eq!((again.commit, again.warning), (moved.commit, None));
}

/// `source = "status"` (DESIGN.md §13): the same 1,000 revisions of a
/// 16 KiB `release.yaml`, each pushed to the real Git host, fetched by the
/// real `fleet-status` on its hook and read through its release relay by
/// the store's real relay client: the state directory holds one answer,
/// whatever the history.
#[test]
fn a_store_on_the_relay_keeps_one_answer_over_1000_revisions() {
    use crate::e2e::{Fixture, STORE, StatusService};
    let fx = Fixture::new();
    let status = StatusService::with_hook(&fx);
    fx.write_config_with_status(&status, "source = \"status\"\n");
    fx.enroll(&status);
    let served = git2::Repository::open_bare(&fx.served).expect("the served repo");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reconciler::status_client::StatusClient::open(&fx.state, Some(&status.url()))
        .expect("the node's client");
    // Read through the relay until it answers at `commit`.
    let relayed = |commit: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            // 503 until the service's first fetch.
            let answer = rt.block_on(reconciler::relay::fetch(&client, &fx.state, STORE, 0));
            let at = match answer {
                Ok(a) if a.commit == commit => return a,
                Ok(a) => a.commit,
                Err(e) => e.to_string(),
            };
            assert!(
                std::time::Instant::now() < deadline,
                "the relay stayed at {at} (want {commit}); log:\n{}",
                status.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let head = |repo: &git2::Repository| {
        repo.refname_to_id("refs/heads/main")
            .expect("main")
            .to_string()
    };
    relayed(&head(&served));
    let fresh = size(&fx.state);
    let mut largest = fresh;
    for n in 1..=1000u64 {
        let parent = served
            .find_reference("refs/heads/main")
            .and_then(|r| r.peel_to_commit())
            .expect("main");
        let blob = served.blob(&noise(n)).expect("blob");
        let mut update = git2::build::TreeUpdateBuilder::new();
        update.upsert(
            "tenants/acme/stores/soho/release.yaml",
            blob,
            git2::FileMode::Blob,
        );
        let tree = update
            .create_updated(&served, &parent.tree().expect("tree"))
            .expect("tree");
        let tree = served.find_tree(tree).expect("tree");
        let sig = git2::Signature::now("Fleet test", "test@example.com").expect("signature");
        served
            .commit(
                Some("refs/heads/main"),
                &sig,
                &sig,
                &format!("revision {n}"),
                &tree,
                &[&parent],
            )
            .expect("commit");
        status.hook();
        let answer = relayed(&head(&served));
        if n % 250 == 0 {
            assert_eq!(answer.release, Some(noise(n)), "revision {n} is relayed");
        }
        largest = largest.max(size(&fx.state));
    }
    eprintln!(
        "relay state directory: {fresh} bytes after the first answer, at most {largest} over 1,000 revisions"
    );
    assert!(
        largest <= fresh + 64 * 1024,
        "the state directory grew to {largest} bytes (first: {fresh})"
    );
    assert!(!fx.state.join("mirror.git").exists(), "no Git mirror");
}
