-- Cairn metadata schema, version 8 (SQLite): claims that order uploads against garbage collection
-- across processes (`sql::blob_claims`). Coordination only: not audited, safe to empty while no
-- server runs.
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
