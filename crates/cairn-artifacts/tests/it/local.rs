//! The local-filesystem backend: shared cases plus what only a disk can show.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cairn_artifacts::{BlobStore, BlobStoreConfig, Digest, S3Settings};
use tempfile::TempDir;

use crate::cases::{self, PART};
use crate::common::{generated, generated_digest, rss_bytes};
use crate::shared_cases;

pub struct LocalFixture {
    dir: TempDir,
    pub store: BlobStore,
}

impl LocalFixture {
    fn root(&self) -> &Path {
        self.dir.path()
    }
}

async fn local() -> LocalFixture {
    local_with(cases::config())
}

fn local_with(config: BlobStoreConfig) -> LocalFixture {
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().to_str().unwrap();
    let store = BlobStore::open_with(destination, &S3Settings::default(), config).unwrap();
    LocalFixture { dir, store }
}

/// Regular files below `dir`, recursively (empty directories do not count).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn blob_file(root: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.to_hex();
    root.join("blobs/sha256").join(&hex[0..2]).join(&hex[2..4]).join(&hex)
}

shared_cases!(local:
    small_round_trip,
    empty_blob,
    chunking_does_not_change_the_digest,
    ranges,
    multipart_round_trip,
    missing_blobs,
    delete,
    staged_blob_is_invisible_until_commit,
    parts_assemble_in_order,
    failed_part_leaves_nothing,
    pinned_commits_and_collection_exclude_each_other,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_files_at_their_digest_path() {
    let fixture = local().await;
    let blob = fixture.store.put_bytes(Bytes::from_static(b"abc")).await.unwrap();
    let expected = blob_file(fixture.root(), &blob.digest);
    assert_eq!(files_under(fixture.root()), vec![expected.clone()]);
    assert_eq!(std::fs::read(expected).unwrap(), b"abc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_keeps_one_file_on_disk() {
    let fixture = local().await;
    cases::dedup(&fixture.store).await;
    let files = files_under(fixture.root());
    assert_eq!(files.len(), 2, "one file per distinct content: {files:?}");
    assert!(files.iter().all(|f| f.starts_with(fixture.root().join("blobs/sha256"))), "{files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_stream_leaves_no_file() {
    let fixture = local().await;
    cases::failed_stream_leaves_nothing(&fixture.store).await;
    assert_eq!(files_under(fixture.root()), Vec::<PathBuf>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_upload_leaves_no_file() {
    let fixture = local().await;
    cases::dropped_upload(&fixture.store).await;
    wait_until_no_files(fixture.root()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_staged_upload_leaves_no_file() {
    let fixture = local().await;
    cases::abandon_staged_upload(&fixture.store).await;
    wait_until_no_files(fixture.root()).await;
}

/// Background cleanup (of a dropped upload) takes a moment; polls, then asserts.
async fn wait_until_no_files(root: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !files_under(root).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files_under(root), Vec::<PathBuf>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_detects_corruption_on_disk() {
    let fixture = local().await;
    let small = fixture.store.put_bytes(Bytes::from_static(b"precious bytes")).await.unwrap();
    let large = fixture.store.put_stream(generated(61, PART as u64 * 2, 1 << 20)).await.unwrap();
    assert!(fixture.store.verify(&small.digest).await.unwrap());
    assert!(fixture.store.verify(&large.digest).await.unwrap());

    // Flip one byte in the middle of the large blob; truncate the small one.
    let path = blob_file(fixture.root(), &large.digest);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[PART] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    std::fs::write(blob_file(fixture.root(), &small.digest), b"precious").unwrap();

    assert!(!fixture.store.verify(&large.digest).await.unwrap());
    assert!(!fixture.store.verify(&small.digest).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_staging_removes_only_old_leftovers() {
    let fixture = local().await;
    let staging = fixture.root().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let old = staging.join("crashed-upload");
    let fresh = staging.join("upload-in-progress");
    std::fs::write(&old, b"partial").unwrap();
    std::fs::write(&fresh, b"partial").unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_hours_ago).unwrap();

    assert_eq!(fixture.store.clean_staging(Duration::from_secs(3600)).await.unwrap(), 1);
    assert!(!old.exists());
    assert!(fresh.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_uri_destination_and_reopening_see_the_same_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("file://{}/nested", dir.path().display());
    let first = BlobStore::open_with(&uri, &S3Settings::default(), cases::config()).unwrap();
    let blob = first.put_bytes(Bytes::from_static(b"persisted")).await.unwrap();

    let plain = dir.path().join("nested");
    let second = BlobStore::open_with(plain.to_str().unwrap(), &S3Settings::default(), cases::config()).unwrap();
    assert_eq!(second.head(&blob.digest).await.unwrap(), Some(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_duplicate_is_refreshed_not_duplicated() {
    let fixture = local_with(BlobStoreConfig { refresh_after: Duration::from_secs(60), ..cases::config() });
    let blob = fixture.store.put_bytes(Bytes::from_static(b"old content")).await.unwrap();
    let path = blob_file(fixture.root(), &blob.digest);
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(long_ago).unwrap();

    fixture.store.put_bytes(Bytes::from_static(b"old content")).await.unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert!(modified > long_ago + Duration::from_secs(3000), "garbage collection sees a fresh blob");
    assert_eq!(files_under(fixture.root()), vec![path]);
}

/// 200 MB streamed through the multipart path with the default configuration: resident memory
/// must not grow by anything like the file's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_keeps_memory_bounded() {
    let fixture = local_with(BlobStoreConfig { fsync: false, ..BlobStoreConfig::default() });
    let len = 200 * 1024 * 1024;

    let baseline = rss_bytes();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_bytes());
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.max(rss_bytes())
        })
    };
    let blob = fixture.store.put_stream(generated(71, len, 64 * 1024)).await.unwrap();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();

    let growth = peak.saturating_sub(baseline);
    eprintln!("200 MB upload: RSS baseline {} MB, peak {} MB", baseline >> 20, peak >> 20);
    assert!(growth < 100 * 1024 * 1024, "RSS grew by {} MB", growth >> 20);
    assert_eq!(blob.size, len);
    assert_eq!(blob.digest, generated_digest(71, len).await);
    assert_eq!(std::fs::metadata(blob_file(fixture.root(), &blob.digest)).unwrap().len(), len);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_sessions_are_shared_by_two_handles_on_one_folder() {
    let fixture = local().await;
    let other =
        BlobStore::open_with(fixture.root().to_str().unwrap(), &S3Settings::default(), cases::config()).unwrap();
    cases::upload_sessions_are_shared_through_storage(&fixture.store, &other).await;
}
