//! MLflow's proxied artifact API (`/api/2.0/mlflow-artifacts/...`), served from the
//! content-addressed blob store and the per-run manifest.
//!
//! Paths are relative to the `mlflow-artifacts:/` root. Cairn keeps artifacts per owner, and a
//! path belongs to the first owner whose artifact root contains it, checked against the root the
//! store recorded for it:
//! - `<experiment_id>/<run_id>/artifacts/<file>`: a run's files (its `artifact_uri`);
//! - `<experiment_id>/models/<model_id>/artifacts/<file>`: a logged model's files (its
//!   `artifact_location`), kept in the manifest under the model id;
//! - `model-versions/<pin_id>/<file>`: the files pinned for a registered model version, served
//!   read-only;
//! - any other path: a file of the artifact root itself (owner [`ROOT_OWNER`]), as MLflow's
//!   proxy accepts any path. Such files are content-addressed and audited like the others, and
//!   garbage collection keeps their blobs until they are deleted.
//!
//! Uploads stream the request body into the blob store (never buffering the file), then record
//! the digest in the manifest; a body that breaks off leaves neither a blob nor a row.
//! Downloads stream the blob and honour a single `Range`. Multipart uploads are served by the
//! sibling `multipart` module, whose routes this router mounts.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cairn_artifacts::{ArtifactError, ByteRange, Digest, RelativePath, sanitize_artifact_path};
use serde_json::{Value, json};

use cairn_core::artifacts::{ArtifactFile, NewArtifact, ROOT_OWNER};
use cairn_core::logged_models::is_model_id;
use cairn_core::registry::PIN_ID_PREFIX;

use crate::AppState;
use crate::artifacts::Artifacts;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{PathParams, RequestActor, parse_query};

pub fn router() -> Router<AppState> {
    let files = get(download).put(upload).delete(delete).layer(DefaultBodyLimit::disable());
    let routes = Router::new()
        .route("/artifacts", get(list))
        .route("/artifacts/{*path}", files)
        .merge(super::multipart::routes());
    Router::new().nest("/api/2.0/mlflow-artifacts", routes.clone()).nest("/ajax-api/2.0/mlflow-artifacts", routes)
}

/// A request path resolved to one run's, logged model's or the root's artifact tree.
#[derive(Debug)]
pub(super) struct RunPath {
    /// The manifest owner: a run id, a logged model id (`m-…`) or [`ROOT_OWNER`].
    pub(super) run_id: String,
    /// The path below the run's artifact root (the root itself is empty).
    pub(super) rel: RelativePath,
}

