//! MLflow's proxied multipart upload, which the client uses for large files when
//! `MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD` is on:
//!
//! 1. `POST mpu/create/<dir> {path, num_parts}` names the file `<dir>/<basename of path>` (`path`
//!    is the client's local file, `<dir>` the artifact directory, as in MLflow), checks it exactly
//!    as a plain `PUT` checks its path, and answers
//!    `{upload_id, credentials: [{part_number, url, headers}]}`. Where MLflow hands
//!    out presigned URLs of the cloud store, Cairn's URLs point back at itself
//!    (`.../mpu/parts/<upload_id>/<part_number>`), so it works on every destination;
//! 2. the client `PUT`s each part to its URL, in parallel and in any order; each part streams into
//!    the blob store's staging area and the reply's `ETag` is the part's SHA-256;
//! 3. `POST mpu/complete/<dir> {path, upload_id, parts: [{part_number, etag}]}` checks the list
//!    against what arrived, streams the parts in order into one blob (hashing it on the way),
//!    commits it and records it in the manifest as a `PUT` would;
//! 4. `POST mpu/abort/<dir> {path, upload_id}`, which the client sends on any failure, drops the
//!    parts.
//!
//! Upload sessions live in the artifact store beside their parts (see `cairn_artifacts`'s
//! `parts`), not in this process: with several servers behind a load balancer, each request of
//! one upload may reach a different server, and a server restarted mid-upload loses nothing. A
//! session left neither completed nor aborted expires after [`SESSION_TTL`], and its parts are
//! removed with the rest of stale staging (`BlobStore::clean_staging`).
//!
//! Memory: a part being received holds at most two small buffers (see `BlobStore::stage_part`),
//! and at most [`PARTS_RECEIVED_AT_ONCE`] parts are received at once by one server; further part
//! requests wait, unread, which keeps its memory bounded however many threads a client uses.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use cairn_artifacts::{BlobRef, BlobStore, Completion, Digest, RelativePath, StagedPart, UploadSession};
use cairn_core::artifacts::NewArtifact;
use cairn_core::model::Actor;

use super::artifacts::{RunPath, artifact_error, resolve, sanitize};
use crate::AppState;
use crate::artifacts::Artifacts;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{Fields, JsonBody, PathParams, RequestActor};

/// The most parts one upload may have (S3's limit; at MLflow's default 10 MiB chunks, 100 GB).
pub const MAX_PARTS: i64 = 10_000;

/// How long an upload may stay open: the age at which garbage collection treats staging as
/// abandoned, so a part is not removed while its session can still be completed.
pub const SESSION_TTL: Duration = crate::gc::STALE_STAGING;

/// Parts received concurrently, server-wide.
pub const PARTS_RECEIVED_AT_ONCE: usize = 4;

/// The multipart routes, relative to the artifact API's prefix. Each call makes a new limit on
/// parts received at once, shared by every prefix the returned router is mounted under.
pub(super) fn routes() -> Router<AppState> {
    let receiving = Arc::new(Receiving(Semaphore::new(PARTS_RECEIVED_AT_ONCE)));
    Router::new()
        .route("/mpu/create/{*path}", post(create))
        .route("/mpu/complete/{*path}", post(complete))
        .route("/mpu/abort/{*path}", post(abort))
        .route("/mpu/parts/{upload_id}/{part_number}", put(upload_part).layer(DefaultBodyLimit::disable()))
        .layer(Extension(receiving))
}

/// The parts this server receives at once.
struct Receiving(Semaphore);

// ---------------------------------------------------------------------------------------------
// Handlers.

async fn create(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    PathParams(raw): PathParams<String>,
    JsonBody(fields): JsonBody,
) -> ApiResult<Json<Value>> {
    let artifacts = state.artifacts()?;
    let path = upload_path(&raw, &fields)?;
    upload_target(&state, &path).await?;
    let num_parts = part_count(&fields)?;
    let base = parts_base_url(&headers, uri.path())?;

    let upload_id = artifacts.blobs.new_upload_id();
    artifacts.blobs.open_upload(&upload_id, path.as_str(), num_parts).await.map_err(artifact_error)?;
    let credentials: Vec<Value> = (1..=num_parts)
        .map(|n| json!({ "part_number": n, "url": format!("{base}/{upload_id}/{n}"), "headers": {} }))
        .collect();
    Ok(Json(json!({ "upload_id": upload_id, "credentials": credentials })))
}

