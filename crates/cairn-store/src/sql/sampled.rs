//! Downsampled metric histories (`cairn_core::sampling`), folded into buckets by the core's
//! `Downsampler` so that every backend gives the same answer.
//!
//! A series that fits (no more points in range than buckets) is read row by row and returned
//! whole. A longer one is summarised by the database, bucket by bucket, and only a thousand
//! summaries cross into Rust instead of a million rows. Each bucket is a step range; the
//! blocks of `metric_blocks` (`sql::blocks`, 64 steps each) that lie wholly inside it give its
//! count and extremes for those steps, the partial blocks at its two edges are summed from
//! `metrics` (at most 63 rows each), and its last point is one probe of the primary key of
//! `metrics`. So a bucket costs a few index probes and short range scans whatever its width,
//! and a million points into 1,000 buckets reads about 16,000 block rows and 64,000 point
//! rows instead of a million. The answer is the same as a scan's: a block's count and extremes
//! are exactly those of its stored points (see `sql::blocks`). SQLite runs the per-bucket
//! statements in-process; PostgreSQL gets them as one query, so that buckets do not each cost
//! a round trip.

use cairn_core::sampling::{Downsampler, Point, SampledQuery, SampledSeries, StepBuckets, Summary};
use cairn_core::{Error, Result};

use crate::sql::blocks::{BLOCK_SHIFT, BLOCK_STEPS};
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
        let plans: Vec<Plan> = bucket_ranges(&buckets, hi).into_iter().map(Plan::new).collect();
        let summaries = match db.dialect() {
            Dialect::Sqlite => summaries_each(db, run_pk, key_id, &plans)?,
            Dialect::Postgres => summaries_at_once(db, run_pk, key_id, &plans)?,
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

/// How one bucket is read: the blocks wholly inside it, and the step ranges at its edges that
/// cut a block (all of the bucket when it holds no whole block). Empty ranges have
/// `first > last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    index: usize,
    first: i64,
    last: i64,
    blocks: (i64, i64),
    edges: [(i64, i64); 2],
}

impl Plan {
    /// The plan of bucket `index` over the steps `first..=last`. The block arithmetic stays
    /// inside those bounds, so it cannot overflow at the ends of `i64`.
    fn new((index, first, last): (usize, i64, i64)) -> Self {
        const EMPTY: (i64, i64) = (1, 0);
        let mask = BLOCK_STEPS - 1;
        // The first block starting at or after `first`, the last ending at or before `last`.
        let lo = (first >> BLOCK_SHIFT) + i64::from(first & mask != 0);
        let hi = (last >> BLOCK_SHIFT) - i64::from(last & mask != mask);
        if lo > hi {
            return Plan { index, first, last, blocks: EMPTY, edges: [(first, last), EMPTY] };
        }
        let (covered_first, covered_last) = (lo << BLOCK_SHIFT, (hi << BLOCK_SHIFT) + mask);
        let left = if covered_first > first { (first, covered_first - 1) } else { EMPTY };
        let right = if covered_last < last { (covered_last + 1, last) } else { EMPTY };
        Plan { index, first, last, blocks: (lo, hi), edges: [left, right] }
    }
}

/// The extremes leave NaN out (`cairn_core::sampling`'s rule); NULL when the bucket is all NaN.
const EXTREMES: &str = "COUNT(*), MIN(CASE WHEN is_nan = 0 THEN value END), MAX(CASE WHEN is_nan = 0 THEN value END)";

/// The same over whole blocks, whose extremes already leave NaN out.
const BLOCK_EXTREMES: &str = "COALESCE(SUM(points), 0), MIN(min_value), MAX(max_value)";

/// The bucket's point is its greatest by step, timestamp, then value with NaN above numbers.
const LAST_ORDER: &str = "ORDER BY step DESC, timestamp DESC, is_nan DESC, value DESC LIMIT 1";

/// Count and extremes of some of a bucket's points, folded part by part.
#[derive(Debug, Clone, Copy, Default)]
struct Partial {
    count: u64,
    min: Option<f64>,
    max: Option<f64>,
}

