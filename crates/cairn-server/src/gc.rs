//! Garbage collection of artifacts: purge runs deleted longer ago than a threshold, then delete
//! the blobs no manifest row names any more. `cairn gc` runs [`collect`] once; a server started
//! with `--gc-interval` runs it periodically with [`spawn_periodic`].
//!
//! Uploads commit a blob and then insert its manifest row. The danger is an upload whose commit
//! finds its content already stored (and unreferenced), followed by a collector deleting that
//! blob before the upload's row names it. The metadata store, which every server process and
//! `cairn gc` share, excludes it: an upload pins the digest before its commit and releases it
//! after the insert (`mlflow::commit`), and the collector deletes a blob only under a deletion
//! claim, which the store grants only while no manifest row names the digest and no upload pins
//! it, and which makes new pins wait until the delete is done (`ArtifactManifest::pin_blob`).
//! This is exact across processes whatever the grace period; the grace period only spares blobs
//! written recently, and the blob store's own in-process pin is kept as a second line.
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
use cairn_core::progress::{Progress, Silent};

use crate::artifacts::Artifacts;

/// The default grace period: unreferenced blobs younger than this are left for a later pass.
pub const GRACE: Duration = Duration::from_secs(3600);

/// How long a deletion claim lasts if its collector dies before releasing it; a delete of one
/// blob takes far less.
const CLAIM_TTL: cairn_core::model::Millis = 60 * 1000;

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
    /// Stopped on request before every blob was looked at; the counts say what was done.
    pub interrupted: bool,
}

/// Purges runs deleted more than `older_than` ago, then deletes unreferenced blobs older
/// than `grace` and staging objects older than [`STALE_STAGING`].
pub async fn collect(
    manifest: &dyn ArtifactManifest,
    blobs: &BlobStore,
    older_than: Duration,
    grace: Duration,
) -> anyhow::Result<GcReport> {
    collect_with(manifest, blobs, older_than, grace, &Silent).await
}

/// [`collect`], reporting the blobs looked at to `progress` and stopping between two blobs if it
/// is cancelled (the report says so).
pub async fn collect_with(
    manifest: &dyn ArtifactManifest,
    blobs: &BlobStore,
    older_than: Duration,
    grace: Duration,
    progress: &dyn Progress,
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
    let holder = format!("gc-{}", blobs.new_upload_id());
    progress.phase("blobs", None);
    let mut listing = blobs.list_blobs();
    while let Some(blob) = listing.next().await {
        if progress.cancelled() {
            report.interrupted = true;
            return Ok(report);
        }
        progress.advance(1);
        let blob = blob.context("cannot list artifact blobs")?;
        if young(blob.last_modified) {
            continue;
        }
        let digest = blob.digest.to_hex();
        // Most listed blobs are referenced: rule them out without taking the lock.
        if manifest.is_referenced(&digest).await.context("cannot read the manifest")? {
            continue;
        }
        // Decide and delete under a deletion claim, which uploads of every process respect (see
        // the module docs); one blob at a time, so an upload of the same content waits for
        // milliseconds.
        let _lock = blobs.lock_for_collection().await;
        if !manifest.claim_blob_deletion(&digest, &holder, CLAIM_TTL).await.context("cannot claim a blob")? {
            continue;
        }
        let deleted = delete_claimed(blobs, &blob.digest, young).await;
        if let Err(error) = manifest.release_blob_deletion(&digest, &holder).await {
            tracing::warn!(%error, %digest, "cannot release a deletion claim; it expires by itself");
        }
        if let Some(size) = deleted? {
            tracing::info!(digest = %digest, size, "deleted unreferenced blob");
            report.blobs += 1;
            report.bytes += size;
        }
    }
    let staging = blobs.clean_staging(STALE_STAGING).await.context("cannot clean stale staging")?;
    if staging > 0 {
        tracing::info!(objects = staging, "deleted stale staging objects");
    }
    Ok(report)
}

/// Deletes a claimed blob unless it was written within the grace period (re-read just before,
/// since an upload may have refreshed it since listing); returns its size if deleted.
async fn delete_claimed(
    blobs: &BlobStore,
    digest: &cairn_artifacts::Digest,
    young: impl Fn(SystemTime) -> bool,
) -> anyhow::Result<Option<u64>> {
    let Some(info) = blobs.info(digest).await.context("cannot inspect a blob")? else { return Ok(None) };
    if young(info.last_modified) {
        return Ok(None);
    }
    blobs.delete(digest).await.context("cannot delete a blob")?;
    Ok(Some(info.size))
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

    /// The same race with the upload in another process: that process holds no lock of this one,
    /// only its pin in the shared metadata store, and this collector (another blob-store handle
    /// on the same folder, as `cairn gc` would open it) still leaves the blob alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blob_pinned_by_another_process_survives_collection() {
        let dir = tempfile::tempdir().unwrap();
        let (store, manifest, blobs) = sqlite_fixture(dir.path()).await;
        let collector_blobs = BlobStore::open(&dir.path().join("artifacts").to_string_lossy()).unwrap();
        let orphan = blobs.put_bytes(Bytes::from_static(b"being uploaded elsewhere")).await.unwrap();
        let digest = orphan.digest.to_hex();
        assert!(manifest.pin_blob(&digest, "upload-elsewhere", 60_000).await.unwrap());

        let report = collect(manifest.as_ref(), &collector_blobs, Duration::ZERO, Duration::ZERO).await.unwrap();
        assert_eq!(report.blobs, 0, "pinned by an upload in flight");
        assert!(blobs.verify(&orphan.digest).await.unwrap());

        manifest.unpin_blob(&digest, "upload-elsewhere").await.unwrap();
        let report = collect(manifest.as_ref(), &collector_blobs, Duration::ZERO, Duration::ZERO).await.unwrap();
        assert_eq!((report.blobs, report.bytes), (1, orphan.size), "unpinned and unreferenced: collected");
        // The claim was released with the delete: a new upload of the same content may pin it.
        assert!(manifest.pin_blob(&digest, "upload-later", 60_000).await.unwrap());
        store.close().await.unwrap();
    }

    /// A collection asked to stop (Ctrl-C on `cairn gc`) stops before the next blob, says so, and
    /// has deleted nothing it had not decided on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_collection_stops_and_says_so() {
        struct Stop;
        impl Progress for Stop {
            fn phase(&self, _: &str, _: Option<u64>) {}
            fn advance(&self, _: u64) {}
            fn cancelled(&self) -> bool {
                true
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (store, manifest, blobs) = sqlite_fixture(dir.path()).await;
        let orphan = blobs.put_bytes(Bytes::from_static(b"left for next time")).await.unwrap();
        let report = collect_with(manifest.as_ref(), &blobs, Duration::ZERO, Duration::ZERO, &Stop).await.unwrap();
        assert!(report.interrupted);
        assert_eq!(report.blobs, 0);
        assert!(blobs.verify(&orphan.digest).await.unwrap());
        let report = collect(manifest.as_ref(), &blobs, Duration::ZERO, Duration::ZERO).await.unwrap();
        assert!(!report.interrupted);
        assert_eq!(report.blobs, 1);
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
