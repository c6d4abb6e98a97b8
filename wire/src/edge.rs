//! The edge backend's local HTTP API (DESIGN.md §4, §9, §14), defined once:
//! `fleet-edge` serves these types and `fleet-reconciler` sends and reads
//! the same ones, and the edge's `/openapi.json` is generated from them
//! (utoipa). Paths, header names, preconditions, write operations, request
//! and answer bodies, and the error body all live here; neither side spells
//! a path or a header name of its own.
//!
//! Entity bodies are the POS-MODEL entities of the `schemas` crate; on the
//! wire they travel as JSON objects (`Body`), so that the edge can store and
//! answer them without a typed round trip and the reconciler can decode them
//! strictly into `schemas::model` types.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemas::diff::EntityKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Ref, RefOr, Schema};

/// An entity body on the wire: a JSON object of POS-MODEL fields.
pub type Body = Map<String, Value>;

/// Header names, lower case as HTTP/2 and `http::HeaderName` want them
/// (HTTP/1.1 matches them case-insensitively).
pub mod header {
    /// The release revision the reconciler is applying; with
    /// [`COMMIT`], marks the write as the reconciler's in the audit log.
    pub const REVISION: &str = "x-fleet-revision";
    /// The fleet repo commit of that release.
    pub const COMMIT: &str = "x-fleet-commit";
    /// A local writer: `local:<user>`.
    pub const ACTOR: &str = "x-fleet-actor";
    /// `If-Match: <version>` or `*`.
    pub const IF_MATCH: &str = "if-match";
    /// `If-None-Match: *`.
    pub const IF_NONE_MATCH: &str = "if-none-match";
    /// The reconciler's actor name in audit entries.
    pub const RECONCILER_ACTOR: &str = "reconciler";
}

/// Paths of the routes that are not per entity.
pub mod path {
    /// Everything applied, with versions ([`super::StateBody`]).
    pub const STATE: &str = "/state";
    /// An atomic batch of menu writes ([`super::BatchRequest`]).
    pub const MENU_BATCH: &str = "/menu/batch";
    /// Liveness, no token ([`super::Health`]).
    pub const HEALTHZ: &str = "/healthz";
    /// The OpenAPI document, no token.
    pub const OPENAPI: &str = "/openapi.json";
    /// The kitchen routing table (one per store).
    pub const ROUTING: &str = "/routing";
    /// Orders (`POST`), and `/orders/{id}`.
    pub const ORDERS: &str = "/orders";
    /// Kitchen tickets.
    pub const TICKETS: &str = "/tickets";
    /// The audit log, paged.
    pub const AUDIT: &str = "/audit";
    /// A verification of the audit log's hash chain.
    pub const AUDIT_VERIFY: &str = "/audit/verify";
}

/// The collection path of a kind (`/menu/items`); routing has none and
/// answers its single path.
pub fn collection_path(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Setting => "/settings",
        EntityKind::Tax => "/menu/taxes",
        EntityKind::Category => "/menu/categories",
        EntityKind::ModifierGroup => "/menu/modifier-groups",
        EntityKind::Item => "/menu/items",
        EntityKind::Discount => "/menu/discounts",
        EntityKind::Role => "/roles",
        EntityKind::User => "/users",
        EntityKind::Station => "/stations",
        EntityKind::Device => "/devices",
        EntityKind::Routing => path::ROUTING,
    }
}

/// The path of one entity (`/menu/items/burger`, `/routing`).
pub fn entity_path(kind: EntityKind, id: &str) -> String {
    match kind {
        EntityKind::Routing => path::ROUTING.to_owned(),
        _ => format!("{}/{id}", collection_path(kind)),
    }
}

/// The path (`POST`) that sets or clears a user's or role's local override; `None`
/// for kinds that have none.
pub fn override_path(kind: EntityKind, id: &str) -> Option<String> {
    has_local_override(kind).then(|| format!("{}/override", entity_path(kind, id)))
}

/// Whether a kind carries `local_override` (users and roles).
pub fn has_local_override(kind: EntityKind) -> bool {
    matches!(kind, EntityKind::User | EntityKind::Role)
}

/// What a write expects of the entity's current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No `If-Match`/`If-None-Match`: allowed to create, refused (428) on an
    /// existing entity.
    None,
    /// `If-Match: <version>`. For routing, version 0 means "never written".
    IfMatch(u64),
    /// `If-Match: *`: the entity must exist.
    IfExists,
    /// `If-None-Match: *`: the entity must not exist.
    IfAbsent,
}

