//! Local-first orders: pricing an order from the applied menu, routing its
//! kitchen tickets, and storing both.
//!
//! An order is priced on a reading connection, in one read transaction (one
//! consistent menu), and stored in a write transaction that first checks
//! that no configuration write landed in between (else it prices again), so
//! an order's pricing never holds the write lock other registers wait on.
//! Orders and tickets are kept as they were priced: later
//! configuration writes never change them (and the reconciler never reads or
//! writes them). The arithmetic is in [`crate::pricing`]; this module looks
//! things up and routes.

use std::collections::{BTreeMap, HashMap};

use schemas::diff::EntityKind;
use schemas::model::{Discount, DiscountKind, Item, ModifierGroup, Routing, Tax};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Row, SqliteConnection, SqlitePool};
use utoipa::ToSchema;

use crate::db::Db;
use crate::model::{Invalid, MemberKind, ROUTING_ID, decode};
use crate::pricing::{self, Line, LineTax, Rounding, Scope};
use crate::store::{self, now_rfc3339};

/// Most lines in one order.
pub const MAX_LINES: usize = 500;
/// Largest quantity of one line.
pub const MAX_QUANTITY: u64 = 10_000;
/// Most modifiers on one line, the defaults applied included.
pub use schemas::rules::MAX_MODIFIERS_PER_LINE;
/// Pricings refused because a configuration write landed between the
/// pricing and the write; the last attempt prices in the write transaction.
const PRICE_ATTEMPTS: usize = 3;

/// `POST /orders`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// 1 to 500 lines.
    #[schema(min_items = 1, max_items = 500)]
    pub lines: Vec<OrderLineRequest>,
    /// Order discount ids, applied in this order.
    #[serde(default)]
    pub discounts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineRequest {
    /// A variation id.
    pub variation: String,
    /// 1 to 10,000; 1 when left out.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: u64,
    /// Modifier ids from the item's modifier groups, at most 50. A group
    /// with `min` ≥ 1 of which the line names none gets the group's
    /// default modifiers (charged); fewer than `min` is refused.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub modifiers: Vec<String>,
}

fn one() -> u64 {
    1
}

/// A priced order, as `POST /orders` and `GET /orders/{id}` answer it. All
/// amounts are integer minor units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Order {
    pub id: String,
    pub lines: Vec<OrderLine>,
    pub subtotal: i64,
    pub discount_total: i64,
    /// Exclusive and inclusive taxes.
    pub tax_total: i64,
    /// subtotal − discount_total + exclusive taxes.
    pub total: i64,
    pub tickets: Vec<Ticket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderLine {
    pub variation: String,
    pub quantity: u64,
    pub modifiers: Vec<String>,
    /// Variation price + modifier prices.
    pub unit_price: i64,
    /// unit_price × quantity.
    pub line_total: i64,
}

/// The lines of an order one station prepares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ticket {
    pub station: String,
    pub lines: Vec<TicketLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketLine {
    pub variation: String,
    pub quantity: u64,
    pub modifiers: Vec<String>,
}

/// A ticket as `GET /tickets` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StationTicket {
    /// Position in the ticket list (pass as `after` to page).
    pub seq: u64,
    /// The order id.
    pub order: String,
    pub station: String,
    pub created_at: String,
    pub lines: Vec<TicketLine>,
}

/// `GET /tickets`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TicketList {
    pub tickets: Vec<StationTicket>,
}

/// Why an order was refused.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored entity that does not decode: the database was edited.
    #[error("stored {kind} `{id}` does not decode: {message}")]
    Corrupt {
        kind: &'static str,
        id: String,
        message: String,
    },
    /// The staff member's role lacks a permission this order needs.
    #[error("{what} needs the permission {permission}, which {user}'s role does not grant")]
    Forbidden {
        user: String,
        permission: String,
        what: String,
    },
}

/// Looks menu entities up once per order.
struct Menu<'c> {
    conn: &'c mut SqliteConnection,
    items: HashMap<String, Item>,
    groups: HashMap<String, ModifierGroup>,
    taxes: HashMap<String, Tax>,
}

