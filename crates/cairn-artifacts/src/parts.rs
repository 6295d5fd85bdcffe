//! The parts of a client's multipart upload, staged until the upload completes.
//!
//! A client that uploads a large file in parts sends them in any order, concurrently, possibly
//! more than once. Each part request streams into its own object,
//! `staging/uploads/<upload>/<uuid>`, hashed on the way so the caller can answer with an ETag.
//! Completing the upload streams the chosen parts, in order, through [`BlobStore::stage`]'s
//! machinery into one blob, so the blob is hashed from the bytes actually stored and becomes
//! visible by the same single atomic step as any other upload. Parts live under `staging/`, so
//! `clean_staging` removes those of an upload that is never completed nor aborted.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::blob_store::{BlobStore, StagedBlob, child_path};
use crate::digest::{Digest, Hasher};
use crate::error::{ArtifactError, Result, SourceError};
use crate::staging::StagedUpload;

/// The most a part is buffered in before it is sent on: S3's smallest multipart part. A part
/// being received costs at most two of these (one filling, one being sent), whatever its size.
const PART_BUFFER: usize = 5 * 1024 * 1024;

/// Age past which a `completing` marker can only be the leftover of a server that crashed while
/// assembling an upload: assembling copies the parts once, well within this even for 100 GB.
pub const COMPLETING_STALE: Duration = Duration::from_secs(3600);

/// What an upload was opened for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    /// The artifact path the finished file is recorded at.
    pub path: String,
    /// How many parts the upload has, numbered from 1.
    pub num_parts: u32,
    /// When the session was opened (the `session` object's modification time).
    pub opened: SystemTime,
}

/// The first line of a `session` object, so a future layout can tell old sessions apart.
const SESSION_FORMAT: &str = "cairn-upload-session 1";

