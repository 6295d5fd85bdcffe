-- Cairn metadata schema, version 12 (SQLite): a compact audit log.
-- The payload is kept compressed (one format byte, then zstd with a dictionary; see
-- cairn-store's audit codec) and the hash as its 32 bytes. The digest and the previous event's
-- hash are no longer stored: the digest is the SHA-256 of the decoded payload and the previous
-- hash is the row before, so verification recomputes both and proves exactly what it did.
-- The old rows are converted by the migration's backfill (in Rust, which compresses), which
-- also checks the two dropped columns against what they are derived from, so no evidence of
-- earlier tampering is thrown away.

ALTER TABLE audit_events RENAME TO audit_events_v1;

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    entity_type TEXT    NOT NULL,
    entity_id   TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    hash        BLOB    NOT NULL
);

-- Verification checkpoints are events too; incremental verification starts from the newest.
CREATE INDEX audit_checkpoints ON audit_events (seq) WHERE action = 'verify_checkpoint';
