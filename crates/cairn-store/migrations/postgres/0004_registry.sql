-- Cairn metadata schema, version 4 (PostgreSQL). Mirrors migrations/sqlite/0004_registry.sql;
-- see the comments there.

CREATE TABLE registered_models (
    model_pk          BIGINT PRIMARY KEY,
    name              TEXT   NOT NULL UNIQUE,
    creation_time     BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description       TEXT,
    next_version      BIGINT NOT NULL,
    seq               BIGINT NOT NULL
);

CREATE TABLE registered_model_tags (
    model_pk BIGINT NOT NULL,
    key      TEXT   NOT NULL,
    value    TEXT   NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (model_pk, key)
);

CREATE TABLE model_versions (
    model_pk          BIGINT NOT NULL,
    version           BIGINT NOT NULL,
    creation_time     BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    user_id           TEXT   NOT NULL,
    current_stage     TEXT   NOT NULL,
    description       TEXT,
    source            TEXT   NOT NULL,
    run_id            TEXT,
    run_link          TEXT,
    status            TEXT   NOT NULL,
    status_message    TEXT,
    model_id          TEXT,
    pin_id            TEXT   UNIQUE,
    seq               BIGINT NOT NULL,
    PRIMARY KEY (model_pk, version)
);
CREATE INDEX model_versions_by_run ON model_versions (run_id);

CREATE TABLE model_version_tags (
    model_pk BIGINT NOT NULL,
    version  BIGINT NOT NULL,
    key      TEXT   NOT NULL,
    value    TEXT   NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (model_pk, version, key)
);

CREATE TABLE registered_model_aliases (
    model_pk BIGINT NOT NULL,
    alias    TEXT   NOT NULL,
    version  BIGINT NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (model_pk, alias)
);

CREATE TABLE model_version_files (
    pin_id       TEXT   NOT NULL,
    path         TEXT   NOT NULL,
    digest       TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    created_time BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (pin_id, path)
);
CREATE INDEX model_version_files_by_digest ON model_version_files (digest);

CREATE TABLE model_history (
    seq              BIGINT NOT NULL,
    entry            BIGINT NOT NULL,
    model_pk         BIGINT NOT NULL,
    time             BIGINT NOT NULL,
    actor            TEXT   NOT NULL,
    kind             TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    version          BIGINT,
    alias            TEXT,
    previous_version BIGINT,
    from_stage       TEXT,
    to_stage         TEXT,
    previous_name    TEXT,
    PRIMARY KEY (seq, entry)
);
CREATE INDEX model_history_by_model ON model_history (model_pk, seq);
CREATE INDEX model_history_by_name ON model_history (name);