async fn upload_part(
    State(state): State<AppState>,
    Extension(receiving): Extension<Arc<Receiving>>,
    PathParams((upload_id, part)): PathParams<(String, String)>,
    body: Body,
) -> ApiResult<Response> {
    let artifacts = state.artifacts()?;
    let blobs = &artifacts.blobs;
    let number = part.parse::<u32>().map_err(|_| ApiError::invalid(format!("Invalid part number '{part}'")))?;
    let session = open_session(blobs, &upload_id).await?;
    check_part_number(&upload_id, &session, number)?;
    refuse_if_completing(blobs, &upload_id).await?;
    // Waiting here leaves the body unread, so TCP flow control holds the client back.
    let _receiving = receiving.0.acquire().await.map_err(|e| ApiError::from(cairn_core::Error::internal(e)))?;
    let staged = blobs.stage_part(&upload_id, number, body.into_data_stream()).await.map_err(artifact_error)?;
    // Aborted or completed while this part was arriving: it is not wanted.
    if blobs.upload_session(&upload_id, SESSION_TTL).await.map_err(artifact_error)?.is_none() {
        if let Err(error) = blobs.discard_upload(&upload_id).await {
            tracing::warn!(%error, %upload_id, "cannot remove a part that arrived after its upload ended");
        }
        return Err(unknown_upload(&upload_id));
    }
    let mut response = StatusCode::OK.into_response();
    // A quoted hex digest is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&etag_of(&staged)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

async fn complete(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    PathParams(raw): PathParams<String>,
    JsonBody(fields): JsonBody,
) -> ApiResult<Json<Value>> {
    let artifacts = state.artifacts()?;
    let blobs = &artifacts.blobs;
    let path = upload_path(&raw, &fields)?;
    let upload_id = fields.required_str("upload_id")?;
    let listed = listed_parts(&fields)?;
    let session = open_session(blobs, &upload_id).await?;
    check_path(&upload_id, &session, path.as_str())?;
    check_listing(&upload_id, &session, &listed)?;
    let claim = Claim::take(blobs, &upload_id).await?;
    let completed = async {
        let parts = claim.parts(&listed).await?;
        // Resolved again: the run may have been deleted since the upload was created.
        let target = upload_target(&state, &path).await?;
        let staged = blobs.stage_parts(&parts).await.map_err(artifact_error)?;
        // Pinned until the manifest row is written: see `super::commit`.
        let committed = super::commit::commit(artifacts, staged).await?;
        let recorded = record_file(artifacts, &actor, &target, committed.blob()).await;
        committed.release().await;
        recorded
    }
    .await;
    match completed {
        Ok(()) => claim.finish().await,
        // The mark goes before the answer, so a client that fixes its request and retries (or
        // uploads a missing part) is not refused as "being completed".
        Err(error) => {
            claim.release().await;
            return Err(error);
        }
    }
    Ok(Json(json!({})))
}

async fn abort(
    State(state): State<AppState>,
    PathParams(raw): PathParams<String>,
    JsonBody(fields): JsonBody,
) -> ApiResult<Json<Value>> {
    let artifacts = state.artifacts()?;
    let blobs = &artifacts.blobs;
    let path = upload_path(&raw, &fields)?;
    let upload_id = fields.required_str("upload_id")?;
    let session = open_session(blobs, &upload_id).await?;
    check_path(&upload_id, &session, path.as_str())?;
    refuse_if_completing(blobs, &upload_id).await?;
    blobs.discard_upload(&upload_id).await.map_err(artifact_error)?;
    Ok(Json(json!({})))
}

// ---------------------------------------------------------------------------------------------
// Where a finished upload goes. Kept to these two calls so that changes to how artifact paths
// resolve (logged models' roots, for instance) reach multipart uploads without edits here.

/// The run path a completed upload at `path` is recorded at, resolved exactly as a plain `PUT`
/// resolves it.
async fn upload_target(state: &AppState, path: &RelativePath) -> ApiResult<RunPath> {
    let target = resolve(state, path).await?;
    if target.rel.is_root() {
        return Err(ApiError::invalid(format!("Artifact path '{path}' names a directory, not a file")));
    }
    Ok(target)
}

/// Records a committed blob in the manifest at `target`, as a plain `PUT` does.
async fn record_file(artifacts: &Artifacts, actor: &Actor, target: &RunPath, blob: &BlobRef) -> ApiResult<()> {
    let file = NewArtifact { path: target.rel.as_str().to_owned(), digest: blob.digest.to_hex(), size: blob.size };
    artifacts.manifest.put_artifact(actor, &target.run_id, file).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Request pieces.

/// The artifact path an upload writes: the route's directory joined with the file name of the
/// client's local `path`, as MLflow's artifact repositories name it. Either separator ends a
/// directory, so a Windows client's path names its file too.
fn upload_path(raw_dir: &str, fields: &Fields) -> ApiResult<RelativePath> {
    let local = fields.required_str("path")?;
    let name = local.rsplit(['/', '\\']).next().unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid(format!("'path' must name the file being uploaded, got '{local}'")));
    }
    sanitize(&format!("{raw_dir}/{name}"))
}