/// Why precondition headers or batch fields could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PreconditionError {
    /// The header or field at fault (`If-Match`, `if_none_match`).
    pub field: &'static str,
    pub message: String,
}

impl Precondition {
    /// From the values of `If-Match` (`5`, `"5"`, `W/"5"`, `*`) and
    /// `If-None-Match` (`*`), trimmed.
    pub fn from_headers(
        if_match: Option<&str>,
        if_none_match: Option<&str>,
    ) -> Result<Precondition, PreconditionError> {
        let err = |field, message: String| Err(PreconditionError { field, message });
        match (if_match, if_none_match) {
            (Some(_), Some(_)) => err(
                "If-Match",
                "send either If-Match or If-None-Match, not both".to_owned(),
            ),
            (Some("*"), None) => Ok(Precondition::IfExists),
            (Some(v), None) => {
                let bare = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
                match bare.parse::<u64>() {
                    Ok(n) => Ok(Precondition::IfMatch(n)),
                    Err(_) => err(
                        "If-Match",
                        format!("If-Match must be an entity version such as 12 (or *), got {v:?}"),
                    ),
                }
            }
            (None, Some("*")) => Ok(Precondition::IfAbsent),
            (None, Some(v)) => err(
                "If-None-Match",
                format!("If-None-Match takes only *, got {v:?}"),
            ),
            (None, None) => Ok(Precondition::None),
        }
    }

    /// The header that carries it, if any.
    pub fn header(self) -> Option<(&'static str, String)> {
        match self {
            Precondition::None => None,
            Precondition::IfMatch(v) => Some((header::IF_MATCH, v.to_string())),
            Precondition::IfExists => Some((header::IF_MATCH, "*".to_owned())),
            Precondition::IfAbsent => Some((header::IF_NONE_MATCH, "*".to_owned())),
        }
    }

    /// From a batch op's `if_match` / `if_none_match` fields. `if_match`
    /// takes a version only; the field names in errors are the JSON ones.
    pub fn from_batch(
        if_match: Option<u64>,
        if_none_match: Option<&str>,
    ) -> Result<Precondition, PreconditionError> {
        match (if_match, if_none_match) {
            (Some(_), Some(_)) => Err(PreconditionError {
                field: "if_match",
                message: "send if_match or if_none_match, not both".to_owned(),
            }),
            (Some(v), None) => Ok(Precondition::IfMatch(v)),
            (None, Some("*")) => Ok(Precondition::IfAbsent),
            (None, Some(other)) => Err(PreconditionError {
                field: "if_none_match",
                message: format!("if_none_match takes only \"*\", got {other:?}"),
            }),
            (None, None) => Ok(Precondition::None),
        }
    }

    /// The batch op fields that carry it: `(if_match, if_none_match)`.
    /// `None` for `If-Match: *`, which has no batch form: it is never
    /// weakened to "no precondition".
    pub fn batch_fields(self) -> Option<(Option<u64>, Option<&'static str>)> {
        match self {
            Precondition::None => Some((None, None)),
            Precondition::IfMatch(v) => Some((Some(v), None)),
            Precondition::IfAbsent => Some((None, Some("*"))),
            Precondition::IfExists => None,
        }
    }
}

/// What a write does to one entity.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create or replace with this body (POS-MODEL fields; a setting's
    /// value for settings).
    Upsert(Value),
    Delete,
    /// Set or clear `local_override` (users and roles; local writers only).
    SetOverride(bool),
}

/// One write to one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub kind: EntityKind,
    pub id: String,
    pub precondition: Precondition,
    pub action: Action,
}

impl Op {
    /// Whether this op goes in a `POST /menu/batch` (menu upserts and
    /// deletes with a precondition a batch can carry).
    pub fn batchable(&self) -> bool {
        EntityKind::MENU.contains(&self.kind)
            && !matches!(self.action, Action::SetOverride(_))
            && self.precondition.batch_fields().is_some()
    }
}

/// The body of `POST /menu/batch`: menu writes applied atomically, in order.
/// `'a` lets a sender borrow the bodies it already holds (a 5,000-item menu
/// is megabytes); the edge decodes an owned one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest<'a> {
    pub ops: Vec<BatchOp<'a>>,
}

