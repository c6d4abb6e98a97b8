//! `fleet-reconciler diagnose`: a support bundle (a `.tar.gz`) of what an
//! operator needs to see why a store does not converge, and its upload to
//! the status service as a signed node request.
//!
//! The bundle holds versions (reconciler, OS, kernel), the configuration
//! with secrets redacted, recent logs (`journalctl`, when there is one),
//! the state files (`applied.json`, `last_pass.json`, `node.json`), the
//! outbox listing with the newest reports, and the Git mirror's refs.
//!
//! It must never hold a secret: the edge token, Git credentials, the
//! node key (`node.key`, `node.key.next`) and the store's age identity
//! (`age.key`) are never read into it, and, as a second guard,
//! every text entry is scrubbed of the secret files' contents before it is
//! written. Paths to secret files are fine and are kept.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::outbox::Outbox;
use crate::status_client;
use wire::node_auth;

/// Where a bundle goes on the status service.
pub const UPLOAD_PATH: &str = wire::desired::SUPPORT_BUNDLES_PATH;

/// Newest outbox reports copied into the bundle.
pub const NEWEST_REPORTS: usize = 5;

/// Journal lines copied into the bundle.
pub const JOURNAL_LINES: u32 = 2000;

/// What replaces a secret in the bundle.
pub const REDACTED: &str = "<redacted>";

/// What to put in a bundle.
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    /// The reconciler's configuration file.
    pub config_path: PathBuf,
    /// Where the bundle is written.
    pub out: PathBuf,
    /// The systemd unit whose journal is copied; `None` leaves logs out.
    pub journal_unit: Option<String>,
    pub now: DateTime<Utc>,
}

/// A bundle written.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub path: PathBuf,
    pub bytes: u64,
    /// The entries, in the order they were written.
    pub entries: Vec<String>,
    /// The parsed configuration, when it parsed (needed for `--upload`).
    pub config: Option<Config>,
}

/// What an upload answered.
#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    pub store: String,
    pub url: String,
}

/// Why `diagnose` failed.
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error("writing the bundle {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot upload: the configuration did not load ({0})")]
    NoConfig(String),
    #[error("cannot upload: no status_url in the configuration")]
    NoStatusUrl,
    #[error("cannot upload: {0}")]
    Node(#[from] status_client::StatusError),
    #[error("reading the bundle {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("uploading to {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the status service refused the bundle ({status}): {message}")]
    Refused { status: u16, message: String },
}

/// Write the bundle described by `opts`. A missing or broken part (no
/// journal, no state yet, a config that does not parse) is said so in the
/// bundle, not an error: a bundle is most needed when things are broken.
pub fn write_bundle(opts: &DiagnoseOptions) -> Result<Bundle, DiagnoseError> {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    entries.push(("versions.txt".into(), versions(opts.now).into_bytes()));

    let raw = std::fs::read_to_string(&opts.config_path);
    let config = match &raw {
        Ok(text) => Config::parse(text, &opts.config_path).map_err(|e| e.to_string()),
        Err(e) => Err(format!("cannot read {}: {e}", opts.config_path.display())),
    };
    let config_entry = match &raw {
        Ok(text) => redact_config(text),
        Err(e) => format!("# cannot read {}: {e}\n", opts.config_path.display()),
    };
    let config_entry = match &config {
        Ok(_) => format!(
            "# {} (secrets redacted)\n{config_entry}",
            opts.config_path.display()
        ),
        Err(e) => format!(
            "# {} (secrets redacted)\n# does not load: {e}\n{config_entry}",
            opts.config_path.display()
        ),
    };
    entries.push(("config.toml".into(), config_entry.into_bytes()));
    entries.push((
        "logs.txt".into(),
        journal(opts.journal_unit.as_deref()).into_bytes(),
    ));

    let mut secrets: Vec<String> = Vec::new();
    match &config {
        Ok(c) => {
            for f in [
                Some(&c.edge_token_file),
                c.git_token_file.as_ref(),
                c.git_ssh_key_file.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                if let Ok(t) = std::fs::read_to_string(f) {
                    secrets.push(t.trim().to_owned());
                }
            }
            for f in [
                status_client::KEY_FILE,
                status_client::PENDING_KEY_FILE,
                status_client::AGE_IDENTITY_FILE,
            ] {
                if let Ok(t) = std::fs::read_to_string(c.state_dir.join(f)) {
                    secrets.extend(t.lines().map(|l| l.trim().to_owned()));
                }
            }
            state_entries(c, &mut entries);
        }
        Err(e) => entries.push((
            "state/README.txt".into(),
            format!("no state: the configuration does not load ({e})\n").into_bytes(),
        )),
    }
    secrets.retain(|s| s.len() >= 8);

    let names: Vec<String> = entries.iter().map(|(n, _)| n.clone()).collect();
    let werr = |source| DiagnoseError::Write {
        path: opts.out.clone(),
        source,
    };
    if let Some(dir) = opts.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    let file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&opts.out)
            .map_err(werr)?
    };
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let root = format!("fleet-diagnose-{}", opts.now.format("%Y%m%dT%H%M%SZ"));
    for (name, bytes) in entries {
        let bytes = scrub(bytes, &secrets);
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o640);
        header.set_mtime(opts.now.timestamp().max(0) as u64);
        header.set_cksum();
        tar.append_data(&mut header, format!("{root}/{name}"), bytes.as_slice())
            .map_err(werr)?;
    }
    let gz = tar.into_inner().map_err(werr)?;
    let mut file = gz.finish().map_err(werr)?;
    file.flush().map_err(werr)?;
    file.sync_all().map_err(werr)?;
    let bytes = std::fs::metadata(&opts.out).map_err(werr)?.len();
    Ok(Bundle {
        path: opts.out.clone(),
        bytes,
        entries: names,
        config: config.ok(),
    })
}

