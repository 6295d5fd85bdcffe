//! The artifact manifests of runs (`artifact_files`), of logged models (`logged_model_files`)
//! and of the artifact root itself (`root_artifact_files`, files uploaded outside any run or
//! model): writes run by the writer with their audit events, reads, and the purge of
//! long-deleted runs that garbage collection starts with.
//!
//! Every function takes the owner's public id and dispatches on its shape: [`ROOT_OWNER`]
//! selects the root's manifest, a logged model id (`m-` and 32 hex digits) the model's,
//! anything else a run's. A row's audit id is `owner/path` and its after-image names the owner
//! by its public id (`run_id`, `model_id` or `root`), so the log stays meaningful without the
//! internal keys.

use cairn_core::artifacts::{ArtifactFile, NewArtifact, PurgeReport, ROOT_OWNER, RunArtifact};
use cairn_core::audit::{Change, Payload, child_id, entity};
use cairn_core::logged_models::is_model_id;
use cairn_core::model::{Actor, LifecycleStage, Millis};
use cairn_core::{Error, Result};
use serde_json::{Value, json};

use crate::sql::audit::NewEvent;
use crate::sql::db::{Db, Row, SqlValue};
use crate::sql::logged_models::models;
use crate::sql::rows::{ChildKind, ChildRow, RunRow};
use crate::sql::runs;
use crate::sql::writer::WriteTx;

/// Whose manifest a path belongs to, resolved from a public id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Run(i64),
    Model(i64),
    Root,
}

impl Owner {
    /// Finds the run or logged model named by `id`; either must exist (in any lifecycle stage).
    /// The root always exists.
    fn resolve(db: &mut dyn Db, id: &str) -> Result<Owner> {
        if id == ROOT_OWNER {
            Ok(Owner::Root)
        } else if is_model_id(id) {
            Ok(Owner::Model(models::get_row(db, id)?.model_pk))
        } else {
            Ok(Owner::Run(runs::get_row(db, id)?.run_pk))
        }
    }

    /// The manifest table and its owner column (constants), and the owner's key.
    fn table(self) -> (&'static str, &'static str, i64) {
        match self {
            Owner::Run(pk) => ("artifact_files", "run_pk", pk),
            Owner::Model(pk) => ("logged_model_files", "model_pk", pk),
            Owner::Root => ("root_artifact_files", "root_pk", 0),
        }
    }
}

/// Columns in the order [`file_from_row`] reads them.
const COLUMNS: &str = "path, digest, size, created_time";

/// The audit after-image of one manifest row of the run or logged model `owner_id`.
pub fn image(owner_id: &str, file: &ArtifactFile) -> Value {
    let mut image = json!({
        "path": file.path,
        "digest": file.digest,
        "size": file.size,
        "created_time": file.created_time,
    });
    image[owner_field(owner_id)] = Value::String(owner_id.to_owned());
    image
}

/// The after-image field naming a manifest's owner.
fn owner_field(owner_id: &str) -> &'static str {
    if owner_id == ROOT_OWNER {
        "root"
    } else if is_model_id(owner_id) {
        "model_id"
    } else {
        "run_id"
    }
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

fn event<'a>(actor: &'a Actor, action: &'a str, owner_id: &'a str, changes: Vec<Change>) -> NewEvent<'a> {
    NewEvent {
        actor: &actor.0,
        action,
        entity_type: match owner_field(owner_id) {
            "root" => entity::ARTIFACT_ROOT,
            "model_id" => entity::LOGGED_MODEL,
            _ => entity::RUN,
        },
        entity_id: owner_id,
        payload: Payload::of(changes),
    }
}

