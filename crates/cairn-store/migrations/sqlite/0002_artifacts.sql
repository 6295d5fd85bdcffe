-- Cairn metadata schema, version 2 (SQLite): the per-run artifact manifest.
-- Each row maps one artifact path of a run to the content-addressed blob holding its bytes
-- (SHA-256, lowercase hex). Writing a path again replaces its row. `seq` is the audit event
-- that last wrote the row, as in every audited table.

CREATE TABLE artifact_files (
    run_pk       INTEGER NOT NULL,
    path         TEXT    NOT NULL,
    digest       TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    created_time INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (run_pk, path)
) WITHOUT ROWID;

-- Garbage collection asks whether any row still names a blob.
CREATE INDEX artifact_files_by_digest ON artifact_files (digest);
