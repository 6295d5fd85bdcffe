//! Metric points: interning keys, inserting points and keeping `latest_metrics` (writes), and
//! history and sampled-history reads.

use std::collections::HashMap;

use cairn_core::audit::{MetricRow, RowsDigest, metrics_digest};
use cairn_core::model::{Metric, Page, RunMetric};
use cairn_core::store::{BulkIntervalQuery, HistoryQuery};
use cairn_core::{Error, Result};

use crate::sql::common::{placeholders, query_opt_int};
use crate::sql::db::{Db, MetricInsert, SqlValue};
use crate::sql::rows::RunRow;
use crate::sql::writer::WriteTx;

/// The id of an interned metric key, adding it if it is new. The writer caches ids, so the
/// table is read once per key per process.
pub fn intern_key(db: &mut dyn Db, tx: &mut WriteTx, key: &str) -> Result<i64> {
    if let Some(id) = tx.cached_key(key) {
        return Ok(id);
    }
    let id = match query_opt_int(db, "SELECT key_id FROM metric_keys WHERE key = $1", &[key.into()])? {
        Some(id) => id,
        None => {
            let id = crate::sql::common::next_id(db, "metric_keys", "key_id", 1)?;
            db.execute("INSERT INTO metric_keys (key_id, key) VALUES ($1, $2)", &[id.into(), key.into()])?;
            id
        }
    };
    tx.cache_key(key, id);
    Ok(id)
}

/// NaN cannot be stored in SQLite (it becomes NULL), so it is stored as 0 with a flag.
fn sanitize(value: f64) -> (f64, bool) {
    if value.is_nan() { (0.0, true) } else { (value, false) }
}

/// Inserts `metrics` into `run` (exact duplicates of stored points are skipped), updates the
/// run's latest values, and returns the digest of the rows actually inserted, if any.
pub fn log(db: &mut dyn Db, tx: &mut WriteTx, run: &RunRow, metrics: &[Metric]) -> Result<Option<RowsDigest>> {
    if metrics.is_empty() {
        return Ok(None);
    }
    let seq = tx.seq();
    let mut rows = Vec::with_capacity(metrics.len());
    for m in metrics {
        let (value, is_nan) = sanitize(m.value);
        let key_id = intern_key(db, tx, &m.key)?;
        rows.push(MetricInsert {
            run_pk: run.run_pk,
            key_id,
            step: m.step,
            timestamp: m.timestamp,
            value,
            is_nan,
            seq,
        });
    }
    let inserted = db.insert_metrics(&rows)?;
    if inserted.len() != rows.len() {
        return Err(Error::internal("insert_metrics answered for the wrong number of rows"));
    }
    update_latest(db, &rows)?;
    crate::sql::blocks::add(db, &rows, &inserted)?;

    let mut digest_rows: Vec<MetricRow<'_>> = metrics
        .iter()
        .zip(&inserted)
        .filter(|(_, new)| **new)
        .map(|(m, _)| MetricRow {
            run_id: &run.run_id,
            key: &m.key,
            step: m.step,
            timestamp: m.timestamp,
            value: m.value,
        })
        .collect();
    if digest_rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(metrics_digest(&mut digest_rows)))
}

/// What one request's points say about one key: its best point under MLflow's latest rule, its
/// first point in the table's clustering order, and whether those points alone keep history
/// order (see migration 0006).
struct KeySummary<'a> {
    best: &'a MetricInsert,
    first: (i64, i64),
    points: Vec<(i64, i64)>,
}

/// Whether `(step, timestamp)` points, put in clustering order, have timestamps that never
/// decrease: then ordering by step and by timestamp give the same history.
fn keeps_history_order(points: &mut [(i64, i64)]) -> bool {
    if !points.is_sorted() {
        points.sort_unstable();
    }
    points.windows(2).all(|pair| pair[0].1 <= pair[1].1)
}

/// The upsert keeping `latest_metrics`. MLflow's rule: a point replaces the latest one when
/// `(step, timestamp, value)` is greater, comparing NaN as its stored 0. `in_order` survives
/// only if the new points keep order among themselves and none comes before the stored
/// latest point in either order ($7 says the first, $8 and $9 are its step and timestamp).
const UPSERT_LATEST: &str = "INSERT INTO latest_metrics (run_pk, key_id, step, timestamp, value, is_nan, in_order) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_pk, key_id) DO UPDATE SET \
     in_order = CASE WHEN latest_metrics.in_order = 1 AND excluded.in_order = 1 \
                      AND $8 >= latest_metrics.step AND $9 >= latest_metrics.timestamp THEN 1 ELSE 0 END, \
     step = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > \
                      (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value) \
                 THEN excluded.step ELSE latest_metrics.step END, \
     timestamp = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > \
                           (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value) \
                      THEN excluded.timestamp ELSE latest_metrics.timestamp END, \
     value = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > \
                       (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value) \
                  THEN excluded.value ELSE latest_metrics.value END, \
     is_nan = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > \
                        (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value) \
                   THEN excluded.is_nan ELSE latest_metrics.is_nan END \
     WHERE latest_metrics.in_order = 1 \
        OR (excluded.step, excluded.timestamp, excluded.value) > \
           (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)";