/// Records (or replaces) one file of a run or logged model. Like MLflow, artifacts may be
/// logged in any lifecycle stage; the owner only has to exist.
pub fn put(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    owner_id: &str,
    new: &NewArtifact,
) -> Result<ArtifactFile> {
    let (table, column, pk) = Owner::resolve(db, owner_id)?.table();
    let size =
        i64::try_from(new.size).map_err(|_| Error::invalid(format!("artifact size {} is too large", new.size)))?;
    let file =
        ArtifactFile { path: new.path.clone(), digest: new.digest.clone(), size: new.size, created_time: tx.now() };
    db.execute(
        // `table` and `column` are constants of `Owner::table`.
        &format!(
            "INSERT INTO {table} ({column}, path, digest, size, created_time, seq) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT ({column}, path) DO UPDATE SET digest = excluded.digest, size = excluded.size, \
             created_time = excluded.created_time, seq = excluded.seq"
        ),
        &[
            pk.into(),
            file.path.as_str().into(),
            file.digest.as_str().into(),
            size.into(),
            file.created_time.into(),
            tx.seq().into(),
        ],
    )?;
    tx.append(db, event(actor, "log_artifact", owner_id, vec![change(owner_id, &file)]))?;
    Ok(file)
}

/// The condition selecting the files at or under `prefix` of the owner `$1` (`column` names
/// the owner's key), with its parameters after the owner's. An empty prefix selects every file.
/// Matching is by exact leading substring rather than `LIKE`, so `%` and `_` in paths mean
/// nothing special, and rather than a range on `path`, whose order follows the database
/// collation on PostgreSQL.
fn under(column: &str, pk: i64, prefix: &str) -> (String, Vec<SqlValue>) {
    if prefix.is_empty() {
        return (format!("{column} = $1"), vec![pk.into()]);
    }
    let dir = format!("{prefix}/");
    let len = dir.chars().count() as i64;
    (
        format!("{column} = $1 AND (path = $2 OR substr(path, 1, CAST($3 AS INTEGER)) = $4)"),
        vec![pk.into(), prefix.into(), len.into(), dir.into()],
    )
}

/// The file at exactly `path`.
pub fn get(db: &mut dyn Db, owner_id: &str, path: &str) -> Result<Option<ArtifactFile>> {
    let (table, column, pk) = Owner::resolve(db, owner_id)?.table();
    // `table` and `column` are constants of `Owner::table`.
    db.query(&format!("SELECT {COLUMNS} FROM {table} WHERE {column} = $1 AND path = $2"), &[pk.into(), path.into()])?
        .into_iter()
        .next()
        .map(file_from_row)
        .transpose()
}

/// The owner's files at or under `prefix`, ordered by path.
pub fn list(db: &mut dyn Db, owner_id: &str, prefix: &str) -> Result<Vec<ArtifactFile>> {
    let (table, column, pk) = Owner::resolve(db, owner_id)?.table();
    let (condition, params) = under(column, pk, prefix);
    db.query(&format!("SELECT {COLUMNS} FROM {table} WHERE {condition} ORDER BY path"), &params)?
        .into_iter()
        .map(file_from_row)
        .collect()
}

/// Removes the file at `path` or everything under it; a path matching nothing is not found, as
/// deleting a missing file is in MLflow's local repository.
pub fn delete(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, owner_id: &str, path: &str) -> Result<u64> {
    let (table, column, pk) = Owner::resolve(db, owner_id)?.table();
    let (condition, params) = under(column, pk, path);
    let paths: Vec<String> = db
        .query(&format!("SELECT path FROM {table} WHERE {condition} ORDER BY path"), &params)?
        .into_iter()
        .map(|row| Ok(row.into_iter().next().unwrap_or(SqlValue::Null).into_text()?))
        .collect::<Result<_>>()?;
    if paths.is_empty() {
        return Err(Error::not_found(match owner_field(owner_id) {
            "root" => format!("No artifact at '{path}' under the artifact root"),
            "model_id" => format!("No artifact at '{path}' in logged model {owner_id}"),
            _ => format!("No artifact at '{path}' in run {owner_id}"),
        }));
    }
    db.execute(&format!("DELETE FROM {table} WHERE {condition}"), &params)?;
    let changes = paths.iter().map(|p| removal(owner_id, p)).collect();
    tx.append(db, event(actor, "delete_artifacts", owner_id, changes))?;
    Ok(paths.len() as u64)
}

