//! The artifact manifest on both backends: replace-on-rewrite, prefix listing, deletion, audit
//! verification of manifest rows, and the purge of long-deleted runs.

use std::sync::Arc;

use cairn_core::artifacts::{ArtifactManifest, NewArtifact, ROOT_OWNER};
use cairn_core::model::{Actor, Batch, KeyValue, Metric, NewRun};
use cairn_core::store::Store;

fn actor() -> Actor {
    Actor("tester".to_owned())
}

fn file(path: &str, digest_byte: char, size: u64) -> NewArtifact {
    NewArtifact { path: path.to_owned(), digest: digest_byte.to_string().repeat(64), size }
}

async fn new_run(store: &Arc<dyn Store>) -> String {
    let new = NewRun {
        run_id: None,
        experiment_id: "0".into(),
        user_id: "u".into(),
        run_name: None,
        start_time: Some(1),
        tags: vec![],
    };
    store.create_run(&actor(), new).await.expect("create run").info.run_id
}

fn manifest(store: &Arc<dyn Store>) -> Arc<dyn ArtifactManifest> {
    store.clone().artifact_manifest().expect("the SQL store keeps a manifest")
}

pub async fn rewriting_a_path_replaces_it_and_is_audited(store: Arc<dyn Store>) {
    let (run, files) = (new_run(&store).await, manifest(&store));
    files.put_artifact(&actor(), &run, file("model/weights.bin", 'a', 10)).await.unwrap();
    let before = store.audit_events(0, 1000).await.unwrap().len();
    files.put_artifact(&actor(), &run, file("model/weights.bin", 'b', 20)).await.unwrap();

    let listed = files.list_artifacts(&run, "").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].digest.as_str(), listed[0].size), ("b".repeat(64).as_str(), 20));
    let events = store.audit_events(0, 1000).await.unwrap();
    assert_eq!(events.len(), before + 1);
    let last = events.last().unwrap();
    assert_eq!(last.action, "log_artifact");
    assert!(last.payload.contains("artifact_file") && last.payload.contains(&"b".repeat(64)), "{}", last.payload);
    assert!(store.verify_audit().await.unwrap().is_ok());
}

pub async fn listing_and_deleting_follow_directories_not_string_prefixes(store: Arc<dyn Store>) {
    let (run, files) = (new_run(&store).await, manifest(&store));
    for path in ["a/x.txt", "a/b/y.txt", "ab.txt", "a%/z.txt"] {
        files.put_artifact(&actor(), &run, file(path, 'c', 1)).await.unwrap();
    }
    let paths = |v: Vec<cairn_core::artifacts::ArtifactFile>| v.into_iter().map(|f| f.path).collect::<Vec<_>>();
    assert_eq!(paths(files.list_artifacts(&run, "a").await.unwrap()), ["a/b/y.txt", "a/x.txt"]);
    assert_eq!(paths(files.list_artifacts(&run, "a%").await.unwrap()), ["a%/z.txt"]);
    assert_eq!(paths(files.list_artifacts(&run, "ab.txt").await.unwrap()), ["ab.txt"]);
    assert!(files.get_artifact(&run, "a").await.unwrap().is_none());
    assert_eq!(files.get_artifact(&run, "ab.txt").await.unwrap().unwrap().size, 1);

    assert_eq!(files.delete_artifacts(&actor(), &run, "a").await.unwrap(), 2);
    assert_eq!(paths(files.list_artifacts(&run, "").await.unwrap()), ["a%/z.txt", "ab.txt"]);
    let err = files.delete_artifacts(&actor(), &run, "a").await.unwrap_err();
    assert!(matches!(err, cairn_core::Error::NotFound(_)), "{err:?}");
    assert!(store.verify_audit().await.unwrap().is_ok());
    let err = files.put_artifact(&actor(), "0123456789abcdef0123456789abcdef", file("f", 'a', 1)).await.unwrap_err();
    assert!(matches!(err, cairn_core::Error::NotFound(_)), "{err:?}");
}

