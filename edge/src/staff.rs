//! Staff sessions and permissions (DESIGN.md §14, THREATS.md row 26): a
//! person at a register logs in with their user id and PIN and gets a
//! session, sent as `X-Fleet-Session` beside the device's bearer token.
//! What the session may do is read from the synced `access` domain at
//! every request (the role's permissions, its parents', `admin.all`), so a
//! role changed in Git takes effect on the next order after the reconciler
//! applied it.
//!
//! - PINs are checked against the user's argon2id `pin_hash`, off the
//!   async threads. An unknown user, a user without a PIN and a wrong PIN
//!   answer the same 401, after the same work.
//! - Wrong PINs are counted per user: the [`MAX_FAILURES`]+1th within
//!   [`FAILURE_WINDOW_SECS`] locks the user out for [`LOCKOUT_SECS`] (429
//!   with `Retry-After`); while locked, no PIN is checked.
//! - Sessions are stored hashed in the database, bound to the credential
//!   that made them (a device token, or the admin token), and last
//!   [`SESSION_SECS`]: they survive a restart of the edge.
//! - Logins, wrong PINs, lockouts, refused actions and voids enter the
//!   audit chain (domain `staff`), naming the staff member and the device.

use std::collections::BTreeSet;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use chrono::{DateTime, SecondsFormat, Utc};
use rand_core::{OsRng, RngCore};
use schemas::diff::EntityKind;
use schemas::model::{Role, User};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{Row, SqliteConnection};
use utoipa::ToSchema;

use crate::audit::{self, Actor, NewEntry};
use crate::db::Db;
use crate::store;

/// Wrong PINs a user may enter within the window before the next attempt
/// is locked out.
pub const MAX_FAILURES: i64 = 5;
/// The window wrong PINs are counted in.
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;
/// How long a lockout lasts.
pub const LOCKOUT_SECS: i64 = 15 * 60;
/// How long a session lasts: a long shift.
pub const SESSION_SECS: i64 = 12 * 60 * 60;
/// The header that carries a session.
pub const SESSION_HEADER: &str = "x-fleet-session";
/// A session token's prefix (`fss_` + 64 hex digits).
const TOKEN_PREFIX: &str = "fss_";

/// `POST /sessions`: who is logging in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user's id (a slug).
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub user: String,
    /// The user's PIN: 4 to 12 digits.
    #[schema(pattern = "^[0-9]{4,12}$")]
    pub pin: String,
}

/// The answer of `POST /sessions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionAnswer {
    /// Send it as `X-Fleet-Session` with the same bearer token.
    pub session: String,
    pub user: String,
    pub role: String,
    /// Every permission the role grants, its parents' included.
    pub permissions: Vec<String>,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

/// A staff member acting through a session, as read at this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub user: String,
    pub role: String,
    pub permissions: BTreeSet<String>,
    /// The credential the session was made with (`device:<name>` or
    /// `local:admin`).
    pub device: String,
}

impl Staff {
    /// Whether the staff member holds `permission` (or `admin.all`).
    pub fn may(&self, permission: &str) -> bool {
        let wanted = schemas::registry::canonical_permission(permission).unwrap_or(permission);
        self.permissions.contains(wanted) || self.permissions.contains(schemas::registry::ADMIN_ALL)
    }

    /// The audit actor: `staff:<user>@<credential's name>` ([`actor_name`]).
    pub fn actor(&self) -> Actor {
        Actor {
            name: actor_name(&self.user, &self.device),
            revision: None,
            commit: None,
        }
    }
}

/// The audit actor of `user` acting through the credential `device`
/// (`device:<name>`, `local:admin`, or the store page's `local:web`):
/// `staff:<user>@<name>` (DESIGN.md §10). It comes from the credential
/// and the checked PIN, never from a header: `X-Fleet-Actor` names only
/// `local:` actors.
pub fn actor_name(user: &str, device: &str) -> String {
    let name = device.split_once(':').map_or(device, |(_, name)| name);
    format!("staff:{user}@{name}")
}

/// The permissions the edge checks (POS-MODEL.md's names).
pub const ORDER_CREATE: &str = "order.create";
pub const ORDER_VOID: &str = "order.void";
pub const MENU_SOLD_OUT: &str = "menu.sold_out";

/// Why a staff-only action was refused, before anything was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// A device acted without a staff session.
    SessionRequired,
    /// The staff member's role lacks `permission`; `as_approver` when the
    /// staff member was asked to approve another's action.
    Lacks {
        staff: Staff,
        permission: &'static str,
        as_approver: bool,
    },
}

