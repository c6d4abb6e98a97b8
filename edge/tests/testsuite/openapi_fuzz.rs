//! A schema-driven fuzzer against the real `fleet-edge` (issue #21 item 2):
//! requests generated from the server's own `/openapi.json`, valid and
//! invalid, and the answers held to the document.
//!
//! For every operation, with the admin token:
//! - **valid** requests: each header and query parameter and the body
//!   generated from its schema (checked valid by the `jsonschema` crate,
//!   an implementation of JSON Schema independent of the server's code);
//! - **invalid** requests: one of them mutated so that the document refuses
//!   it (a JSON array where an object is described, an unknown or missing
//!   property, a number out of bounds, a string where a number is, a header
//!   that breaks its pattern), again checked by `jsonschema`.
//!
//! What counts as a disagreement:
//! - any status the operation does not document, and any 5xx;
//! - an error answer that is not the error body `{"error": {"code",
//!   "message"}}` in JSON;
//! - an invalid request answered with anything but 400 or 422;
//! - a valid request answered 400 (the document said it is well formed);
//! - an answer whose JSON body does not match the schema the document
//!   gives for its status.
//!
//! The test fails listing every disagreement. `FLEET_FUZZ_ROUNDS` sets
//! the rounds over all operations (default 12, about 1,500 requests);
//! `FLEET_FUZZ_SEED` the seed.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Map, Value, json};

use testkit::Rng;

use crate::common::{Server, seed_example};

/// Strings the generator tries for a string schema, kept when valid.
const STRINGS: &[&str] = &[
    "kit-a",
    "classic-single",
    "soda-small",
    "burgers",
    "grill",
    "two-off",
    "addons",
    "sales-tax",
    "bacon",
    "8.875",
    "100",
    "0",
    "12",
    "\"3\"",
    "W/\"4\"",
    "*",
    "local:kit-manager",
    "c0f0e4ce00000000000000000000000000000001",
    "Zoë's 🍔 burger",
    "a",
    "",
    " ",
    "half_up",
    "10.0.1.21:9100",
    "menu",
];

struct Doc {
    doc: Value,
}

impl Doc {
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.trim_start_matches('#');
                self.resolve(self.doc.pointer(pointer).unwrap_or(&Value::Null))
            }
            None => schema,
        }
    }

    /// A validator of `schema` (with the document's components).
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.as_object().cloned().unwrap_or_default();
        root.insert("components".to_owned(), self.doc["components"].clone());
        jsonschema::draft202012::new(&Value::Object(root)).unwrap()
    }

    /// A value for `schema`; valid most of the time (callers check).
    fn generate(&self, schema: &Value, rng: &mut Rng, depth: usize) -> Value {
        let schema = self.resolve(schema);
        if let Some(Value::Array(options)) = schema.get("enum") {
            return rng.pick(options).clone();
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(options)) = schema.get(key) {
                let non_null: Vec<&Value> = options
                    .iter()
                    .filter(|o| o.get("type") != Some(&json!("null")))
                    .collect();
                let pick = if non_null.is_empty() || rng.one_in(8) {
                    rng.pick(options)
                } else {
                    *rng.pick(&non_null)
                };
                return self.generate(pick, rng, depth + 1);
            }
        }
        let ty = match schema.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => {
                let non_null: Vec<&Value> = ts.iter().filter(|t| *t != "null").collect();
                if non_null.is_empty() || rng.one_in(8) {
                    "null".to_owned()
                } else {
                    rng.pick(&non_null).as_str().unwrap_or("string").to_owned()
                }
            }
            _ if schema.get("properties").is_some() => "object".to_owned(),
            _ => ["string", "integer", "boolean"][rng.below(3)].to_owned(),
        };
        match ty.as_str() {
            "null" => Value::Null,
            "boolean" => Value::Bool(rng.one_in(2)),
            "integer" | "number" => {
                let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
                let max = schema
                    .get("maximum")
                    .and_then(Value::as_i64)
                    .unwrap_or(min.saturating_add(2_000))
                    .min(min.saturating_add(5_000));
                let span = u64::try_from(max - min).unwrap_or(0) + 1;
                let v = match rng.below(4) {
                    0 => min,
                    1 => max,
                    _ => min + i64::try_from(rng.next_u64() % span).unwrap_or(0),
                };
                json!(v)
            }
            "string" => {
                let string_schema = {
                    let mut s = Map::new();
                    s.insert("type".to_owned(), json!("string"));
                    for k in ["pattern", "minLength", "maxLength", "enum"] {
                        if let Some(v) = schema.get(k) {
                            s.insert(k.to_owned(), v.clone());
                        }
                    }
                    jsonschema::draft202012::new(&Value::Object(s)).unwrap()
                };
                let valid: Vec<&&str> = STRINGS
                    .iter()
                    .filter(|s| string_schema.is_valid(&json!(s)))
                    .collect();
                if valid.is_empty() {
                    json!("kit-a")
                } else {
                    json!(rng.pick(&valid))
                }
            }
            "array" => {
                let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
                let max = schema
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .map_or(min + 3, |m| m as usize)
                    .min(min + 3);
                let n = if depth > 4 {
                    min
                } else {
                    min + rng.below(max - min + 1)
                };
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                let mut out = Vec::new();
                for _ in 0..n * 3 {
                    if out.len() == n {
                        break;
                    }
                    let v = self.generate(&items, rng, depth + 1);
                    if schema.get("uniqueItems") == Some(&json!(true)) && out.contains(&v) {
                        continue;
                    }
                    out.push(v);
                }
                Value::Array(out)
            }
            _ => {
                let mut out = Map::new();
                let required: BTreeSet<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                for (name, prop) in schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if required.contains(name.as_str()) || (depth < 4 && rng.one_in(2)) {
                        out.insert(name.clone(), self.generate(prop, rng, depth + 1));
                    }
                }
                Value::Object(out)
            }
        }
    }
}