/// A batch op's verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchOpKind {
    Upsert,
    Delete,
}

/// One op of a batch; `if_match`/`if_none_match` work like the headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchOp<'a> {
    pub op: BatchOpKind,
    /// `tax`, `category`, `modifier_group`, `item` or `discount`.
    #[schema(value_type = String)]
    pub kind: Cow<'a, str>,
    #[schema(value_type = String)]
    pub id: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<u64>,
    /// `"*"`: create only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub if_none_match: Option<Cow<'a, str>>,
    /// The entity, for `upsert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub body: Option<Cow<'a, Value>>,
}

/// Why an op cannot travel in a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} `{id}`: {message}")]
pub struct NotBatchable {
    pub kind: EntityKind,
    pub id: String,
    pub message: &'static str,
}

impl<'a> BatchRequest<'a> {
    /// The batch that sends `ops`, borrowing their ids and bodies.
    pub fn borrowing(ops: &'a [Op]) -> Result<BatchRequest<'a>, NotBatchable> {
        let ops = ops
            .iter()
            .map(|op| {
                let refuse = |message| NotBatchable {
                    kind: op.kind,
                    id: op.id.clone(),
                    message,
                };
                if !EntityKind::MENU.contains(&op.kind) {
                    return Err(refuse("only menu entities travel in a batch"));
                }
                let (verb, body) = match &op.action {
                    Action::Upsert(body) => (BatchOpKind::Upsert, Some(Cow::Borrowed(body))),
                    Action::Delete => (BatchOpKind::Delete, None),
                    Action::SetOverride(_) => {
                        return Err(refuse("a local override is not a batch op"));
                    }
                };
                let (if_match, if_none_match) = op
                    .precondition
                    .batch_fields()
                    .ok_or_else(|| refuse("If-Match: * has no batch form"))?;
                Ok(BatchOp {
                    op: verb,
                    kind: Cow::Borrowed(op.kind.code()),
                    id: Cow::Borrowed(op.id.as_str()),
                    if_match,
                    if_none_match: if_none_match.map(Cow::Borrowed),
                    body,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(BatchRequest { ops })
    }
}

/// What one write did, as the edge answers it in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OpResult {
    pub kind: String,
    pub id: String,
    /// `created`, `updated`, `unchanged` or `deleted`.
    pub result: String,
    /// The entity's version after the op; null after a delete.
    pub version: Option<u64>,
}

/// The answer of a batch: each op's result, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<OpResult>,
}

/// The body of `POST /users/{id}/override` and `POST /roles/{id}/override`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// `true` to keep the reconciler away from this entity, `false` to hand
    /// it back.
    pub local_override: bool,
}

/// `GET /settings/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SettingView {
    pub key: String,
    /// A boolean, integer, string or list of those (see the settings registry).
    #[schema(value_type = Object)]
    pub value: Value,
    pub version: u64,
}

/// The body of `PUT /settings/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingPut {
    #[schema(value_type = Object)]
    pub value: Value,
}

/// The edge contract version this code implements and speaks (DESIGN.md
/// §14): `GET /healthz` says it as `contract`, and a reconciler refuses a
/// backend whose version it does not know.
pub const CONTRACT: u32 = 1;

/// The edge contract versions a reconciler of this code can drive.
pub const KNOWN_CONTRACTS: [u32; 1] = [CONTRACT];

/// `GET /healthz`: `{"status": "ok", "contract": 1}` (and `"ok": true`, as
/// part one answered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `"ok"` when the backend serves requests.
    pub status: String,
    /// The edge contract version the backend implements ([`CONTRACT`]).
    pub contract: u32,
    /// Part one's field, kept for its clients: always true.
    pub ok: bool,
}

impl Health {
    /// The answer of a backend that serves requests.
    pub fn ok() -> Health {
        Health {
            status: "ok".to_owned(),
            contract: CONTRACT,
            ok: true,
        }
    }
}

