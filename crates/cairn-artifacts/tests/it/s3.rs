//! The S3 backend against a real S3-protocol server (moto, or whatever `CAIRN_TEST_S3_ENDPOINT`
//! names): the shared cases plus checks of what S3 keeps behind the API.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_artifacts::BlobStore;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::cases::{self, PART};
use crate::common::generated;
use crate::common::s3_server::{S3Place, server};
use crate::shared_cases;

pub struct S3Fixture {
    place: S3Place,
    pub store: BlobStore,
}

async fn s3() -> S3Fixture {
    let server = server();
    let place = server.fresh_place("it");
    let store =
        BlobStore::open_with(&place.destination, &server.settings(), cases::config()).expect("open S3 destination");
    S3Fixture { place, store }
}

shared_cases!(s3:
    small_round_trip,
    empty_blob,
    chunking_does_not_change_the_digest,
    ranges,
    multipart_round_trip,
    dedup,
    failed_stream_leaves_nothing,
    missing_blobs,
    delete,
    staged_blob_is_invisible_until_commit,
    parts_assemble_in_order,
    failed_part_leaves_nothing,
);

/// A plain object_store client for the fixture's bucket, to look behind the blob store's back.
fn raw_client(fixture: &S3Fixture) -> impl ObjectStore {
    let (access_key, secret_key) = server().credentials();
    AmazonS3Builder::new()
        .with_bucket_name(&fixture.place.bucket)
        .with_endpoint(&server().endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id(access_key)
        .with_secret_access_key(secret_key)
        .build()
        .unwrap()
}

/// Waits until the server holds no incomplete multipart upload for the fixture's bucket (aborts
/// may run in a background task), then asserts it.
async fn assert_no_pending_uploads(fixture: &S3Fixture) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match server().pending_multipart_uploads(&fixture.place) {
            None | Some(0) => return,
            Some(n) if Instant::now() >= deadline => panic!("{n} multipart uploads left pending"),
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_stream_aborts_the_multipart_upload() {
    let fixture = s3().await;
    cases::failed_stream_leaves_nothing(&fixture.store).await;
    assert_no_pending_uploads(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_upload_aborts_the_multipart_upload() {
    let fixture = s3().await;
    cases::dropped_upload(&fixture.store).await;
    assert_no_pending_uploads(&fixture).await;
    assert_eq!(fixture.store.clean_staging(Duration::ZERO).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_uploads_leave_no_pending_multipart_upload() {
    let fixture = s3().await;
    cases::multipart_round_trip(&fixture.store).await;
    assert_no_pending_uploads(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_detects_a_corrupted_object() {
    let fixture = s3().await;
    let small = fixture.store.put_bytes(Bytes::from_static(b"precious bytes")).await.unwrap();
    let large = fixture.store.put_stream(generated(81, PART as u64 + 1, 1 << 20)).await.unwrap();
    assert!(fixture.store.verify(&small.digest).await.unwrap());
    assert!(fixture.store.verify(&large.digest).await.unwrap());

    // Overwrite both objects behind the store's back, through a separate client.
    let raw = raw_client(&fixture);
    for digest in [&small.digest, &large.digest] {
        raw.put(&fixture.store.blob_key(digest), PutPayload::from_static(b"tampered")).await.unwrap();
    }
    assert!(!fixture.store.verify(&small.digest).await.unwrap());
    assert!(!fixture.store.verify(&large.digest).await.unwrap());
    let prefix = object_store::path::Path::from(fixture.place.prefix.as_str());
    let listed: Vec<_> = raw.list(Some(&prefix)).try_collect().await.unwrap();
    assert_eq!(listed.len(), 2, "only the two blob objects exist: {listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_staged_upload_leaves_no_object() {
    let fixture = s3().await;
    cases::abandon_staged_upload(&fixture.store).await;
    let raw = raw_client(&fixture);
    let prefix = object_store::path::Path::from(fixture.place.prefix.as_str());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed: Vec<_> = raw.list(Some(&prefix)).try_collect().await.unwrap();
        if listed.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "objects left behind: {listed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_sessions_are_shared_by_two_handles_on_one_bucket() {
    let fixture = s3().await;
    let other = BlobStore::open_with(&fixture.place.destination, &server().settings(), cases::config()).unwrap();
    cases::upload_sessions_are_shared_through_storage(&fixture.store, &other).await;
}
