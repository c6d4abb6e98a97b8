//! HTTP handlers: each parses its request (path, headers, JSON body) into
//! the library's terms, calls [`crate::store`], [`crate::orders`] or
//! [`crate::audit`], and shapes the answer. Business rules are not here.
//!
//! Bodies are read as bytes and decoded here rather than with axum's `Json`
//! extractor so that every refusal has the API's JSON error shape: malformed
//! JSON is 400, a body of the wrong shape is 422 naming the field.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemas::diff::{Domain, EntityKind};
use serde_json::Value;
use tracing::info;

use super::App;
use super::error::{AppError, ErrorBody};
use crate::audit::{self, Actor, AuditPage, VerifyReport};
use crate::model::{self, Invalid, MENU_KINDS, ROUTING_ID, kind_name, parse_kind};
use crate::orders::{self, Order, OrderRequest, TicketList};
use crate::staff;
use crate::store::{self, Action, Op, Precondition, Written};
use wire::edge::{
    BatchOp, BatchOpKind, BatchRequest, BatchResponse, Health, OverrideRequest, SettingPut,
    SettingView, StateBody, header as h,
};

// ---------------------------------------------------------------- helpers

/// Most ops in one `POST /menu/batch`.
pub const MAX_BATCH_OPS: usize = 20_000;

fn parse_json(body: &Bytes) -> Result<Value, AppError> {
    if body.is_empty() {
        return Err(AppError::bad_request("the request needs a JSON body"));
    }
    // A key named twice in one object is refused, not resolved silently.
    wire::json::parse_strict(body)
        .map_err(|e| AppError::bad_request(format!("the body is not valid JSON: {e}")))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, AppError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map(str::trim).map_err(|_| {
                AppError::bad_request(format!("{name} is not visible ASCII")).with_field(name)
            })
        })
        .transpose()
}

/// `If-Match: 5` (or `"5"`, `W/"5"`, `*`) and `If-None-Match: *`.
pub fn precondition(headers: &HeaderMap) -> Result<Precondition, AppError> {
    let if_match = header_str(headers, h::IF_MATCH)?;
    let if_none_match = header_str(headers, h::IF_NONE_MATCH)?;
    if if_match.is_some() && if_none_match.is_some() {
        // RFC 9110 evaluates both: "exists at this version" and "does not
        // exist" never hold together, so the precondition fails.
        return Err(AppError::client(
            StatusCode::PRECONDITION_FAILED,
            "version_mismatch",
            "If-Match and If-None-Match: * cannot both hold: send one",
        )
        .with_field("If-None-Match"));
    }
    Precondition::from_headers(if_match, if_none_match)
        .map_err(|e| AppError::bad_request(e.message).with_field(e.field))
}

fn is_user_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

/// Who is writing: the reconciler when `X-Fleet-Revision` and
/// `X-Fleet-Commit` are present, else `X-Fleet-Actor: local:<user>`, else
/// `local:admin`.
pub fn actor(headers: &HeaderMap) -> Result<Actor, AppError> {
    let revision = header_str(headers, h::REVISION)?;
    let commit = header_str(headers, h::COMMIT)?;
    match (revision, commit) {
        (Some(r), Some(c)) => {
            let revision = r.parse::<u64>().map_err(|_| {
                AppError::bad_request(format!("X-Fleet-Revision must be a number, got {r:?}"))
                    .with_field("X-Fleet-Revision")
            })?;
            if c.is_empty() || c.len() > 200 {
                return Err(
                    AppError::bad_request("X-Fleet-Commit must be 1 to 200 characters")
                        .with_field("X-Fleet-Commit"),
                );
            }
            Ok(Actor {
                name: Actor::RECONCILER.to_owned(),
                revision: Some(revision),
                commit: Some(c.to_owned()),
            })
        }
        (Some(_), None) | (None, Some(_)) => Err(AppError::bad_request(
            "X-Fleet-Revision and X-Fleet-Commit are sent together (by the reconciler)",
        )
        .with_field(if revision.is_some() {
            "X-Fleet-Commit"
        } else {
            "X-Fleet-Revision"
        })),
        (None, None) => match header_str(headers, h::ACTOR)? {
            None => Ok(Actor::local_admin()),
            Some(a) => match a.strip_prefix("local:") {
                Some(user) if is_user_name(user) => Ok(Actor {
                    name: a.to_owned(),
                    revision: None,
                    commit: None,
                }),
                _ => Err(AppError::bad_request(format!(
                    "X-Fleet-Actor must be local:<user> (letters, digits, . _ @ -), got {a:?}"
                ))
                .with_field("X-Fleet-Actor")),
            },
        },
    }
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("a quoted number is a header value")
}

fn entity_response(status: StatusCode, view: Value, version: Option<u64>) -> Response {
    let mut r = (status, Json(view)).into_response();
    if let Some(v) = version {
        r.headers_mut().insert(header::ETAG, etag(v));
    }
    r
}

fn version_of(view: &Value) -> Option<u64> {
    view.get("version").and_then(Value::as_u64)
}

async fn write_one(app: &App, actor: &Actor, op: Op) -> Result<Written, AppError> {
    let (kind, id) = (op.kind, op.id.clone());
    let mut results = store::write(&app.db, actor, vec![op]).await?;
    let r = results.pop().ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("a write of one op returned no result"))
    })?;
    if r.op.result != "unchanged" {
        info!(
            actor = %actor.name,
            kind = kind_name(kind),
            id = %id,
            version = ?r.op.version,
            result = %r.op.result,
            "Configuration written."
        );
    }
    Ok(r)
}

