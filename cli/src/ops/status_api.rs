//! The few status service calls the operator CLI makes (`fleet secret
//! recipients`, `fleet sign --status-url`): blocking GETs with an operator
//! token.

use std::path::Path;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// An operator's handle on one status service.
pub struct StatusApi {
    base: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for StatusApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("StatusApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl StatusApi {
    /// A client of the status service at `url` (its base, such as
    /// `https://status.example.com`) sending `token`.
    pub fn new(url: &str, token: &str) -> anyhow::Result<StatusApi> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the HTTP client")?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("making the HTTP client")?;
        Ok(StatusApi {
            base: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
            runtime,
        })
    }

    /// `GET {base}{path}`: the status code and the JSON body (null when the
    /// body is not JSON). A refused token (401) is an error naming it.
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let (status, body) = self.runtime.block_on(async {
            let r = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            Ok::<_, anyhow::Error>((status, body))
        })?;
        if status == 401 {
            bail!(
                "the status service refused the operator token (401): {}",
                body["error"]["message"].as_str().unwrap_or("")
            );
        }
        Ok((status, body))
    }
}

/// The operator token in `file` (its last word, so a `name: token` line
/// works too).
pub fn read_token_file(file: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match text.split_whitespace().last() {
        Some(token) => Ok(token.to_owned()),
        None => bail!("{} is empty", file.display()),
    }
}
