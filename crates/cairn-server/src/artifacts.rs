//! The artifact half of the application state: the blob store and the manifest that maps run
//! paths to blobs.

use std::sync::Arc;

use cairn_artifacts::BlobStore;
use cairn_core::artifacts::ArtifactManifest;

/// Where artifact bytes and their index live. Cheap to clone.
#[derive(Clone)]
pub struct Artifacts {
    /// Content-addressed blobs.
    pub blobs: BlobStore,
    /// Which run path names which blob.
    pub manifest: Arc<dyn ArtifactManifest>,
}

impl std::fmt::Debug for Artifacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifacts").field("blobs", &self.blobs).finish_non_exhaustive()
    }
}
