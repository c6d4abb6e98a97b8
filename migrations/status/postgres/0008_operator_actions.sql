-- Operator actions (DESIGN.md §13): "reconcile now" and "collect a support
-- bundle", pressed on the store page and handed to the store in its
-- long-poll answer. An action is pending until the store answers it (a
-- report that names it, or a bundle uploaded for it); one delivered but not
-- answered is handed out again after a while, and one never answered
-- expires.
CREATE TABLE status_actions (
    id BIGSERIAL PRIMARY KEY,
    store TEXT NOT NULL,
    kind TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    delivered_at BIGINT,
    done_at BIGINT,
    result TEXT,
    detail TEXT,
    report_id BIGINT,
    bundle_id TEXT
);
CREATE INDEX status_actions_store ON status_actions (store, id);
CREATE INDEX status_actions_pending ON status_actions (store) WHERE done_at IS NULL;

-- A new action wakes the long-poll of its store on every replica: the
-- notification is sent when the inserting transaction commits, whichever
-- replica (or tool) inserted it. The payload is the store id.
CREATE FUNCTION status_actions_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('fleet_status_actions', NEW.store);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER status_actions_notify AFTER INSERT ON status_actions
    FOR EACH ROW EXECUTE FUNCTION status_actions_notify();

-- Support bundles live in the database, so that any replica can serve
-- one another replica received (DESIGN.md §13).
CREATE TABLE status_support_bundles (
    id TEXT PRIMARY KEY,
    store TEXT NOT NULL,
    key_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    size BIGINT NOT NULL,
    action_id BIGINT,
    body BYTEA NOT NULL
);
CREATE INDEX status_support_bundles_store ON status_support_bundles (store, received_at);
