//! Pinning a model version's files: at registration, the digests of the files under the
//! version's source are copied into `model_version_files` under a fresh pin id, so that what
//! the version serves can never change afterwards, whatever happens to the run's or the logged
//! model's files. The blobs stay alive because `sql::artifacts::is_referenced` (which garbage
//! collection asks) also looks in `model_version_files`.
//!
//! Sources Cairn can pin:
//! - `models:/<m-id>[/<path>]`: a logged model's files;
//! - `models:/<name>/<version>`: the files another version pinned;
//! - `runs:/<run_id>[/<path>]`: a run's files under `<path>`;
//! - a URI under the artifact location of the run named by `run_id`, and
//!   `mlflow-artifacts:/…/<run_id>/artifacts/<path>` or `…/models/<m-id>/artifacts/<path>`.
//!
//! Anything else (an external bucket, a local path), or a source under which Cairn knows no
//! file, is not pinned: the version then has no pin id and serves its source as MLflow does.

use cairn_core::artifacts::ArtifactFile;
use cairn_core::audit::Change;
use cairn_core::registry::PIN_ID_PREFIX;
use cairn_core::{Error, Result};

use super::rows::PinnedFileRow;
use super::{models, versions};
use crate::sql::db::Db;
use crate::sql::writer::WriteTx;
use crate::sql::{artifacts, logged_models, runs};

/// Where a source's files live, as far as Cairn can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    LoggedModel { model_id: String, path: String },
    Run { run_id: String, path: String },
    Version { name: String, version: i64 },
    External,
}

fn logged_model_id(s: &str) -> bool {
    s.starts_with("m-") && s.len() > 2
}

/// The path segments of a URI after its scheme and authority (`scheme://host/a/b` → `[a, b]`).
fn uri_segments(uri: &str) -> Vec<&str> {
    let rest = uri.split_once(':').map_or(uri, |(_, rest)| rest);
    let rest = match rest.strip_prefix("//") {
        Some(authority_and_path) => authority_and_path.split_once('/').map_or("", |(_, path)| path),
        None => rest,
    };
    rest.split('/').filter(|s| !s.is_empty()).collect()
}

/// Reads a source URI; `run_id` is the version's run, whose artifact location a source may lie
/// under whatever its scheme.
fn origin(db: &mut dyn Db, source: &str, run_id: Option<&str>) -> Result<Origin> {
    if let Some(rest) = source.strip_prefix("models:/") {
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        return Ok(match segments.as_slice() {
            [id, path @ ..] if logged_model_id(id) => {
                Origin::LoggedModel { model_id: (*id).to_owned(), path: path.join("/") }
            }
            [name, version] => match version.parse::<i64>() {
                Ok(version) => Origin::Version { name: (*name).to_owned(), version },
                Err(_) => Origin::External,
            },
            _ => Origin::External,
        });
    }
    if let Some(rest) = source.strip_prefix("runs:/") {
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        return Ok(match segments.as_slice() {
            [run_id, path @ ..] => Origin::Run { run_id: (*run_id).to_owned(), path: path.join("/") },
            [] => Origin::External,
        });
    }
    if let Some(run) = run_id.map(|id| runs::find(db, id)).transpose()?.flatten() {
        let root = run.artifact_uri.trim_end_matches('/');
        if let Some(rest) = source.strip_prefix(root).filter(|rest| rest.is_empty() || rest.starts_with('/')) {
            return Ok(Origin::Run { run_id: run.run_id, path: rest.trim_matches('/').to_owned() });
        }
    }
    if source.starts_with("mlflow-artifacts:") {
        let segments = uri_segments(source);
        for i in 1..segments.len() {
            if segments[i] != "artifacts" {
                continue;
            }
            let (owner, path) = (segments[i - 1], segments[i + 1..].join("/"));
            if i >= 2 && segments[i - 2] == "models" && logged_model_id(owner) {
                return Ok(Origin::LoggedModel { model_id: owner.to_owned(), path });
            }
            let run = runs::find(db, owner)?;
            if run.is_some_and(|r| r.artifact_uri.trim_end_matches('/').ends_with(&format!("/{owner}/artifacts"))) {
                return Ok(Origin::Run { run_id: owner.to_owned(), path });
            }
        }
    }
    Ok(Origin::External)
}

/// The files at or under `prefix` of `files`, with paths made relative to `prefix`. A prefix
/// naming one file yields that file under its own name.
fn under(files: Vec<ArtifactFile>, prefix: &str) -> Vec<ArtifactFile> {
    if prefix.is_empty() {
        return files;
    }
    let dir = format!("{prefix}/");
    files
        .into_iter()
        .filter_map(|mut f| {
            let relative = if f.path == prefix {
                prefix.rsplit('/').next().unwrap_or(prefix).to_owned()
            } else {
                f.path.strip_prefix(&dir)?.to_owned()
            };
            f.path = relative;
            Some(f)
        })
        .collect()
}

