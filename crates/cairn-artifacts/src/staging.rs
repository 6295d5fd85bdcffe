//! Staging objects: where a large upload's bytes go before its digest is known.
//!
//! A [`StagedUpload`] is a multipart upload to `staging/<uuid>` with bounded buffering: at most
//! `max_in_flight` parts of `part_size` bytes are being sent while one more is filled, so memory
//! does not grow with the file. Both guards here clean up when dropped, because the future driving
//! an upload can be dropped at any await point (a client disconnects, the server shuts down):
//! an unfinished multipart upload is aborted and a completed staging object is deleted, each in a
//! task spawned on the current tokio runtime. Anything a crash still leaves behind is removed by
//! `BlobStore::clean_staging` (and, on S3, by a lifecycle rule for incomplete multipart uploads).

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as StorePath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::task::JoinSet;

use crate::digest::Hasher;
use crate::error::Result;

/// A multipart upload in progress. See the module docs.
pub(crate) struct StagedUpload {
    /// `None` once completed or aborted; while `Some`, dropping `self` aborts it.
    upload: Option<Box<dyn MultipartUpload>>,
    parts: JoinSet<object_store::Result<()>>,
    buffer: Vec<Bytes>,
    buffered: usize,
    part_size: usize,
    max_in_flight: usize,
}

impl StagedUpload {
    /// Starts a multipart upload at `path`.
    pub(crate) async fn start(
        store: &dyn ObjectStore,
        path: &StorePath,
        part_size: usize,
        max_in_flight: usize,
    ) -> Result<Self> {
        let upload = store.put_multipart(path).await?;
        Ok(StagedUpload {
            upload: Some(upload),
            parts: JoinSet::new(),
            buffer: Vec::new(),
            buffered: 0,
            part_size: part_size.max(1),
            max_in_flight: max_in_flight.max(1),
        })
    }

    /// Appends bytes, sending every full part. Waits (back-pressure on the caller's stream) while
    /// `max_in_flight` parts are already being sent.
    pub(crate) async fn write(&mut self, mut bytes: Bytes) -> Result<()> {
        while !bytes.is_empty() {
            let room = self.part_size - self.buffered;
            let piece = bytes.split_to(room.min(bytes.len()));
            self.buffered += piece.len();
            self.buffer.push(piece);
            if self.buffered == self.part_size {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    /// Sends what is buffered as the last part, waits for every part, then completes the upload so
    /// the staging object becomes visible.
    pub(crate) async fn complete(&mut self) -> Result<()> {
        if self.buffered > 0 {
            self.send_part().await?;
        }
        while let Some(joined) = self.parts.join_next().await {
            joined.map_err(object_store::Error::from)??;
        }
        let upload = self.upload.as_mut().expect("complete called once, before drop");
        upload.complete().await?;
        self.upload = None;
        Ok(())
    }

    /// Cancels the upload now (rather than in a spawned task), discarding any sent parts.
    pub(crate) async fn abort(&mut self) {
        self.parts.shutdown().await;
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        if let Err(error) = upload.abort().await {
            tracing::warn!(%error, "could not abort staging upload");
        }
    }

    /// Writes the chunks already read (`head`, already hashed), then the rest of `stream`,
    /// hashing it into `hasher`, and completes the upload; on any failure the upload is
    /// aborted so that nothing partial stays behind.
    pub(crate) async fn write_all<S>(&mut self, head: Vec<Bytes>, stream: &mut S, hasher: &mut Hasher) -> Result<()>
    where
        S: futures::Stream<Item = Result<Bytes>> + Unpin,
    {
        let written: Result<()> = async {
            for chunk in head {
                self.write(chunk).await?;
            }
            while let Some(chunk) = futures::StreamExt::next(stream).await {
                let chunk = chunk?;
                hasher.update(&chunk);
                self.write(chunk).await?;
            }
            self.complete().await
        }
        .await;
        if written.is_err() {
            self.abort().await;
        }
        written
    }

    async fn send_part(&mut self) -> Result<()> {
        while self.parts.len() >= self.max_in_flight {
            if let Some(joined) = self.parts.join_next().await {
                joined.map_err(object_store::Error::from)??;
            }
        }
        let payload: PutPayload = std::mem::take(&mut self.buffer).into_iter().collect();
        self.buffered = 0;
        let upload = self.upload.as_mut().expect("parts are only sent before completion");
        self.parts.spawn(upload.put_part(payload));
        Ok(())
    }
}

impl Drop for StagedUpload {
    fn drop(&mut self) {
        // Dropping the JoinSet (with `self`) cancels in-flight parts; the upload itself must be
        // aborted explicitly or S3 keeps the parts (and bills for them) indefinitely.
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = upload.abort().await {
                        tracing::warn!(%error, "could not abort abandoned staging upload");
                    }
                });
            }
            Err(_) => tracing::warn!("staging upload abandoned outside a runtime; not aborted"),
        }
    }
}

/// A completed staging object that is deleted on drop unless [`StagingObject::disarm`] is called
/// (after it has been promoted to a blob or deliberately deleted).
pub(crate) struct StagingObject {
    store: Arc<dyn ObjectStore>,
    path: Option<StorePath>,
}

impl StagingObject {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, path: StorePath) -> Self {
        StagingObject { store, path: Some(path) }
    }

    pub(crate) fn path(&self) -> &StorePath {
        self.path.as_ref().expect("path is present until disarmed")
    }

    /// Deletes the staging object now, logging (not failing) on error: a leftover is harmless and
    /// `clean_staging` removes it later.
    pub(crate) async fn delete(mut self) {
        let Some(path) = self.path.take() else { return };
        if let Err(error) = self.store.delete(&path).await {
            tracing::warn!(%error, %path, "could not delete staging object");
        }
    }

    /// The object was moved away; there is nothing to clean up.
    pub(crate) fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for StagingObject {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else { return };
        let store = Arc::clone(&self.store);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.delete(&path).await {
                    tracing::warn!(%error, %path, "could not delete abandoned staging object");
                }
            });
        }
    }
}
