//! The synthetic fleets of the suite, made once per run with
//! [`crate::gen_fleet`], committed to Git, signed with `fleet sign` when a
//! part needs releases, and served by one `git daemon` on loopback.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::measure::{Cmd, Server};
use super::{Ctx, git};
use crate::gen_fleet::{DEFAULT_ITEMS, GenFleet, gen_fleet};

/// The store counts of the scaling curves.
pub const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// One generated fleet repo.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Its name under `git/`, also its path on the git daemon.
    pub name: String,
    pub dir: PathBuf,
    pub stores: usize,
    pub tenants: usize,
    pub items: usize,
    pub files: usize,
    pub bytes: u64,
    /// The first store in path order, `tenant/store`.
    pub first_store: String,
    pub signed: bool,
}

/// The fleets made so far, the signing key and the daemon.
#[derive(Debug, Default)]
pub struct Fleets {
    made: BTreeMap<String, Fleet>,
    keys: Option<Keys>,
    daemon: Option<(Server, u16)>,
}

/// The release signing key and the trust directory holding its public half.
#[derive(Debug, Clone)]
pub struct Keys {
    pub secret: PathBuf,
    pub trust_dir: PathBuf,
}

/// Tenants for `stores` stores: about 50 stores a tenant, at most 20
/// tenants (the default shape of `bench gen-fleet`).
pub fn tenants_for(stores: usize) -> usize {
    (stores / 50).clamp(1, 20)
}

impl Fleets {
    /// The fleet `name` with `stores` stores and `items` menu items per
    /// tenant, generated and committed on first use.
    pub fn get(
        &mut self,
        ctx: &Ctx,
        name: &str,
        stores: usize,
        items: usize,
    ) -> anyhow::Result<Fleet> {
        if let Some(f) = self.made.get(name) {
            return Ok(f.clone());
        }
        let dir = ctx.dir("git")?.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let tenants = tenants_for(stores);
        let t = Instant::now();
        let done = gen_fleet(
            &GenFleet {
                out: dir.clone(),
                stores,
                tenants,
                items,
                seed: crate::gen_fleet::DEFAULT_SEED,
            },
            |_| {},
        )
        .with_context(|| format!("generating {}", dir.display()))?;
        git(&dir).args(["init", "-q", "-b", "main"]).output()?;
        commit(&dir, "sources")?;
        let fleet = Fleet {
            name: name.to_owned(),
            first_store: first_store(&dir)?,
            dir,
            stores,
            tenants,
            items,
            files: done.files,
            bytes: done.bytes,
            signed: false,
        };
        ctx.say(&format!(
            "generated {name}: {stores} stores in {tenants} tenant(s), {items} items a menu, {} files, {:.1} MB ({:.1} s)",
            fleet.files,
            fleet.bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        ));
        self.made.insert(name.to_owned(), fleet.clone());
        Ok(fleet)
    }

    /// A fleet of the scaling curves: `fleet-N`, the default menu.
    pub fn sized(&mut self, ctx: &Ctx, stores: usize) -> anyhow::Result<Fleet> {
        self.get(ctx, &format!("fleet-{stores}"), stores, DEFAULT_ITEMS)
    }

    /// The signing key, made on first use.
    pub fn keys(&mut self, ctx: &Ctx) -> anyhow::Result<Keys> {
        if let Some(k) = &self.keys {
            return Ok(k.clone());
        }
        let dir = ctx.opts.work.join("keys");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        Cmd::new(ctx.bin("fleet"))
            .arg("keygen")
            .arg("--out")
            .arg(&dir)
            .output()?;
        let trust_dir = ctx.dir("trust")?;
        std::fs::copy(dir.join("minisign.pub"), trust_dir.join("minisign.pub"))
            .context("copying the public key into the trust directory")?;
        let keys = Keys {
            secret: dir.join("minisign.key"),
            trust_dir,
        };
        self.keys = Some(keys.clone());
        Ok(keys)
    }

    /// `fleet sign` the fleet and commit the releases (once).
    pub fn signed(&mut self, ctx: &Ctx, fleet: &Fleet) -> anyhow::Result<Fleet> {
        if self.made.get(&fleet.name).is_some_and(|f| f.signed) {
            return Ok(fleet.clone());
        }
        let keys = self.keys(ctx)?;
        let t = Instant::now();
        resign(ctx, fleet, &keys, "releases")?;
        ctx.say(&format!(
            "signed {}: {} releases ({:.1} s)",
            fleet.name,
            fleet.stores,
            t.elapsed().as_secs_f64()
        ));
        let mut f = fleet.clone();
        f.signed = true;
        self.made.insert(f.name.clone(), f.clone());
        Ok(f)
    }

    /// The port of the `git daemon` serving every fleet, started on first use.
    pub fn daemon_port(&mut self, ctx: &Ctx) -> anyhow::Result<u16> {
        if let Some((_, port)) = &self.daemon {
            return Ok(*port);
        }
        let base = ctx.dir("git")?;
        let (server, port) = git_daemon(&base, &ctx.opts.work.join("git-daemon.log"), false)?;
        self.daemon = Some((server, port));
        Ok(port)
    }
}

/// A `git daemon` serving every repo under `base` on a free loopback port,
/// once it listens; with `verbose`, it logs each request to `log`
/// (`Request upload-pack for '/…'`: one per fetch or clone).
pub fn git_daemon(base: &Path, log: &Path, verbose: bool) -> anyhow::Result<(Server, u16)> {
    let port = free_port()?;
    let mut cmd = Cmd::new("git").arg("daemon");
    if verbose {
        cmd = cmd.arg("--verbose");
    }
    let server = Server::start(
        &cmd.arg("--reuseaddr")
            .arg(format!("--base-path={}", base.display()))
            .arg("--export-all")
            .arg(format!("--port={port}"))
            .arg("--listen=127.0.0.1")
            .arg(base),
        log,
        false,
    )?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            bail!(
                "git daemon did not listen on {addr} within 10 s (see {})",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((server, port))
}

/// `fleet sign` the working tree and commit what it wrote.
pub fn resign(ctx: &Ctx, fleet: &Fleet, keys: &Keys, message: &str) -> anyhow::Result<()> {
    Cmd::new(ctx.bin("fleet"))
        .arg("sign")
        .arg("--key")
        .arg(&keys.secret)
        .arg("--repo")
        .arg(&fleet.dir)
        .output()?;
    commit(&fleet.dir, message)
}

/// `git add -A && git commit`.
pub fn commit(dir: &Path, message: &str) -> anyhow::Result<()> {
    git(dir).args(["add", "-A"]).output()?;
    git(dir).args(["commit", "-q", "-m", message]).output()?;
    Ok(())
}

fn first_store(dir: &Path) -> anyhow::Result<String> {
    let mut tenants = sorted_dirs(&dir.join("tenants"))?;
    tenants.retain(|t| t.join("stores").is_dir());
    for t in tenants {
        if let Some(s) = sorted_dirs(&t.join("stores"))?.first() {
            let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
            if let (Some(t), Some(s)) = (name(&t), name(s)) {
                return Ok(format!("{t}/{s}"));
            }
        }
    }
    bail!("{} has no store", dir.display())
}

fn sorted_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    Ok(out)
}

/// A port nobody listens on now.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    Ok(l.local_addr().context("reading the bound port")?.port())
}
