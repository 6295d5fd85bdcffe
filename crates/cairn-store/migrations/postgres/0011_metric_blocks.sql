-- Cairn metadata schema, version 11 (PostgreSQL). Mirrors migrations/sqlite/0011_metric_blocks.sql;
-- see the comments there (`>>` on bigint is an arithmetic shift here too, a floor division).
CREATE TABLE metric_blocks (
    run_pk    BIGINT           NOT NULL,
    key_id    BIGINT           NOT NULL,
    block     BIGINT           NOT NULL,
    points    BIGINT           NOT NULL,
    min_value DOUBLE PRECISION,
    max_value DOUBLE PRECISION,
    PRIMARY KEY (run_pk, key_id, block)
);

INSERT INTO metric_blocks (run_pk, key_id, block, points, min_value, max_value)
SELECT run_pk, key_id, step >> 6, COUNT(*),
       MIN(CASE WHEN is_nan = 0 THEN value END), MAX(CASE WHEN is_nan = 0 THEN value END)
FROM metrics
GROUP BY run_pk, key_id, step >> 6;
