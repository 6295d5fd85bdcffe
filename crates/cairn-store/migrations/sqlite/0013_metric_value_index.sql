-- Cairn metadata schema, version 13 (SQLite): latest metric values by key and value.
-- A search across many experiments that filters on a metric ("acc > 0.9") otherwise probes
-- every run of those experiments; with this index it reads only the runs in the value range.
-- NaN values never satisfy a range, so they are left out. SQLite's planner, without statistics,
-- would start from this index even for one experiment's search; the search builder decides
-- instead (`sql::search::runs::may_use_value_index`) and, where the index would not pay, words
-- its condition so that the partial index does not apply.
CREATE INDEX latest_metrics_by_value ON latest_metrics (key_id, value) WHERE is_nan = 0;
