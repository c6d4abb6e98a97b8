//! The HTTP API of DESIGN.md §4: the router, bearer-token authentication
//! and the OpenAPI document.
//!
//! Routes and their OpenAPI operations come from the same declarations
//! (`utoipa-axum`), so the document cannot list a route the server lacks.
//! Entity body schemas are generated from the `schemas` crate's types
//! (schemars) and merged into the document's components, so the API and the
//! fleet repo share one definition of every entity.

pub mod contract;
pub mod error;
pub mod handlers;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::Db;
use error::AppError;
use handlers as h;

/// Largest request body: a 20,000-op menu batch fits.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct App {
    pub db: Db,
    /// The serialized OpenAPI document.
    pub openapi: Arc<str>,
}

/// The bearer token every route but `/healthz` and `/openapi.json` needs.
#[derive(Clone)]
pub struct BearerToken(Arc<[u8]>);

impl BearerToken {
    /// The token from a token file's content: surrounding whitespace trimmed.
    /// `None` when nothing is left.
    pub fn from_file_content(content: &str) -> Option<BearerToken> {
        let t = content.trim();
        (!t.is_empty()).then(|| BearerToken(Arc::from(t.as_bytes())))
    }

    fn matches(&self, presented: &[u8]) -> bool {
        // Constant time in the token's content; the length is not secret.
        presented.len() == self.0.len() && bool::from(presented.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Who sent a request, from its bearer token: the store's admin token (the
/// reconciler and store IT: every route, and the identity headers), or a
/// device token (read configuration, take orders; never write
/// configuration, never an identity header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Admin,
    Device(String),
}

impl Credential {
    /// The audit actor of a device: `device:<name>`.
    pub fn device_actor(&self) -> Option<String> {
        match self {
            Credential::Admin => None,
            Credential::Device(name) => Some(format!("device:{name}")),
        }
    }
}

/// The identity headers only the admin token may send.
const IDENTITY_HEADERS: [&str; 3] = [
    wire::edge::header::REVISION,
    wire::edge::header::COMMIT,
    wire::edge::header::ACTOR,
];

/// Which credential each protected operation takes, from [`device_may`]
/// (the rule the middleware enforces), and the 403 a device gets.
fn credentials_per_operation(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, ops) in paths.iter_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            if op.get("security").is_none() {
                continue; // public: /healthz, /openapi.json
            }
            let Ok(m) = axum::http::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            // The router's paths have `{param}` where requests have values;
            // no parameter decides what a device may do.
            let device = device_may(&m, path);
            op.insert(
                "security".to_owned(),
                if device {
                    json!([{"bearer": []}, {"device": []}])
                } else {
                    json!([{"bearer": []}])
                },
            );
            let why = if device {
                "A device token sent X-Fleet-Revision, X-Fleet-Commit or X-Fleet-Actor (`identity_header`)."
            } else {
                "A device token: only the admin token writes configuration (`device_forbidden`), or sends identity headers (`identity_header`)."
            };
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                responses.entry("403").or_insert_with(|| {
                    json!({"description": why, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
                });
            }
        }
    }
}

/// What a device token may do: read; and, with a staff session, log in,
/// place and void orders, and mark items unavailable.
fn device_may(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    method == Method::GET
        || method == Method::HEAD
        || (method == Method::PUT && path.starts_with("/menu/availability/"))
        || (method == Method::POST
            && (path == "/orders"
                || path == "/sessions"
                || (path.starts_with("/orders/") && path.ends_with("/void"))))
}

