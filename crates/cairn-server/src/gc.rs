//! Garbage collection of artifacts: purge runs deleted longer ago than a threshold, then delete
//! the blobs no manifest row names any more. `cairn gc` runs [`collect`] once; a server started
//! with `--gc-interval` runs it periodically with [`spawn_periodic`].
//!
//! Uploads commit a blob and then insert its manifest row, in whichever process serves them, so
//! the collector follows the blob store's cross-process contract: it deletes only blobs that are
//! unreferenced *and* whose `last_modified`, re-read right before the delete, is older than the
//! grace period. An upload that deduplicates against an old blob refreshes it, so a blob an
//! upload has just returned is never older than [`GRACE`] while its manifest row is on its way.

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
/// than `grace`.
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
            "a garbage-collection grace period under 1h can remove a blob an upload has just deduplicated against"
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
    use axum::body::Bytes;

    use cairn_core::artifacts::NewArtifact;
    use cairn_core::model::NewRun;
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
        let new_run =
            NewRun { experiment_id: "0".into(), user_id: "u".into(), run_name: None, start_time: Some(1), tags: vec![] };
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
