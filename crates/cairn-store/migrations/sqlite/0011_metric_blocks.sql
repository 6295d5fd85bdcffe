-- Cairn metadata schema, version 11 (SQLite): per-block rollups of metric histories.
--
-- A downsampled history (`sql::sampled`) needs, per bucket of steps, the number of points and
-- their extremes. Summing a million rows for that costs a scan of the million rows, so each
-- series is also kept as blocks of 64 consecutive steps (`block` = step >> 6, a floor division
-- that also holds for negative steps): per block, how many points it holds and the least and
-- greatest value other than NaN (NULL when every value is NaN). A bucket then reads its whole
-- blocks here and only the partial blocks at its edges from `metrics`.
--
-- Derived from `metrics` and rebuildable from it. Writers keep it in the transaction that
-- inserts the points, counting only points actually inserted (an exact duplicate is stored
-- once, and so counted once); points are never updated in place, so counts and extremes only
-- grow. The block's last point is not kept: a bucket's last point is one probe of the primary
-- key of `metrics`.
CREATE TABLE metric_blocks (
    run_pk    INTEGER NOT NULL,
    key_id    INTEGER NOT NULL,
    block     INTEGER NOT NULL,
    points    INTEGER NOT NULL,
    min_value REAL,
    max_value REAL,
    PRIMARY KEY (run_pk, key_id, block)
) WITHOUT ROWID;

-- Histories written before this migration are rolled up once here.
INSERT INTO metric_blocks (run_pk, key_id, block, points, min_value, max_value)
SELECT run_pk, key_id, step >> 6, COUNT(*),
       MIN(CASE WHEN is_nan = 0 THEN value END), MAX(CASE WHEN is_nan = 0 THEN value END)
FROM metrics
GROUP BY run_pk, key_id, step >> 6;