/// Every manifest row with its owner's public id: run files first, then logged model files,
/// then the root's (each row whose run or model is gone is named `#key`, so that verification
/// reports it).
pub fn all(db: &mut dyn Db) -> Result<Vec<RunArtifact>> {
    let sources = [
        "SELECT a.path, a.digest, a.size, a.created_time, COALESCE(r.run_id, '#' || CAST(a.run_pk AS TEXT)) \
         FROM artifact_files a LEFT JOIN runs r ON r.run_pk = a.run_pk ORDER BY a.run_pk, a.path",
        "SELECT f.path, f.digest, f.size, f.created_time, COALESCE(m.model_id, '#m' || CAST(f.model_pk AS TEXT)) \
         FROM logged_model_files f LEFT JOIN logged_models m ON m.model_pk = f.model_pk ORDER BY f.model_pk, f.path",
        "SELECT path, digest, size, created_time, CAST($1 AS TEXT) FROM root_artifact_files ORDER BY path",
    ];
    let mut out = Vec::new();
    for sql in sources {
        let params: &[SqlValue] = if sql.contains("$1") { &[SqlValue::Text(ROOT_OWNER.to_owned())] } else { &[] };
        for mut row in db.query(sql, params)? {
            let run_id = row.pop().unwrap_or(SqlValue::Null).into_text()?;
            out.push(RunArtifact { run_id, file: file_from_row(row)? });
        }
    }
    Ok(out)
}

/// Whether any manifest row names `digest`. Each source is a constant query on an index of
/// `digest`; a blob stays as long as any of them names it.
pub fn is_referenced(db: &mut dyn Db, digest: &str) -> Result<bool> {
    const SOURCES: &[&str] = &[
        "SELECT 1 FROM artifact_files WHERE digest = $1 LIMIT 1",
        "SELECT 1 FROM logged_model_files WHERE digest = $1 LIMIT 1",
        "SELECT 1 FROM root_artifact_files WHERE digest = $1 LIMIT 1",
        // Files pinned by a registered model version (`sql::registry::pinning`).
        "SELECT 1 FROM model_version_files WHERE digest = $1 LIMIT 1",
    ];
    for sql in SOURCES {
        if !db.query(sql, &[digest.into()])?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
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

/// Permanently removes one deleted run with its params, tags, metrics, manifest rows, inputs and
/// outputs (and the model-linked points it logged), in one audited event whose payload names
/// every removed row. Metric rows and params are tracked per writing event, so their removal is
/// recorded as one `metric_rows` or `param_rows` change per such event (and params one by one
/// too, for those an older event recorded so). Returns how many manifest rows went, or `None` if
/// the run is no longer a deleted run (it was restored).
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
    // Params are also recorded per writing event (by digest) since params were digested; a
    // removal of a group the log never had is a no-op, so every group is named.
    for (entity, table) in [(entity::PARAM_ROWS, "params"), (entity::METRIC_ROWS, "metrics")] {
        // `table` is one of two constants above.
        for row in db.query(&format!("SELECT DISTINCT seq FROM {table} WHERE run_pk = $1 ORDER BY seq"), &pk)? {
            let seq = row.into_iter().next().unwrap_or(SqlValue::Null).int()?;
            changes.push(Change { entity, id: seq.to_string(), after: None });
        }
    }
    let files = list(db, run_id, "")?;
    changes.extend(files.iter().map(|f| removal(run_id, &f.path)));
    changes.extend(crate::sql::logged_models::inputs::purge_run(db, &run)?);
    for table in ["artifact_files", "metrics", "metric_blocks", "latest_metrics", "params", "run_tags", "runs"] {
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
