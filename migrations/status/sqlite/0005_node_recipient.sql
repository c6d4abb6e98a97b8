-- Each node's age recipient (DESIGN.md §11): the X25519 public key the
-- store decrypts its secret values with, sent at enrollment.
ALTER TABLE status_nodes ADD COLUMN recipient TEXT;
