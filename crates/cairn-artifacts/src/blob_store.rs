//! The content-addressed blob store.
//!
//! Layout under the destination's root:
//! * `blobs/sha256/<aa>/<bb>/<digest>`: one object per distinct content, `aa`/`bb` being the
//!   digest's first two bytes in hex so no directory grows huge on a local disk;
//! * `staging/<uuid>`: large uploads in progress (or abandoned by a crash);
//! * `staging/uploads/<upload>/...`: a client's multipart upload, its session and its parts (see `parts`).
//!
//! Invariant: an object at a blob key always holds exactly the bytes its digest names, in full.
//! Uploads reach a blob key only by an atomic step taken after the digest is known (a single `put`
//! of a small upload's bytes, or a rename of a completed staging object), so a reader never sees a
//! partial blob and an interrupted upload never leaves one.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use crate::destination::{Destination, S3Settings};
use crate::digest::{BlobRef, Digest, HASH_ALGORITHM, Hasher};
use crate::error::{ArtifactError, Result, SourceError};
use crate::file_stream::file_stream;
use crate::gate::{CollectionLock, Gate, PinnedBlob};
use crate::staging::{StagedUpload, StagingObject};

/// Tuning knobs. The defaults suit both a local disk and S3.
#[derive(Debug, Clone)]
pub struct BlobStoreConfig {
    /// Bytes per multipart part, and the size up to which an upload is buffered and written with
    /// one `put` instead. S3 needs at least 5 MiB for every part but the last.
    pub part_size: usize,
    /// Parts sent concurrently. Peak upload buffering is about `(max_in_flight + 1) * part_size`.
    pub max_in_flight: usize,
    /// When an upload matches an existing blob older than this, the blob is rewritten so its
    /// modification time is fresh. Garbage collection relies on it: see the crate docs.
    pub refresh_after: Duration,
    /// Local disk only: fsync files and directories before an upload is reported done.
    pub fsync: bool,
}

impl Default for BlobStoreConfig {
    fn default() -> Self {
        BlobStoreConfig {
            part_size: 8 * 1024 * 1024,
            max_in_flight: 2,
            refresh_after: Duration::from_secs(30 * 60),
            fsync: true,
        }
    }
}

/// Facts about one stored blob, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// When the object was last written (an upload of identical content may refresh it).
    pub last_modified: SystemTime,
}

/// Which bytes of a blob to read, in the shapes an HTTP `Range` header can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..end`, end exclusive; an end past the blob is clamped (`bytes=0-999` of 10 bytes).
    Bounded(Range<u64>),
    /// From `start` to the end (`bytes=100-`).
    From(u64),
    /// The last `n` bytes (`bytes=-100`).
    Suffix(u64),
}

impl ByteRange {
    /// The concrete range within a blob of `size` bytes, or `RangeNotSatisfiable`.
    pub fn resolve(&self, size: u64) -> Result<Range<u64>> {
        let unsatisfiable = Err(ArtifactError::RangeNotSatisfiable { size });
        match *self {
            ByteRange::Bounded(ref r) if r.start < r.end && r.start < size => Ok(r.start..r.end.min(size)),
            ByteRange::From(start) if start < size => Ok(start..size),
            ByteRange::Suffix(n) if n > 0 && size > 0 => Ok(size.saturating_sub(n)..size),
            _ => unsatisfiable,
        }
    }
}

/// A blob being read.
pub struct BlobRead {
    /// The blob's full size (for `Content-Range: bytes a-b/size`).
    pub size: u64,
    /// The bytes the stream yields, end exclusive.
    pub range: Range<u64>,
    /// The content, in chunks.
    pub stream: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead").field("size", &self.size).field("range", &self.range).finish()
    }
}

/// An upload whose bytes are all received and hashed but not yet visible as a blob; see
/// [`BlobStore::stage`]. Dropping it discards the staged bytes.
pub struct StagedBlob {
    store: BlobStore,
    blob: BlobRef,
    content: Staged,
}

/// Where a staged upload's bytes are.
enum Staged {
    /// Up to one part's worth, still in memory.
    InMemory(Vec<Bytes>),
    /// A completed object under `staging/`.
    Object(StagingObject),
}

impl StagedBlob {
    /// The digest and size the blob will have.
    pub fn blob(&self) -> &BlobRef {
        &self.blob
    }

