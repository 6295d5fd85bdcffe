//! Model versions and their tags and stages: writes (run by the writer) and batched reads.

use std::collections::{HashMap, HashSet};

use cairn_core::audit::{Change, Payload, child_id, entity};
use cairn_core::model::{Actor, KeyValue};
use cairn_core::registry::validation::{
    validate_description, validate_model_name, validate_model_version_tag, validate_tag_key,
};
use cairn_core::registry::{HistoryKind, ModelVersion, ModelVersionStatus, NewModelVersion, Stage};
use cairn_core::{Error, Result};

use super::history::{Detail, Recorder};
use super::models;
use super::pinning;
use super::rows::{Cols, KeyedRow, ModelRow, VersionRow};
use crate::sql::audit::NewEvent;
use crate::sql::common::{IN_LIST_CHUNK, placeholders};
use crate::sql::db::{Db, SqlValue};
use crate::sql::writer::WriteTx;

/// MLflow's not-found error for a version.
pub fn not_found(name: &str, version: i64) -> Error {
    Error::not_found(format!("Model Version (name={name}, version={version}) not found"))
}

/// Reads one version row, if it exists.
pub fn find(db: &mut dyn Db, model_pk: i64, version: i64) -> Result<Option<VersionRow>> {
    let sql = format!("SELECT {} FROM model_versions WHERE model_pk = $1 AND version = $2", VersionRow::COLUMNS);
    db.query(&sql, &[model_pk.into(), version.into()])?.into_iter().next().map(VersionRow::from_row).transpose()
}

/// Reads a model and one of its versions, or fails with MLflow's not-found errors.
pub fn get_rows(db: &mut dyn Db, name: &str, version: i64) -> Result<(ModelRow, VersionRow)> {
    validate_model_name(name)?;
    let model = models::find(db, name)?.ok_or_else(|| not_found(name, version))?;
    let row = find(db, model.model_pk, version)?.ok_or_else(|| not_found(name, version))?;
    Ok((model, row))
}

/// Every version of a model, by version number.
pub fn rows_of(db: &mut dyn Db, model_pk: i64) -> Result<Vec<VersionRow>> {
    let sql = format!("SELECT {} FROM model_versions WHERE model_pk = $1 ORDER BY version", VersionRow::COLUMNS);
    db.query(&sql, &[model_pk.into()])?.into_iter().map(VersionRow::from_row).collect()
}

/// The rows of the versions `keys` (`(model_pk, version)` pairs) that exist.
pub fn rows_for(db: &mut dyn Db, keys: &[(i64, i64)]) -> Result<HashMap<(i64, i64), VersionRow>> {
    let wanted: HashSet<(i64, i64)> = keys.iter().copied().collect();
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(IN_LIST_CHUNK) {
        let mut pks: Vec<i64> = chunk.iter().map(|(pk, _)| *pk).collect();
        let mut versions: Vec<i64> = chunk.iter().map(|(_, v)| *v).collect();
        for list in [&mut pks, &mut versions] {
            list.sort_unstable();
            list.dedup();
        }
        // The two lists select a superset of the pairs; the set keeps the exact ones.
        let params: Vec<SqlValue> = pks.iter().chain(&versions).map(|v| SqlValue::Int(*v)).collect();
        let sql = format!(
            "SELECT {} FROM model_versions WHERE model_pk IN ({}) AND version IN ({})",
            VersionRow::COLUMNS,
            placeholders(1, pks.len()),
            placeholders(pks.len() + 1, versions.len())
        );
        for row in db.query(&sql, &params)? {
            let row = VersionRow::from_row(row)?;
            if wanted.contains(&(row.model_pk, row.version)) {
                out.insert((row.model_pk, row.version), row);
            }
        }
    }
    Ok(out)
}

/// Rewrites (or inserts) a version row.
pub fn write_row(db: &mut dyn Db, row: &VersionRow, seq: i64, insert: bool) -> Result<()> {
    let sql = if insert {
        format!("INSERT INTO model_versions ({}, seq) VALUES ({})", VersionRow::COLUMNS, placeholders(1, 15))
    } else {
        "UPDATE model_versions SET model_pk = $1, version = $2, creation_time = $3, last_updated_time = $4, \
         user_id = $5, current_stage = $6, description = $7, source = $8, run_id = $9, run_link = $10, status = $11, \
         status_message = $12, model_id = $13, pin_id = $14, seq = $15 WHERE model_pk = $1 AND version = $2"
            .to_owned()
    };
    db.execute(&sql, &row.params(seq))?;
    Ok(())
}

fn event<'a>(actor: &'a Actor, action: &'a str, id: &'a str, changes: Vec<Change>) -> NewEvent<'a> {
    NewEvent {
        actor: &actor.0,
        action,
        entity_type: entity::MODEL_VERSION,
        entity_id: id,
        payload: Payload::of(changes),
    }
}

