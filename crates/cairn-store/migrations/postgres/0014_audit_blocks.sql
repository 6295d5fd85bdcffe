-- Cairn metadata schema, version 14 (PostgreSQL): older audit events sealed into blocks.
-- Mirrors migrations/sqlite/0014_audit_blocks.sql; see the comments there.

ALTER TABLE audit_events
    ALTER COLUMN actor DROP NOT NULL,
    ALTER COLUMN action DROP NOT NULL,
    ALTER COLUMN entity_type DROP NOT NULL,
    ALTER COLUMN entity_id DROP NOT NULL,
    ALTER COLUMN payload DROP NOT NULL,
    ALTER COLUMN hash DROP NOT NULL;

CREATE TABLE audit_blocks (
    last_seq  BIGINT PRIMARY KEY,
    first_seq BIGINT NOT NULL,
    body      BYTEA  NOT NULL,
    hash      BYTEA  NOT NULL
);
-- Bodies are compressed already.
ALTER TABLE audit_blocks ALTER COLUMN body SET STORAGE EXTERNAL;
