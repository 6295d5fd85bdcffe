//! The per-run artifact manifest (`artifact_files`): writes run by the writer with their audit
//! events, reads, and the purge of long-deleted runs that garbage collection starts with.
//!
//! A row's audit id is `run_id/path` and its after-image names the run by its public id, so the
//! log stays meaningful without the internal `run_pk`.

use cairn_core::artifacts::{ArtifactFile, NewArtifact, PurgeReport, RunArtifact};
use cairn_core::audit::{Change, Payload, child_id, entity};
use cairn_core::model::{Actor, LifecycleStage, Millis};
use cairn_core::{Error, Result};
use serde_json::{Value, json};

use crate::sql::audit::NewEvent;
use crate::sql::db::{Db, Row, SqlValue};
use crate::sql::rows::{ChildKind, ChildRow, RunRow};
use crate::sql::runs;
use crate::sql::writer::WriteTx;

/// Columns in the order [`file_from_row`] reads them.
const COLUMNS: &str = "path, digest, size, created_time";

/// The audit after-image of one manifest row.
pub fn image(run_id: &str, file: &ArtifactFile) -> Value {
    json!({
        "run_id": run_id,
        "path": file.path,
        "digest": file.digest,
        "size": file.size,
        "created_time": file.created_time,
    })
}

fn change(run_id: &str, file: &ArtifactFile) -> Change {
    Change { entity: entity::ARTIFACT_FILE, id: child_id(run_id, &file.path), after: Some(image(run_id, file)) }
}

fn removal(run_id: &str, path: &str) -> Change {
    Change { entity: entity::ARTIFACT_FILE, id: child_id(run_id, path), after: None }
}

/// Reads a row selected with [`COLUMNS`] (possibly followed by more columns).
pub fn file_from_row(row: Row) -> Result<ArtifactFile> {
    let mut it = row.into_iter();
    let mut next = || it.next().unwrap_or(SqlValue::Null);
    let path = next().into_text()?;
    let digest = next().into_text()?;
    let size = next().int()?;
    let created_time = next().int()?;
    let size = u64::try_from(size).map_err(|_| Error::internal(format!("artifact '{path}' has size {size}")))?;
    Ok(ArtifactFile { path, digest, size, created_time })
}

fn event<'a>(actor: &'a Actor, action: &'a str, run_id: &'a str, changes: Vec<Change>) -> NewEvent<'a> {
    NewEvent {
        actor: &actor.0,
        action,
        entity_type: entity::RUN,
        entity_id: run_id,
        payload: Payload { changes, metrics: None },
    }
}

/// Records (or replaces) one file of a run. Like MLflow, artifacts may be logged to a run in any
/// lifecycle stage; the run only has to exist.
pub fn put(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, run_id: &str, new: &NewArtifact) -> Result<ArtifactFile> {
    let run = runs::get_row(db, run_id)?;
    let size =
        i64::try_from(new.size).map_err(|_| Error::invalid(format!("artifact size {} is too large", new.size)))?;
    let file =
        ArtifactFile { path: new.path.clone(), digest: new.digest.clone(), size: new.size, created_time: tx.now() };
    db.execute(
        "INSERT INTO artifact_files (run_pk, path, digest, size, created_time, seq) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (run_pk, path) DO UPDATE SET digest = excluded.digest, size = excluded.size, \
         created_time = excluded.created_time, seq = excluded.seq",
        &[
            run.run_pk.into(),
            file.path.as_str().into(),
            file.digest.as_str().into(),
            size.into(),
            file.created_time.into(),
            tx.seq().into(),
        ],
    )?;
    tx.append(db, event(actor, "log_artifact", run_id, vec![change(run_id, &file)]))?;
    Ok(file)
}

/// The condition selecting the files at or under `prefix` of run `$1`, with its parameters
/// after the run's. An empty prefix selects the whole run. Matching is by exact leading
/// substring rather than `LIKE`, so `%` and `_` in paths mean nothing special, and rather than
/// a range on `path`, whose order follows the database collation on PostgreSQL.
fn under(run_pk: i64, prefix: &str) -> (String, Vec<SqlValue>) {
    if prefix.is_empty() {
        return ("run_pk = $1".to_owned(), vec![run_pk.into()]);
    }
    let dir = format!("{prefix}/");
    let len = dir.chars().count() as i64;
    (
        "run_pk = $1 AND (path = $2 OR substr(path, 1, CAST($3 AS INTEGER)) = $4)".to_owned(),
        vec![run_pk.into(), prefix.into(), len.into(), dir.into()],
    )
}

/// The file at exactly `path`.
pub fn get(db: &mut dyn Db, run_id: &str, path: &str) -> Result<Option<ArtifactFile>> {
    let run = runs::get_row(db, run_id)?;
    db.query(
        &format!("SELECT {COLUMNS} FROM artifact_files WHERE run_pk = $1 AND path = $2"),
        &[run.run_pk.into(), path.into()],
    )?
    .into_iter()
    .next()
    .map(file_from_row)
    .transpose()
}

/// The run's files at or under `prefix`, ordered by path.
pub fn list(db: &mut dyn Db, run_id: &str, prefix: &str) -> Result<Vec<ArtifactFile>> {
    let run = runs::get_row(db, run_id)?;
    let (condition, params) = under(run.run_pk, prefix);
    db.query(&format!("SELECT {COLUMNS} FROM artifact_files WHERE {condition} ORDER BY path"), &params)?
        .into_iter()
        .map(file_from_row)
        .collect()
}

