//! Experiments and their tags: writes (run by the writer) and reads.

use std::collections::HashMap;

use cairn_core::audit::{Payload, entity};
use cairn_core::model::{Actor, Experiment, KeyValue, LifecycleStage, NewExperiment};
use cairn_core::validation::{
    validate_experiment_artifact_location, validate_experiment_name, validate_experiment_tag,
};
use cairn_core::{Error, Result};

use crate::sql::audit::NewEvent;
use crate::sql::common::{IN_LIST_CHUNK, experiment_artifact_location, next_id, placeholders};
use crate::sql::db::{Db, DbError, SqlValue};
use crate::sql::rows::{ChildKind, ChildRow, ExperimentRow, RunRow};
use crate::sql::runs;
use crate::sql::writer::WriteTx;

/// The id of the experiment every store has.
pub const DEFAULT_EXPERIMENT_ID: i64 = 0;
/// Its name.
pub const DEFAULT_EXPERIMENT_NAME: &str = "Default";

fn not_found(id: i64) -> Error {
    Error::not_found(format!("No Experiment with id={id} exists"))
}

fn already_exists(name: &str) -> Error {
    Error::AlreadyExists(format!("Experiment(name={name}) already exists."))
}

fn must_be_active(row: &ExperimentRow) -> Result<()> {
    if row.is_active() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "The experiment {} must be in the 'active' state. Current state is {}.",
        row.experiment_id, row.lifecycle_stage
    )))
}

/// Reads one experiment row, if it exists.
pub fn find(db: &mut dyn Db, id: i64) -> Result<Option<ExperimentRow>> {
    let sql = format!("SELECT {} FROM experiments WHERE experiment_id = $1", ExperimentRow::COLUMNS);
    db.query(&sql, &[id.into()])?.into_iter().next().map(ExperimentRow::from_row).transpose()
}

/// Reads one experiment row or fails with MLflow's not-found error.
pub fn get_row(db: &mut dyn Db, id: i64) -> Result<ExperimentRow> {
    find(db, id)?.ok_or_else(|| not_found(id))
}

fn name_taken(db: &mut dyn Db, name: &str) -> Result<bool> {
    Ok(!db.query("SELECT 1 FROM experiments WHERE name = $1", &[name.into()])?.is_empty())
}

fn write_row(db: &mut dyn Db, row: &ExperimentRow, seq: i64, insert: bool) -> Result<()> {
    let params: Vec<SqlValue> = vec![
        row.experiment_id.into(),
        row.name.as_str().into(),
        row.artifact_location.as_str().into(),
        row.lifecycle_stage.as_str().into(),
        row.creation_time.into(),
        row.last_update_time.into(),
        seq.into(),
    ];
    let sql = if insert {
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, \
         last_update_time, seq) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    } else {
        "UPDATE experiments SET experiment_id = $1, name = $2, artifact_location = $3, lifecycle_stage = $4, creation_time = $5, \
         last_update_time = $6, seq = $7 WHERE experiment_id = $1"
    };
    match db.execute(sql, &params) {
        Ok(_) => Ok(()),
        Err(DbError::UniqueViolation(_)) => Err(already_exists(&row.name)),
        Err(e) => Err(e.into()),
    }
}

fn upsert_tag(db: &mut dyn Db, experiment_id: i64, tag: &KeyValue, seq: i64) -> Result<ChildRow> {
    db.execute(
        "INSERT INTO experiment_tags (experiment_id, key, value, seq) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value, seq = excluded.seq",
        &[experiment_id.into(), tag.key.as_str().into(), tag.value.as_str().into(), seq.into()],
    )?;
    Ok(ChildRow {
        kind: ChildKind::ExperimentTag,
        owner: experiment_id.to_string(),
        key: tag.key.clone(),
        value: tag.value.clone(),
    })
}

fn event<'a>(actor: &'a Actor, action: &'a str, id: &'a str, payload: Payload) -> NewEvent<'a> {
    NewEvent { actor: &actor.0, action, entity_type: entity::EXPERIMENT, entity_id: id, payload }
}

/// Validates a new experiment before it reaches the writer.
pub fn validate_new(new: &NewExperiment) -> Result<()> {
    validate_experiment_name(&new.name)?;
    if let Some(location) = &new.artifact_location {
        validate_experiment_artifact_location(location)?;
    }
    new.tags.iter().try_for_each(validate_experiment_tag)
}

