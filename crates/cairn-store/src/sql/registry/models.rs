//! Registered models and their tags: writes (run by the writer) and batched reads.

use std::collections::HashMap;

use cairn_core::audit::{Change, Payload, entity};
use cairn_core::model::{Actor, KeyValue};
use cairn_core::registry::validation::{
    validate_description, validate_model_name, validate_new_model_name, validate_registered_model_tag, validate_tag_key,
};
use cairn_core::registry::{HistoryKind, ModelAlias, ModelVersion, NewRegisteredModel, RegisteredModel, Stage};
use cairn_core::{Error, Result};

use super::history::{self, Detail, Recorder};
use super::rows::{Cols, KeyedRow, ModelRow, VersionRow};
use super::versions;
use crate::sql::audit::NewEvent;
use crate::sql::common::{IN_LIST_CHUNK, placeholders};
use crate::sql::db::{Db, DbError, SqlValue};
use crate::sql::writer::WriteTx;

/// The tag that marks a registered model as an MLflow prompt.
pub const IS_PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// MLflow's not-found error for a model name.
pub fn not_found(name: &str) -> Error {
    Error::not_found(format!("Registered Model with name={name} not found"))
}

/// Reads one model row by name, if it exists.
pub fn find(db: &mut dyn Db, name: &str) -> Result<Option<ModelRow>> {
    let sql = format!("SELECT {} FROM registered_models WHERE name = $1", ModelRow::COLUMNS);
    db.query(&sql, &[name.into()])?.into_iter().next().map(ModelRow::from_row).transpose()
}

/// Reads one model row by name or fails with MLflow's not-found error.
pub fn get_row(db: &mut dyn Db, name: &str) -> Result<ModelRow> {
    find(db, name)?.ok_or_else(|| not_found(name))
}

/// Rewrites (or inserts) a model row. A name taken by another model is the caller's conflict.
pub fn write_row(db: &mut dyn Db, row: &ModelRow, seq: i64, insert: bool) -> Result<()> {
    let sql = if insert {
        format!("INSERT INTO registered_models ({}, seq) VALUES ({})", ModelRow::COLUMNS, placeholders(1, 7))
    } else {
        "UPDATE registered_models SET model_pk = $1, name = $2, creation_time = $3, last_updated_time = $4, \
         description = $5, next_version = $6, seq = $7 WHERE model_pk = $1"
            .to_owned()
    };
    match db.execute(&sql, &row.params(seq)) {
        Ok(_) => Ok(()),
        Err(DbError::UniqueViolation(_)) => {
            Err(Error::AlreadyExists(format!("Registered Model (name={}) already exists.", row.name)))
        }
        Err(e) => Err(e.into()),
    }
}

/// The audit event of a change to model `name`.
pub fn event<'a>(actor: &'a Actor, action: &'a str, name: &'a str, changes: Vec<Change>) -> NewEvent<'a> {
    NewEvent {
        actor: &actor.0,
        action,
        entity_type: entity::REGISTERED_MODEL,
        entity_id: name,
        payload: Payload::of(changes),
    }
}

fn upsert_tag(db: &mut dyn Db, model_pk: i64, tag: &KeyValue, seq: i64) -> Result<Change> {
    db.execute(
        "INSERT INTO registered_model_tags (model_pk, key, value, seq) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value, seq = excluded.seq",
        &[model_pk.into(), tag.key.as_str().into(), tag.value.as_str().into(), seq.into()],
    )?;
    Ok(KeyedRow::model_tag(model_pk, &tag.key, &tag.value).change())
}

/// Keeps the last value of each key, in order of first appearance, as MLflow's dict does.
pub fn last_value_per_key(tags: &[KeyValue]) -> Vec<&KeyValue> {
    let mut out: Vec<&KeyValue> = Vec::new();
    for tag in tags {
        match out.iter_mut().find(|t| t.key == tag.key) {
            Some(slot) => *slot = tag,
            None => out.push(tag),
        }
    }
    out
}

/// Validates a new model before it reaches the writer.
pub fn validate_new(new: &NewRegisteredModel) -> Result<()> {
    validate_model_name(&new.name)?;
    new.tags.iter().try_for_each(validate_registered_model_tag)?;
    validate_description(new.description.as_deref())
}

fn is_prompt(tags: &[&KeyValue]) -> bool {
    tags.iter().any(|t| t.key == IS_PROMPT_TAG && t.value.eq_ignore_ascii_case("true"))
}