fn upsert_tag(db: &mut dyn Db, row: &VersionRow, tag: &KeyValue, seq: i64) -> Result<Change> {
    db.execute(
        "INSERT INTO model_version_tags (model_pk, version, key, value, seq) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (model_pk, version, key) DO UPDATE SET value = excluded.value, seq = excluded.seq",
        &[row.model_pk.into(), row.version.into(), tag.key.as_str().into(), tag.value.as_str().into(), seq.into()],
    )?;
    Ok(KeyedRow::version_tag(row.model_pk, row.version, &tag.key, &tag.value).change())
}

/// Removes a version's tags and pinned files and returns their removal changes. The version
/// row itself and its aliases are the caller's business.
pub fn remove_children(db: &mut dyn Db, row: &VersionRow) -> Result<Vec<Change>> {
    let key = [SqlValue::from(row.model_pk), SqlValue::from(row.version)];
    let mut changes = Vec::new();
    let tags =
        db.query("SELECT key FROM model_version_tags WHERE model_pk = $1 AND version = $2 ORDER BY key", &key)?;
    for tag in tags {
        let key = Cols::new(tag).text()?;
        changes.push(KeyedRow::version_tag(row.model_pk, row.version, &key, "").removal());
    }
    db.execute("DELETE FROM model_version_tags WHERE model_pk = $1 AND version = $2", &key)?;
    if let Some(pin_id) = &row.pin_id {
        changes.extend(pinning::unpin(db, pin_id)?);
    }
    Ok(changes)
}

/// Validates a new version before it reaches the writer.
pub fn validate_new(new: &NewModelVersion) -> Result<()> {
    validate_model_name(&new.name)?;
    new.tags.iter().try_for_each(validate_model_version_tag)?;
    validate_description(new.description.as_deref())?;
    for (what, value) in [
        ("source", Some(new.source.as_str())),
        ("run_id", new.run_id.as_deref()),
        ("run_link", new.run_link.as_deref()),
        ("model_id", new.model_id.as_deref()),
        ("user_id", Some(new.user_id.as_str())),
    ] {
        if value.is_some_and(|v| v.contains('\0')) {
            return Err(Error::invalid(format!("'{what}' may not contain NUL characters")));
        }
    }
    Ok(())
}

/// The logged model a `models:/<m-id>[/…]` source names.
fn logged_model_of(source: &str) -> Option<String> {
    let first = source.strip_prefix("models:/")?.split('/').next()?;
    cairn_core::logged_models::is_model_id(first).then(|| first.to_owned())
}

/// Creates the next version of a model, READY at once, with its files pinned when its source
/// lies in Cairn.
pub fn create(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, new: &NewModelVersion) -> Result<ModelVersion> {
    validate_new(new)?;
    let mut model = models::get_row(db, &new.name)?;
    let model_id = new.model_id.clone().filter(|m| !m.is_empty()).or_else(|| logged_model_of(&new.source));
    // As in MLflow, a version registered from a logged model belongs to the run that logged it
    // when the caller names no run.
    let run_id = match new.run_id.clone().filter(|r| !r.is_empty()) {
        Some(run_id) => Some(run_id),
        None => match &model_id {
            Some(model_id) => crate::sql::logged_models::models::find(db, model_id)?.and_then(|m| m.source_run_id),
            None => None,
        },
    };
    // MLflow accepts a run id it has never seen (the run may live on another server, or the
    // caller registers before logging); the version is stored with it, pins no run files, and its
    // lineage reports the training run as missing.
    let (now, seq) = (tx.now(), tx.seq());
    let mut changes = Vec::new();
    let pin_id = pinning::pin(db, tx, &new.source, run_id.as_deref(), &mut changes)?;
    let row = VersionRow {
        model_pk: model.model_pk,
        version: model.next_version,
        creation_time: now,
        last_updated_time: now,
        user_id: new.user_id.clone(),
        current_stage: Stage::None.as_str().to_owned(),
        description: new.description.clone(),
        source: new.source.clone(),
        run_id,
        run_link: new.run_link.clone(),
        status: ModelVersionStatus::Ready.as_str().to_owned(),
        status_message: None,
        model_id,
        pin_id,
    };
    write_row(db, &row, seq, true)?;
    changes.push(row.change());
    for tag in models::last_value_per_key(&new.tags) {
        changes.push(upsert_tag(db, &row, tag, seq)?);
    }
    model.next_version += 1;
    model.last_updated_time = now;
    models::write_row(db, &model, seq, false)?;
    changes.push(model.change());
    let detail = Detail { version: Some(row.version), to_stage: Some(Stage::None), ..Detail::default() };
    changes.push(Recorder::new(tx, actor).record(
        db,
        model.model_pk,
        &model.name,
        HistoryKind::VersionCreated,
        detail,
    )?);
    let id = child_id(&model.name, &row.version.to_string());
    tx.append(db, event(actor, "create_model_version", &id, changes))?;
    hydrate_one(db, row, &model.name)
}

