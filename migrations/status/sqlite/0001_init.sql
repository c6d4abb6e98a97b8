-- fleet-status schema (SQLite). Times are unix seconds; booleans are 0/1.
CREATE TABLE status_bootstrap_tokens (
    token_hash TEXT PRIMARY KEY,
    store TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

CREATE TABLE status_nodes (
    key_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    store TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX status_nodes_store ON status_nodes (store);

CREATE TABLE status_nonces (
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX status_nonces_seen ON status_nonces (seen_at);

CREATE TABLE status_operators (
    token_hash TEXT PRIMARY KEY,
    tenants TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE status_stores (
    store TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    in_repo INTEGER NOT NULL DEFAULT 0,
    desired_revision INTEGER,
    desired_commit TEXT,
    expires_at INTEGER,
    release_valid INTEGER NOT NULL DEFAULT 0,
    release_error TEXT,
    checked_at INTEGER,
    last_seen INTEGER,
    last_outcome TEXT,
    applied_revision INTEGER,
    last_drift INTEGER NOT NULL DEFAULT 0,
    last_overridden INTEGER NOT NULL DEFAULT 0,
    reconciler_version TEXT
);

CREATE TABLE status_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store TEXT NOT NULL,
    key_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    desired_revision INTEGER,
    applied_revision INTEGER,
    source_commit TEXT,
    body TEXT NOT NULL
);
CREATE INDEX status_reports_store ON status_reports (store, id);

CREATE TABLE status_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    store TEXT,
    result TEXT NOT NULL,
    detail TEXT NOT NULL
);
