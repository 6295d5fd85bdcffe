-- Cairn metadata schema, version 5 (PostgreSQL). Mirrors migrations/sqlite/0005_lineage.sql;
-- see the comments there.

CREATE TABLE lineage_nodes (
    node_pk     BIGINT PRIMARY KEY,
    kind        TEXT   NOT NULL,
    key         TEXT   NOT NULL,
    label       TEXT   NOT NULL,
    digest      TEXT,
    attributes  TEXT   NOT NULL,
    recorded_at BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    UNIQUE (kind, key)
);

CREATE TABLE lineage_edges (
    edge_pk     BIGINT PRIMARY KEY,
    source_pk   BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    target_pk   BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    valid_from  BIGINT,
    valid_to    BIGINT,
    seq         BIGINT NOT NULL
);
CREATE INDEX lineage_edges_by_source ON lineage_edges (source_pk, kind);
CREATE INDEX lineage_edges_by_target ON lineage_edges (target_pk, kind);

CREATE TABLE predictions (
    prediction_pk    BIGINT PRIMARY KEY,
    prediction_id    TEXT    NOT NULL UNIQUE,
    deployment_pk    BIGINT,
    model_version_pk BIGINT,
    input_digest     TEXT    NOT NULL,
    output_digest    TEXT,
    time             BIGINT  NOT NULL,
    recorded_at      BIGINT  NOT NULL,
    lineage_complete INTEGER NOT NULL,
    seq              BIGINT  NOT NULL
);
CREATE INDEX predictions_by_model_version ON predictions (model_version_pk);
CREATE INDEX predictions_by_seq ON predictions (seq);
