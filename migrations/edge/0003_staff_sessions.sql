-- Staff sessions and permission checks (DESIGN.md §14, THREATS.md row 26).
-- A session is stored hashed, bound to the credential that made it
-- (`device:<name>` or `local:admin`), and survives a restart. Wrong PINs
-- are counted per user; past the limit the user is locked out until
-- `locked_until`. A voided order keeps its priced body; the void is here.
CREATE TABLE staff_sessions (
    token_hash TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    device     TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX staff_sessions_expiry ON staff_sessions (expires_at);

CREATE TABLE pin_attempts (
    user_id      TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER
) STRICT;

CREATE TABLE order_voids (
    order_id    TEXT PRIMARY KEY REFERENCES orders (id),
    voided_at   TEXT NOT NULL,
    voided_by   TEXT NOT NULL,
    approved_by TEXT,
    device      TEXT NOT NULL,
    reason      TEXT
) STRICT;
