-- The release apiVersions each store's reconciler said it reads in its
-- last report (DESIGN.md §9), space-separated; NULL for a reconciler that
-- does not say (it reads fleet/v1 only). `fleet sign --status-url` warns
-- before signing a release such a store would refuse.
ALTER TABLE status_stores ADD COLUMN release_api TEXT;
