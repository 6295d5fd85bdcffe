//! Behaviour every backend must show. `local.rs` and `s3.rs` run each case against their store
//! and add the checks only they can make (files on disk, pending multipart uploads).

use std::time::Duration;

use bytes::Bytes;
use cairn_artifacts::{
    ArtifactError, BlobRef, BlobStore, BlobStoreConfig, ByteRange, Completion, Digest, HASH_ALGORITHM, SourceError,
};
use futures::{StreamExt, TryStreamExt, stream};

use crate::common::{digest_of_download, failing_after, generated, generated_digest, generated_vec, read_all};

/// The smallest part S3 accepts, so multipart paths are exercised with little data.
pub const PART: usize = 5 * 1024 * 1024;

/// The configuration the shared cases use.
pub fn config() -> BlobStoreConfig {
    BlobStoreConfig { part_size: PART, max_in_flight: 2, fsync: false, ..BlobStoreConfig::default() }
}

pub async fn all_blobs(store: &BlobStore) -> Vec<(Digest, u64)> {
    let mut blobs: Vec<_> = store.list_blobs().map_ok(|info| (info.digest, info.size)).try_collect().await.unwrap();
    blobs.sort();
    blobs
}

pub async fn small_round_trip(store: &BlobStore) {
    let blob = store.put_bytes(Bytes::from_static(b"hello, cairn")).await.unwrap();
    assert_eq!(blob, BlobRef::new(Digest::of(b"hello, cairn"), 12));
    assert_eq!(blob.algorithm, HASH_ALGORITHM);
    assert_eq!(store.head(&blob.digest).await.unwrap(), Some(12));
    assert_eq!(read_all(store, &blob.digest, None).await, b"hello, cairn");
    assert!(store.verify(&blob.digest).await.unwrap());
}

pub async fn empty_blob(store: &BlobStore) {
    let blob = store.put_stream(stream::empty::<Result<Bytes, std::io::Error>>()).await.unwrap();
    assert_eq!(blob, BlobRef::new(Digest::of(b""), 0));
    assert_eq!(store.head(&blob.digest).await.unwrap(), Some(0));
    assert!(read_all(store, &blob.digest, None).await.is_empty());
    let err = store.get(&blob.digest, Some(ByteRange::From(0))).await.unwrap_err();
    assert!(matches!(err, ArtifactError::RangeNotSatisfiable { size: 0 }), "{err}");
}

/// Many small chunks, one upload: chunk boundaries must not matter to the digest.
pub async fn chunking_does_not_change_the_digest(store: &BlobStore) {
    let data = generated_vec(7, 100_000).await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = data.chunks(333).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let blob = store.put_stream(stream::iter(chunks)).await.unwrap();
    assert_eq!(blob, BlobRef::new(Digest::of(&data), data.len() as u64));
}

pub async fn ranges(store: &BlobStore) {
    let data = generated_vec(11, 1000).await;
    let blob = store.put_bytes(Bytes::from(data.clone())).await.unwrap();
    let ok_cases = [
        (ByteRange::Bounded(10..20), 10..20),
        (ByteRange::Bounded(0..1), 0..1),
        (ByteRange::Bounded(990..5000), 990..1000),
        (ByteRange::From(995), 995..1000),
        (ByteRange::From(0), 0..1000),
        (ByteRange::Suffix(7), 993..1000),
        (ByteRange::Suffix(5000), 0..1000),
    ];
    for (range, expected) in ok_cases {
        let read = store.get(&blob.digest, Some(range.clone())).await.unwrap();
        assert_eq!((read.size, read.range.clone()), (1000, expected.clone()), "{range:?}");
        let bytes = read_all(store, &blob.digest, Some(range.clone())).await;
        assert_eq!(bytes, &data[expected.start as usize..expected.end as usize], "{range:?}");
    }
    let unsatisfiable = [
        ByteRange::Bounded(1000..1001),
        ByteRange::Bounded(5..5),
        // Reversed on purpose (a client can send it); spelled out so clippy accepts it.
        ByteRange::Bounded(std::ops::Range { start: 9, end: 3 }),
        ByteRange::From(1000),
        ByteRange::Suffix(0),
    ];
    for range in unsatisfiable {
        let err = store.get(&blob.digest, Some(range.clone())).await.unwrap_err();
        assert!(matches!(err, ArtifactError::RangeNotSatisfiable { size: 1000 }), "{range:?}: {err}");
    }
}

