//! Run artifacts as the metadata store sees them: a manifest per run that maps each artifact
//! path to the digest and size of the blob holding its bytes. The bytes live in a blob store the
//! core knows nothing about; the server stores the blob first and records it here second, so a
//! manifest row always names a blob that was complete when it was written.

use async_trait::async_trait;
use serde::Serialize;

use crate::Result;
use crate::model::{Actor, Millis};

/// The manifest owner of files uploaded under the artifact root outside any run's or logged
/// model's folder (MLflow's proxied API accepts any path). It is the root's URI, so that audit
/// ids of such files (`mlflow-artifacts:/dir/a.txt`) read as where the file is.
pub const ROOT_OWNER: &str = "mlflow-artifacts:";

/// One file in a run's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactFile {
    /// Path relative to the run's artifact root, `/`-separated, already sanitised.
    pub path: String,
    /// Lowercase hex digest of the content (see `algorithm`).
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// When this path was last written, in milliseconds since the epoch.
    pub created_time: Millis,
}

/// A file about to be recorded: its blob is already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArtifact {
    pub path: String,
    pub digest: String,
    pub size: u64,
}

/// A file of any run, as verification and garbage collection walk them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunArtifact {
    pub run_id: String,
    #[serde(flatten)]
    pub file: ArtifactFile,
}

/// What `purge_deleted_runs` removed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PurgeReport {
    /// Run ids removed for good.
    pub runs: Vec<String>,
    /// Manifest rows removed with them.
    pub artifact_files: u64,
}

/// The per-run artifact manifest. Mutations are audited like every other store write.
#[async_trait]
pub trait ArtifactManifest: Send + Sync + 'static {
    /// Records the file at `file.path` of `run_id`, replacing any file already at that path.
    async fn put_artifact(&self, actor: &Actor, run_id: &str, file: NewArtifact) -> Result<ArtifactFile>;

    /// The file at exactly `path`, if the run has one.
    async fn get_artifact(&self, run_id: &str, path: &str) -> Result<Option<ArtifactFile>>;

    /// The run's files at or under the directory `prefix` (`""` for all), ordered by path.
    async fn list_artifacts(&self, run_id: &str, prefix: &str) -> Result<Vec<ArtifactFile>>;

    /// Removes the file at `path`, or every file under the directory `path` (`""` for all), and
    /// returns how many were removed. The blobs stay until garbage collection.
    async fn delete_artifacts(&self, actor: &Actor, run_id: &str, path: &str) -> Result<u64>;

    /// Every manifest row of every run, ordered by run and path.
    async fn all_artifacts(&self) -> Result<Vec<RunArtifact>>;

    /// Whether any manifest row names `digest`.
    async fn is_referenced(&self, digest: &str) -> Result<bool>;

    /// Permanently removes runs deleted before `deleted_before` with everything they own,
    /// recording each removal in the audit log.
    async fn purge_deleted_runs(&self, actor: &Actor, deleted_before: Millis) -> Result<PurgeReport>;

    // Ordering uploads against garbage collection across processes. An upload that commits a
    // blob and then records it must not have the blob deleted in between by a collector in
    // another process (another replica, or `cairn gc`). Both sides claim the digest in the
    // metadata store, which every process shares: the upload pins it before its commit, the
    // collector claims it before its delete, and each claim is refused while the other side
    // holds one. Claims expire after `ttl` so a crashed process cannot block the other side
    // for good. These rows coordinate; they record nothing and are not audited.

    /// Pins `digest` for the upload `holder` until [`ArtifactManifest::unpin_blob`] or `ttl`
    /// milliseconds. `false` while a collector is deleting the blob: wait and try again, after
    /// which the commit writes the blob anew.
    async fn pin_blob(&self, digest: &str, holder: &str, ttl: Millis) -> Result<bool>;

    /// Releases a pin (a missing one is not an error).
    async fn unpin_blob(&self, digest: &str, holder: &str) -> Result<()>;

    /// Claims `digest` for deletion by the collector `holder`: `true` only if no manifest row
    /// names it, no upload pins it and no other collector has claimed it. The claim holds until
    /// [`ArtifactManifest::release_blob_deletion`] or `ttl` milliseconds.
    async fn claim_blob_deletion(&self, digest: &str, holder: &str, ttl: Millis) -> Result<bool>;

    /// Releases a deletion claim once the blob is deleted (or was kept).
    async fn release_blob_deletion(&self, digest: &str, holder: &str) -> Result<()>;
}