/// The contract version a `GET /healthz` answer states, if this code knows
/// it; otherwise why the backend cannot be driven.
pub fn contract_of(health: &str) -> Result<u32, String> {
    let value: Value = serde_json::from_str(health).map_err(|e| {
        format!(
            "its GET /healthz answer is not JSON ({e}): {}",
            clip(health)
        )
    })?;
    match value.get("contract") {
        None => Err(format!(
            "it does not say which edge contract it implements (GET /healthz answered {}; \
             a backend of contract {CONTRACT} answers {{\"status\": \"ok\", \"contract\": {CONTRACT}}})",
            clip(health)
        )),
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if KNOWN_CONTRACTS.contains(&n) => Ok(n),
            Some(n) => Err(format!(
                "it implements edge contract {n}, and this reconciler drives contract {}: \
                 install the reconciler release that matches the backend (or a backend of \
                 contract {CONTRACT})",
                KNOWN_CONTRACTS.map(|k| k.to_string()).join(", ")
            )),
            None => Err(format!(
                "its GET /healthz names contract {v}, which is not a version number"
            )),
        },
    }
}

/// At most 200 characters of a peer's text, for a message.
fn clip(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_owned(),
    }
}

/// One entry of the edge's local audit log, as `GET /audit` answers it:
/// a configuration write, who made it and what it changed (DESIGN.md §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// `reconciler` or `local:<user>`.
    pub actor: String,
    /// Release revision, for the reconciler.
    pub revision: Option<u64>,
    /// Source commit, for the reconciler.
    pub commit: Option<String>,
    /// `settings`, `menu`, `access` or `kitchen`.
    pub domain: String,
    /// Entity kind: `setting`, `tax`, `category`, `modifier_group`, `item`,
    /// `discount`, `role`, `user`, `station`, `device`, `routing`.
    pub kind: String,
    pub entity_id: String,
    /// `create`, `update`, `delete` or `override`.
    pub action: String,
    /// The version this write gave the entity (for a delete: the version the
    /// deletion consumed).
    pub version: u64,
    /// The entity as `GET` answered it before the write; null when created.
    #[schema(value_type = Object, nullable)]
    pub before: Option<Value>,
    /// The entity as `GET` answers it after the write; null when deleted.
    #[schema(value_type = Object, nullable)]
    pub after: Option<Value>,
    pub prev_hash: String,
    pub hash: String,
}

/// A page of `GET /audit`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `after` for the next page; null when this page is the last.
    pub next_after: Option<u64>,
}

/// The answer of `GET /audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// The first entry found missing or altered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of every error answer of both services:
/// `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for a program (`code`, `field`) and a person (`message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `bad_request`, `unauthorized`,
    /// `not_found`, `method_not_allowed`, `missing_reference`, `in_use`,
    /// `duplicate`, `locally_overridden`, `override_is_local`,
    /// `version_mismatch`, `precondition_required`, `invalid`, `internal`.
    pub code: String,
    pub message: String,
    /// The offending field (`variations[0].price`, `ops[3].body.category`,
    /// a header name), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>, field: Option<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                field,
            },
        }
    }
}

/// An entity as the edge answers it: its POS-MODEL fields, its `version`,
/// and `local_override` for users and roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    #[serde(flatten)]
    pub body: Body,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_override: Option<bool>,
}

/// A setting as `/state` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SettingEntry {
    #[schema(value_type = Object)]
    pub value: Value,
    pub version: u64,
}

/// `GET /state`: every domain (or the one asked for with `?domain=`), lists
/// of entities sorted by id, each entity's own lists (variations,
/// modifiers) in the order they were written. `version` is the newest
/// version in the database: it changes with every write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AppliedState)]
pub struct StateBody {
    /// The newest version in the database.
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = settings_schema)]
    pub settings: Option<BTreeMap<String, SettingEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu: Option<MenuSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kitchen: Option<KitchenSection>,
    /// State the store owns (DESIGN.md §14): set there by staff, never
    /// planned or reverted by the reconciler, reported to the status
    /// service. In the full answer only (not with `?domain=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_owned: Option<StoreOwned>,
}

/// What the store owns and the reconciler never writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoreOwned {
    /// Variations marked unavailable (86'd) until the store's day ends.
    #[serde(default)]
    pub unavailable: Vec<Unavailable>,
}

/// A variation a staff member marked unavailable at the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Unavailable {
    pub variation: String,
    /// `local:<user>`, or `local:admin` for the admin token without a session.
    pub set_by: String,
    /// The credential it came through (`device:<name>` or `local:admin`).
    pub device: String,
    /// RFC 3339, UTC.
    pub set_at: String,
    /// When the store's business day ends (`store.day_end`) and the
    /// variation is available again; RFC 3339, UTC.
    pub until: String,
}

