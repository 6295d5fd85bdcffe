//! What runs consume and produce: dataset inputs (with the datasets themselves, stored once per
//! experiment), logged models used as inputs, and logged models produced as outputs. Writes run
//! on the writer with one audit event each; reads are batched for run hydration.

use std::collections::HashMap;

use cairn_core::Result;
use cairn_core::audit::{Change, Payload, entity};
use cairn_core::logged_models::{
    Dataset, DatasetInput, DatasetSummary, MAX_DATASET_SUMMARIES, ModelOutput, RunInputs, RunOutputs,
};
use cairn_core::model::{Actor, KeyValue};

use super::models;
use super::rows::{DatasetRow, input_change, model_input_change, model_output_change};
use crate::sql::audit::NewEvent;
use crate::sql::common::{next_id, placeholders};
use crate::sql::db::{Db, SqlValue};
use crate::sql::rows::RunRow;
use crate::sql::runs;
use crate::sql::writer::WriteTx;

fn event<'a>(actor: &'a Actor, action: &'a str, run_id: &'a str, changes: Vec<Change>) -> NewEvent<'a> {
    NewEvent { actor: &actor.0, action, entity_type: entity::RUN, entity_id: run_id, payload: Payload::of(changes) }
}

/// The dataset `(name, digest)` of an experiment, stored if it is new (the stored copy wins:
/// MLflow identifies a dataset version by its digest). A new row's change is added to `changes`.
fn dataset_pk(
    db: &mut dyn Db,
    seq: i64,
    experiment_id: i64,
    dataset: &Dataset,
    changes: &mut Vec<Change>,
) -> Result<i64> {
    let existing = db.query(
        "SELECT dataset_pk FROM datasets WHERE experiment_id = $1 AND name = $2 AND digest = $3",
        &[experiment_id.into(), dataset.name.as_str().into(), dataset.digest.as_str().into()],
    )?;
    if let Some(row) = existing.into_iter().next() {
        return Ok(row.first().unwrap_or(&SqlValue::Null).int()?);
    }
    let row = DatasetRow {
        dataset_pk: next_id(db, "datasets", "dataset_pk", 1)?,
        dataset_uuid: uuid::Uuid::new_v4().simple().to_string(),
        experiment_id,
        dataset: dataset.clone(),
    };
    db.execute(
        &format!("INSERT INTO datasets ({}, seq) VALUES ({})", DatasetRow::COLUMNS, placeholders(1, 10)),
        &row.params(seq),
    )?;
    changes.push(row.change());
    Ok(row.dataset_pk)
}

fn dataset_uuid(db: &mut dyn Db, dataset_pk: i64) -> Result<String> {
    let rows = db.query("SELECT dataset_uuid FROM datasets WHERE dataset_pk = $1", &[dataset_pk.into()])?;
    Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()).unwrap_or(SqlValue::Null).into_text()?)
}

/// Records one dataset input of `run` unless the run already has that dataset (then, as in
/// MLflow, the input and its tags stay as first logged).
fn add_dataset_input(
    db: &mut dyn Db,
    seq: i64,
    run: &RunRow,
    input: &DatasetInput,
    changes: &mut Vec<Change>,
) -> Result<()> {
    let pk = dataset_pk(db, seq, run.experiment_id, &input.dataset, changes)?;
    let inserted = db.execute(
        "INSERT INTO run_dataset_inputs (run_pk, dataset_pk, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[run.run_pk.into(), pk.into(), seq.into()],
    )?;
    if inserted == 0 {
        return Ok(());
    }
    let mut tags: Vec<KeyValue> = Vec::with_capacity(input.tags.len());
    for tag in &input.tags {
        tags.retain(|t| t.key != tag.key);
        tags.push(tag.clone());
    }
    for tag in &tags {
        db.execute(
            "INSERT INTO run_input_tags (run_pk, dataset_pk, key, value, seq) VALUES ($1, $2, $3, $4, $5)",
            &[run.run_pk.into(), pk.into(), tag.key.as_str().into(), tag.value.as_str().into(), seq.into()],
        )?;
    }
    changes.push(input_change(&run.run_id, &dataset_uuid(db, pk)?, &tags));
    Ok(())
}

/// `runs/log-inputs`: datasets (deduplicated by name and digest, the first occurrence kept, as
/// MLflow does) and logged models an active run used. Unknown model ids are not found.
pub fn log_inputs(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    run_id: &str,
    datasets: &[DatasetInput],
    model_ids: &[String],
) -> Result<()> {
    let run = runs::get_active_row(db, run_id)?;
    let seq = tx.seq();
    let mut changes = Vec::new();
    let mut seen: Vec<(&str, &str)> = Vec::with_capacity(datasets.len());
    for input in datasets {
        let key = (input.dataset.name.as_str(), input.dataset.digest.as_str());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        add_dataset_input(db, seq, &run, input, &mut changes)?;
    }
    for model_id in model_ids {
        let model = models::get_row(db, model_id)?;
        let inserted = db.execute(
            "INSERT INTO run_model_inputs (run_pk, model_pk, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[run.run_pk.into(), model.model_pk.into(), seq.into()],
        )?;
        if inserted > 0 {
            changes.push(model_input_change(run_id, model_id));
        }
    }
    tx.append(db, event(actor, "log_inputs", run_id, changes))
}