/// Whether `segment` has the shape of a run id (32 lowercase hex characters).
fn looks_like_run_id(segment: &str) -> bool {
    segment.len() == 32 && segment.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The manifest `path` belongs to: the run or logged model whose artifact root contains it,
/// else the artifact root's own.
pub(super) async fn resolve(state: &AppState, path: &RelativePath) -> ApiResult<RunPath> {
    let segments: Vec<&str> = path.segments().collect();
    if let Some(target) = resolve_run(state, &segments).await? {
        return Ok(target);
    }
    if let Some(target) = resolve_model(state, &segments).await? {
        return Ok(target);
    }
    Ok(RunPath { run_id: ROOT_OWNER.to_owned(), rel: path.clone() })
}

/// Whether the stored root `uri` ends with the request's `root` segments, so that
/// `9/<run>/artifacts` cannot reach a run (or model) of experiment 1.
fn root_matches(uri: &str, root: &str) -> bool {
    let uri = uri.trim_end_matches('/');
    uri == root || uri.ends_with(&format!("/{root}"))
}

async fn resolve_run(state: &AppState, segments: &[&str]) -> ApiResult<Option<RunPath>> {
    let Some(i) = segments.windows(2).position(|w| looks_like_run_id(w[0]) && w[1] == "artifacts") else {
        return Ok(None);
    };
    let run = match state.store.get_run(segments[i]).await {
        Ok(run) => run,
        Err(cairn_core::Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !root_matches(&run.info.artifact_uri, &segments[..=i + 1].join("/")) {
        return Ok(None);
    }
    let rel = sanitize(&segments[i + 2..].join("/"))?;
    Ok(Some(RunPath { run_id: run.info.run_id, rel }))
}

/// A logged model's root is `…/models/<model_id>/artifacts`; deleted models still serve their
/// files, as registered versions may point at them.
async fn resolve_model(state: &AppState, segments: &[&str]) -> ApiResult<Option<RunPath>> {
    let Some(i) = segments.windows(3).position(|w| w[0] == "models" && is_model_id(w[1]) && w[2] == "artifacts") else {
        return Ok(None);
    };
    let model = match state.store.get_logged_model_any_stage(segments[i + 1]).await {
        Ok(model) => model,
        Err(cairn_core::Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !root_matches(&model.artifact_location, &segments[..=i + 2].join("/")) {
        return Ok(None);
    }
    let rel = sanitize(&segments[i + 3..].join("/"))?;
    Ok(Some(RunPath { run_id: model.model_id, rel }))
}

/// A path under a model version's pinned files: its pin id and the path below it.
struct PinnedPath {
    pin_id: String,
    rel: RelativePath,
}

/// Recognises `model-versions/<pin_id>/<path>`.
fn pinned_path(path: &RelativePath) -> ApiResult<Option<PinnedPath>> {
    let segments: Vec<&str> = path.segments().collect();
    match segments.as_slice() {
        ["model-versions", pin, rest @ ..] if pin.starts_with(PIN_ID_PREFIX) => {
            Ok(Some(PinnedPath { pin_id: (*pin).to_owned(), rel: sanitize(&rest.join("/"))? }))
        }
        _ => Ok(None),
    }
}

/// What writing to a pinned version's files gets.
fn immutable() -> ApiError {
    ApiError::invalid("model version files are immutable")
}

/// An artifact path checked against escapes. Refusals carry MLflow's exact message, which
/// clients and MLflow's own tests match, and say which rule broke in `details`.
pub(super) fn sanitize(raw: &str) -> ApiResult<RelativePath> {
    sanitize_artifact_path(raw).map_err(|e| ApiError::invalid("Invalid path").with_details(e.to_string()))
}

/// Maps a blob-store failure: the caller's fault is a 4xx, anything else a logged 500.
pub fn artifact_error(e: ArtifactError) -> ApiError {
    match e {
        ArtifactError::NotFound(_) => {
            // The manifest named a blob that is gone: the store is damaged, not the request.
            ApiError::from(cairn_core::Error::internal(format!("artifact blob missing: {e}")))
        }
        ArtifactError::InvalidDigest(_) => ApiError::invalid(e.to_string()),
        ArtifactError::RangeNotSatisfiable { .. } => {
            ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, ErrorCode::InvalidParameterValue, e.to_string())
        }
        ArtifactError::Source(ref source) if crate::extract::stalled(source.as_ref()) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::InvalidParameterValue,
            "The upload stalled: no data arrived within the server's body timeout; nothing was stored",
        ),
        ArtifactError::Source(_) => ApiError::invalid(format!("The upload was cut off: {e}")),
        ArtifactError::InvalidDestination { .. } | ArtifactError::Storage(_) | ArtifactError::Io(_)
            if out_of_space(&e) =>
        {
            tracing::error!(error = %e, "the artifact destination is out of space");
            ApiError::storage_full(
                "The server's artifact storage is out of disk space; this file was not stored (everything acknowledged before is kept). Free space on the server and retry.",
            )
        }
        ArtifactError::InvalidDestination { .. } | ArtifactError::Storage(_) | ArtifactError::Io(_) => {
            ApiError::from(cairn_core::Error::internal(e))
        }
    }
}

/// Whether an artifact error was caused by a full disk, anywhere down its chain of causes.
fn out_of_space(e: &ArtifactError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull || io.kind() == std::io::ErrorKind::QuotaExceeded)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

async fn upload(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    PathParams(raw): PathParams<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let artifacts = state.artifacts()?;
    let path = sanitize(&raw)?;
    if pinned_path(&path)?.is_some() {
        return Err(immutable());
    }
    let target = resolve(&state, &path).await?;
    if target.rel.is_root() {
        return Err(ApiError::invalid(format!("Artifact path '{path}' names a directory, not a file")));
    }
    store_file(artifacts, &actor, &target.run_id, &target.rel, body).await?;
    Ok(Json(json!({})))
}

/// Streams `body` into the blob store and records it at `rel` in `owner`'s manifest (a run or
/// logged model id); a body that breaks off leaves neither a blob nor a row.
pub(super) async fn store_file(
    artifacts: &Artifacts,
    actor: &cairn_core::model::Actor,
    owner: &str,
    rel: &RelativePath,
    body: Body,
) -> ApiResult<()> {
    let staged = artifacts.blobs.stage(body.into_data_stream()).await.map_err(artifact_error)?;
    // Pinned until the manifest row is written, so no garbage collection can delete a blob this
    // upload deduplicated against before the row names it (see `commit`).
    let committed = super::commit::commit(artifacts, staged).await?;
    let blob = committed.blob();
    let file = NewArtifact { path: rel.as_str().to_owned(), digest: blob.digest.to_hex(), size: blob.size };
    let recorded = artifacts.manifest.put_artifact(actor, owner, file).await;
    committed.release().await;
    recorded?;
    Ok(())
}

async fn download(
    State(state): State<AppState>,
    PathParams(raw): PathParams<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let artifacts = state.artifacts()?;
    let path = sanitize(&raw)?;
    let file = find_file(&state, &path).await?;
    super::download::attachment(artifacts, &file, path.as_str(), headers.get(header::RANGE)).await
}

/// The file at `path` below the `mlflow-artifacts:/` root, wherever Cairn keeps it (a run's or
/// logged model's manifest, a version's pinned files), or `RESOURCE_DOES_NOT_EXIST`.
pub(super) async fn find_file(state: &AppState, path: &RelativePath) -> ApiResult<ArtifactFile> {
    let artifacts = state.artifacts()?;
    let missing = || ApiError::from(cairn_core::Error::not_found(format!("No artifact at '{path}'")));
    if let Some(pinned) = pinned_path(path)? {
        let files = state.store.pinned_files(&pinned.pin_id, pinned.rel.as_str()).await?;
        return files.into_iter().find(|f| f.path == pinned.rel.as_str()).ok_or_else(missing);
    }
    let target = resolve(state, path).await?;
    artifacts.manifest.get_artifact(&target.run_id, target.rel.as_str()).await?.ok_or_else(missing)
}

/// Streams one manifest file, whole or the requested range.
pub async fn stream_file(
    artifacts: &Artifacts,
    file: &ArtifactFile,
    range: Option<&HeaderValue>,
) -> ApiResult<Response> {
    let range = match range {
        None => None,
        Some(value) => parse_range(value.to_str().unwrap_or_default())?,
    };
    let partial = range.is_some();
    let digest = Digest::parse(&file.digest).map_err(artifact_error)?;
    let read = match artifacts.blobs.get(&digest, range).await {
        Ok(read) => read,
        Err(ArtifactError::RangeNotSatisfiable { size }) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            response.headers_mut().insert(header::CONTENT_RANGE, header_value(&format!("bytes */{size}")));
            return Ok(response);
        }
        Err(e) => return Err(artifact_error(e)),
    };
    let length = read.range.end - read.range.start;
    let mut response = Response::new(Body::from_stream(read.stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, header_value(&length.to_string()));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if partial {
        let content_range = format!("bytes {}-{}/{}", read.range.start, read.range.end - 1, read.size);
        headers.insert(header::CONTENT_RANGE, header_value(&content_range));
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

fn header_value(text: &str) -> HeaderValue {
    // Only ever called with ASCII digits, dashes, slashes and spaces.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Parses a single-range `Range: bytes=…` header. A header Cairn cannot honour (another unit,
/// several ranges) is ignored and the whole file sent, as RFC 9110 allows; a malformed bytes
/// range is the caller's error.
pub fn parse_range(value: &str) -> ApiResult<Option<ByteRange>> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let bad = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::InvalidParameterValue,
            format!("Invalid Range header '{value}'"),
        )
    };
    let (start, end) = spec.trim().split_once('-').ok_or_else(bad)?;
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    Ok(Some(match (start.trim().is_empty(), end.trim().is_empty()) {
        (true, false) => ByteRange::Suffix(number(end)?),
        (false, true) => ByteRange::From(number(start)?),
        (false, false) => {
            let (start, last) = (number(start)?, number(end)?);
            if last < start {
                return Err(bad());
            }
            ByteRange::Bounded(start..last.saturating_add(1))
        }
        (true, true) => return Err(bad()),
    }))
}

async fn list(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let artifacts = state.artifacts()?;
    let args = parse_query(query.as_deref(), &[])?;
    let path = sanitize(&args.str("path")?.unwrap_or_default())?;
    let (dir, files) = if let Some(pinned) = pinned_path(&path)? {
        let files = match state.store.pinned_files(&pinned.pin_id, pinned.rel.as_str()).await {
            Ok(files) => files,
            // An unknown pin lists as empty, like any path outside every artifact root.
            Err(cairn_core::Error::NotFound(_)) => return Ok(Json(json!({}))),
            Err(e) => return Err(e.into()),
        };
        (pinned.rel, files)
    } else {
        let target = resolve(&state, &path).await?;
        let files = artifacts.manifest.list_artifacts(&target.run_id, target.rel.as_str()).await?;
        (target.rel, files)
    };
    let entries = directory_entries(dir.as_str(), &files);
    if entries.is_empty() {
        return Ok(Json(json!({})));
    }
    Ok(Json(json!({ "files": entries })))
}

/// The immediate children of directory `dir` among `files` (all at or under it, sorted by path):
/// files with their sizes, subdirectories once each. A `dir` that is itself a file lists as
/// empty, as in MLflow's local repository.
pub fn directory_entries(dir: &str, files: &[ArtifactFile]) -> Vec<Value> {
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    let mut entries: Vec<Value> = Vec::new();
    let mut last_dir: Option<&str> = None;
    for file in files {
        let Some(rest) = file.path.strip_prefix(&prefix) else { continue };
        match rest.split_once('/') {
            None => entries.push(json!({ "path": rest, "is_dir": false, "file_size": file.size })),
            Some((sub, _)) if last_dir != Some(sub) => {
                last_dir = Some(sub);
                entries.push(json!({ "path": sub, "is_dir": true }));
            }
            Some(_) => {}
        }
    }
    entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    entries.dedup_by(|a, b| a["path"] == b["path"]);
    entries
}

async fn delete(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    PathParams(raw): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let artifacts = state.artifacts()?;
    let path = sanitize(&raw)?;
    if pinned_path(&path)?.is_some() {
        return Err(immutable());
    }
    let target = resolve(&state, &path).await?;
    artifacts.manifest.delete_artifacts(&actor, &target.run_id, target.rel.as_str()).await?;
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_like_http() {
        assert_eq!(parse_range("bytes=0-9").unwrap(), Some(ByteRange::Bounded(0..10)));
        assert_eq!(parse_range("bytes=5-").unwrap(), Some(ByteRange::From(5)));
        assert_eq!(parse_range("bytes=-3").unwrap(), Some(ByteRange::Suffix(3)));
        assert_eq!(parse_range("items=0-1").unwrap(), None);
        assert_eq!(parse_range("bytes=0-1,4-5").unwrap(), None);
        for bad in ["bytes=9-2", "bytes=-", "bytes=a-b", "bytes=3"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listing_shows_immediate_children_once() {
        let file = |path: &str, size| ArtifactFile { path: path.into(), digest: String::new(), size, created_time: 0 };
        let files = [file("a/b/c.txt", 1), file("a/b/d.txt", 2), file("a/e.txt", 3), file("f.txt", 4)];
        let root = directory_entries("", &files);
        assert_eq!(
            root,
            vec![json!({"path": "a", "is_dir": true}), json!({"path": "f.txt", "is_dir": false, "file_size": 4})]
        );
        let a = directory_entries("a", &files[..3]);
        assert_eq!(
            a,
            vec![json!({"path": "b", "is_dir": true}), json!({"path": "e.txt", "is_dir": false, "file_size": 3})]
        );
        assert!(directory_entries("f.txt", &files[3..]).is_empty());
    }
}
