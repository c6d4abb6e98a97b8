//! HTTP client of the edge backend's local API (DESIGN.md §4): read the
//! applied state, and write with preconditions and the audit headers that
//! record the release revision and commit.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use schemas::diff::EntityKind;
use serde_json::{Value, json};

use crate::planner::{Action, AppliedState, Op, Precondition, StateFormatError};

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
    #[error(transparent)]
    Format(#[from] StateFormatError),
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

/// The path of an entity in the edge API.
pub fn entity_path(kind: EntityKind, id: &str) -> String {
    match kind {
        EntityKind::Setting => format!("/settings/{id}"),
        EntityKind::Tax => format!("/menu/taxes/{id}"),
        EntityKind::Category => format!("/menu/categories/{id}"),
        EntityKind::ModifierGroup => format!("/menu/modifier-groups/{id}"),
        EntityKind::Item => format!("/menu/items/{id}"),
        EntityKind::Discount => format!("/menu/discounts/{id}"),
        EntityKind::Role => format!("/roles/{id}"),
        EntityKind::User => format!("/users/{id}"),
        EntityKind::Station => format!("/stations/{id}"),
        EntityKind::Device => format!("/devices/{id}"),
        EntityKind::Routing => "/routing".to_owned(),
    }
}

/// The batch `kind` name of a menu entity kind.
fn batch_kind(kind: EntityKind) -> Option<&'static str> {
    EntityKind::MENU.contains(&kind).then(|| kind.code())
}

impl EdgeClient {
    /// A client for `base_url` with the bearer token from `token_file`.
    pub fn new(base_url: &str, token: String, timeout: Duration) -> EdgeClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a client with timeouts builds");
        EdgeClient {
            base: base_url.trim_end_matches('/').to_owned(),
            token,
            http,
        }
    }

    /// Read the token file and build a client.
    pub fn from_token_file(
        base_url: &str,
        token_file: &Path,
        timeout: Duration,
    ) -> std::io::Result<EdgeClient> {
        let token = crate::config::read_secret(token_file, "edge token")?;
        Ok(EdgeClient::new(base_url, token, timeout))
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
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| EdgeError::Unreachable {
            url: self.base.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| EdgeError::Unreachable {
            url: self.base.clone(),
            message: e.to_string(),
        })?;
        if status == StatusCode::PRECONDITION_FAILED {
            return Err(EdgeError::Conflict {
                what: what.to_owned(),
            });
        }
        if !status.is_success() {
            let json = parse_answer(text);
            let code = json["error"]["code"].as_str().unwrap_or("").to_owned();
            let message = json["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| json.to_string());
            return Err(EdgeError::Refused {
                what: what.to_owned(),
                status: status.as_u16(),
                code,
                message,
            });
        }
        Ok((status, text))
    }

    /// `GET /state`: everything applied, with versions.
    pub async fn state(&self) -> Result<AppliedState, EdgeError> {
        let (_, text) = self
            .call::<Value>(
                Method::GET,
                "/state",
                None,
                &[],
                "reading the applied state",
            )
            .await?;
        Ok(AppliedState::from_edge_json(&parse_answer(text))?)
    }

    /// `GET /healthz`.
    pub async fn healthy(&self) -> bool {
        self.http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    fn audit_headers(writer: &Writer) -> Vec<(&'static str, String)> {
        vec![
            ("X-Fleet-Revision", writer.revision.to_string()),
            ("X-Fleet-Commit", writer.commit.clone()),
        ]
    }

    /// Apply ops in order: consecutive menu ops go in one atomic batch, the
    /// others one request each. Returns how many ops were written.
    pub async fn apply(&self, ops: &[Op], writer: &Writer) -> Result<usize, EdgeError> {
        let mut i = 0;
        while i < ops.len() {
            if batch_kind(ops[i].kind).is_some() {
                let end = ops[i..]
                    .iter()
                    .position(|o| batch_kind(o.kind).is_none())
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
            "/menu/batch",
            Some(&BatchRequest::new(ops)),
            &Self::audit_headers(writer),
            &what,
        )
        .await?;
        Ok(())
    }

    async fn single(&self, op: &Op, writer: &Writer) -> Result<(), EdgeError> {
        let mut headers = Self::audit_headers(writer);
        match op.precondition {
            Precondition::Absent => headers.push(("If-None-Match", "*".to_owned())),
            Precondition::Version(v) => headers.push(("If-Match", v.to_string())),
        }
        let path = entity_path(op.kind, &op.id);
        let what = format!("{} `{}`", op.kind, op.id);
        match &op.action {
            Action::Upsert { body } => {
                let body = if op.kind == EntityKind::Setting {
                    json!({"value": body})
                } else {
                    body.clone()
                };
                self.call(Method::PUT, &path, Some(&body), &headers, &what)
                    .await?;
            }
            Action::Delete => {
                self.call::<Value>(Method::DELETE, &path, None, &headers, &what)
                    .await?;
            }
        }
        Ok(())
    }
}

/// An answer's body as JSON; text that is not JSON as a JSON string.
fn parse_answer(text: String) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// `POST /menu/batch`, serialized from the ops without copying their bodies.
/// Fields are in the order a `serde_json::Value` object would print them
/// (sorted), so the request is the same bytes as when it was built as one.
#[derive(Debug, serde::Serialize)]
struct BatchRequest<'a> {
    ops: Vec<BatchOp<'a>>,
}

#[derive(Debug, serde::Serialize)]
struct BatchOp<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a Value>,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    if_match: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    if_none_match: Option<&'static str>,
    kind: Option<&'static str>,
    op: &'static str,
}

