-- Store-owned availability (DESIGN.md §14): a variation staff marked
-- unavailable (86'd) at the store until its business day ends. The
-- reconciler never writes it; `until` is unix seconds, UTC.
CREATE TABLE unavailable (
    variation TEXT    PRIMARY KEY,
    set_by    TEXT    NOT NULL,
    device    TEXT    NOT NULL,
    set_at    TEXT    NOT NULL,
    until     INTEGER NOT NULL
) STRICT;