impl Menu<'_> {
    async fn entity<T: serde::de::DeserializeOwned>(
        &mut self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<T>, OrderError> {
        match store::body(self.conn, kind, id).await? {
            None => Ok(None),
            Some(v) => decode(v).map(Some).map_err(|e| OrderError::Corrupt {
                kind: crate::model::kind_name(kind),
                id: id.to_owned(),
                message: e.to_string(),
            }),
        }
    }

    async fn item_of_variation(&mut self, variation: &str) -> Result<Option<Item>, OrderError> {
        let Some(item_id) =
            store::member_parent(self.conn, MemberKind::Variation, variation).await?
        else {
            return Ok(None);
        };
        if !self.items.contains_key(&item_id) {
            let Some(item) = self.entity::<Item>(EntityKind::Item, &item_id).await? else {
                return Ok(None);
            };
            self.items.insert(item_id.clone(), item);
        }
        Ok(self.items.get(&item_id).cloned())
    }

    async fn group_of_modifier(
        &mut self,
        modifier: &str,
    ) -> Result<Option<ModifierGroup>, OrderError> {
        let Some(group_id) =
            store::member_parent(self.conn, MemberKind::Modifier, modifier).await?
        else {
            return Ok(None);
        };
        if !self.groups.contains_key(&group_id) {
            let Some(g) = self
                .entity::<ModifierGroup>(EntityKind::ModifierGroup, &group_id)
                .await?
            else {
                return Ok(None);
            };
            self.groups.insert(group_id.clone(), g);
        }
        Ok(self.groups.get(&group_id).cloned())
    }

    async fn group(&mut self, id: &str) -> Result<Option<ModifierGroup>, OrderError> {
        if !self.groups.contains_key(id) {
            let Some(g) = self
                .entity::<ModifierGroup>(EntityKind::ModifierGroup, id)
                .await?
            else {
                return Ok(None);
            };
            self.groups.insert(id.to_owned(), g);
        }
        Ok(self.groups.get(id).cloned())
    }

    async fn tax(&mut self, id: &str) -> Result<Option<Tax>, OrderError> {
        if !self.taxes.contains_key(id) {
            let Some(t) = self.entity::<Tax>(EntityKind::Tax, id).await? else {
                return Ok(None);
            };
            self.taxes.insert(id.to_owned(), t);
        }
        Ok(self.taxes.get(id).cloned())
    }
}

/// Where a line's tickets go: the item's stations, else its category's
/// route, else the default route.
pub fn stations_for<'a>(item: &'a Item, routing: &'a Routing) -> &'a [schemas::Id] {
    if !item.stations.is_empty() {
        return &item.stations;
    }
    match routing.categories.get(&item.category) {
        Some(route) if !route.is_empty() => route,
        _ => &routing.default,
    }
}

/// Price, route and store an order, taken by `staff` when a staff session
/// took it (then a discount that `requires` a permission needs it).
pub async fn place(
    db: &Db,
    req: OrderRequest,
    staff: Option<&crate::staff::Staff>,
) -> Result<Order, OrderError> {
    if req.lines.is_empty() {
        return Err(Invalid::new("lines", "an order needs at least one line").into());
    }
    if req.lines.len() > MAX_LINES {
        return Err(
            Invalid::new("lines", format!("an order has at most {MAX_LINES} lines")).into(),
        );
    }
    for (i, l) in req.lines.iter().enumerate() {
        if l.modifiers.len() > MAX_MODIFIERS_PER_LINE as usize {
            return Err(Invalid::new(
                format!("lines[{i}].modifiers"),
                format!(
                    "a line has at most {MAX_MODIFIERS_PER_LINE} modifiers, got {}",
                    l.modifiers.len()
                ),
            )
            .into());
        }
    }
    for _ in 1..PRICE_ATTEMPTS {
        let mut read = db.reader.begin().await?;
        let seen = config_version(&mut read).await?;
        let order = price(&mut read, &req, staff).await?;
        read.rollback().await?;
        let mut tx = db.writer.begin().await?;
        if config_version(&mut tx).await? != seen {
            // The menu changed while this order was priced: price again.
            tx.rollback().await?;
            continue;
        }
        let order = store(&mut tx, order).await?;
        tx.commit().await?;
        return Ok(order);
    }
    // Configuration keeps changing: price in the write transaction.
    let mut tx = db.writer.begin().await?;
    let order = price(&mut tx, &req, staff).await?;
    let order = store(&mut tx, order).await?;
    tx.commit().await?;
    Ok(order)
}

/// What an order's pricing depends on, as one value that moves when it
/// does: the configuration's version counter (every configuration write
/// moves it) and the store-owned availability (a variation marked
/// unavailable or available again adds or removes a row).
async fn config_version(conn: &mut SqliteConnection) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT (SELECT value FROM meta WHERE key = 'version_counter') || ':' || \
                (SELECT COALESCE(MAX(rowid), 0) || '-' || COUNT(*) FROM unavailable)",
    )
    .fetch_one(conn)
    .await
}

