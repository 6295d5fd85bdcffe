//! Runs and their tags: writes (run by the writer) and batched reads.

use std::collections::HashMap;

use cairn_core::audit::{Payload, entity};
use cairn_core::model::{Actor, KeyValue, LifecycleStage, Metric, Millis, NewRun, Run, RunInfo, RunStatus, RunUpdate};
pub use cairn_core::validation::RUN_NAME_TAG;
use cairn_core::validation::{validate_run_name, validate_tag};
use cairn_core::{Error, Result};

use crate::sql::audit::NewEvent;
use crate::sql::common::{IN_LIST_CHUNK, join_uri, next_id, parse_experiment_id, placeholders};
use crate::sql::db::{Db, SqlValue};
use crate::sql::experiments;
use crate::sql::logged_models;
use crate::sql::names::random_run_name;
use crate::sql::rows::{ChildKind, ChildRow, RunRow};
use crate::sql::writer::WriteTx;

/// Reads one run row, if it exists.
pub fn find(db: &mut dyn Db, run_id: &str) -> Result<Option<RunRow>> {
    let sql = format!("SELECT {} FROM runs WHERE run_id = $1", RunRow::COLUMNS);
    db.query(&sql, &[run_id.into()])?.into_iter().next().map(RunRow::from_row).transpose()
}

/// Reads one run row or fails with MLflow's not-found error.
pub fn get_row(db: &mut dyn Db, run_id: &str) -> Result<RunRow> {
    find(db, run_id)?.ok_or_else(|| Error::not_found(format!("Run with id={run_id} not found")))
}

/// Reads a run that is about to be changed: it must exist and be active.
pub fn get_active_row(db: &mut dyn Db, run_id: &str) -> Result<RunRow> {
    require_active(get_row(db, run_id)?)
}

/// `get_active_row`, answered from the writer's row cache when it holds the run (see
/// `writer::RowCache`); the row read is cached for the run's next request.
pub fn get_active_row_cached(db: &mut dyn Db, tx: &mut WriteTx, run_id: &str) -> Result<RunRow> {
    let row = match tx.cached_run(run_id) {
        Some(row) => row,
        None => get_row(db, run_id)?,
    };
    let row = require_active(row)?;
    tx.cache_run(&row);
    Ok(row)
}

fn require_active(row: RunRow) -> Result<RunRow> {
    if !row.is_active() {
        return Err(Error::invalid(format!(
            "The run {} must be in the 'active' state. Current state is {}.",
            row.run_id, row.lifecycle_stage
        )));
    }
    Ok(row)
}

/// Rewrites every column of an existing run.
pub fn write_row(db: &mut dyn Db, row: &RunRow, seq: i64) -> Result<()> {
    db.defer(
        // Setting run_pk to itself keeps placeholders in ascending order of first appearance.
        "UPDATE runs SET run_pk = $1, run_id = $2, experiment_id = $3, name = $4, user_id = $5, status = $6, start_time = $7, \
         end_time = $8, lifecycle_stage = $9, deleted_time = $10, artifact_uri = $11, seq = $12 WHERE run_pk = $1",
        &row.insert_params(seq),
    )?;
    Ok(())
}

/// Moves a run to `stage`, stamping or clearing its deletion time as MLflow does.
pub fn mark_stage(row: &mut RunRow, stage: LifecycleStage, now: Millis) {
    row.lifecycle_stage = stage.as_str().to_owned();
    row.deleted_time = (stage == LifecycleStage::Deleted).then_some(now);
}

/// Sets (or replaces) a run tag and returns the row as written.
pub fn upsert_tag(db: &mut dyn Db, run: &RunRow, key: &str, value: &str, seq: i64) -> Result<ChildRow> {
    db.defer(
        "INSERT INTO run_tags (run_pk, key, value, seq) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value, seq = excluded.seq",
        &[run.run_pk.into(), key.into(), value.into(), seq.into()],
    )?;
    Ok(ChildRow { kind: ChildKind::RunTag, owner: run.run_id.clone(), key: key.to_owned(), value: value.to_owned() })
}

fn event<'a>(actor: &'a Actor, action: &'a str, run_id: &'a str, payload: Payload) -> NewEvent<'a> {
    NewEvent { actor: &actor.0, action, entity_type: entity::RUN, entity_id: run_id, payload }
}

/// Validates a new run's tags and name before it reaches the writer.
pub fn validate_new(new: &NewRun) -> Result<()> {
    new.tags.iter().try_for_each(validate_tag)?;
    validate_run_name(new.run_name.as_deref(), &new.tags)
}