impl Partial {
    /// Folds in one part's `count, min, max` columns.
    fn add(&mut self, count: &SqlValue, min: &SqlValue, max: &SqlValue) -> Result<()> {
        let extreme = |v: &SqlValue| -> Result<Option<f64>> {
            match v {
                SqlValue::Null => Ok(None),
                other => Ok(Some(other.real()?)),
            }
        };
        let fold = |a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64| match (a, b) {
            (Some(a), Some(b)) => Some(pick(a, b)),
            (a, b) => a.or(b),
        };
        self.count += u64::try_from(count.int()?).unwrap_or(0);
        self.min = fold(self.min, extreme(min)?, f64::min);
        self.max = fold(self.max, extreme(max)?, f64::max);
        Ok(())
    }

    /// The bucket's summary, given its last point (`None` when it is empty).
    fn summary(self, last: Option<Point>) -> Option<Summary> {
        let (Some(last), true) = (last, self.count > 0) else { return None };
        Some(Summary { count: self.count, last, min: self.min, max: self.max })
    }
}

/// The first row of `rows` as `N` columns.
fn one_row<const N: usize>(rows: &[Vec<SqlValue>]) -> Result<&[SqlValue; N]> {
    rows.first()
        .and_then(|r| <&[SqlValue; N]>::try_from(&r[..]).ok())
        .ok_or_else(|| Error::internal("bucket summary has the wrong width"))
}

/// SQLite: a few prepared statements per bucket, run in-process.
fn summaries_each(db: &mut dyn Db, run_pk: i64, key_id: i64, plans: &[Plan]) -> Result<Vec<(usize, Summary)>> {
    let where_ = "FROM metrics WHERE run_pk = $1 AND key_id = $2 AND step >= $3 AND step <= $4";
    let blocks = format!(
        "SELECT {BLOCK_EXTREMES} FROM metric_blocks WHERE run_pk = $1 AND key_id = $2 AND block >= $3 AND block <= $4"
    );
    let extremes = format!("SELECT {EXTREMES} {where_}");
    let last = format!("SELECT step, timestamp, value, is_nan {where_} {LAST_ORDER}");
    let mut out = Vec::with_capacity(plans.len());
    for plan in plans {
        let mut partial = Partial::default();
        let ranges = [(&blocks, plan.blocks), (&extremes, plan.edges[0]), (&extremes, plan.edges[1])];
        for (sql, (first, end)) in ranges.into_iter().filter(|(_, (first, end))| first <= end) {
            let rows = db.query(sql, &[run_pk.into(), key_id.into(), first.into(), end.into()])?;
            let [count, min, max] = one_row::<3>(&rows)?;
            partial.add(count, min, max)?;
        }
        if partial.count == 0 {
            continue;
        }
        let rows = db.query(&last, &[run_pk.into(), key_id.into(), plan.first.into(), plan.last.into()])?;
        let last = match rows.first().map(|r| &r[..]) {
            Some([step, timestamp, value, is_nan]) => Some(point(step, timestamp, value, is_nan)?),
            _ => None,
        };
        if let Some(s) = partial.summary(last) {
            out.push((plan.index, s));
        }
    }
    Ok(out)
}

