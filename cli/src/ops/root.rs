//! `fleet root init | propose | sign | verify`: the fleet's trust root in
//! `trust/root/` of a fleet repo checkout (DESIGN.md §10). The chain walk
//! itself is `release::root`'s, the same code the stores and the status
//! service run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use release::root::{self, Offered, OfferedChain, RootRefusal, VerifiedRoot, WalkError};
use release::trust::{MAX_SIGNATURE_BYTES, TrustedKey, TrustedKeys};
use schemas::model::{ApiVersion, TrustRootKind};
use schemas::trust_root::{
    ROOT_DIR, ReleaseKeys, RootFileName, RootKeys, TrustRoot, file_name, signature_name,
};

/// The trusted comment of a root signature.
pub fn trusted_comment(version: u64) -> String {
    format!("fleet trust root version={version}")
}

/// `trust/root/` of the checkout at `repo`.
pub fn root_dir(repo: &Path) -> PathBuf {
    repo.join(ROOT_DIR)
}

/// A public key given on the command line: a `*.pub` file as `fleet
/// keygen` writes it, or the key's base64 text. Returns the base64 line a
/// root lists, and the parsed key.
pub fn public_key_arg(arg: &str) -> anyhow::Result<(String, TrustedKey)> {
    let path = Path::new(arg);
    let text = if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading {arg}"))?
    } else {
        arg.to_owned()
    };
    let key = TrustedKeys::parse_key(&text, arg).map_err(|e| {
        anyhow::anyhow!("{arg} is neither a minisign public key file nor a key's base64 text: {e}")
    })?;
    let trimmed = text.trim();
    let line = if trimmed.lines().count() >= 2 {
        trimmed.lines().nth(1).unwrap_or("").trim()
    } else {
        trimmed
    };
    Ok((line.to_owned(), key))
}