/// `runs/outputs`: logged models an active run produced, each at a step. Recording the same
/// model at the same step again changes nothing.
pub fn log_outputs(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    run_id: &str,
    outputs: &[ModelOutput],
) -> Result<()> {
    let run = runs::get_active_row(db, run_id)?;
    let seq = tx.seq();
    let mut changes = Vec::new();
    for output in outputs {
        let model = models::get_row(db, &output.model_id)?;
        let inserted = db.execute(
            "INSERT INTO run_model_outputs (run_pk, model_pk, step, seq) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[run.run_pk.into(), model.model_pk.into(), output.step.into(), seq.into()],
        )?;
        if inserted > 0 {
            changes.push(model_output_change(run_id, &output.model_id, output.step));
        }
    }
    tx.append(db, event(actor, "log_outputs", run_id, changes))
}

/// What runs consumed and produced, by run key.
pub type RunIo = HashMap<i64, (RunInputs, RunOutputs)>;

/// Adds the inputs and outputs of the runs whose keys are bound as `ids` (placeholders `list`)
/// to `into`: four queries for any number of runs.
pub fn read_into(db: &mut dyn Db, ids: &[SqlValue], list: &str, into: &mut RunIo) -> Result<()> {
    let mut tags: HashMap<(i64, i64), Vec<KeyValue>> = HashMap::new();
    let sql = format!(
        "SELECT run_pk, dataset_pk, key, value FROM run_input_tags WHERE run_pk IN ({list}) \
         ORDER BY run_pk, dataset_pk, key"
    );
    for row in db.query(&sql, ids)? {
        let mut it = row.into_iter();
        let mut next = || it.next().unwrap_or(SqlValue::Null);
        let key = (next().int()?, next().int()?);
        tags.entry(key).or_default().push(KeyValue { key: next().into_text()?, value: next().into_text()? });
    }
    let sql = format!(
        "SELECT i.run_pk, {} FROM run_dataset_inputs i JOIN datasets d ON d.dataset_pk = i.dataset_pk \
         WHERE i.run_pk IN ({list}) ORDER BY i.run_pk, i.seq, d.dataset_pk",
        DatasetRow::COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
    );
    for mut row in db.query(&sql, ids)? {
        let run_pk = std::mem::replace(&mut row[0], SqlValue::Null).int()?;
        let dataset = DatasetRow::from_row(row.split_off(1))?;
        let input = DatasetInput {
            tags: tags.remove(&(run_pk, dataset.dataset_pk)).unwrap_or_default(),
            dataset: dataset.dataset,
        };
        into.entry(run_pk).or_default().0.dataset_inputs.push(input);
    }
    let sql = format!(
        "SELECT i.run_pk, m.model_id FROM run_model_inputs i JOIN logged_models m ON m.model_pk = i.model_pk \
         WHERE i.run_pk IN ({list}) ORDER BY i.run_pk, i.seq, m.model_id"
    );
    for row in db.query(&sql, ids)? {
        let mut it = row.into_iter();
        let run_pk = it.next().unwrap_or(SqlValue::Null).int()?;
        let model_id = it.next().unwrap_or(SqlValue::Null).into_text()?;
        into.entry(run_pk).or_default().0.model_inputs.push(model_id);
    }
    let sql = format!(
        "SELECT o.run_pk, m.model_id, o.step FROM run_model_outputs o JOIN logged_models m ON m.model_pk = o.model_pk \
         WHERE o.run_pk IN ({list}) ORDER BY o.run_pk, o.seq, m.model_id, o.step"
    );
    for row in db.query(&sql, ids)? {
        let mut it = row.into_iter();
        let run_pk = it.next().unwrap_or(SqlValue::Null).int()?;
        let model_id = it.next().unwrap_or(SqlValue::Null).into_text()?;
        let step = it.next().unwrap_or(SqlValue::Null).int()?;
        into.entry(run_pk).or_default().1.model_outputs.push(ModelOutput { model_id, step });
    }
    Ok(())
}

/// The inputs and outputs of one run (any lifecycle stage).
pub fn of_run(db: &mut dyn Db, run_id: &str) -> Result<(RunInputs, RunOutputs)> {
    let run = runs::get_row(db, run_id)?;
    let mut io = RunIo::new();
    read_into(db, &[run.run_pk.into()], "$1", &mut io)?;
    Ok(io.remove(&run.run_pk).unwrap_or_default())
}