/// The body of `PUT /menu/availability/{variation}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityPut {
    /// `false` to mark it unavailable until the day ends, `true` to sell it again.
    pub available: bool,
}

/// The menu domain of `/state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MenuSection {
    #[serde(default)]
    #[schema(schema_with = tax_list)]
    pub taxes: Vec<Versioned>,
    #[serde(default)]
    #[schema(schema_with = category_list)]
    pub categories: Vec<Versioned>,
    #[serde(default)]
    #[schema(schema_with = modifier_group_list)]
    pub modifier_groups: Vec<Versioned>,
    #[serde(default)]
    #[schema(schema_with = item_list)]
    pub items: Vec<Versioned>,
    #[serde(default)]
    #[schema(schema_with = discount_list)]
    pub discounts: Vec<Versioned>,
}

/// The access domain of `/state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AccessSection {
    #[serde(default)]
    #[schema(schema_with = role_list)]
    pub roles: Vec<Versioned>,
    #[serde(default)]
    #[schema(schema_with = user_list)]
    pub users: Vec<Versioned>,
}

/// The kitchen domain of `/state`. Routing always exists, at version 0
/// until first written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KitchenSection {
    #[serde(default)]
    #[schema(schema_with = station_list)]
    pub stations: Vec<Versioned>,
    #[serde(default)]
    #[schema(schema_with = device_list)]
    pub devices: Vec<Versioned>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = routing_entity)]
    pub routing: Option<Versioned>,
}

/// The OpenAPI component name of a kind's versioned entity (`ItemEntity`);
/// the edge generates those components from the `schemas` crate's types.
pub fn entity_component(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Setting => "SettingView",
        EntityKind::Tax => "TaxEntity",
        EntityKind::Category => "CategoryEntity",
        EntityKind::ModifierGroup => "ModifierGroupEntity",
        EntityKind::Item => "ItemEntity",
        EntityKind::Discount => "DiscountEntity",
        EntityKind::Role => "RoleEntity",
        EntityKind::User => "UserEntity",
        EntityKind::Station => "StationEntity",
        EntityKind::Device => "DeviceEntity",
        EntityKind::Routing => "RoutingEntity",
    }
}

fn component_ref(kind: EntityKind) -> Ref {
    Ref::from_schema_name(entity_component(kind))
}

fn list_of(kind: EntityKind) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(component_ref(kind))
        .build()
        .into()
}

fn tax_list() -> RefOr<Schema> {
    list_of(EntityKind::Tax)
}
fn category_list() -> RefOr<Schema> {
    list_of(EntityKind::Category)
}
fn modifier_group_list() -> RefOr<Schema> {
    list_of(EntityKind::ModifierGroup)
}
fn item_list() -> RefOr<Schema> {
    list_of(EntityKind::Item)
}
fn discount_list() -> RefOr<Schema> {
    list_of(EntityKind::Discount)
}
fn role_list() -> RefOr<Schema> {
    list_of(EntityKind::Role)
}
fn user_list() -> RefOr<Schema> {
    list_of(EntityKind::User)
}
fn station_list() -> RefOr<Schema> {
    list_of(EntityKind::Station)
}
fn device_list() -> RefOr<Schema> {
    list_of(EntityKind::Device)
}
fn routing_entity() -> RefOr<Schema> {
    component_ref(EntityKind::Routing).into()
}
fn settings_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .additional_properties(Some(Ref::from_schema_name("SettingEntry")))
        .build()
        .into()
}

impl StateBody {
    /// The entities of one kind (empty for settings and routing, which have
    /// their own fields).
    pub fn list(&self, kind: EntityKind) -> &[Versioned] {
        let m = self.menu.as_ref();
        let a = self.access.as_ref();
        let k = self.kitchen.as_ref();
        let v = match kind {
            EntityKind::Tax => m.map(|s| &s.taxes),
            EntityKind::Category => m.map(|s| &s.categories),
            EntityKind::ModifierGroup => m.map(|s| &s.modifier_groups),
            EntityKind::Item => m.map(|s| &s.items),
            EntityKind::Discount => m.map(|s| &s.discounts),
            EntityKind::Role => a.map(|s| &s.roles),
            EntityKind::User => a.map(|s| &s.users),
            EntityKind::Station => k.map(|s| &s.stations),
            EntityKind::Device => k.map(|s| &s.devices),
            EntityKind::Setting | EntityKind::Routing => None,
        };
        v.map(Vec::as_slice).unwrap_or_default()
    }