/// MLflow's conflict message: a model and a prompt may not share a name, and says which.
fn name_conflict(db: &mut dyn Db, existing: &ModelRow, new_tags: &[&KeyValue]) -> Result<Error> {
    let existing_prompt =
        tags_of(db, existing.model_pk)?.iter().any(|t| t.key == IS_PROMPT_TAG && t.value.eq_ignore_ascii_case("true"));
    let entity_of = |prompt: bool| if prompt { "Prompt" } else { "Registered Model" };
    let (old, new) = (entity_of(existing_prompt), entity_of(is_prompt(new_tags)));
    if old != new {
        return Ok(Error::AlreadyExists(format!(
            "Tried to create a {} with name {}, but the name is already taken by a {}. MLflow does not allow \
             creating a model and a prompt with the same name.",
            new.to_lowercase(),
            py_quote(&existing.name),
            old.to_lowercase()
        )));
    }
    Ok(Error::AlreadyExists(format!("{new} (name={}) already exists.", existing.name)))
}

fn py_quote(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') { format!("\"{s}\"") } else { format!("'{}'", s.replace('\'', "\\'")) }
}

/// Creates a registered model with its tags.
pub fn create(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, new: &NewRegisteredModel) -> Result<RegisteredModel> {
    validate_new(new)?;
    let tags = last_value_per_key(&new.tags);
    if let Some(existing) = find(db, &new.name)? {
        return Err(name_conflict(db, &existing, &tags)?);
    }
    let now = tx.now();
    let seq = tx.seq();
    let row = ModelRow {
        model_pk: history::next_model_pk(db)?,
        name: new.name.clone(),
        creation_time: now,
        last_updated_time: now,
        description: new.description.clone(),
        next_version: 1,
    };
    write_row(db, &row, seq, true)?;
    let mut changes = vec![row.change()];
    for tag in tags {
        changes.push(upsert_tag(db, row.model_pk, tag, seq)?);
    }
    let mut recorder = Recorder::new(tx, actor);
    changes.push(recorder.record(db, row.model_pk, &row.name, HistoryKind::ModelCreated, Detail::default())?);
    tx.append(db, event(actor, "create_registered_model", &row.name, changes))?;
    hydrate_one(db, row)
}

/// Renames a model; its versions, tags and aliases follow (they hang off its key), its
/// versions' update times move, and the access granted on it moves to the new name, as in MLflow.
pub fn rename(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, name: &str, new_name: &str) -> Result<RegisteredModel> {
    validate_new_model_name(new_name)?;
    let mut row = get_row(db, name)?;
    if new_name != name && find(db, new_name)?.is_some() {
        return Err(Error::AlreadyExists(format!("Registered Model (name={new_name}) already exists.")));
    }
    let (now, seq) = (tx.now(), tx.seq());
    row.name = new_name.to_owned();
    row.last_updated_time = now;
    write_row(db, &row, seq, false)?;
    let mut changes = vec![row.change()];
    for mut version in versions::rows_of(db, row.model_pk)? {
        version.last_updated_time = now;
        versions::write_row(db, &version, seq, false)?;
        changes.push(version.change());
    }
    if new_name != name {
        changes.extend(crate::sql::auth::writes::follow_model_rename(db, seq, name, new_name)?);
    }
    let detail = Detail { previous_name: Some(name.to_owned()), ..Detail::default() };
    changes.push(Recorder::new(tx, actor).record(db, row.model_pk, new_name, HistoryKind::ModelRenamed, detail)?);
    tx.append(db, event(actor, "rename_registered_model", new_name, changes))?;
    hydrate_one(db, row)
}

/// Sets or clears a model's description.
pub fn update(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    name: &str,
    description: Option<&str>,
) -> Result<RegisteredModel> {
    validate_description(description)?;
    let mut row = get_row(db, name)?;
    row.description = description.map(str::to_owned);
    row.last_updated_time = tx.now();
    write_row(db, &row, tx.seq(), false)?;
    tx.append(db, event(actor, "update_registered_model", name, vec![row.change()]))?;
    hydrate_one(db, row)
}

