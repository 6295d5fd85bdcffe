//! `cairn gc --older-than <duration>`: purge runs deleted longer ago than the threshold, then
//! delete the blobs no manifest row names any more.
//!
//! The collector runs in its own process, beside servers that may be uploading, so it follows
//! the blob store's cross-process contract: it deletes only blobs that are unreferenced *and*
//! whose `last_modified`, re-read right before the delete, is older than [`GRACE`]. An upload
//! that deduplicates against an old blob refreshes it, so a blob an upload has just returned is
//! never older than the grace period while its manifest row is still on its way.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;

use cairn_artifacts::BlobStore;
use cairn_core::artifacts::ArtifactManifest;
use cairn_core::model::Actor;

use super::StoreArgs;
use super::artifacts::{BlobArgs, open_manifest};

/// The default and safe minimum grace period: unreferenced blobs younger than this are kept, at least the store's refresh interval
/// covering the store's refresh interval (30 minutes) plus the longest gap between an upload's
/// commit and its manifest row.
pub const GRACE: Duration = Duration::from_secs(3600);

/// `cairn gc` options.
#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    /// Purge runs deleted longer ago than this (`30d`, `12h`, `90m`, `45s`; `0s` for all).
    #[arg(long, value_parser = parse_duration)]
    pub older_than: Duration,
    /// Keep unreferenced blobs written more recently than this. Below `1h` a blob an upload in
    /// another process has just deduplicated against may be removed; use less only when no
    /// server is running.
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    pub grace: Duration,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub blobs: BlobArgs,
}

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

/// Runs the collector and prints what it removed.
pub async fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let blobs = args.blobs.open(&args.store)?;
    let (store, manifest) = open_manifest(&args.store).await?;
    if args.grace < GRACE {
        tracing::warn!(
            grace_secs = args.grace.as_secs(),
            "a grace period under 1h is only safe while no server is uploading"
        );
    }
    let outcome = collect(manifest.as_ref(), &blobs, args.older_than, args.grace).await;
    store.close().await.context("closing the store")?;
    let report = outcome?;
    println!(
        "purged {} run(s) with {} artifact file(s); deleted {} unreferenced blob(s), {} bytes",
        report.runs, report.files, report.blobs, report.bytes
    );
    Ok(ExitCode::SUCCESS)
}

/// What one collection removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcReport {
    pub runs: usize,
    pub files: u64,
    pub blobs: usize,
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
    let cutoff_ms = cutoff.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
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

#[cfg(test)]
mod tests {
    use super::*;

    use cairn_core::artifacts::NewArtifact;
    use cairn_core::model::NewRun;
    use cairn_store::StoreConfig;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn collects_purged_runs_and_unreferenced_blobs_but_never_referenced_or_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
        let store = cairn_store::open(&StoreConfig::new(uri)).await.unwrap();
        let manifest = store.clone().artifact_manifest().unwrap();
        let blobs = BlobStore::open(&dir.path().join("artifacts").to_string_lossy()).unwrap();
        let actor = Actor("t".into());
        let new_run = NewRun {
            experiment_id: "0".into(),
            user_id: "u".into(),
            run_name: None,
            start_time: Some(1),
            tags: vec![],
        };
        let (gone, kept) = (
            store.create_run(&actor, new_run.clone()).await.unwrap().info.run_id,
            store.create_run(&actor, new_run).await.unwrap().info.run_id,
        );
        let shared = blobs.put_bytes(bytes::Bytes::from_static(b"shared")).await.unwrap();
        let only_gone = blobs.put_bytes(bytes::Bytes::from_static(b"only in the deleted run")).await.unwrap();
        for (run, path, blob) in [(&gone, "a", &shared), (&gone, "b", &only_gone), (&kept, "c", &shared)] {
            let file = NewArtifact { path: path.into(), digest: blob.digest.to_hex(), size: blob.size };
            manifest.put_artifact(&actor, run, file).await.unwrap();
        }
        store.delete_run(&actor, &gone).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;

        // Within the grace period an unreferenced blob may belong to an upload whose manifest
        // row is still on its way: it stays.
        let report = collect(manifest.as_ref(), &blobs, Duration::ZERO, GRACE).await.unwrap();
        assert_eq!((report.runs, report.files, report.blobs), (1, 2, 0));
        assert!(blobs.head(&only_gone.digest).await.unwrap().is_some());

        let report = collect(manifest.as_ref(), &blobs, Duration::ZERO, Duration::ZERO).await.unwrap();
        assert_eq!((report.runs, report.blobs, report.bytes), (0, 1, only_gone.size));
        assert!(blobs.head(&only_gone.digest).await.unwrap().is_none());
        assert!(blobs.head(&shared.digest).await.unwrap().is_some(), "a referenced blob survives");
        assert!(store.get_run(&kept).await.is_ok());
        assert!(store.verify_audit().await.unwrap().is_ok());
        store.close().await.unwrap();
    }

    #[test]
    fn subcommands_parse() {
        use clap::Parser;

        use crate::cli::{Cli, Command};
        let cli = Cli::try_parse_from(["cairn", "gc", "--older-than", "30d"]).unwrap();
        assert!(
            matches!(cli.command, Command::Gc(a) if a.older_than == Duration::from_secs(30 * 86_400) && a.grace == GRACE)
        );
        assert!(Cli::try_parse_from(["cairn", "gc"]).is_err(), "the threshold is required");
        let cli = Cli::try_parse_from(["cairn", "artifacts", "ls", "abc", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Artifacts(super::super::artifacts::ArtifactsCommand::Ls { json: true, .. })
        ));
        let cli = Cli::try_parse_from(["cairn", "artifacts", "verify"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Artifacts(super::super::artifacts::ArtifactsCommand::Verify { run_id: None, .. })
        ));
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
