//! The OpenAPI document is the contract, and the server holds requests to
//! it (issue #21 item 2): before a handler runs, every header and query
//! parameter the document names and every JSON body are checked against
//! the document's own schemas (`jsonschema`), so a request the document
//! calls invalid is refused, whatever the handler would have made of it (a
//! JSON array where an object is described, a `limit` above its maximum, an
//! `If-Match` that is no version).
//!
//! - A parameter that breaks its schema: 400 `bad_request`, `field` the
//!   parameter's name.
//! - A body that is not JSON, or names a key twice: 400 `bad_request`.
//! - A body that breaks its schema: 422 `invalid`, `field` the path of the
//!   offending value (`lines[0].quantity`), as the handlers name fields.
//! - A body over [`super::MAX_BODY_BYTES`]: 413 `too_large`, in the error
//!   body like every other refusal.
//!
//! [`state_constraints`] writes into the document the constraints the
//! handlers enforce on headers and queries, and the 400/413 answers, so
//! that the document states them and this check enforces them.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::AppError;

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    Header,
    Query,
}

#[derive(Debug)]
struct Param {
    name: String,
    location: In,
    required: bool,
    /// Whether a value is read as a number (`type` integer or number).
    numeric: bool,
    schema: jsonschema::Validator,
    /// What the schema allows, for a message.
    hint: String,
}

#[derive(Debug, Default)]
struct Operation {
    params: Vec<Param>,
    body: Option<jsonschema::Validator>,
    body_required: bool,
}

/// Every operation's checks, by method and route (`/menu/items/{id}`).
#[derive(Debug, Default)]
pub struct Contract {
    ops: HashMap<(Method, String), Operation>,
}

/// Why the document's schemas could not be compiled (a bug: the document
/// is generated from this code).
#[derive(Debug, thiserror::Error)]
#[error("the OpenAPI schema of {at} does not compile: {message}")]
pub struct CompileError {
    at: String,
    message: String,
}

impl Contract {
    /// The checks of every operation of `doc` (the served document).
    pub fn from_document(doc: &Value) -> Result<Contract, CompileError> {
        let components = doc.get("components").cloned().unwrap_or_else(|| json!({}));
        let compile = |schema: &Value, at: &str| {
            // `#/components/schemas/X` resolves against this root.
            let mut root = schema.as_object().cloned().unwrap_or_default();
            root.insert("components".to_owned(), components.clone());
            jsonschema::draft202012::new(&Value::Object(root)).map_err(|e| CompileError {
                at: at.to_owned(),
                message: e.to_string(),
            })
        };
        let mut out = Contract::default();
        let paths = doc.get("paths").and_then(Value::as_object);
        for (route, ops) in paths.into_iter().flatten() {
            for (method, op) in ops.as_object().into_iter().flatten() {
                let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                    continue;
                };
                let at = format!("{method} {route}");
                let mut checks = Operation::default();
                for p in op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let location = match p.get("in").and_then(Value::as_str) {
                        Some("header") => In::Header,
                        Some("query") => In::Query,
                        _ => continue,
                    };
                    let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                    let schema = p.get("schema").cloned().unwrap_or_else(|| json!({}));
                    let types = schema.get("type").cloned().unwrap_or(Value::Null);
                    let numeric = ["integer", "number"].iter().any(|t| {
                        types == json!(t) || types.as_array().is_some_and(|a| a.contains(&json!(t)))
                    });
                    let hint = schema
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| {
                            let mut s = schema.clone();
                            if let Some(o) = s.as_object_mut() {
                                o.remove("format");
                            }
                            format!("it must match {s}")
                        });
                    checks.params.push(Param {
                        hint,
                        name: name.to_owned(),
                        location,
                        required: p.get("required") == Some(&Value::Bool(true)),
                        numeric,
                        schema: compile(&schema, &format!("{at} parameter {name}"))?,
                    });
                }
                if let Some(body) = op.get("requestBody") {
                    if let Some(schema) = body.pointer("/content/application~1json/schema") {
                        checks.body = Some(compile(schema, &format!("{at} body"))?);
                    }
                    checks.body_required = body.get("required") == Some(&Value::Bool(true));
                }
                out.ops.insert((method, route.clone()), checks);
            }
        }
        Ok(out)
    }

    /// The parameter refusal of a request, if any.
    fn check_params(&self, op: &Operation, req: &Request) -> Result<(), AppError> {
        let query: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| {
                axum::extract::Query::<Vec<(String, String)>>::try_from_uri(req.uri())
                    .map(|axum::extract::Query(v)| v)
                    .map_err(|e| {
                        AppError::bad_request(format!("the query {q:?} does not parse: {e}"))
                    })
            })
            .transpose()?
            .unwrap_or_default();
        for p in &op.params {
            let raw: Option<String> = match p.location {
                In::Header => match req.headers().get(&p.name) {
                    None => None,
                    Some(v) => Some(
                        v.to_str()
                            .map_err(|_| {
                                AppError::bad_request(format!("{} is not visible ASCII", p.name))
                                    .with_field(&p.name)
                            })?
                            .trim()
                            .to_owned(),
                    ),
                },
                In::Query => query
                    .iter()
                    .find(|(k, _)| *k == p.name)
                    .map(|(_, v)| v.clone()),
            };
            let Some(raw) = raw else {
                if p.required {
                    return Err(AppError::bad_request(format!(
                        "{} is required: {}",
                        p.name, p.hint
                    ))
                    .with_field(&p.name));
                }
                continue;
            };
            let value = if p.numeric {
                raw.parse::<u64>()
                    .map(Value::from)
                    .or_else(|_| raw.parse::<i64>().map(Value::from))
                    .unwrap_or(Value::String(raw.clone()))
            } else {
                Value::String(raw.clone())
            };
            if !p.schema.is_valid(&value) {
                return Err(AppError::bad_request(format!(
                    "{} {raw:?} is not allowed: {}",
                    p.name, p.hint
                ))
                .with_field(&p.name));
            }
        }
        Ok(())
    }
}