/// Creates an experiment; `id` forces the id (only for the default experiment).
pub fn create(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    new: &NewExperiment,
    artifact_root: &str,
    id: Option<i64>,
) -> Result<String> {
    if name_taken(db, &new.name)? {
        return Err(already_exists(&new.name));
    }
    // MLflow numbers user experiments from 1; 0 is reserved for the default experiment.
    let id = match id {
        Some(id) => id,
        None => next_id(db, "experiments", "experiment_id", 1)?,
    };
    let artifact_location = match new.artifact_location.as_deref() {
        Some(location) if !location.is_empty() => location.to_owned(),
        _ => experiment_artifact_location(artifact_root, id),
    };
    let now = tx.now();
    let row = ExperimentRow {
        experiment_id: id,
        name: new.name.clone(),
        artifact_location,
        lifecycle_stage: LifecycleStage::Active.as_str().to_owned(),
        creation_time: now,
        last_update_time: now,
    };
    let seq = tx.seq();
    write_row(db, &row, seq, true)?;
    let mut payload = Payload::of(vec![row.change()]);
    // A later tag with the same key wins, as in MLflow; record only the surviving value.
    let mut tags: Vec<&KeyValue> = Vec::new();
    for tag in &new.tags {
        tags.retain(|t| t.key != tag.key);
        tags.push(tag);
    }
    for tag in tags {
        payload.changes.push(upsert_tag(db, id, tag, seq)?.change());
    }
    let id_text = id.to_string();
    tx.append(db, event(actor, "create_experiment", &id_text, payload))?;
    Ok(id_text)
}

/// Creates the default experiment if the store has none (a fresh store).
pub fn ensure_default(db: &mut dyn Db, tx: &mut WriteTx, artifact_root: &str) -> Result<()> {
    if find(db, DEFAULT_EXPERIMENT_ID)?.is_some() {
        return Ok(());
    }
    let new = NewExperiment { name: DEFAULT_EXPERIMENT_NAME.to_owned(), ..NewExperiment::default() };
    create(db, tx, &Actor("cairn".to_owned()), &new, artifact_root, Some(DEFAULT_EXPERIMENT_ID)).map(drop)
}

/// Renames an active experiment.
pub fn rename(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, id: i64, new_name: &str) -> Result<()> {
    validate_experiment_name(new_name)?;
    let mut row = get_row(db, id)?;
    if !row.is_active() {
        return Err(Error::InvalidState("Cannot rename a non-active experiment.".to_owned()));
    }
    if row.name != new_name && name_taken(db, new_name)? {
        return Err(already_exists(new_name));
    }
    row.name = new_name.to_owned();
    row.last_update_time = tx.now();
    write_row(db, &row, tx.seq(), false)?;
    let payload = Payload::of(vec![row.change()]);
    tx.append(db, event(actor, "rename_experiment", &id.to_string(), payload))
}

/// Tombstones an active experiment and, as MLflow does, every run in it.
pub fn delete(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, id: i64) -> Result<()> {
    set_stage(db, tx, actor, id, LifecycleStage::Deleted)
}

/// Brings a deleted experiment back, with all its runs.
pub fn restore(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, id: i64) -> Result<()> {
    set_stage(db, tx, actor, id, LifecycleStage::Active)
}

fn set_stage(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, id: i64, stage: LifecycleStage) -> Result<()> {
    let mut row = get_row(db, id)?;
    // MLflow looks the experiment up among those in the opposite stage only, so deleting a
    // deleted experiment (or restoring an active one) reports it as not found.
    if row.lifecycle_stage == stage.as_str() {
        return Err(not_found(id));
    }
    let now = tx.now();
    let seq = tx.seq();
    row.lifecycle_stage = stage.as_str().to_owned();
    row.last_update_time = now;
    write_row(db, &row, seq, false)?;
    let mut payload = Payload::of(vec![row.change()]);
    let sql = format!("SELECT {} FROM runs WHERE experiment_id = $1 ORDER BY run_pk", RunRow::COLUMNS);
    for run in db.query(&sql, &[id.into()])? {
        let mut run = RunRow::from_row(run)?;
        runs::mark_stage(&mut run, stage, now);
        runs::write_row(db, &run, seq)?;
        payload.changes.push(run.change());
    }
    let action = if stage == LifecycleStage::Deleted { "delete_experiment" } else { "restore_experiment" };
    tx.append(db, event(actor, action, &id.to_string(), payload))
}

