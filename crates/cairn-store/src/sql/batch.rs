//! `log-batch`: params, metrics and tags written to one run atomically, with one audit event.

use std::collections::HashMap;

use cairn_core::audit::{ParamRow, Payload, entity, params_digest};
use cairn_core::model::{Actor, Batch, KeyValue};
use cairn_core::validation::{RUN_NAME_TAG, validate_batch, validate_run_id};
use cairn_core::{Error, Result};

use crate::sql::audit::NewEvent;
use crate::sql::db::{Db, SqlValue};
use crate::sql::metrics;
use crate::sql::rows::RunRow;
use crate::sql::runs;
use crate::sql::writer::WriteTx;

/// Inserts the params that are new and rejects the whole batch if any would change a stored
/// value (params are immutable).
fn log_params(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    run: &RunRow,
    params: &[KeyValue],
    payload: &mut Payload,
) -> Result<()> {
    if params.is_empty() {
        return Ok(());
    }
    let seq = tx.seq();
    let mut stored: HashMap<String, String> = match tx.cached_params(run.run_pk) {
        Some(known) => known.clone(),
        None => stored_params(db, run)?,
    };
    let conflicts: Vec<String> = params
        .iter()
        .filter_map(|p| stored.get(&p.key).filter(|old| **old != p.value).map(|old| (p, old)))
        .map(|(p, old)| {
            format!("{{'key': {}, 'old_value': {}, 'new_value': {}}}", py_repr(&p.key), py_repr(old), py_repr(&p.value))
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(Error::invalid(format!(
            "Changing param values is not allowed. Params were already logged='[{}]' for run ID='{}'.",
            conflicts.join(", "),
            run.run_id
        )));
    }
    let mut inserted = Vec::with_capacity(params.len());
    for p in params.iter() {
        // A key repeated in one batch with the same value is stored once.
        if stored.insert(p.key.clone(), p.value.clone()).is_some() {
            continue;
        }
        // Conflicts were ruled out above, so the insert can travel with the next statement.
        db.defer(
            "INSERT INTO params (run_pk, key, value, seq) VALUES ($1, $2, $3, $4)",
            &[run.run_pk.into(), p.key.as_str().into(), p.value.as_str().into(), seq.into()],
        )?;
        inserted.push(ParamRow { run_id: &run.run_id, key: &p.key, value: &p.value });
    }
    if !inserted.is_empty() {
        payload.params = Some(params_digest(&mut inserted));
    }
    tx.cache_params(run, stored);
    Ok(())
}

fn stored_params(db: &mut dyn Db, run: &RunRow) -> Result<HashMap<String, String>> {
    let mut stored = HashMap::new();
    for row in db.query("SELECT key, value FROM params WHERE run_pk = $1", &[run.run_pk.into()])? {
        let mut it = row.into_iter();
        let key = it.next().unwrap_or(SqlValue::Null).into_text()?;
        stored.insert(key, it.next().unwrap_or(SqlValue::Null).into_text()?);
    }
    Ok(stored)
}

/// Sets tags; the last value of a repeated key wins. Setting `mlflow.runName` renames the run.
fn set_tags(db: &mut dyn Db, run: &mut RunRow, tags: &[KeyValue], seq: i64, payload: &mut Payload) -> Result<()> {
    let mut last: Vec<&KeyValue> = Vec::with_capacity(tags.len());
    for tag in tags {
        last.retain(|t| t.key != tag.key);
        last.push(tag);
    }
    for tag in last {
        payload.changes.push(runs::upsert_tag(db, run, &tag.key, &tag.value, seq)?.change());
        if tag.key == RUN_NAME_TAG && run.name != tag.value {
            run.name = tag.value.clone();
            runs::write_row(db, run, seq)?;
            payload.changes.push(run.change());
        }
    }
    Ok(())
}

/// Validates a batch as MLflow does before touching the store.
pub fn validate(run_id: &str, batch: &Batch) -> Result<()> {
    validate_run_id(run_id)?;
    validate_batch(batch)
}

/// Python's `repr` of a string, which MLflow's conflict message embeds.
fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Logs a validated batch to an active run.
pub fn log_batch(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, run_id: &str, batch: &Batch) -> Result<()> {
    log_batch_with(db, tx, actor, run_id, batch, |_, _, _, _| Ok(()))
}

/// Logs a validated batch to an active run, letting `extra` write more rows for the same run
/// (given the event's `seq`) and add their changes to the one audit event. Model-linked metrics
/// use this; `log_batch` passes a no-op, which the compiler removes.
pub fn log_batch_with(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    run_id: &str,
    batch: &Batch,
    extra: impl FnOnce(&mut dyn Db, i64, &RunRow, &mut Payload) -> Result<()>,
) -> Result<()> {
    let mut run = runs::get_active_row_cached(db, tx, run_id)?;
    let seq = tx.seq();
    let mut payload = Payload::default();
    log_params(db, tx, &run, &batch.params, &mut payload)?;
    payload.metrics = metrics::log(db, tx, &run, &batch.metrics)?;
    set_tags(db, &mut run, &batch.tags, seq, &mut payload)?;
    extra(db, seq, &run, &mut payload)?;
    tx.append(
        db,
        NewEvent { actor: &actor.0, action: "log_batch", entity_type: entity::RUN, entity_id: run_id, payload },
    )?;
    // A rename by the `mlflow.runName` tag changed the row.
    tx.cache_run(&run);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(py_repr("a"), "'a'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'\"b"), "'a\\'\"b'");
    }
}
