//! Logged models with their tags and params: writes (run by the writer, each with one audit
//! event) and batched reads.

use std::collections::HashMap;

use cairn_core::audit::{Change, Payload, entity};
use cairn_core::logged_models::{LoggedModel, LoggedModelStatus, MODEL_ID_PREFIX, NewLoggedModel};
use cairn_core::model::{Actor, KeyValue, LifecycleStage, ViewType};
use cairn_core::{Error, Result};

use super::metrics;
use super::rows::{ModelChild, ModelChildKind, ModelRow};
use crate::sql::audit::NewEvent;
use crate::sql::common::{IN_LIST_CHUNK, join_uri, next_id, parse_experiment_id, placeholders};
use crate::sql::db::{Db, SqlValue};
use crate::sql::experiments;
use crate::sql::names::random_run_name;
use crate::sql::writer::WriteTx;

/// MLflow's message for a model id that names nothing.
pub fn not_found(model_id: &str) -> Error {
    Error::not_found(format!("Logged model with ID '{model_id}' not found."))
}

/// Reads one model row in any lifecycle stage, if it exists.
pub fn find(db: &mut dyn Db, model_id: &str) -> Result<Option<ModelRow>> {
    let sql = format!("SELECT {} FROM logged_models WHERE model_id = $1", ModelRow::COLUMNS);
    db.query(&sql, &[model_id.into()])?.into_iter().next().map(ModelRow::from_row).transpose()
}

/// Reads one model row in any lifecycle stage, or fails with MLflow's not-found error.
pub fn get_row(db: &mut dyn Db, model_id: &str) -> Result<ModelRow> {
    find(db, model_id)?.ok_or_else(|| not_found(model_id))
}

/// Reads a model that is not deleted, as MLflow's get and the run-input writes see them.
pub fn get_active_row(db: &mut dyn Db, model_id: &str) -> Result<ModelRow> {
    let row = get_row(db, model_id)?;
    if !row.is_active() {
        return Err(not_found(model_id));
    }
    Ok(row)
}

/// Rewrites every column of an existing model.
fn write_row(db: &mut dyn Db, row: &ModelRow, seq: i64) -> Result<()> {
    db.execute(
        // Setting model_pk to itself keeps placeholders in ascending order of first appearance.
        "UPDATE logged_models SET model_pk = $1, model_id = $2, experiment_id = $3, name = $4, \
         artifact_location = $5, creation_time = $6, last_updated_time = $7, status = $8, status_message = $9, \
         model_type = $10, source_run_id = $11, lifecycle_stage = $12, seq = $13 WHERE model_pk = $1",
        &row.params(seq),
    )?;
    Ok(())
}

fn event<'a>(actor: &'a Actor, action: &'a str, model_id: &'a str, changes: Vec<Change>) -> NewEvent<'a> {
    NewEvent {
        actor: &actor.0,
        action,
        entity_type: entity::LOGGED_MODEL,
        entity_id: model_id,
        payload: Payload::of(changes),
    }
}

/// The pairs with repeated keys removed, the last value of a key winning (as successive calls
/// would leave it), sorted by key.
fn last_per_key(items: &[KeyValue]) -> Vec<KeyValue> {
    let mut last: HashMap<&str, &str> = HashMap::with_capacity(items.len());
    for item in items {
        last.insert(&item.key, &item.value);
    }
    let mut out: Vec<KeyValue> = last.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// Sets (or replaces) one tag and returns the row as written.
fn upsert_tag(db: &mut dyn Db, model: &ModelRow, tag: &KeyValue, seq: i64) -> Result<ModelChild> {
    db.execute(
        "INSERT INTO logged_model_tags (model_pk, key, value, seq) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value, seq = excluded.seq",
        &[model.model_pk.into(), tag.key.as_str().into(), tag.value.as_str().into(), seq.into()],
    )?;
    Ok(ModelChild {
        kind: ModelChildKind::Tag,
        model_id: model.model_id.clone(),
        key: tag.key.clone(),
        value: tag.value.clone(),
    })
}

/// Inserts the params that are new; a param already stored with the same value is left alone,
/// and one stored with another value fails the whole request, as params are immutable.
fn insert_params(db: &mut dyn Db, model: &ModelRow, params: &[KeyValue], seq: i64) -> Result<Vec<Change>> {
    let mut stored: HashMap<String, String> = HashMap::new();
    for row in db.query("SELECT key, value FROM logged_model_params WHERE model_pk = $1", &[model.model_pk.into()])? {
        let mut it = row.into_iter();
        let key = it.next().unwrap_or(SqlValue::Null).into_text()?;
        stored.insert(key, it.next().unwrap_or(SqlValue::Null).into_text()?);
    }
    let mut changes = Vec::new();
    for param in last_per_key(params) {
        match stored.get(&param.key) {
            Some(old) if *old == param.value => continue,
            Some(old) => {
                return Err(Error::invalid(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged with \
                     value='{old}' for logged model ID='{}'. Attempted logging new value '{}'.",
                    param.key, model.model_id, param.value
                )));
            }
            None => {}
        }
        db.execute(
            "INSERT INTO logged_model_params (model_pk, key, value, seq) VALUES ($1, $2, $3, $4)",
            &[model.model_pk.into(), param.key.as_str().into(), param.value.as_str().into(), seq.into()],
        )?;
        let child = ModelChild {
            kind: ModelChildKind::Param,
            model_id: model.model_id.clone(),
            key: param.key,
            value: param.value,
        };
        changes.push(child.change());
    }
    Ok(changes)
}