/// Deletes a model with its tags, versions (with their tags and pinned files), aliases and the
/// access granted on it. The history stays, closed by alias removals and a `model_deleted` entry.
pub fn delete(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, name: &str) -> Result<()> {
    let row = get_row(db, name)?;
    let pk = [SqlValue::from(row.model_pk)];
    let mut changes =
        vec![Change { entity: entity::REGISTERED_MODEL, id: super::rows::model_id(row.model_pk), after: None }];
    let mut recorder = Recorder::new(tx, actor);
    for alias in aliases_of(db, row.model_pk)? {
        changes.push(KeyedRow::alias(row.model_pk, &alias.alias, alias.version).removal());
        let detail = Detail { alias: Some(alias.alias), previous_version: Some(alias.version), ..Detail::default() };
        changes.push(recorder.record(db, row.model_pk, name, HistoryKind::AliasDeleted, detail)?);
    }
    for tag in tags_of(db, row.model_pk)? {
        changes.push(KeyedRow::model_tag(row.model_pk, &tag.key, &tag.value).removal());
    }
    for version in versions::rows_of(db, row.model_pk)? {
        changes.extend(versions::remove_children(db, &version)?);
        changes.push(Change { entity: entity::MODEL_VERSION, id: version.change().id, after: None });
    }
    for table in ["registered_model_aliases", "registered_model_tags", "model_versions", "registered_models"] {
        // `table` is one of the constants above.
        db.execute(&format!("DELETE FROM {table} WHERE model_pk = $1"), &pk)?;
    }
    changes.extend(crate::sql::auth::writes::drop_model_access(db, name)?);
    changes.push(recorder.record(db, row.model_pk, name, HistoryKind::ModelDeleted, Detail::default())?);
    tx.append(db, event(actor, "delete_registered_model", name, changes))
}

/// Sets (or replaces) a model's tag.
pub fn set_tag(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, name: &str, tag: &KeyValue) -> Result<()> {
    validate_model_name(name)?;
    validate_registered_model_tag(tag)?;
    let row = get_row(db, name)?;
    let change = upsert_tag(db, row.model_pk, tag, tx.seq())?;
    tx.append(db, event(actor, "set_registered_model_tag", name, vec![change]))
}

/// Removes a model's tag; a tag that is not there is no error, as in MLflow.
pub fn delete_tag(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, name: &str, key: &str) -> Result<()> {
    validate_model_name(name)?;
    validate_tag_key(key)?;
    let row = get_row(db, name)?;
    let removed = db.execute(
        "DELETE FROM registered_model_tags WHERE model_pk = $1 AND key = $2",
        &[row.model_pk.into(), key.into()],
    )?;
    if removed == 0 {
        return Ok(());
    }
    let change = KeyedRow::model_tag(row.model_pk, key, "").removal();
    tx.append(db, event(actor, "delete_registered_model_tag", name, vec![change]))
}

/// A model's tags, ordered by key.
pub fn tags_of(db: &mut dyn Db, model_pk: i64) -> Result<Vec<KeyValue>> {
    Ok(tags_by_model(db, &[model_pk])?.remove(&model_pk).unwrap_or_default())
}

/// A model's aliases, ordered by alias.
pub fn aliases_of(db: &mut dyn Db, model_pk: i64) -> Result<Vec<ModelAlias>> {
    Ok(aliases_by_model(db, &[model_pk])?.remove(&model_pk).unwrap_or_default())
}

/// Runs `sql` (which must end in `IN (`) over `pks` in chunks and hands each row to `f`.
fn for_each_in(
    db: &mut dyn Db,
    sql: &str,
    tail: &str,
    pks: &[i64],
    mut f: impl FnMut(Cols) -> Result<()>,
) -> Result<()> {
    for chunk in pks.chunks(IN_LIST_CHUNK) {
        let params: Vec<SqlValue> = chunk.iter().map(|pk| SqlValue::Int(*pk)).collect();
        let text = format!("{sql}{}){tail}", placeholders(1, chunk.len()));
        for row in db.query(&text, &params)? {
            f(Cols::new(row))?;
        }
    }
    Ok(())
}

fn tags_by_model(db: &mut dyn Db, pks: &[i64]) -> Result<HashMap<i64, Vec<KeyValue>>> {
    let mut out: HashMap<i64, Vec<KeyValue>> = HashMap::new();
    let sql = "SELECT model_pk, key, value FROM registered_model_tags WHERE model_pk IN (";
    for_each_in(db, sql, " ORDER BY model_pk, key", pks, |mut c| {
        let pk = c.int()?;
        out.entry(pk).or_default().push(KeyValue { key: c.text()?, value: c.text()? });
        Ok(())
    })?;
    Ok(out)
}

