-- Cairn metadata schema, version 3 (SQLite): MLflow 3's logged models, the datasets runs use,
-- and what runs consume and produce. Never edit once landed: add a new numbered file.
-- Every table carries `seq`, the audit event that last wrote the row. Models, datasets and
-- runs are referenced by integer surrogate keys; public ids live only in their own tables.

CREATE TABLE logged_models (
    model_pk          INTEGER PRIMARY KEY,
    model_id          TEXT    NOT NULL UNIQUE,
    experiment_id     INTEGER NOT NULL,
    name              TEXT    NOT NULL,
    artifact_location TEXT    NOT NULL,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    status            TEXT    NOT NULL,
    status_message    TEXT,
    model_type        TEXT,
    source_run_id     TEXT,
    lifecycle_stage   TEXT    NOT NULL,
    seq               INTEGER NOT NULL
);
-- Searches are scoped to experiments and ordered newest first by default.
CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, creation_time);

CREATE TABLE logged_model_tags (
    model_pk INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (model_pk, key)
) WITHOUT ROWID;

CREATE TABLE logged_model_params (
    model_pk INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (model_pk, key)
) WITHOUT ROWID;

-- Metric points a run logged with a model id, kept beside (not in) `metrics` so that the ingest
-- path of ordinary points is untouched. A missing dataset is stored as '' so that the primary
-- key, which drops exact duplicates, has no NULL column.
CREATE TABLE logged_model_metrics (
    model_pk       INTEGER NOT NULL,
    key            TEXT    NOT NULL,
    step           INTEGER NOT NULL,
    timestamp      INTEGER NOT NULL,
    value          REAL    NOT NULL,
    is_nan         INTEGER NOT NULL,
    run_pk         INTEGER NOT NULL,
    dataset_name   TEXT    NOT NULL,
    dataset_digest TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    PRIMARY KEY (model_pk, key, step, timestamp, value, is_nan, run_pk, dataset_name, dataset_digest)
) WITHOUT ROWID;

-- A logged model's artifact manifest, as `artifact_files` is a run's.
CREATE TABLE logged_model_files (
    model_pk     INTEGER NOT NULL,
    path         TEXT    NOT NULL,
    digest       TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    created_time INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (model_pk, path)
) WITHOUT ROWID;
CREATE INDEX logged_model_files_by_digest ON logged_model_files (digest);

-- A dataset version is stored once per experiment, however many runs log it.
CREATE TABLE datasets (
    dataset_pk      INTEGER PRIMARY KEY,
    dataset_uuid    TEXT    NOT NULL UNIQUE,
    experiment_id   INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    digest          TEXT    NOT NULL,
    source_type     TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    dataset_schema  TEXT,
    dataset_profile TEXT,
    seq             INTEGER NOT NULL,
    UNIQUE (experiment_id, name, digest)
);

CREATE TABLE run_dataset_inputs (
    run_pk     INTEGER NOT NULL,
    dataset_pk INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (run_pk, dataset_pk)
) WITHOUT ROWID;

-- Tags of one dataset input (`mlflow.data.context` = training, ...), written with the input.
CREATE TABLE run_input_tags (
    run_pk     INTEGER NOT NULL,
    dataset_pk INTEGER NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (run_pk, dataset_pk, key)
) WITHOUT ROWID;

CREATE TABLE run_model_inputs (
    run_pk   INTEGER NOT NULL,
    model_pk INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (run_pk, model_pk)
) WITHOUT ROWID;

CREATE TABLE run_model_outputs (
    run_pk   INTEGER NOT NULL,
    model_pk INTEGER NOT NULL,
    step     INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (run_pk, model_pk, step)
) WITHOUT ROWID;