/// Creates a pending model in an active experiment. Its files go under the experiment's
/// artifact location, at `models/<model_id>/artifacts`, as in MLflow.
pub fn create(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, new: &NewLoggedModel) -> Result<LoggedModel> {
    let experiment_id = parse_experiment_id(&new.experiment_id)?;
    let experiment = experiments::get_row(db, experiment_id)?;
    if !experiment.is_active() {
        return Err(Error::invalid(format!(
            "The experiment {experiment_id} must be in the 'active' state. Current state is {}.",
            experiment.lifecycle_stage
        )));
    }
    let model_id = match &new.model_id {
        None => format!("{MODEL_ID_PREFIX}{}", uuid::Uuid::new_v4().simple()),
        Some(id) => {
            // Checked by `validate_new_logged_model` on the caller's task.
            if find(db, id)?.is_some() {
                return Err(Error::AlreadyExists(format!("Logged model with id={id} already exists")));
            }
            id.clone()
        }
    };
    let row = ModelRow {
        model_pk: next_id(db, "logged_models", "model_pk", 1)?,
        artifact_location: join_uri(&experiment.artifact_location, &format!("models/{model_id}/artifacts")),
        model_id,
        experiment_id,
        name: new.name.clone().unwrap_or_else(random_run_name),
        creation_time: tx.now(),
        last_updated_time: tx.now(),
        status: LoggedModelStatus::Pending.as_str().to_owned(),
        status_message: None,
        model_type: new.model_type.clone().filter(|t| !t.is_empty()),
        source_run_id: new.source_run_id.clone().filter(|r| !r.is_empty()),
        lifecycle_stage: LifecycleStage::Active.as_str().to_owned(),
    };
    let seq = tx.seq();
    db.execute(
        &format!("INSERT INTO logged_models ({}, seq) VALUES ({})", ModelRow::COLUMNS, placeholders(1, 13)),
        &row.params(seq),
    )?;
    let mut changes = vec![row.change()];
    let tags = last_per_key(&new.tags);
    for tag in &tags {
        changes.push(upsert_tag(db, &row, tag, seq)?.change());
    }
    changes.extend(insert_params(db, &row, &new.params, seq)?);
    tx.append(db, event(actor, "create_logged_model", &row.model_id, changes))?;
    row.into_domain(tags, last_per_key(&new.params), Vec::new())
}

/// Sets a model's final status. Like MLflow, any stage may be finalized, repeatedly.
pub fn finalize(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    model_id: &str,
    status: LoggedModelStatus,
    status_message: Option<&str>,
) -> Result<LoggedModel> {
    let mut row = get_row(db, model_id)?;
    row.status = status.as_str().to_owned();
    row.status_message = status_message.map(str::to_owned);
    row.last_updated_time = tx.now();
    write_row(db, &row, tx.seq())?;
    tx.append(db, event(actor, "finalize_logged_model", model_id, vec![row.change()]))?;
    get(db, model_id, ViewType::All)
}

/// Tombstones a model. Its rows stay, so a deleted model's files still pin registered versions.
pub fn delete(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, model_id: &str) -> Result<()> {
    let mut row = get_row(db, model_id)?;
    row.lifecycle_stage = LifecycleStage::Deleted.as_str().to_owned();
    row.last_updated_time = tx.now();
    write_row(db, &row, tx.seq())?;
    tx.append(db, event(actor, "delete_logged_model", model_id, vec![row.change()]))
}

/// Sets tags; the last value of a repeated key wins.
pub fn set_tags(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, model_id: &str, tags: &[KeyValue]) -> Result<()> {
    let row = get_row(db, model_id)?;
    let seq = tx.seq();
    let mut changes = Vec::with_capacity(tags.len());
    for tag in last_per_key(tags) {
        changes.push(upsert_tag(db, &row, &tag, seq)?.change());
    }
    tx.append(db, event(actor, "set_logged_model_tags", model_id, changes))
}