/// `GET` of one entity.
pub async fn get_entity(app: &App, kind: EntityKind, id: &str) -> Result<Response, AppError> {
    match store::get(&app.db.reader, kind, id)
        .await
        .map_err(AppError::internal)?
    {
        Some(view) => {
            let v = version_of(&view);
            Ok(entity_response(StatusCode::OK, view, v))
        }
        None => Err(AppError::not_found(format!(
            "{} `{id}` does not exist",
            kind_name(kind)
        ))),
    }
}

/// `PUT` of one entity: 201 when created, 200 when replaced or unchanged.
pub async fn put_entity(
    app: &App,
    headers: &HeaderMap,
    kind: EntityKind,
    id: String,
    body: Value,
) -> Result<Response, AppError> {
    let op = Op {
        kind,
        id,
        precondition: precondition(headers)?,
        action: Action::Upsert(body),
    };
    let actor = actor(headers)?;
    let r = write_one(app, &actor, op).await?;
    let status = if r.op.result == "created" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(entity_response(
        status,
        r.view.unwrap_or(Value::Null),
        r.op.version,
    ))
}

/// `DELETE` of one entity: 204.
pub async fn delete_entity(
    app: &App,
    headers: &HeaderMap,
    kind: EntityKind,
    id: String,
) -> Result<Response, AppError> {
    let op = Op {
        kind,
        id,
        precondition: precondition(headers)?,
        action: Action::Delete,
    };
    let actor = actor(headers)?;
    write_one(app, &actor, op).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_override(
    app: &App,
    headers: &HeaderMap,
    kind: EntityKind,
    id: String,
    body: &Bytes,
) -> Result<Response, AppError> {
    let req: OverrideRequest = model::decode(parse_json(body)?)?;
    let op = Op {
        kind,
        id,
        precondition: precondition(headers)?,
        action: Action::SetOverride(req.local_override),
    };
    let actor = actor(headers)?;
    let r = write_one(app, &actor, op).await?;
    Ok(entity_response(
        StatusCode::OK,
        r.view.unwrap_or(Value::Null),
        r.op.version,
    ))
}

// ---------------------------------------------------------------- entities

/// The `GET`/`PUT`/`DELETE` handlers of one entity kind, each with its
/// OpenAPI operation.
macro_rules! entity_routes {
    (
        $module:ident, $kind:expr, $path:literal, $tag:literal,
        body: $body:literal, entity: $entity:literal,
        get: $get_doc:literal, put: $put_doc:literal, delete: $delete_doc:literal
    ) => {
        pub mod $module {
            use super::*;

            #[utoipa::path(
                get, path = $path, tag = $tag,
                operation_id = concat!("get_", stringify!($module)),
                summary = $get_doc,
                params(("id" = String, Path, description = "The entity id (a slug).")),
                responses(
                    (status = 200, description = "The entity with its version; the version is also the ETag.", body = ref($entity)),
                    (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
                    (status = 404, description = "No such entity.", body = ErrorBody),
                ),
                security(("bearer" = []))
            )]
            pub async fn get(
                State(app): State<App>,
                Path(id): Path<String>,
            ) -> Result<Response, AppError> {
                get_entity(&app, $kind, &id).await
            }

            #[utoipa::path(
                put, path = $path, tag = $tag,
                operation_id = concat!("put_", stringify!($module)),
                summary = $put_doc,
                params(
                    ("id" = String, Path, description = "The entity id; the body's `id` must equal it."),
                    ("If-Match" = Option<String>, Header, description = "The version being replaced (or `*`: must exist)."),
                    ("If-None-Match" = Option<String>, Header, description = "`*`: create only."),
                    ("X-Fleet-Actor" = Option<String>, Header, description = "`local:<user>`; default `local:admin`."),
                    ("X-Fleet-Revision" = Option<u64>, Header, description = "Set by the reconciler with X-Fleet-Commit."),
                    ("X-Fleet-Commit" = Option<String>, Header, description = "Set by the reconciler with X-Fleet-Revision."),
                ),
                request_body(content = ref($body), description = "The entity, POS-MODEL.md field names; `version` and `local_override` are ignored if present."),
                responses(
                    (status = 200, description = "Replaced (or unchanged: the same body keeps its version).", body = ref($entity)),
                    (status = 201, description = "Created.", body = ref($entity)),
                    (status = 400, description = "Malformed JSON or header.", body = ErrorBody),
                    (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
                    (status = 409, description = "A reference does not resolve, an id is taken, or the entity is under a local override.", body = ErrorBody),
                    (status = 412, description = "The version does not match If-Match / the entity exists despite If-None-Match.", body = ErrorBody),
                    (status = 422, description = "A value breaks a rule; `field` names it.", body = ErrorBody),
                    (status = 428, description = "The entity exists and neither If-Match nor If-None-Match was sent.", body = ErrorBody),
                ),
                security(("bearer" = []))
            )]
            pub async fn put(
                State(app): State<App>,
                Path(id): Path<String>,
                headers: HeaderMap,
                body: Bytes,
            ) -> Result<Response, AppError> {
                put_entity(&app, &headers, $kind, id, parse_json(&body)?).await
            }

            #[utoipa::path(
                delete, path = $path, tag = $tag,
                operation_id = concat!("delete_", stringify!($module)),
                summary = $delete_doc,
                params(
                    ("id" = String, Path, description = "The entity id."),
                    ("If-Match" = String, Header, description = "The version being deleted."),
                    ("X-Fleet-Actor" = Option<String>, Header, description = "`local:<user>`; default `local:admin`."),
                ),
                responses(
                    (status = 204, description = "Deleted."),
                    (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
                    (status = 404, description = "No such entity.", body = ErrorBody),
                    (status = 409, description = "Still referenced; the message names who references it.", body = ErrorBody),
                    (status = 412, description = "The version does not match If-Match.", body = ErrorBody),
                    (status = 428, description = "If-Match is missing.", body = ErrorBody),
                ),
                security(("bearer" = []))
            )]
            pub async fn delete(
                State(app): State<App>,
                Path(id): Path<String>,
                headers: HeaderMap,
            ) -> Result<Response, AppError> {
                delete_entity(&app, &headers, $kind, id).await
            }
        }
    };
}