/// A setting's string value, if it is set to a string.
async fn setting_str(conn: &mut SqliteConnection, key: &str) -> Result<Option<String>, OrderError> {
    Ok(match store::body(conn, EntityKind::Setting, key).await? {
        Some(Value::String(s)) => Some(s),
        _ => None,
    })
}

/// The order `req` priced and routed from the menu `conn` sees; its id is
/// given when it is stored.
async fn price(
    conn: &mut SqliteConnection,
    req: &OrderRequest,
    staff: Option<&crate::staff::Staff>,
) -> Result<Order, OrderError> {
    let rounding = Rounding::from_setting(setting_str(conn, "tax.rounding").await?.as_deref());
    let scope = Scope::from_setting(setting_str(conn, "tax.rounding_scope").await?.as_deref());
    let routing: Routing = match store::body(conn, EntityKind::Routing, ROUTING_ID).await? {
        Some(v) => decode(v).map_err(|e| OrderError::Corrupt {
            kind: "routing",
            id: ROUTING_ID.to_owned(),
            message: e.to_string(),
        })?,
        None => Routing::default(),
    };
    let mut menu = Menu {
        conn,
        items: HashMap::new(),
        groups: HashMap::new(),
        taxes: HashMap::new(),
    };

    let mut lines = Vec::with_capacity(req.lines.len());
    let mut priced_lines = Vec::with_capacity(req.lines.len());
    let mut tickets: BTreeMap<String, Vec<TicketLine>> = BTreeMap::new();
    let mut tax_keys: HashMap<String, usize> = HashMap::new();
    for (i, l) in req.lines.iter().enumerate() {
        if l.quantity == 0 || l.quantity > MAX_QUANTITY {
            return Err(Invalid::new(
                format!("lines[{i}].quantity"),
                format!("quantity is 1 to {MAX_QUANTITY}, got {}", l.quantity),
            )
            .into());
        }
        let unknown_variation = || {
            Invalid::new(
                format!("lines[{i}].variation"),
                format!("`{}` is no variation on the menu", l.variation),
            )
        };
        let item = menu
            .item_of_variation(&l.variation)
            .await?
            .ok_or_else(unknown_variation)?;
        let variation = item
            .variations
            .iter()
            .find(|v| v.id.as_str() == l.variation)
            .ok_or_else(unknown_variation)?;
        if let Some(until) = crate::availability::unavailable_until(menu.conn, &l.variation).await?
        {
            return Err(Invalid::new(
                format!("lines[{i}].variation"),
                format!(
                    "`{}` is marked unavailable at this store until {until} (PUT /menu/availability/{} with {{\"available\": true}} sells it again)",
                    l.variation, l.variation
                ),
            )
            .into());
        }
        let mut unit_price = variation.price.0;
        let mut modifiers = l.modifiers.clone();
        let mut per_group: BTreeMap<String, u32> = BTreeMap::new();
        for (j, m) in l.modifiers.iter().enumerate() {
            let field = format!("lines[{i}].modifiers[{j}]");
            let group = menu.group_of_modifier(m).await?.ok_or_else(|| {
                Invalid::new(field.clone(), format!("`{m}` is no modifier on the menu"))
            })?;
            if !item.modifier_groups.contains(&group.id) {
                return Err(Invalid::new(
                    field,
                    format!(
                        "modifier `{m}` (group `{}`) is not offered for item `{}`",
                        group.id, item.id
                    ),
                )
                .into());
            }
            let count = per_group.entry(group.id.0.clone()).or_default();
            *count += 1;
            if *count > group.max {
                return Err(Invalid::new(
                    format!("lines[{i}].modifiers"),
                    format!(
                        "at most {} modifier(s) from group `{}`",
                        group.max, group.id
                    ),
                )
                .into());
            }
            let price = group
                .modifiers
                .iter()
                .find(|x| x.id.as_str() == m)
                .map(|x| x.price.0)
                .unwrap_or(0);
            unit_price += price;
        }
        // A required group the line names nothing of gets its defaults
        // (charged, and on the ticket); then every group's `min` holds.
        for group_id in &item.modifier_groups {
            let Some(group) = menu.group(group_id.as_str()).await? else {
                continue;
            };
            let mut count = per_group.get(group_id.as_str()).copied().unwrap_or(0);
            if count == 0 && group.min > 0 {
                for d in group.modifiers.iter().filter(|m| m.default) {
                    modifiers.push(d.id.0.clone());
                    unit_price += d.price.0;
                    count += 1;
                }
            }
            if count < group.min {
                let choices: Vec<&str> = group.modifiers.iter().map(|m| m.id.as_str()).collect();
                return Err(Invalid::new(
                    format!("lines[{i}].modifiers"),
                    format!(
                        "item `{}` needs at least {} modifier(s) from group `{}` ({}), got {count}",
                        item.id,
                        group.min,
                        group.id,
                        choices.join(", ")
                    ),
                )
                .into());
            }
        }
        if modifiers.len() > MAX_MODIFIERS_PER_LINE as usize {
            return Err(Invalid::new(
                format!("lines[{i}].modifiers"),
                format!(
                    "a line has at most {MAX_MODIFIERS_PER_LINE} modifiers, its defaults included"
                ),
            )
            .into());
        }
        let mut taxes = Vec::with_capacity(item.taxes.len());
        for t in &item.taxes {
            // Referential integrity keeps item taxes resolvable.
            if let Some(tax) = menu.tax(t.as_str()).await? {
                let next = tax_keys.len();
                let key = *tax_keys.entry(t.0.clone()).or_insert(next);
                taxes.push(LineTax {
                    key,
                    rate: tax.rate.ten_thousandths().unwrap_or(0),
                    inclusion: tax.inclusion,
                });
            }
        }
        priced_lines.push(Line {
            unit_price,
            quantity: l.quantity,
            taxes,
        });
        for s in stations_for(&item, &routing) {
            tickets.entry(s.0.clone()).or_default().push(TicketLine {
                variation: l.variation.clone(),
                quantity: l.quantity,
                modifiers: modifiers.clone(),
            });
        }
        lines.push((l, modifiers, unit_price));
    }

    let mut discounts = Vec::with_capacity(req.discounts.len());
    for (k, d) in req.discounts.iter().enumerate() {
        let field = format!("discounts[{k}]");
        if req.discounts[..k].contains(d) {
            return Err(Invalid::new(field, format!("discount `{d}` is given twice")).into());
        }
        let discount: Discount = menu
            .entity(EntityKind::Discount, d)
            .await?
            .ok_or_else(|| Invalid::new(field, format!("`{d}` is no discount on the menu")))?;
        if let (Some(staff), Some(needed)) = (staff, &discount.requires)
            && !staff.may(needed)
        {
            return Err(OrderError::Forbidden {
                user: staff.user.clone(),
                permission: needed.clone(),
                what: format!("discount `{d}`"),
            });
        }
        discounts.push(match discount.kind {
            DiscountKind::Percent => pricing::Discount::Percent(
                discount.rate.and_then(|r| r.ten_thousandths()).unwrap_or(0),
            ),
            DiscountKind::Amount => pricing::Discount::Amount(discount.amount.map_or(0, |a| a.0)),
        });
    }

    let priced = pricing::price(&priced_lines, &discounts, rounding, scope)
        .map_err(|e| Invalid::new("lines", e.to_string()))?;

    Ok(Order {
        id: String::new(),
        lines: lines
            .into_iter()
            .zip(&priced.line_totals)
            .map(|((l, modifiers, unit), total)| OrderLine {
                variation: l.variation.clone(),
                quantity: l.quantity,
                modifiers,
                unit_price: i64::try_from(unit).unwrap_or(i64::MAX),
                line_total: *total,
            })
            .collect(),
        subtotal: priced.subtotal,
        discount_total: priced.discount_total,
        tax_total: priced.tax_total,
        total: priced.total,
        tickets: tickets
            .into_iter()
            .map(|(station, lines)| Ticket { station, lines })
            .collect(),
    })
}