/// Content larger than a part goes through staging and multipart upload; reads, ranges and
/// verification must see exactly what was sent.
pub async fn multipart_round_trip(store: &BlobStore) -> BlobRef {
    let len = (PART as u64) * 5 / 2 + 123;
    let blob = store.put_stream(generated(21, len, 256 * 1024)).await.unwrap();
    assert_eq!(blob, BlobRef::new(generated_digest(21, len).await, len));
    assert_eq!(digest_of_download(store, &blob.digest).await, blob.digest);
    let tail = read_all(store, &blob.digest, Some(ByteRange::Suffix(1000))).await;
    assert_eq!(tail, &generated_vec(21, len).await[len as usize - 1000..]);
    assert!(store.verify(&blob.digest).await.unwrap());
    assert_eq!(store.clean_staging(Duration::ZERO).await.unwrap(), 0, "staging emptied");
    blob
}

/// Identical content uploaded twice (small and multipart) is stored once.
pub async fn dedup(store: &BlobStore) {
    let len = PART as u64 + 17;
    let first = store.put_stream(generated(31, len, 1 << 20)).await.unwrap();
    let second = store.put_stream(generated(31, len, 1 << 16)).await.unwrap();
    assert_eq!(first, second);
    let small_a = store.put_bytes(Bytes::from_static(b"same")).await.unwrap();
    let small_b = store.put_bytes(Bytes::from_static(b"same")).await.unwrap();
    assert_eq!(small_a, small_b);
    let mut expected = vec![(first.digest, len), (small_a.digest, 4)];
    expected.sort();
    assert_eq!(all_blobs(store).await, expected);
    assert_eq!(store.clean_staging(Duration::ZERO).await.unwrap(), 0, "no staging left over");
}

/// A stream that fails mid-way stores nothing, whether it failed before or after the first part.
pub async fn failed_stream_leaves_nothing(store: &BlobStore) {
    for good in [1000, 3 * PART as u64 + 5] {
        let err = store.put_stream(failing_after(41, good)).await.unwrap_err();
        assert!(matches!(err, ArtifactError::Source(_)), "{err}");
        assert!(err.to_string().contains("connection reset"), "{err}");
    }
    assert_eq!(all_blobs(store).await, vec![]);
    assert_eq!(store.clean_staging(Duration::ZERO).await.unwrap(), 0, "no staging left over");
}

/// Dropping the upload future mid-stream (a client that vanished; the server's handler is
/// cancelled) stores nothing. Cleanup runs in the background, so callers poll their own evidence.
pub async fn dropped_upload(store: &BlobStore) {
    let (reached, reached_rx) = tokio::sync::oneshot::channel::<()>();
    let body = generated(51, 2 * PART as u64 + 99, 1 << 20).chain(stream::once(async move {
        let _ = reached.send(());
        futures::future::pending::<Result<Bytes, SourceError>>().await
    }));
    tokio::select! {
        result = store.put_stream(body) => panic!("upload cannot finish: {result:?}"),
        _ = reached_rx => {}
    }
    assert_eq!(all_blobs(store).await, vec![]);
}

pub async fn missing_blobs(store: &BlobStore) {
    let absent = Digest::of(b"never stored");
    assert_eq!(store.head(&absent).await.unwrap(), None);
    assert!(matches!(store.get(&absent, None).await, Err(ArtifactError::NotFound(_))));
    assert!(matches!(store.verify(&absent).await, Err(ArtifactError::NotFound(_))));
    store.delete(&absent).await.expect("deleting a missing blob is not an error");
}

