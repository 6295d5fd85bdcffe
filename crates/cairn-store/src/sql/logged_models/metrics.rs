//! Metric points linked to logged models (`logged_model_metrics`): written beside the run's own
//! points when a logged metric carries a model id, read back as a model's metrics.
//!
//! This table is deliberately apart from `metrics`: the ordinary ingest path never looks at it,
//! so runs that log no model metrics pay nothing for it.

use std::collections::HashMap;

use cairn_core::audit::Change;
use cairn_core::logged_models::{MetricLink, ModelMetric};
use cairn_core::model::Metric;
use cairn_core::{Error, Result};

use super::models;
use super::rows::{ModelMetricRow, metric_rows_change};
use crate::sql::db::{Db, Row, SqlValue};
use crate::sql::rows::RunRow;

/// Columns in the order [`point_from_row`] reads them (after the leading `model_pk`); `l` is
/// `logged_model_metrics`, `r` its run (left-joined: a purged run leaves its key behind).
const COLUMNS: &str = "l.model_pk, l.key, l.step, l.timestamp, l.value, l.is_nan, \
     COALESCE(r.run_id, '#' || CAST(l.run_pk AS TEXT)), l.dataset_name, l.dataset_digest";

fn none_if_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Reads a row selected with [`COLUMNS`] into its model key and point.
fn point_from_row(row: Row) -> Result<(i64, ModelMetric)> {
    let [pk, key, step, timestamp, value, is_nan, run_id, dataset_name, dataset_digest]: [SqlValue; 9] =
        row.try_into().map_err(|_| Error::internal("model metric row has the wrong width"))?;
    let point = ModelMetric {
        key: key.into_text()?,
        value: if is_nan.int()? != 0 { f64::NAN } else { value.real()? },
        timestamp: timestamp.int()?,
        step: step.int()?,
        run_id: Some(run_id.into_text()?),
        dataset_name: none_if_empty(dataset_name.into_text()?),
        dataset_digest: none_if_empty(dataset_digest.into_text()?),
    };
    Ok((pk.int()?, point))
}

/// Records the linked points of a batch for their models and returns the audit change naming
/// the rows inserted (none when every point was already stored). `links[i]` belongs to
/// `metrics[i]`; an unknown model id fails the whole batch.
pub fn log(
    db: &mut dyn Db,
    seq: i64,
    run: &RunRow,
    metrics: &[Metric],
    links: &[Option<MetricLink>],
) -> Result<Option<Change>> {
    if links.len() != metrics.len() {
        return Err(Error::internal("metric links do not match the batch's metrics"));
    }
    let mut model_pks: HashMap<&str, i64> = HashMap::new();
    let mut inserted = Vec::new();
    for (m, link) in metrics.iter().zip(links) {
        let Some(link) = link else { continue };
        let model_pk = match model_pks.get(link.model_id.as_str()) {
            Some(pk) => *pk,
            None => {
                let pk = models::get_row(db, &link.model_id)?.model_pk;
                model_pks.insert(&link.model_id, pk);
                pk
            }
        };
        let (value, is_nan) = if m.value.is_nan() { (0.0, 1) } else { (m.value, 0) };
        let dataset_name = link.dataset_name.clone().unwrap_or_default();
        let dataset_digest = link.dataset_digest.clone().unwrap_or_default();
        let changed = db.execute(
            "INSERT INTO logged_model_metrics (model_pk, key, step, timestamp, value, is_nan, run_pk, \
             dataset_name, dataset_digest, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            &[
                model_pk.into(),
                m.key.as_str().into(),
                m.step.into(),
                m.timestamp.into(),
                value.into(),
                i64::from(is_nan).into(),
                run.run_pk.into(),
                dataset_name.as_str().into(),
                dataset_digest.as_str().into(),
                seq.into(),
            ],
        )?;
        if changed > 0 {
            inserted.push(ModelMetricRow {
                model_id: link.model_id.clone(),
                run_id: run.run_id.clone(),
                key: m.key.clone(),
                step: m.step,
                timestamp: m.timestamp,
                value: m.value,
                dataset_name,
                dataset_digest,
            });
        }
    }
    Ok((!inserted.is_empty()).then(|| metric_rows_change(seq, &inserted)))
}

/// Adds the points of the models whose keys are bound as `ids` (placeholders `list`) to `into`,
/// ordered by key, timestamp and step.
pub fn read_into(
    db: &mut dyn Db,
    ids: &[SqlValue],
    list: &str,
    into: &mut HashMap<i64, Vec<ModelMetric>>,
) -> Result<()> {
    let sql = format!(
        "SELECT {COLUMNS} FROM logged_model_metrics l LEFT JOIN runs r ON r.run_pk = l.run_pk \
         WHERE l.model_pk IN ({list}) ORDER BY l.model_pk, l.key, l.timestamp, l.step"
    );
    for row in db.query(&sql, ids)? {
        let (pk, point) = point_from_row(row)?;
        into.entry(pk).or_default().push(point);
    }
    Ok(())
}

/// Every linked point, grouped by the event that wrote it, with public ids (or `#key` markers for
/// rows whose model or run is gone), for verification.
pub fn rows_by_seq(db: &mut dyn Db) -> Result<Vec<(i64, Vec<ModelMetricRow>)>> {
    let sql = "SELECT l.seq, COALESCE(m.model_id, '#' || CAST(l.model_pk AS TEXT)), \
               COALESCE(r.run_id, '#' || CAST(l.run_pk AS TEXT)), l.key, l.step, l.timestamp, l.value, l.is_nan, \
               l.dataset_name, l.dataset_digest FROM logged_model_metrics l \
               LEFT JOIN logged_models m ON m.model_pk = l.model_pk LEFT JOIN runs r ON r.run_pk = l.run_pk \
               ORDER BY l.seq";
    let mut out: Vec<(i64, Vec<ModelMetricRow>)> = Vec::new();
    for row in db.query(sql, &[])? {
        let [seq, model_id, run_id, key, step, timestamp, value, is_nan, dataset_name, dataset_digest]: [SqlValue; 10] =
            row.try_into().map_err(|_| Error::internal("model metric row has the wrong width"))?;
        let seq = seq.int()?;
        let point = ModelMetricRow {
            model_id: model_id.into_text()?,
            run_id: run_id.into_text()?,
            key: key.into_text()?,
            step: step.int()?,
            timestamp: timestamp.int()?,
            value: if is_nan.int()? != 0 { f64::NAN } else { value.real()? },
            dataset_name: dataset_name.into_text()?,
            dataset_digest: dataset_digest.into_text()?,
        };
        match out.last_mut() {
            Some((last, rows)) if *last == seq => rows.push(point),
            _ => out.push((seq, vec![point])),
        }
    }
    Ok(out)
}
