-- The trust root version each store reported last (DESIGN.md §10), so
-- the overview can show and filter stores still on an old root.
ALTER TABLE status_stores ADD COLUMN root_version INTEGER;