/// Sets (or replaces) a tag on an active experiment.
pub fn set_tag(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, id: i64, tag: &KeyValue) -> Result<()> {
    validate_experiment_tag(tag)?;
    must_be_active(&get_row(db, id)?)?;
    let change = upsert_tag(db, id, tag, tx.seq())?.change();
    tx.append(db, event(actor, "set_experiment_tag", &id.to_string(), Payload::of(vec![change])))
}

/// Removes a tag from an active experiment.
pub fn delete_tag(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, id: i64, key: &str) -> Result<()> {
    must_be_active(&get_row(db, id)?)?;
    let removed =
        db.execute("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2", &[id.into(), key.into()])?;
    if removed == 0 {
        return Err(Error::not_found(format!("No tag with name: {key} in experiment with id {id}")));
    }
    let change = ChildRow::removal(ChildKind::ExperimentTag, &id.to_string(), key);
    tx.append(db, event(actor, "delete_experiment_tag", &id.to_string(), Payload::of(vec![change])))
}

/// Reads experiments with their tags, in the order of `ids`; ids that do not exist are skipped.
pub fn hydrate(db: &mut dyn Db, ids: &[i64]) -> Result<Vec<Experiment>> {
    let mut rows: HashMap<i64, ExperimentRow> = HashMap::with_capacity(ids.len());
    let mut tags: HashMap<i64, Vec<KeyValue>> = HashMap::new();
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        let params: Vec<SqlValue> = chunk.iter().map(|id| SqlValue::Int(*id)).collect();
        let list = placeholders(1, chunk.len());
        let sql = format!("SELECT {} FROM experiments WHERE experiment_id IN ({list})", ExperimentRow::COLUMNS);
        for row in db.query(&sql, &params)? {
            let row = ExperimentRow::from_row(row)?;
            rows.insert(row.experiment_id, row);
        }
        let sql = format!(
            "SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN ({list}) ORDER BY key"
        );
        for row in db.query(&sql, &params)? {
            let mut it = row.into_iter();
            let id = it.next().unwrap_or(SqlValue::Null).int()?;
            let key = it.next().unwrap_or(SqlValue::Null).into_text()?;
            let value = it.next().unwrap_or(SqlValue::Null).into_text()?;
            tags.entry(id).or_default().push(KeyValue { key, value });
        }
    }
    ids.iter()
        .filter_map(|id| rows.remove(id).map(|row| (row, tags.remove(id).unwrap_or_default())))
        .map(|(row, tags)| row.into_domain(tags))
        .collect()
}

/// Reads one experiment in any stage.
pub fn get(db: &mut dyn Db, id: i64) -> Result<Experiment> {
    hydrate(db, &[id])?.pop().ok_or_else(|| not_found(id))
}

/// Reads one experiment by name, in any stage.
pub fn get_by_name(db: &mut dyn Db, name: &str) -> Result<Experiment> {
    let id = db
        .query("SELECT experiment_id FROM experiments WHERE name = $1", &[name.into()])?
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next());
    match id {
        Some(id) => get(db, id.int()?),
        None => Err(Error::not_found(format!("Could not find experiment with name '{name}'"))),
    }
}

/// How many runs of each experiment in `ids` are visible under `view`, in the order given. Each
/// experiment must exist (in any stage); one grouped count over the runs index answers them all.
pub fn run_counts(db: &mut dyn Db, ids: &[i64], view: cairn_core::model::ViewType) -> Result<Vec<(i64, u64)>> {
    use cairn_core::model::ViewType;
    for id in ids {
        get(db, *id)?;
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    let stage = match view {
        ViewType::ActiveOnly => " AND lifecycle_stage = 'active'",
        ViewType::DeletedOnly => " AND lifecycle_stage = 'deleted'",
        ViewType::All => "",
    };
    let sql = format!(
        "SELECT experiment_id, count(*) FROM runs WHERE experiment_id IN ({}){stage} GROUP BY experiment_id",
        placeholders.join(", ")
    );
    let params: Vec<SqlValue> = ids.iter().map(|id| SqlValue::from(*id)).collect();
    let mut counted = std::collections::HashMap::new();
    for row in db.query(&sql, &params)? {
        let mut it = row.into_iter();
        let id = it.next().unwrap_or(SqlValue::Null).int()?;
        let n = it.next().unwrap_or(SqlValue::Null).int()?;
        counted.insert(id, u64::try_from(n).unwrap_or(0));
    }
    Ok(ids.iter().map(|id| (*id, counted.get(id).copied().unwrap_or(0))).collect())
}