/// Reads one version.
pub fn get(db: &mut dyn Db, name: &str, version: i64) -> Result<ModelVersion> {
    let (model, row) = get_rows(db, name, version)?;
    hydrate_one(db, row, &model.name)
}

/// Sets or clears a version's description.
pub fn update(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    name: &str,
    version: i64,
    description: Option<&str>,
) -> Result<ModelVersion> {
    validate_description(description)?;
    let (model, mut row) = get_rows(db, name, version)?;
    row.description = description.map(str::to_owned);
    row.last_updated_time = tx.now();
    write_row(db, &row, tx.seq(), false)?;
    let id = child_id(name, &version.to_string());
    tx.append(db, event(actor, "update_model_version", &id, vec![row.change()]))?;
    hydrate_one(db, row, &model.name)
}

/// Deletes a version with its tags, pinned files and aliases (each alias removal recorded in
/// the history). Its number is not given out again.
pub fn delete(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, name: &str, version: i64) -> Result<()> {
    let (mut model, row) = get_rows(db, name, version)?;
    let mut recorder = Recorder::new(tx, actor);
    let mut changes = remove_children(db, &row)?;
    for alias in models::aliases_of(db, model.model_pk)?.into_iter().filter(|a| a.version == version) {
        db.execute(
            "DELETE FROM registered_model_aliases WHERE model_pk = $1 AND alias = $2",
            &[model.model_pk.into(), alias.alias.as_str().into()],
        )?;
        changes.push(KeyedRow::alias(model.model_pk, &alias.alias, version).removal());
        let detail = Detail { alias: Some(alias.alias), previous_version: Some(version), ..Detail::default() };
        changes.push(recorder.record(db, model.model_pk, name, HistoryKind::AliasDeleted, detail)?);
    }
    db.execute(
        "DELETE FROM model_versions WHERE model_pk = $1 AND version = $2",
        &[model.model_pk.into(), version.into()],
    )?;
    changes.push(Change { entity: entity::MODEL_VERSION, id: row.change().id, after: None });
    model.last_updated_time = tx.now();
    models::write_row(db, &model, tx.seq(), false)?;
    changes.push(model.change());
    let detail = Detail { version: Some(version), from_stage: Some(row.stage()?), ..Detail::default() };
    changes.push(recorder.record(db, model.model_pk, name, HistoryKind::VersionDeleted, detail)?);
    let id = child_id(name, &version.to_string());
    tx.append(db, event(actor, "delete_model_version", &id, changes))
}

/// Sets (or replaces) a version's tag.
pub fn set_tag(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    name: &str,
    version: i64,
    tag: &KeyValue,
) -> Result<()> {
    validate_model_version_tag(tag)?;
    let (_, row) = get_rows(db, name, version)?;
    let change = upsert_tag(db, &row, tag, tx.seq())?;
    let id = child_id(name, &version.to_string());
    tx.append(db, event(actor, "set_model_version_tag", &id, vec![change]))
}

/// Removes a version's tag; a tag that is not there is no error, as in MLflow.
pub fn delete_tag(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, name: &str, version: i64, key: &str) -> Result<()> {
    validate_tag_key(key)?;
    let (_, row) = get_rows(db, name, version)?;
    let removed = db.execute(
        "DELETE FROM model_version_tags WHERE model_pk = $1 AND version = $2 AND key = $3",
        &[row.model_pk.into(), row.version.into(), key.into()],
    )?;
    if removed == 0 {
        return Ok(());
    }
    let change = KeyedRow::version_tag(row.model_pk, row.version, key, "").removal();
    let id = child_id(name, &version.to_string());
    tx.append(db, event(actor, "delete_model_version_tag", &id, vec![change]))
}