impl<'a> BatchRequest<'a> {
    fn new(ops: &'a [Op]) -> Self {
        let ops = ops
            .iter()
            .map(|op| {
                let (name, body) = match &op.action {
                    Action::Upsert { body } => ("upsert", Some(body)),
                    Action::Delete => ("delete", None),
                };
                let (if_match, if_none_match) = match op.precondition {
                    Precondition::Absent => (None, Some("*")),
                    Precondition::Version(v) => (Some(v), None),
                };
                BatchOp {
                    body,
                    id: &op.id,
                    if_match,
                    if_none_match,
                    kind: batch_kind(op.kind),
                    op: name,
                }
            })
            .collect();
        BatchRequest { ops }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch request was once built as a `Value`, each body cloned into
    /// it; the borrowed form must send the same bytes.
    #[test]
    fn batch_request_is_the_same_bytes_as_the_value_it_replaced() {
        let ops = vec![
            Op {
                kind: EntityKind::Item,
                id: "burger".into(),
                action: Action::Upsert {
                    body: json!({"name": "Burger", "category": "mains", "variations": [{"id": "burger-r", "price": 900}]}),
                },
                precondition: Precondition::Absent,
            },
            Op {
                kind: EntityKind::Tax,
                id: "vat".into(),
                action: Action::Upsert {
                    body: json!({"name": "VAT", "rate": "20"}),
                },
                precondition: Precondition::Version(7),
            },
            Op {
                kind: EntityKind::Category,
                id: "old".into(),
                action: Action::Delete,
                precondition: Precondition::Version(3),
            },
        ];
        let list: Vec<Value> = ops
            .iter()
            .map(|op| {
                let mut o = json!({"kind": batch_kind(op.kind), "id": op.id});
                match &op.action {
                    Action::Upsert { body } => {
                        o["op"] = json!("upsert");
                        o["body"] = body.clone();
                    }
                    Action::Delete => o["op"] = json!("delete"),
                }
                match op.precondition {
                    Precondition::Absent => o["if_none_match"] = json!("*"),
                    Precondition::Version(v) => o["if_match"] = json!(v),
                }
                o
            })
            .collect();
        let before = serde_json::to_vec(&json!({"ops": list})).expect("serializes");
        let now = serde_json::to_vec(&BatchRequest::new(&ops)).expect("serializes");
        assert_eq!(
            String::from_utf8(now).expect("utf-8"),
            String::from_utf8(before).expect("utf-8")
        );
    }
}
