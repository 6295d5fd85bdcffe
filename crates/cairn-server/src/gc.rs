//! Garbage collection of artifacts: purge runs deleted longer ago than a threshold, then delete
//! the blobs no manifest row names any more. `cairn gc` runs [`collect`] once; a server started
//! with `--gc-interval` runs it periodically with [`spawn_periodic`].
//!
//! Uploads commit a blob and then insert its manifest row. The danger is an upload whose commit
//! finds its content already stored (and unreferenced), followed by a collector deleting that
//! blob before the upload's row names it. Two rules exclude it:
//!
//! * **This process's uploads** hold the blob store's pin from commit to manifest insert, and the
//!   collector re-checks and deletes each blob under `BlobStore::lock_for_collection`, so it is
//!   exact whatever the grace period (tested below with none).
//! * **Other processes' uploads** (another server on the same storage while `cairn gc` runs)
//!   are covered by the blob store's cross-process contract: only unreferenced blobs whose
//!   `last_modified`, re-read right before the delete, is older than the grace period go. An
//!   upload that deduplicates against an old blob refreshes it, so a blob an upload has just
//!   returned is never older than [`GRACE`] while its manifest row is on its way. (A refresh that
//!   lands between the collector's re-read and its delete, a window of one request, is the
//!   residual risk; object stores offer no conditional delete to close it.)
//!
//! A collection also removes staging objects older than [`STALE_STAGING`]: uploads cut off by a
//! crash, and the parts of multipart uploads never completed nor aborted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use cairn_artifacts::BlobStore;
use cairn_core::artifacts::ArtifactManifest;
use cairn_core::model::Actor;

use crate::artifacts::Artifacts;

/// The default and safe minimum grace period: the blob store's refresh interval (30 minutes)
/// plus ample time between an upload's commit and its manifest row.
pub const GRACE: Duration = Duration::from_secs(3600);

/// The age past which a staging object can only be abandoned: no upload, and no multipart
/// upload session, lasts this long.
pub const STALE_STAGING: Duration = Duration::from_secs(24 * 3600);

/// Parses `<number><unit>` with unit `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("'{text}' is not a duration such as 30d, 12h, 90m or 45s"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{text}' has no unit: use s, m, h or d (for example 30d)")),
    };
    n.checked_mul(seconds).map(Duration::from_secs).ok_or_else(|| format!("'{text}' is too long"))
}

/// What one collection removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcReport {
    /// Runs purged for good.
    pub runs: usize,
    /// Manifest rows purged with them.
    pub files: u64,
    /// Unreferenced blobs deleted.
    pub blobs: usize,
    /// Bytes those blobs held.
    pub bytes: u64,
}

/// Purges runs deleted more than `older_than` ago, then deletes unreferenced blobs older
/// than `grace` and staging objects older than [`STALE_STAGING`].
pub async fn collect(
    manifest: &dyn ArtifactManifest,
    blobs: &BlobStore,
    older_than: Duration,
    grace: Duration,
) -> anyhow::Result<GcReport> {
    let now = SystemTime::now();
    let cutoff = now.checked_sub(older_than).unwrap_or(UNIX_EPOCH);
    let cutoff_ms = cutoff.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let purge = manifest
        .purge_deleted_runs(&Actor("cairn-gc".to_owned()), cutoff_ms)
        .await
        .context("cannot purge deleted runs")?;
    let mut report = GcReport { runs: purge.runs.len(), files: purge.artifact_files, ..GcReport::default() };

    let young = |modified: SystemTime| now.duration_since(modified).map_or(true, |age| age < grace);
    let mut listing = blobs.list_blobs();
    while let Some(blob) = listing.next().await {
        let blob = blob.context("cannot list artifact blobs")?;
        if young(blob.last_modified) {
            continue;
        }
        let digest = blob.digest.to_hex();
        // Most listed blobs are referenced: rule them out without taking the lock.
        if manifest.is_referenced(&digest).await.context("cannot read the manifest")? {
            continue;
        }
        // Decide and delete with this process's uploads held off between commit and manifest
        // insert (see the module docs); one blob at a time, so uploads wait for milliseconds.
        let _lock = blobs.lock_for_collection().await;
        if manifest.is_referenced(&digest).await.context("cannot read the manifest")? {
            continue;
        }
        // Re-read just before deleting: an upload may have refreshed the blob since listing.
        let Some(info) = blobs.info(&blob.digest).await.context("cannot inspect a blob")? else { continue };
        if young(info.last_modified) {
            continue;
        }
        blobs.delete(&blob.digest).await.context("cannot delete a blob")?;
        tracing::info!(digest = %digest, size = info.size, "deleted unreferenced blob");
        report.blobs += 1;
        report.bytes += info.size;
    }
    let staging = blobs.clean_staging(STALE_STAGING).await.context("cannot clean stale staging")?;
    if staging > 0 {
        tracing::info!(objects = staging, "deleted stale staging objects");
    }
    Ok(report)
}