/// Removes the file at `path` or everything under it; a path matching nothing is not found, as
/// deleting a missing file is in MLflow's local repository.
pub fn delete(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, run_id: &str, path: &str) -> Result<u64> {
    let run = runs::get_row(db, run_id)?;
    let (condition, params) = under(run.run_pk, path);
    let paths: Vec<String> = db
        .query(&format!("SELECT path FROM artifact_files WHERE {condition} ORDER BY path"), &params)?
        .into_iter()
        .map(|row| Ok(row.into_iter().next().unwrap_or(SqlValue::Null).into_text()?))
        .collect::<Result<_>>()?;
    if paths.is_empty() {
        return Err(Error::not_found(format!("No artifact at '{path}' in run {run_id}")));
    }
    db.execute(&format!("DELETE FROM artifact_files WHERE {condition}"), &params)?;
    let changes = paths.iter().map(|p| removal(run_id, p)).collect();
    tx.append(db, event(actor, "delete_artifacts", run_id, changes))?;
    Ok(paths.len() as u64)
}

/// Every manifest row with its run's public id (or `#run_pk` for a row whose run is gone, so
/// that verification reports it).
pub fn all(db: &mut dyn Db) -> Result<Vec<RunArtifact>> {
    db.query(
        &format!(
            "SELECT {COLUMNS}, COALESCE(r.run_id, '#' || CAST(a.run_pk AS TEXT)) FROM artifact_files a \
             LEFT JOIN runs r ON r.run_pk = a.run_pk ORDER BY a.run_pk, a.path"
        ),
        &[],
    )?
    .into_iter()
    .map(|mut row| {
        let run_id = row.pop().unwrap_or(SqlValue::Null).into_text()?;
        Ok(RunArtifact { run_id, file: file_from_row(row)? })
    })
    .collect()
}

/// Whether any manifest row names `digest`.
pub fn is_referenced(db: &mut dyn Db, digest: &str) -> Result<bool> {
    Ok(!db.query("SELECT 1 FROM artifact_files WHERE digest = $1 LIMIT 1", &[digest.into()])?.is_empty())
}

/// Ids of runs deleted before `deleted_before`, oldest first.
pub fn purgeable_runs(db: &mut dyn Db, deleted_before: Millis) -> Result<Vec<String>> {
    db.query(
        "SELECT run_id FROM runs WHERE lifecycle_stage = $1 AND deleted_time IS NOT NULL AND deleted_time < $2 \
         ORDER BY deleted_time, run_id",
        &[LifecycleStage::Deleted.as_str().into(), deleted_before.into()],
    )?
    .into_iter()
    .map(|row| Ok(row.into_iter().next().unwrap_or(SqlValue::Null).into_text()?))
    .collect()
}

/// Permanently removes one deleted run with its params, tags, metrics and manifest rows, in one
/// audited event whose payload names every removed row. Metric rows are tracked per writing
/// event, so their removal is recorded as one `metric_rows` change per such event. Returns how
/// many manifest rows went, or `None` if the run is no longer a deleted run (it was restored).
pub fn purge_run(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    run_id: &str,
    deleted_before: Millis,
) -> Result<Option<u64>> {
    let Some(run) = runs::find(db, run_id)? else { return Ok(None) };
    if !is_purgeable(&run, deleted_before) {
        return Ok(None);
    }
    let pk = [SqlValue::from(run.run_pk)];
    let mut changes = vec![Change { entity: entity::RUN, id: run.run_id.clone(), after: None }];
    for (kind, table) in [(ChildKind::Param, "params"), (ChildKind::RunTag, "run_tags")] {
        // `table` is one of two constants above.
        for row in db.query(&format!("SELECT key FROM {table} WHERE run_pk = $1 ORDER BY key"), &pk)? {
            let key = row.into_iter().next().unwrap_or(SqlValue::Null).into_text()?;
            changes.push(ChildRow::removal(kind, run_id, &key));
        }
    }
    for row in db.query("SELECT DISTINCT seq FROM metrics WHERE run_pk = $1 ORDER BY seq", &pk)? {
        let seq = row.into_iter().next().unwrap_or(SqlValue::Null).int()?;
        changes.push(Change { entity: entity::METRIC_ROWS, id: seq.to_string(), after: None });
    }
    let files = list(db, run_id, "")?;
    changes.extend(files.iter().map(|f| removal(run_id, &f.path)));
    for table in ["artifact_files", "metrics", "latest_metrics", "params", "run_tags", "runs"] {
        // `table` is one of the constants above.
        db.execute(&format!("DELETE FROM {table} WHERE run_pk = $1"), &pk)?;
    }
    tx.append(db, event(actor, "purge_run", run_id, changes))?;
    Ok(Some(files.len() as u64))
}

fn is_purgeable(run: &RunRow, deleted_before: Millis) -> bool {
    !run.is_active() && run.deleted_time.is_some_and(|t| t < deleted_before)
}

/// Adds one run's purge to a report.
pub fn record_purge(report: &mut PurgeReport, run_id: String, files: u64) {
    report.runs.push(run_id);
    report.artifact_files += files;
}