/// Send a written bundle to the status service, signed with the node key;
/// with `action`, as the answer to that operator action
/// ([`wire::desired`]).
pub async fn upload(bundle: &Bundle, action: Option<u64>) -> Result<Upload, DiagnoseError> {
    let config = bundle
        .config
        .as_ref()
        .ok_or_else(|| DiagnoseError::NoConfig("see config.toml in the bundle".into()))?;
    let base = match (
        &config.status_url,
        status_client::enrollment(&config.state_dir)?,
    ) {
        (Some(u), _) => u.trim_end_matches('/').to_owned(),
        (None, Some(e)) => e.status_url,
        (None, None) => return Err(DiagnoseError::NoStatusUrl),
    };
    let key = status_client::load_key(&config.state_dir)?;
    let body = std::fs::read(&bundle.path).map_err(|source| DiagnoseError::Read {
        path: bundle.path.clone(),
        source,
    })?;
    let nonce = status_client::nonce();
    let path = match action {
        Some(id) => format!("{UPLOAD_PATH}?action={id}"),
        None => UPLOAD_PATH.to_owned(),
    };
    let headers = node_auth::sign_request(&key, "POST", &path, &body, Utc::now(), &nonce);
    let url = format!("{base}{path}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("fleet-reconciler/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DiagnoseError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let mut rb = http
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/gzip");
    for (name, value) in headers.pairs() {
        rb = rb.header(name, value);
    }
    let resp = rb
        .body(body)
        .send()
        .await
        .map_err(|e| DiagnoseError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if !status.is_success() {
        return Err(DiagnoseError::Refused {
            status: status.as_u16(),
            message: json["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| text.chars().take(300).collect()),
        });
    }
    Ok(Upload {
        id: json["id"].as_str().unwrap_or_default().to_owned(),
        store: json["store"].as_str().unwrap_or_default().to_owned(),
        url,
    })
}

/// Why a diagnostic command gave nothing to bundle; the bundle records
/// the reason in its place.
#[derive(Debug, thiserror::Error)]
enum CommandError {
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("`{program}` is not available: {source}")]
    Unavailable {
        program: String,
        source: std::io::Error,
    },
}

fn run(program: &str, args: &[&str]) -> Result<String, CommandError> {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(CommandError::Failed {
            command: format!("{program} {}", args.join(" ")),
            status: o.status,
            stderr: String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        }),
        Err(source) => Err(CommandError::Unavailable {
            program: program.to_owned(),
            source,
        }),
    }
}

fn versions(now: DateTime<Utc>) -> String {
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_else(|e| format!("/etc/os-release: {e}\n"));
    let uname = run("uname", &["-a"]).unwrap_or_else(|e| e.to_string());
    format!(
        "bundle created: {}\nfleet-reconciler: {}\nuname: {}\n\n# /etc/os-release\n{os}",
        now.to_rfc3339(),
        env!("CARGO_PKG_VERSION"),
        uname.trim()
    )
}

fn journal(unit: Option<&str>) -> String {
    let Some(unit) = unit else {
        return "logs: not collected (no journal unit asked for)\n".into();
    };
    let lines = JOURNAL_LINES.to_string();
    match run(
        "journalctl",
        &["-u", unit, "-n", &lines, "--no-pager", "-o", "short-iso"],
    ) {
        Ok(text) => text,
        Err(e) => format!(
            "logs: no journal here ({e}).\nWhere the reconciler runs without systemd, attach its stderr.\n"
        ),
    }
}

/// The config text with every secret-looking value redacted: keys naming
/// a token, secret or password (except `*_file`, which are paths), and the
/// user-info part of URLs (`https://user:pass@host`).
pub fn redact_config(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let redacted = match line.split_once('=') {
            Some((key, value)) if !line.trim_start().starts_with('#') => {
                let k = key.trim().to_ascii_lowercase();
                let secretive = ["token", "secret", "password", "passwd", "credential"]
                    .iter()
                    .any(|w| k.contains(w))
                    && !k.ends_with("_file");
                if secretive {
                    format!("{key}= \"{REDACTED}\"")
                } else {
                    format!("{key}={}", redact_userinfo(value))
                }
            }
            _ => line.to_owned(),
        };
        out.push_str(&redacted);
        out.push('\n');
    }
    out
}