/// Whether [`BlobStore::begin_completion`] took the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// This caller is assembling the upload now.
    Started,
    /// Another request (on this server or another) is assembling it.
    InProgress,
}

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
    /// Once the bytes are stored, a pointer `parts/<number>/<digest>` makes the part findable
    /// by [`BlobStore::find_part`] from any server.
    pub async fn stage_part<S, E>(&self, upload: &str, number: u32, stream: S) -> Result<StagedPart>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<SourceError>,
    {
        let part = self.stage_part_bytes(upload, stream).await?;
        let numbered = child_path(&self.upload_root(upload), &["parts", &number.to_string()]);
        let pointer = child_path(&numbered, &[&part.digest.to_hex()]);
        let body = format!("{}\n{}", part.size, part.key);
        self.store.put(&pointer, PutPayload::from(body.into_bytes())).await?;
        // As in S3, the copy received last is the part: pointers to earlier copies with other
        // bytes go, so their ETags no longer complete the upload. Comparing modification times
        // rather than deleting all others keeps the later of two concurrent retries.
        let mine = self.store.head(&pointer).await?.last_modified;
        let mut others = self.store.list(Some(&numbered));
        while let Some(meta) = others.next().await {
            let meta = meta?;
            if meta.location != pointer && meta.last_modified <= mine {
                match self.store.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(other) => return Err(other.into()),
                }
            }
        }
        Ok(part)
    }

    /// The ETags (quoted digests) of the copies of part `number` of `upload` that count.
    pub async fn part_etags(&self, upload: &str, number: u32) -> Result<Vec<String>> {
        let numbered = child_path(&self.upload_root(upload), &["parts", &number.to_string()]);
        let mut listing = self.store.list(Some(&numbered));
        let mut etags = Vec::new();
        while let Some(meta) = listing.next().await {
            if let Some(name) = meta?.location.filename() {
                etags.push(format!("\"{name}\""));
            }
        }
        Ok(etags)
    }

    async fn stage_part_bytes<S, E>(&self, upload: &str, stream: S) -> Result<StagedPart>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<SourceError>,
    {
        let key = child_path(&self.upload_root(upload), &["data", &uuid::Uuid::new_v4().to_string()]);
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

    /// Opens upload `upload` for `path` with `num_parts` parts.
    pub async fn open_upload(&self, upload: &str, path: &str, num_parts: u32) -> Result<()> {
        let body = format!("{SESSION_FORMAT}\n{num_parts}\n{path}");
        self.store.put(&self.session_key(upload), PutPayload::from(body.into_bytes())).await?;
        Ok(())
    }

    /// The session of `upload`, or `None` if it was never opened, or was completed, aborted or
    /// removed as abandoned. An upload older than `ttl` counts as gone.
    pub async fn upload_session(&self, upload: &str, ttl: Duration) -> Result<Option<UploadSession>> {
        let key = self.session_key(upload);
        let result = match self.store.get(&key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        let opened = SystemTime::from(result.meta.last_modified);
        let bytes = result.bytes().await?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.splitn(3, '\n');
        let (Some(SESSION_FORMAT), Some(count), Some(path)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(corrupt(&key));
        };
        let num_parts = count.parse().map_err(|_| corrupt(&key))?;
        if SystemTime::now().duration_since(opened).unwrap_or_default() > ttl {
            return Ok(None);
        }
        Ok(Some(UploadSession { path: path.to_owned(), num_parts, opened }))
    }

    /// Part `number` of `upload` as received with SHA-256 `digest`, if it was.
    pub async fn find_part(&self, upload: &str, number: u32, digest: &Digest) -> Result<Option<StagedPart>> {
        let pointer = child_path(&self.upload_root(upload), &["parts", &number.to_string(), &digest.to_hex()]);
        let bytes = match self.store.get(&pointer).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        let text = String::from_utf8_lossy(&bytes);
        let (size, key) = text.split_once('\n').ok_or_else(|| corrupt(&pointer))?;
        let size = size.parse().map_err(|_| corrupt(&pointer))?;
        let key = StorePath::parse(key).map_err(|_| corrupt(&pointer))?;
        Ok(Some(StagedPart { key, digest: *digest, size }))
    }

    /// Marks `upload` as being assembled, unless another request already is.
    pub async fn begin_completion(&self, upload: &str) -> Result<Completion> {
        let key = self.completing_key(upload);
        let create = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.store.put_opts(&key, PutPayload::from_static(b"completing"), create).await {
            Ok(_) => return Ok(Completion::Started),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            // A store without conditional puts: a plain put is the best available; two servers
            // completing one upload at the same instant would then both record the same file.
            Err(object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }) => {
                if self.completion_in_progress(upload).await? {
                    return Ok(Completion::InProgress);
                }
                self.store.put(&key, PutPayload::from_static(b"completing")).await?;
                return Ok(Completion::Started);
            }
            Err(other) => return Err(other.into()),
        }
        if self.completion_in_progress(upload).await? {
            return Ok(Completion::InProgress);
        }
        // A crashed server's marker: take the upload over.
        self.store.put(&key, PutPayload::from_static(b"completing")).await?;
        Ok(Completion::Started)
    }

    /// Whether a fresh `completing` marker exists for `upload`.
    pub async fn completion_in_progress(&self, upload: &str) -> Result<bool> {
        match self.store.head(&self.completing_key(upload)).await {
            Ok(meta) => {
                let age = SystemTime::now().duration_since(SystemTime::from(meta.last_modified)).unwrap_or_default();
                Ok(age <= COMPLETING_STALE)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// Removes the `completing` marker after a failed assembly, so the client can retry or abort.
    pub async fn end_completion(&self, upload: &str) -> Result<()> {
        match self.store.delete(&self.completing_key(upload)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    fn session_key(&self, upload: &str) -> StorePath {
        child_path(&self.upload_root(upload), &["session"])
    }

    fn completing_key(&self, upload: &str) -> StorePath {
        child_path(&self.upload_root(upload), &["completing"])
    }
}

/// An upload's bookkeeping object that this code did not write.
fn corrupt(key: &StorePath) -> ArtifactError {
    ArtifactError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the multipart upload object {key} is not in the expected format"),
    ))
}
