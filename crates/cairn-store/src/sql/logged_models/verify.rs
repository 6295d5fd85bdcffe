//! Comparing the logged-model tables with the audit log: every live row is imaged with the
//! function its writer used and handed to the [`Verifier`]. Rows whose model, run or dataset is
//! gone are named by a `#key` marker so that they are reported rather than skipped. Logged
//! model files are checked with run artifacts (`sql::artifacts::all` lists both).

use std::collections::HashMap;

use cairn_core::Result;
use cairn_core::audit::{Verifier, child_id, entity};
use cairn_core::model::KeyValue;

use super::metrics;
use super::rows::{
    DatasetRow, ModelChild, ModelChildKind, ModelRow, input_image, metric_rows_image, model_input_image,
    model_output_id, model_output_image,
};
use crate::sql::db::{Db, SqlValue};

fn marker(ids: &HashMap<i64, String>, pk: i64) -> String {
    ids.get(&pk).cloned().unwrap_or_else(|| format!("#{pk}"))
}

fn int(v: Option<SqlValue>) -> Result<i64> {
    Ok(v.unwrap_or(SqlValue::Null).int()?)
}

fn text(v: Option<SqlValue>) -> Result<String> {
    Ok(v.unwrap_or(SqlValue::Null).into_text()?)
}

/// Feeds every live logged model, tag, param, linked metric row, dataset and run input/output
/// to `verifier`.
pub fn verify_live(db: &mut dyn Db, verifier: &mut Verifier) -> Result<()> {
    let mut models: HashMap<i64, String> = HashMap::new();
    for row in db.query(&format!("SELECT {} FROM logged_models", ModelRow::COLUMNS), &[])? {
        let row = ModelRow::from_row(row)?;
        verifier.live_entity(entity::LOGGED_MODEL, &row.model_id, &row.image());
        models.insert(row.model_pk, row.model_id);
    }
    for kind in [ModelChildKind::Tag, ModelChildKind::Param] {
        // The table name is one of two constants.
        for row in db.query(&format!("SELECT model_pk, key, value FROM {}", kind.table()), &[])? {
            let mut it = row.into_iter();
            let model_id = marker(&models, int(it.next())?);
            let child = ModelChild { kind, model_id, key: text(it.next())?, value: text(it.next())? };
            let id = child_id(&child.model_id, &child.key);
            verifier.live_entity(kind.entity(), &id, &child.image());
        }
    }
    for (seq, rows) in metrics::rows_by_seq(db)? {
        verifier.live_entity(entity::LOGGED_MODEL_METRIC_ROWS, &seq.to_string(), &metric_rows_image(&rows));
    }

    let mut datasets: HashMap<i64, String> = HashMap::new();
    for row in db.query(&format!("SELECT {} FROM datasets", DatasetRow::COLUMNS), &[])? {
        let row = DatasetRow::from_row(row)?;
        verifier.live_entity(entity::DATASET, &row.dataset_uuid, &row.image());
        datasets.insert(row.dataset_pk, row.dataset_uuid);
    }
    let mut runs: HashMap<i64, String> = HashMap::new();
    for row in db.query("SELECT run_pk, run_id FROM runs", &[])? {
        let mut it = row.into_iter();
        let pk = int(it.next())?;
        runs.insert(pk, text(it.next())?);
    }
    verify_inputs(db, verifier, &runs, &datasets)?;
    for row in db.query("SELECT run_pk, model_pk FROM run_model_inputs", &[])? {
        let mut it = row.into_iter();
        let (run_id, model_id) = (marker(&runs, int(it.next())?), marker(&models, int(it.next())?));
        verifier.live_entity(
            entity::RUN_MODEL_INPUT,
            &child_id(&run_id, &model_id),
            &model_input_image(&run_id, &model_id),
        );
    }
    for row in db.query("SELECT run_pk, model_pk, step FROM run_model_outputs", &[])? {
        let mut it = row.into_iter();
        let (run_id, model_id, step) =
            (marker(&runs, int(it.next())?), marker(&models, int(it.next())?), int(it.next())?);
        let id = model_output_id(&run_id, &model_id, step);
        verifier.live_entity(entity::RUN_MODEL_OUTPUT, &id, &model_output_image(&run_id, &model_id, step));
    }
    Ok(())
}

/// Dataset inputs are imaged with their tags, so tags written, edited or removed behind the
/// store's back change the input's image.
fn verify_inputs(
    db: &mut dyn Db,
    verifier: &mut Verifier,
    runs: &HashMap<i64, String>,
    datasets: &HashMap<i64, String>,
) -> Result<()> {
    let mut tags: HashMap<(i64, i64), Vec<KeyValue>> = HashMap::new();
    for row in db.query("SELECT run_pk, dataset_pk, key, value FROM run_input_tags", &[])? {
        let mut it = row.into_iter();
        let key = (int(it.next())?, int(it.next())?);
        tags.entry(key).or_default().push(KeyValue { key: text(it.next())?, value: text(it.next())? });
    }
    for row in db.query("SELECT run_pk, dataset_pk FROM run_dataset_inputs", &[])? {
        let mut it = row.into_iter();
        let (run_pk, dataset_pk) = (int(it.next())?, int(it.next())?);
        let (run_id, dataset_id) = (marker(runs, run_pk), marker(datasets, dataset_pk));
        let input_tags = tags.remove(&(run_pk, dataset_pk)).unwrap_or_default();
        let image = input_image(&run_id, &dataset_id, &input_tags);
        verifier.live_entity(entity::RUN_DATASET_INPUT, &child_id(&run_id, &dataset_id), &image);
    }
    // Tags left over belong to no input: report them as an input the log never wrote.
    for ((run_pk, dataset_pk), orphan) in tags {
        let (run_id, dataset_id) = (marker(runs, run_pk), marker(datasets, dataset_pk));
        let image = input_image(&run_id, &dataset_id, &orphan);
        verifier.live_entity(entity::RUN_DATASET_INPUT, &format!("{}#tags", child_id(&run_id, &dataset_id)), &image);
    }
    Ok(())
}
