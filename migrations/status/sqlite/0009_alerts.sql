-- Alerts (DESIGN.md §13) keep their state in the database, so a restarted
-- service, or another replica, does not post again what was posted.
--
-- The conditions that held at the last alert round, as posted (`firing`).
CREATE TABLE status_alerts (
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    since INTEGER NOT NULL,
    PRIMARY KEY (kind, subject)
);

-- Events waiting for the receiver, oldest first; a row is deleted once the
-- receiver took it.
CREATE TABLE status_alert_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    at INTEGER NOT NULL
);