/// Who may do an action that needs `permission` (DESIGN.md §14): a device
/// only through a staff session whose role grants it; the admin token also
/// without a session (`Ok(None)`). Pure: the caller found the session.
pub fn authorize(
    by_device: bool,
    staff: Option<Staff>,
    permission: &'static str,
) -> Result<Option<Staff>, Denied> {
    match staff {
        None if by_device => Err(Denied::SessionRequired),
        None => Ok(None),
        Some(s) if !s.may(permission) => Err(Denied::Lacks {
            staff: s,
            permission,
            as_approver: false,
        }),
        Some(s) => Ok(Some(s)),
    }
}

/// Why a void was not authorized.
#[derive(Debug, thiserror::Error)]
pub enum VoidDenied {
    #[error("{0:?}")]
    Denied(Denied),
    /// The approver's PIN check failed (wrong, locked out).
    #[error(transparent)]
    Approver(#[from] StaffError),
}

/// Who voids and who approved (DESIGN.md §14): [`authorize`] for
/// `order.void`; when the session's role lacks it, an `approver` whose
/// PIN (checked and counted like a login, through `device`) and role do.
pub async fn authorize_void(
    db: &Db,
    by_device: bool,
    staff: Option<Staff>,
    approver: Option<&Login>,
    device: &str,
) -> Result<(Option<Staff>, Option<Staff>), VoidDenied> {
    match authorize(by_device, staff, ORDER_VOID) {
        Ok(s) => Ok((s, None)),
        Err(Denied::Lacks { staff, .. }) if approver.is_some() => {
            let login = approver.expect("checked just above");
            let a = check_pin(db, &login.user, &login.pin, device, "approve").await?;
            match authorize(false, Some(a), ORDER_VOID) {
                Ok(a) => Ok((Some(staff), a)),
                Err(Denied::Lacks { staff: a, .. }) => Err(VoidDenied::Denied(Denied::Lacks {
                    staff: a,
                    permission: ORDER_VOID,
                    as_approver: true,
                })),
                Err(e) => Err(VoidDenied::Denied(e)),
            }
        }
        Err(e) => Err(VoidDenied::Denied(e)),
    }
}

/// Why a login or a session was refused.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("wrong user or PIN")]
    WrongPin,
    #[error("too many wrong PINs for `{user}`: try again in {retry_after} s")]
    LockedOut { user: String, retry_after: i64 },
    #[error("the session is unknown, expired, or was made on another device: log in again")]
    BadSession,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored {what} does not decode: {message}")]
    Corrupt { what: String, message: String },
}

fn now_secs() -> i64 {
    Utc::now().timestamp()
}

fn rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A user as the access domain has it.
async fn user(conn: &mut SqliteConnection, id: &str) -> Result<Option<User>, StaffError> {
    match store::body(conn, EntityKind::User, id).await? {
        None => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| StaffError::Corrupt {
                what: format!("user `{id}`"),
                message: e.to_string(),
            }),
    }
}

/// Every permission `role` grants: its own, its parents' (followed once
/// each, so a cycle ends), canonical names.
async fn permissions(
    conn: &mut SqliteConnection,
    role: &str,
) -> Result<BTreeSet<String>, StaffError> {
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut todo = vec![role.to_owned()];
    while let Some(r) = todo.pop() {
        if !seen.insert(r.clone()) {
            continue;
        }
        let Some(v) = store::body(conn, EntityKind::Role, &r).await? else {
            continue;
        };
        let role: Role = serde_json::from_value(v).map_err(|e| StaffError::Corrupt {
            what: format!("role `{r}`"),
            message: e.to_string(),
        })?;
        for p in &role.permissions {
            let p = schemas::registry::canonical_permission(p).unwrap_or(p);
            out.insert(p.to_owned());
        }
        todo.extend(role.inherits.iter().map(|i| i.0.clone()));
    }
    Ok(out)
}

/// An argon2id hash no PIN matches, so that an unknown user costs the same
/// work as a known one.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXk$3Kg6m6cGSYvl2o2H0Wm0mJ4o9bVwaX8Fz9vQZ2k3n0s";

/// Whether `pin` matches `hash` (argon2, on a blocking thread).
/// PIN checks computed at once. Each Argon2 check takes about 19 MiB, and
/// the store page's login needs no token: more requests wait their turn
/// instead of running a small box out of memory.
static PIN_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Whether `user` and `pin` have the shape `POST /sessions` requires (a
/// slug; 4 to 12 digits). Anything else is a wrong PIN with no hash
/// computed, whichever way it came (the API's schema, or the store page's
/// form).
pub fn well_formed(user: &str, pin: &str) -> bool {
    schemas::primitives::is_slug(user)
        && (4..=12).contains(&pin.len())
        && pin.bytes().all(|b| b.is_ascii_digit())
}

async fn pin_matches(hash: Option<String>, pin: String) -> bool {
    // The semaphore is never closed.
    let _turn = PIN_CHECKS.acquire().await.ok();
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let ok = PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(pin.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && known
    })
    .await
    .unwrap_or(false)
}