fn files_of(db: &mut dyn Db, origin: &Origin) -> Result<Vec<ArtifactFile>> {
    Ok(match origin {
        Origin::LoggedModel { model_id, path } => {
            under(logged_models::model_files(db, model_id)?.unwrap_or_default(), path)
        }
        // A run this server does not know has no files to pin (MLflow accepts such sources).
        Origin::Run { run_id, path } => match runs::find(db, run_id)? {
            Some(_) => under(artifacts::list(db, run_id, "")?, path),
            None => Vec::new(),
        },
        Origin::Version { name, version } => {
            let pin = match models::find(db, name)? {
                Some(model) => versions::find(db, model.model_pk, *version)?.and_then(|v| v.pin_id),
                None => None,
            };
            match pin {
                Some(pin_id) => rows_of(db, &pin_id)?.into_iter().map(into_file).collect::<Result<_>>()?,
                None => Vec::new(),
            }
        }
        Origin::External => Vec::new(),
    })
}

/// Pins the files under `source` and returns the new pin id, or `None` when Cairn knows no file
/// there. The rows' audit changes are added to `changes`.
pub fn pin(
    db: &mut dyn Db,
    tx: &WriteTx,
    source: &str,
    run_id: Option<&str>,
    changes: &mut Vec<Change>,
) -> Result<Option<String>> {
    let origin = origin(db, source, run_id)?;
    let files = files_of(db, &origin)?;
    if files.is_empty() {
        return Ok(None);
    }
    let pin_id = format!("{PIN_ID_PREFIX}{}", uuid::Uuid::new_v4().simple());
    for file in files {
        let size =
            i64::try_from(file.size).map_err(|_| Error::internal(format!("file '{}' is too large", file.path)))?;
        let row = PinnedFileRow {
            pin_id: pin_id.clone(),
            path: file.path,
            digest: file.digest,
            size,
            created_time: file.created_time,
        };
        db.execute(
            "INSERT INTO model_version_files (pin_id, path, digest, size, created_time, seq) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                row.pin_id.as_str().into(),
                row.path.as_str().into(),
                row.digest.as_str().into(),
                row.size.into(),
                row.created_time.into(),
                tx.seq().into(),
            ],
        )?;
        changes.push(row.change());
    }
    Ok(Some(pin_id))
}

/// Removes a pin's files and returns their removal changes (the version is being deleted).
pub fn unpin(db: &mut dyn Db, pin_id: &str) -> Result<Vec<Change>> {
    let rows = rows_of(db, pin_id)?;
    db.execute("DELETE FROM model_version_files WHERE pin_id = $1", &[pin_id.into()])?;
    Ok(rows.iter().map(PinnedFileRow::removal).collect())
}

/// Every file row of a pin, by path.
pub fn rows_of(db: &mut dyn Db, pin_id: &str) -> Result<Vec<PinnedFileRow>> {
    let sql = format!("SELECT {} FROM model_version_files WHERE pin_id = $1 ORDER BY path", PinnedFileRow::COLUMNS);
    db.query(&sql, &[pin_id.into()])?.into_iter().map(PinnedFileRow::from_row).collect()
}

fn into_file(row: PinnedFileRow) -> Result<ArtifactFile> {
    let size = u64::try_from(row.size)
        .map_err(|_| Error::internal(format!("pinned file '{}' has size {}", row.path, row.size)))?;
    Ok(ArtifactFile { path: row.path, digest: row.digest, size, created_time: row.created_time })
}

/// The files of pin `pin_id` at or under `prefix` (`""` for all), by path; paths stay relative
/// to the pin. Not found when no version has that pin id.
pub fn pinned_files(db: &mut dyn Db, pin_id: &str, prefix: &str) -> Result<Vec<ArtifactFile>> {
    let known = db.query("SELECT 1 FROM model_versions WHERE pin_id = $1", &[pin_id.into()])?;
    if known.is_empty() {
        return Err(Error::not_found(format!("No model version has the pinned files '{pin_id}'")));
    }
    let prefix = prefix.trim_matches('/');
    let dir = format!("{prefix}/");
    rows_of(db, pin_id)?
        .into_iter()
        .filter(|row| prefix.is_empty() || row.path == prefix || row.path.starts_with(&dir))
        .map(into_file)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> ArtifactFile {
        ArtifactFile { path: path.to_owned(), digest: "d".into(), size: 1, created_time: 0 }
    }

    #[test]
    fn files_under_a_prefix_become_relative() {
        let files = vec![file("model/MLmodel"), file("model/data/x.pkl"), file("model2/y"), file("other")];
        let paths: Vec<String> = under(files.clone(), "model").into_iter().map(|f| f.path).collect();
        assert_eq!(paths, ["MLmodel", "data/x.pkl"]);
        let paths: Vec<String> = under(files.clone(), "model/MLmodel").into_iter().map(|f| f.path).collect();
        assert_eq!(paths, ["MLmodel"]);
        assert_eq!(under(files, "").len(), 4);
    }

    #[test]
    fn uri_segments_skip_scheme_and_authority() {
        assert_eq!(uri_segments("mlflow-artifacts:/1/abc/artifacts/m"), ["1", "abc", "artifacts", "m"]);
        assert_eq!(uri_segments("mlflow-artifacts://host:5000/1/abc/artifacts"), ["1", "abc", "artifacts"]);
        assert_eq!(uri_segments("s3://bucket"), Vec::<&str>::new());
    }
}
