-- Cairn metadata schema, version 1 (PostgreSQL). Never edit once landed: add a new numbered file.
-- Mirrors migrations/sqlite/0001_init.sql; see the comments there.

CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    time        BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    entity_type TEXT   NOT NULL,
    entity_id   TEXT   NOT NULL,
    payload     TEXT   NOT NULL,
    digest      TEXT   NOT NULL,
    prev_hash   TEXT   NOT NULL,
    hash        TEXT   NOT NULL
);

-- One row; locking it serialises appends to the chain across every server process.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT   NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE experiments (
    experiment_id     BIGINT PRIMARY KEY,
    name              TEXT   NOT NULL UNIQUE,
    artifact_location TEXT   NOT NULL,
    lifecycle_stage   TEXT   NOT NULL,
    creation_time     BIGINT NOT NULL,
    last_update_time  BIGINT NOT NULL,
    seq               BIGINT NOT NULL
);

CREATE TABLE experiment_tags (
    experiment_id BIGINT NOT NULL,
    key           TEXT   NOT NULL,
    value         TEXT   NOT NULL,
    seq           BIGINT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
    run_pk          BIGINT PRIMARY KEY,
    run_id          TEXT   NOT NULL UNIQUE,
    experiment_id   BIGINT NOT NULL,
    name            TEXT   NOT NULL,
    user_id         TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    start_time      BIGINT,
    end_time        BIGINT,
    lifecycle_stage TEXT   NOT NULL,
    deleted_time    BIGINT,
    artifact_uri    TEXT   NOT NULL,
    seq             BIGINT NOT NULL
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time);

CREATE TABLE params (
    run_pk BIGINT NOT NULL,
    key    TEXT   NOT NULL,
    value  TEXT   NOT NULL,
    seq    BIGINT NOT NULL,
    PRIMARY KEY (run_pk, key)
);

CREATE TABLE run_tags (
    run_pk BIGINT NOT NULL,
    key    TEXT   NOT NULL,
    value  TEXT   NOT NULL,
    seq    BIGINT NOT NULL,
    PRIMARY KEY (run_pk, key)
);

CREATE TABLE metric_keys (
    key_id BIGINT PRIMARY KEY,
    key    TEXT NOT NULL UNIQUE
);

CREATE TABLE metrics (
    run_pk    BIGINT           NOT NULL,
    key_id    BIGINT           NOT NULL,
    step      BIGINT           NOT NULL,
    timestamp BIGINT           NOT NULL,
    value     DOUBLE PRECISION NOT NULL,
    is_nan    SMALLINT         NOT NULL,
    seq       BIGINT           NOT NULL,
    PRIMARY KEY (run_pk, key_id, step, timestamp, value, is_nan)
);

CREATE TABLE latest_metrics (
    run_pk    BIGINT           NOT NULL,
    key_id    BIGINT           NOT NULL,
    step      BIGINT           NOT NULL,
    timestamp BIGINT           NOT NULL,
    value     DOUBLE PRECISION NOT NULL,
    is_nan    SMALLINT         NOT NULL,
    PRIMARY KEY (run_pk, key_id)
);