/// The distinct (dataset, context) pairs runs of `experiment_ids` used: a dataset input without
/// an `mlflow.data.context` tag still counts, with no context.
pub fn dataset_summaries(db: &mut dyn Db, experiment_ids: &[i64]) -> Result<Vec<DatasetSummary>> {
    if experiment_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value FROM datasets d \
         JOIN run_dataset_inputs i ON i.dataset_pk = d.dataset_pk \
         LEFT JOIN run_input_tags t ON t.run_pk = i.run_pk AND t.dataset_pk = i.dataset_pk AND t.key = $1 \
         WHERE d.experiment_id IN ({}) ORDER BY d.experiment_id, d.name, d.digest, t.value LIMIT {MAX_DATASET_SUMMARIES}",
        placeholders(2, experiment_ids.len())
    );
    let mut params = vec![SqlValue::from(cairn_core::logged_models::DATASET_CONTEXT_TAG)];
    params.extend(experiment_ids.iter().map(|&id| SqlValue::from(id)));
    let mut summaries = Vec::new();
    for row in db.query(&sql, &params)? {
        let mut it = row.into_iter();
        let mut next = || it.next().unwrap_or(SqlValue::Null);
        let experiment_id = next().int()?.to_string();
        let (name, digest) = (next().into_text()?, next().into_text()?);
        let context = match next() {
            SqlValue::Null => None,
            value => Some(value.into_text()?),
        };
        summaries.push(DatasetSummary { experiment_id, name, digest, context });
    }
    // The backends order a missing context differently (SQLite first, PostgreSQL last).
    summaries.sort_by(|a, b| {
        let key = |s: &DatasetSummary| (s.experiment_id.parse::<i64>().unwrap_or(0), s.name.clone(), s.digest.clone());
        key(a).cmp(&key(b)).then_with(|| a.context.cmp(&b.context))
    });
    Ok(summaries)
}

/// Removes what a run being purged consumed and produced (its dataset inputs with their tags,
/// model inputs and outputs) and the model-linked metric points it logged, and returns the
/// removals for the purge's audit event. The datasets and models themselves stay: other runs
/// may use them.
pub fn purge_run(db: &mut dyn Db, run: &RunRow) -> Result<Vec<Change>> {
    let pk = [SqlValue::from(run.run_pk)];
    let mut changes = Vec::new();
    let removed = |entity: &'static str, id: String| Change { entity, id, after: None };
    let sql = "SELECT d.dataset_uuid FROM run_dataset_inputs i JOIN datasets d ON d.dataset_pk = i.dataset_pk \
               WHERE i.run_pk = $1 ORDER BY d.dataset_uuid";
    for row in db.query(sql, &pk)? {
        let uuid = row.into_iter().next().unwrap_or(SqlValue::Null).into_text()?;
        changes.push(removed(entity::RUN_DATASET_INPUT, cairn_core::audit::child_id(&run.run_id, &uuid)));
    }
    let sql = "SELECT m.model_id FROM run_model_inputs i JOIN logged_models m ON m.model_pk = i.model_pk \
               WHERE i.run_pk = $1 ORDER BY m.model_id";
    for row in db.query(sql, &pk)? {
        let model_id = row.into_iter().next().unwrap_or(SqlValue::Null).into_text()?;
        changes.push(removed(entity::RUN_MODEL_INPUT, cairn_core::audit::child_id(&run.run_id, &model_id)));
    }
    let sql = "SELECT m.model_id, o.step FROM run_model_outputs o JOIN logged_models m ON m.model_pk = o.model_pk \
               WHERE o.run_pk = $1 ORDER BY m.model_id, o.step";
    for row in db.query(sql, &pk)? {
        let mut it = row.into_iter();
        let model_id = it.next().unwrap_or(SqlValue::Null).into_text()?;
        let step = it.next().unwrap_or(SqlValue::Null).int()?;
        changes.push(removed(entity::RUN_MODEL_OUTPUT, super::rows::model_output_id(&run.run_id, &model_id, step)));
    }
    // Linked points are tracked per writing event, and one event writes for one run, so every
    // event that wrote points for this run loses all of them.
    for row in db.query("SELECT DISTINCT seq FROM logged_model_metrics WHERE run_pk = $1 ORDER BY seq", &pk)? {
        let seq = row.into_iter().next().unwrap_or(SqlValue::Null).int()?;
        changes.push(removed(entity::LOGGED_MODEL_METRIC_ROWS, seq.to_string()));
    }
    for table in
        ["run_input_tags", "run_dataset_inputs", "run_model_inputs", "run_model_outputs", "logged_model_metrics"]
    {
        // `table` is one of the constants above.
        db.execute(&format!("DELETE FROM {table} WHERE run_pk = $1"), &pk)?;
    }
    Ok(changes)
}