pub async fn digests_are_referenced_while_any_run_names_them(store: Arc<dyn Store>) {
    let files = manifest(&store);
    let (one, two) = (new_run(&store).await, new_run(&store).await);
    files.put_artifact(&actor(), &one, file("f", 'd', 3)).await.unwrap();
    files.put_artifact(&actor(), &two, file("g", 'd', 3)).await.unwrap();
    let digest = "d".repeat(64);
    files.delete_artifacts(&actor(), &one, "f").await.unwrap();
    assert!(files.is_referenced(&digest).await.unwrap());
    files.delete_artifacts(&actor(), &two, "").await.unwrap();
    assert!(!files.is_referenced(&digest).await.unwrap());
}

pub async fn root_files_are_kept_audited_and_referenced_until_deleted(store: Arc<dyn Store>) {
    let files = manifest(&store);
    let run = new_run(&store).await;
    files.put_artifact(&actor(), ROOT_OWNER, file("dir/a.txt", 'e', 4)).await.unwrap();
    files.put_artifact(&actor(), ROOT_OWNER, file("dir/sub/b.txt", 'f', 5)).await.unwrap();
    files.put_artifact(&actor(), &run, file("dir/a.txt", 'g', 6)).await.unwrap();

    let got = files.get_artifact(ROOT_OWNER, "dir/a.txt").await.unwrap().unwrap();
    assert_eq!((got.digest, got.size), ("e".repeat(64), 4), "the root and a run keep separate trees");
    let listed: Vec<String> =
        files.list_artifacts(ROOT_OWNER, "dir").await.unwrap().into_iter().map(|f| f.path).collect();
    assert_eq!(listed, ["dir/a.txt", "dir/sub/b.txt"]);
    let all = files.all_artifacts().await.unwrap();
    assert_eq!(all.iter().filter(|a| a.run_id == ROOT_OWNER).count(), 2, "GC and verification see root files");
    let events = store.audit_events(0, 10_000).await.unwrap();
    let put = events.iter().rev().find(|e| e.entity_id == ROOT_OWNER).expect("root writes are audited");
    assert_eq!((put.entity_type.as_str(), put.action.as_str()), ("artifact_root", "log_artifact"));
    assert!(store.verify_audit().await.unwrap().is_ok());

    let (e, f) = ("e".repeat(64), "f".repeat(64));
    assert!(files.is_referenced(&e).await.unwrap() && files.is_referenced(&f).await.unwrap());
    assert_eq!(files.delete_artifacts(&actor(), ROOT_OWNER, "dir/sub").await.unwrap(), 1);
    assert!(!files.is_referenced(&f).await.unwrap(), "a deleted root file no longer holds its blob");
    assert!(files.is_referenced(&e).await.unwrap());
    let missing = files.delete_artifacts(&actor(), ROOT_OWNER, "nothing").await.unwrap_err();
    assert!(matches!(missing, cairn_core::Error::NotFound(_)), "{missing:?}");
    assert!(store.verify_audit().await.unwrap().is_ok(), "removals verify too");
}