/// `num_parts`, between 1 and [`MAX_PARTS`].
fn part_count(fields: &Fields) -> ApiResult<u32> {
    let n = fields.required_i64("num_parts")?;
    match u32::try_from(n) {
        Ok(n) if (1..=MAX_PARTS).contains(&i64::from(n)) => Ok(n),
        _ => Err(ApiError::invalid(format!("num_parts must be between 1 and {MAX_PARTS}, got {n}"))),
    }
}

/// The `(part_number, etag)` pairs of a complete request, in the order given.
fn listed_parts(fields: &Fields) -> ApiResult<Vec<(u32, String)>> {
    fields
        .objects("parts")?
        .iter()
        .map(|part| {
            let n = part.required_i64("part_number")?;
            let n = u32::try_from(n).map_err(|_| ApiError::invalid(format!("Invalid part number {n}")))?;
            Ok((n, part.str("etag")?.unwrap_or_default()))
        })
        .collect()
}

/// The absolute URL part uploads go to, without the `/<upload_id>/<n>` suffix: the address the
/// client reached this server at (`Host`, or a proxy's `X-Forwarded-Host`/`X-Forwarded-Proto`)
/// and the prefix this create request came in under (`/api/...` or `/ajax-api/...`).
fn parts_base_url(headers: &HeaderMap, request_path: &str) -> ApiResult<String> {
    let first =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next()).map(str::trim);
    let host = first("x-forwarded-host")
        .or_else(|| first(header::HOST.as_str()))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ApiError::invalid("A multipart upload needs the request's Host header"))?;
    // The host goes into URLs the client will call: refuse anything that is not a host[:port].
    let host_chars = |c: char| c.is_ascii_alphanumeric() || ".-_:[]".contains(c);
    if !host.chars().all(host_chars) {
        return Err(ApiError::invalid(format!("Invalid Host header '{host}'")));
    }
    let scheme = match first("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    let prefix = request_path.split("/mpu/create/").next().unwrap_or_default();
    Ok(format!("{scheme}://{host}{prefix}/mpu/parts"))
}

/// The ETag a part is answered with: its quoted SHA-256.
fn etag_of(part: &StagedPart) -> String {
    format!("\"{}\"", part.digest.to_hex())
}

/// The digest an ETag a client sent back names: quotes and a weak `W/` prefix, which HTTP
/// libraries may add or drop, do not count.
fn bare_etag(sent: &str) -> String {
    sent.trim().trim_start_matches("W/").trim_matches('"').to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------------
// Sessions, kept in the artifact store.

fn unknown_upload(upload_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::ResourceDoesNotExist,
        format!("Multipart upload '{upload_id}' does not exist: it was completed, aborted or expired"),
    )
}

fn being_completed(upload_id: &str) -> ApiError {
    ApiError::invalid(format!("Multipart upload '{upload_id}' is being completed"))
}

/// The session of an open upload.
async fn open_session(blobs: &BlobStore, upload_id: &str) -> ApiResult<UploadSession> {
    blobs.upload_session(upload_id, SESSION_TTL).await.map_err(artifact_error)?.ok_or_else(|| unknown_upload(upload_id))
}

async fn refuse_if_completing(blobs: &BlobStore, upload_id: &str) -> ApiResult<()> {
    if blobs.completion_in_progress(upload_id).await.map_err(artifact_error)? {
        return Err(being_completed(upload_id));
    }
    Ok(())
}

fn check_part_number(upload_id: &str, session: &UploadSession, number: u32) -> ApiResult<()> {
    if (1..=session.num_parts).contains(&number) {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "Part number {number} is out of range: upload '{upload_id}' has parts 1 to {}",
        session.num_parts
    )))
}