/// Every version and signature file in `trust/root/` of the checkout.
/// Only regular files are read; other names are ignored.
pub fn read_chain(repo: &Path) -> anyhow::Result<OfferedChain> {
    let dir = root_dir(repo);
    let mut chain = OfferedChain::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(chain),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut signatures = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let parsed = RootFileName::parse(&name);
        if parsed == RootFileName::Other {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if !meta.is_file() {
            bail!(
                "{} is not a regular file (a symlink?); only regular files are read",
                path.display()
            );
        }
        let max = match parsed {
            RootFileName::Version(_) => root::MAX_ROOT_BYTES,
            _ => MAX_SIGNATURE_BYTES,
        };
        if meta.len() as usize > max {
            bail!(
                "{} is {} bytes; the limit is {max}",
                path.display(),
                meta.len()
            );
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        match parsed {
            RootFileName::Version(v) => chain.entry(v).or_default().bytes = bytes,
            RootFileName::Signature { version, .. } => signatures.push((version, name, bytes)),
            RootFileName::Other => {}
        }
    }
    signatures.sort_by(|a, b| a.1.cmp(&b.1));
    for (version, name, bytes) in signatures {
        if let Some(o) = chain.get_mut(&version) {
            o.signatures.push((name, bytes));
        }
    }
    Ok(chain)
}

/// What `fleet root init` takes.
#[derive(Debug)]
pub struct InitOptions {
    pub repo: PathBuf,
    pub root_keys: Vec<String>,
    pub threshold: u32,
    pub release_keys: Vec<String>,
    pub expires_in: chrono::Duration,
    pub now: DateTime<Utc>,
}

/// Write `trust/root/1.yaml`, unsigned. Refused when the repo has a root.
pub fn init(o: &InitOptions) -> anyhow::Result<(PathBuf, VerifiedRoot)> {
    let chain = read_chain(&o.repo)?;
    if let Some(v) = chain.keys().next_back() {
        bail!(
            "{} already holds version {v}: change it with `fleet root propose`",
            root_dir(&o.repo).display()
        );
    }
    let doc = TrustRoot {
        api_version: ApiVersion,
        kind: TrustRootKind,
        version: 1,
        expires_at: o.now + o.expires_in,
        root: RootKeys {
            threshold: o.threshold,
            keys: key_lines(&o.root_keys)?,
        },
        releases: ReleaseKeys {
            keys: key_lines(&o.release_keys)?,
        },
    };
    write_version(&o.repo, &doc)
}

fn key_lines(args: &[String]) -> anyhow::Result<Vec<String>> {
    args.iter()
        .map(|a| public_key_arg(a).map(|(line, _)| line))
        .collect()
}

/// The bytes of a version as `fleet root` writes them.
pub fn version_bytes(doc: &TrustRoot) -> Vec<u8> {
    let mut text = format!(
        "# Trust root version {}, written by `fleet root`. Never edit by hand: the\n# signatures beside it cover every byte. See docs/operations/signing.md.\n",
        doc.version
    );
    text.push_str(&schemas::yaml::to_canonical_yaml(doc).expect("a root is plain data"));
    text.into_bytes()
}

fn write_version(repo: &Path, doc: &TrustRoot) -> anyhow::Result<(PathBuf, VerifiedRoot)> {
    let bytes = version_bytes(doc);
    let path = root_dir(repo).join(file_name(doc.version));
    let verified = VerifiedRoot::pinned(&bytes, &format!("{ROOT_DIR}/{}", file_name(doc.version)))?;
    std::fs::create_dir_all(root_dir(repo))
        .with_context(|| format!("creating {}", root_dir(repo).display()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((path, verified))
}

/// What `fleet root propose` changes.
#[derive(Debug, Default)]
pub struct ProposeOptions {
    pub add_release_keys: Vec<String>,
    pub remove_release_keys: Vec<String>,
    pub add_root_keys: Vec<String>,
    pub remove_root_keys: Vec<String>,
    pub threshold: Option<u32>,
    pub expires_in: Option<chrono::Duration>,
}

/// What `propose` wrote, with warnings about the rotation order.
#[derive(Debug)]
pub struct Proposed {
    pub path: PathBuf,
    pub root: VerifiedRoot,
    /// How many of the previous version's root keys must sign it.
    pub previous_threshold: u32,
    pub warnings: Vec<String>,
}

/// Write version n+1 from the newest version n and `changes`, unsigned.
pub fn propose(
    repo: &Path,
    changes: &ProposeOptions,
    now: DateTime<Utc>,
) -> anyhow::Result<Proposed> {
    let chain = read_chain(repo)?;
    let Some((&n, newest)) = chain.iter().next_back() else {
        bail!(
            "{} holds no version: start with `fleet root init`",
            root_dir(repo).display()
        );
    };
    let current = VerifiedRoot::pinned(&newest.bytes, &format!("{ROOT_DIR}/{}", file_name(n)))?;
    let mut doc = current.doc.clone();
    doc.version = n + 1;
    doc.expires_at = now + changes.expires_in.unwrap_or(chrono::Duration::days(365));
    let mut warnings = Vec::new();
    let edit = |list: &mut Vec<String>, add: &[String], remove: &[String], what: &str| {
        for a in add {
            let (line, key) = public_key_arg(a)?;
            if list.iter().any(|l| same_key(l, &key)) {
                bail!("{what} key {} ({a}) is already in version {n}", key.key_id);
            }
            list.push(line);
        }
        for r in remove {
            let (_, key) = public_key_arg(r)?;
            let before = list.len();
            list.retain(|l| !same_key(l, &key));
            if list.len() == before {
                bail!("{what} key {} ({r}) is not in version {n}", key.key_id);
            }
        }
        Ok::<(), anyhow::Error>(())
    };
    edit(
        &mut doc.releases.keys,
        &changes.add_release_keys,
        &changes.remove_release_keys,
        "release",
    )?;
    edit(
        &mut doc.root.keys,
        &changes.add_root_keys,
        &changes.remove_root_keys,
        "root",
    )?;
    if let Some(t) = changes.threshold {
        doc.root.threshold = t;
    }
    if !changes.add_release_keys.is_empty() && !changes.remove_release_keys.is_empty() {
        warnings.push(format!(
            "version {} adds and removes release keys at once: a store that walks to it refuses releases signed by the removed key at once. The safe order is three steps: add the new key (this version), switch the release job to it and re-sign (fleet sign --all), then remove the old key in a later version",
            n + 1
        ));
    }
    if doc.root.keys.len() < doc.root.threshold as usize {
        bail!(
            "version {} would have {} root key(s) and a threshold of {}: lower the threshold with --threshold",
            n + 1,
            doc.root.keys.len(),
            doc.root.threshold
        );
    }
    if doc.root.threshold == 1 && doc.root.keys.len() > 1 {
        warnings.push(format!(
            "version {} has a threshold of 1: any one root key can change the fleet's trust alone",
            n + 1
        ));
    }
    let next = root_dir(repo).join(file_name(n + 1));
    if next.exists() {
        bail!(
            "{} exists: sign that proposal (fleet root sign) or delete it first",
            next.display()
        );
    }
    let (path, root) = write_version(repo, &doc)?;
    Ok(Proposed {
        path,
        root,
        previous_threshold: current.doc.root.threshold,
        warnings,
    })
}

fn same_key(line: &str, key: &TrustedKey) -> bool {
    TrustedKeys::parse_key(line, "root").is_ok_and(|k| k.key_id == key.key_id)
}

/// Add the signature of `key` to version `version` (default: the newest).
/// Refused when the key is a root key of neither that version nor the one
/// before: its signature would count for nothing.
pub fn sign(
    repo: &Path,
    key: &minisign::SecretKey,
    version: Option<u64>,
) -> anyhow::Result<(PathBuf, String)> {
    let chain = read_chain(repo)?;
    let version = match version.or_else(|| chain.keys().next_back().copied()) {
        Some(v) => v,
        None => bail!(
            "{} holds no version to sign: start with `fleet root init`",
            root_dir(repo).display()
        ),
    };
    let Some(offered) = chain.get(&version) else {
        bail!(
            "{}/{} does not exist",
            root_dir(repo).display(),
            file_name(version)
        );
    };
    let text = minisign::sign(
        None,
        key,
        offered.bytes.as_slice(),
        Some(&trusted_comment(version)),
        Some("signature from fleet root sign"),
    )
    .context("signing the root")?
    .to_string();
    let key_id = release::trust::key_id_of_signature(&text)
        .context("reading the key id of the signature just made")?;
    let this = VerifiedRoot::pinned(&offered.bytes, &file_name(version))?;
    let mut counted: Vec<&TrustedKey> = this.root_keys.iter().collect();
    let previous = match version.checked_sub(1).and_then(|p| chain.get(&p)) {
        Some(p) => Some(VerifiedRoot::pinned(&p.bytes, &file_name(version - 1))?),
        None => None,
    };
    if let Some(p) = &previous {
        counted.extend(p.root_keys.iter());
    }
    // Version 1 may also be signed by a release key that `*.pub` stores
    // pin: they adopt the root through that signature (DESIGN.md §10).
    if version > 1 && !counted.iter().any(|k| k.key_id == key_id) {
        let what = if previous.is_some() {
            format!(
                "a root key of neither version {version} nor version {}",
                version - 1
            )
        } else {
            format!("not a root key of version {version}")
        };
        bail!(
            "key {key_id} is {what}: its signature would count for nothing (root keys sign roots; release keys sign releases)"
        );
    }
    let path = root_dir(repo).join(signature_name(version, &key_id));
    std::fs::write(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((path, key_id))
}

/// One line of `fleet root verify`.
#[derive(Debug, Clone)]
pub struct VersionLine {
    pub version: u64,
    pub text: String,
    pub ok: bool,
}

/// What `fleet root verify` found.
#[derive(Debug)]
pub struct RootVerdict {
    pub lines: Vec<VersionLine>,
    /// The newest version that verified.
    pub trusted: Option<VerifiedRoot>,
    /// Why the chain stops short of its newest version, if it does.
    pub problem: Option<String>,
    pub warnings: Vec<String>,
}

impl RootVerdict {
    pub fn ok(&self) -> bool {
        self.problem.is_none() && self.trusted.is_some()
    }
}

/// Walk the chain of the checkout from `pin` (a root file a store trusts),
/// or, without one, from the repo's version 1 checked against its own root
/// keys.
pub fn verify(repo: &Path, pin: Option<&Path>, now: DateTime<Utc>) -> anyhow::Result<RootVerdict> {
    let chain = read_chain(repo)?;
    let mut verdict = RootVerdict {
        lines: Vec::new(),
        trusted: None,
        problem: None,
        warnings: Vec::new(),
    };
    let start = match pin {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            VerifiedRoot::pinned(&bytes, &p.display().to_string())?
        }
        None => match chain.get(&1) {
            None => {
                verdict.problem = Some(format!(
                    "{} holds no 1.yaml: start with `fleet root init`",
                    root_dir(repo).display()
                ));
                return Ok(verdict);
            }
            Some(first) => {
                let v1 = VerifiedRoot::pinned(&first.bytes, &format!("{ROOT_DIR}/1.yaml"))?;
                let own = root::signers(&v1.root_keys, &first.bytes, &first.signatures);
                if own.len() < v1.doc.root.threshold as usize {
                    verdict.lines.push(VersionLine {
                        version: 1,
                        text: needs_text(1, None, (own.len(), v1.doc.root.threshold), &own),
                        ok: false,
                    });
                    verdict.problem = Some(format!(
                        "version 1 has {} of the {} signatures of its own root keys it needs",
                        own.len(),
                        v1.doc.root.threshold
                    ));
                    return Ok(verdict);
                }
                v1
            }
        },
    };
    verdict.lines.push(VersionLine {
        version: start.version(),
        text: format!(
            "version {}: {}",
            start.version(),
            if pin.is_some() {
                "pinned"
            } else {
                "signed by its own root keys"
            }
        ),
        ok: true,
    });
    let mut steps = Vec::new();
    let result = root::walk(start.clone(), &chain, now, |v| {
        steps.push(v.version());
        Ok(())
    });
    for v in &steps {
        verdict.lines.push(VersionLine {
            version: *v,
            text: format!(
                "version {v}: signed by the thresholds of version {} and of itself",
                v - 1
            ),
            ok: true,
        });
    }
    match result {
        Ok(w) => verdict.trusted = Some(w.root),
        Err(WalkError::Refused(RootRefusal::Threshold { .. })) => {
            // The newest step lacks signatures: say how many more it needs.
            let last_ok = steps.last().copied().unwrap_or(start.version());
            let prev = chain
                .get(&last_ok)
                .and_then(|o| VerifiedRoot::pinned(&o.bytes, &file_name(last_ok)).ok())
                .unwrap_or_else(|| start.clone());
            let offered = &chain[&(last_ok + 1)];
            let next = VerifiedRoot::pinned(&offered.bytes, &file_name(last_ok + 1))?;
            let n = root::needs(&prev, &next, offered);
            let signed = signed_by(&prev, &next, offered);
            verdict.lines.push(VersionLine {
                version: last_ok + 1,
                text: needs_text(last_ok + 1, Some(n.by_previous), n.by_itself, &signed),
                ok: false,
            });
            verdict.problem = Some(format!(
                "version {} is not signed by enough root keys yet",
                last_ok + 1
            ));
            verdict.trusted = Some(prev);
        }
        Err(e) => {
            verdict.problem = Some(e.to_string());
        }
    }
    if let Some(t) = &verdict.trusted {
        let left = t.doc.expires_at - now;
        if left <= chrono::Duration::days(30) && left > chrono::Duration::zero() {
            verdict.warnings.push(format!(
                "version {} expires on {} ({} days): propose and sign the next version before then, or every store freezes",
                t.version(),
                t.doc.expires_at.format("%Y-%m-%d"),
                left.num_days()
            ));
        }
    }
    Ok(verdict)
}

fn signed_by(prev: &VerifiedRoot, next: &VerifiedRoot, offered: &Offered) -> BTreeSet<String> {
    let mut keys: Vec<TrustedKey> = prev.root_keys.clone();
    keys.extend(next.root_keys.iter().cloned());
    root::signers(&keys, &offered.bytes, &offered.signatures)
}

fn needs_text(
    version: u64,
    by_previous: Option<(usize, u32)>,
    by_itself: (usize, u32),
    signed: &BTreeSet<String>,
) -> String {
    let more = |(have, need): (usize, u32)| (need as usize).saturating_sub(have);
    let mut parts = Vec::new();
    if let Some(p) = by_previous {
        parts.push(format!(
            "{} more of version {}'s root keys (has {} of {})",
            more(p),
            version - 1,
            p.0,
            p.1
        ));
    }
    parts.push(format!(
        "{} more of its own root keys (has {} of {})",
        more(by_itself),
        by_itself.0,
        by_itself.1
    ));
    format!(
        "version {version}: NOT YET TRUSTED: needs {}{}",
        parts.join(" and "),
        if signed.is_empty() {
            String::new()
        } else {
            format!(
                "; signed so far by {}",
                signed.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    )
}

/// "Which keys sign releases now" and the root keys, for the summary.
pub fn describe(root: &VerifiedRoot) -> Vec<String> {
    let mut out = vec![format!(
        "Trust root version {} (expires {}).",
        root.version(),
        root.doc.expires_at.format("%Y-%m-%d")
    )];
    out.push("Releases are signed by any one of:".to_owned());
    for k in root.release_keys.iter() {
        out.push(format!("  release key {}", k.key_id));
    }
    out.push(format!(
        "The next version needs {} of these root keys:",
        root.doc.root.threshold
    ));
    for k in &root.root_keys {
        out.push(format!("  root key {}", k.key_id));
    }
    out
}
