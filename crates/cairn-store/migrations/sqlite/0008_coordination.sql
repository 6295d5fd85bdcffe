-- Cairn metadata schema, version 8 (SQLite): how server processes sharing this database
-- coordinate. Coordination only: nothing here is audited, and it is safe to empty while no server
-- runs.

-- Claims that order uploads against garbage collection across processes (`sql::blob_claims`).
CREATE TABLE blob_pins (
    digest     TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (digest, holder)
);

CREATE TABLE blob_deletions (
    digest     TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Leases that let one process at a time do a job (`sql::leases`), with the position it reached,
-- so that another process takes over where the last one stopped.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT,
    expires_at INTEGER NOT NULL,
    cursor     INTEGER
);
