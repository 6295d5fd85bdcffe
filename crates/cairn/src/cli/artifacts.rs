//! `cairn artifacts ls` and `cairn artifacts verify`: a run's manifest with digests, and a
//! re-hash of stored blobs against the digests that name them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use cairn_artifacts::{ArtifactError, BlobStore, Digest};
use cairn_core::artifacts::{ArtifactFile, ArtifactManifest, RunArtifact};
use cairn_core::store::Store;

use super::StoreArgs;
use super::progress::{INTERRUPTED, TerminalProgress};
use cairn_core::progress::Progress;

/// Where the blobs are: the same default and variable as `cairn server`.
#[derive(Debug, Clone, Args)]
pub struct BlobArgs {
    /// Artifact destination (a folder or `s3://bucket/prefix`); defaults to `artifacts` inside
    /// the data folder.
    #[arg(long, env = "CAIRN_ARTIFACTS_DESTINATION")]
    pub artifacts_destination: Option<PathBuf>,
}

impl BlobArgs {
    /// Opens the blob store, defaulting under `store.data_dir`.
    pub fn open(&self, store: &StoreArgs) -> anyhow::Result<BlobStore> {
        let destination = self.artifacts_destination.clone().unwrap_or_else(|| store.data_dir.join("artifacts"));
        let destination = destination.to_string_lossy().into_owned();
        BlobStore::open(&destination).with_context(|| format!("cannot open the artifact destination {destination}"))
    }
}

/// Artifact subcommands.
#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// List a run's files with their sizes and digests.
    Ls {
        /// The run id.
        run_id: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash the blobs of one run (or of every run) and exit 1 if any is missing or altered.
    Verify {
        /// Only this run's files.
        run_id: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        blobs: BlobArgs,
    },
}

/// Opens the metadata store and its manifest.
pub async fn open_manifest(args: &StoreArgs) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn ArtifactManifest>)> {
    let store = cairn_store::open(&args.store_config()).await.context("cannot open the store")?;
    let manifest = store.clone().artifact_manifest().context("this store keeps no artifact manifest")?;
    Ok((store, manifest))
}

/// Runs an artifacts subcommand.
pub async fn run(command: ArtifactsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ArtifactsCommand::Ls { run_id, store, json } => {
            let (store, manifest) = open_manifest(&store).await?;
            let files = manifest.list_artifacts(&run_id, "").await;
            store.close().await.context("closing the store")?;
            println!("{}", render_ls(&files.context("cannot list the run's artifacts")?, json)?);
            Ok(ExitCode::SUCCESS)
        }
        ArtifactsCommand::Verify { run_id, store: store_args, blobs } => {
            let blobs = blobs.open(&store_args)?;
            let (store, manifest) = open_manifest(&store_args).await?;
            let files = match &run_id {
                Some(run) => manifest.list_artifacts(run, "").await.map(|files| {
                    files.into_iter().map(|file| RunArtifact { run_id: run.clone(), file }).collect::<Vec<_>>()
                }),
                None => manifest.all_artifacts().await,
            };
            store.close().await.context("closing the store")?;
            let progress = TerminalProgress::start(false);
            let checked = verify(&blobs, &files.context("cannot read the manifest")?, progress.as_ref()).await;
            progress.finish();
            let Some(problems) = checked? else {
                let (done, total) = progress.counts();
                eprintln!("interrupted after checking {done} of {total} blobs: no verdict");
                return Ok(ExitCode::from(INTERRUPTED));
            };
            for problem in &problems {
                println!("{problem}");
            }
            if problems.is_empty() {
                println!("OK: every artifact blob matches its digest");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("FAILED: {} problem(s)", problems.len());
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// Re-hashes each distinct blob once and returns one line per file whose blob is missing or
/// does not hash to its digest; `None` if `progress` asked it to stop first.
pub async fn verify(
    blobs: &BlobStore,
    files: &[RunArtifact],
    progress: &dyn Progress,
) -> anyhow::Result<Option<Vec<String>>> {
    let mut by_digest: BTreeMap<&str, Vec<&RunArtifact>> = BTreeMap::new();
    for file in files {
        by_digest.entry(file.file.digest.as_str()).or_default().push(file);
    }
    progress.phase("blobs", Some(by_digest.len() as u64));
    let mut problems = Vec::new();
    for (digest, users) in by_digest {
        if progress.cancelled() {
            return Ok(None);
        }
        let verdict = match Digest::parse(digest) {
            Err(_) => Some("is not a valid sha256 digest"),
            Ok(d) => match blobs.verify(&d).await {
                Ok(true) => None,
                Ok(false) => Some("does not match its stored bytes"),
                Err(ArtifactError::NotFound(_)) => Some("names a blob that is missing"),
                Err(e) => return Err(e).context("cannot read an artifact blob"),
            },
        };
        if let Some(verdict) = verdict {
            for user in users {
                problems.push(format!("run {} file {}: digest {digest} {verdict}", user.run_id, user.file.path));
            }
        }
        progress.advance(1);
    }
    Ok(Some(problems))
}

/// The manifest as JSON, or one tab-separated line per file.
pub fn render_ls(files: &[ArtifactFile], json: bool) -> anyhow::Result<String> {
    if json {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "algorithm": cairn_artifacts::HASH_ALGORITHM,
            "files": files,
        }))?);
    }
    Ok(files
        .iter()
        .map(|f| format!("{}\t{}\t{}:{}", f.path, f.size, cairn_artifacts::HASH_ALGORITHM, f.digest))
        .collect::<Vec<_>>()
        .join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::progress::Silent;

    #[test]
    fn listing_shows_path_size_and_digest() {
        let files = [ArtifactFile { path: "a/b.txt".into(), digest: "ab".repeat(32), size: 7, created_time: 1 }];
        assert_eq!(render_ls(&files, false).unwrap(), format!("a/b.txt\t7\tsha256:{}", "ab".repeat(32)));
        let json: serde_json::Value = serde_json::from_str(&render_ls(&files, true).unwrap()).unwrap();
        assert_eq!(json["files"][0]["size"], 7);
        assert_eq!(json["algorithm"], "sha256");
    }

    #[tokio::test]
    async fn verify_reports_missing_and_altered_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(&dir.path().to_string_lossy()).unwrap();
        let good = blobs.put_bytes(bytes_of(b"good")).await.unwrap();
        let bad = blobs.put_bytes(bytes_of(b"will be altered")).await.unwrap();
        let key = blobs.blob_key(&bad.digest);
        std::fs::write(dir.path().join(key.as_ref()), b"tampered").unwrap();
        let file = |run: &str, digest: String| RunArtifact {
            run_id: run.into(),
            file: ArtifactFile { path: "f".into(), digest, size: 1, created_time: 0 },
        };
        let files = [
            file("r1", good.digest.to_hex()),
            file("r2", bad.digest.to_hex()),
            file("r3", Digest::of(b"never stored").to_hex()),
        ];
        let problems = verify(&blobs, &files, &Silent).await.unwrap().unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("run r2") && p.contains("does not match")));
        assert!(problems.iter().any(|p| p.starts_with("run r3") && p.contains("missing")));
    }

    fn bytes_of(data: &'static [u8]) -> bytes::Bytes {
        bytes::Bytes::from_static(data)
    }
}
