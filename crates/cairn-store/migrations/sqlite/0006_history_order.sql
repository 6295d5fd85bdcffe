-- Cairn metadata schema, version 6 (SQLite): whether a metric's history is already in MLflow's order.
--
-- `metrics` is clustered on (step, timestamp, value), but MLflow returns a history ordered by
-- (timestamp, step, value). The two orders agree exactly when the timestamps never decrease
-- along the clustering order, which is how training loops log. `in_order = 1` records that this
-- holds for the run's points of this key, so a history page can be read straight off the
-- primary key instead of sorting the whole series for every page. Writers keep it, clearing it
-- when a point might break the order; 0 only means "sort to be sure".
ALTER TABLE latest_metrics ADD COLUMN in_order INTEGER NOT NULL DEFAULT 0;

-- Histories written before this migration are checked once here.
UPDATE latest_metrics SET in_order = CASE WHEN EXISTS (
    SELECT 1 FROM (
        SELECT m.timestamp,
               LAG(m.timestamp) OVER (ORDER BY m.step, m.timestamp, m.value, m.is_nan) AS previous
        FROM metrics m
        WHERE m.run_pk = latest_metrics.run_pk AND m.key_id = latest_metrics.key_id
    ) ordered
    WHERE ordered.timestamp < ordered.previous
) THEN 0 ELSE 1 END;
