-- Cairn metadata schema, version 12 (PostgreSQL): a compact audit log.
-- Mirrors migrations/sqlite/0012_compact_audit.sql; see the comments there. The head keeps
-- its hash as bytes too.

ALTER TABLE audit_events RENAME TO audit_events_v1;
ALTER TABLE audit_events_v1 RENAME CONSTRAINT audit_events_pkey TO audit_events_v1_pkey;

CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    time        BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    entity_type TEXT   NOT NULL,
    entity_id   TEXT   NOT NULL,
    payload     BYTEA  NOT NULL,
    hash        BYTEA  NOT NULL
);
-- Payloads are compressed already; TOAST compressing them again would only spend time.
ALTER TABLE audit_events ALTER COLUMN payload SET STORAGE EXTERNAL;

CREATE INDEX audit_checkpoints ON audit_events (seq) WHERE action = 'verify_checkpoint';

ALTER TABLE audit_head ALTER COLUMN hash TYPE BYTEA USING decode(hash, 'hex');