/// PostgreSQL: every bucket in one query, the plans sent as one JSON array of
/// `[index, first, last, first block, last block, left edge first, last, right edge first,
/// last]` and each bucket summarised by four lateral subqueries (its blocks, its two edges,
/// its last point).
///
/// The last point is found in two steps: the greatest (step, timestamp) is one backward probe
/// of the primary key, and only the rows sharing it are then ordered by NaN and value. Asked
/// as one `ORDER BY` over all four columns ([`LAST_ORDER`]), PostgreSQL sorted every row of
/// the bucket instead, because the key orders value before the NaN flag: a million rows
/// sorted per request (about 400 ms of the 440 ms the query took for 1,000 buckets).
fn summaries_at_once(db: &mut dyn Db, run_pk: i64, key_id: i64, plans: &[Plan]) -> Result<Vec<(usize, Summary)>> {
    let rows: Vec<[i64; 9]> = plans
        .iter()
        .map(|p| {
            let [(l1, l2), (r1, r2)] = p.edges;
            [p.index as i64, p.first, p.last, p.blocks.0, p.blocks.1, l1, l2, r1, r2]
        })
        .collect();
    let json = serde_json::to_string(&rows).map_err(|e| Error::internal(format!("cannot encode bucket plans: {e}")))?;
    let edge = |first: &str, last: &str, alias: &str| {
        format!(
            "CROSS JOIN LATERAL (SELECT {EXTREMES} FROM metrics \
               WHERE run_pk = $1 AND key_id = $2 AND step >= b.{first} AND step <= b.{last}) AS {alias}"
        )
    };
    let sql = format!(
        "SELECT b.i, k.*, le.*, re.*, z.step, z.timestamp, z.value, z.is_nan \
         FROM (SELECT (e->>0)::bigint AS i, (e->>1)::bigint AS first, (e->>2)::bigint AS last, \
                      (e->>3)::bigint AS k1, (e->>4)::bigint AS k2, (e->>5)::bigint AS l1, \
                      (e->>6)::bigint AS l2, (e->>7)::bigint AS r1, (e->>8)::bigint AS r2 \
               FROM jsonb_array_elements(CAST($3::text AS jsonb)) AS e) AS b \
         CROSS JOIN LATERAL (SELECT {points_sum}::bigint, MIN(min_value), MAX(max_value) FROM metric_blocks \
               WHERE run_pk = $1 AND key_id = $2 AND block >= b.k1 AND block <= b.k2) AS k \
         {left} {right} \
         LEFT JOIN LATERAL (SELECT m.step, m.timestamp, m.value, m.is_nan \
               FROM (SELECT step, timestamp FROM metrics \
                     WHERE run_pk = $1 AND key_id = $2 AND step >= b.first AND step <= b.last \
                     ORDER BY step DESC, timestamp DESC LIMIT 1) AS t \
               JOIN metrics AS m ON m.run_pk = $1 AND m.key_id = $2 AND m.step = t.step AND m.timestamp = t.timestamp \
               ORDER BY m.is_nan DESC, m.value DESC LIMIT 1) AS z ON TRUE \
         ORDER BY b.i",
        // SUM of bigint is numeric in PostgreSQL; the cast brings it back to an integer.
        points_sum = "COALESCE(SUM(points), 0)",
        left = edge("l1", "l2", "le"),
        right = edge("r1", "r2", "re"),
    );
    let rows = db.query(&sql, &[run_pk.into(), key_id.into(), SqlValue::Text(json)])?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let [index, parts @ .., step, timestamp, value, is_nan] = &row[..] else {
            return Err(Error::internal("bucket summary has the wrong width"));
        };
        let [kc, kmin, kmax, lc, lmin, lmax, rc, rmin, rmax] = parts else {
            return Err(Error::internal("bucket summary has the wrong width"));
        };
        let mut partial = Partial::default();
        partial.add(kc, kmin, kmax)?;
        partial.add(lc, lmin, lmax)?;
        partial.add(rc, rmin, rmax)?;
        let last = match step {
            SqlValue::Null => None,
            _ => Some(point(step, timestamp, value, is_nan)?),
        };
        if let Some(s) = partial.summary(last) {
            out.push((usize::try_from(index.int()?).unwrap_or(usize::MAX), s));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_read_whole_blocks_and_cut_edges() {
        // A bucket of 1,000 steps from 1,000: blocks 16..=30 (steps 1,024..=1,983) are whole.
        let p = Plan::new((3, 1000, 1999));
        assert_eq!((p.blocks, p.edges), ((16, 30), [(1000, 1023), (1984, 1999)]));
        // Aligned on blocks at both ends: no edges.
        let p = Plan::new((0, 64, 191));
        assert_eq!((p.blocks, p.edges), ((1, 2), [(1, 0), (1, 0)]));
        // Narrower than a block: all edge.
        let p = Plan::new((0, 10, 70));
        assert_eq!((p.blocks.0 > p.blocks.1, p.edges), (true, [(10, 70), (1, 0)]));
        // Negative steps and the ends of i64.
        let p = Plan::new((0, -130, -1));
        assert_eq!((p.blocks, p.edges), ((-2, -1), [(-130, -129), (1, 0)]));
        let p = Plan::new((0, i64::MIN, i64::MAX));
        assert_eq!((p.blocks, p.edges), ((i64::MIN >> 6, i64::MAX >> 6), [(1, 0), (1, 0)]));
        let p = Plan::new((0, i64::MIN + 1, i64::MAX - 1));
        assert_eq!(p.edges, [(i64::MIN + 1, i64::MIN + 63), (i64::MAX - 63, i64::MAX - 1)]);
    }
}
