//! HTTP client of the edge backend's local API (DESIGN.md §4): read the
//! applied state, and write with preconditions and the audit headers that
//! record the release revision and commit.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use schemas::diff::EntityKind;
use serde_json::Value;
use wire::edge::{
    self, Action, BatchRequest, ErrorBody, OverrideRequest, SettingPut, StateBody, header, path,
};

use crate::planner::{AppliedState, Op, StateFormatError};

/// Why a call to the edge failed.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("cannot reach the edge backend at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// Someone wrote meanwhile: re-read and re-plan.
    #[error("{what}: the edge's version moved on (412); someone edited it meanwhile")]
    Conflict { what: String },
    #[error("{what}: the edge refused it ({status} {code}): {message}")]
    Refused {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The backend implements an edge contract this reconciler does not
    /// know (or does not say which).
    #[error("the edge backend at {url} cannot be driven: {why}")]
    Contract { url: String, why: String },
    #[error(transparent)]
    Format(#[from] StateFormatError),
    /// An override write for a kind that has none (a bug of the caller).
    #[error("{what}: this kind has no local override")]
    NoOverride { what: String },
    /// A plan op the client cannot send (a bug of the caller).
    #[error(transparent)]
    NotBatchable(#[from] edge::NotBatchable),
}

impl EdgeError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, EdgeError::Conflict { .. })
    }
}

/// Who is writing: the reconciler, applying a revision from a commit.
#[derive(Debug, Clone)]
pub struct Writer {
    pub revision: u64,
    pub commit: String,
}

/// The edge backend's API.
#[derive(Debug, Clone)]
pub struct EdgeClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// Why an edge client could not be built (setup: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum EdgeClientError {
    #[error("reading the edge token file {path}: {source}")]
    Token {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("reading the edge CA file {path}: {source}")]
    CaRead {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the edge CA file {path} is not PEM: {message}")]
    CaNotPem {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("the edge CA file {path} holds no certificate")]
    CaEmpty { path: std::path::PathBuf },
    #[error("cannot build the edge client: {0}")]
    Build(#[source] reqwest::Error),
}

/// Which credential a request carries. The reconciler always sends its
/// token; the conformance kit also asks without one and with a wrong one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    Token,
    None,
    Wrong,
}

impl EdgeClient {
    /// A client for `base_url` with the bearer token `token`, trusting the
    /// system's certificates.
    pub fn new(base_url: &str, token: String, timeout: Duration) -> EdgeClient {
        EdgeClient::build(base_url, token, timeout, Vec::new())
            .expect("a client without an extra CA builds")
    }

