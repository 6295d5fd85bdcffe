-- Cairn metadata schema, version 5 (SQLite): the lineage graph.
--
-- Nodes registered through the lineage API (dataset versions, slices, code versions,
-- environments, deployments) and anchors for tracking entities that edges or predictions refer
-- to (runs, logged models, model versions), whose attributes are read from the tracking tables.
-- A node is immutable once written. `recorded_at` is when Cairn learned of it; queries "as of"
-- a time see only what was recorded by then.
CREATE TABLE lineage_nodes (
    node_pk     INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    digest      TEXT,
    attributes  TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    UNIQUE (kind, key)
);

-- Edges point from the dependent node to what it depends on. `valid_from`/`valid_to` bound a
-- time-limited relation (a deployment serving a model version); ending one is the only update
-- an edge ever receives.
CREATE TABLE lineage_edges (
    edge_pk     INTEGER PRIMARY KEY,
    source_pk   INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    target_pk   INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    valid_from  INTEGER,
    valid_to    INTEGER,
    seq         INTEGER NOT NULL
);
CREATE INDEX lineage_edges_by_source ON lineage_edges (source_pk, kind);
CREATE INDEX lineage_edges_by_target ON lineage_edges (target_pk, kind);

-- Predictions arrive in bulk, so they are rows of their own rather than graph nodes; each
-- event that writes a batch records the count and digest of its rows.
CREATE TABLE predictions (
    prediction_pk    INTEGER PRIMARY KEY,
    prediction_id    TEXT    NOT NULL UNIQUE,
    deployment_pk    INTEGER,
    model_version_pk INTEGER,
    input_digest     TEXT    NOT NULL,
    output_digest    TEXT,
    time             INTEGER NOT NULL,
    recorded_at      INTEGER NOT NULL,
    lineage_complete INTEGER NOT NULL,
    seq              INTEGER NOT NULL
);
CREATE INDEX predictions_by_model_version ON predictions (model_version_pk);
CREATE INDEX predictions_by_seq ON predictions (seq);
