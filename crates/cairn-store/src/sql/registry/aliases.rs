//! Aliases: named pointers from a registered model to one of its versions. Setting, moving and
//! removing one is recorded in the history with the version it pointed to before.

use cairn_core::model::Actor;
use cairn_core::registry::validation::{
    is_latest_alias, validate_alias_name, validate_model_name, validate_settable_alias,
};
use cairn_core::registry::{HistoryKind, ModelVersion};
use cairn_core::{Error, Result};

use super::history::{Detail, Recorder};
use super::rows::{Cols, KeyedRow};
use super::{models, versions};
use crate::sql::db::Db;
use crate::sql::writer::WriteTx;

/// The version `alias` of model `model_pk` points to, if it is set.
fn target(db: &mut dyn Db, model_pk: i64, alias: &str) -> Result<Option<i64>> {
    db.query(
        "SELECT version FROM registered_model_aliases WHERE model_pk = $1 AND alias = $2",
        &[model_pk.into(), alias.into()],
    )?
    .into_iter()
    .next()
    .map(|row| Cols::new(row).int())
    .transpose()
}

/// Points `alias` at `version`, creating or moving it.
pub fn set(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, name: &str, alias: &str, version: i64) -> Result<()> {
    validate_model_name(name)?;
    validate_settable_alias(alias)?;
    let (model, _) = versions::get_rows(db, name, version)?;
    let previous = target(db, model.model_pk, alias)?;
    db.execute(
        "INSERT INTO registered_model_aliases (model_pk, alias, version, seq) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (model_pk, alias) DO UPDATE SET version = excluded.version, seq = excluded.seq",
        &[model.model_pk.into(), alias.into(), version.into(), tx.seq().into()],
    )?;
    let detail = Detail {
        version: Some(version),
        alias: Some(alias.to_owned()),
        previous_version: previous,
        ..Detail::default()
    };
    let changes = vec![
        KeyedRow::alias(model.model_pk, alias, version).change(),
        Recorder::new(tx, actor).record(db, model.model_pk, name, HistoryKind::AliasSet, detail)?,
    ];
    tx.append(db, models::event(actor, "set_registered_model_alias", name, changes))
}

/// Removes `alias`; an alias that is not set is no error, as in MLflow.
pub fn delete(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, name: &str, alias: &str) -> Result<()> {
    validate_model_name(name)?;
    validate_alias_name(alias)?;
    let model = models::get_row(db, name)?;
    let Some(previous) = target(db, model.model_pk, alias)? else { return Ok(()) };
    db.execute(
        "DELETE FROM registered_model_aliases WHERE model_pk = $1 AND alias = $2",
        &[model.model_pk.into(), alias.into()],
    )?;
    let detail = Detail { alias: Some(alias.to_owned()), previous_version: Some(previous), ..Detail::default() };
    let changes = vec![
        KeyedRow::alias(model.model_pk, alias, previous).removal(),
        Recorder::new(tx, actor).record(db, model.model_pk, name, HistoryKind::AliasDeleted, detail)?,
    ];
    tx.append(db, models::event(actor, "delete_registered_model_alias", name, changes))
}

/// The version `alias` points to. `latest` (any case) is the model's highest version.
pub fn get_version(db: &mut dyn Db, name: &str, alias: &str) -> Result<ModelVersion> {
    validate_model_name(name)?;
    validate_alias_name(alias)?;
    let model = models::get_row(db, name)?;
    if is_latest_alias(alias) {
        let highest = versions::rows_of(db, model.model_pk)?.pop();
        return match highest {
            Some(row) => versions::hydrate_one(db, row, &model.name),
            None => Err(Error::not_found(format!("Latest version not found for model {name}."))),
        };
    }
    match target(db, model.model_pk, alias)? {
        Some(version) => versions::get(db, name, version),
        None => Err(Error::invalid(format!("Registered model alias {alias} not found."))),
    }
}
