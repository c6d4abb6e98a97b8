-- fleet-edge: the store's applied configuration, its audit log, and orders.
--
-- Configuration entities are stored as the canonical JSON of their
-- POS-MODEL.md body (what `schemas` serializes), one row per (kind, id).
-- `entity_refs` and `catalog_members` are indexes derived from those bodies,
-- rewritten with every write, so that integrity checks and order pricing never
-- scan the whole catalog.

-- One monotonically increasing version counter for the whole database: every
-- configuration write (create, update, delete, override) takes the next value,
-- so a deleted and re-created entity never reuses a version.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('version_counter', 0);

CREATE TABLE entities (
    kind           TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    local_override INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;

-- Outgoing references of an entity: (kind, id).field → (ref_kind, ref_id).
CREATE TABLE entity_refs (
    kind     TEXT NOT NULL,
    id       TEXT NOT NULL,
    field    TEXT NOT NULL,
    ref_kind TEXT NOT NULL,
    ref_id   TEXT NOT NULL
) STRICT;
CREATE INDEX entity_refs_from ON entity_refs (kind, id);
CREATE INDEX entity_refs_to ON entity_refs (ref_kind, ref_id);

-- Variations of items and modifiers of modifier groups, for order pricing and
-- for the rule that a variation (modifier) belongs to one item (group) only.
CREATE TABLE catalog_members (
    member_kind TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    parent_kind TEXT NOT NULL,
    parent_id   TEXT NOT NULL
) STRICT;
CREATE INDEX catalog_members_member ON catalog_members (member_kind, member_id);
CREATE INDEX catalog_members_parent ON catalog_members (parent_kind, parent_id);

-- Append-only, hash-chained audit log of every configuration write.
-- hash = SHA-256 over the canonical encoding of every other column
-- (see edge/src/audit.rs); prev_hash is the hash of the entry before.
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    time          TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    revision      INTEGER,
    source_commit TEXT,
    domain        TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    entity_id     TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    before        TEXT,
    after         TEXT,
    prev_hash     TEXT    NOT NULL,
    hash          TEXT    NOT NULL
) STRICT;

-- The API never updates or deletes audit entries; these triggers make that a
-- database rule too. They do not stop someone who edits the file (they can drop
-- the triggers): the hash chain is what detects that.
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- The last entry's seq and hash, written in the same transaction as the entry:
-- deleting entries at the tail of the log is detected against it.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Orders and their kitchen tickets: written by POST /orders only, never
-- touched by configuration writes.
CREATE TABLE orders (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL,
    body       TEXT    NOT NULL
) STRICT;

CREATE TABLE tickets (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id   TEXT    NOT NULL REFERENCES orders (id),
    station    TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    body       TEXT    NOT NULL
) STRICT;
CREATE INDEX tickets_station ON tickets (station, seq);
