//! Committing an uploaded blob so that no garbage collector, in this process or any other on the
//! same metadata store, deletes it before the manifest row that names it is written.
//!
//! An upload that deduplicates against a stored, unreferenced blob writes nothing; a collector
//! deleting that blob between the commit and the manifest insert would leave the row naming
//! nothing. The upload therefore pins the digest in the metadata store before committing
//! (waiting while a collector is deleting that very blob, after which the commit writes it
//! anew), keeps this process's pin on the blob store too, and releases both once the row exists.
//! The collector's side is in `crate::gc`.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cairn_artifacts::{BlobRef, PinnedBlob, StagedBlob};
use cairn_core::model::Millis;

use super::artifacts::artifact_error;
use crate::artifacts::Artifacts;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// How long a pin lasts if its upload's process dies before releasing it: far longer than a
/// commit (one rename) and one manifest insert take.
pub const PIN_TTL: Millis = 10 * 60 * 1000;

/// How long an upload waits for a collector that is deleting the same blob (one delete).
const PIN_WAIT: Duration = Duration::from_secs(60);

/// A committed blob that no collector deletes until [`CommittedBlob::release`].
pub struct CommittedBlob {
    pinned: PinnedBlob,
    artifacts: Artifacts,
    holder: String,
}

/// Commits `staged`, pinned against every collector. Record the blob, then release the pin.
pub async fn commit(artifacts: &Artifacts, staged: StagedBlob) -> ApiResult<CommittedBlob> {
    let digest = staged.blob().digest.to_hex();
    let holder = format!("upload-{}", artifacts.blobs.new_upload_id());
    let deadline = Instant::now() + PIN_WAIT;
    while !artifacts.manifest.pin_blob(&digest, &holder, PIN_TTL).await? {
        if Instant::now() > deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TemporarilyUnavailable,
                "This file's content is being garbage-collected and the collection did not finish in time; retry",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match staged.commit_pinned().await {
        Ok(pinned) => Ok(CommittedBlob { pinned, artifacts: artifacts.clone(), holder }),
        Err(error) => {
            unpin(artifacts, &digest, &holder).await;
            Err(artifact_error(error))
        }
    }
}

impl CommittedBlob {
    /// The committed blob.
    pub fn blob(&self) -> &BlobRef {
        self.pinned.blob()
    }

    /// Lets collectors at the blob again: call once its manifest row is written (or failed).
    pub async fn release(self) {
        let digest = self.pinned.blob().digest.to_hex();
        unpin(&self.artifacts, &digest, &self.holder).await;
        drop(self.pinned);
    }
}

/// Releases a pin. A failure is harmless: the pin expires after [`PIN_TTL`].
async fn unpin(artifacts: &Artifacts, digest: &str, holder: &str) {
    if let Err(error) = artifacts.manifest.unpin_blob(digest, holder).await {
        tracing::warn!(%error, %digest, "cannot release an upload's pin on a blob; it expires by itself");
    }
}