/// Store a priced order under the next id.
async fn store(conn: &mut SqliteConnection, mut order: Order) -> Result<Order, OrderError> {
    let next: i64 = sqlx::query_scalar(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'orders'), 0), \
                COALESCE((SELECT MAX(seq) FROM orders), 0)) + 1",
    )
    .fetch_one(&mut *conn)
    .await?;
    order.id = format!("o-{next}");
    let now = now_rfc3339();
    let body = serde_json::to_string(&order).expect("orders serialize");
    sqlx::query("INSERT INTO orders (seq, id, created_at, body) VALUES (?, ?, ?, ?)")
        .bind(next)
        .bind(&order.id)
        .bind(&now)
        .bind(body)
        .execute(&mut *conn)
        .await?;
    for t in &order.tickets {
        sqlx::query(
            "INSERT INTO tickets (order_id, station, created_at, body) VALUES (?, ?, ?, ?)",
        )
        .bind(&order.id)
        .bind(&t.station)
        .bind(&now)
        .bind(serde_json::to_string(&t.lines).expect("ticket lines serialize"))
        .execute(&mut *conn)
        .await?;
    }
    Ok(order)
}

/// A stored order, with its void when it was voided.
pub async fn get(pool: &SqlitePool, id: &str) -> Result<Option<Value>, sqlx::Error> {
    let body: Option<String> = sqlx::query_scalar("SELECT body FROM orders WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(body) = body else {
        return Ok(None);
    };
    let mut order = serde_json::from_str(&body).unwrap_or(Value::String(body));
    if let (Some(void), Some(o)) = (void_of(pool, id).await?, order.as_object_mut()) {
        o.insert(
            "void".to_owned(),
            serde_json::to_value(void).expect("a void serializes"),
        );
    }
    Ok(Some(order))
}

