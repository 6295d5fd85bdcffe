-- Cairn metadata schema, version 1 (SQLite). Never edit once landed: add a new numbered file.
-- Every data row carries `seq`, the audit event that last wrote it, so that `cairn audit verify`
-- can compare the live tables with the hash-chained log.

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    entity_type TEXT    NOT NULL,
    entity_id   TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);

CREATE TABLE experiments (
    experiment_id     INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    artifact_location TEXT    NOT NULL,
    lifecycle_stage   TEXT    NOT NULL,
    creation_time     INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL,
    seq               INTEGER NOT NULL
);

CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL,
    key           TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;

CREATE TABLE runs (
    run_pk          INTEGER PRIMARY KEY,
    run_id          TEXT    NOT NULL UNIQUE,
    experiment_id   INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    start_time      INTEGER,
    end_time        INTEGER,
    lifecycle_stage TEXT    NOT NULL,
    deleted_time    INTEGER,
    artifact_uri    TEXT    NOT NULL,
    seq             INTEGER NOT NULL
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time);

CREATE TABLE params (
    run_pk INTEGER NOT NULL,
    key    TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (run_pk, key)
) WITHOUT ROWID;

CREATE TABLE run_tags (
    run_pk INTEGER NOT NULL,
    key    TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (run_pk, key)
) WITHOUT ROWID;

-- Metric keys are interned: a point stores a small integer instead of its key text.
CREATE TABLE metric_keys (
    key_id INTEGER PRIMARY KEY,
    key    TEXT NOT NULL UNIQUE
);

-- Clustered on the history lookup order; an exact duplicate point is stored once, as in MLflow.
CREATE TABLE metrics (
    run_pk    INTEGER NOT NULL,
    key_id    INTEGER NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL    NOT NULL,
    is_nan    INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (run_pk, key_id, step, timestamp, value, is_nan)
) WITHOUT ROWID;

-- Derived: the latest point per run and key (max step, then timestamp, then value), which
-- search filters and orderings use. Rebuildable from `metrics`.
CREATE TABLE latest_metrics (
    run_pk    INTEGER NOT NULL,
    key_id    INTEGER NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL    NOT NULL,
    is_nan    INTEGER NOT NULL,
    PRIMARY KEY (run_pk, key_id)
) WITHOUT ROWID;
