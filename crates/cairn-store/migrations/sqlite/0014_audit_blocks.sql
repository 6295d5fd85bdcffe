-- Cairn metadata schema, version 14 (SQLite): older audit events sealed into blocks.
-- Every `audit_blocks` row holds BLOCK consecutive events compressed together (see cairn-store's
-- audit_blocks module) and the stored hash of its last event, the anchor the recomputed chain
-- must reach. A sealed event's row keeps its seq and time (what lineage joins on), and a
-- checkpoint's its action; the other columns become NULL, so they may now be.
-- The migration's backfill seals the blocks an existing log already has.

ALTER TABLE audit_events RENAME TO audit_events_v2;

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,
    actor       TEXT,
    action      TEXT,
    entity_type TEXT,
    entity_id   TEXT,
    payload     BLOB,
    hash        BLOB
);
INSERT INTO audit_events SELECT seq, time, actor, action, entity_type, entity_id, payload, hash FROM audit_events_v2;
DROP TABLE audit_events_v2;

CREATE INDEX audit_checkpoints ON audit_events (seq) WHERE action = 'verify_checkpoint';

CREATE TABLE audit_blocks (
    last_seq  INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    body      BLOB    NOT NULL,
    hash      BLOB    NOT NULL
);