    fn build(
        base_url: &str,
        token: String,
        timeout: Duration,
        roots: Vec<reqwest::Certificate>,
    ) -> Result<EdgeClient, EdgeClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5));
        for c in roots {
            builder = builder.add_root_certificate(c);
        }
        Ok(EdgeClient {
            base: base_url.trim_end_matches('/').to_owned(),
            token,
            http: builder.build().map_err(EdgeClientError::Build)?,
        })
    }

    /// Read the token file, and the CA file if any (PEM certificates to
    /// trust besides the system's: the edge's own certificate or its CA,
    /// for `fleet-edge --tls-cert`), and build a client.
    pub fn from_token_file(
        base_url: &str,
        token_file: &Path,
        timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<EdgeClient, EdgeClientError> {
        let token = crate::config::read_secret(token_file, "edge token").map_err(|source| {
            EdgeClientError::Token {
                path: token_file.to_path_buf(),
                source,
            }
        })?;
        let mut roots = Vec::new();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|source| EdgeClientError::CaRead {
                path: path.to_path_buf(),
                source,
            })?;
            roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                EdgeClientError::CaNotPem {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                }
            })?;
            if roots.is_empty() {
                return Err(EdgeClientError::CaEmpty {
                    path: path.to_path_buf(),
                });
            }
        }
        EdgeClient::build(base_url, token, timeout, roots)
    }

    /// The base URL requests go to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request as it is sent, with the credential `bearer` and `json`
    /// as its body: the status and the body as text, whatever the status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        json: Option<Vec<u8>>,
        bearer: Bearer,
    ) -> Result<(StatusCode, String), reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        match bearer {
            Bearer::Token => req = req.bearer_auth(&self.token),
            Bearer::Wrong => req = req.bearer_auth(format!("not-{}", self.token)),
            Bearer::None => {}
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = json {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        Ok((status, resp.text().await?))
    }

    /// One request; the answer's body as text when it is a success. Callers
    /// that need the body parse it: the answer to a 5,000-item batch is 2 MB
    /// of JSON that nobody reads.
    async fn call<B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        headers: &[(&str, String)],
        what: &str,
    ) -> Result<(StatusCode, String), EdgeError> {
        // Our own request types: nothing in them can fail to serialize.
        let body = body.map(|b| serde_json::to_vec(b).expect("a request body serializes"));
        let (status, text) = self
            .send(method, path, headers, body, Bearer::Token)
            .await
            .map_err(|e| EdgeError::Unreachable {
                url: self.base.clone(),
                message: e.to_string(),
            })?;
        if status == StatusCode::PRECONDITION_FAILED {
            return Err(EdgeError::Conflict {
                what: what.to_owned(),
            });
        }
        if !status.is_success() {
            // Anything but the API's error body (a proxy's page, say) is
            // shown as it came.
            let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) => (body.error.code, body.error.message),
                Err(_) => (String::new(), text),
            };
            return Err(EdgeError::Refused {
                what: what.to_owned(),
                status: status.as_u16(),
                code,
                message,
            });
        }
        Ok((status, text))
    }

    /// `GET path`: the body of a success answer.
    async fn get(&self, path: &str, what: &str) -> Result<String, EdgeError> {
        let (_, text) = self
            .call::<Value>(Method::GET, path, None, &[], what)
            .await?;
        Ok(text)
    }

    /// `GET /state`: everything applied, with versions.
    pub async fn state(&self) -> Result<AppliedState, EdgeError> {
        let text = self.get(path::STATE, "reading the applied state").await?;
        let body: StateBody = serde_json::from_str(&text).map_err(|e| StateFormatError {
            at: format!("line {} column {}", e.line(), e.column()),
            message: e.to_string(),
        })?;
        Ok(AppliedState::from_state(body)?)
    }

    /// `GET /healthz`: the edge contract version the backend implements,
    /// if this reconciler knows it (DESIGN.md §14).
    pub async fn contract(&self) -> Result<u32, EdgeError> {
        let text = self
            .get(
                path::HEALTHZ,
                "asking the edge backend which contract it implements",
            )
            .await?;
        edge::contract_of(&text).map_err(|why| EdgeError::Contract {
            url: self.base.clone(),
            why,
        })
    }

    fn audit_headers(writer: &Writer) -> Vec<(&'static str, String)> {
        vec![
            (header::REVISION, writer.revision.to_string()),
            (header::COMMIT, writer.commit.clone()),
        ]
    }

    /// Apply ops in order: consecutive menu ops go in one atomic batch, the
    /// others one request each. Returns how many ops were written.
    pub async fn apply(&self, ops: &[Op], writer: &Writer) -> Result<usize, EdgeError> {
        let mut i = 0;
        while i < ops.len() {
            if ops[i].batchable() {
                let end = ops[i..]
                    .iter()
                    .position(|o| !o.batchable())
                    .map(|n| i + n)
                    .unwrap_or(ops.len());
                self.batch(&ops[i..end], writer).await?;
                i = end;
            } else {
                self.single(&ops[i], writer).await?;
                i += 1;
            }
        }
        Ok(ops.len())
    }

    async fn batch(&self, ops: &[Op], writer: &Writer) -> Result<(), EdgeError> {
        let what = format!("menu batch of {} op(s)", ops.len());
        self.call(
            Method::POST,
            path::MENU_BATCH,
            Some(&BatchRequest::borrowing(ops)?),
            &Self::audit_headers(writer),
            &what,
        )
        .await?;
        Ok(())
    }

    async fn single(&self, op: &Op, writer: &Writer) -> Result<(), EdgeError> {
        let mut headers = Self::audit_headers(writer);
        headers.extend(op.precondition.header());
        let path = edge::entity_path(op.kind, &op.id);
        let what = format!("{} `{}`", op.kind, op.id);
        match &op.action {
            Action::Upsert(body) if op.kind == EntityKind::Setting => {
                let body = SettingPut {
                    value: body.clone(),
                };
                self.call(Method::PUT, &path, Some(&body), &headers, &what)
                    .await?;
            }
            Action::Upsert(body) => {
                self.call(Method::PUT, &path, Some(body), &headers, &what)
                    .await?;
            }
            Action::Delete => {
                self.call::<Value>(Method::DELETE, &path, None, &headers, &what)
                    .await?;
            }
            Action::SetOverride(local_override) => {
                let path = edge::override_path(op.kind, &op.id)
                    .ok_or_else(|| EdgeError::NoOverride { what: what.clone() })?;
                let body = OverrideRequest {
                    local_override: *local_override,
                };
                self.call(Method::POST, &path, Some(&body), &headers, &what)
                    .await?;
            }
        }
        Ok(())
    }
}
