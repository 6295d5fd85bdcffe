//! `cairn gc --older-than <duration>`: purge runs deleted longer ago than the threshold, then
//! delete the blobs no manifest row names any more.
//!
//! The collector itself is `cairn_server::gc` (shared with the server's `--gc-interval` task); see
//! there for why it keeps unreferenced blobs younger than a grace period.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use cairn_server::gc::{collect_with, parse_duration};

use super::StoreArgs;
use super::artifacts::{BlobArgs, open_manifest};
use super::progress::{INTERRUPTED, TerminalProgress};

/// `cairn gc` options.
#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    /// Purge runs deleted longer ago than this (`30d`, `12h`, `90m`, `45s`; `0s` for all).
    #[arg(long, value_parser = parse_duration)]
    pub older_than: Duration,
    /// Keep unreferenced blobs written more recently than this (`0s` for none). Uploads in
    /// flight on running servers are protected whatever it is: they pin their blobs in the
    /// metadata store.
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    pub grace: Duration,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub blobs: BlobArgs,
}

/// Runs the collector and prints what it removed.
pub async fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let blobs = args.blobs.open(&args.store)?;
    let (store, manifest) = open_manifest(&args.store).await?;
    let progress = TerminalProgress::start(false);
    let outcome = collect_with(manifest.as_ref(), &blobs, args.older_than, args.grace, progress.as_ref()).await;
    progress.finish();
    store.close().await.context("closing the store")?;
    let report = outcome?;
    println!(
        "{}purged {} run(s) with {} artifact file(s); deleted {} unreferenced blob(s), {} bytes",
        if report.interrupted { "interrupted: " } else { "" },
        report.runs,
        report.files,
        report.blobs,
        report.bytes
    );
    Ok(if report.interrupted { ExitCode::from(INTERRUPTED) } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    use cairn_artifacts::BlobStore;
    use cairn_core::artifacts::NewArtifact;
    use cairn_core::model::{Actor, NewRun};
    use cairn_server::gc::{GRACE, collect};
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
            run_id: None,
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
}