/// Folds one request's points into `latest_metrics`, one upsert per key.
fn update_latest(db: &mut dyn Db, rows: &[MetricInsert]) -> Result<()> {
    let mut keys: HashMap<i64, KeySummary<'_>> = HashMap::new();
    for row in rows {
        let point = (row.step, row.timestamp);
        let summary =
            keys.entry(row.key_id).or_insert_with(|| KeySummary { best: row, first: point, points: Vec::new() });
        let b = summary.best;
        if (row.step, row.timestamp).cmp(&(b.step, b.timestamp)).then(row.value.total_cmp(&b.value)).is_gt() {
            summary.best = row;
        }
        summary.first = summary.first.min(point);
        summary.points.push(point);
    }
    for summary in keys.values_mut() {
        let row = summary.best;
        let in_order = keeps_history_order(&mut summary.points);
        db.defer(
            UPSERT_LATEST,
            &[
                row.run_pk.into(),
                row.key_id.into(),
                row.step.into(),
                row.timestamp.into(),
                row.value.into(),
                i64::from(row.is_nan).into(),
                i64::from(in_order).into(),
                summary.first.0.into(),
                summary.first.1.into(),
            ],
        )?;
    }
    Ok(())
}

fn run_pk(db: &mut dyn Db, run_id: &str) -> Result<Option<i64>> {
    query_opt_int(db, "SELECT run_pk FROM runs WHERE run_id = $1", &[run_id.into()])
}

fn key_id(db: &mut dyn Db, key: &str) -> Result<Option<i64>> {
    query_opt_int(db, "SELECT key_id FROM metric_keys WHERE key = $1", &[key.into()])
}

/// `(step, timestamp, value, is_nan)` rows as metrics named `key`.
fn to_metric(key: &str, row: &[SqlValue]) -> Result<Metric> {
    let [step, timestamp, value, is_nan] = row else { return Err(Error::internal("metric row has the wrong width")) };
    Ok(Metric {
        key: key.to_owned(),
        value: if is_nan.int()? != 0 { f64::NAN } else { value.real()? },
        timestamp: timestamp.int()?,
        step: step.int()?,
    })
}

/// The most points a history page reserves room for before reading; MLflow's client asks for
/// 25,000 per page.
const HISTORY_PAGE_PREALLOCATION: u64 = 25_000;

/// A page of one metric's history, ordered as MLflow orders it (timestamp, step, value). An
/// unknown run or key has an empty history, as in MLflow's SQL store.
pub fn history(db: &mut dyn Db, q: &HistoryQuery) -> Result<Page<Metric>> {
    let empty = Page::new(Vec::new(), None);
    let (Some(pk), Some(key_id)) = (run_pk(db, &q.run_id)?, key_id(db, &q.key)?) else { return Ok(empty) };
    let in_order = query_opt_int(
        db,
        "SELECT in_order FROM latest_metrics WHERE run_pk = $1 AND key_id = $2",
        &[pk.into(), key_id.into()],
    )?;
    // Both statements give the same rows in the same order when the history is in order; the
    // first reads them straight off the primary key, the second sorts the whole series.
    let sql = match in_order {
        Some(1) => {
            "SELECT step, timestamp, value, is_nan FROM metrics WHERE run_pk = $1 AND key_id = $2 \
             ORDER BY step, timestamp, value, is_nan LIMIT $3 OFFSET $4"
        }
        _ => {
            "SELECT step, timestamp, value, is_nan FROM metrics WHERE run_pk = $1 AND key_id = $2 \
             ORDER BY timestamp, step, value, is_nan LIMIT $3 OFFSET $4"
        }
    };
    let offset = i64::try_from(q.offset).map_err(|_| Error::invalid("offset is too large"))?;
    // One row more than asked for tells whether another page exists.
    let limit = q.max_results.map_or(i64::MAX, |m| i64::try_from(m).unwrap_or(i64::MAX - 1).saturating_add(1));
    let mut items = Vec::with_capacity(q.max_results.map_or(0, |m| m.min(HISTORY_PAGE_PREALLOCATION) as usize + 1));
    db.query_each(sql, &[pk.into(), key_id.into(), limit.into(), offset.into()], &mut |row| {
        items.push(to_metric(&q.key, row)?);
        Ok(())
    })?;
    let next_offset = match q.max_results {
        Some(max) if items.len() as u64 > max => {
            items.truncate(max as usize);
            Some(q.offset + max)
        }
        _ => None,
    };
    Ok(Page::new(items, next_offset))
}

