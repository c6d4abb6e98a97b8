-- Every signed request inserts a nonce, so the nonce table's indexes are
-- on the ingest's path (ADR 50):
--
-- - Key ids and nonces are identifiers, compared byte by byte (`"C"`), not
--   by the database's locale, which costs a collation call per comparison
--   in the primary key's B-tree.
-- - The minute's clean-up finds old nonces by `seen_at`. Nonces arrive in
--   time order, so a BRIN index (a range per block of rows) finds them as
--   well as a B-tree did and costs next to nothing per insert.
ALTER TABLE status_nonces
    ALTER COLUMN key_id TYPE TEXT COLLATE "C",
    ALTER COLUMN nonce TYPE TEXT COLLATE "C";
DROP INDEX status_nonces_seen;
CREATE INDEX status_nonces_seen ON status_nonces USING BRIN (seen_at);