/// How a server collects garbage on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodicGc {
    /// Time between the end of one collection and the start of the next.
    pub interval: Duration,
    /// Purge runs deleted longer ago than this.
    pub older_than: Duration,
    /// Keep unreferenced blobs written more recently than this.
    pub grace: Duration,
}

/// Runs [`collect`] every `settings.interval`, the first time one interval after start, until the
/// returned task is aborted. A failed collection is logged and retried at the next tick: the
/// server keeps serving either way.
pub fn spawn_periodic(artifacts: Artifacts, settings: PeriodicGc) -> JoinHandle<()> {
    if settings.grace < GRACE {
        tracing::warn!(
            grace_secs = settings.grace.as_secs(),
            "a garbage-collection grace period under 1h can remove a blob that an upload served by another process has just deduplicated against"
        );
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + settings.interval, settings.interval);
        // A slow collection must not be followed by a burst of catch-up runs.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match collect(artifacts.manifest.as_ref(), &artifacts.blobs, settings.older_than, settings.grace).await {
                Ok(report) if report == GcReport::default() => tracing::debug!("garbage collection: nothing to remove"),
                Ok(report) => tracing::info!(
                    runs = report.runs,
                    files = report.files,
                    blobs = report.blobs,
                    bytes = report.bytes,
                    "garbage collection"
                ),
                Err(error) => tracing::warn!(error = format!("{error:#}"), "garbage collection failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Bytes;

    use cairn_core::artifacts::NewArtifact;
    use cairn_core::model::NewRun;
    use cairn_core::store::Store;
    use cairn_store::StoreConfig;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_periodic_task_purges_deleted_runs_and_their_blobs_but_keeps_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
        let store = cairn_store::open(&StoreConfig::new(uri)).await.unwrap();
        let manifest = store.clone().artifact_manifest().unwrap();
        let blobs = BlobStore::open(&dir.path().join("artifacts").to_string_lossy()).unwrap();
        let actor = Actor("t".into());
        let new_run = NewRun {
            run_id: None,
            experiment_id: "0".into(),
            user_id: "u".into(),
            run_name: None,
            start_time: Some(1),
            tags: vec![],
        };
        let gone = store.create_run(&actor, new_run.clone()).await.unwrap().info.run_id;
        let kept = store.create_run(&actor, new_run).await.unwrap().info.run_id;
        let doomed = blobs.put_bytes(Bytes::from_static(b"only the deleted run")).await.unwrap();
        let live = blobs.put_bytes(Bytes::from_static(b"still wanted")).await.unwrap();
        for (run, blob) in [(&gone, &doomed), (&kept, &live)] {
            let file = NewArtifact { path: "f".into(), digest: blob.digest.to_hex(), size: blob.size };
            manifest.put_artifact(&actor, run, file).await.unwrap();
        }
        store.delete_run(&actor, &gone).await.unwrap();

        let settings =
            PeriodicGc { interval: Duration::from_millis(50), older_than: Duration::ZERO, grace: Duration::ZERO };
        let task = spawn_periodic(Artifacts { blobs: blobs.clone(), manifest: manifest.clone() }, settings);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while blobs.head(&doomed.digest).await.unwrap().is_some() {
            assert!(tokio::time::Instant::now() < deadline, "the periodic collection never removed the blob");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        assert!(matches!(store.get_run(&gone).await, Err(cairn_core::Error::NotFound(_))), "the run was purged");
        assert!(store.get_run(&kept).await.is_ok());
        assert_eq!(blobs.head(&live.digest).await.unwrap(), Some(live.size), "a referenced blob survives");
        assert!(store.verify_audit().await.unwrap().is_ok());
        store.close().await.unwrap();
    }

    async fn sqlite_fixture(dir: &std::path::Path) -> (Arc<dyn Store>, Arc<dyn ArtifactManifest>, BlobStore) {
        let uri = format!("sqlite:///{}", dir.join("cairn.db").display());
        let store = cairn_store::open(&StoreConfig::new(uri)).await.unwrap();
        let manifest = store.clone().artifact_manifest().unwrap();
        let blobs = BlobStore::open(&dir.join("artifacts").to_string_lossy()).unwrap();
        (store, manifest, blobs)
    }

    fn new_run() -> NewRun {
        NewRun {
            run_id: None,
            experiment_id: "0".into(),
            user_id: "u".into(),
            run_name: None,
            start_time: Some(1),
            tags: vec![],
        }
    }

    /// The exact race: an upload's commit finds its content already stored but unreferenced, and
    /// a collection with no grace at all runs before the upload's manifest row is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blob_an_upload_just_deduplicated_against_survives_collection() {
        let dir = tempfile::tempdir().unwrap();
        let (store, manifest, blobs) = sqlite_fixture(dir.path()).await;
        let actor = Actor("t".into());
        let run = store.create_run(&actor, new_run()).await.unwrap().info.run_id;
        let content = Bytes::from_static(b"stored earlier, referenced by nothing");
        let orphan = blobs.put_bytes(content.clone()).await.unwrap();

        let staged = blobs.stage(futures::stream::iter([Ok::<_, std::io::Error>(content)])).await.unwrap();
        let pinned = staged.commit_pinned().await.unwrap();
        assert_eq!(pinned.blob(), &orphan, "the commit deduplicated against the orphan");
        let collection = {
            let (manifest, blobs) = (manifest.clone(), blobs.clone());
            tokio::spawn(async move { collect(manifest.as_ref(), &blobs, Duration::ZERO, Duration::ZERO).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!collection.is_finished(), "the collector must wait for the pinned upload");
        assert_eq!(blobs.head(&orphan.digest).await.unwrap(), Some(orphan.size));
        let file = NewArtifact { path: "f".into(), digest: orphan.digest.to_hex(), size: orphan.size };
        manifest.put_artifact(&actor, &run, file).await.unwrap();
        drop(pinned);

        let report = collection.await.unwrap().unwrap();
        assert_eq!(report.blobs, 0, "the blob became referenced before the collector decided");
        assert!(blobs.verify(&orphan.digest).await.unwrap());

        // Without an upload in the way, the same collection does delete an orphan.
        let other = blobs.put_bytes(Bytes::from_static(b"another orphan")).await.unwrap();
        let report = collect(manifest.as_ref(), &blobs, Duration::ZERO, Duration::ZERO).await.unwrap();
        assert_eq!((report.blobs, report.bytes), (1, other.size));
        store.close().await.unwrap();
    }

    /// Collections with neither threshold nor grace, back to back, while several uploaders write
    /// distinct files and files identical to each other and to unreferenced blobs, through the
    /// HTTP routes (plain and multipart), and delete some of them again so that blobs keep
    /// becoming collectable. Every upload that was acknowledged must still read back intact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn collection_beside_uploads_never_loses_an_acknowledged_file() {
        use std::sync::atomic::{AtomicBool, Ordering};

        use axum::body::Body;
        use axum::http::{Method, Request, StatusCode};
        use http_body_util::BodyExt;
        use serde_json::{Value, json};
        use tower::ServiceExt;

        const UPLOADERS: usize = 4;
        const FILES_EACH: usize = 24;
        const API: &str = "/api/2.0/mlflow-artifacts";

        async fn call(router: &axum::Router, method: Method, uri: &str, body: impl Into<Body>) -> (StatusCode, Bytes) {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .header("host", "gc.test")
                .header("content-type", "application/json");
            let response = router.clone().oneshot(request.body(body.into()).unwrap()).await.unwrap();
            let status = response.status();
            (status, response.into_body().collect().await.unwrap().to_bytes())
        }

        /// Uploads `content` as file `name` of directory `dir` in two parts through the
        /// multipart routes.
        async fn multipart(router: &axum::Router, dir: &str, name: &str, content: &Bytes) -> StatusCode {
            let create = json!({"path": name, "num_parts": 2}).to_string();
            let (status, body) = call(router, Method::POST, &format!("{API}/mpu/create/{dir}"), create).await;
            assert_eq!(status, StatusCode::OK);
            let created: Value = serde_json::from_slice(&body).unwrap();
            let id = created["upload_id"].as_str().unwrap();
            let half = content.len() / 2;
            let mut parts = Vec::new();
            for (n, bytes) in [(1, content.slice(..half)), (2, content.slice(half..))] {
                let uri = format!("{API}/mpu/parts/{id}/{n}");
                let request = Request::put(uri).body(Body::from(bytes)).unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let etag = response.headers()["etag"].to_str().unwrap().to_owned();
                parts.push(json!({"part_number": n, "etag": etag}));
            }
            let complete = json!({"path": name, "upload_id": id, "parts": parts}).to_string();
            call(router, Method::POST, &format!("{API}/mpu/complete/{dir}"), complete).await.0
        }

        let dir = tempfile::tempdir().unwrap();
        let (store, manifest, blobs) = sqlite_fixture(dir.path()).await;
        let run = store.create_run(&Actor("t".into()), new_run()).await.unwrap();
        let root = run.info.artifact_uri.strip_prefix("mlflow-artifacts:/").unwrap().to_owned();
        let guard = crate::guard::WebGuard::new("127.0.0.1", &["gc.test".into()], &[]);
        let state = crate::AppState::with_artifacts(store.clone(), blobs.clone()).unwrap().with_guard(guard);
        let router = crate::app(state);
        // Stored first and referenced by nothing: every upload of these deduplicates against a
        // blob the collector is entitled to delete.
        let shared: Vec<Bytes> = (0..3).map(|k| Bytes::from(format!("content shared by all, #{k}"))).collect();
        for content in &shared {
            blobs.put_bytes(content.clone()).await.unwrap();
        }

        let stop = Arc::new(AtomicBool::new(false));
        let collector = {
            let (manifest, blobs, stop) = (manifest.clone(), blobs.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut passes, mut deleted) = (0, 0);
                while !stop.load(Ordering::Relaxed) {
                    let report = collect(manifest.as_ref(), &blobs, Duration::ZERO, Duration::ZERO).await.unwrap();
                    passes += 1;
                    deleted += report.blobs;
                }
                (passes, deleted)
            })
        };
        let uploaders: Vec<_> = (0..UPLOADERS)
            .map(|t| {
                let (router, root, shared) = (router.clone(), root.clone(), shared.clone());
                tokio::spawn(async move {
                    let mut kept = Vec::new();
                    for i in 0..FILES_EACH {
                        let content = if i % 2 == 0 {
                            shared[(t + i) % shared.len()].clone()
                        } else {
                            Bytes::from(format!("{t}/{i}"))
                        };
                        let (dir, name) = (format!("{root}/t{t}"), format!("f{i}"));
                        let path = format!("{dir}/{name}");
                        let status = if i % 8 == 3 {
                            multipart(&router, &dir, &name, &content).await
                        } else {
                            call(&router, Method::PUT, &format!("{API}/artifacts/{path}"), content.clone()).await.0
                        };
                        assert_eq!(status, StatusCode::OK, "upload {path}");
                        // Every third file is deleted again, leaving its blob to the collector.
                        if i % 3 == 2 {
                            let (status, _) =
                                call(&router, Method::DELETE, &format!("{API}/artifacts/{path}"), Body::empty()).await;
                            assert_eq!(status, StatusCode::OK);
                        } else {
                            kept.push((path, content));
                        }
                        tokio::task::yield_now().await;
                    }
                    kept
                })
            })
            .collect();
        let mut kept = Vec::new();
        for uploader in uploaders {
            kept.extend(uploader.await.unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        let (passes, deleted) = collector.await.unwrap();
        assert!(passes > 1 && deleted > 0, "the collector ran beside the uploads: {passes} passes, {deleted} blobs");

        for (path, content) in &kept {
            let (status, body) = call(&router, Method::GET, &format!("{API}/artifacts/{path}"), Body::empty()).await;
            assert_eq!((status, &body), (StatusCode::OK, content), "{path}");
        }
        for file in manifest.all_artifacts().await.unwrap() {
            let digest = cairn_artifacts::Digest::parse(&file.file.digest).unwrap();
            assert!(blobs.verify(&digest).await.unwrap(), "{} names a missing or damaged blob", file.file.path);
        }
        assert!(store.verify_audit().await.unwrap().is_ok());
        store.close().await.unwrap();
    }

    #[test]
    fn durations_need_a_number_and_a_unit() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["30", "d", "1w", "-1d", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
