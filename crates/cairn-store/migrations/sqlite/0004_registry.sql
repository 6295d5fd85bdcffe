-- Cairn metadata schema, version 4 (SQLite): the model registry.
-- A registered model is known inside by `model_pk`, which never changes and is never given to
-- another model (it is also recorded in the append-only history), so renames touch one row and
-- the history of a deleted model stays attributable. Its public identity is its name. Every
-- table carries `seq`, the audit event that last wrote the row.

CREATE TABLE registered_models (
    model_pk          INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    description       TEXT,
    -- Version numbers are never reused, not even after a version is deleted (as in MLflow).
    next_version      INTEGER NOT NULL,
    seq               INTEGER NOT NULL
);

CREATE TABLE registered_model_tags (
    model_pk INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (model_pk, key)
) WITHOUT ROWID;

CREATE TABLE model_versions (
    model_pk          INTEGER NOT NULL,
    version           INTEGER NOT NULL,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    user_id           TEXT    NOT NULL,
    current_stage     TEXT    NOT NULL,
    description       TEXT,
    source            TEXT    NOT NULL,
    run_id            TEXT,
    run_link          TEXT,
    status            TEXT    NOT NULL,
    status_message    TEXT,
    model_id          TEXT,
    -- `mv-<32 hex>` when the version's files are pinned in `model_version_files`.
    pin_id            TEXT    UNIQUE,
    seq               INTEGER NOT NULL,
    PRIMARY KEY (model_pk, version)
) WITHOUT ROWID;
CREATE INDEX model_versions_by_run ON model_versions (run_id);

CREATE TABLE model_version_tags (
    model_pk INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (model_pk, version, key)
) WITHOUT ROWID;

CREATE TABLE registered_model_aliases (
    model_pk INTEGER NOT NULL,
    alias    TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (model_pk, alias)
) WITHOUT ROWID;

-- The files a version serves, copied (path, digest, size) from its source at registration, so
-- that later changes to the run's or logged model's files cannot change the version.
CREATE TABLE model_version_files (
    pin_id       TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    digest       TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    created_time INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (pin_id, path)
) WITHOUT ROWID;
-- Garbage collection asks whether any row still names a blob.
CREATE INDEX model_version_files_by_digest ON model_version_files (digest);

-- Append-only: one row per registry change (alias moves, stage transitions, …), never updated
-- or deleted, not even with its model. `seq` is the audit event that made the change and
-- `entry` numbers the rows one event wrote. `name` is the model's name when the change was made.
CREATE TABLE model_history (
    seq              INTEGER NOT NULL,
    entry            INTEGER NOT NULL,
    model_pk         INTEGER NOT NULL,
    time             INTEGER NOT NULL,
    actor            TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    version          INTEGER,
    alias            TEXT,
    previous_version INTEGER,
    from_stage       TEXT,
    to_stage         TEXT,
    previous_name    TEXT,
    PRIMARY KEY (seq, entry)
) WITHOUT ROWID;
CREATE INDEX model_history_by_model ON model_history (model_pk, seq);
CREATE INDEX model_history_by_name ON model_history (name);
