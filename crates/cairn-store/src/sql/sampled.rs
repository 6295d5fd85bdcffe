//! Downsampled metric histories (`cairn_core::sampling`), folded into buckets by the core's
//! `Downsampler` so that every backend gives the same answer.
//!
//! A series that fits (no more points in range than buckets) is read row by row and returned
//! whole. A longer one is summarised by the database, bucket by bucket: each bucket is a step
//! range of the primary key, so its count, extremes and last point are one range scan and one
//! probe, computed where the rows are, and only a thousand summaries cross into Rust instead
//! of a million rows. (Grouping by a computed bucket number instead would make the database
//! sort the million rows first.) SQLite runs the per-bucket statements in-process; PostgreSQL
//! gets them as one query, so that buckets do not each cost a round trip.

use cairn_core::sampling::{Downsampler, Point, SampledQuery, SampledSeries, StepBuckets, Summary};
use cairn_core::{Error, Result};

use crate::sql::common::query_opt_int;
use crate::sql::db::{Db, Dialect, SqlValue};

/// One series per requested run, in request order. Validates the query first, so that a bad
/// request reads nothing.
pub fn sampled(db: &mut dyn Db, q: &SampledQuery) -> Result<Vec<SampledSeries>> {
    q.validate()?;
    let key_id = query_opt_int(db, "SELECT key_id FROM metric_keys WHERE key = $1", &[q.key.as_str().into()])?;
    let mut out = Vec::with_capacity(q.run_ids.len());
    for run_id in &q.run_ids {
        let run_pk = query_opt_int(db, "SELECT run_pk FROM runs WHERE run_id = $1", &[run_id.as_str().into()])?
            .ok_or_else(|| Error::not_found(format!("Run with id={run_id} not found")))?;
        let series = match key_id {
            Some(key_id) => series(db, q, run_id, run_pk, key_id)?,
            None => SampledSeries::empty(run_id, &q.key),
        };
        out.push(series);
    }
    Ok(out)
}

/// One run's series. The bucket grid spans the requested range, or the series' own first and
/// last step in it when a bound is missing, so that zooming into a range gives that range's
/// grid.
fn series(db: &mut dyn Db, q: &SampledQuery, run_id: &str, run_pk: i64, key_id: i64) -> Result<SampledSeries> {
    let empty = || SampledSeries::empty(run_id, &q.key);
    let (from, to) = (q.start_step.unwrap_or(i64::MIN), q.end_step.unwrap_or(i64::MAX));
    let range: [SqlValue; 4] = [run_pk.into(), key_id.into(), from.into(), to.into()];
    // Each bound is one probe of the primary key (run_pk, key_id, step, …).
    let lo = match q.start_step {
        Some(s) => Some(s),
        None => query_opt_int(
            db,
            "SELECT step FROM metrics WHERE run_pk = $1 AND key_id = $2 AND step >= $3 AND step <= $4 \
             ORDER BY step LIMIT 1",
            &range,
        )?,
    };
    let hi = match q.end_step {
        Some(e) => Some(e),
        None => query_opt_int(
            db,
            "SELECT step FROM metrics WHERE run_pk = $1 AND key_id = $2 AND step >= $3 AND step <= $4 \
             ORDER BY step DESC LIMIT 1",
            &range,
        )?,
    };
    let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(empty()) };
    let buckets = StepBuckets::new(lo, hi, q.points);
    let mut sampler = Downsampler::new(buckets, q.points);
    let range: [SqlValue; 4] = [run_pk.into(), key_id.into(), lo.into(), hi.into()];
    if fits(db, &range, q.points)? {
        db.query_each(
            "SELECT step, timestamp, value, is_nan FROM metrics \
             WHERE run_pk = $1 AND key_id = $2 AND step >= $3 AND step <= $4",
            &range,
            &mut |row| {
                let [step, timestamp, value, is_nan] = &row[..] else {
                    return Err(Error::internal("metric row has the wrong width"));
                };
                sampler.push(point(step, timestamp, value, is_nan)?);
                Ok(())
            },
        )?;
    } else {
        let ranges = bucket_ranges(&buckets, hi);
        let summaries = match db.dialect() {
            Dialect::Sqlite => summaries_each(db, run_pk, key_id, &ranges)?,
            Dialect::Postgres => summaries_at_once(db, run_pk, key_id, &ranges)?,
        };
        for (index, summary) in summaries {
            sampler.push_summary(index, &summary);
        }
    }
    Ok(sampler.finish(run_id, &q.key))
}

/// Whether the range holds no more than `points` points: counts at most one more than that.
fn fits(db: &mut dyn Db, range: &[SqlValue; 4], points: u64) -> Result<bool> {
    let limit = i64::try_from(points).unwrap_or(i64::MAX - 1) + 1;
    let params = [range[0].clone(), range[1].clone(), range[2].clone(), range[3].clone(), limit.into()];
    let count = query_opt_int(
        db,
        "SELECT COUNT(*) FROM (SELECT 1 FROM metrics \
         WHERE run_pk = $1 AND key_id = $2 AND step >= $3 AND step <= $4 LIMIT $5) AS head",
        &params,
    )?;
    Ok(count.unwrap_or(0) < limit)
}