/// `POST /orders/{id}/void`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    /// A staff member with `order.void` who approves at the register, when
    /// the session's own role lacks it.
    #[serde(default)]
    pub approver: Option<crate::staff::Login>,
    /// Why, for the audit log: at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: Option<String>,
}

/// A void, as `POST /orders/{id}/void` answers it and `GET /orders/{id}`
/// shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Void {
    pub order: String,
    /// RFC 3339, UTC.
    pub voided_at: String,
    /// `local:<user>`, or `local:admin` for the admin token without a session.
    pub voided_by: String,
    /// The approver's `local:<user>`, when one approved.
    pub approved_by: Option<String>,
    /// The credential the void came through (`device:<name>` or `local:admin`).
    pub device: String,
    pub reason: Option<String>,
}

/// Why a void was refused.
#[derive(Debug, thiserror::Error)]
pub enum VoidError {
    #[error("order `{0}` does not exist")]
    NotFound(String),
    #[error("order `{0}` was voided already")]
    AlreadyVoided(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

async fn void_of(pool: &SqlitePool, id: &str) -> Result<Option<Void>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT voided_at, voided_by, approved_by, device, reason FROM order_voids WHERE order_id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(Void {
            order: id.to_owned(),
            voided_at: r.try_get("voided_at")?,
            voided_by: r.try_get("voided_by")?,
            approved_by: r.try_get("approved_by")?,
            device: r.try_get("device")?,
            reason: r.try_get("reason")?,
        })
    })
    .transpose()
}

/// Void order `void.order`, recording it in the audit chain in the same
/// transaction.
pub async fn void(db: &Db, void: Void) -> Result<Void, VoidError> {
    let mut tx = db.writer.begin().await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT seq FROM orders WHERE id = ?")
        .bind(&void.order)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(VoidError::NotFound(void.order));
    }
    let done = sqlx::query(
        "INSERT INTO order_voids (order_id, voided_at, voided_by, approved_by, device, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(&void.order)
    .bind(&void.voided_at)
    .bind(&void.voided_by)
    .bind(&void.approved_by)
    .bind(&void.device)
    .bind(&void.reason)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(VoidError::AlreadyVoided(void.order));
    }
    let actor = crate::audit::Actor {
        name: void.voided_by.clone(),
        revision: None,
        commit: None,
    };
    crate::staff::record(
        &mut tx,
        &actor,
        "void",
        &void.order,
        &serde_json::json!({"device": void.device, "approved_by": void.approved_by, "reason": void.reason}),
    )
    .await?;
    tx.commit().await?;
    Ok(void)
}

/// Tickets, oldest first, for one station or all, after `after`.
pub async fn tickets(
    pool: &SqlitePool,
    station: Option<&str>,
    after: u64,
    limit: u32,
) -> Result<TicketList, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, order_id, station, created_at, body FROM tickets \
         WHERE (?1 IS NULL OR station = ?1) AND seq > ?2 ORDER BY seq LIMIT ?3",
    )
    .bind(station)
    .bind(i64::try_from(after).unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let body: String = r.try_get("body")?;
        out.push(StationTicket {
            seq: u64::try_from(r.try_get::<i64, _>("seq")?).unwrap_or(0),
            order: r.try_get("order_id")?,
            station: r.try_get("station")?,
            created_at: r.try_get("created_at")?,
            lines: serde_json::from_str(&body).unwrap_or_default(),
        });
    }
    Ok(TicketList { tickets: out })
}
