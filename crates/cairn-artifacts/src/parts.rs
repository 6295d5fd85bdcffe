//! The parts of a client's multipart upload, staged until the upload completes.
//!
//! A client that uploads a large file in parts sends them in any order, concurrently, possibly
//! more than once. Each part request streams into its own object,
//! `staging/uploads/<upload>/<uuid>`, hashed on the way so the caller can answer with an ETag.
//! Completing the upload streams the chosen parts, in order, through [`BlobStore::stage`]'s
//! machinery into one blob, so the blob is hashed from the bytes actually stored and becomes
//! visible by the same single atomic step as any other upload. Parts live under `staging/`, so
//! `clean_staging` removes those of an upload that is never completed nor aborted.

use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutPayload};

use crate::blob_store::{BlobStore, StagedBlob, child_path};
use crate::digest::{Digest, Hasher};
use crate::error::{ArtifactError, Result, SourceError};
use crate::staging::StagedUpload;

/// The most a part is buffered in before it is sent on: S3's smallest multipart part. A part
/// being received costs at most two of these (one filling, one being sent), whatever its size.
const PART_BUFFER: usize = 5 * 1024 * 1024;

/// One received part: where its bytes are staged, their digest and their length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedPart {
    key: StorePath,
    /// SHA-256 of the part's bytes.
    pub digest: Digest,
    /// The part's length in bytes.
    pub size: u64,
}

impl BlobStore {
    /// A fresh identifier for a multipart upload: one path segment, unguessable.
    pub fn new_upload_id(&self) -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// The staging folder of one upload's parts. Object-store paths escape the identifier, so
    /// even a hostile one names a single folder under `staging/uploads/`.
    fn upload_root(&self, upload: &str) -> StorePath {
        child_path(&self.staging_root(), &["uploads", upload])
    }

    /// Streams one part of multipart upload `upload` into staging and returns its digest and
    /// size. Memory stays within two [`PART_BUFFER`]s whatever the part's length. If the stream
    /// fails ([`ArtifactError::Source`]) or this future is dropped, nothing is left behind
    /// except, after a crash, an object that `clean_staging` removes.
    pub async fn stage_part<S, E>(&self, upload: &str, stream: S) -> Result<StagedPart>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<SourceError>,
    {
        let key = child_path(&self.upload_root(upload), &[&uuid::Uuid::new_v4().to_string()]);
        let part_size = self.config.part_size.clamp(1, PART_BUFFER);
        let mut stream = std::pin::pin!(stream.map_err(|e| ArtifactError::Source(e.into())));
        let mut hasher = Hasher::new();

        // A part that fits one buffer is written with a single put, as small blobs are.
        let mut head = Vec::new();
        let mut buffered = 0usize;
        while buffered < part_size {
            let Some(chunk) = stream.next().await else {
                let payload: PutPayload = head.into_iter().collect();
                self.store.put(&key, payload).await?;
                return Ok(StagedPart { key, size: hasher.size(), digest: hasher.finish() });
            };
            let chunk = chunk?;
            hasher.update(&chunk);
            buffered += chunk.len();
            head.push(chunk);
        }

        let mut upload = StagedUpload::start(self.store.as_ref(), &key, part_size, 1).await?;
        upload.write_all(head, &mut stream, &mut hasher).await?;
        Ok(StagedPart { key, size: hasher.size(), digest: hasher.finish() })
    }

    /// Stages the concatenation of `parts`, in the order given, as one upload: the result is
    /// committed like any [`StagedBlob`]. The parts themselves are left in place (delete them
    /// with [`BlobStore::discard_upload`] once the blob is recorded). A part that cannot be read,
    /// or whose length changed since it was staged, fails the whole with a storage error.
    pub async fn stage_parts(&self, parts: &[StagedPart]) -> Result<StagedBlob> {
        let expected: u64 = parts.iter().map(|part| part.size).sum();
        let this = self.clone();
        let keys: Vec<StorePath> = parts.iter().map(|part| part.key.clone()).collect();
        let bytes = stream::iter(keys)
            .then(move |key| {
                let this = this.clone();
                async move {
                    let (_, stream) = this.open_object(&key, None).await?;
                    Ok::<_, ArtifactError>(stream)
                }
            })
            .try_flatten()
            // Boxed so the future stays `Send` for every caller: the compiler cannot prove it
            // through the nested async closures otherwise.
            .boxed();
        let staged = self.stage_checked(bytes).await?;
        if staged.blob().size != expected {
            return Err(ArtifactError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("staged parts hold {} bytes, {expected} were received", staged.blob().size),
            )));
        }
        Ok(staged)
    }

    /// Deletes one staged part (one that a retried part request replaced). A missing part is
    /// not an error.
    pub async fn delete_part(&self, part: &StagedPart) -> Result<()> {
        match self.store.delete(&part.key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Deletes every staged part of `upload` (completed, aborted or expired) and returns how
    /// many objects went.
    pub async fn discard_upload(&self, upload: &str) -> Result<usize> {
        let mut listing = self.store.list(Some(&self.upload_root(upload)));
        let mut deleted = 0;
        while let Some(meta) = listing.next().await {
            match self.store.delete(&meta?.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(other) => return Err(other.into()),
            }
        }
        Ok(deleted)
    }
}
