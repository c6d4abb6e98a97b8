//! Several `fleet-status` replicas on one PostgreSQL (DESIGN.md §13).
//!
//! - **One fetch at a time.** A replica takes a PostgreSQL advisory lock
//!   ([`FETCH_LOCK`]) on a connection of its own before it fetches the
//!   fleet repo, and gives it back after it recorded what it found; the
//!   other replicas' fetch loops wait their turn. A replica killed while it
//!   holds the lock loses its connection, and PostgreSQL gives the lock up.
//! - **A change wakes every replica.** After a fetch that recorded desired
//!   revisions a replica sends `NOTIFY` on [`CHANNEL`] with its own id; the
//!   others, listening, wake the long-polls they hold (the rows are in the
//!   database already) and fetch themselves, so that their release relay
//!   and rollout view catch up.
//!
//! - **An operator action wakes its store's long-poll wherever it is
//!   held.** The insert's trigger notifies [`ACTIONS_CHANNEL`] with the
//!   store id; every replica wakes the long-polls it holds for that store.
//!
//! - **One alert round at a time.** Each round, a replica tries the
//!   advisory lock [`ALERT_LOCK`]; the one that gets it records the alert
//!   conditions and posts the queued events (their state is in the
//!   database, so which replica runs a round does not matter), the others
//!   only update their gauges.
//!
//! With SQLite there is one replica: [`Cluster::for_url`] answers `None`
//! and none of this runs.

use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnection, PgListener};
use tokio::sync::Mutex;
use tracing::{info, warn};

/// The `NOTIFY` channel of recorded desired revisions.
pub const CHANNEL: &str = "fleet_status_desired";

/// The `NOTIFY` channel of operator actions: the trigger on
/// `status_actions` sends the store id when an insert commits
/// (`migrations/status/postgres/0008_operator_actions.sql`).
pub const ACTIONS_CHANNEL: &str = "fleet_status_actions";

/// The advisory lock key of a fleet repo fetch ("fleetgit").
pub const FETCH_LOCK: i64 = 0x666c_6565_7467_6974;

/// The advisory lock key of an alert round ("fleetalr"): one replica at a
/// time records alert conditions and posts the queued events
/// ([`crate::alerts`]).
pub const ALERT_LOCK: i64 = 0x666c_6565_7461_6c72;

/// This replica's view of the others.
#[derive(Debug)]
pub struct Cluster {
    url: String,
    /// Names this replica in its notifications, so it ignores its own.
    id: String,
    /// The connection that holds the fetch lock and sends notifications.
    fetch: Mutex<Option<PgConnection>>,
    /// The connection that holds the alert lock.
    alerts: Mutex<Option<PgConnection>>,
}

/// An advisory lock of this replica, held until [`Lock::release`] (or
/// until the connection that holds it is lost).
pub struct Lock<'a> {
    cluster: &'a Cluster,
    key: i64,
    conn: tokio::sync::MutexGuard<'a, Option<PgConnection>>,
}

impl std::fmt::Debug for Lock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("replica", &self.cluster.id)
            .field("key", &self.key)
            .finish()
    }
}

impl Cluster {
    /// The cluster of a PostgreSQL database; `None` for SQLite.
    pub fn for_url(url: &str) -> Option<Cluster> {
        (url.starts_with("postgres://") || url.starts_with("postgresql://")).then(|| Cluster {
            url: url.to_owned(),
            id: crate::tokens::nonce(),
            fetch: Mutex::new(None),
            alerts: Mutex::new(None),
        })
    }

    /// This replica's id in notifications.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Wait for the fetch lock (other replicas may be fetching).
    pub async fn lock_fetch(&self) -> Result<Lock<'_>, sqlx::Error> {
        let lock = self.advisory(&self.fetch, FETCH_LOCK, true).await?;
        Ok(lock.expect("a waiting lock is always taken"))
    }

    /// The alert lock if no other replica holds it now; `None` when one
    /// does (it runs this round).
    pub async fn try_lock_alerts(&self) -> Result<Option<Lock<'_>>, sqlx::Error> {
        self.advisory(&self.alerts, ALERT_LOCK, false).await
    }

    /// Take the advisory lock `key` on the connection of `slot` (made when
    /// there is none): wait for it, or only try.
    async fn advisory<'a>(
        &'a self,
        slot: &'a Mutex<Option<PgConnection>>,
        key: i64,
        wait: bool,
    ) -> Result<Option<Lock<'a>>, sqlx::Error> {
        let mut conn = slot.lock().await;
        if conn.is_none() {
            *conn = Some(PgConnection::connect(&self.url).await?);
        }
        let c = conn.as_mut().expect("connected above");
        let sql = if wait {
            "SELECT true FROM pg_advisory_lock($1)"
        } else {
            "SELECT pg_try_advisory_lock($1)"
        };
        match sqlx::query_scalar::<_, bool>(sql)
            .bind(key)
            .fetch_one(&mut *c)
            .await
        {
            Ok(true) => Ok(Some(Lock {
                cluster: self,
                key,
                conn,
            })),
            Ok(false) => Ok(None),
            Err(e) => {
                // A broken connection is made again next time.
                *conn = None;
                Err(e)
            }
        }
    }
}

impl Lock<'_> {
    /// Tell the other replicas that desired revisions were recorded.
    pub async fn notify(&mut self) -> Result<(), sqlx::Error> {
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&self.cluster.id)
            .execute(c)
            .await
            .map(|_| ())
    }

    /// Give the lock back. If that fails the connection is closed, which
    /// gives it back too.
    pub async fn release(mut self) {
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .execute(&mut *c)
            .await;
        if let Err(e) = unlocked {
            warn!(error = %e, key = self.key, "Releasing an advisory lock failed; closing its connection releases it.");
            if let Some(c) = self.conn.take() {
                let _ = c.close().await;
            }
        }
    }
}

/// Listen for other replicas' notifications until the process ends:
/// `woken` for each fetch that recorded revisions, `asked` with the store
/// id for each operator action (any replica's, this one's too). The
/// connection is made again after a second when it is lost; a
/// notification may be missed then, so both are called after each
/// reconnection (`asked` with `None`: any store).
pub async fn listen(
    url: String,
    id: String,
    woken: impl Fn() + Send + 'static,
    asked: impl Fn(Option<&str>) + Send + 'static,
) {
    let mut first = true;
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "Cannot listen for other replicas' fetches; retrying in a second.");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen_all([CHANNEL, ACTIONS_CHANNEL]).await {
            warn!(error = %e, "Cannot listen for other replicas' fetches; retrying in a second.");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if !first {
            woken();
            asked(None);
        }
        first = false;
        info!(channel = CHANNEL, "Listening for other replicas' fetches.");
        loop {
            match listener.recv().await {
                Ok(n) if n.channel() == ACTIONS_CHANNEL => asked(Some(n.payload())),
                Ok(n) if n.payload() == id => {}
                Ok(_) => woken(),
                Err(e) => {
                    warn!(error = %e, "Lost the connection that listens for other replicas; reconnecting.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}