/// `field` for a JSON pointer into a body, as the handlers name fields:
/// `/lines/0/quantity` → `lines[0].quantity`.
pub fn field_of_pointer(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

/// The checks of the served document, made once.
static CONTRACT: std::sync::LazyLock<Contract> = std::sync::LazyLock::new(|| {
    Contract::from_document(&super::openapi_document())
        .expect("the served OpenAPI document's schemas compile (a unit test checks it)")
});

/// Compile the checks now (at startup) rather than at the first request.
pub fn prepare() {
    std::sync::LazyLock::force(&CONTRACT);
}

/// The middleware: hold the request to the document, then run the route.
pub async fn check(req: Request, next: Next) -> Response {
    let contract = &*CONTRACT;
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let Some(op) = route.and_then(|r| contract.ops.get(&(req.method().clone(), r))) else {
        return next.run(req).await;
    };
    if let Err(e) = contract.check_params(op, &req) {
        return e.into_response();
    }
    let Some(schema) = &op.body else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, super::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    if bytes.is_empty() {
        if op.body_required {
            return AppError::bad_request("the request needs a JSON body").into_response();
        }
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    let value = match wire::json::parse_strict(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return AppError::bad_request(format!("the body is not valid JSON: {e}"))
                .into_response();
        }
    };
    if let Some(e) = schema.iter_errors(&value).next() {
        let mut field = field_of_pointer(&e.instance_path().to_string());
        // The property at fault, where the error is about one.
        let property = match e.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                unexpected.first().cloned()
            }
            jsonschema::error::ValidationErrorKind::Required { property } => {
                property.as_str().map(str::to_owned)
            }
            _ => None,
        };
        if let Some(p) = property {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(&p);
        }
        let message = format!(
            "{}{}",
            if field.is_empty() {
                String::new()
            } else {
                format!("{field}: ")
            },
            clip(&e.to_string())
        );
        return AppError::client(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            .with_field(field)
            .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// A 413 in the error body.
pub fn too_large() -> Response {
    AppError::client(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the body is larger than {} MiB",
            super::MAX_BODY_BYTES / (1024 * 1024)
        ),
    )
    .into_response()
}

/// At most 300 characters of a validator's message (it may quote the
/// offending value).
fn clip(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// The schema of each header the handlers read, as they enforce it.
fn header_schema(name: &str) -> Option<Value> {
    Some(match name {
        "If-Match" => json!({"type": "string", "pattern": "^(\\*|(W/)?\"?[0-9]{1,19}\"?)$",
            "description": "An entity version (`12`, `\"12\"`, `W/\"12\"`) or `*`. With If-None-Match as well: 412 (both cannot hold)."}),
        "If-None-Match" => json!({"type": "string", "enum": ["*"],
            "description": "`*`: create only; 412 when the entity exists."}),
        "X-Fleet-Actor" => json!({"type": "string", "pattern": "^local:[A-Za-z0-9._@-]{1,64}$",
            "description": "`local:<user>`: a person's write at the store (admin token only)."}),
        "X-Fleet-Revision" => json!({"type": "integer", "minimum": 0, "maximum": u64::MAX,
            "description": "The release revision the reconciler applies; sent with X-Fleet-Commit (admin token only)."}),
        "X-Fleet-Session" => json!({"type": "string", "pattern": "^fss_[0-9a-f]{64}$",
            "description": "A staff session from POST /sessions, sent with the bearer token that made it."}),
        "X-Fleet-Commit" => json!({"type": "string", "minLength": 1, "maxLength": 200,
            "description": "The source commit of that release; sent with X-Fleet-Revision (admin token only)."}),
        _ => return None,
    })
}

/// The schema of each query parameter the handlers read.
fn query_schema(name: &str) -> Option<Value> {
    Some(match name {
        "limit" => json!({"type": "integer", "minimum": 1, "maximum": crate::audit::MAX_PAGE,
            "description": "At most this many (default 500)."}),
        "after" => json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}),
        "domain" => json!({"type": "string", "enum": ["settings", "menu", "access", "kitchen"]}),
        _ => return None,
    })
}