fn aliases_by_model(db: &mut dyn Db, pks: &[i64]) -> Result<HashMap<i64, Vec<ModelAlias>>> {
    let mut out: HashMap<i64, Vec<ModelAlias>> = HashMap::new();
    let sql = "SELECT model_pk, alias, version FROM registered_model_aliases WHERE model_pk IN (";
    for_each_in(db, sql, " ORDER BY model_pk, alias", pks, |mut c| {
        let pk = c.int()?;
        out.entry(pk).or_default().push(ModelAlias { alias: c.text()?, version: c.int()? });
        Ok(())
    })?;
    Ok(out)
}

/// The highest version in each stage of each model. Stages are listed in the order MLflow's
/// entity lists them: by the lowest version in each stage. One grouped pass finds the versions
/// (linear in the number of versions), a second reads their rows.
fn latest_by_model(db: &mut dyn Db, pks: &[i64]) -> Result<HashMap<i64, Vec<VersionRow>>> {
    // (model_pk, version) -> the lowest version in its stage, which orders the stages.
    let mut latest: HashMap<(i64, i64), i64> = HashMap::new();
    let sql = "SELECT model_pk, MAX(version), MIN(version) FROM model_versions WHERE model_pk IN (";
    for_each_in(db, sql, " GROUP BY model_pk, current_stage", pks, |mut c| {
        latest.insert((c.int()?, c.int()?), c.int()?);
        Ok(())
    })?;
    let keys: Vec<(i64, i64)> = latest.keys().copied().collect();
    let mut found: Vec<(i64, VersionRow)> = versions::rows_for(db, &keys)?
        .into_iter()
        .filter_map(|(key, row)| latest.get(&key).map(|first| (*first, row)))
        .collect();
    found.sort_by_key(|(first, v)| (v.model_pk, *first));
    let mut out: HashMap<i64, Vec<VersionRow>> = HashMap::new();
    for (_, row) in found {
        out.entry(row.model_pk).or_default().push(row);
    }
    Ok(out)
}

/// Reads models with their tags, aliases and latest versions, in the order of `rows`.
pub fn hydrate(db: &mut dyn Db, rows: Vec<ModelRow>) -> Result<Vec<RegisteredModel>> {
    let pks: Vec<i64> = rows.iter().map(|r| r.model_pk).collect();
    let mut tags = tags_by_model(db, &pks)?;
    let mut aliases = aliases_by_model(db, &pks)?;
    let mut latest = latest_by_model(db, &pks)?;
    let names: HashMap<i64, String> = rows.iter().map(|r| (r.model_pk, r.name.clone())).collect();
    let latest_rows: Vec<VersionRow> = pks.iter().flat_map(|pk| latest.remove(pk).unwrap_or_default()).collect();
    let mut latest_versions: HashMap<i64, Vec<ModelVersion>> = HashMap::new();
    for (row, version) in latest_rows.iter().zip(versions::hydrate(db, latest_rows.clone(), &names)?) {
        latest_versions.entry(row.model_pk).or_default().push(version);
    }
    Ok(rows
        .into_iter()
        .map(|row| RegisteredModel {
            tags: tags.remove(&row.model_pk).unwrap_or_default(),
            aliases: aliases.remove(&row.model_pk).unwrap_or_default(),
            latest_versions: latest_versions.remove(&row.model_pk).unwrap_or_default(),
            name: row.name,
            creation_timestamp: row.creation_time,
            last_updated_timestamp: row.last_updated_time,
            description: row.description,
        })
        .collect())
}

fn hydrate_one(db: &mut dyn Db, row: ModelRow) -> Result<RegisteredModel> {
    hydrate(db, vec![row])?.pop().ok_or_else(|| Error::internal("hydrating a model returned nothing"))
}

/// Reads one model by name.
pub fn get(db: &mut dyn Db, name: &str) -> Result<RegisteredModel> {
    validate_model_name(name)?;
    let row = get_row(db, name)?;
    hydrate_one(db, row)
}

/// The highest version in each of `stages` (every stage when empty).
pub fn latest_versions(db: &mut dyn Db, name: &str, stages: &[Stage]) -> Result<Vec<ModelVersion>> {
    let model = get(db, name)?;
    Ok(model.latest_versions.into_iter().filter(|v| stages.is_empty() || stages.contains(&v.current_stage)).collect())
}
