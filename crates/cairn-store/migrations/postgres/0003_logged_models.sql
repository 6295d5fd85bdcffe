-- Cairn metadata schema, version 3 (PostgreSQL). Mirrors migrations/sqlite/0003_logged_models.sql;
-- see the comments there.

CREATE TABLE logged_models (
    model_pk          BIGINT PRIMARY KEY,
    model_id          TEXT   NOT NULL UNIQUE,
    experiment_id     BIGINT NOT NULL,
    name              TEXT   NOT NULL,
    artifact_location TEXT   NOT NULL,
    creation_time     BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    status            TEXT   NOT NULL,
    status_message    TEXT,
    model_type        TEXT,
    source_run_id     TEXT,
    lifecycle_stage   TEXT   NOT NULL,
    seq               BIGINT NOT NULL
);
CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, creation_time);

CREATE TABLE logged_model_tags (
    model_pk BIGINT NOT NULL,
    key      TEXT   NOT NULL,
    value    TEXT   NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (model_pk, key)
);

CREATE TABLE logged_model_params (
    model_pk BIGINT NOT NULL,
    key      TEXT   NOT NULL,
    value    TEXT   NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (model_pk, key)
);

CREATE TABLE logged_model_metrics (
    model_pk       BIGINT NOT NULL,
    key            TEXT   NOT NULL,
    step           BIGINT NOT NULL,
    timestamp      BIGINT NOT NULL,
    value          DOUBLE PRECISION NOT NULL,
    is_nan         BIGINT NOT NULL,
    run_pk         BIGINT NOT NULL,
    dataset_name   TEXT   NOT NULL,
    dataset_digest TEXT   NOT NULL,
    seq            BIGINT NOT NULL,
    PRIMARY KEY (model_pk, key, step, timestamp, value, is_nan, run_pk, dataset_name, dataset_digest)
);

CREATE TABLE logged_model_files (
    model_pk     BIGINT NOT NULL,
    path         TEXT   NOT NULL,
    digest       TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    created_time BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (model_pk, path)
);
CREATE INDEX logged_model_files_by_digest ON logged_model_files (digest);

CREATE TABLE datasets (
    dataset_pk      BIGINT PRIMARY KEY,
    dataset_uuid    TEXT   NOT NULL UNIQUE,
    experiment_id   BIGINT NOT NULL,
    name            TEXT   NOT NULL,
    digest          TEXT   NOT NULL,
    source_type     TEXT   NOT NULL,
    source          TEXT   NOT NULL,
    dataset_schema  TEXT,
    dataset_profile TEXT,
    seq             BIGINT NOT NULL,
    UNIQUE (experiment_id, name, digest)
);

CREATE TABLE run_dataset_inputs (
    run_pk     BIGINT NOT NULL,
    dataset_pk BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (run_pk, dataset_pk)
);

CREATE TABLE run_input_tags (
    run_pk     BIGINT NOT NULL,
    dataset_pk BIGINT NOT NULL,
    key        TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (run_pk, dataset_pk, key)
);

CREATE TABLE run_model_inputs (
    run_pk   BIGINT NOT NULL,
    model_pk BIGINT NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (run_pk, model_pk)
);

CREATE TABLE run_model_outputs (
    run_pk   BIGINT NOT NULL,
    model_pk BIGINT NOT NULL,
    step     BIGINT NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (run_pk, model_pk, step)
);
