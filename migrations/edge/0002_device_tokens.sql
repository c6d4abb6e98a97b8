-- Device tokens (DESIGN.md §10): a LAN device (a register, a kitchen
-- screen) gets its own bearer token, stored hashed. A device token reads
-- configuration and takes orders; it never writes configuration and never
-- claims an identity by header. The admin token of --token-file is not here.
CREATE TABLE device_tokens (
    name       TEXT    PRIMARY KEY,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL,
    revoked_at TEXT
);