/// Mutations that make a valid body invalid (when the schema constrains
/// the place they touch; the caller checks).
fn mutate(body: &Value, rng: &mut Rng) -> (String, Value) {
    let mut v = body.clone();
    // Every object and number node, by pointer.
    fn nodes(v: &Value, at: String, out: &mut Vec<(String, &'static str)>) {
        match v {
            Value::Object(m) => {
                out.push((at.clone(), "object"));
                for (k, c) in m {
                    nodes(
                        c,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    nodes(c, format!("{at}/{i}"), out);
                }
            }
            Value::Number(_) => out.push((at, "number")),
            _ => {}
        }
    }
    let mut found = Vec::new();
    nodes(&v, String::new(), &mut found);
    if found.is_empty() {
        return ("a JSON array instead of the body".to_owned(), json!([v]));
    }
    let (at, kind) = rng.pick(&found).clone();
    let node = v.pointer_mut(&at).unwrap();
    let what = match (kind, rng.below(4)) {
        ("object", 0) => {
            // The case: the object's values as an array.
            let values: Vec<Value> = node.as_object().unwrap().values().cloned().collect();
            *node = Value::Array(values);
            "an array where an object is described"
        }
        ("object", 1) => {
            node.as_object_mut()
                .unwrap()
                .insert("zz_unknown".to_owned(), json!(1));
            "an unknown property"
        }
        ("object", _) => {
            let keys: Vec<String> = node.as_object().unwrap().keys().cloned().collect();
            if keys.is_empty() {
                *node = json!("not an object");
                "a string where an object is described"
            } else {
                let k = rng.pick(&keys).clone();
                node.as_object_mut().unwrap().remove(&k);
                "a property removed"
            }
        }
        (_, 0) => {
            *node = json!(-1);
            "a negative number"
        }
        (_, 1) => {
            *node = json!(u64::MAX);
            "a number out of bounds"
        }
        _ => {
            *node = json!("12");
            "a string where a number is"
        }
    };
    (format!("{what} at `{at}`"), v)
}

const HEADER_JUNK: &[&str] = &[
    "",
    "twelve",
    "-1",
    "99999999999999999999999",
    "local:",
    "x y",
    "**",
];
const QUERY_JUNK: &[&str] = &["", "-1", "abc", "0", "99999999", "1.5"];

#[tokio::test]
async fn a_schema_driven_fuzzer_finds_no_disagreement_with_openapi() {
    let s = Server::start();
    seed_example(&s).await;
    let doc = Doc {
        doc: s.get("/openapi.json").await.body,
    };
    let rounds: usize = std::env::var("FLEET_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("FLEET_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_f1ee7);
    let mut rng = Rng::new(seed);
    let mut disagreements: Vec<String> = Vec::new();
    let mut sent = 0usize;
    let mut invalid_sent = 0usize;
    let mut arrays_for_objects = 0usize;
    let mut answers_checked = 0usize;
    let paths = doc.doc["paths"].as_object().unwrap().clone();
    for _ in 0..rounds {
        for (route, ops) in &paths {
            for (method, op) in ops.as_object().unwrap() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let documented: BTreeSet<u16> = op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter_map(|k| k.parse().ok())
                    .collect();
                for case in 0..4 {
                    // Case 0 and 1 valid; 2 an invalid body (or parameter
                    // when there is no body); 3 an invalid parameter.
                    let mut path = route.clone();
                    let mut headers: Vec<(String, String)> = Vec::new();
                    let mut query: Vec<(String, String)> = Vec::new();
                    let mut invalid: Option<String> = None;
                    let params = op["parameters"].as_array().cloned().unwrap_or_default();
                    let id = rng
                        .pick(&[
                            "kit-a",
                            "classic-burger",
                            "burgers",
                            "grill",
                            "sales-tax",
                            "tax.rounding",
                            "o-1",
                        ])
                        .to_string();
                    let breakable: Vec<&Value> = params
                        .iter()
                        .filter(|p| p["in"] == "header" || p["in"] == "query")
                        .collect();
                    let break_param = if case == 3 || (case == 2 && op.get("requestBody").is_none())
                    {
                        (!breakable.is_empty()).then(|| rng.below(breakable.len()))
                    } else {
                        None
                    };
                    for (i, p) in breakable.iter().enumerate() {
                        let name = p["name"].as_str().unwrap().to_owned();
                        let schema = p["schema"].clone();
                        let validator = doc.validator(&schema);
                        let numeric = schema["type"] == "integer";
                        let as_value = |raw: &str| {
                            if numeric {
                                raw.parse::<i64>().map(Value::from).unwrap_or(json!(raw))
                            } else {
                                json!(raw)
                            }
                        };
                        if break_param == Some(i) {
                            let junk = if p["in"] == "header" {
                                HEADER_JUNK
                            } else {
                                QUERY_JUNK
                            };
                            let bad: Vec<&&str> = junk
                                .iter()
                                .filter(|j| !validator.is_valid(&as_value(j.trim())))
                                .collect();
                            if let Some(bad) = bad.first() {
                                invalid = Some(format!("parameter {name} = {bad:?}"));
                                match p["in"].as_str() {
                                    Some("header") => headers.push((name, (**bad).to_owned())),
                                    _ => query.push((name, (**bad).to_owned())),
                                }
                                continue;
                            }
                        }
                        if p["required"] != json!(true) && rng.one_in(2) {
                            continue;
                        }
                        // Identity headers go together or not at all.
                        if name == "X-Fleet-Revision"
                            || name == "X-Fleet-Commit"
                            || name == "X-Fleet-Actor"
                        {
                            continue;
                        }
                        let v = doc.generate(&schema, &mut rng, 0);
                        let raw = match &v {
                            Value::String(s) => s.clone(),
                            Value::Null => continue,
                            other => other.to_string(),
                        };
                        if !validator.is_valid(&as_value(&raw)) {
                            continue;
                        }
                        match p["in"].as_str() {
                            Some("header") => headers.push((name, raw)),
                            _ => query.push((name, raw)),
                        }
                    }
                    // Only one of the two preconditions, as a client would.
                    if headers.iter().any(|(h, _)| h == "If-Match") {
                        headers.retain(|(h, _)| h != "If-None-Match" || invalid.is_some());
                    }
                    for p in params.iter().filter(|p| p["in"] == "path") {
                        let name = p["name"].as_str().unwrap();
                        path = path.replace(&format!("{{{name}}}"), &id);
                    }
                    let mut body: Option<Value> = None;
                    if let Some(schema) =
                        op.pointer("/requestBody/content/application~1json/schema")
                    {
                        let validator = doc.validator(schema);
                        let mut v = doc.generate(schema, &mut rng, 0);
                        if let Some(o) = v.as_object_mut()
                            && o.contains_key("id")
                        {
                            o.insert("id".to_owned(), json!(id));
                        }
                        if !validator.is_valid(&v) {
                            continue; // the generator missed: not a case
                        }
                        if case == 2 && invalid.is_none() {
                            let (what, bad) = mutate(&v, &mut rng);
                            if validator.is_valid(&bad) {
                                continue; // unconstrained there: not invalid
                            }
                            if what.starts_with("an array where an object") {
                                arrays_for_objects += 1;
                            }
                            invalid = Some(format!("body: {what}"));
                            v = bad;
                        }
                        body = Some(v);
                    }
                    if case >= 2 && invalid.is_none() {
                        continue;
                    }
                    let mut rb = s.request(method.clone(), &path);
                    if !query.is_empty() {
                        rb = rb.query(&query);
                    }
                    for (h, v) in &headers {
                        rb = rb.header(h, v);
                    }
                    if let Some(b) = &body {
                        rb = rb.json(b);
                    }
                    let r = Server::send(rb).await;
                    sent += 1;
                    if invalid.is_some() {
                        invalid_sent += 1;
                    }
                    let what = format!(
                        "{method} {path} query {query:?} headers {headers:?} body {} ({})",
                        body.as_ref()
                            .map(Value::to_string)
                            .unwrap_or_default()
                            .chars()
                            .take(300)
                            .collect::<String>(),
                        invalid.clone().unwrap_or_else(|| "valid".to_owned())
                    );
                    // The answer's body matches the schema documented
                    // for its status.
                    let answer_schema = op
                        .pointer(&format!(
                            "/responses/{}/content/application~1json/schema",
                            r.status
                        ))
                        .cloned();
                    if let Some(schema) = answer_schema
                        && !r.body.is_null()
                        && {
                            answers_checked += 1;
                            !doc.validator(&schema).is_valid(&r.body)
                        }
                    {
                        disagreements.push(format!(
                            "answer {} does not match its documented schema: {what} → {}",
                            r.status, r.body
                        ));
                    }
                    if !documented.contains(&r.status) || r.status >= 500 {
                        disagreements
                            .push(format!("undocumented {}: {what} → {}", r.status, r.body));
                    }
                    if r.status >= 400
                        && (r.body["error"]["code"].as_str().unwrap_or("").is_empty()
                            || r.body["error"]["message"].as_str().is_none())
                    {
                        disagreements.push(format!(
                            "no error body with {}: {what} → {}",
                            r.status, r.body
                        ));
                    }
                    match &invalid {
                        Some(_) if r.status != 400 && r.status != 422 => disagreements.push(
                            format!("invalid request answered {}: {what} → {}", r.status, r.body),
                        ),
                        None if r.status == 400 => disagreements
                            .push(format!("valid request answered 400: {what} → {}", r.body)),
                        _ => {}
                    }
                }
            }
        }
    }
    assert!(
        sent >= 100 * rounds,
        "only {sent} requests in {rounds} rounds"
    );
    assert!(
        invalid_sent * 4 >= sent,
        "only {invalid_sent} invalid of {sent}"
    );
    assert!(
        arrays_for_objects > 0,
        "no array-for-object case was generated"
    );
    assert!(
        answers_checked * 2 >= sent,
        "only {answers_checked} of {sent} answers checked"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreement(s) in {sent} requests (seed {seed}):\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// The examples, by hand: an order shaped as JSON arrays, and a
/// body over the limit, answered in the error body.
#[tokio::test]
async fn arrays_for_objects_and_an_oversized_body_are_refused_in_the_error_body() {
    let s = Server::start();
    seed_example(&s).await;
    let r = s
        .post(
            "/orders",
            json!({"lines": [["classic-single", 3, ["bacon"]]]}),
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (422, "invalid", "lines[0]"),
        "{:?}",
        r.body
    );
    assert_eq!(s.get("/tickets").await.body["tickets"], json!([]));

    let big = vec![b' '; 64 * 1024 * 1024 + 1];
    let r = Server::send(
        s.request(Method::POST, "/orders")
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!((r.status, r.code()), (413, "too_large"), "{:?}", r.body);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );

    // Both preconditions: they cannot both hold (RFC 9110), so 412.
    let r = Server::send(
        s.request(Method::PUT, "/menu/categories/burgers")
            .header("If-Match", "1")
            .header("If-None-Match", "*")
            .json(&json!({"id": "burgers", "name": "Burgers"})),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (412, "version_mismatch"),
        "{:?}",
        r.body
    );
    // A limit above the documented maximum is refused, not clamped.
    let r = s.get("/audit?limit=5001").await;
    assert_eq!((r.status, r.field()), (400, "limit"), "{:?}", r.body);
}