/// Removes one tag; a missing tag is MLflow's not-found error.
pub fn delete_tag(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, model_id: &str, key: &str) -> Result<()> {
    let row = get_row(db, model_id)?;
    let removed = db.execute(
        "DELETE FROM logged_model_tags WHERE model_pk = $1 AND key = $2",
        &[row.model_pk.into(), key.into()],
    )?;
    if removed == 0 {
        return Err(Error::not_found(format!(
            "No tag with key {} found for model with ID {}.",
            py_repr(key),
            py_repr(model_id)
        )));
    }
    let change = ModelChild::removal(ModelChildKind::Tag, model_id, key);
    tx.append(db, event(actor, "delete_logged_model_tag", model_id, vec![change]))
}

/// Python's `repr` of a string as MLflow's `{key!r}` shows it.
fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') { format!("\"{s}\"") } else { format!("'{}'", s.replace('\'', "\\'")) }
}

/// Logs params to a model (in any stage, as MLflow allows).
pub fn log_params(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, model_id: &str, params: &[KeyValue]) -> Result<()> {
    let row = get_row(db, model_id)?;
    let changes = insert_params(db, &row, params, tx.seq())?;
    tx.append(db, event(actor, "log_logged_model_params", model_id, changes))
}

/// Reads one model with its tags, params and metrics, if `view` shows its lifecycle stage.
pub fn get(db: &mut dyn Db, model_id: &str, view: ViewType) -> Result<LoggedModel> {
    let row = get_row(db, model_id)?;
    if !view.includes(if row.is_active() { LifecycleStage::Active } else { LifecycleStage::Deleted }) {
        return Err(not_found(model_id));
    }
    hydrate(db, &[row.model_pk])?.pop().ok_or_else(|| not_found(model_id))
}

/// Reads models with their tags, params and metrics, in the order of `pks`, with one query per
/// table for each chunk of keys; keys that do not exist are skipped.
pub fn hydrate(db: &mut dyn Db, pks: &[i64]) -> Result<Vec<LoggedModel>> {
    let mut rows: HashMap<i64, ModelRow> = HashMap::with_capacity(pks.len());
    let mut tags: HashMap<i64, Vec<KeyValue>> = HashMap::new();
    let mut params: HashMap<i64, Vec<KeyValue>> = HashMap::new();
    let mut points = HashMap::new();
    for chunk in pks.chunks(IN_LIST_CHUNK) {
        let ids: Vec<SqlValue> = chunk.iter().map(|pk| SqlValue::Int(*pk)).collect();
        let list = placeholders(1, chunk.len());
        let sql = format!("SELECT {} FROM logged_models WHERE model_pk IN ({list})", ModelRow::COLUMNS);
        for row in db.query(&sql, &ids)? {
            let row = ModelRow::from_row(row)?;
            rows.insert(row.model_pk, row);
        }
        for (kind, into) in [(ModelChildKind::Tag, &mut tags), (ModelChildKind::Param, &mut params)] {
            // The table name is one of two constants.
            let sql = format!(
                "SELECT model_pk, key, value FROM {} WHERE model_pk IN ({list}) ORDER BY model_pk, key",
                kind.table()
            );
            for row in db.query(&sql, &ids)? {
                let mut it = row.into_iter();
                let pk = it.next().unwrap_or(SqlValue::Null).int()?;
                let key = it.next().unwrap_or(SqlValue::Null).into_text()?;
                let value = it.next().unwrap_or(SqlValue::Null).into_text()?;
                into.entry(pk).or_default().push(KeyValue { key, value });
            }
        }
        metrics::read_into(db, &ids, &list, &mut points)?;
    }
    pks.iter()
        .filter_map(|pk| rows.remove(pk).map(|row| (*pk, row)))
        .map(|(pk, row)| {
            row.into_domain(
                tags.remove(&pk).unwrap_or_default(),
                params.remove(&pk).unwrap_or_default(),
                points.remove(&pk).unwrap_or_default(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_keep_the_last_value() {
        let items = [KeyValue::new("b", "1"), KeyValue::new("a", "2"), KeyValue::new("b", "3")];
        assert_eq!(last_per_key(&items), vec![KeyValue::new("a", "2"), KeyValue::new("b", "3")]);
    }

    #[test]
    fn repr_matches_python() {
        assert_eq!(py_repr("k"), "'k'");
        assert_eq!(py_repr("it's"), "\"it's\"");
    }
}