async fn require_token(mut req: Request, next: Next) -> Response {
    let (Some(token), Some(db)) = (
        req.extensions().get::<BearerToken>().cloned(),
        req.extensions().get::<Db>().cloned(),
    ) else {
        return AppError::internal(anyhow::anyhow!("no bearer token configured")).into_response();
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(wire::bearer::bearer_token)
        .map(str::to_owned);
    let credential = match presented {
        Some(p) if token.matches(p.as_bytes()) => Credential::Admin,
        Some(p) => match crate::devices::by_token(&db.reader, &p).await {
            Ok(Some(name)) => Credential::Device(name),
            Ok(None) => return unauthorized(),
            Err(e) => return AppError::internal(e).into_response(),
        },
        None => return unauthorized(),
    };
    if let Credential::Device(name) = &credential {
        let actor = format!("device:{name}");
        if let Some(h) = IDENTITY_HEADERS
            .iter()
            .find(|h| req.headers().contains_key(**h))
        {
            tracing::warn!(%actor, header = %h, path = %req.uri().path(), "A device sent an identity header; refused.");
            return AppError::client(
                StatusCode::FORBIDDEN,
                "identity_header",
                format!(
                    "{h} is for the store's admin token only: a device's actor is {actor}, from its token"
                ),
            )
            .with_field(*h)
            .into_response();
        }
        if !device_may(req.method(), req.uri().path()) {
            tracing::warn!(%actor, method = %req.method(), path = %req.uri().path(), "A device tried to write configuration; refused.");
            return AppError::client(
                StatusCode::FORBIDDEN,
                "device_forbidden",
                format!(
                    "{actor} may read configuration and place orders; configuration is written by the reconciler (the store's admin token)"
                ),
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(credential);
    next.run(req).await
}

fn unauthorized() -> Response {
    let mut r = AppError::unauthorized("missing or wrong bearer token").into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fleet-edge",
        description = "The store edge backend of Fleet (DESIGN.md §4): applied configuration with versions, local-first orders and a hash-chained audit log. Every route but /healthz and /openapi.json needs `Authorization: Bearer <token>`: the store's admin token (--token-file; every route and the X-Fleet-* identity headers), or a device token (`fleet-edge device add`), which may only read (GET) and place orders (POST /orders) and never send X-Fleet-Revision, X-Fleet-Commit or X-Fleet-Actor: anything else from a device answers 403. Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`."
    ),
    tags(
        (name = "state", description = "The applied configuration in one call."),
        (name = "settings"), (name = "menu"), (name = "access"), (name = "kitchen"),
        (name = "orders"), (name = "staff", description = "Staff sessions: a user and PIN at a register."), (name = "audit"), (name = "service")
    ),
    components(schemas(wire::edge::SettingEntry))
)]
struct ApiDoc;

/// Every route with its OpenAPI operation, before state and layers.
fn api() -> OpenApiRouter<App> {
    let protected = OpenApiRouter::new()
        .routes(routes!(h::get_state))
        .routes(routes!(h::get_setting, h::put_setting, h::delete_setting))
        .routes(routes!(h::taxes::get, h::taxes::put, h::taxes::delete))
        .routes(routes!(
            h::categories::get,
            h::categories::put,
            h::categories::delete
        ))
        .routes(routes!(
            h::modifier_groups::get,
            h::modifier_groups::put,
            h::modifier_groups::delete
        ))
        .routes(routes!(h::items::get, h::items::put, h::items::delete))
        .routes(routes!(
            h::discounts::get,
            h::discounts::put,
            h::discounts::delete
        ))
        .routes(routes!(h::post_batch))
        .routes(routes!(h::roles::get, h::roles::put, h::roles::delete))
        .routes(routes!(h::role_override))
        .routes(routes!(h::users::get, h::users::put, h::users::delete))
        .routes(routes!(h::user_override))
        .routes(routes!(
            h::stations::get,
            h::stations::put,
            h::stations::delete
        ))
        .routes(routes!(
            h::devices::get,
            h::devices::put,
            h::devices::delete
        ))
        .routes(routes!(h::get_routing, h::put_routing))
        .routes(routes!(h::post_order))
        .routes(routes!(h::post_session))
        .routes(routes!(h::put_availability))
        .routes(routes!(h::post_void))
        .routes(routes!(h::get_order))
        .routes(routes!(h::get_tickets))
        .routes(routes!(h::get_audit))
        .routes(routes!(h::verify_audit))
        // Inside the token check: a request is authenticated first.
        .layer(middleware::from_fn(contract::check))
        .layer(middleware::from_fn(require_token));
    let public = OpenApiRouter::new()
        .routes(routes!(h::healthz))
        .routes(routes!(h::openapi_json));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(protected)
        .merge(public)
}

/// The OpenAPI document, with the entity schemas of the `schemas` crate.
pub fn openapi_document() -> Value {
    let (_, doc) = api().split_for_parts();
    let mut doc = serde_json::to_value(&doc).expect("an OpenAPI document serializes");
    credentials_per_operation(&mut doc);
    let components = doc
        .as_object_mut()
        .expect("an OpenAPI document is an object")
        .entry("components")
        .or_insert_with(|| json!({}));
    let components = components.as_object_mut().expect("components is an object");
    components.insert(
        "securitySchemes".to_owned(),
        json!({
            "bearer": {"type": "http", "scheme": "bearer",
                "description": "The store's admin token: the content of the token file given to `fleet-edge serve --token-file`, whitespace trimmed. Every route; the only credential that may send X-Fleet-Revision, X-Fleet-Commit and X-Fleet-Actor."},
            "device": {"type": "http", "scheme": "bearer",
                "description": "A device token (`fleet-edge device add NAME`): reads and POST /orders only; its actor is device:<name>, never a header."}
        }),
    );
    let schemas = components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("components.schemas is an object");
    for (name, schema) in model_schemas() {
        schemas.insert(name, schema);
    }
    // Setting values are any registry scalar or list, not only objects.
    for view in ["SettingView", "SettingPut"] {
        if let Some(Value::Object(props)) =
            schemas.get_mut(view).and_then(|v| v.get_mut("properties"))
        {
            props.insert(
                "value".to_owned(),
                json!({"$ref": "#/components/schemas/SettingValue"}),
            );
        }
    }
    contract::state_constraints(&mut doc);
    doc
}

/// JSON Schemas of the entity types (from `schemas`, via schemars), with
/// `<Name>Entity` variants that add `version` (and `local_override`). The
/// `/state` body (`AppliedState`) is derived from `wire::edge::StateBody`
/// and refers to these by [`wire::edge::entity_component`].
fn model_schemas() -> Map<String, Value> {
    use schemas::diff::EntityKind;
    use schemas::model::{
        Category, Device, Discount, Item, ModifierGroup, Role, Routing, SettingValue, Station, Tax,
        User,
    };
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    macro_rules! add {
        ($($t:ty),*) => { $( generator.subschema_for::<$t>(); )* };
    }
    add!(
        Tax,
        Category,
        ModifierGroup,
        Item,
        Discount,
        Role,
        User,
        Station,
        Device,
        Routing,
        SettingValue
    );
    let mut defs = generator.take_definitions(true);
    // The edge takes secret values decrypted (DESIGN.md §11): the repo's
    // encrypted form `{age, to}` is refused here (`secret/encrypted`), so
    // the document states only the plaintext forms.
    defs.remove("Sealed");
    defs.insert(
        "SecretValue".to_owned(),
        json!({"type": "string", "description": "The argon2id PHC string (the reconciler decrypts it from the release)."}),
    );
    if let Some(Value::Array(any)) = defs
        .get_mut("SettingValue")
        .and_then(|v| v.get_mut("anyOf"))
    {
        any.retain(|alt| alt.get("type") != Some(&json!("object")));
    }
    let versioned = |base: &Value, with_override: bool| {
        let mut s = base.clone();
        if let Some(obj) = s.as_object_mut() {
            obj.remove("additionalProperties");
            if let Some(Value::Object(props)) = obj.get_mut("properties") {
                props.insert(
                    "version".to_owned(),
                    json!({"type": "integer", "minimum": 0,
                        "description": "Bumped on every write; one counter for the whole database."}),
                );
                if with_override {
                    props.insert(
                        "local_override".to_owned(),
                        json!({"type": "boolean",
                            "description": "The store's emergency override: the reconciler leaves the entity alone while true."}),
                    );
                }
            }
            let required = obj.entry("required").or_insert_with(|| json!([]));
            if let Some(r) = required.as_array_mut() {
                r.push(json!("version"));
                if with_override {
                    r.push(json!("local_override"));
                }
            }
        }
        s
    };
    for (name, kind) in [
        ("Tax", EntityKind::Tax),
        ("Category", EntityKind::Category),
        ("ModifierGroup", EntityKind::ModifierGroup),
        ("Item", EntityKind::Item),
        ("Discount", EntityKind::Discount),
        ("Role", EntityKind::Role),
        ("User", EntityKind::User),
        ("Station", EntityKind::Station),
        ("Device", EntityKind::Device),
        ("Routing", EntityKind::Routing),
    ] {
        let with_override = wire::edge::has_local_override(kind);
        if let Some(base) = defs.get(name) {
            let mut v = versioned(base, with_override);
            if name == "User" {
                // Users are applied as rendered for one store: no `stores`.
                if let Some(Value::Object(props)) = v.get_mut("properties") {
                    props.remove("stores");
                }
            }
            defs.insert(wire::edge::entity_component(kind).to_owned(), v);
        }
    }
    defs
}

/// Every request in a span with its method and URI, and the release
/// revision when the reconciler writes (`X-Fleet-Revision`), so the log
/// lines of one apply carry it.
fn request_span(req: &Request) -> tracing::Span {
    let revision = req
        .headers()
        .get(wire::edge::header::REVISION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    tracing::info_span!(
        "request",
        method = %req.method(),
        uri = %req.uri(),
        revision,
    )
}

async fn not_found() -> Response {
    AppError::not_found("no such route").into_response()
}

async fn method_not_allowed() -> Response {
    AppError::client(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
    .into_response()
}

/// The service: every route, authentication, tracing and body limits.
pub fn router(db: Db, token: BearerToken) -> Router {
    let (router, _) = api().split_for_parts();
    let openapi: Arc<str> = Arc::from(openapi_document().to_string());
    contract::prepare();
    router
        .merge(crate::local_page::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(Extension(token))
        .layer(Extension(db.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(App { db, openapi })
}

#[cfg(test)]
mod tests {
    use schemas::diff::EntityKind;
    use serde_json::Value;
    use wire::edge::{self, header, path};

    use super::openapi_document;

    fn operation<'a>(doc: &'a Value, route: &str, method: &str) -> &'a Value {
        let op = &doc["paths"][route][method];
        assert!(
            op.is_object(),
            "the client's {} {route} is not a route of /openapi.json",
            method.to_uppercase()
        );
        op
    }

    /// Every path the reconciler's client builds from `wire::edge` is a
    /// route the server documents, with the method the client uses.
    #[test]
    fn the_clients_paths_are_documented_routes() {
        let doc = openapi_document();
        for kind in EntityKind::ALL {
            let id = if kind == EntityKind::Setting {
                "{key}"
            } else {
                "{id}"
            };
            let route = edge::entity_path(kind, id);
            for method in ["get", "put"] {
                operation(&doc, &route, method);
            }
            if kind != EntityKind::Routing {
                operation(&doc, &route, "delete");
            }
            if let Some(route) = edge::override_path(kind, id) {
                operation(&doc, &route, "post");
            }
        }
        operation(&doc, path::STATE, "get");
        operation(&doc, path::MENU_BATCH, "post");
        operation(&doc, path::HEALTHZ, "get");
        operation(&doc, path::OPENAPI, "get");
        operation(&doc, path::ROUTING, "put");
        operation(&doc, path::ORDERS, "post");
        operation(&doc, path::TICKETS, "get");
        operation(&doc, path::AUDIT, "get");
        operation(&doc, path::AUDIT_VERIFY, "get");
    }

    /// The headers the client sends are the parameters the server documents.
    #[test]
    fn the_clients_headers_are_documented_parameters() {
        let doc = openapi_document();
        let params = |route: &str, method: &str| -> Vec<String> {
            operation(&doc, route, method)["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "header")
                .filter_map(|p| p["name"].as_str().map(str::to_ascii_lowercase))
                .collect()
        };
        let batch = params(path::MENU_BATCH, "post");
        for h in [header::REVISION, header::COMMIT, header::ACTOR] {
            assert!(batch.iter().any(|p| p == h), "{h} missing on the batch");
        }
        let put = params(&edge::entity_path(EntityKind::Item, "{id}"), "put");
        for h in [
            header::REVISION,
            header::COMMIT,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
        ] {
            assert!(put.iter().any(|p| p == h), "{h} missing on PUT of an item");
        }
    }

    /// `AppliedState`, the `/state` body, is generated from
    /// `wire::edge::StateBody` and its entity lists point at components
    /// that exist.
    #[test]
    fn the_state_schema_comes_from_the_wire_type() {
        let doc = openapi_document();
        let schemas = &doc["components"]["schemas"];
        let state = &schemas["AppliedState"];
        assert_eq!(state["required"], serde_json::json!(["version"]));
        for kind in EntityKind::ALL {
            let name = edge::entity_component(kind);
            assert!(schemas[name].is_object(), "component {name} is missing");
        }
        let items = &schemas["MenuSection"]["properties"]["items"]["items"]["$ref"];
        assert_eq!(items, "#/components/schemas/ItemEntity");
        assert!(schemas["SettingEntry"].is_object());
    }
}
