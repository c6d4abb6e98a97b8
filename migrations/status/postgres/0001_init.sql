-- fleet-status schema (PostgreSQL). Times are unix seconds; booleans are 0/1.
CREATE TABLE status_bootstrap_tokens (
    token_hash TEXT PRIMARY KEY,
    store TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE status_nodes (
    key_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    store TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX status_nodes_store ON status_nodes (store);

CREATE TABLE status_nonces (
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX status_nonces_seen ON status_nonces (seen_at);

CREATE TABLE status_operators (
    token_hash TEXT PRIMARY KEY,
    tenants TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE status_stores (
    store TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    in_repo BIGINT NOT NULL DEFAULT 0,
    desired_revision BIGINT,
    desired_commit TEXT,
    expires_at BIGINT,
    release_valid BIGINT NOT NULL DEFAULT 0,
    release_error TEXT,
    checked_at BIGINT,
    last_seen BIGINT,
    last_outcome TEXT,
    applied_revision BIGINT,
    last_drift BIGINT NOT NULL DEFAULT 0,
    last_overridden BIGINT NOT NULL DEFAULT 0,
    reconciler_version TEXT
);

CREATE TABLE status_reports (
    id BIGSERIAL PRIMARY KEY,
    store TEXT NOT NULL,
    key_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    desired_revision BIGINT,
    applied_revision BIGINT,
    source_commit TEXT,
    body TEXT NOT NULL
);
CREATE INDEX status_reports_store ON status_reports (store, id);

CREATE TABLE status_audit (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    store TEXT,
    result TEXT NOT NULL,
    detail TEXT NOT NULL
);
