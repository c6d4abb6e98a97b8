//! The reconciler's configuration file (DESIGN.md §5), TOML:
//!
//! ```toml
//! store = "acme/soho"
//! repo_url = "https://git.example.com/acme/fleet.git"
//! branch = "main"
//! trust_dir = "/etc/fleet/trust"
//! edge_url = "http://127.0.0.1:7070"
//! edge_token_file = "/etc/fleet/edge.token"
//! status_url = "https://status.example.com"
//! state_dir = "/var/lib/fleet"
//! interval_secs = 60
//! # optional:
//! outbox_max_reports = 1000   # reports kept while the status service is unreachable
//! long_poll = true            # ask the status service for newer revisions between passes
//! source = "git"              # or "status": read the release from the status service's relay
//! ```
//!
//! Secrets are never in this file: the edge token is read from
//! `edge_token_file`, and Git credentials from `git_token_file` or
//! `git_ssh_key_file` when the repo needs them. Every problem is reported
//! with the field it concerns.

use std::path::{Path, PathBuf};

use schemas::StoreId;
use serde::Deserialize;

/// Default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/fleet/reconciler.toml";

/// The configuration, as validated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `<tenant>/<store>`; a bad one is refused when the file is decoded,
    /// with its line and column.
    pub store: StoreId,
    /// The fleet repo: `https://…`, `ssh://…`/`git@…`, `git://…`, or a
    /// local path. Needed with `source = "git"`; with `source = "status"`
    /// it is the fallback when the relay fails.
    #[serde(default)]
    pub repo_url: Option<String>,
    /// Where the release comes from (DESIGN.md §13).
    #[serde(default)]
    pub source: Source,
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Directory of trusted minisign public keys (`*.pub`).
    pub trust_dir: PathBuf,
    /// The edge backend, e.g. `http://127.0.0.1:7070`.
    pub edge_url: String,
    pub edge_token_file: PathBuf,
    /// With an `https://` `edge_url`: a PEM file of the certificate (or its
    /// CA) that `fleet-edge --tls-cert` serves, trusted besides the
    /// system's roots.
    #[serde(default)]
    pub edge_ca_file: Option<PathBuf>,
    /// The status service; reports queue in the outbox without it.
    #[serde(default)]
    pub status_url: Option<String>,
    /// Mirror, last applied record, node key and outbox live here.
    pub state_dir: PathBuf,
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// HTTPS: a file holding a token for the Git host (sent as the password).
    #[serde(default)]
    pub git_token_file: Option<PathBuf>,
    /// SSH: a deploy key for the Git host.
    #[serde(default)]
    pub git_ssh_key_file: Option<PathBuf>,
    /// Give up a fetch after this long.
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout_secs: u64,
    /// Most reports kept while the status service is unreachable; beyond
    /// it the oldest are dropped and the loss is reported.
    #[serde(default = "default_outbox_max")]
    pub outbox_max_reports: usize,
    /// Ask the status service (long-poll) for a newer revision between
    /// passes, so a signed change applies in seconds. Needs `status_url`
    /// and an enrolled node; on by default.
    #[serde(default = "default_true")]
    pub long_poll: bool,
}

/// Where a store reads its release from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Fetch the fleet repo from `repo_url`.
    #[default]
    Git,
    /// The status service's release relay (`GET /api/v1/release`).
    Status,
}

fn default_outbox_max() -> usize {
    crate::outbox::DEFAULT_BOUND
}

fn default_true() -> bool {
    true
}

fn default_branch() -> String {
    "main".to_owned()
}

fn default_interval() -> u64 {
    60
}

fn default_fetch_timeout() -> u64 {
    60
}

/// Why the configuration is unusable (the reconciler exits 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{field}` {problem}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
}

