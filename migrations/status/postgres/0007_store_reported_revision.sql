-- The desired revision each store's last report named: the release it
-- verified (and may hold, scheduled or waiting for a window). Rollout gates
-- (DESIGN.md §12) judge a store against the revision it reported, not the
-- one the repo offers now.
ALTER TABLE status_stores ADD COLUMN reported_revision BIGINT;