entity_routes!(taxes, EntityKind::Tax, "/menu/taxes/{id}", "menu",
    body: "#/components/schemas/Tax", entity: "#/components/schemas/TaxEntity",
    get: "Read a tax", put: "Create or replace a tax", delete: "Delete a tax (refused while items use it)");
entity_routes!(categories, EntityKind::Category, "/menu/categories/{id}", "menu",
    body: "#/components/schemas/Category", entity: "#/components/schemas/CategoryEntity",
    get: "Read a category", put: "Create or replace a category",
    delete: "Delete a category (refused while items or routes use it)");
entity_routes!(modifier_groups, EntityKind::ModifierGroup, "/menu/modifier-groups/{id}", "menu",
    body: "#/components/schemas/ModifierGroup", entity: "#/components/schemas/ModifierGroupEntity",
    get: "Read a modifier group with its modifiers", put: "Create or replace a modifier group with its modifiers",
    delete: "Delete a modifier group (refused while items use it)");
entity_routes!(items, EntityKind::Item, "/menu/items/{id}", "menu",
    body: "#/components/schemas/Item", entity: "#/components/schemas/ItemEntity",
    get: "Read an item with its variations", put: "Create or replace an item with its variations",
    delete: "Delete an item");
entity_routes!(discounts, EntityKind::Discount, "/menu/discounts/{id}", "menu",
    body: "#/components/schemas/Discount", entity: "#/components/schemas/DiscountEntity",
    get: "Read a discount", put: "Create or replace a discount", delete: "Delete a discount");
entity_routes!(roles, EntityKind::Role, "/roles/{id}", "access",
    body: "#/components/schemas/Role", entity: "#/components/schemas/RoleEntity",
    get: "Read a role", put: "Create or replace a role",
    delete: "Delete a role (refused while users have it or roles inherit it)");
entity_routes!(users, EntityKind::User, "/users/{id}", "access",
    body: "#/components/schemas/User", entity: "#/components/schemas/UserEntity",
    get: "Read a user (as rendered: no `stores`, with `pin_hash`)", put: "Create or replace a user",
    delete: "Delete a user");
entity_routes!(stations, EntityKind::Station, "/stations/{id}", "kitchen",
    body: "#/components/schemas/Station", entity: "#/components/schemas/StationEntity",
    get: "Read a station", put: "Create or replace a station",
    delete: "Delete a station (refused while items, routes or devices use it)");
entity_routes!(devices, EntityKind::Device, "/devices/{id}", "kitchen",
    body: "#/components/schemas/Device", entity: "#/components/schemas/DeviceEntity",
    get: "Read a device", put: "Create or replace a device", delete: "Delete a device");

/// Override toggles for users and roles.
macro_rules! override_route {
    ($name:ident, $kind:expr, $path:literal, $entity:literal, $doc:literal) => {
        #[utoipa::path(
            post, path = $path, tag = "access",
            summary = $doc,
            description = "The store's emergency override: while `local_override` is true the reconciler leaves the entity alone (and reports it as overridden); its writes to it answer 409. Only a local actor may set or clear it; recorded in the audit log with that actor. Bumps the version.",
            params(
                ("id" = String, Path, description = "The entity id."),
                ("X-Fleet-Actor" = Option<String>, Header, description = "`local:<user>`, e.g. the manager; default `local:admin`."),
            ),
            request_body = OverrideRequest,
            responses(
                (status = 200, description = "The entity after the toggle.", body = ref($entity)),
                (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
                (status = 404, description = "No such entity.", body = ErrorBody),
                (status = 409, description = "Sent by the reconciler.", body = ErrorBody),
                (status = 422, description = "Bad body.", body = ErrorBody),
            ),
            security(("bearer" = []))
        )]
        pub async fn $name(
            State(app): State<App>,
            Path(id): Path<String>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, AppError> {
            set_override(&app, &headers, $kind, id, &body).await
        }
    };
}

override_route!(
    user_override,
    EntityKind::User,
    "/users/{id}/override",
    "#/components/schemas/UserEntity",
    "Set or clear a user's local emergency override"
);
override_route!(
    role_override,
    EntityKind::Role,
    "/roles/{id}/override",
    "#/components/schemas/RoleEntity",
    "Set or clear a role's local emergency override"
);

// ---------------------------------------------------------------- settings

fn setting_key_or_404(key: &str) -> Result<String, AppError> {
    model::setting_key(key).map_err(|e| AppError::not_found(e.message))
}