    /// Makes the blob visible (or finds it already stored) and returns its reference.
    pub async fn commit(self) -> Result<BlobRef> {
        match self.content {
            Staged::InMemory(chunks) => self.store.put_small(&self.blob, chunks).await?,
            Staged::Object(staging) => self.store.promote(staging, &self.blob).await?,
        }
        Ok(self.blob)
    }

    /// Commits like [`StagedBlob::commit`], then keeps garbage collection of this store (in this
    /// process: every clone of the [`BlobStore`] shares the lock) from deleting any blob until the
    /// returned [`PinnedBlob`] is dropped. Hold it until the manifest row naming the blob is
    /// written; see [`BlobStore::lock_for_collection`].
    pub async fn commit_pinned(self) -> Result<PinnedBlob> {
        // Taken before the commit: a collector that deleted this content a moment ago has
        // released the lock, so the commit below finds the blob gone and writes it again.
        let pin = self.store.gate.pin().await;
        let blob = self.commit().await?;
        Ok(PinnedBlob::new(blob, pin))
    }
}

impl std::fmt::Debug for StagedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedBlob").field("blob", &self.blob).finish_non_exhaustive()
    }
}

/// `base/part/part/...`; each part is escaped by object_store, never interpreted as a separator.
pub(crate) fn child_path(base: &StorePath, parts: &[&str]) -> StorePath {
    parts.iter().fold(base.clone(), |path, part| path.join(*part))
}

/// Content-addressed blobs over any `object_store` backend. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    pub(crate) store: Arc<dyn ObjectStore>,
    root: StorePath,
    pub(crate) config: BlobStoreConfig,
    /// Orders commits against this process's garbage collection; shared by clones.
    gate: Gate,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore").field("store", &self.store.to_string()).field("root", &self.root).finish()
    }
}

impl BlobStore {
    /// Opens a destination string (`/path`, `file:///path`, `s3://bucket/prefix`) with the S3
    /// settings of the process environment and the default configuration.
    pub fn open(destination: &str) -> Result<Self> {
        Self::open_with(destination, &S3Settings::from_env(), BlobStoreConfig::default())
    }

    /// Opens a destination with explicit S3 settings and configuration.
    pub fn open_with(destination: &str, s3: &S3Settings, config: BlobStoreConfig) -> Result<Self> {
        let (store, root) = Destination::parse(destination)?.open(s3, config.fsync)?;
        Ok(Self::new(store, root, config))
    }

    /// Wraps an already-built backend; blobs live under `root`.
    pub fn new(store: Arc<dyn ObjectStore>, root: StorePath, config: BlobStoreConfig) -> Self {
        BlobStore { store, root, config, gate: Gate::default() }
    }

    /// The storage key of a blob: `<root>/blobs/sha256/<aa>/<bb>/<digest>`.
    pub fn blob_key(&self, digest: &Digest) -> StorePath {
        let hex = digest.to_hex();
        child_path(&self.blobs_root(), &[&hex[0..2], &hex[2..4], &hex])
    }

    fn blobs_root(&self) -> StorePath {
        child_path(&self.root, &["blobs", HASH_ALGORITHM])
    }

    pub(crate) fn staging_root(&self) -> StorePath {
        child_path(&self.root, &["staging"])
    }

    /// Stores the bytes a stream yields and returns their digest and size: [`BlobStore::stage`]
    /// then [`StagedBlob::commit`].
    ///
    /// Memory stays bounded by the configuration whatever the length. If the stream yields an
    /// error the upload is abandoned, nothing becomes visible and the error is returned as
    /// [`ArtifactError::Source`]; if this future is dropped mid-way the same cleanup runs in the
    /// background. Identical content is stored once.
    pub async fn put_stream<S, E>(&self, stream: S) -> Result<BlobRef>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<SourceError>,
    {
        self.stage(stream).await?.commit().await
    }

    /// Stores bytes already in memory (small files, tests).
    pub async fn put_bytes(&self, bytes: Bytes) -> Result<BlobRef> {
        self.put_stream(futures::stream::iter([Ok::<_, SourceError>(bytes)])).await
    }

