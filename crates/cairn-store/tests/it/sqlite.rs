//! The SQLite backend: the conformance suite, plus what only SQLite tests can do — reopen a
//! file, and tamper with it through a raw connection to check that verification notices.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cairn_core::audit::VerifyReport;
use cairn_core::model::{Actor, Batch, KeyValue, Metric, NewExperiment, NewRun};
use cairn_core::store::Store;
use cairn_store::StoreConfig;
use tempfile::TempDir;

use crate::conformance::{IngestWorkload, assert_backfilled_series, conformance_cases, log_series_for_backfill};

fn config(path: &Path) -> StoreConfig {
    StoreConfig::new(format!("sqlite:///{}", path.display()))
}

/// A fresh store in a temporary directory, which lives as long as the returned guard.
pub async fn fixture() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = cairn_store::open(&config(&dir.path().join("cairn.db"))).await.expect("open store");
    (store, dir)
}

conformance_cases!(fixture);
crate::lineage::lineage_cases!(fixture);
crate::logged_models::logged_model_cases!(fixture);
crate::auth::auth_cases!(fixture);

fn actor() -> Actor {
    Actor("tester".to_owned())
}

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("cairn.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    let (store, dir) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "kept".into(), ..Default::default() }).await.unwrap();
    let run = store.create_run(&actor(), NewRun { experiment_id: exp.clone(), ..Default::default() }).await.unwrap();
    let batch = Batch {
        metrics: vec![Metric { key: "m".into(), value: 1.5, timestamp: 1, step: 1 }],
        params: vec![KeyValue::new("p", "v")],
        tags: vec![],
    };
    store.log_batch(&actor(), &run.info.run_id, batch).await.unwrap();
    let events = store.audit_events(0, 1000).await.unwrap().len();
    store.close().await.unwrap();
    assert!(store.get_experiment(&exp).await.is_ok(), "reads still work after close");
    assert!(store.log_batch(&actor(), &run.info.run_id, Batch::default()).await.is_err(), "writes are refused");

    let reopened = cairn_store::open(&config(&db_path(&dir))).await.unwrap();
    let fetched = reopened.get_run(&run.info.run_id).await.unwrap();
    assert_eq!(fetched.params, vec![KeyValue::new("p", "v")]);
    assert_eq!(fetched.metrics[0].value, 1.5);
    assert_eq!(reopened.get_experiment(&exp).await.unwrap().name, "kept");
    assert_eq!(reopened.audit_events(0, 1000).await.unwrap().len(), events, "reopening writes nothing");
    assert!(reopened.verify_audit().await.unwrap().is_ok());
    reopened.close().await.unwrap();
}

/// Committed pages reach the database file from the checkpoint thread, soon after the commit and
/// long before the writer's own far-off automatic checkpoint would copy them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_beside_the_writer() {
    let (store, dir) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "wal".into(), ..Default::default() }).await.unwrap();
    let run = store.create_run(&actor(), NewRun { experiment_id: exp, ..Default::default() }).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let size = || std::fs::metadata(db_path(&dir)).unwrap().len();
    let before = size();
    for chunk in 0..20 {
        let metrics = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| Metric { key: format!("m{}", i % 4), value: i as f64, timestamp: i, step: i })
            .collect();
        store.log_batch(&actor(), &run.info.run_id, Batch { metrics, ..Default::default() }).await.unwrap();
    }
    let started = Instant::now();
    while size() <= before {
        assert!(
            started.elapsed().as_secs() < 10,
            "the database file stayed at {before} bytes: nothing checkpointed it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(store.get_run(&run.info.run_id).await.unwrap().metrics.len(), 4);
    store.close().await.unwrap();
}

/// Verification reads a long log a page at a time; a damaged event deep in it is named exactly
/// and the rest verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_event_in_a_long_log_is_named_exactly() {
    let (store, dir) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "long".into(), ..Default::default() }).await.unwrap();
    let run = store.create_run(&actor(), NewRun { experiment_id: exp, ..Default::default() }).await.unwrap();
    for i in 0..1500 {
        let tags = vec![KeyValue::new(format!("t{}", i % 50), format!("v{i}"))];
        store.log_batch(&actor(), &run.info.run_id, Batch { tags, ..Default::default() }).await.unwrap();
    }
    assert!(store.verify_audit().await.unwrap().is_ok(), "clean before tampering");
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    // Actor edited: the hash no longer matches, and nothing else is wrong.
    assert_eq!(conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1234", []).unwrap(), 1);
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.events, 1503, "every event checked once");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].seq, Some(1234));
    store.close().await.unwrap();
}

