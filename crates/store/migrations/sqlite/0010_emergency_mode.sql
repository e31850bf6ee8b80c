-- Emergency read-only mode (45 CFR 164.308(a)(7)(ii)(C)): one row while it is on. Every
-- node's record commit reads it in its own transaction, so a switch holds at once, everywhere.
CREATE TABLE emergency_mode (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    since_ms BIGINT NOT NULL,
    set_by   TEXT NOT NULL,
    reason   TEXT NOT NULL
);