    /// The slow half of an upload: consumes the stream, hashing it, into a staged blob whose
    /// digest is known but which is not yet visible. Splitting here lets a caller keep the short
    /// [`StagedBlob::commit`] (plus its manifest write) inside a lock that garbage collection
    /// also takes, without holding that lock for the whole transfer. Same failure behaviour as
    /// [`BlobStore::put_stream`]; dropping the staged blob discards it.
    pub async fn stage<S, E>(&self, stream: S) -> Result<StagedBlob>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<SourceError>,
    {
        self.stage_checked(stream.map_err(|e| ArtifactError::Source(e.into()))).await
    }

    /// [`BlobStore::stage`] over a stream whose errors are already classified, so that a failed
    /// read of staged parts stays a storage error rather than becoming the client's fault.
    pub(crate) async fn stage_checked<S>(&self, stream: S) -> Result<StagedBlob>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let mut stream = std::pin::pin!(stream);
        let mut hasher = Hasher::new();

        // Small uploads (most MLflow artifacts) are buffered whole and later written straight
        // to their blob key with one request: no staging object, no multipart round trips.
        let mut head = Vec::new();
        let mut buffered = 0usize;
        while buffered < self.config.part_size {
            match stream.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    hasher.update(&chunk);
                    buffered += chunk.len();
                    head.push(chunk);
                }
                None => {
                    let blob = BlobRef::new(hasher.clone().finish(), hasher.size());
                    return Ok(StagedBlob { store: self.clone(), blob, content: Staged::InMemory(head) });
                }
            }
        }

        let staging = child_path(&self.staging_root(), &[&uuid::Uuid::new_v4().to_string()]);
        let mut upload =
            StagedUpload::start(self.store.as_ref(), &staging, self.config.part_size, self.config.max_in_flight)
                .await?;
        upload.write_all(head, &mut stream, &mut hasher).await?;
        let blob = BlobRef::new(hasher.clone().finish(), hasher.size());
        let staging = StagingObject::new(Arc::clone(&self.store), staging);
        Ok(StagedBlob { store: self.clone(), blob, content: Staged::Object(staging) })
    }

    async fn put_small(&self, blob: &BlobRef, chunks: Vec<Bytes>) -> Result<()> {
        let key = self.blob_key(&blob.digest);
        match self.head_key(&key).await? {
            Some(existing) if !self.needs_refresh(&existing) => return Ok(()),
            _ => {}
        }
        // An unconditional put is safe: whatever is at this key has the same bytes. A put is
        // atomic on every backend (a temporary file renamed into place on a local disk).
        let payload: PutPayload = chunks.into_iter().collect();
        self.store.put(&key, payload).await?;
        Ok(())
    }

    /// Moves a completed staging object to its blob key, or discards it if the blob exists.
    async fn promote(&self, staging: StagingObject, blob: &BlobRef) -> Result<()> {
        let key = self.blob_key(&blob.digest);
        if let Some(existing) = self.head_key(&key).await? {
            if !self.needs_refresh(&existing) {
                staging.delete().await;
                return Ok(());
            }
            // Same bytes, newer timestamp: overwriting is the refresh.
            self.store.rename(staging.path(), &key).await?;
            staging.disarm();
            return Ok(());
        }
        match self.store.rename_if_not_exists(staging.path(), &key).await {
            Ok(()) => staging.disarm(),
            // Another upload of the same content won the race; ours is redundant.
            Err(object_store::Error::AlreadyExists { .. }) => staging.delete().await,
            // Plain S3 has no conditional copy. An unconditional rename is still correct because
            // a concurrent writer of this key can only be writing identical bytes.
            Err(object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. }) => {
                self.store.rename(staging.path(), &key).await?;
                staging.disarm();
            }
            Err(other) => return Err(other.into()),
        }
        Ok(())
    }

    fn needs_refresh(&self, existing: &ObjectMeta) -> bool {
        let modified = SystemTime::from(existing.last_modified);
        SystemTime::now().duration_since(modified).unwrap_or_default() > self.config.refresh_after
    }

    async fn head_key(&self, key: &StorePath) -> Result<Option<ObjectMeta>> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// The blob's size, or `None` if there is no such blob.
    pub async fn head(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.head_key(&self.blob_key(digest)).await?.map(|meta| meta.size))
    }

    /// The blob's size and modification time, or `None` if there is no such blob. Garbage
    /// collection re-reads this just before deleting (see the crate docs).
    pub async fn info(&self, digest: &Digest) -> Result<Option<BlobInfo>> {
        Ok(self.head_key(&self.blob_key(digest)).await?.map(|meta| BlobInfo {
            digest: *digest,
            size: meta.size,
            last_modified: SystemTime::from(meta.last_modified),
        }))
    }

    /// Streams a blob, or the part of it `range` selects.
    pub async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead> {
        let key = self.blob_key(digest);
        let not_found = || ArtifactError::NotFound(digest.to_hex());
        // Resolving the range against the real size first gives one error for a bad range on
        // every backend (each reports it differently) and the size a 206 reply needs.
        let meta = self.head_key(&key).await?.ok_or_else(not_found)?;
        let range = match range {
            Some(range) => Some(range.resolve(meta.size)?),
            None => None,
        };
        let (range, stream) = match self.open_object(&key, range).await {
            Ok(opened) => opened,
            // Deleted between the head and the get.
            Err(object_store::Error::NotFound { .. }) => return Err(not_found()),
            Err(other) => return Err(other.into()),
        };
        Ok(BlobRead { size: meta.size, range, stream })
    }

    /// Streams an object (a blob or a staged part), or `range` of it; returns the range read.
    pub(crate) async fn open_object(
        &self,
        key: &StorePath,
        range: Option<Range<u64>>,
    ) -> object_store::Result<(Range<u64>, BoxStream<'static, Result<Bytes>>)> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        let result = self.store.get_opts(key, options).await?;
        let range = result.range.clone();
        let stream = match result.payload {
            GetResultPayload::File(file, _) => file_stream(file, range.clone()),
            GetResultPayload::Stream(stream) => stream.map_err(ArtifactError::from).boxed(),
        };
        Ok((range, stream))
    }

    /// Waits until no upload of this process is between [`StagedBlob::commit_pinned`] and
    /// dropping its [`PinnedBlob`], then keeps new ones waiting until the returned lock is
    /// dropped. A collector holds it while it re-checks that a blob is unreferenced and deletes
    /// it, so that an upload deduplicating against that very blob either commits after the
    /// delete (and writes the blob again) or has its manifest row in place before the re-check.
    pub async fn lock_for_collection(&self) -> CollectionLock {
        self.gate.lock().await
    }

    /// Deletes a blob. Deleting a missing blob is not an error, so a retried garbage collection
    /// pass succeeds.
    pub async fn delete(&self, digest: &Digest) -> Result<()> {
        match self.store.delete(&self.blob_key(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Every stored blob. Objects under `blobs/` that are not named by a well-formed digest in
    /// the right directory are skipped with a warning rather than failing the listing.
    pub fn list_blobs(&self) -> BoxStream<'static, Result<BlobInfo>> {
        let this = self.clone();
        self.store
            .list(Some(&self.blobs_root()))
            .map_err(ArtifactError::from)
            .try_filter_map(move |meta| {
                let info = this.blob_info(&meta);
                if info.is_none() {
                    tracing::warn!(location = %meta.location, "ignoring unexpected object among blobs");
                }
                futures::future::ready(Ok(info))
            })
            .boxed()
    }

    fn blob_info(&self, meta: &ObjectMeta) -> Option<BlobInfo> {
        let digest = Digest::parse(meta.location.filename()?).ok()?;
        (meta.location == self.blob_key(&digest)).then(|| BlobInfo {
            digest,
            size: meta.size,
            last_modified: SystemTime::from(meta.last_modified),
        })
    }

    /// Re-reads a blob and checks that its bytes still hash to its digest. `Ok(false)` means the
    /// stored bytes are corrupt; a missing blob is [`ArtifactError::NotFound`].
    pub async fn verify(&self, digest: &Digest) -> Result<bool> {
        let mut read = self.get(digest, None).await?;
        let mut hasher = Hasher::new();
        while let Some(chunk) = read.stream.next().await {
            hasher.update(&chunk?);
        }
        Ok(hasher.finish() == *digest)
    }

    /// Deletes staging objects last written more than `older_than` ago: leftovers of crashed
    /// uploads. Returns how many were deleted. Use an age well above the longest upload so a
    /// staging object is never removed from under an upload that is still promoting it.
    pub async fn clean_staging(&self, older_than: Duration) -> Result<usize> {
        let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut listing = self.store.list(Some(&self.staging_root()));
        let mut deleted = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if SystemTime::from(meta.last_modified) >= cutoff {
                continue;
            }
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(other) => return Err(other.into()),
            }
        }
        Ok(deleted)
    }
}