/// Migration 0011 rolls up the histories written before it: with the rollup table dropped and
/// the migration forgotten, reopening rebuilds `metric_blocks`, and sampling gives what a scan
/// of the rows gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_0011_backfills_metric_blocks() {
    let (store, dir) = fixture().await;
    let (run, a, b) = log_series_for_backfill(&store).await;
    store.close().await.unwrap();
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    let blocks = "SELECT COUNT(*), SUM(points) FROM metric_blocks";
    let before: (i64, i64) = conn.query_row(blocks, [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    conn.execute_batch("DROP TABLE metric_blocks; DELETE FROM schema_migrations WHERE version = 11;").unwrap();
    drop(conn);

    let reopened = cairn_store::open(&config(&db_path(&dir))).await.unwrap();
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    let after: (i64, i64) = conn.query_row(blocks, [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(after, before, "the backfill builds the blocks ingest built");
    assert_eq!(after.1 as usize, a.len() + b.len());
    assert_backfilled_series(&reopened, &run, &a, &b).await;
    reopened.close().await.unwrap();
}

#[tokio::test]
async fn bad_uris_are_refused() {
    let err = cairn_store::open(&StoreConfig::new("sqlite:///:memory:")).await.err().expect("refused");
    assert!(matches!(err, cairn_core::Error::InvalidParameter(_)), "{err:?}");
    assert!(cairn_store::open(&StoreConfig::new("mysql://x")).await.is_err());
}

/// A store with one experiment, one run and one batch, and the seqs of the events that wrote them.
struct Tampered {
    store: Arc<dyn Store>,
    dir: TempDir,
    run_id: String,
    create_experiment_seq: i64,
    log_batch_seq: i64,
}

async fn tamper_fixture() -> Tampered {
    let (store, dir) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "victim".into(), ..Default::default() }).await.unwrap();
    let run =
        store.create_run(&actor(), NewRun { experiment_id: exp, ..Default::default() }).await.unwrap().info.run_id;
    let batch = Batch {
        metrics: vec![
            Metric { key: "loss".into(), value: 0.5, timestamp: 10, step: 1 },
            Metric { key: "loss".into(), value: 0.25, timestamp: 20, step: 2 },
        ],
        params: vec![KeyValue::new("lr", "0.1")],
        tags: vec![KeyValue::new("team", "a")],
    };
    store.log_batch(&actor(), &run, batch).await.unwrap();
    // A later, unrelated event, so that the damaged one is not simply the last.
    store.set_experiment_tag(&actor(), "0", KeyValue::new("note", "x")).await.unwrap();
    let events = store.audit_events(0, 1000).await.unwrap();
    let seq_of = |action: &str| events.iter().find(|e| e.action == action).map(|e| e.seq).unwrap();
    assert!(store.verify_audit().await.unwrap().is_ok(), "clean before tampering");
    Tampered {
        create_experiment_seq: events
            .iter()
            .find(|e| e.action == "create_experiment" && e.entity_id == "1")
            .unwrap()
            .seq,
        log_batch_seq: seq_of("log_batch"),
        store,
        dir,
        run_id: run,
    }
}

impl Tampered {
    fn sql(&self, sql: &str) {
        let conn = rusqlite::Connection::open(db_path(&self.dir)).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let changed = conn.execute(sql, []).unwrap();
        assert_eq!(changed, 1, "tampering statement changed {changed} rows: {sql}");
    }

    async fn report(&self) -> VerifyReport {
        let report = self.store.verify_audit().await.unwrap();
        assert!(!report.is_ok(), "tampering went unnoticed");
        report
    }
}

async fn first_problem_names(t: &Tampered, seq: Option<i64>, needle: &str) {
    let report = t.report().await;
    let first = &report.problems[0];
    assert_eq!(first.seq, seq, "{:?}", report.problems);
    assert!(first.message.contains(needle), "{:?} lacks {needle:?}", first.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_an_edited_param() {
    let t = tamper_fixture().await;
    t.sql("UPDATE params SET value = '0.9' WHERE key = 'lr'");
    let altered = format!("params written by event {} were altered", t.log_batch_seq);
    first_problem_names(&t, Some(t.log_batch_seq), &altered).await;
    first_problem_names(&t, Some(t.log_batch_seq), &format!("{}/lr", t.run_id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_an_edited_metric() {
    let t = tamper_fixture().await;
    t.sql("UPDATE metrics SET value = 0.1 WHERE step = 2");
    first_problem_names(&t, Some(t.log_batch_seq), "metric rows written by event").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_a_deleted_metric() {
    let t = tamper_fixture().await;
    t.sql("DELETE FROM metrics WHERE step = 2");
    first_problem_names(&t, Some(t.log_batch_seq), "1 rows now, 2 recorded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_an_edited_experiment_name() {
    let t = tamper_fixture().await;
    t.sql("UPDATE experiments SET name = 'innocent' WHERE name = 'victim'");
    first_problem_names(&t, Some(t.create_experiment_seq), "experiment '1' differs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_a_deleted_tag() {
    let t = tamper_fixture().await;
    t.sql("DELETE FROM run_tags WHERE key = 'team'");
    first_problem_names(&t, Some(t.log_batch_seq), "is missing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_an_inserted_param() {
    let t = tamper_fixture().await;
    t.sql("INSERT INTO params (run_pk, key, value, seq) SELECT run_pk, 'extra', '1', seq FROM runs");
    first_problem_names(&t, None, &format!("param '{}/extra' exists but no audit event wrote it", t.run_id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_an_edited_payload() {
    let t = tamper_fixture().await;
    // The payload is stored compressed, so the edit changes one stored byte.
    t.sql(&format!(
        "UPDATE audit_events SET payload = CAST(substr(payload, 1, 9) || \
         CASE WHEN substr(payload, 10, 1) = X'00' THEN X'01' ELSE X'00' END || substr(payload, 11) AS BLOB) \
         WHERE seq = {}",
        t.log_batch_seq
    ));
    first_problem_names(&t, Some(t.log_batch_seq), "payload does not match its digest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_an_edited_hash() {
    let t = tamper_fixture().await;
    t.sql(&format!("UPDATE audit_events SET actor = 'someone-else' WHERE seq = {}", t.log_batch_seq));
    first_problem_names(&t, Some(t.log_batch_seq), "hash does not match its content").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_a_removed_event() {
    let t = tamper_fixture().await;
    t.sql(&format!("DELETE FROM audit_events WHERE seq = {}", t.log_batch_seq));
    // The rows the removed event wrote point at it; the chain break is reported at the next one.
    first_problem_names(&t, Some(t.log_batch_seq), "claim event").await;
    let report = t.report().await;
    assert!(
        report.problems.iter().any(|p| p.seq == Some(t.log_batch_seq + 1) && p.message.contains("missing or inserted"))
    );
}

/// Logs points through the `Store` API from several tasks and reports the rate and the bytes
/// each point takes on disk. `CAIRN_INGEST_POINTS` scales it up for measurement (use
/// `--release`); by default it is a quick correctness run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_throughput() {
    let workload = IngestWorkload::from_env();
    let (store, dir) = fixture().await;
    let (runs, elapsed) = workload.run(&store).await;
    let points = workload.points();
    store.close().await.unwrap();

    let reopened = cairn_store::open(&config(&db_path(&dir))).await.unwrap();
    assert_eq!(IngestWorkload::stored(&reopened, &runs).await, points, "every acknowledged point is stored");
    let verify_started = Instant::now();
    let report = reopened.verify_audit().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let verify_time = verify_started.elapsed();
    reopened.close().await.unwrap();

    // Fold the WAL into the main file so the size is what the data takes.
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    drop(conn);
    let bytes = std::fs::metadata(db_path(&dir)).unwrap().len();
    let rate = points as f64 / elapsed.as_secs_f64();
    let raw = raw_sqlite_rate(&dir.path().join("raw.db"), points, workload.batch);
    println!(
        "ingest: {points} points in {:.2}s = {rate:.0} points/s ({:.0}% of raw SQLite's {raw:.0}/s); \
         {bytes} bytes = {:.1} bytes/point; audit verify {:.2}s",
        elapsed.as_secs_f64(),
        100.0 * rate / raw,
        bytes as f64 / points as f64,
        verify_time.as_secs_f64()
    );
}

/// The baseline: the same rows inserted straight into the same schema with one prepared
/// statement, `batch` rows per transaction, no audit, no server.
fn raw_sqlite_rate(path: &Path, points: usize, batch: usize) -> f64 {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;").unwrap();
    conn.execute_batch(include_str!("../../migrations/sqlite/0001_init.sql")).unwrap();
    let started = Instant::now();
    for b in 0..points.div_ceil(batch) {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO metrics (run_pk, key_id, step, timestamp, value, is_nan, seq) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6) ON CONFLICT DO NOTHING",
                )
                .unwrap();
            for i in 0..batch {
                let step = (b * batch + i) as i64;
                stmt.execute(rusqlite::params![
                    (b % 8) as i64,
                    (i % 10) as i64,
                    step,
                    step,
                    step as f64 * 0.5,
                    b as i64
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    points as f64 / started.elapsed().as_secs_f64()
}

/// Lineage rows are covered by verification like every other table: an edited prediction, a
/// re-pointed edge and a removed node are each reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_notices_tampered_lineage() {
    use cairn_core::lineage::{EdgeKind, NewEdge, NewNode, NewPrediction, NodeRef};
    use cairn_core::registry::{NewModelVersion, NewRegisteredModel};

    let (store, dir) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "l".into(), ..Default::default() }).await.unwrap();
    let run =
        store.create_run(&actor(), NewRun { experiment_id: exp, ..Default::default() }).await.unwrap().info.run_id;
    let data = NodeRef::parse("dataset:d@1").unwrap();
    let digest = NewNode { label: None, digest: Some("0a".into()), ..Default::default() };
    store.register_node(&actor(), data.clone(), digest).await.unwrap();
    let run_node = NodeRef::parse(&format!("run:{run}")).unwrap();
    store.add_edge(&actor(), NewEdge { source: run_node, kind: EdgeKind::Used, target: data }).await.unwrap();
    store
        .create_registered_model(&actor(), NewRegisteredModel { name: "m".into(), ..Default::default() })
        .await
        .unwrap();
    let version =
        NewModelVersion { name: "m".into(), source: "s3://x".into(), run_id: Some(run), ..Default::default() };
    store.create_model_version(&actor(), version).await.unwrap();
    let prediction = |id: &str| NewPrediction {
        prediction_id: id.into(),
        deployment: None,
        model_version: Some("m/1".into()),
        input_digest: "ff".into(),
        output_digest: None,
        time: None,
    };
    store.log_predictions(&actor(), vec![prediction("p1"), prediction("p2")], false).await.unwrap();
    assert!(store.verify_audit().await.unwrap().is_ok());

    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    for (tamper, undo, needle) in [
        (
            "UPDATE predictions SET input_digest = 'ee' WHERE prediction_id = 'p2'",
            "UPDATE predictions SET input_digest = 'ff' WHERE prediction_id = 'p2'",
            "prediction_rows",
        ),
        (
            "UPDATE lineage_nodes SET digest = '0b' WHERE key = 'd@1'",
            "UPDATE lineage_nodes SET digest = '0a' WHERE key = 'd@1'",
            "lineage_node 'dataset:d@1'",
        ),
        (
            "UPDATE lineage_edges SET kind = 'was_derived_from' WHERE kind = 'used'",
            "UPDATE lineage_edges SET kind = 'used' WHERE kind = 'was_derived_from'",
            "lineage_edge",
        ),
    ] {
        assert_eq!(conn.execute(tamper, []).unwrap(), 1, "{tamper}");
        let report = store.verify_audit().await.unwrap();
        assert!(report.problems.iter().any(|p| p.message.contains(needle)), "{tamper}: {:?}", report.problems);
        conn.execute(undo, []).unwrap();
        assert!(store.verify_audit().await.unwrap().is_ok(), "undoing {tamper}");
    }
    conn.execute("DELETE FROM predictions WHERE prediction_id = 'p1'", []).unwrap();
    assert!(!store.verify_audit().await.unwrap().is_ok(), "a deleted prediction is noticed");
}

/// Logged-model tables are covered by verification: an edited model, an edited linked metric
/// point, a rewritten input tag and an inserted run output are each reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_notices_tampered_logged_models() {
    use cairn_core::logged_models::{Dataset, DatasetInput, MetricLink, NewLoggedModel};

    let (store, dir) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "lm".into(), ..Default::default() }).await.unwrap();
    let run = store.create_run(&actor(), NewRun { experiment_id: exp.clone(), ..Default::default() }).await.unwrap();
    let run_id = run.info.run_id;
    let new = NewLoggedModel { experiment_id: exp, name: Some("victim".into()), ..Default::default() };
    let model_id = store.create_logged_model(&actor(), new).await.unwrap().model_id;
    let link = MetricLink { model_id: model_id.clone(), dataset_name: None, dataset_digest: None };
    let batch =
        Batch { metrics: vec![Metric { key: "acc".into(), value: 0.5, timestamp: 1, step: 0 }], ..Batch::default() };
    store.log_batch_linked(&actor(), &run_id, batch, vec![Some(link)]).await.unwrap();
    let dataset = Dataset {
        name: "d".into(),
        digest: "1".into(),
        source_type: "local".into(),
        source: "{}".into(),
        schema: None,
        profile: None,
    };
    let input = DatasetInput { dataset, tags: vec![KeyValue::new("mlflow.data.context", "training")] };
    store.log_inputs(&actor(), &run_id, vec![input], vec![]).await.unwrap();
    assert!(store.verify_audit().await.unwrap().is_ok(), "clean before tampering");

    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    for (tamper, undo, needle) in [
        (
            "UPDATE logged_models SET name = 'forged'".to_owned(),
            "UPDATE logged_models SET name = 'victim'".to_owned(),
            format!("logged_model '{model_id}'"),
        ),
        (
            "UPDATE logged_model_metrics SET value = 0.99".to_owned(),
            "UPDATE logged_model_metrics SET value = 0.5".to_owned(),
            "logged_model_metric_rows".to_owned(),
        ),
        (
            "UPDATE run_input_tags SET value = 'validation'".to_owned(),
            "UPDATE run_input_tags SET value = 'training'".to_owned(),
            "run_dataset_input".to_owned(),
        ),
        (
            "INSERT INTO run_model_outputs (run_pk, model_pk, step, seq) SELECT run_pk, 1, 0, 1 FROM runs".to_owned(),
            "DELETE FROM run_model_outputs".to_owned(),
            "run_model_output".to_owned(),
        ),
    ] {
        assert_eq!(conn.execute(&tamper, []).unwrap(), 1, "{tamper}");
        let report = store.verify_audit().await.unwrap();
        assert!(report.problems.iter().any(|p| p.message.contains(&needle)), "{tamper}: {:?}", report.problems);
        conn.execute(&undo, []).unwrap();
        assert!(store.verify_audit().await.unwrap().is_ok(), "undoing {tamper} restores a clean report");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_notices_tampered_access_control() {
    use cairn_core::auth::{NewUser, Permission, ResourceType};
    let t = tamper_fixture().await;
    let user = NewUser { username: "mallory".into(), password_hash: "$argon2id$v=19$original".into(), is_admin: false };
    t.store.create_user(&actor(), user).await.unwrap();
    t.store.grant(&actor(), "mallory", ResourceType::Experiment, "1", Permission::Read).await.unwrap();
    assert!(t.store.verify_audit().await.unwrap().is_ok());
    // Swapping in a known password hash, or making oneself admin, behind the server's back.
    t.sql("UPDATE auth_users SET password_hash = '$argon2id$v=19$attacker' WHERE username = 'mallory'");
    assert!(t.report().await.problems.iter().any(|p| p.message.contains("auth_user '1' differs")));
    t.sql("UPDATE auth_users SET password_hash = '$argon2id$v=19$original', is_admin = 1 WHERE username = 'mallory'");
    assert!(t.report().await.problems.iter().any(|p| p.message.contains("auth_user '1' differs")));
    t.sql("UPDATE auth_users SET is_admin = 0 WHERE username = 'mallory'");
    assert!(t.store.verify_audit().await.unwrap().is_ok(), "restored rows verify again");
    t.sql("UPDATE auth_grants SET permission = 'MANAGE' WHERE resource_id = '1'");
    assert!(t.report().await.problems.iter().any(|p| p.message.contains("auth_grant '1/experiment/1' differs")));
}

/// A store with a few events, closed, and those events.
async fn store_with_history() -> (TempDir, Vec<cairn_core::audit::AuditEvent>) {
    let (store, dir) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "old".into(), ..Default::default() }).await.unwrap();
    let run = store.create_run(&actor(), NewRun { experiment_id: exp, ..Default::default() }).await.unwrap();
    let batch = Batch {
        metrics: vec![Metric { key: "m".into(), value: 1.5, timestamp: 1, step: 1 }],
        params: (0..10).map(|i| KeyValue::new(format!("p{i}"), format!("v{i}"))).collect(),
        tags: vec![KeyValue::new("team", "a")],
    };
    store.log_batch(&actor(), &run.info.run_id, batch).await.unwrap();
    let events = store.audit_events(0, 1000).await.unwrap();
    store.close().await.unwrap();
    (dir, events)
}

/// A store whose log has `events` events, mostly experiment tags, closed, and those events.
async fn store_with_long_history(events: usize) -> (TempDir, Vec<cairn_core::audit::AuditEvent>) {
    let (store, dir) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "long".into(), ..Default::default() }).await.unwrap();
    for i in 2..events {
        let tag = KeyValue::new(format!("t{}", i % 13), format!("v{i}"));
        store.set_experiment_tag(&actor(), &exp, tag).await.unwrap();
    }
    let log = store.audit_events(0, 100_000).await.unwrap();
    assert_eq!(log.len(), events);
    store.close().await.unwrap();
    (dir, log)
}

fn count(dir: &TempDir, sql: &str) -> i64 {
    rusqlite::Connection::open(db_path(dir)).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The writer seals 256 events at a time once 512 are unsealed; a sealed event keeps only its
/// seq and time on its row, so the log takes a fraction of the space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_are_sealed_into_blocks_and_take_less_space() {
    let (dir, events) = store_with_long_history(1100).await;
    assert_eq!(count(&dir, "SELECT count(*) FROM audit_blocks"), 3, "blocks up to event 768");
    assert_eq!(count(&dir, "SELECT count(*) FROM audit_events WHERE payload IS NULL"), 768);
    assert_eq!(
        count(&dir, "SELECT count(*) FROM audit_events WHERE payload IS NULL AND hash IS NULL AND actor IS NULL"),
        768
    );
    let sealed = count(&dir, "SELECT sum(length(body)) FROM audit_blocks") as f64 / 768.0;
    let unsealed = count(
        &dir,
        "SELECT sum(length(payload) + length(hash) + length(actor) + length(action) + length(entity_id)) \
         FROM audit_events WHERE payload IS NOT NULL",
    ) as f64
        / (events.len() - 768) as f64;
    assert!(sealed * 2.0 < unsealed, "a sealed event takes {sealed:.0} bytes, an unsealed one {unsealed:.0}");
    let store = cairn_store::open(&config(&db_path(&dir))).await.unwrap();
    assert_eq!(store.audit_events(0, 100_000).await.unwrap(), events);
    assert!(store.verify_audit().await.unwrap().is_ok());
}

/// Changing a sealed event (its time on its row, or its block), or removing a block, breaks the
/// chain where the block meets its anchor or its successor, and verification says so; undoing
/// the change makes the log verify again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_a_sealed_block_is_noticed() {
    let (dir, _) = store_with_long_history(1100).await;
    let store = cairn_store::open(&config(&db_path(&dir))).await.unwrap();
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let problems =
        |report: VerifyReport| report.problems.iter().map(|p| (p.seq, p.message.clone())).collect::<Vec<_>>();

    conn.execute("UPDATE audit_events SET time = time + 1 WHERE seq = 300", []).unwrap();
    let found = problems(store.verify_audit().await.unwrap());
    assert_eq!(found, vec![(Some(512), "event 512 hash does not match its content".to_owned())]);
    conn.execute("UPDATE audit_events SET time = time - 1 WHERE seq = 300", []).unwrap();
    assert!(store.verify_audit().await.unwrap().is_ok());

    let body: Vec<u8> = conn.query_row("SELECT body FROM audit_blocks WHERE last_seq = 768", [], |r| r.get(0)).unwrap();
    let mut damaged = body.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x04;
    conn.execute("UPDATE audit_blocks SET body = ?1 WHERE last_seq = 768", [&damaged]).unwrap();
    let found = problems(store.verify_audit().await.unwrap());
    assert!(
        found.iter().any(|(seq, m)| seq.is_some_and(|s| (513..=768).contains(&s)) && m.contains("hash does not match")
            || m.contains("does not match its digest")),
        "{found:?}"
    );
    assert!(found.iter().all(|(seq, _)| seq.is_some_and(|s| (513..=769).contains(&s))), "{found:?}");
    conn.execute("UPDATE audit_blocks SET body = ?1 WHERE last_seq = 768", [&body]).unwrap();
    assert!(store.verify_audit().await.unwrap().is_ok());

    conn.execute("DELETE FROM audit_blocks WHERE last_seq = 512", []).unwrap();
    let found = problems(store.verify_audit().await.unwrap());
    assert!(found.iter().any(|(seq, m)| *seq == Some(513) && m.contains("missing or inserted")), "{found:?}");
    store.close().await.unwrap();
}

/// A log written before blocks existed (here, in the layout before migration 0012 too) is
/// converted and sealed when the store opens, and reads and verifies as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_old_log_is_sealed_when_the_store_opens() {
    let (dir, events) = store_with_long_history(1003).await;
    downgrade_audit_log(&dir, &events);
    let store = cairn_store::open(&config(&db_path(&dir))).await.unwrap();
    assert_eq!(store.audit_events(0, 100_000).await.unwrap(), events, "the same events, hash for hash");
    assert!(store.verify_audit().await.unwrap().is_ok());
    store.close().await.unwrap();
    assert_eq!(count(&dir, "SELECT count(*) FROM audit_blocks"), 2, "blocks up to event 512, leaving 491 unsealed");
}

/// Puts the log back in the layout of schema version 11 and before (payload as text, hashes as
/// hex, digest and previous hash stored), as a store written by an older Cairn has it.
fn downgrade_audit_log(dir: &TempDir, events: &[cairn_core::audit::AuditEvent]) {
    let mut conn = rusqlite::Connection::open(db_path(dir)).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(
        "DROP TABLE audit_events; \
         CREATE TABLE audit_events (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, actor TEXT NOT NULL, \
           action TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, payload TEXT NOT NULL, \
           digest TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL); \
         DROP TABLE audit_blocks; \
         DELETE FROM schema_migrations WHERE version IN (12, 14);",
    )
    .unwrap();
    for e in events {
        tx.execute(
            "INSERT INTO audit_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                e.seq,
                e.time,
                e.actor,
                e.action,
                e.entity_type,
                e.entity_id,
                e.payload,
                e.digest,
                e.prev_hash,
                e.hash
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_format_log_is_converted_and_still_verifies() {
    let (dir, events) = store_with_history().await;
    downgrade_audit_log(&dir, &events);
    let old_size = std::fs::metadata(db_path(&dir)).unwrap().len();
    assert!(old_size > 0);

    let store = cairn_store::open(&config(&db_path(&dir))).await.unwrap();
    assert_eq!(store.audit_events(0, 1000).await.unwrap(), events, "the same events, hash for hash");
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    store.close().await.unwrap();
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    let (payload, hash): (String, i64) = conn
        .query_row("SELECT typeof(payload), length(hash) FROM audit_events WHERE seq = 2", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((payload.as_str(), hash), ("blob", 32));
    let old: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'audit_events_v1'", [], |r| r.get(0)).unwrap();
    assert_eq!(old, 0, "the old table is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_log_with_an_edited_digest_is_refused_and_left_as_it_was() {
    let (dir, events) = store_with_history().await;
    downgrade_audit_log(&dir, &events);
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    conn.execute("UPDATE audit_events SET digest = replace(digest, substr(digest, 1, 1), 'x') WHERE seq = 3", [])
        .unwrap();
    drop(conn);

    let err = cairn_store::open(&config(&db_path(&dir))).await.err().expect("the migration refuses");
    assert!(err.to_string().contains("audit event 3 does not match its digest"), "{err}");
    // Nothing changed: the old table is still the log and migration 12 is not recorded.
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    let count: i64 =
        conn.query_row("SELECT count(*) FROM audit_events WHERE digest IS NOT NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(count as usize, events.len());
    let applied: i64 =
        conn.query_row("SELECT count(*) FROM schema_migrations WHERE version = 12", [], |r| r.get(0)).unwrap();
    assert_eq!(applied, 0);
}