/// The entity components whose `PUT` bodies are the entity as `GET`
/// answers it: `version` and `local_override` may come back, and are
/// ignored (the version travels in `If-Match`, the override has its own
/// route).
const WRITABLE: [&str; 10] = [
    "Tax",
    "Category",
    "ModifierGroup",
    "Item",
    "Discount",
    "Role",
    "User",
    "Station",
    "Device",
    "Routing",
];

/// `<Name>Write` for each of [`WRITABLE`], and the `PUT` bodies pointed at
/// them.
fn write_bodies(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for name in WRITABLE {
        let Some(mut s) = schemas.get(name).cloned() else {
            continue;
        };
        if let Some(Value::Object(props)) = s.get_mut("properties") {
            for f in ["version", "local_override"] {
                props.insert(
                    f.to_owned(),
                    json!({"description": "Answered by GET; accepted back in a PUT body and ignored."}),
                );
            }
        }
        schemas.insert(format!("{name}Write"), s);
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for ops in paths.values_mut() {
        let Some(schema) = ops.pointer_mut("/put/requestBody/content/application~1json/schema")
        else {
            continue;
        };
        let target = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .filter(|n| WRITABLE.contains(n))
            .map(|n| format!("#/components/schemas/{n}Write"));
        if let Some(target) = target {
            *schema = json!({"$ref": target});
        }
    }
}

/// Write into `doc` what the handlers enforce and the document did not
/// say: header and query formats and bounds, `PUT` bodies as `GET`
/// answers them, and the 400 and 413 answers.
pub fn state_constraints(doc: &mut Value) {
    write_bodies(doc);
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for ops in paths.values_mut() {
        for op in ops.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let mut has_input = op.contains_key("requestBody");
            for p in op
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let name = p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let schema = match p.get("in").and_then(Value::as_str) {
                    Some("header") => {
                        has_input = true;
                        header_schema(&name)
                    }
                    Some("query") => {
                        has_input = true;
                        query_schema(&name)
                    }
                    _ => None,
                };
                if let (Some(schema), Some(p)) = (schema, p.as_object_mut()) {
                    p.insert("schema".to_owned(), schema);
                    if name == "If-Match" {
                        // Missing, the handlers answer 428 (documented), not 400.
                        p.insert("required".to_owned(), Value::Bool(false));
                    }
                }
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            let Some(responses) = responses else { continue };
            if has_input && !responses.contains_key("400") {
                responses.insert(
                    "400".to_owned(),
                    json!({"description": "A header or query parameter breaks its schema, or the body is not JSON or names a key twice.", "content": error}),
                );
            }
            if op.contains_key("requestBody") {
                let responses = op
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                    .expect("responses were just made an object");
                responses.insert(
                    "413".to_owned(),
                    json!({"description": "The body is larger than 64 MiB.", "content": error}),
                );
                responses.entry("422").or_insert_with(
                    || json!({"description": "The body breaks its schema.", "content": error}),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_fields() {
        assert_eq!(field_of_pointer(""), "");
        assert_eq!(field_of_pointer("/lines/0/quantity"), "lines[0].quantity");
        assert_eq!(
            field_of_pointer("/ops/3/body/variations/1/price"),
            "ops[3].body.variations[1].price"
        );
        assert_eq!(field_of_pointer("/a~1b/c~0d"), "a/b.c~d");
    }

    #[test]
    fn the_document_compiles_and_states_what_the_handlers_enforce() {
        let doc = super::super::openapi_document();
        let contract = Contract::from_document(&doc).expect("compiles");
        let put = contract
            .ops
            .get(&(Method::PUT, "/menu/items/{id}".to_owned()))
            .expect("PUT /menu/items/{id}");
        assert!(put.body.is_some());
        let if_match = put
            .params
            .iter()
            .find(|p| p.name == "If-Match")
            .expect("If-Match");
        for ok in ["12", "\"12\"", "W/\"12\"", "*"] {
            assert!(if_match.schema.is_valid(&json!(ok)), "{ok}");
        }
        for bad in ["", "twelve", "-1", "12345678901234567890123"] {
            assert!(!if_match.schema.is_valid(&json!(bad)), "{bad}");
        }
        let delete = doc.pointer("/paths/~1menu~1items~1{id}/delete/responses/400");
        assert!(delete.is_some(), "DELETE states its 400");
        let orders = doc.pointer("/paths/~1orders/post/responses/413");
        assert!(orders.is_some(), "POST /orders states its 413");
    }
}