    /// The list of one kind, for the edge to fill (`None` for settings and
    /// routing).
    pub fn list_mut(&mut self, kind: EntityKind) -> Option<&mut Vec<Versioned>> {
        Some(match kind {
            EntityKind::Tax => &mut self.menu.get_or_insert_default().taxes,
            EntityKind::Category => &mut self.menu.get_or_insert_default().categories,
            EntityKind::ModifierGroup => &mut self.menu.get_or_insert_default().modifier_groups,
            EntityKind::Item => &mut self.menu.get_or_insert_default().items,
            EntityKind::Discount => &mut self.menu.get_or_insert_default().discounts,
            EntityKind::Role => &mut self.access.get_or_insert_default().roles,
            EntityKind::User => &mut self.access.get_or_insert_default().users,
            EntityKind::Station => &mut self.kitchen.get_or_insert_default().stations,
            EntityKind::Device => &mut self.kitchen.get_or_insert_default().devices,
            EntityKind::Setting | EntityKind::Routing => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entity_paths() {
        assert_eq!(
            entity_path(EntityKind::ModifierGroup, "size"),
            "/menu/modifier-groups/size"
        );
        assert_eq!(
            entity_path(EntityKind::Setting, "tax.rounding"),
            "/settings/tax.rounding"
        );
        assert_eq!(entity_path(EntityKind::Routing, "routing"), "/routing");
        assert_eq!(
            override_path(EntityKind::User, "ana").as_deref(),
            Some("/users/ana/override")
        );
        assert_eq!(override_path(EntityKind::Item, "burger"), None);
    }

    #[test]
    fn precondition_headers_round_trip() {
        for p in [
            Precondition::None,
            Precondition::IfMatch(0),
            Precondition::IfMatch(42),
            Precondition::IfExists,
            Precondition::IfAbsent,
        ] {
            let (m, n) = match p.header() {
                None => (None, None),
                Some((header::IF_MATCH, v)) => (Some(v), None),
                Some((_, v)) => (None, Some(v)),
            };
            assert_eq!(
                Precondition::from_headers(m.as_deref(), n.as_deref()),
                Ok(p),
                "{p:?}"
            );
        }
    }

    #[test]
    fn precondition_header_forms_and_refusals() {
        let ok = |m, n| Precondition::from_headers(m, n);
        assert_eq!(ok(Some("\"7\""), None), Ok(Precondition::IfMatch(7)));
        assert_eq!(ok(Some("W/\"7\""), None), Ok(Precondition::IfMatch(7)));
        assert_eq!(ok(Some("x"), None).expect_err("refused").field, "If-Match");
        assert_eq!(
            ok(None, Some("3")).expect_err("refused").field,
            "If-None-Match"
        );
        assert_eq!(
            ok(Some("3"), Some("*")).expect_err("refused").field,
            "If-Match"
        );
        assert_eq!(
            Precondition::from_batch(Some(1), Some("*"))
                .expect_err("refused")
                .field,
            "if_match"
        );
        assert_eq!(
            Precondition::from_batch(None, Some("1"))
                .expect_err("refused")
                .field,
            "if_none_match"
        );
    }

    /// What the reconciler sends in a batch is what the edge decodes: the
    /// same ops, in order, with the same preconditions and bodies.
    #[test]
    fn a_borrowed_batch_decodes_to_the_ops_it_was_made_from() {
        let ops = vec![
            Op {
                kind: EntityKind::Item,
                id: "burger".into(),
                precondition: Precondition::IfAbsent,
                action: Action::Upsert(
                    json!({"name": "Burger", "variations": [{"id": "r", "price": 900}]}),
                ),
            },
            Op {
                kind: EntityKind::Tax,
                id: "vat".into(),
                precondition: Precondition::IfMatch(7),
                action: Action::Upsert(json!({"name": "VAT", "rate": "20"})),
            },
            Op {
                kind: EntityKind::Category,
                id: "old".into(),
                precondition: Precondition::IfMatch(3),
                action: Action::Delete,
            },
        ];
        let bytes = serde_json::to_vec(&BatchRequest::borrowing(&ops).expect("batchable"))
            .expect("serializes");
        let decoded: BatchRequest<'static> = serde_json::from_slice(&bytes).expect("decodes");
        assert_eq!(decoded.ops.len(), ops.len());
        for (d, op) in decoded.ops.iter().zip(&ops) {
            assert_eq!(d.kind, op.kind.code());
            assert_eq!(d.id, op.id);
            assert_eq!(
                Precondition::from_batch(d.if_match, d.if_none_match.as_deref()),
                Ok(op.precondition)
            );
            match &op.action {
                Action::Upsert(b) => {
                    assert_eq!(d.op, BatchOpKind::Upsert);
                    assert_eq!(d.body.as_deref(), Some(b));
                }
                _ => {
                    assert_eq!(d.op, BatchOpKind::Delete);
                    assert_eq!(d.body, None);
                }
            }
        }
    }

    #[test]
    fn overrides_and_settings_do_not_batch() {
        let op = |kind, action| Op {
            kind,
            id: "x".into(),
            precondition: Precondition::IfMatch(1),
            action,
        };
        assert!(op(EntityKind::Item, Action::Delete).batchable());
        assert!(!op(EntityKind::Setting, Action::Delete).batchable());
        assert!(!op(EntityKind::Role, Action::SetOverride(true)).batchable());
        assert!(BatchRequest::borrowing(&[op(EntityKind::User, Action::Delete)]).is_err());
        // `If-Match: *` has no batch form; it is refused, never weakened.
        let mut if_exists = op(EntityKind::Item, Action::Delete);
        if_exists.precondition = Precondition::IfExists;
        assert!(!if_exists.batchable());
        let e = BatchRequest::borrowing(std::slice::from_ref(&if_exists)).expect_err("refused");
        assert!(e.message.contains("If-Match: *"), "{e}");
        assert_eq!(Precondition::IfExists.batch_fields(), None);
    }

    #[test]
    fn state_body_reads_versions_and_overrides() {
        let text = json!({
            "version": 9,
            "settings": {"tax.rounding": {"value": "half_even", "version": 3}},
            "menu": {"items": [{"id": "burger", "name": "Burger", "version": 5}]},
            "access": {"users": [{"id": "ana", "version": 6, "local_override": true}]},
            "kitchen": {"routing": {"default": [], "version": 0}}
        });
        let s: StateBody = serde_json::from_value(text.clone()).expect("decodes");
        assert_eq!(s.version, 9);
        assert_eq!(s.list(EntityKind::Item)[0].version, 5);
        assert_eq!(s.list(EntityKind::Item)[0].body["name"], "Burger");
        assert!(!s.list(EntityKind::Item)[0].body.contains_key("version"));
        assert_eq!(s.list(EntityKind::User)[0].local_override, Some(true));
        assert!(s.list(EntityKind::Tax).is_empty());
        assert_eq!(serde_json::to_value(&s).expect("serializes"), {
            let mut t = text;
            // Absent lists come back empty.
            t["menu"] = json!({"taxes": [], "categories": [], "modifier_groups": [],
                "items": [{"id": "burger", "name": "Burger", "version": 5}], "discounts": []});
            t["access"] = json!({"roles": [], "users": [{"id": "ana", "version": 6, "local_override": true}]});
            t["kitchen"] =
                json!({"stations": [], "devices": [], "routing": {"default": [], "version": 0}});
            t
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod contract_tests {
    use super::*;

    #[test]
    fn a_known_contract_is_taken_and_anything_else_says_why() {
        assert_eq!(
            contract_of(&serde_json::to_string(&Health::ok()).unwrap()),
            Ok(1)
        );
        assert_eq!(contract_of(r#"{"status":"ok","contract":1}"#), Ok(1));
        let newer = contract_of(r#"{"status":"ok","contract":2}"#).unwrap_err();
        assert!(
            newer.contains("contract 2") && newer.contains("drives contract 1"),
            "{newer}"
        );
        let older = contract_of(r#"{"ok":true}"#).unwrap_err();
        assert!(older.contains("does not say"), "{older}");
        let text = contract_of(r#"{"contract":"one"}"#).unwrap_err();
        assert!(text.contains("not a version number"), "{text}");
        let html = contract_of("<html>proxy error</html>").unwrap_err();
        assert!(
            html.contains("not JSON") && html.contains("proxy error"),
            "{html}"
        );
        let long = "x".repeat(1000);
        assert!(contract_of(&long).unwrap_err().len() < 400, "clipped");
    }
}
