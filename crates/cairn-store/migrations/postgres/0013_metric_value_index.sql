-- Cairn metadata schema, version 13 (PostgreSQL): latest metric values by key and value.
-- A search across many experiments that filters on a metric ("acc > 0.9") otherwise probes
-- every run of those experiments; with this index it reads only the runs in the value range.
-- The planner chooses between the two from the statistics autovacuum keeps.
CREATE INDEX latest_metrics_by_value ON latest_metrics (key_id, value) WHERE is_nan = 0;