impl Config {
    /// Read and check the configuration at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and check configuration text (`path` is for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field, problem: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            field,
            problem,
        };
        match (&self.repo_url, self.source) {
            (Some(url), _) if url.trim().is_empty() => {
                return Err(invalid("repo_url", "is empty".into()));
            }
            (None, Source::Git) => {
                return Err(invalid(
                    "repo_url",
                    "is missing: source = \"git\" (the default) fetches the fleet repo from it; set it, or read releases from the status service with source = \"status\" and status_url".into(),
                ));
            }
            _ => {}
        }
        if self.source == Source::Status && self.status_url.is_none() {
            return Err(invalid(
                "status_url",
                "is missing: source = \"status\" reads the release from the status service's relay"
                    .into(),
            ));
        }
        if self.branch.is_empty()
            || self.branch.contains("..")
            || self.branch.starts_with('-')
            || self.branch.contains(char::is_whitespace)
        {
            return Err(invalid(
                "branch",
                format!("{:?} is not a branch name", self.branch),
            ));
        }
        for (field, url) in [
            ("edge_url", Some(&self.edge_url)),
            ("status_url", self.status_url.as_ref()),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(invalid(
                    field,
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
        }
        if self.interval_secs == 0 || self.interval_secs > 86_400 {
            return Err(invalid(
                "interval_secs",
                format!("is {}; use 1 to 86400", self.interval_secs),
            ));
        }
        if self.fetch_timeout_secs == 0 {
            return Err(invalid("fetch_timeout_secs", "must be above 0".into()));
        }
        if self.outbox_max_reports == 0 {
            return Err(invalid("outbox_max_reports", "must be above 0".into()));
        }
        if self.git_token_file.is_some() && self.git_ssh_key_file.is_some() {
            return Err(invalid(
                "git_token_file",
                "and git_ssh_key_file are both set; use one".into(),
            ));
        }
        Ok(())
    }

    /// The tenant part of `store`.
    pub fn tenant(&self) -> &str {
        self.store.tenant()
    }

    /// The store part of `store`.
    pub fn store_id(&self) -> &str {
        self.store.store()
    }

    /// Repo-relative directory of this store's release.
    pub fn release_dir(&self) -> String {
        self.store.release_dir()
    }
}

/// Read a secret file (a token), trimmed. Its content is never logged.
pub fn read_secret(path: &Path, what: &str) -> Result<String, std::io::Error> {
    let text = std::fs::read_to_string(path)?;
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the {what} file {} is empty", path.display()),
        ));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
store = "acme/soho"
repo_url = "git://127.0.0.1/fleet.git"
trust_dir = "/etc/fleet/trust"
edge_url = "http://127.0.0.1:7070"
edge_token_file = "/etc/fleet/edge.token"
state_dir = "/var/lib/fleet"
"#;

    #[test]
    fn good_config_with_defaults() {
        let c = Config::parse(GOOD, Path::new("r.toml")).expect("valid");
        assert_eq!(
            (c.branch.as_str(), c.interval_secs, c.fetch_timeout_secs),
            ("main", 60, 60)
        );
        assert_eq!(c.release_dir(), "tenants/acme/stores/soho");
        assert_eq!(c.status_url, None);
    }

    #[test]
    fn a_store_on_the_relay_needs_no_repo_url() {
        let text = GOOD.replace("repo_url = \"git://127.0.0.1/fleet.git\"\n", "")
            + "source = \"status\"\nstatus_url = \"https://status.example.com\"\n";
        let c = Config::parse(&text, Path::new("r.toml")).expect("valid");
        assert_eq!((c.source, c.repo_url), (Source::Status, None));
        assert_eq!(
            Config::parse(GOOD, Path::new("r.toml"))
                .expect("valid")
                .source,
            Source::Git
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        let cases = [
            // Refused while decoding: the TOML error quotes the line
            // (`store = "soho"`) with its line and column.
            (GOOD.replace("acme/soho", "soho"), "store = \"soho\""),
            (
                GOOD.replace("http://127.0.0.1:7070", "127.0.0.1:7070"),
                "`edge_url`",
            ),
            (format!("{GOOD}interval_secs = 0\n"), "`interval_secs`"),
            (
                format!("{GOOD}outbox_max_reports = 0\n"),
                "`outbox_max_reports`",
            ),
            (format!("{GOOD}branch = \"a..b\"\n"), "`branch`"),
            (format!("{GOOD}colour = \"blue\"\n"), "colour"),
            (
                GOOD.replace("state_dir = \"/var/lib/fleet\"\n", ""),
                "state_dir",
            ),
            ("store = [".to_owned(), "r.toml"),
            (
                GOOD.replace("repo_url = \"git://127.0.0.1/fleet.git\"\n", ""),
                "`repo_url` is missing",
            ),
            (
                format!("{GOOD}source = \"status\"\n"),
                "`status_url` is missing",
            ),
            (
                format!("{GOOD}source = \"relay\"\n"),
                "unknown variant `relay`",
            ),
        ];
        for (text, needle) in cases {
            let err = Config::parse(&text, Path::new("r.toml")).expect_err("invalid");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }
}