pub async fn delete(store: &BlobStore) {
    let keep = store.put_bytes(Bytes::from_static(b"keep")).await.unwrap();
    let gone = store.put_bytes(Bytes::from_static(b"gone")).await.unwrap();
    store.delete(&gone.digest).await.unwrap();
    assert_eq!(store.head(&gone.digest).await.unwrap(), None);
    assert_eq!(all_blobs(store).await, vec![(keep.digest, 4)]);
}

/// A staged upload knows its digest but is invisible until committed.
pub async fn staged_blob_is_invisible_until_commit(store: &BlobStore) {
    let len = PART as u64 + 1;
    for size in [10, len] {
        let staged = store.stage(generated(91, size, 1 << 20)).await.unwrap();
        let expected = BlobRef::new(generated_digest(91, size).await, size);
        assert_eq!(staged.blob(), &expected);
        assert_eq!(store.head(&expected.digest).await.unwrap(), None, "invisible before commit");
        assert_eq!(staged.commit().await.unwrap(), expected);
        let info = store.info(&expected.digest).await.unwrap().expect("visible after commit");
        assert_eq!((info.digest, info.size), (expected.digest, size));
    }
}

/// Stages an upload big enough for a staging object, then drops it uncommitted. Callers check
/// with their own eyes (disk, raw bucket listing) that the staging object goes away.
pub async fn abandon_staged_upload(store: &BlobStore) {
    let abandoned = store.stage(generated(92, PART as u64 + 1, 1 << 20)).await.unwrap();
    let digest = abandoned.blob().digest;
    drop(abandoned);
    assert_eq!(store.head(&digest).await.unwrap(), None);
}

/// Parts of a client's multipart upload, staged out of order and one of them twice (a retried
/// request), assemble in part order into one blob; discarding the upload empties staging. The
/// first part is large enough to be staged as a multipart object, the others with one put.
pub async fn parts_assemble_in_order(store: &BlobStore) {
    let upload = store.new_upload_id();
    let lens = [PART as u64 + 7, 1000, 333];
    let seeds = [61, 62, 63];
    let stage = |n: u32, seed: u64, len: u64| store.stage_part(&upload, n, generated(seed, len, 64 * 1024));
    let third = stage(3, seeds[2], lens[2]).await.unwrap();
    let replaced = stage(2, 99, lens[1]).await.unwrap();
    let first = stage(1, seeds[0], lens[0]).await.unwrap();
    let second = stage(2, seeds[1], lens[1]).await.unwrap();
    assert_ne!(replaced.digest, second.digest);
    for (part, (seed, len)) in [&first, &second, &third].into_iter().zip(seeds.into_iter().zip(lens)) {
        assert_eq!((part.digest, part.size), (generated_digest(seed, len).await, len));
    }

    let mut whole = Vec::new();
    for (seed, len) in seeds.into_iter().zip(lens) {
        whole.extend(generated_vec(seed, len).await);
    }
    let staged = store.stage_parts(&[first.clone(), second, third]).await.unwrap();
    let expected = BlobRef::new(Digest::of(&whole), whole.len() as u64);
    assert_eq!(staged.blob(), &expected);
    assert_eq!(store.head(&expected.digest).await.unwrap(), None, "invisible until committed");
    assert_eq!(staged.commit().await.unwrap(), expected);
    assert_eq!(read_all(store, &expected.digest, None).await, whole);

    // Four copies received, and a pointer to each part's latest: the replaced copy's pointer went.
    assert_eq!(store.discard_upload(&upload).await.unwrap(), 7, "four copies and three pointers");
    assert_eq!(store.clean_staging(Duration::ZERO).await.unwrap(), 0, "staging emptied");
    // Reading a discarded part is a storage error, never the client's.
    let err = store.stage_parts(&[first]).await.unwrap_err();
    assert!(!err.is_client_error(), "{err}");
}