/// Creates a run in an active experiment.
pub fn create(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, new: &NewRun) -> Result<Run> {
    let experiment_id = parse_experiment_id(&new.experiment_id)?;
    let experiment = match tx.cached_experiment(experiment_id) {
        Some(row) => row,
        None => experiments::get_row(db, experiment_id)?,
    };
    tx.cache_experiment(&experiment);
    if !experiment.is_active() {
        return Err(Error::invalid(format!(
            "The experiment {experiment_id} must be in the 'active' state. Current state is {}.",
            experiment.lifecycle_stage
        )));
    }
    // Tags repeat keys only by mistake; the last value wins, as it would for successive set-tag calls.
    let mut tags: Vec<KeyValue> = Vec::with_capacity(new.tags.len() + 1);
    for tag in &new.tags {
        tags.retain(|t| t.key != tag.key);
        tags.push(tag.clone());
    }
    let tag_name = tags.iter().find(|t| t.key == RUN_NAME_TAG).map(|t| t.value.clone());
    let name = new.run_name.clone().filter(|n| !n.is_empty()).or(tag_name.clone()).unwrap_or_else(random_run_name);
    if tag_name.is_none() {
        tags.push(KeyValue::new(RUN_NAME_TAG, name.clone()));
    }

    let run_id = match &new.run_id {
        None => uuid::Uuid::new_v4().simple().to_string(),
        Some(id) => {
            validate_chosen_run_id(id)?;
            if find(db, id)?.is_some() {
                return Err(Error::AlreadyExists(format!("Run with id={id} already exists")));
            }
            id.clone()
        }
    };
    let row = RunRow {
        run_pk: tx.next_run_pk(|| next_id(db, "runs", "run_pk", 1))?,
        artifact_uri: join_uri(&experiment.artifact_location, &format!("{run_id}/artifacts")),
        run_id,
        experiment_id,
        name,
        user_id: new.user_id.clone(),
        status: RunStatus::Running.as_str().to_owned(),
        start_time: Some(new.start_time.unwrap_or_else(|| tx.now())),
        end_time: None,
        lifecycle_stage: LifecycleStage::Active.as_str().to_owned(),
        deleted_time: None,
    };
    let seq = tx.seq();
    // The id is new (checked above, or random) and the key the next one under the writer's
    // lock, so the insert can wait to travel with the next statement.
    db.defer(
        &format!("INSERT INTO runs ({}, seq) VALUES ({})", RunRow::COLUMNS, placeholders(1, 12)),
        &row.insert_params(seq),
    )?;
    let mut payload = Payload::of(vec![row.change()]);
    for tag in &tags {
        payload.changes.push(upsert_tag(db, &row, &tag.key, &tag.value, seq)?.change());
    }
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    let run = Run {
        info: row.to_info()?,
        metrics: Vec::new(),
        params: Vec::new(),
        tags,
        inputs: Default::default(),
        outputs: Default::default(),
    };
    tx.append(db, event(actor, "create_run", &row.run_id, payload))?;
    tx.cache_run(&row);
    tx.cache_params(&row, HashMap::new());
    Ok(run)
}

/// A caller-chosen run id must look like the ids the store picks (a UUID's 32 lowercase hex
/// digits), so that it is unique in practice, safe in artifact paths, and indistinguishable
/// from a run created online.
fn validate_chosen_run_id(id: &str) -> Result<()> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(Error::invalid(format!("Invalid run id '{id}': expected 32 lowercase hexadecimal digits")))
    }
}

/// Changes an active run's status, end time or name. A new name is mirrored in the
/// `mlflow.runName` tag.
pub fn update(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, update: &RunUpdate) -> Result<RunInfo> {
    let mut row = get_active_row_cached(db, tx, &update.run_id)?;
    let seq = tx.seq();
    if let Some(status) = update.status {
        row.status = status.as_str().to_owned();
    }
    if let Some(end_time) = update.end_time {
        row.end_time = Some(end_time);
    }
    let mut payload = Payload::default();
    if let Some(name) = update.run_name.as_deref().filter(|n| !n.is_empty()) {
        row.name = name.to_owned();
        payload.changes.push(upsert_tag(db, &row, RUN_NAME_TAG, name, seq)?.change());
    }
    write_row(db, &row, seq)?;
    payload.changes.insert(0, row.change());
    tx.append(db, event(actor, "update_run", &row.run_id, payload))?;
    tx.cache_run(&row);
    row.to_info()
}

/// Tombstones a run (in any stage, as MLflow does).
pub fn delete(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, run_id: &str) -> Result<()> {
    set_stage(db, tx, actor, run_id, LifecycleStage::Deleted)
}

/// Brings a run back (in any stage, as MLflow does).
pub fn restore(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, run_id: &str) -> Result<()> {
    set_stage(db, tx, actor, run_id, LifecycleStage::Active)
}