fn check_path(upload_id: &str, session: &UploadSession, path: &str) -> ApiResult<()> {
    if session.path == path {
        return Ok(());
    }
    Err(ApiError::invalid(format!("Multipart upload '{upload_id}' was created for '{}', not '{path}'", session.path)))
}

/// Checks that `listed` names every part of the upload exactly once.
fn check_listing(upload_id: &str, session: &UploadSession, listed: &[(u32, String)]) -> ApiResult<()> {
    let mut numbers: Vec<u32> = listed.iter().map(|(n, _)| *n).collect();
    numbers.sort_unstable();
    for (i, n) in numbers.iter().enumerate() {
        check_part_number(upload_id, session, *n)?;
        if i > 0 && numbers[i - 1] == *n {
            return Err(ApiError::invalid(format!("Part {n} is listed more than once")));
        }
    }
    // In range, sorted and without duplicates: so all are present exactly when the count is.
    if numbers.len() != session.num_parts as usize {
        let missing = (1..=session.num_parts).find(|n| numbers.binary_search(n).is_err()).unwrap_or_default();
        return Err(ApiError::invalid(format!(
            "Part {missing} of {} is not listed: every part must be uploaded and listed to complete",
            session.num_parts
        )));
    }
    Ok(())
}

/// An upload being completed by this request. While it lives the upload is marked `completing`
/// in the artifact store, for every server. A failed completion removes the mark before it
/// answers ([`Claim::release`]); dropping the claim otherwise (the client hanging up) removes it
/// in the background, so the client can abort or try again.
struct Claim {
    blobs: BlobStore,
    upload_id: String,
    finished: bool,
}

impl Claim {
    async fn take(blobs: &BlobStore, upload_id: &str) -> ApiResult<Self> {
        match blobs.begin_completion(upload_id).await.map_err(artifact_error)? {
            Completion::Started => Ok(Claim { blobs: blobs.clone(), upload_id: upload_id.to_owned(), finished: false }),
            Completion::InProgress => Err(being_completed(upload_id)),
        }
    }

    /// The staged copies `listed` names, in part order: each must have been received with the
    /// ETag it was answered with.
    async fn parts(&self, listed: &[(u32, String)]) -> ApiResult<Vec<StagedPart>> {
        let mut sorted: Vec<&(u32, String)> = listed.iter().collect();
        sorted.sort_by_key(|(n, _)| *n);
        let mut parts = Vec::with_capacity(sorted.len());
        for (n, etag) in sorted {
            let found = match Digest::parse(&bare_etag(etag)) {
                Ok(digest) => self.blobs.find_part(&self.upload_id, *n, &digest).await.map_err(artifact_error)?,
                Err(_) => None,
            };
            if let Some(part) = found {
                parts.push(part);
                continue;
            }
            let received = self.blobs.part_etags(&self.upload_id, *n).await.map_err(artifact_error)?;
            if received.is_empty() {
                return Err(ApiError::invalid(format!("Part {n} was never uploaded")));
            }
            return Err(ApiError::invalid(format!(
                "Part {n} has ETag {}, not '{etag}': it was uploaded again or never received",
                received.join(", ")
            )));
        }
        Ok(parts)
    }

    /// The completion failed: remove the mark now, so that the upload can be completed again.
    async fn release(mut self) {
        self.finished = true;
        if let Err(error) = self.blobs.end_completion(&self.upload_id).await {
            tracing::warn!(%error, upload_id = %self.upload_id, "cannot unmark an upload whose completion failed");
        }
    }

