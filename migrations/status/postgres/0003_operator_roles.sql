-- Operator tokens get a public id, a role, an optional store scope, an
-- expiry and a revocation (DESIGN.md §10). Tokens made before this
-- migration keep working: editor role, no store scope, no expiry (operator
-- list shows them so they can be revoked).
ALTER TABLE status_operators ADD COLUMN id TEXT;
ALTER TABLE status_operators ADD COLUMN role TEXT NOT NULL DEFAULT 'editor';
ALTER TABLE status_operators ADD COLUMN stores TEXT NOT NULL DEFAULT '';
ALTER TABLE status_operators ADD COLUMN expires_at BIGINT;
ALTER TABLE status_operators ADD COLUMN revoked_at BIGINT;
UPDATE status_operators SET id = substr(token_hash, 1, 12) WHERE id IS NULL;
CREATE UNIQUE INDEX status_operators_id ON status_operators (id);
