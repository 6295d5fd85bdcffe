//! Downsampled metric histories (`cairn_core::sampling`): the rows of each requested series in
//! its step range, folded into buckets by the core's `Downsampler`.

use cairn_core::sampling::{Downsampler, Point, SampledQuery, SampledSeries, StepBuckets};
use cairn_core::{Error, Result};

use crate::sql::common::query_opt_int;
use crate::sql::db::{Db, SqlValue};

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
    let mut sampler = Downsampler::new(StepBuckets::new(lo, hi, q.points), q.points);
    db.query_each(
        "SELECT step, timestamp, value, is_nan FROM metrics \
         WHERE run_pk = $1 AND key_id = $2 AND step >= $3 AND step <= $4",
        &range,
        &mut |row| {
            let [step, timestamp, value, is_nan] = &row[..] else {
                return Err(Error::internal("metric row has the wrong width"));
            };
            let value = if is_nan.int()? != 0 { f64::NAN } else { value.real()? };
            sampler.push(Point { step: step.int()?, timestamp: timestamp.int()?, value });
            Ok(())
        },
    )?;
    Ok(sampler.finish(run_id, &q.key))
}