/// `scheme://user:pass@host…` → `scheme://<redacted>@host…`.
fn redact_userinfo(value: &str) -> String {
    let Some(start) = value.find("://") else {
        return value.to_owned();
    };
    let rest = &value[start + 3..];
    let end = rest.find(['/', '"', '\'']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}://{REDACTED}{}", &value[..start], &rest[at..]),
        None => value.to_owned(),
    }
}

fn scrub(bytes: Vec<u8>, secrets: &[String]) -> Vec<u8> {
    let Ok(mut text) = String::from_utf8(bytes.clone()) else {
        return bytes;
    };
    for s in secrets {
        if text.contains(s.as_str()) {
            text = text.replace(s.as_str(), REDACTED);
        }
    }
    text.into_bytes()
}

fn state_entries(c: &Config, entries: &mut Vec<(String, Vec<u8>)>) {
    for name in [
        release::applied::FILE_NAME,
        "last_pass.json",
        status_client::NODE_FILE,
    ] {
        let path = c.state_dir.join(name);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| format!("{}: {e}\n", path.display()).into_bytes());
        entries.push((format!("state/{name}"), bytes));
    }

    let outbox = Outbox::new(&c.state_dir, c.outbox_max_reports);
    let mut listing = String::new();
    let pending = outbox.pending().unwrap_or_else(|e| {
        listing.push_str(&format!("reading the outbox: {e}\n"));
        Vec::new()
    });
    listing.push_str(&format!(
        "pending: {}\ndropped: {}\nset aside (rejected): {}\n\n",
        pending.len(),
        outbox
            .dropped()
            .map(|d| d.to_string())
            .unwrap_or_else(|e| e.to_string()),
        outbox.rejected()
    ));
    for dir in [
        c.state_dir.join("outbox"),
        c.state_dir.join("outbox/rejected"),
    ] {
        let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().map(|m| m.len()).unwrap_or(0),
                )
            })
            .collect();
        files.sort();
        listing.push_str(&format!("# {}\n", dir.display()));
        for (name, len) in files {
            listing.push_str(&format!("{len:>10}  {name}\n"));
        }
    }
    entries.push(("outbox/listing.txt".into(), listing.into_bytes()));
    for q in pending.iter().rev().take(NEWEST_REPORTS) {
        if let Ok(bytes) = std::fs::read(&q.path) {
            let name = q
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("{}.json", q.seq));
            entries.push((format!("outbox/newest/{name}"), bytes));
        }
    }

    entries.push((
        "mirror.txt".into(),
        mirror(&c.state_dir.join("mirror.git")).into_bytes(),
    ));
}

fn mirror(path: &Path) -> String {
    let repo = match git2::Repository::open_bare(path) {
        Ok(r) => r,
        Err(e) => return format!("{}: {}\n", path.display(), e.message()),
    };
    let mut out = format!("# {}\n", path.display());
    match repo.head() {
        Ok(h) => out.push_str(&format!(
            "HEAD {} {}\n",
            h.name().unwrap_or("?"),
            h.target().map(|o| o.to_string()).unwrap_or_default()
        )),
        Err(e) => out.push_str(&format!("HEAD: {}\n", e.message())),
    }
    if let Ok(refs) = repo.references() {
        for r in refs.flatten() {
            out.push_str(&format!(
                "{} {}\n",
                r.target().map(|o| o.to_string()).unwrap_or_default(),
                r.name().unwrap_or("?")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_secrets_are_redacted_and_paths_kept() {
        let text = "store = \"acme/soho\"\nrepo_url = \"https://bob:hunter2@git.example.com/fleet.git\"\nedge_token_file = \"/etc/fleet/edge.token\"\ngit_token = \"abc\"\n# token = comment\n";
        let r = redact_config(text);
        assert!(!r.contains("hunter2"), "{r}");
        assert!(!r.contains("\"abc\""), "{r}");
        assert!(r.contains("/etc/fleet/edge.token"), "{r}");
        assert!(
            r.contains("https://<redacted>@git.example.com/fleet.git"),
            "{r}"
        );
        assert!(r.contains("# token = comment"), "{r}");
    }

    #[test]
    fn scrub_removes_secret_contents() {
        let out = scrub(
            b"a sekrit-token-123 b".to_vec(),
            &["sekrit-token-123".into()],
        );
        assert_eq!(out, b"a <redacted> b");
    }
}
