//! The in-process ordering between uploads and garbage collection.
//!
//! An upload that deduplicates against a stored blob writes nothing: its commit finds the blob
//! and returns. If a collector deleted that blob between the commit and the manifest insert that
//! names it, the manifest would point at nothing. The [`Gate`] is a read-write lock that every
//! clone of a `BlobStore` shares: an upload holds the read side (a [`PinnedBlob`]) from before
//! its commit until its manifest row is written, a collector holds the write side (a
//! [`CollectionLock`]) while it re-checks that a blob is unreferenced and deletes it. Either the
//! delete comes first, and the commit then finds no blob and writes it again, or the manifest
//! row comes first, and the re-check sees it. This is exact within one process; across
//! processes the grace period of the crate docs applies.

use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::digest::BlobRef;

/// The shared lock; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Gate(Arc<RwLock<()>>);

impl Gate {
    /// The upload side. Many uploads hold it at once.
    pub(crate) async fn pin(&self) -> OwnedRwLockReadGuard<()> {
        Arc::clone(&self.0).read_owned().await
    }

    /// The collector side: waits for pinned uploads to finish, then excludes new ones. Tokio's
    /// lock is fair, so a waiting collector is not starved by a steady stream of uploads.
    pub(crate) async fn lock(&self) -> CollectionLock {
        CollectionLock { _guard: Arc::clone(&self.0).write_owned().await }
    }
}

/// A committed blob that this process's garbage collection cannot delete while this value
/// lives. Drop it once the manifest row naming the blob is written (or has failed).
pub struct PinnedBlob {
    blob: BlobRef,
    _pin: OwnedRwLockReadGuard<()>,
}

impl PinnedBlob {
    pub(crate) fn new(blob: BlobRef, pin: OwnedRwLockReadGuard<()>) -> Self {
        PinnedBlob { blob, _pin: pin }
    }

    /// The committed blob's reference.
    pub fn blob(&self) -> &BlobRef {
        &self.blob
    }
}

impl std::fmt::Debug for PinnedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedBlob").field("blob", &self.blob).finish_non_exhaustive()
    }
}

/// Held by a garbage collector while it decides on and deletes one blob; no upload of this
/// process commits meanwhile. Keep it for one blob at a time, not for a whole pass.
pub struct CollectionLock {
    _guard: OwnedRwLockWriteGuard<()>,
}

impl std::fmt::Debug for CollectionLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectionLock").finish_non_exhaustive()
    }
}
