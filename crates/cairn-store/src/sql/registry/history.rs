//! The registry's history: append-only entries written in the same transaction (and audit event)
//! as the change they describe, and the two questions asked of them, "what happened to this
//! model" and "where did this alias point at time T".
//!
//! Every entry carries the model's name at the time it was written, so every name a model ever
//! had appears in the `name` column of some entry (its creation or a rename). That makes a
//! lookup by any current or former name one indexed query, and keeps the history of a deleted
//! model answerable.

use std::collections::BTreeMap;

use cairn_core::audit::Change;
use cairn_core::model::{Actor, Millis};
use cairn_core::registry::{HistoryEntry, HistoryKind, Stage};
use cairn_core::{Error, Result};

use super::rows::HistoryRow;
use crate::sql::common::{placeholders, query_opt_int};
use crate::sql::db::{Db, SqlValue};
use crate::sql::writer::WriteTx;

/// The optional fields of an entry; which ones are set depends on its kind.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    pub version: Option<i64>,
    pub alias: Option<String>,
    pub previous_version: Option<i64>,
    pub from_stage: Option<Stage>,
    pub to_stage: Option<Stage>,
    pub previous_name: Option<String>,
}

/// Writes the entries of one request, numbering them in order.
#[derive(Debug)]
pub struct Recorder {
    seq: i64,
    time: Millis,
    actor: String,
    next_entry: i64,
}

impl Recorder {
    /// A recorder for the current request of `tx`.
    pub fn new(tx: &WriteTx, actor: &Actor) -> Self {
        Recorder { seq: tx.seq(), time: tx.now(), actor: actor.0.clone(), next_entry: 1 }
    }

    /// Appends one entry and returns its audit change.
    pub fn record(
        &mut self,
        db: &mut dyn Db,
        model_pk: i64,
        name: &str,
        kind: HistoryKind,
        detail: Detail,
    ) -> Result<Change> {
        let row = HistoryRow {
            seq: self.seq,
            entry: self.next_entry,
            model_pk,
            time: self.time,
            actor: self.actor.clone(),
            kind: kind.as_str().to_owned(),
            name: name.to_owned(),
            version: detail.version,
            alias: detail.alias,
            previous_version: detail.previous_version,
            from_stage: detail.from_stage.map(|s| s.as_str().to_owned()),
            to_stage: detail.to_stage.map(|s| s.as_str().to_owned()),
            previous_name: detail.previous_name,
        };
        db.execute(
            &format!("INSERT INTO model_history ({}) VALUES ({})", HistoryRow::COLUMNS, placeholders(1, 13)),
            &row.params(),
        )?;
        self.next_entry += 1;
        Ok(row.change())
    }
}

/// A key for a new registered model: above every key in use and every key the history has
/// seen, so that a deleted model's history is never attributed to a later model.
pub fn next_model_pk(db: &mut dyn Db) -> Result<i64> {
    let sql = "SELECT MAX(m) FROM (SELECT MAX(model_pk) AS m FROM registered_models \
               UNION ALL SELECT MAX(model_pk) AS m FROM model_history) AS both_tables";
    Ok(query_opt_int(db, sql, &[])?.map_or(1, |max| max + 1).max(1))
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("Registered Model with name={name} not found"))
}

/// Keys of every model that was ever called `name`.
fn models_once_named(db: &mut dyn Db, name: &str) -> Result<Vec<i64>> {
    db.query("SELECT DISTINCT model_pk FROM model_history WHERE name = $1 ORDER BY model_pk", &[name.into()])?
        .into_iter()
        .map(|row| Ok(row.first().ok_or_else(|| Error::internal("empty history row"))?.int()?))
        .collect()
}

fn entries_of(db: &mut dyn Db, pks: &[i64], up_to: Option<Millis>) -> Result<Vec<HistoryRow>> {
    let mut params: Vec<SqlValue> = pks.iter().map(|pk| SqlValue::Int(*pk)).collect();
    let mut sql =
        format!("SELECT {} FROM model_history WHERE model_pk IN ({})", HistoryRow::COLUMNS, placeholders(1, pks.len()));
    if let Some(t) = up_to {
        params.push(t.into());
        sql.push_str(&format!(" AND time <= ${}", params.len()));
    }
    sql.push_str(" ORDER BY seq, entry");
    db.query(&sql, &params)?.into_iter().map(HistoryRow::from_row).collect()
}

/// The history of every model currently or formerly called `name`, oldest first, up to
/// `as_of` when given. Not found when no model ever had that name.
pub fn model_history(db: &mut dyn Db, name: &str, as_of: Option<Millis>) -> Result<Vec<HistoryEntry>> {
    let pks = models_once_named(db, name)?;
    if pks.is_empty() {
        return Err(not_found(name));
    }
    entries_of(db, &pks, as_of)?.into_iter().map(HistoryRow::into_domain).collect()
}

/// What one model looked like at the time asked about, replayed from its history.
#[derive(Debug, Default)]
struct StateAt {
    exists: bool,
    name: Option<String>,
    alias: Option<i64>,
}

/// The version `alias` of `name` pointed to at `at`.
///
/// `name` is resolved to one model: the model that had that name at `at`, else a model that
/// existed at `at` and had that name at some other time (asking by a model's new name about
/// a time before its rename). Its alias entries up to `at` are then replayed.
pub fn alias_as_of(db: &mut dyn Db, name: &str, alias: &str, at: Millis) -> Result<Option<i64>> {
    let pks = models_once_named(db, name)?;
    if pks.is_empty() {
        return Err(not_found(name));
    }
    let mut states: BTreeMap<i64, StateAt> = BTreeMap::new();
    for row in entries_of(db, &pks, Some(at))? {
        let state = states.entry(row.model_pk).or_default();
        match HistoryKind::parse(&row.kind).map_err(|_| Error::internal(format!("unknown kind '{}'", row.kind)))? {
            HistoryKind::ModelCreated | HistoryKind::ModelRenamed => {
                state.exists = true;
                state.name = Some(row.name.clone());
            }
            HistoryKind::ModelDeleted => *state = StateAt::default(),
            HistoryKind::AliasSet if row.alias.as_deref() == Some(alias) => state.alias = row.version,
            HistoryKind::AliasDeleted if row.alias.as_deref() == Some(alias) => state.alias = None,
            _ => {}
        }
    }
    let named_then = states.values().find(|s| s.exists && s.name.as_deref() == Some(name));
    // Later keys belong to later models, so the last existing one is the likeliest meant.
    let chosen = named_then.or_else(|| states.values().rev().find(|s| s.exists));
    Ok(chosen.and_then(|s| s.alias))
}