fn set_stage(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, run_id: &str, stage: LifecycleStage) -> Result<()> {
    let mut row = get_row(db, run_id)?;
    mark_stage(&mut row, stage, tx.now());
    write_row(db, &row, tx.seq())?;
    let action = if stage == LifecycleStage::Deleted { "delete_run" } else { "restore_run" };
    tx.append(db, event(actor, action, run_id, Payload::of(vec![row.change()])))
}

/// Removes a tag from an active run.
pub fn delete_tag(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, run_id: &str, key: &str) -> Result<()> {
    let row = get_active_row(db, run_id)?;
    let removed =
        db.execute("DELETE FROM run_tags WHERE run_pk = $1 AND key = $2", &[row.run_pk.into(), key.into()])?;
    if removed == 0 {
        return Err(Error::not_found(format!("No tag with name: {key} in run with id {run_id}")));
    }
    let change = ChildRow::removal(ChildKind::RunTag, run_id, key);
    tx.append(db, event(actor, "delete_tag", run_id, Payload::of(vec![change])))
}

/// Reads runs with their latest metrics, params, tags, inputs and outputs, in the order of
/// `pks`, with one query per table for each chunk of ids; ids that do not exist are skipped.
pub fn hydrate(db: &mut dyn Db, pks: &[i64]) -> Result<Vec<Run>> {
    let mut rows: HashMap<i64, RunRow> = HashMap::with_capacity(pks.len());
    let mut params: HashMap<i64, Vec<KeyValue>> = HashMap::new();
    let mut tags: HashMap<i64, Vec<KeyValue>> = HashMap::new();
    let mut metrics: HashMap<i64, Vec<Metric>> = HashMap::new();
    let mut io = logged_models::inputs::RunIo::new();
    for chunk in pks.chunks(IN_LIST_CHUNK) {
        let ids: Vec<SqlValue> = chunk.iter().map(|pk| SqlValue::Int(*pk)).collect();
        let list = placeholders(1, chunk.len());
        for row in db.query(&format!("SELECT {} FROM runs WHERE run_pk IN ({list})", RunRow::COLUMNS), &ids)? {
            let row = RunRow::from_row(row)?;
            rows.insert(row.run_pk, row);
        }
        for (table, into) in [("params", &mut params), ("run_tags", &mut tags)] {
            // `table` is one of two constants above.
            let sql = format!("SELECT run_pk, key, value FROM {table} WHERE run_pk IN ({list}) ORDER BY run_pk, key");
            db.query_each(&sql, &ids, &mut |row| {
                let [pk, key, value] = row.as_mut_slice() else {
                    return Err(Error::internal("key/value row has the wrong width"));
                };
                let (key, value) = (std::mem::take(key).into_text()?, std::mem::take(value).into_text()?);
                into.entry(pk.int()?).or_default().push(KeyValue { key, value });
                Ok(())
            })?;
        }
        // Ordered by name below, per run: asking SQLite to order by name sorts the whole page's
        // metrics in a temporary B-tree, where the primary key's order costs nothing.
        let sql = format!(
            "SELECT l.run_pk, k.key, l.value, l.is_nan, l.timestamp, l.step FROM latest_metrics l \
             JOIN metric_keys k ON k.key_id = l.key_id WHERE l.run_pk IN ({list}) ORDER BY l.run_pk, l.key_id"
        );
        db.query_each(&sql, &ids, &mut |row| {
            let [pk, key, value, is_nan, timestamp, step] = row.as_mut_slice() else {
                return Err(Error::internal("latest metric row has the wrong width"));
            };
            let value = if is_nan.int()? != 0 { f64::NAN } else { value.real()? };
            metrics.entry(pk.int()?).or_default().push(Metric {
                key: std::mem::take(key).into_text()?,
                value,
                timestamp: timestamp.int()?,
                step: step.int()?,
            });
            Ok(())
        })?;
        logged_models::inputs::read_into(db, &ids, &list, &mut io)?;
    }
    for run_metrics in metrics.values_mut() {
        run_metrics.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    }
    pks.iter()
        .filter_map(|pk| rows.remove(pk).map(|row| (*pk, row)))
        .map(|(pk, row)| {
            let (inputs, outputs) = io.remove(&pk).unwrap_or_default();
            Ok(Run {
                info: row.to_info()?,
                metrics: metrics.remove(&pk).unwrap_or_default(),
                params: params.remove(&pk).unwrap_or_default(),
                tags: tags.remove(&pk).unwrap_or_default(),
                inputs,
                outputs,
            })
        })
        .collect()
}

/// Reads one run with its data.
pub fn get(db: &mut dyn Db, run_id: &str) -> Result<Run> {
    let row = get_row(db, run_id)?;
    hydrate(db, &[row.run_pk])?.pop().ok_or_else(|| Error::not_found(format!("Run with id={run_id} not found")))
}