/// Record one staff event in the audit chain, in `conn`'s transaction.
pub async fn record(
    conn: &mut SqliteConnection,
    actor: &Actor,
    kind: &str,
    entity_id: &str,
    detail: &Value,
) -> Result<(), sqlx::Error> {
    let mut head = audit::head(conn).await?;
    let time = store::now_rfc3339();
    let after = detail.to_string();
    let staged = audit::stage(
        &mut head,
        NewEntry {
            time: &time,
            actor,
            domain: "staff",
            kind,
            entity_id,
            action: kind,
            version: 0,
            before: None,
            after: Some(&after),
        },
    );
    audit::insert(conn, std::slice::from_ref(&staged)).await?;
    audit::store_head(conn, &head).await
}

/// Record a staff event in its own transaction.
pub async fn audit_event(
    db: &Db,
    actor: &Actor,
    kind: &str,
    entity_id: &str,
    detail: Value,
) -> Result<(), sqlx::Error> {
    let mut tx = db.writer.begin().await?;
    record(&mut tx, actor, kind, entity_id, &detail).await?;
    tx.commit().await
}

/// The lockout state of `user`: seconds left, if locked.
async fn locked_for(
    conn: &mut SqliteConnection,
    user: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let until: Option<Option<i64>> =
        sqlx::query_scalar("SELECT locked_until FROM pin_attempts WHERE user_id = ?")
            .bind(user)
            .fetch_optional(conn)
            .await?;
    Ok(until.flatten().filter(|u| *u > now).map(|u| u - now))
}