/// Each bucket's index and inclusive step range; buckets narrower than one step are empty
/// and left out.
fn bucket_ranges(buckets: &StepBuckets, hi: i64) -> Vec<(usize, i64, i64)> {
    (0..buckets.len())
        .filter_map(|i| {
            let first = buckets.start(i);
            let last = if i + 1 < buckets.len() { buckets.start(i + 1) - 1 } else { hi };
            (first <= last).then_some((i, first, last))
        })
        .collect()
}

/// A stored point: NaN is kept as a flag beside a placeholder value.
fn point(step: &SqlValue, timestamp: &SqlValue, value: &SqlValue, is_nan: &SqlValue) -> Result<Point> {
    let value = if is_nan.int()? != 0 { f64::NAN } else { value.real()? };
    Ok(Point { step: step.int()?, timestamp: timestamp.int()?, value })
}

/// The extremes leave NaN out (`cairn_core::sampling`'s rule); NULL when the bucket is all NaN.
const EXTREMES: &str = "COUNT(*), MIN(CASE WHEN is_nan = 0 THEN value END), MAX(CASE WHEN is_nan = 0 THEN value END)";

/// The bucket's point is its greatest by step, timestamp, then value with NaN above numbers.
const LAST_ORDER: &str = "ORDER BY step DESC, timestamp DESC, is_nan DESC, value DESC LIMIT 1";

/// A bucket's summary from its count, extremes and last point (`None` when it is empty).
fn summary(count: &SqlValue, min: &SqlValue, max: &SqlValue, last: Option<Point>) -> Result<Option<Summary>> {
    let count = u64::try_from(count.int()?).unwrap_or(0);
    let (Some(last), true) = (last, count > 0) else { return Ok(None) };
    let extreme = |v: &SqlValue| -> Result<Option<f64>> {
        match v {
            SqlValue::Null => Ok(None),
            other => Ok(Some(other.real()?)),
        }
    };
    Ok(Some(Summary { count, last, min: extreme(min)?, max: extreme(max)? }))
}

/// SQLite: two prepared statements per bucket, run in-process.
fn summaries_each(
    db: &mut dyn Db,
    run_pk: i64,
    key_id: i64,
    ranges: &[(usize, i64, i64)],
) -> Result<Vec<(usize, Summary)>> {
    let where_ = "FROM metrics WHERE run_pk = $1 AND key_id = $2 AND step >= $3 AND step <= $4";
    let extremes = format!("SELECT {EXTREMES} {where_}");
    let last = format!("SELECT step, timestamp, value, is_nan {where_} {LAST_ORDER}");
    let mut out = Vec::with_capacity(ranges.len());
    for &(index, first, end) in ranges {
        let params: [SqlValue; 4] = [run_pk.into(), key_id.into(), first.into(), end.into()];
        let rows = db.query(&extremes, &params)?;
        let Some([count, min, max]) = rows.first().map(|r| &r[..]).and_then(|r| <&[SqlValue; 3]>::try_from(r).ok())
        else {
            return Err(Error::internal("bucket summary has the wrong width"));
        };
        if count.int()? == 0 {
            continue;
        }
        let rows = db.query(&last, &params)?;
        let last = match rows.first().map(|r| &r[..]) {
            Some([step, timestamp, value, is_nan]) => Some(point(step, timestamp, value, is_nan)?),
            _ => None,
        };
        if let Some(s) = summary(count, min, max, last)? {
            out.push((index, s));
        }
    }
    Ok(out)
}

/// PostgreSQL: every bucket in one query, the ranges sent as one JSON array of
/// `[index, first, last]` and each bucket summarised by two lateral subqueries.
fn summaries_at_once(
    db: &mut dyn Db,
    run_pk: i64,
    key_id: i64,
    ranges: &[(usize, i64, i64)],
) -> Result<Vec<(usize, Summary)>> {
    let json = serde_json::to_string(&ranges.iter().map(|&(i, a, b)| [i as i64, a, b]).collect::<Vec<_>>())
        .map_err(|e| Error::internal(format!("cannot encode bucket ranges: {e}")))?;
    let sql = format!(
        "SELECT b.i, s.*, l.step, l.timestamp, l.value, l.is_nan \
         FROM (SELECT (e->>0)::bigint AS i, (e->>1)::bigint AS first, (e->>2)::bigint AS last \
               FROM jsonb_array_elements(CAST($3::text AS jsonb)) AS e) AS b \
         CROSS JOIN LATERAL (SELECT {EXTREMES} FROM metrics \
               WHERE run_pk = $1 AND key_id = $2 AND step >= b.first AND step <= b.last) AS s \
         LEFT JOIN LATERAL (SELECT step, timestamp, value, is_nan FROM metrics \
               WHERE run_pk = $1 AND key_id = $2 AND step >= b.first AND step <= b.last {LAST_ORDER}) AS l ON TRUE \
         ORDER BY b.i"
    );
    let rows = db.query(&sql, &[run_pk.into(), key_id.into(), SqlValue::Text(json)])?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let [index, count, min, max, step, timestamp, value, is_nan] = &row[..] else {
            return Err(Error::internal("bucket summary has the wrong width"));
        };
        let last = match step {
            SqlValue::Null => None,
            _ => Some(point(step, timestamp, value, is_nan)?),
        };
        if let Some(s) = summary(count, min, max, last)? {
            out.push((usize::try_from(index.int()?).unwrap_or(usize::MAX), s));
        }
    }
    Ok(out)
}