/// Moves a version to `stage`. With `archive_existing` (only for Staging and Production), the
/// model's other versions in that stage move to Archived. Every move is a history entry.
pub fn transition(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    name: &str,
    version: i64,
    stage: Stage,
    archive_existing: bool,
) -> Result<ModelVersion> {
    if archive_existing && !matches!(stage, Stage::Staging | Stage::Production) {
        return Err(Error::invalid(format!(
            "Model version transition cannot archive existing model versions because '{}' is not an Active stage. \
             Valid stages are ['Staging', 'Production']",
            stage.as_str()
        )));
    }
    let (mut model, mut row) = get_rows(db, name, version)?;
    let (now, seq) = (tx.now(), tx.seq());
    let mut recorder = Recorder::new(tx, actor);
    let mut changes = Vec::new();
    let mut moves: Vec<(VersionRow, Stage)> = Vec::new();
    if archive_existing {
        for other in rows_of(db, model.model_pk)? {
            if other.version != version && other.current_stage == stage.as_str() {
                moves.push((other, Stage::Archived));
            }
        }
    }
    let from = row.stage()?;
    row.current_stage = stage.as_str().to_owned();
    row.last_updated_time = now;
    for (mut other, to) in moves {
        let from = other.stage()?;
        other.current_stage = to.as_str().to_owned();
        other.last_updated_time = now;
        write_row(db, &other, seq, false)?;
        changes.push(other.change());
        let detail =
            Detail { version: Some(other.version), from_stage: Some(from), to_stage: Some(to), ..Detail::default() };
        changes.push(recorder.record(db, model.model_pk, name, HistoryKind::StageTransition, detail)?);
    }
    write_row(db, &row, seq, false)?;
    changes.push(row.change());
    let detail = Detail { version: Some(version), from_stage: Some(from), to_stage: Some(stage), ..Detail::default() };
    changes.push(recorder.record(db, model.model_pk, name, HistoryKind::StageTransition, detail)?);
    model.last_updated_time = now;
    models::write_row(db, &model, seq, false)?;
    changes.push(model.change());
    let id = child_id(name, &version.to_string());
    tx.append(db, event(actor, "transition_model_version_stage", &id, changes))?;
    hydrate_one(db, row, &model.name)
}

/// Reads versions with their tags and aliases, in the order of `rows`; `names` maps each
/// row's model key to the model's name.
pub fn hydrate(db: &mut dyn Db, rows: Vec<VersionRow>, names: &HashMap<i64, String>) -> Result<Vec<ModelVersion>> {
    let wanted: HashSet<(i64, i64)> = rows.iter().map(|r| (r.model_pk, r.version)).collect();
    let mut pks: Vec<i64> = rows.iter().map(|r| r.model_pk).collect();
    pks.sort_unstable();
    pks.dedup();
    let mut tags: HashMap<(i64, i64), Vec<KeyValue>> = HashMap::new();
    let mut aliases: HashMap<(i64, i64), Vec<String>> = HashMap::new();
    for chunk in pks.chunks(IN_LIST_CHUNK) {
        let params: Vec<SqlValue> = chunk.iter().map(|pk| SqlValue::Int(*pk)).collect();
        let list = placeholders(1, chunk.len());
        let sql = format!(
            "SELECT model_pk, version, key, value FROM model_version_tags WHERE model_pk IN ({list}) \
             ORDER BY model_pk, version, key"
        );
        for row in db.query(&sql, &params)? {
            let mut c = Cols::new(row);
            let key = (c.int()?, c.int()?);
            if wanted.contains(&key) {
                tags.entry(key).or_default().push(KeyValue { key: c.text()?, value: c.text()? });
            }
        }
        let sql = format!(
            "SELECT model_pk, version, alias FROM registered_model_aliases WHERE model_pk IN ({list}) \
             ORDER BY model_pk, alias"
        );
        for row in db.query(&sql, &params)? {
            let mut c = Cols::new(row);
            let key = (c.int()?, c.int()?);
            if wanted.contains(&key) {
                aliases.entry(key).or_default().push(c.text()?);
            }
        }
    }
    rows.into_iter()
        .map(|row| {
            let key = (row.model_pk, row.version);
            let name = names
                .get(&row.model_pk)
                .cloned()
                .ok_or_else(|| Error::internal(format!("model version of unknown model {}", row.model_pk)))?;
            Ok(ModelVersion {
                current_stage: row.stage()?,
                status: row.status()?,
                name,
                version: row.version,
                creation_timestamp: row.creation_time,
                last_updated_timestamp: row.last_updated_time,
                user_id: row.user_id,
                description: row.description,
                source: row.source,
                run_id: row.run_id,
                run_link: row.run_link,
                status_message: row.status_message,
                tags: tags.remove(&key).unwrap_or_default(),
                aliases: aliases.remove(&key).unwrap_or_default(),
                model_id: row.model_id,
                pin_id: row.pin_id,
            })
        })
        .collect()
}

/// Reads one version of the model called `name`.
pub fn hydrate_one(db: &mut dyn Db, row: VersionRow, name: &str) -> Result<ModelVersion> {
    let names = HashMap::from([(row.model_pk, name.to_owned())]);
    hydrate(db, vec![row], &names)?.pop().ok_or_else(|| Error::internal("hydrating a version returned nothing"))
}