/// Check `user`'s PIN for `device` (the credential's actor): the user and
/// their permissions when it matches. Counts wrong PINs and locks out, and
/// records every outcome in the audit chain. `purpose` is `login` or
/// `approve`.
pub async fn check_pin(
    db: &Db,
    user_id: &str,
    pin: &str,
    device: &str,
    purpose: &str,
) -> Result<Staff, StaffError> {
    if !well_formed(user_id, pin) {
        return Err(StaffError::WrongPin);
    }
    let now = now_secs();
    let actor = Actor {
        name: actor_name(user_id, device),
        revision: None,
        commit: None,
    };
    {
        let mut conn = db.reader.acquire().await?;
        if let Some(left) = locked_for(&mut conn, user_id, now).await? {
            return Err(StaffError::LockedOut {
                user: user_id.to_owned(),
                retry_after: left,
            });
        }
    }
    let found = {
        let mut conn = db.reader.acquire().await?;
        user(&mut conn, user_id).await?
    };
    let hash = found
        .as_ref()
        .and_then(|u| u.pin_hash.as_ref())
        .and_then(|h| h.as_plain())
        .map(str::to_owned);
    let ok = pin_matches(hash, pin.to_owned()).await;
    let mut tx = db.writer.begin().await?;
    let Some(found) = found.filter(|_| ok) else {
        // Only a known user's wrong PINs are counted: unknown ids cannot
        // fill the table.
        if user(&mut tx, user_id).await?.is_none() {
            return Err(StaffError::WrongPin);
        }
        let row = sqlx::query("SELECT failures, window_start FROM pin_attempts WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let (failures, start) = match row {
            Some(r) if now - r.try_get::<i64, _>("window_start")? < FAILURE_WINDOW_SECS => (
                r.try_get::<i64, _>("failures")? + 1,
                r.try_get::<i64, _>("window_start")?,
            ),
            _ => (1, now),
        };
        let locked_until = (failures > MAX_FAILURES).then_some(now + LOCKOUT_SECS);
        sqlx::query(
            "INSERT INTO pin_attempts (user_id, failures, window_start, locked_until) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id) DO UPDATE SET \
             failures = excluded.failures, window_start = excluded.window_start, \
             locked_until = excluded.locked_until",
        )
        .bind(user_id)
        .bind(failures)
        .bind(start)
        .bind(locked_until)
        .execute(&mut *tx)
        .await?;
        let kind = if locked_until.is_some() {
            "lockout"
        } else {
            "pin_failed"
        };
        record(
            &mut tx,
            &actor,
            kind,
            user_id,
            &json!({"device": device, "purpose": purpose, "failures": failures}),
        )
        .await?;
        tx.commit().await?;
        if locked_until.is_some() {
            tracing::warn!(
                user = user_id,
                device,
                failures,
                "Too many wrong PINs; the user is locked out."
            );
            return Err(StaffError::LockedOut {
                user: user_id.to_owned(),
                retry_after: LOCKOUT_SECS,
            });
        }
        return Err(StaffError::WrongPin);
    };
    // Wrong PINs checked at the same time may have locked the user out
    // since the check above: a right PIN then counts for nothing.
    if let Some(left) = locked_for(&mut tx, user_id, now).await? {
        return Err(StaffError::LockedOut {
            user: user_id.to_owned(),
            retry_after: left,
        });
    }
    sqlx::query("DELETE FROM pin_attempts WHERE user_id = ?")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let permissions = permissions(&mut tx, found.role.as_str()).await?;
    if purpose == "login" {
        record(
            &mut tx,
            &actor,
            "login",
            user_id,
            &json!({"device": device}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Staff {
        user: user_id.to_owned(),
        role: found.role.0.clone(),
        permissions,
        device: device.to_owned(),
    })
}

/// Log in: a session for `staff`, made by `device`.
pub async fn open_session(db: &Db, staff: &Staff) -> Result<SessionAnswer, StaffError> {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let now = now_secs();
    let expires = now + SESSION_SECS;
    sqlx::query(
        "INSERT INTO staff_sessions (token_hash, user_id, device, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(crate::devices::hash(&token))
    .bind(&staff.user)
    .bind(&staff.device)
    .bind(rfc3339(now))
    .bind(expires)
    .execute(&db.writer)
    .await?;
    // Forget sessions that ended a day ago or more.
    sqlx::query("DELETE FROM staff_sessions WHERE expires_at < ?")
        .bind(now - 24 * 60 * 60)
        .execute(&db.writer)
        .await?;
    Ok(SessionAnswer {
        session: token,
        user: staff.user.clone(),
        role: staff.role.clone(),
        permissions: staff.permissions.iter().cloned().collect(),
        expires_at: rfc3339(expires),
    })
}

/// End the session of `token` (signing out).
pub async fn close_session(db: &Db, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM staff_sessions WHERE token_hash = ?")
        .bind(crate::devices::hash(token))
        .execute(&db.writer)
        .await?;
    Ok(())
}

/// The staff member behind `token`, presented by `device`, with the
/// permissions their role has now.
pub async fn session(db: &Db, token: &str, device: &str) -> Result<Staff, StaffError> {
    let mut conn = db.reader.acquire().await?;
    let row =
        sqlx::query("SELECT user_id, device, expires_at FROM staff_sessions WHERE token_hash = ?")
            .bind(crate::devices::hash(token))
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StaffError::BadSession)?;
    let user_id: String = row.try_get("user_id")?;
    let made_by: String = row.try_get("device")?;
    let expires: i64 = row.try_get("expires_at")?;
    if made_by != device || expires <= now_secs() {
        return Err(StaffError::BadSession);
    }
    // A user deleted since, or locked out since: the session ends.
    let found = user(&mut conn, &user_id)
        .await?
        .ok_or(StaffError::BadSession)?;
    if let Some(left) = locked_for(&mut conn, &user_id, now_secs()).await? {
        return Err(StaffError::LockedOut {
            user: user_id,
            retry_after: left,
        });
    }
    let permissions = permissions(&mut conn, found.role.as_str()).await?;
    Ok(Staff {
        user: user_id,
        role: found.role.0.clone(),
        permissions,
        device: device.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cashier() -> Staff {
        Staff {
            user: "sam".to_owned(),
            role: "cashier".to_owned(),
            permissions: [ORDER_CREATE.to_owned()].into(),
            device: "device:register-1".to_owned(),
        }
    }

    #[test]
    fn who_may_act() {
        // A device needs a session; the admin token does not.
        assert_eq!(
            authorize(true, None, ORDER_CREATE),
            Err(Denied::SessionRequired)
        );
        assert_eq!(authorize(false, None, ORDER_CREATE), Ok(None));
        // A session acts only with the permission (admin.all grants all).
        assert_eq!(
            authorize(true, Some(cashier()), ORDER_CREATE),
            Ok(Some(cashier()))
        );
        assert_eq!(
            authorize(false, Some(cashier()), ORDER_VOID),
            Err(Denied::Lacks {
                staff: cashier(),
                permission: ORDER_VOID,
                as_approver: false
            })
        );
        let mut admin = cashier();
        admin.permissions = [schemas::registry::ADMIN_ALL.to_owned()].into();
        assert!(authorize(true, Some(admin), MENU_SOLD_OUT).is_ok());
    }

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash_that_no_pin_matches() {
        let h = PasswordHash::new(DUMMY_HASH).expect("parses");
        assert_eq!(h.algorithm.as_str(), "argon2id");
        for pin in ["0000", "1234", ""] {
            assert!(
                Argon2::default()
                    .verify_password(pin.as_bytes(), &h)
                    .is_err()
            );
        }
    }
}