/// 1-based positions, in the ordered rows of one run, of the points to return: the first row of
/// each of `n` near-equal buckets (SQL's `NTILE(n)`), with the last row replacing the last pick
/// so that the end of the range is always shown. This is MLflow's sampling.
pub fn sample_positions(total: u64, n: u64) -> Vec<u64> {
    let n = n.max(1);
    if total <= n {
        return (1..=total).collect();
    }
    let (base, extra) = (total / n, total % n);
    let mut positions = Vec::with_capacity(n as usize);
    let mut start = 1;
    for bucket in 0..n {
        positions.push(start);
        start += base + u64::from(bucket < extra);
    }
    if let Some(last) = positions.last_mut().filter(|last| **last != total) {
        *last = total;
    }
    positions
}

/// Up to `max_results` points of one metric per run, sampled evenly over the rows in the step
/// range. Unknown runs contribute nothing, as in MLflow.
pub fn bulk_interval(db: &mut dyn Db, q: &BulkIntervalQuery) -> Result<Vec<RunMetric>> {
    let (start, end) = match (q.start_step, q.end_step) {
        (Some(s), Some(e)) if s > e => {
            return Err(Error::invalid(format!(
                "end_step must be greater than start_step. Found start_step={s} and end_step={e}."
            )));
        }
        (Some(s), Some(e)) => (s, e),
        (None, None) => (i64::MIN, i64::MAX),
        _ => return Err(Error::invalid("If either start step or end step are specified, both must be specified.")),
    };
    let Some(key_id) = key_id(db, &q.key)? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for run_id in &q.run_ids {
        let Some(pk) = run_pk(db, run_id)? else { continue };
        let range: [SqlValue; 4] = [pk.into(), key_id.into(), start.into(), end.into()];
        let total = query_opt_int(
            db,
            "SELECT COUNT(*) FROM metrics WHERE run_pk = $1 AND key_id = $2 AND step >= $3 AND step <= $4",
            &range,
        )?
        .unwrap_or(0);
        let positions = sample_positions(total.max(0) as u64, q.max_results);
        if positions.is_empty() {
            continue;
        }
        let mut params = range.to_vec();
        params.extend(positions.iter().map(|p| SqlValue::Int(*p as i64)));
        let sql = format!(
            "SELECT step, timestamp, value, is_nan FROM (\
               SELECT step, timestamp, value, is_nan, \
                      ROW_NUMBER() OVER (ORDER BY step, timestamp, value, is_nan) AS position \
               FROM metrics WHERE run_pk = $1 AND key_id = $2 AND step >= $3 AND step <= $4) numbered \
             WHERE position IN ({}) ORDER BY position",
            placeholders(5, positions.len())
        );
        db.query_each(&sql, &params, &mut |row| {
            out.push(RunMetric { run_id: run_id.clone(), metric: to_metric(&q.key, row)? });
            Ok(())
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_order_is_kept_when_timestamps_follow_steps() {
        assert!(keeps_history_order(&mut []));
        assert!(keeps_history_order(&mut [(0, 10), (1, 10), (1, 12), (5, 20)]));
        // Arrival order does not matter, only the points themselves.
        assert!(keeps_history_order(&mut [(5, 20), (0, 10), (1, 12), (1, 10)]));
        // A later step logged at an earlier time comes first by time but last by step.
        assert!(!keeps_history_order(&mut [(0, 10), (1, 9)]));
        assert!(!keeps_history_order(&mut [(2, 5), (0, 10), (1, 11)]));
    }

    #[test]
    fn sampling_keeps_everything_when_it_fits() {
        assert_eq!(sample_positions(3, 5), vec![1, 2, 3]);
        assert_eq!(sample_positions(0, 5), Vec::<u64>::new());
    }

    #[test]
    fn sampling_takes_bucket_starts_and_the_last_row() {
        // NTILE(3) over 10 rows gives buckets of 4, 3, 3 starting at 1, 5, 8; the last start
        // is replaced by row 10.
        assert_eq!(sample_positions(10, 3), vec![1, 5, 10]);
        // One point means the last one.
        assert_eq!(sample_positions(10, 1), vec![10]);
        // When the last bucket has one row its start already is the last row.
        assert_eq!(sample_positions(5, 4), vec![1, 3, 4, 5]);
    }
}