#[utoipa::path(
    get, path = "/settings/{key}", tag = "settings",
    summary = "Read a setting",
    params(("key" = String, Path, description = "A dotted key from the registry, or `custom.*`; old names (aliases) resolve.")),
    responses(
        (status = 200, description = "`{key, value, version}`.", body = SettingView),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "Not set, or no such key.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_setting(
    State(app): State<App>,
    Path(key): Path<String>,
) -> Result<Response, AppError> {
    let key = setting_key_or_404(&key)?;
    get_entity(&app, EntityKind::Setting, &key).await
}

#[utoipa::path(
    put, path = "/settings/{key}", tag = "settings",
    summary = "Set a setting",
    params(
        ("key" = String, Path, description = "A dotted key from the registry, or `custom.*`."),
        ("If-Match" = Option<String>, Header, description = "The version being replaced."),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only."),
    ),
    request_body = SettingPut,
    responses(
        (status = 200, description = "Replaced or unchanged.", body = SettingView),
        (status = 201, description = "Created.", body = SettingView),
        (status = 400, description = "Malformed JSON.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 412, description = "Version mismatch.", body = ErrorBody),
        (status = 422, description = "Unknown key or a value of the wrong type.", body = ErrorBody),
        (status = 428, description = "The setting exists and no precondition was sent.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_setting(
    State(app): State<App>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let canonical = model::setting_key(&key)?;
    let Value::Object(mut body) = parse_json(&body)? else {
        return Err(Invalid::new("", "the body is {\"value\": …}").into());
    };
    body.remove("version");
    if let Some(k) = body.remove("key")
        && k.as_str()
            .and_then(|k| model::setting_key(k).ok())
            .as_deref()
            != Some(canonical.as_str())
    {
        return Err(Invalid::new("key", "the body's key differs from the key in the path").into());
    }
    let value = body
        .remove("value")
        .ok_or_else(|| Invalid::new("value", "missing field `value`"))?;
    if let Some(extra) = body.keys().next() {
        return Err(Invalid::new(extra.clone(), format!("unknown field `{extra}`")).into());
    }
    put_entity(&app, &headers, EntityKind::Setting, canonical, value).await
}

#[utoipa::path(
    delete, path = "/settings/{key}", tag = "settings",
    summary = "Remove a setting (back to the default)",
    params(
        ("key" = String, Path, description = "The setting key."),
        ("If-Match" = String, Header, description = "The version being deleted."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "Not set.", body = ErrorBody),
        (status = 412, description = "Version mismatch.", body = ErrorBody),
        (status = 428, description = "If-Match is missing.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_setting(
    State(app): State<App>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let key = setting_key_or_404(&key)?;
    delete_entity(&app, &headers, EntityKind::Setting, key).await
}

// ---------------------------------------------------------------- routing

#[utoipa::path(
    get, path = "/routing", tag = "kitchen",
    summary = "Read the kitchen routing",
    description = "`default` stations and per-category routes. Never written, it is empty at version 0.",
    responses(
        (status = 200, description = "The routing with its version.", body = ref("#/components/schemas/RoutingEntity")),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_routing(State(app): State<App>) -> Result<Response, AppError> {
    get_entity(&app, EntityKind::Routing, ROUTING_ID).await
}

#[utoipa::path(
    put, path = "/routing", tag = "kitchen",
    summary = "Replace the kitchen routing",
    description = "The first write may send `If-Match: 0` or `If-None-Match: *`.",
    params(("If-Match" = Option<String>, Header, description = "The version being replaced (0 before the first write).")),
    request_body(content = ref("#/components/schemas/Routing")),
    responses(
        (status = 200, description = "Replaced or unchanged.", body = ref("#/components/schemas/RoutingEntity")),
        (status = 201, description = "Written for the first time.", body = ref("#/components/schemas/RoutingEntity")),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 409, description = "A station or category does not exist.", body = ErrorBody),
        (status = 412, description = "Version mismatch.", body = ErrorBody),
        (status = 422, description = "Bad body.", body = ErrorBody),
        (status = 428, description = "No precondition sent.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_routing(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    put_entity(
        &app,
        &headers,
        EntityKind::Routing,
        ROUTING_ID.to_owned(),
        parse_json(&body)?,
    )
    .await
}

// ---------------------------------------------------------------- state

#[utoipa::path(
    get, path = "/state", tag = "state",
    summary = "The applied configuration with versions",
    description = "Every domain (or the one named by `domain`) in one snapshot: lists of entities sorted by id, every entity as its GET body (its own lists, such as variations and modifiers, in the order they were written). The top-level `version` is the newest version in the database.",
    params(("domain" = Option<String>, Query, description = "settings, menu, access or kitchen")),
    responses(
        (status = 200, description = "The applied state.", body = StateBody),
        (status = 400, description = "Unknown domain.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_state(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let domain = match q.get("domain").map(String::as_str) {
        None => None,
        Some(d) => Some(
            Domain::ALL
                .into_iter()
                .find(|x| x.as_str() == d)
                .ok_or_else(|| {
                    AppError::bad_request(format!(
                        "domain is settings, menu, access or kitchen, got {d:?}"
                    ))
                    .with_field("domain")
                })?,
        ),
    };
    Ok(Json(
        store::state(&app.db.reader, domain)
            .await
            .map_err(AppError::internal)?,
    )
    .into_response())
}

// ---------------------------------------------------------------- batch

fn batch_op(i: usize, op: BatchOp<'static>) -> Result<Op, AppError> {
    let field = |f: &str| format!("ops[{i}].{f}");
    let kind = parse_kind(&op.kind)
        .filter(|k| MENU_KINDS.contains(k))
        .ok_or_else(|| {
            AppError::from(Invalid::new(
                field("kind"),
                format!(
                    "a menu batch takes tax, category, modifier_group, item or discount, got {:?}",
                    op.kind
                ),
            ))
        })?;
    let precondition = Precondition::from_batch(op.if_match, op.if_none_match.as_deref())
        .map_err(|e| Invalid::new(field(e.field), e.message))?;
    let action = match (op.op, op.body) {
        (BatchOpKind::Upsert, Some(body)) => Action::Upsert(body.into_owned()),
        (BatchOpKind::Upsert, None) => {
            return Err(Invalid::new(field("body"), "an upsert needs a body").into());
        }
        (BatchOpKind::Delete, None) => Action::Delete,
        (BatchOpKind::Delete, Some(_)) => {
            return Err(Invalid::new(field("body"), "a delete takes no body").into());
        }
    };
    Ok(Op {
        kind,
        id: op.id.into_owned(),
        precondition,
        action,
    })
}

/// Name the op in a refusal: `field` becomes `ops[i].body.<field>` (or
/// `ops[i].if_match`), the message starts with the op.
fn in_batch(e: AppError, i: usize, kind: EntityKind, id: &str) -> AppError {
    match e {
        AppError::Client {
            status,
            code,
            message,
            field,
        } => {
            let field = match field.as_deref() {
                Some("If-Match") => format!("ops[{i}].if_match"),
                Some("") | None => format!("ops[{i}]"),
                Some(f) => format!("ops[{i}].body.{f}"),
            };
            AppError::Client {
                status,
                code,
                message: format!("op {i} ({} `{id}`): {message}", kind_name(kind)),
                field: Some(field),
            }
        }
        other => other,
    }
}

#[utoipa::path(
    post, path = "/menu/batch", tag = "menu",
    summary = "Apply menu upserts and deletes atomically",
    description = "Ops apply in order in one transaction; references, deletions and id uniqueness are checked on the result. If any op fails nothing is applied (no version consumed, no audit entry) and the error names the op (`ops[i]…` in `field`).",
    params(
        ("X-Fleet-Actor" = Option<String>, Header, description = "`local:<user>`; default `local:admin`."),
        ("X-Fleet-Revision" = Option<u64>, Header, description = "Set by the reconciler with X-Fleet-Commit."),
        ("X-Fleet-Commit" = Option<String>, Header, description = "Set by the reconciler with X-Fleet-Revision."),
    ),
    request_body = BatchRequest,
    responses(
        (status = 200, description = "All ops applied; each op's resulting version (null after a delete).", body = BatchResponse),
        (status = 400, description = "Malformed JSON.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "An op deletes an entity that does not exist.", body = ErrorBody),
        (status = 409, description = "Reference, deletion or uniqueness conflict.", body = ErrorBody),
        (status = 412, description = "An op's if_match / if_none_match does not hold.", body = ErrorBody),
        (status = 422, description = "A value breaks a rule.", body = ErrorBody),
        (status = 428, description = "An op changes an existing entity without if_match.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_batch(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let req: BatchRequest<'static> = model::decode(parse_json(&body)?)?;
    if req.ops.len() > MAX_BATCH_OPS {
        return Err(Invalid::new(
            "ops",
            format!(
                "a batch has at most {MAX_BATCH_OPS} ops, got {}",
                req.ops.len()
            ),
        )
        .into());
    }
    let actor = actor(&headers)?;
    let ops = req
        .ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| batch_op(i, op))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<(EntityKind, String)> = ops.iter().map(|o| (o.kind, o.id.clone())).collect();
    let n = ops.len();
    match store::write(&app.db, &actor, ops).await {
        Ok(written) => {
            let results: Vec<_> = written.into_iter().map(|w| w.op).collect();
            let changed = results.iter().filter(|r| r.result != "unchanged").count();
            info!(actor = %actor.name, ops = n, changed, "Menu batch applied.");
            Ok(Json(BatchResponse { results }).into_response())
        }
        Err(e) => {
            let index = e.index;
            let app_err = AppError::from(e);
            Err(
                match index.and_then(|i| names.get(i).map(|(k, id)| (i, *k, id))) {
                    Some((i, kind, id)) => in_batch(app_err, i, kind, id),
                    None => app_err,
                },
            )
        }
    }
}

// ---------------------------------------------------------------- orders

#[utoipa::path(
    post, path = "/orders", tag = "orders",
    summary = "Price, route and store an order",
    description = "Priced from the applied menu in integer minor units (docs/decisions/0010-order-pricing.md): unit_price = variation + modifiers (a required modifier group named nothing of gets its defaults); discounts in the order given; taxes rounded per `tax.rounding` (half_up by default), per line or once on the order (`tax.rounding_scope`); total = subtotal − discount_total + exclusive taxes. Tickets go to the item's stations, else its category's route, else the default route. A device takes orders only with a staff session (`X-Fleet-Session`) whose role grants `order.create`; a discount that `requires` a permission needs it. The admin token may take orders without a session.",
    request_body = OrderRequest,
    params(
        ("X-Fleet-Session" = Option<String>, Header, description = "A staff session from POST /sessions, made with the same bearer token."),
    ),
    responses(
        (status = 201, description = "The priced order.", body = Order),
        (status = 400, description = "Malformed JSON.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token; a device without a staff session (`session_required`); an unknown or expired session (`bad_session`).", body = ErrorBody),
        (status = 403, description = "The session's role lacks `order.create`, or a discount's required permission (`permission_denied`); audited.", body = ErrorBody),
        (status = 422, description = "Unknown variation, modifier or discount, or a bad quantity; `field` names it.", body = ErrorBody),
        (status = 429, description = "The session's user is locked out after wrong PINs.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_order(
    State(app): State<App>,
    credential: Option<axum::Extension<super::Credential>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let req: OrderRequest = model::decode(parse_json(&body)?)?;
    let credential = credential.map(|c| c.0).unwrap_or(super::Credential::Admin);
    let staff = staff_of(&app, &headers, &credential).await?;
    let staff = staff::authorize(is_device(&credential), staff, staff::ORDER_CREATE)
        .map_err(|d| (d, "takes orders", "taking an order".to_owned()));
    let staff = match staff {
        Ok(s) => s,
        Err((d, does, what)) => return Err(denied(&app, d, does, &what).await),
    };
    let order = match orders::place(&app.db, req, staff.as_ref()).await {
        Ok(o) => o,
        Err(orders::OrderError::Forbidden {
            permission, what, ..
        }) => {
            let s = staff
                .as_ref()
                .expect("only a staff member is refused a permission");
            return Err(refuse(&app, s, &permission, &what).await);
        }
        Err(e) => return Err(e.into()),
    };
    let by = staff
        .as_ref()
        .map(|s| s.actor().name)
        .unwrap_or_else(|| device_of(&credential));
    info!(order = %order.id, total = order.total, by = %by, "Order placed.");
    let location =
        HeaderValue::from_str(&format!("/orders/{}", order.id)).map_err(AppError::internal)?;
    let mut r = (StatusCode::CREATED, Json(order)).into_response();
    r.headers_mut().insert(header::LOCATION, location);
    Ok(r)
}

fn is_device(credential: &super::Credential) -> bool {
    matches!(credential, super::Credential::Device(_))
}

/// The answer of a refused staff-only action: 401 for a device without a
/// session (it `does` the action), 403 (audited) for a role without the
/// permission (`what` for the audit log).
async fn denied(app: &App, d: staff::Denied, does: &str, what: &str) -> AppError {
    match d {
        staff::Denied::SessionRequired => session_required(does),
        staff::Denied::Lacks {
            staff, permission, ..
        } => refuse(app, &staff, permission, what).await,
    }
}

/// 401 for a device that `does` something only a staff session may.
fn session_required(does: &str) -> AppError {
    AppError::client(
        StatusCode::UNAUTHORIZED,
        "session_required",
        format!(
            "a device {does} only with a staff session: POST /sessions with the user and PIN, then send X-Fleet-Session"
        ),
    )
    .with_field("X-Fleet-Session")
}

/// The credential as a device name for sessions and the audit log.
fn device_of(credential: &super::Credential) -> String {
    credential
        .device_actor()
        .unwrap_or_else(|| "local:admin".to_owned())
}

/// The staff member of the request's `X-Fleet-Session`, if it has one.
async fn staff_of(
    app: &App,
    headers: &HeaderMap,
    credential: &super::Credential,
) -> Result<Option<staff::Staff>, AppError> {
    let Some(token) = header_str(headers, staff::SESSION_HEADER)? else {
        return Ok(None);
    };
    staff::session(&app.db, token, &device_of(credential))
        .await
        .map(Some)
        .map_err(staff_error)
}

/// The answer of a staff refusal.
fn staff_error(e: staff::StaffError) -> AppError {
    use staff::StaffError as E;
    match e {
        E::WrongPin => AppError::client(StatusCode::UNAUTHORIZED, "wrong_pin", e.to_string()),
        E::LockedOut { .. } => {
            AppError::client(StatusCode::TOO_MANY_REQUESTS, "locked_out", e.to_string())
        }
        E::BadSession => AppError::client(StatusCode::UNAUTHORIZED, "bad_session", e.to_string())
            .with_field("X-Fleet-Session"),
        other => AppError::internal(other),
    }
}

/// A staff error as a response, with `Retry-After` on a lockout.
fn staff_response(e: staff::StaffError) -> Response {
    let retry = match &e {
        staff::StaffError::LockedOut { retry_after, .. } => Some(*retry_after),
        _ => None,
    };
    let mut r = staff_error(e).into_response();
    if let Some(secs) = retry
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Refuse `what` to `staff` for lacking `permission`: 403, audited.
async fn refuse(app: &App, staff: &staff::Staff, permission: &str, what: &str) -> AppError {
    let detail =
        serde_json::json!({"device": staff.device, "permission": permission, "what": what});
    if let Err(e) =
        staff::audit_event(&app.db, &staff.actor(), "refused", &staff.user, detail).await
    {
        return AppError::internal(e);
    }
    tracing::warn!(user = %staff.user, device = %staff.device, permission, what, "Refused: the role lacks the permission.");
    AppError::client(
        StatusCode::FORBIDDEN,
        "permission_denied",
        format!(
            "{what} needs the permission {permission}, which {}'s role `{}` does not grant",
            staff.user, staff.role
        ),
    )
}

#[utoipa::path(
    put, path = "/menu/availability/{variation}", tag = "menu",
    summary = "Mark a variation unavailable (86) at this store, or available again",
    description = "Store-owned state (DESIGN.md §14): needs a staff session whose role grants `menu.sold_out` (the admin token may act without one). Unavailable lasts until the store's business day ends (`store.day_end`, local time in `store.timezone`, 04:00 when unset). Orders for it are refused (422); `/state` lists it under `store_owned`; the reconciler never reverts it. Audited with the staff member and the device.",
    params(
        ("variation" = String, Path, description = "A variation id on the menu."),
        ("X-Fleet-Session" = Option<String>, Header, description = "A staff session from POST /sessions, made with the same bearer token."),
    ),
    request_body = wire::edge::AvailabilityPut,
    responses(
        (status = 200, description = "Marked unavailable: until when, by whom; or `null` when available again.", body = Option<wire::edge::Unavailable>),
        (status = 400, description = "Malformed JSON.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token; a device without a staff session; a bad session.", body = ErrorBody),
        (status = 403, description = "The session's role lacks `menu.sold_out`; audited.", body = ErrorBody),
        (status = 404, description = "No such variation on the menu.", body = ErrorBody),
        (status = 422, description = "The body breaks its schema.", body = ErrorBody),
        (status = 429, description = "The session's user is locked out.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_availability(
    State(app): State<App>,
    Path(variation): Path<String>,
    credential: Option<axum::Extension<super::Credential>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let req: wire::edge::AvailabilityPut = model::decode(parse_json(&body)?)?;
    let credential = credential.map(|c| c.0).unwrap_or(super::Credential::Admin);
    let device = device_of(&credential);
    let staff = staff_of(&app, &headers, &credential).await?;
    let actor = match staff::authorize(is_device(&credential), staff, staff::MENU_SOLD_OUT) {
        Ok(s) => s.map_or_else(Actor::local_admin, |s| s.actor()),
        Err(d) => {
            let what = format!("marking `{variation}` unavailable");
            return Err(denied(&app, d, "marks items unavailable", &what).await);
        }
    };
    match crate::availability::set(&app.db, &variation, req.available, &actor, &device).await {
        Ok(entry) => {
            info!(variation = %variation, available = req.available, by = %actor.name, device = %device, "Availability set at the store.");
            Ok(Json(entry).into_response())
        }
        Err(crate::availability::AvailabilityError::NotFound(v)) => Err(AppError::not_found(
            format!("`{v}` is no variation on the menu"),
        )),
        Err(crate::availability::AvailabilityError::Db(e)) => Err(AppError::internal(e)),
    }
}

#[utoipa::path(
    post, path = "/sessions", tag = "staff",
    summary = "Log a staff member in with their PIN",
    description = "Checks the user's PIN against their `pin_hash` and answers a session for `X-Fleet-Session`, bound to this bearer token, valid 12 hours and across restarts. After 5 wrong PINs within 15 minutes the next attempt locks the user out for 15 minutes (429, `Retry-After`); logins, wrong PINs and lockouts are audited with the device.",
    request_body = staff::Login,
    responses(
        (status = 201, description = "The session, the user's role and every permission it grants.", body = staff::SessionAnswer),
        (status = 400, description = "Malformed JSON.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token, or a wrong user or PIN (`wrong_pin`: the same answer for an unknown user).", body = ErrorBody),
        (status = 422, description = "The body breaks its schema.", body = ErrorBody),
        (status = 429, description = "Locked out after too many wrong PINs (`locked_out`); see Retry-After.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_session(
    State(app): State<App>,
    credential: Option<axum::Extension<super::Credential>>,
    body: Bytes,
) -> Result<Response, AppError> {
    let login: staff::Login = model::decode(parse_json(&body)?)?;
    let device = device_of(&credential.map(|c| c.0).unwrap_or(super::Credential::Admin));
    let s = match staff::check_pin(&app.db, &login.user, &login.pin, &device, "login").await {
        Ok(s) => s,
        Err(e) => return Ok(staff_response(e)),
    };
    let answer = staff::open_session(&app.db, &s)
        .await
        .map_err(staff_error)?;
    info!(user = %s.user, device = %device, "Staff member logged in.");
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

#[utoipa::path(
    post, path = "/orders/{id}/void", tag = "orders",
    summary = "Void an order",
    description = "Needs a staff session whose role grants `order.void`, or `approver` (a user and PIN) whose role does: a manager approving at the register. The admin token may void without a session. Audited with the staff member, the approver and the device.",
    params(
        ("id" = String, Path, description = "The order id."),
        ("X-Fleet-Session" = Option<String>, Header, description = "A staff session from POST /sessions, made with the same bearer token."),
    ),
    request_body = orders::VoidRequest,
    responses(
        (status = 200, description = "The void.", body = orders::Void),
        (status = 400, description = "Malformed JSON.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token; a device without a session; a bad session; a wrong approver PIN.", body = ErrorBody),
        (status = 403, description = "Neither the session's role nor the approver's grants `order.void`; audited.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
        (status = 409, description = "The order was voided already.", body = ErrorBody),
        (status = 422, description = "The body breaks its schema.", body = ErrorBody),
        (status = 429, description = "The session's user or the approver is locked out.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_void(
    State(app): State<App>,
    Path(id): Path<String>,
    credential: Option<axum::Extension<super::Credential>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let req: orders::VoidRequest = if body.is_empty() {
        orders::VoidRequest::default()
    } else {
        model::decode(parse_json(&body)?)?
    };
    let credential = credential.map(|c| c.0).unwrap_or(super::Credential::Admin);
    let device = device_of(&credential);
    let staff = staff_of(&app, &headers, &credential).await?;
    let (by, approver) = match staff::authorize_void(
        &app.db,
        is_device(&credential),
        staff,
        req.approver.as_ref(),
        &device,
    )
    .await
    {
        Ok(decided) => decided,
        Err(staff::VoidDenied::Approver(e)) => return Ok(staff_response(e)),
        Err(staff::VoidDenied::Denied(d)) => {
            let what = match &d {
                staff::Denied::Lacks {
                    as_approver: true, ..
                } => format!("approving the void of order `{id}`"),
                _ => format!("voiding order `{id}` without an approver"),
            };
            return Err(denied(&app, d, "voids orders", &what).await);
        }
    };
    let voided_by = by.map_or_else(|| device.clone(), |s| s.actor().name);
    let approved_by = approver.map(|a| a.actor().name);
    let void = orders::Void {
        order: id.clone(),
        voided_at: store::now_rfc3339(),
        voided_by,
        approved_by,
        device,
        reason: req.reason,
    };
    match orders::void(&app.db, void).await {
        Ok(v) => {
            info!(order = %v.order, by = %v.voided_by, approved_by = ?v.approved_by, device = %v.device, "Order voided.");
            Ok(Json(v).into_response())
        }
        Err(orders::VoidError::NotFound(id)) => {
            Err(AppError::not_found(format!("order `{id}` does not exist")))
        }
        Err(e @ orders::VoidError::AlreadyVoided(_)) => Err(AppError::client(
            StatusCode::CONFLICT,
            "already_voided",
            e.to_string(),
        )),
        Err(orders::VoidError::Db(e)) => Err(AppError::internal(e)),
    }
}

#[utoipa::path(
    get, path = "/orders/{id}", tag = "orders",
    summary = "Read an order as it was priced",
    params(("id" = String, Path, description = "The order id.")),
    responses(
        (status = 200, description = "The order.", body = Order),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_order(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    match orders::get(&app.db.reader, &id)
        .await
        .map_err(AppError::internal)?
    {
        Some(o) => Ok(Json(o).into_response()),
        None => Err(AppError::not_found(format!("order `{id}` does not exist"))),
    }
}

fn number_param(q: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, AppError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            AppError::bad_request(format!("{name} must be a non-negative integer, got {v:?}"))
                .with_field(name)
        }),
    }
}

fn limit_param(q: &HashMap<String, String>) -> Result<u32, AppError> {
    let limit = number_param(q, "limit", u64::from(audit::DEFAULT_PAGE))?;
    Ok(u32::try_from(limit.clamp(1, u64::from(audit::MAX_PAGE))).unwrap_or(audit::MAX_PAGE))
}

#[utoipa::path(
    get, path = "/tickets", tag = "orders",
    summary = "Kitchen tickets, oldest first",
    params(
        ("station" = Option<String>, Query, description = "Only this station's tickets."),
        ("after" = Option<u64>, Query, description = "Only tickets after this seq."),
        ("limit" = Option<u32>, Query, description = "At most this many (default 500, max 5000)."),
    ),
    responses(
        (status = 200, description = "The tickets.", body = TicketList),
        (status = 400, description = "Bad parameter.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_tickets(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let after = number_param(&q, "after", 0)?;
    let limit = limit_param(&q)?;
    let list = orders::tickets(
        &app.db.reader,
        q.get("station").map(String::as_str),
        after,
        limit,
    )
    .await
    .map_err(AppError::internal)?;
    Ok(Json(list).into_response())
}

// ---------------------------------------------------------------- audit

#[utoipa::path(
    get, path = "/audit", tag = "audit",
    summary = "Audit entries, oldest first",
    params(
        ("after" = Option<u64>, Query, description = "Only entries with a larger seq (default 0)."),
        ("limit" = Option<u32>, Query, description = "At most this many (default 500, max 5000)."),
    ),
    responses(
        (status = 200, description = "A page of entries; `next_after` is set when there may be more.", body = AuditPage),
        (status = 400, description = "Bad parameter.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_audit(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let after = number_param(&q, "after", 0)?;
    let limit = limit_param(&q)?;
    Ok(Json(
        audit::page(&app.db.reader, after, limit)
            .await
            .map_err(AppError::internal)?,
    )
    .into_response())
}

#[utoipa::path(
    get, path = "/audit/verify", tag = "audit",
    summary = "Recompute the audit hash chain",
    responses(
        (status = 200, description = "`{ok: true, entries}`: the chain is intact.", body = VerifyReport),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 409, description = "`{ok: false, entries, first_bad_seq, reason}`: an entry was edited or removed.", body = VerifyReport),
    ),
    security(("bearer" = []))
)]
pub async fn verify_audit(State(app): State<App>) -> Result<Response, AppError> {
    let report = audit::verify(&app.db.reader)
        .await
        .map_err(AppError::internal)?;
    if report.ok {
        Ok(Json(report).into_response())
    } else {
        tracing::error!(
            first_bad_seq = ?report.first_bad_seq,
            reason = ?report.reason,
            "Audit log verification failed: the database was edited outside fleet-edge."
        );
        Ok((StatusCode::CONFLICT, Json(report)).into_response())
    }
}

// ---------------------------------------------------------------- service

#[utoipa::path(
    get, path = "/healthz", tag = "service",
    summary = "Liveness (no token needed)",
    responses((status = 200, description = "The process serves requests; `contract` is the edge contract version it implements (DESIGN.md §14).", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health::ok())
}

#[utoipa::path(
    get, path = "/openapi.json", tag = "service",
    summary = "This OpenAPI document (no token needed)",
    responses((status = 200, description = "OpenAPI 3.1 document.", content_type = "application/json"))
)]
pub async fn openapi_json(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.openapi.to_string(),
    )
        .into_response()
}
