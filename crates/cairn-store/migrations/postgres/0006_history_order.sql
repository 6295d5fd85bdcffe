-- Cairn metadata schema, version 6 (PostgreSQL). Mirrors migrations/sqlite/0006_history_order.sql;
-- see the comments there.
ALTER TABLE latest_metrics ADD COLUMN in_order SMALLINT NOT NULL DEFAULT 0;

UPDATE latest_metrics SET in_order = CASE WHEN EXISTS (
    SELECT 1 FROM (
        SELECT m.timestamp,
               LAG(m.timestamp) OVER (ORDER BY m.step, m.timestamp, m.value, m.is_nan) AS previous
        FROM metrics m
        WHERE m.run_pk = latest_metrics.run_pk AND m.key_id = latest_metrics.key_id
    ) ordered
    WHERE ordered.timestamp < ordered.previous
) THEN 0 ELSE 1 END;
