-- Cairn metadata schema, version 2 (PostgreSQL). Mirrors migrations/sqlite/0002_artifacts.sql;
-- see the comments there.

CREATE TABLE artifact_files (
    run_pk       BIGINT NOT NULL,
    path         TEXT   NOT NULL,
    digest       TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    created_time BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (run_pk, path)
);

CREATE INDEX artifact_files_by_digest ON artifact_files (digest);