/// A part whose stream fails is the client's error and leaves no staged object.
pub async fn failed_part_leaves_nothing(store: &BlobStore) {
    let upload = store.new_upload_id();
    for good in [1000, PART as u64 + 5] {
        let err = store.stage_part(&upload, 1, failing_after(71, good)).await.unwrap_err();
        assert!(matches!(err, ArtifactError::Source(_)), "{err}");
    }
    assert_eq!(store.discard_upload(&upload).await.unwrap(), 0);
    assert_eq!(store.clean_staging(Duration::ZERO).await.unwrap(), 0);
}

/// A pinned commit keeps collection waiting, and a collection lock keeps commits waiting.
pub async fn pinned_commits_and_collection_exclude_each_other(store: &BlobStore) {
    let wait = Duration::from_millis(200);
    let staged = store.stage(generated(72, 10, 10)).await.unwrap();
    let pinned = staged.commit_pinned().await.unwrap();
    assert!(
        tokio::time::timeout(wait, store.lock_for_collection()).await.is_err(),
        "collection must wait for the pinned upload"
    );
    drop(pinned);
    let lock = tokio::time::timeout(Duration::from_secs(10), store.lock_for_collection())
        .await
        .expect("collection proceeds once the pin is dropped");

    let staged = store.stage(generated(73, 10, 10)).await.unwrap();
    let digest = staged.blob().digest;
    let commit = tokio::spawn(async move { staged.commit_pinned().await.map(|p| p.blob().clone()) });
    tokio::time::sleep(wait).await;
    assert!(!commit.is_finished(), "a commit must wait for the collection lock");
    assert_eq!(store.head(&digest).await.unwrap(), None);
    drop(lock);
    let blob = commit.await.unwrap().unwrap();
    assert_eq!(store.head(&blob.digest).await.unwrap(), Some(10));
}

/// An upload's state lives in the object store: a second handle on the same storage (another
/// server) sees its session and finds its parts by number and digest, and only one completion
/// at a time is let in.
pub async fn upload_sessions_are_shared_through_storage(store: &BlobStore, other: &BlobStore) {
    let upload = store.new_upload_id();
    let ttl = Duration::from_secs(3600);
    assert_eq!(other.upload_session(&upload, ttl).await.unwrap(), None, "never opened");
    store.open_upload(&upload, "models/m/weights.bin", 3).await.unwrap();
    let session = other.upload_session(&upload, ttl).await.unwrap().expect("seen by the other handle");
    assert_eq!((session.path.as_str(), session.num_parts), ("models/m/weights.bin", 3));
    assert_eq!(other.upload_session(&upload, Duration::ZERO).await.unwrap(), None, "older than its ttl");

    let part = store.stage_part(&upload, 2, generated(81, 5000, 1024)).await.unwrap();
    assert_eq!(other.part_etags(&upload, 2).await.unwrap(), vec![format!("\"{}\"", part.digest.to_hex())]);
    assert!(other.part_etags(&upload, 1).await.unwrap().is_empty());
    assert_eq!(other.find_part(&upload, 2, &part.digest).await.unwrap(), Some(part.clone()));
    assert_eq!(other.find_part(&upload, 2, &Digest::of(b"other bytes")).await.unwrap(), None);
    assert_eq!(other.find_part(&upload, 1, &part.digest).await.unwrap(), None, "numbered, not pooled");
    let staged = other.stage_parts(&[part]).await.unwrap();
    assert_eq!(staged.blob().size, 5000);

    assert_eq!(store.begin_completion(&upload).await.unwrap(), Completion::Started);
    assert!(other.completion_in_progress(&upload).await.unwrap());
    assert_eq!(other.begin_completion(&upload).await.unwrap(), Completion::InProgress);
    other.end_completion(&upload).await.unwrap();
    assert!(!store.completion_in_progress(&upload).await.unwrap());
    assert_eq!(other.begin_completion(&upload).await.unwrap(), Completion::Started);

    store.discard_upload(&upload).await.unwrap();
    assert_eq!(other.upload_session(&upload, ttl).await.unwrap(), None, "gone once discarded");
}