    /// The upload is recorded: remove it, mark included.
    async fn finish(mut self) {
        self.finished = true;
        if let Err(error) = self.blobs.discard_upload(&self.upload_id).await {
            // Harmless: stale staging is cleaned later.
            tracing::warn!(%error, upload_id = %self.upload_id, "cannot remove the parts of a completed upload");
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (blobs, upload_id) = (self.blobs.clone(), std::mem::take(&mut self.upload_id));
        // Drop cannot wait; the mark goes in the background, and a crashed server's mark
        // expires (`COMPLETING_STALE`).
        tokio::spawn(async move {
            if let Err(error) = blobs.end_completion(&upload_id).await {
                tracing::warn!(%error, %upload_id, "cannot unmark an upload whose completion failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path as FsPath;

    use axum::body::Bytes;
    use axum::http::{Method, Request};
    use cairn_artifacts::Digest;
    use cairn_core::model::NewRun;
    use cairn_store::StoreConfig;
    use http_body_util::BodyExt;
    use tempfile::TempDir;
    use tower::ServiceExt;

    use super::*;

    const HOST: &str = "cairn.test:5000";
    const MPU: &str = "/api/2.0/mlflow-artifacts/mpu";

    struct Fixture {
        router: Router,
        /// A second server on the same store and artifact folder, as a replica behind a balancer.
        replica: Router,
        /// `<experiment>/<run>/artifacts`: a run's root below `mlflow-artifacts:/`.
        root: String,
        dir: TempDir,
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    }

    impl Reply {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap_or(Value::Null)
        }

        #[track_caller]
        fn error(&self, status: StatusCode, code: &str) -> String {
            assert_eq!(self.status, status, "{:?}", self.json());
            assert_eq!(self.json()["error_code"], code);
            self.json()["message"].as_str().unwrap().to_owned()
        }
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
        let store = cairn_store::open(&StoreConfig::new(uri)).await.unwrap();
        let blobs = cairn_artifacts::BlobStore::open(&dir.path().join("artifacts").to_string_lossy()).unwrap();
        let new_run = NewRun {
            run_id: None,
            experiment_id: "0".into(),
            user_id: "u".into(),
            run_name: None,
            start_time: Some(1),
            tags: vec![],
        };
        let run = store.create_run(&Actor("t".into()), new_run).await.unwrap();
        let root = run.info.artifact_uri.strip_prefix("mlflow-artifacts:/").unwrap().to_owned();
        // The tests name the server as a proxy or a remote client would.
        let guard = crate::guard::WebGuard::new("127.0.0.1", &["cairn.test".into(), "internal".into()], &[]);
        let replica_blobs = cairn_artifacts::BlobStore::open(&dir.path().join("artifacts").to_string_lossy()).unwrap();
        let replica =
            crate::app(AppState::with_artifacts(store.clone(), replica_blobs).unwrap().with_guard(guard.clone()));
        let router = crate::app(AppState::with_artifacts(store, blobs).unwrap().with_guard(guard));
        Fixture { router, replica, root, dir }
    }

    impl Fixture {
        async fn send(&self, method: Method, uri: &str, body: impl Into<Body>) -> Reply {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::HOST, HOST)
                .header(header::CONTENT_TYPE, "application/json");
            let response = self.router.clone().oneshot(request.body(body.into()).unwrap()).await.unwrap();
            let (parts, body) = response.into_parts();
            Reply { status: parts.status, headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
        }

        async fn post(&self, uri: &str, body: Value) -> Reply {
            self.send(Method::POST, uri, body.to_string()).await
        }

        /// The route (`<verb>/<directory>`) and body `path` (a local file) naming `file` below the
        /// run's root, as the client sends them.
        fn names(&self, verb: &str, file: &str) -> (String, String) {
            let (dir, name) =
                file.rsplit_once('/').map_or((self.root.clone(), file), |(d, n)| (format!("{}/{d}", self.root), n));
            (format!("{MPU}/{verb}/{dir}"), format!("/home/me/data/{name}"))
        }

        /// Creates an upload of `num_parts` at `file` below the run's root; returns its id and the
        /// part URLs with the scheme and host removed.
        async fn create(&self, file: &str, num_parts: u32) -> (String, Vec<String>) {
            let (route, local) = self.names("create", file);
            let reply = self.post(&route, json!({"path": local, "num_parts": num_parts})).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
            let body = reply.json();
            let urls = body["credentials"].as_array().unwrap().iter().map(|c| {
                let url = c["url"].as_str().unwrap();
                url.strip_prefix(&format!("http://{HOST}")).unwrap().to_owned()
            });
            (body["upload_id"].as_str().unwrap().to_owned(), urls.collect())
        }

        /// Uploads a part and returns the ETag it was answered with.
        async fn part(&self, url: &str, bytes: &'static [u8]) -> String {
            let reply = self.send(Method::PUT, url, bytes).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
            reply.headers[header::ETAG].to_str().unwrap().to_owned()
        }

        async fn complete(&self, file: &str, upload_id: &str, parts: &[(u32, &str)]) -> Reply {
            let parts: Vec<Value> = parts.iter().map(|(n, etag)| json!({"part_number": n, "etag": etag})).collect();
            let (route, local) = self.names("complete", file);
            self.post(&route, json!({"path": local, "upload_id": upload_id, "parts": parts})).await
        }

        async fn abort(&self, file: &str, upload_id: &str) -> Reply {
            let (route, local) = self.names("abort", file);
            self.post(&route, json!({"path": local, "upload_id": upload_id})).await
        }

        async fn download(&self, file: &str) -> Reply {
            self.send(Method::GET, &format!("/api/2.0/mlflow-artifacts/artifacts/{}/{file}", self.root), Body::empty())
                .await
        }

        /// The part copies held in staging, over all uploads (bookkeeping objects not counted).
        fn staged_files(&self) -> usize {
            let uploads = self.dir.path().join("artifacts").join("staging").join("uploads");
            let Ok(entries) = std::fs::read_dir(uploads) else { return 0 };
            entries.filter_map(Result::ok).map(|e| count_files(&e.path().join("data"))).sum()
        }
    }

    fn count_files(dir: &FsPath) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        entries.filter_map(Result::ok).map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
    }

    fn quoted_digest(bytes: &[u8]) -> String {
        format!("\"{}\"", Digest::of(bytes).to_hex())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parts_in_any_order_assemble_into_one_recorded_file() {
        let f = fixture().await;
        let (id, urls) = f.create("model/big.bin", 3).await;
        assert_eq!(urls, (1..=3).map(|n| format!("{MPU}/parts/{id}/{n}")).collect::<Vec<_>>());

        let third = f.part(&urls[2], b"ccc").await;
        let first = f.part(&urls[0], b"aaaa").await;
        let stale = f.part(&urls[1], b"XX").await;
        // A retried part replaces the earlier copy, whose ETag no longer completes the upload.
        let second = f.part(&urls[1], b"bb").await;
        assert_eq!((first.as_str(), second.as_str()), (quoted_digest(b"aaaa").as_str(), quoted_digest(b"bb").as_str()));
        let refused = f.complete("model/big.bin", &id, &[(1, &first), (2, &stale), (3, &third)]).await;
        assert!(refused.error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE").contains("Part 2 has ETag"));

        // Listed out of order and with the quotes stripped, as some HTTP libraries do.
        let done = f.complete("model/big.bin", &id, &[(3, &third), (1, first.trim_matches('"')), (2, &second)]).await;
        assert_eq!((done.status, done.json()), (StatusCode::OK, json!({})));
        let got = f.download("model/big.bin").await;
        assert_eq!((got.status, &got.body[..]), (StatusCode::OK, &b"aaaabbccc"[..]));
        assert_eq!(f.staged_files(), 0, "the parts are gone once the blob is recorded");
        let again = f.complete("model/big.bin", &id, &[(1, &first), (2, &second), (3, &third)]).await;
        again.error(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_can_move_between_servers_sharing_the_storage() {
        let mut f = fixture().await;
        let (id, urls) = f.create("shared.bin", 2).await;
        let one = f.part(&urls[0], b"left ").await;
        // Every later request of the upload reaches the other server.
        std::mem::swap(&mut f.router, &mut f.replica);
        let two = f.part(&urls[1], b"right").await;
        let done = f.complete("shared.bin", &id, &[(1, &one), (2, &two)]).await;
        assert_eq!((done.status, done.json()), (StatusCode::OK, json!({})));
        std::mem::swap(&mut f.router, &mut f.replica);
        assert_eq!(&f.download("shared.bin").await.body[..], b"left right");
        assert_eq!(f.staged_files(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn credentials_follow_the_prefix_and_forwarded_address() {
        let f = fixture().await;
        let request = Request::post(format!("/ajax-api/2.0/mlflow-artifacts/mpu/create/{}", f.root))
            .header(header::HOST, "internal:80")
            .header("x-forwarded-host", "cairn.example.com")
            .header("x-forwarded-proto", "https")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"path": "f.bin", "num_parts": 1}).to_string()))
            .unwrap();
        let response = f.router.clone().oneshot(request).await.unwrap();
        let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
        let id = body["upload_id"].as_str().unwrap();
        let url = format!("https://cairn.example.com/ajax-api/2.0/mlflow-artifacts/mpu/parts/{id}/1");
        assert_eq!(body["credentials"], json!([{"part_number": 1, "url": url, "headers": {}}]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn complete_refuses_missing_unknown_or_misplaced_parts() {
        let f = fixture().await;
        let (id, urls) = f.create("two.bin", 2).await;
        let one = f.part(&urls[0], b"first").await;
        let invalid = |reply: Reply| reply.error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");

        assert!(invalid(f.complete("two.bin", &id, &[(1, &one)]).await).contains("Part 2 of 2 is not listed"));
        assert!(
            invalid(f.complete("two.bin", &id, &[(1, &one), (2, "\"x\"")]).await).contains("Part 2 was never uploaded")
        );
        let two = f.part(&urls[1], b"second").await;
        assert!(invalid(f.complete("two.bin", &id, &[(1, &one), (2, &one)]).await).contains("Part 2 has ETag"));
        assert!(invalid(f.complete("two.bin", &id, &[(1, &one), (2, &two), (3, &two)]).await).contains("out of range"));
        assert!(invalid(f.complete("two.bin", &id, &[(1, &one), (1, &one)]).await).contains("more than once"));
        assert!(invalid(f.complete("other.bin", &id, &[(1, &one), (2, &two)]).await).contains("was created for"));
        let unknown = f.complete("two.bin", "feedface", &[(1, &one), (2, &two)]).await;
        assert!(unknown.error(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST").contains("feedface"));
        let no_id = f.post(&f.names("complete", "two.bin").0, json!({"path": "two.bin", "parts": []})).await;
        assert!(invalid(no_id).contains("upload_id"));

        // None of the refusals spoiled the upload.
        let done = f.complete("two.bin", &id, &[(1, &one), (2, &two)]).await;
        assert_eq!(done.status, StatusCode::OK, "{:?}", done.json());
        assert_eq!(&f.download("two.bin").await.body[..], b"firstsecond");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_and_part_requests_are_checked() {
        let f = fixture().await;
        let f = &f;
        let create = |dir: String, body: Value| async move { f.post(&format!("{MPU}/create/{dir}"), body).await };
        let invalid = |reply: Reply| reply.error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        let root = f.root.clone();
        let file = |local: &str| json!({"path": local, "num_parts": 2});

        for bad in
            [json!({"path": "f", "num_parts": 0}), json!({"path": "f", "num_parts": 10_001}), json!({"path": "f"})]
        {
            assert!(invalid(create(root.clone(), bad.clone()).await).contains("num_parts"), "{bad}");
        }
        assert!(invalid(create(root.clone(), json!({"num_parts": 1})).await).contains("'path'"));
        assert!(invalid(create(root.clone(), file("/home/me/")).await).contains("must name the file"));
        assert!(invalid(create(root.clone(), file(".")).await).contains("names a directory"));
        invalid(create(format!("{root}/../.."), file("f.bin")).await);
        invalid(create(root.clone(), file("/home/me/..")).await);
        let no_host =
            Request::post(format!("{MPU}/create/{root}")).body(Body::from(file("f.bin").to_string())).unwrap();
        let response = f.router.clone().oneshot(no_host).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);

        let (id, _) = f.create("f.bin", 2).await;
        for (part, why) in [("0", "out of range"), ("3", "out of range"), ("x", "Invalid part number")] {
            let reply = f.send(Method::PUT, &format!("{MPU}/parts/{id}/{part}"), &b"data"[..]).await;
            assert!(invalid(reply).contains(why), "{part}");
        }
        let unknown = f.send(Method::PUT, &format!("{MPU}/parts/feedface/1"), &b"data"[..]).await;
        unknown.error(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
        assert_eq!(f.staged_files(), 0, "refused parts stage nothing");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abort_removes_the_parts_and_the_upload() {
        let f = fixture().await;
        let (id, urls) = f.create("gone.bin", 2).await;
        f.part(&urls[0], b"one").await;
        f.part(&urls[1], b"two").await;
        assert_eq!(f.staged_files(), 2);
        f.abort("sub/gone.bin", &id).await.error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
        let aborted = f.abort("gone.bin", &id).await;
        assert_eq!((aborted.status, aborted.json()), (StatusCode::OK, json!({})));
        assert_eq!(f.staged_files(), 0);
        f.send(Method::PUT, &urls[0], &b"late"[..]).await.error(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
        f.complete("gone.bin", &id, &[]).await.error(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
        assert_eq!(f.download("gone.bin").await.status, StatusCode::NOT_FOUND);
    }
}
