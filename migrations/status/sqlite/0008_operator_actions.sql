-- Operator actions (DESIGN.md §13): "reconcile now" and "collect a support
-- bundle", pressed on the store page and handed to the store in its
-- long-poll answer. An action is pending until the store answers it (a
-- report that names it, or a bundle uploaded for it); one delivered but not
-- answered is handed out again after a while, and one never answered
-- expires.
CREATE TABLE status_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store TEXT NOT NULL,
    kind TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    delivered_at INTEGER,
    done_at INTEGER,
    result TEXT,
    detail TEXT,
    report_id INTEGER,
    bundle_id TEXT
);
CREATE INDEX status_actions_store ON status_actions (store, id);
CREATE INDEX status_actions_pending ON status_actions (store) WHERE done_at IS NULL;

-- Support bundles live in the database, so that any replica can serve
-- one another replica received (DESIGN.md §13).
CREATE TABLE status_support_bundles (
    id TEXT PRIMARY KEY,
    store TEXT NOT NULL,
    key_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    size INTEGER NOT NULL,
    action_id INTEGER,
    body BLOB NOT NULL
);
CREATE INDEX status_support_bundles_store ON status_support_bundles (store, received_at);