pub async fn purge_removes_only_runs_deleted_before_the_cutoff_and_keeps_the_log_verifiable(store: Arc<dyn Store>) {
    let files = manifest(&store);
    let (gone, kept, live) = (new_run(&store).await, new_run(&store).await, new_run(&store).await);
    for run in [&gone, &kept, &live] {
        let batch = Batch {
            metrics: vec![Metric { key: "loss".into(), value: 1.0, timestamp: 1, step: 0 }],
            params: vec![KeyValue::new("lr", "0.1")],
            tags: vec![KeyValue::new("t", "v")],
        };
        store.log_batch(&actor(), run, batch).await.unwrap();
        files.put_artifact(&actor(), run, file("out/f.txt", 'e', 5)).await.unwrap();
    }
    store.delete_run(&actor(), &gone).await.unwrap();
    let cutoff = now_millis() + 1;
    std::thread::sleep(std::time::Duration::from_millis(5));
    store.delete_run(&actor(), &kept).await.unwrap();

    let report = files.purge_deleted_runs(&actor(), cutoff).await.unwrap();
    assert_eq!(report.runs.as_slice(), std::slice::from_ref(&gone));
    assert_eq!(report.artifact_files, 1);
    assert!(matches!(store.get_run(&gone).await, Err(cairn_core::Error::NotFound(_))));
    assert!(store.get_run(&kept).await.is_ok());
    assert_eq!(files.list_artifacts(&live, "").await.unwrap().len(), 1);
    let verdict = store.verify_audit().await.unwrap();
    assert!(verdict.is_ok(), "{verdict:?}");
    // Nothing left to purge at the same cutoff.
    assert!(files.purge_deleted_runs(&actor(), cutoff).await.unwrap().runs.is_empty());
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Runs every case above against a backend's `fixture()`.
/// Uploads pin a digest before committing its blob and collectors claim it before deleting: each
/// side is refused while the other holds a claim, a referenced digest is never claimed, and an
/// expired claim (a crashed process's) no longer counts.
pub async fn upload_pins_and_deletion_claims_exclude_each_other(store: Arc<dyn Store>) {
    let files = manifest(&store);
    let minute = 60_000;
    let run = new_run(&store).await;
    files.put_artifact(&actor(), &run, file("kept", 'e', 1)).await.unwrap();
    assert!(!files.claim_blob_deletion(&"e".repeat(64), "gc-1", minute).await.unwrap(), "referenced");

    let loose = "f".repeat(64);
    assert!(files.pin_blob(&loose, "upload-1", minute).await.unwrap());
    assert!(files.pin_blob(&loose, "upload-2", minute).await.unwrap(), "uploads share a digest");
    assert!(!files.claim_blob_deletion(&loose, "gc-1", minute).await.unwrap(), "pinned by two uploads");
    files.unpin_blob(&loose, "upload-1").await.unwrap();
    assert!(!files.claim_blob_deletion(&loose, "gc-1", minute).await.unwrap(), "still pinned by one");
    files.unpin_blob(&loose, "upload-2").await.unwrap();
    files.unpin_blob(&loose, "upload-2").await.unwrap();
    assert!(files.claim_blob_deletion(&loose, "gc-1", minute).await.unwrap());
    assert!(!files.claim_blob_deletion(&loose, "gc-2", minute).await.unwrap(), "one collector at a time");
    assert!(!files.pin_blob(&loose, "upload-3", minute).await.unwrap(), "being deleted: wait");
    files.release_blob_deletion(&loose, "gc-1").await.unwrap();
    assert!(files.pin_blob(&loose, "upload-3", minute).await.unwrap());

    // Claims that expired, as a crashed process leaves them, are ignored and cleared.
    let other = "a".repeat(64);
    assert!(files.pin_blob(&other, "crashed-upload", 0).await.unwrap());
    assert!(files.claim_blob_deletion(&other, "gc-1", 0).await.unwrap(), "the pin expired");
    assert!(files.pin_blob(&other, "upload-4", minute).await.unwrap(), "the deletion claim expired");
    // None of this is domain state: the audit log is untouched and still verifies.
    assert!(store.verify_audit().await.unwrap().is_ok());
}

macro_rules! artifact_cases {
    ($fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $fixture().await;
                super::$case(store).await;
            }
        )*
    };
}

macro_rules! all_artifact_cases {
    ($fixture:path) => {
        artifact_cases!($fixture;
            rewriting_a_path_replaces_it_and_is_audited,
            listing_and_deleting_follow_directories_not_string_prefixes,
            digests_are_referenced_while_any_run_names_them,
            root_files_are_kept_audited_and_referenced_until_deleted,
            purge_removes_only_runs_deleted_before_the_cutoff_and_keeps_the_log_verifiable,
            upload_pins_and_deletion_claims_exclude_each_other,
        );
    };
}

mod sqlite {
    all_artifact_cases!(crate::sqlite::fixture);
}

mod postgres {
    all_artifact_cases!(crate::postgres::fixture);
}
