//! The PostgreSQL backend: the conformance suite on a fresh database of the shared throw-away
//! cluster (see `cairn_testkit::PgCluster`), the `Db` implementation's type handling, and what
//! only a server database can show — several stores, as several server processes would be,
//! opening and writing one database at once.

use std::sync::Arc;
use std::time::Instant;

use cairn_core::model::{Actor, Batch, KeyValue, Metric, NewExperiment, NewRun, RunStatus, RunUpdate};
use cairn_core::store::{HistoryQuery, Store};
use cairn_store::StoreConfig;
use cairn_store::postgres::{PgDb, Role, config_from_uri};
use cairn_store::sql::db::{Db, DbError, MetricInsert, SqlValue};
use cairn_testkit::PgCluster;

use crate::conformance::{IngestWorkload, assert_backfilled_series, conformance_cases, log_series_for_backfill};

/// A fresh database on the shared cluster.
async fn fresh_database() -> String {
    tokio::task::spawn_blocking(|| PgCluster::shared().create_database()).await.expect("create database")
}

async fn open(url: &str) -> Arc<dyn Store> {
    cairn_store::open(&StoreConfig::new(url)).await.expect("open store")
}

/// A store on a fresh database; the URL is the guard (the database lives as long as the cluster).
pub async fn fixture() -> (Arc<dyn Store>, String) {
    let url = fresh_database().await;
    (open(&url).await, url)
}

conformance_cases!(fixture);
crate::lineage::lineage_cases!(fixture);
crate::logged_models::logged_model_cases!(fixture);
crate::auth::auth_cases!(fixture);

fn actor() -> Actor {
    Actor("tester".to_owned())
}

/// Runs `f` on a raw connection to `url`, off the async runtime (the client is synchronous).
async fn with_db<T, F>(url: &str, role: Role, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce(&mut PgDb) -> T + Send + 'static,
{
    let config = config_from_uri(url).expect("url");
    tokio::task::spawn_blocking(move || f(&mut PgDb::connect(&config, role).expect("connect"))).await.expect("task")
}

async fn new_run(store: &Arc<dyn Store>, experiment_id: &str) -> String {
    let new = NewRun { experiment_id: experiment_id.to_owned(), ..NewRun::default() };
    store.create_run(&actor(), new).await.expect("create run").info.run_id
}

fn points(key: &str, steps: std::ops::Range<i64>) -> Vec<Metric> {
    steps.map(|s| Metric { key: key.to_owned(), value: s as f64 / 2.0, timestamp: 1000 + s, step: s }).collect()
}

async fn history_len(store: &Arc<dyn Store>, run_id: &str, key: &str) -> usize {
    let q = HistoryQuery { run_id: run_id.to_owned(), key: key.to_owned(), max_results: None, offset: 0 };
    store.metric_history(q).await.expect("history").items.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_round_trip_with_their_types() {
    let url = fresh_database().await;
    let rows = with_db(&url, Role::Write, |db| {
        db.batch("CREATE TABLE t (i BIGINT, s SMALLINT, r DOUBLE PRECISION, x TEXT UNIQUE)").unwrap();
        let insert = "INSERT INTO t (i, s, r, x) VALUES ($1, $2, $3, $4)";
        db.execute(insert, &[SqlValue::Int(i64::MAX), 1.into(), 0.5.into(), "é'; --".into()]).unwrap();
        // The same statement with NULLs in other places, whose types the server must infer.
        db.execute(insert, &[SqlValue::Null, SqlValue::Null, SqlValue::Null, "n".into()]).unwrap();
        let dup = db.execute(insert, &[1.into(), 1.into(), 1.0.into(), "n".into()]);
        assert!(matches!(dup, Err(DbError::UniqueViolation(_))), "{dup:?}");
        let bad = db.execute("INSERT INTO nowhere VALUES ($1)", &[1.into()]);
        assert!(matches!(bad, Err(DbError::Other(ref m)) if m.contains("nowhere")), "{bad:?}");
        db.query("SELECT i, s, r, x, i IS NULL, SUM(i) OVER (), COUNT(*) OVER () FROM t ORDER BY x", &[]).unwrap()
    })
    .await;
    let total = SqlValue::Int(i64::MAX);
    assert_eq!(
        rows,
        vec![
            vec![SqlValue::Null, SqlValue::Null, SqlValue::Null, "n".into(), 1.into(), total.clone(), 2.into()],
            vec![i64::MAX.into(), 1.into(), 0.5.into(), "é'; --".into(), 0.into(), total, 2.into()],
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_connections_refuse_writes() {
    let url = fresh_database().await;
    let result = with_db(&url, Role::Read, |db| db.batch("CREATE TABLE t (a INT)")).await;
    assert!(matches!(result, Err(DbError::Other(ref m)) if m.contains("read-only")), "{result:?}");
}

/// What `Db::defer` promises: deferred statements run in order before the next call, which
/// sees their rows; a failing one is reported by that call (or by `flush`) as an ordinary
/// error, never as a unique violation a caller could take for its own conflict; and nothing
/// deferred is left behind after the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_statements_run_in_order_and_report_their_errors_later() {
    let url = fresh_database().await;
    let (seen, failed, flushed, after) = with_db(&url, Role::Write, |db| {
        db.batch("CREATE TABLE d (k INT PRIMARY KEY, v TEXT)").unwrap();
        db.batch("BEGIN").unwrap();
        db.defer("INSERT INTO d (k, v) VALUES ($1, $2)", &[1i64.into(), "a".into()]).unwrap();
        db.defer("UPDATE d SET v = $1 WHERE k = $2", &["b".into(), 1i64.into()]).unwrap();
        let seen = db.query("SELECT v FROM d WHERE k = 1", &[]).unwrap();
        db.defer_batch("SAVEPOINT s").unwrap();
        db.defer("INSERT INTO d (k, v) VALUES ($1, $2)", &[1i64.into(), "again".into()]).unwrap();
        let failed = db.query("SELECT count(*) FROM d", &[]);
        db.batch("ROLLBACK TO SAVEPOINT s").unwrap();
        db.defer("INSERT INTO d (k, v) VALUES ($1, $2)", &[1i64.into(), "and again".into()]).unwrap();
        let flushed = db.flush();
        db.batch("ROLLBACK TO SAVEPOINT s").unwrap();
        db.flush().unwrap();
        db.batch("COMMIT").unwrap();
        let after = db.query("SELECT k, v FROM d ORDER BY k", &[]).unwrap();
        (seen, failed, flushed, after)
    })
    .await;
    assert_eq!(seen, vec![vec![SqlValue::Text("b".into())]], "the query saw both deferred writes, in order");
    assert!(matches!(failed, Err(DbError::Other(ref m)) if m.contains("duplicate key")), "{failed:?}");
    assert!(matches!(flushed, Err(DbError::Other(ref m)) if m.contains("duplicate key")), "{flushed:?}");
    assert_eq!(after, vec![vec![SqlValue::Int(1), SqlValue::Text("b".into())]]);
}

fn point(run_pk: i64, step: i64, value: f64) -> MetricInsert {
    MetricInsert { run_pk, key_id: 1, step, timestamp: 5, value, is_nan: false, seq: 1 }
}

/// Inside a transaction, as the store calls it: the fast path (all new), the fallback after a
/// duplicate (which must leave the transaction usable), and chunking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_inserts_report_which_rows_were_new() {
    let url = fresh_database().await;
    open(&url).await.close().await.unwrap();
    let (first, second, count) = with_db(&url, Role::Write, |db| {
        db.batch("BEGIN").unwrap();
        let first =
            db.insert_metrics(&[point(1, 1, 1.0), point(1, 2, 1.0), point(1, 1, 1.0), point(1, 3, -0.0)]).unwrap();
        let second = db.insert_metrics(&[point(1, 3, 0.0), point(1, 4, f64::INFINITY), point(1, 2, 1.0)]).unwrap();
        let many: Vec<MetricInsert> = (10..12_010).map(|s| point(1, s, 0.25)).collect();
        assert!(db.insert_metrics(&many).unwrap().iter().all(|new| *new), "all chunks are new");
        let mut again = many.clone();
        again.push(point(1, 99_999, 0.25));
        let flags = db.insert_metrics(&again).unwrap();
        assert_eq!(flags.iter().filter(|new| **new).count(), 1, "only the last point is new");
        assert!(flags[12_000]);
        let count = db.query("SELECT COUNT(*) FROM metrics", &[]).unwrap();
        db.batch("COMMIT").unwrap();
        (first, second, count)
    })
    .await;
    assert_eq!(first, vec![true, true, false, true], "a repeat within one call is not new");
    assert_eq!(second, vec![false, true, false], "0.0 is the stored -0.0; a stored point is not new");
    assert_eq!(count, vec![vec![SqlValue::Int(4 + 12_001)]]);
}

/// Outside a transaction there is no savepoint to fall back to; the answer is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_inserts_work_outside_a_transaction() {
    let url = fresh_database().await;
    open(&url).await.close().await.unwrap();
    let flags = with_db(&url, Role::Write, |db| {
        let first = db.insert_metrics(&[point(2, 1, 1.0), point(2, 1, 1.0)]).unwrap();
        let second = db.insert_metrics(&[point(2, 2, 1.0), point(2, 1, 1.0)]).unwrap();
        (first, second)
    })
    .await;
    assert_eq!(flags, (vec![true, false], vec![true, false]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    let (store, url) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "kept".into(), ..Default::default() }).await.unwrap();
    let run = new_run(&store, &exp).await;
    let batch = Batch { metrics: points("m", 0..3), params: vec![KeyValue::new("p", "v")], tags: vec![] };
    store.log_batch(&actor(), &run, batch).await.unwrap();
    let events = store.audit_events(0, 1000).await.unwrap().len();
    store.close().await.unwrap();

    let reopened = open(&url).await;
    assert_eq!(reopened.get_run(&run).await.unwrap().params, vec![KeyValue::new("p", "v")]);
    assert_eq!(history_len(&reopened, &run, "m").await, 3);
    assert_eq!(reopened.audit_events(0, 1000).await.unwrap().len(), events, "reopening writes nothing");
    assert!(reopened.verify_audit().await.unwrap().is_ok());
    reopened.close().await.unwrap();
}

#[tokio::test]
async fn bad_uris_are_refused_without_leaking_the_password() {
    let err =
        cairn_store::open(&StoreConfig::new("postgresql://u:hunter2@127.0.0.1:1/db")).await.err().expect("refused");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1/db"), "{err}");
    let err = cairn_store::open(&StoreConfig::new("postgresql://u@h:port/db")).await.err().expect("refused");
    assert!(matches!(err, cairn_core::Error::InvalidParameter(_)), "{err:?}");
}

/// Migration 0011 rolls up the histories written before it: with the rollup table dropped and
/// the migration forgotten, reopening rebuilds `metric_blocks` as ingest built it, and
/// sampling gives what a scan of the rows gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_0011_backfills_metric_blocks() {
    let (store, url) = fixture().await;
    let (run, a, b) = log_series_for_backfill(&store).await;
    store.close().await.unwrap();
    let blocks = "SELECT run_pk, key_id, block, points, min_value, max_value FROM metric_blocks ORDER BY 1, 2, 3";
    let before = with_db(&url, Role::Write, move |db| {
        let rows = db.query(blocks, &[]).unwrap();
        db.batch("DROP TABLE metric_blocks; DELETE FROM schema_migrations WHERE version = 11").unwrap();
        rows
    })
    .await;
    let reopened = open(&url).await;
    let after = with_db(&url, Role::Read, move |db| db.query(blocks, &[]).unwrap()).await;
    assert_eq!(after, before, "the backfill builds the blocks ingest built");
    let total: i64 = after.iter().map(|r| r[3].int().unwrap()).sum();
    assert_eq!(total as usize, a.len() + b.len());
    assert_backfilled_series(&reopened, &run, &a, &b).await;
    reopened.close().await.unwrap();
}

/// Several processes starting on one new database: the advisory lock makes one migrate while
/// the others wait, and the default experiment is created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_migrate_once() {
    let url = fresh_database().await;
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let config = StoreConfig::new(&url);
            tokio::spawn(async move { cairn_store::open(&config).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap());
    }
    let stores: Vec<Arc<dyn Store>> = stores.into_iter().map(|s| s.expect("every open succeeds")).collect();
    let migrations = with_db(&url, Role::Read, |db| {
        db.query("SELECT version FROM schema_migrations ORDER BY version", &[]).unwrap()
    })
    .await;
    // Each migration is recorded exactly once, however many there are (numbers may have gaps
    // where a number is held by work merged separately, so the check is that none repeats).
    let versions: Vec<i64> = migrations.iter().map(|row| row[0].int().unwrap()).collect();
    assert!(versions.len() >= 10, "{versions:?}");
    assert_eq!(versions[..10], (1..=10).collect::<Vec<i64>>()[..], "{versions:?}");
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    let events = stores[0].audit_events(0, 100).await.unwrap();
    let creates: Vec<_> = events.iter().filter(|e| e.action == "create_experiment").collect();
    assert_eq!(creates.len(), 1, "{events:?}");
    for store in &stores {
        assert_eq!(store.get_experiment("0").await.unwrap().name, "Default");
        assert!(store.verify_audit().await.unwrap().is_ok());
        store.close().await.unwrap();
    }
}

/// Two stores (two "servers") writing one database at once: the chain head lock serialises
/// their transactions, so the audit chain stays one unbroken line and every point is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_share_one_database() {
    const TASKS_PER_STORE: usize = 3;
    const BATCHES: i64 = 15;
    const POINTS: i64 = 40;
    let url = fresh_database().await;
    let stores = [open(&url).await, open(&url).await];
    let exp = stores[0]
        .create_experiment(&actor(), NewExperiment { name: "shared".into(), ..Default::default() })
        .await
        .unwrap();
    let mut handles = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for task in 0..TASKS_PER_STORE {
            let (store, exp) = (store.clone(), exp.clone());
            handles.push(tokio::spawn(async move {
                let run = new_run(&store, &exp).await;
                for b in 0..BATCHES {
                    // New metric keys from both stores at once exercise key interning too.
                    let key = format!("s{s}t{task}b{}", b % 3);
                    let batch = Batch {
                        metrics: points(&key, b * POINTS..(b + 1) * POINTS),
                        params: vec![KeyValue::new(format!("p{b}"), "v")],
                        tags: vec![KeyValue::new("last", b.to_string())],
                    };
                    store.log_batch(&actor(), &run, batch).await.expect("log_batch");
                }
                run
            }));
        }
    }
    let mut runs = Vec::new();
    for h in handles {
        runs.push(h.await.unwrap());
    }
    for (i, run) in runs.iter().enumerate() {
        // Each store reads what the other wrote.
        let reader = &stores[(i + 1) % 2];
        let fetched = reader.get_run(run).await.unwrap();
        assert_eq!(fetched.params.len(), BATCHES as usize);
        let (s, task) = (i / TASKS_PER_STORE, i % TASKS_PER_STORE);
        let mut stored = 0;
        for k in 0..3 {
            stored += history_len(reader, run, &format!("s{s}t{task}b{k}")).await;
        }
        assert_eq!(stored, (BATCHES * POINTS) as usize);
    }
    let events = stores[1].audit_events(0, 10_000).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>(), "one gapless chain");
    for store in &stores {
        let report = store.verify_audit().await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        store.close().await.unwrap();
    }
}

/// Two stores (two replicas over one database) claiming the same Idempotency-Keys at once:
/// each key is won by exactly one claim across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_claim_an_idempotency_key_once() {
    use cairn_core::idempotency::Claim;
    const KEYS: usize = 10;
    const PER_STORE: usize = 4;
    let url = fresh_database().await;
    let stores = [open(&url).await, open(&url).await];
    let mut handles = Vec::new();
    for k in 0..KEYS {
        for store in &stores {
            for _ in 0..PER_STORE {
                let store = store.clone();
                handles.push(tokio::spawn(async move {
                    (k, store.claim_idempotency_key(&format!("key{k}"), "d").await.expect("claim"))
                }));
            }
        }
    }
    let mut won = [0usize; KEYS];
    for h in handles {
        let (k, claim) = h.await.unwrap();
        match claim {
            Claim::Claimed => won[k] += 1,
            Claim::InProgress { request_digest } => assert_eq!(request_digest, "d"),
            Claim::Answered(a) => panic!("nothing was answered, yet {a:?}"),
        }
    }
    assert_eq!(won, [1; KEYS]);
    for store in &stores {
        store.close().await.unwrap();
    }
}

/// A server restart or a killed backend closes every connection of the store: the writer and
/// the read pool reconnect at their next transaction instead of failing forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_resume_after_the_connection_is_killed() {
    let (store, url) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "before".into(), ..Default::default() }).await.unwrap();
    let killed = with_db(&url, Role::Write, |db| {
        db.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .len()
    })
    .await;
    assert!(killed >= 1, "the writer's connection was killed");
    // `pg_terminate_backend` only signals: until the backends have exited, a statement can still
    // get through on a connection that is about to close, which the store cannot tell from a
    // connection lost in the middle of a transaction. Waiting for them makes the test about
    // reconnecting, not about that race.
    let left = with_db(&url, Role::Write, |db| {
        for _ in 0..100 {
            let rows = db
                .query(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    &[],
                )
                .unwrap();
            if rows.is_empty() {
                return 0;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        1
    })
    .await;
    assert_eq!(left, 0, "the killed backends exited");
    assert_eq!(store.get_experiment(&exp).await.unwrap().name, "before");
    for name in ["after-1", "after-2", "after-3"] {
        let new = NewExperiment { name: name.into(), ..Default::default() };
        store.create_experiment(&actor(), new).await.expect("the writer reconnected");
    }
    assert_eq!(store.get_experiment_by_name("after-3").await.unwrap().name, "after-3");
    assert!(store.verify_audit().await.unwrap().is_ok());
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_rows_edited_behind_the_store() {
    let (store, url) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "victim".into(), ..Default::default() }).await.unwrap();
    let run = new_run(&store, &exp).await;
    let batch = Batch { metrics: points("loss", 0..2), params: vec![KeyValue::new("lr", "0.1")], tags: vec![] };
    store.log_batch(&actor(), &run, batch).await.unwrap();
    assert!(store.verify_audit().await.unwrap().is_ok(), "clean before tampering");

    let tamper = |sql: &'static str| {
        let url = url.clone();
        async move { with_db(&url, Role::Write, move |db| db.execute(sql, &[]).unwrap()).await }
    };
    assert_eq!(tamper("UPDATE params SET value = '0.9' WHERE key = 'lr'").await, 1);
    let report = store.verify_audit().await.unwrap();
    assert!(report.problems.iter().any(|p| p.message.contains("lr")), "{:?}", report.problems);

    assert_eq!(tamper("UPDATE params SET value = '0.1' WHERE key = 'lr'").await, 1);
    assert!(store.verify_audit().await.unwrap().is_ok(), "restoring the value heals it");
    assert_eq!(tamper("DELETE FROM metrics WHERE step = 1").await, 1);
    assert!(!store.verify_audit().await.unwrap().is_ok(), "a deleted point is noticed");
    store.close().await.unwrap();
}

/// Logs points through the `Store` API from several tasks and reports the rate, next to the
/// rate of binary COPY into the same table. `CAIRN_INGEST_POINTS` scales it up for measurement
/// (use `--release`); by default it is a quick correctness run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_throughput() {
    let workload = IngestWorkload::from_env();
    let (store, url) = fixture().await;
    let (runs, elapsed) = workload.run(&store).await;
    let points = workload.points();
    assert_eq!(IngestWorkload::stored(&store, &runs).await, points, "every acknowledged point is stored");
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    store.close().await.unwrap();

    let copy_rate = tokio::task::spawn_blocking(move || raw_copy_rate(&url, points, workload.batch)).await.unwrap();
    let rate = points as f64 / elapsed.as_secs_f64();
    println!(
        "postgres ingest: {points} points in {:.2}s = {rate:.0} points/s ({:.0}% of binary COPY's {copy_rate:.0}/s)",
        elapsed.as_secs_f64(),
        100.0 * rate / copy_rate
    );
}

/// The physical limit: the same rows written with binary COPY into a copy of the metrics table
/// (same columns and primary key), `batch` rows per transaction, with no audit and no server.
fn raw_copy_rate(url: &str, points: usize, batch: usize) -> f64 {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::Type;

    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client.batch_execute("CREATE TABLE raw_metrics (LIKE metrics INCLUDING ALL)").unwrap();
    let types = [Type::INT8, Type::INT8, Type::INT8, Type::INT8, Type::FLOAT8, Type::INT2, Type::INT8];
    let started = Instant::now();
    for b in 0..points.div_ceil(batch) {
        let mut tx = client.transaction().unwrap();
        let sink = tx
            .copy_in("COPY raw_metrics (run_pk, key_id, step, timestamp, value, is_nan, seq) FROM STDIN BINARY")
            .unwrap();
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for i in 0..batch {
            let step = (b * batch + i) as i64;
            let (run, key, seq) = ((b % 8) as i64, (i % 10) as i64, b as i64);
            writer.write(&[&run, &key, &step, &step, &(step as f64 * 0.5), &0_i16, &seq]).unwrap();
        }
        writer.finish().unwrap();
        tx.commit().unwrap();
    }
    points as f64 / started.elapsed().as_secs_f64()
}

/// Two stores on one database, as two server processes: for each of many digests one pins it
/// (an upload) while the other claims it for deletion (a collector), all at once, so that each
/// store's writer commits many of them in one group transaction. At most one of them may get each
/// digest: the audit head's row lock serializes the two writers today, and the claims' own
/// advisory lock keeps it so if that lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_pins_and_deletion_claims_exclude_each_other_across_processes() {
    let url = fresh_database().await;
    let (uploads, collector) = (open(&url).await, open(&url).await);
    let (pins, claims) = (uploads.clone().artifact_manifest().unwrap(), collector.clone().artifact_manifest().unwrap());
    let digests: Vec<String> = (0..400).map(|n| format!("{n:064x}")).collect();
    let pinned = futures::future::join_all(digests.iter().map(|d| pins.pin_blob(d, "upload", 60_000)));
    let claimed = futures::future::join_all(digests.iter().map(|d| claims.claim_blob_deletion(d, "gc", 60_000)));
    let (pinned, claimed) = tokio::join!(pinned, claimed);
    let both = pinned.iter().zip(&claimed).filter(|(p, c)| *p.as_ref().unwrap() && *c.as_ref().unwrap()).count();
    assert_eq!(both, 0, "an upload and a collector both held a digest");
    uploads.close().await.unwrap();
    collector.close().await.unwrap();
}

/// A store written by an older Cairn (log with payload text, hex hashes, digest and previous hash
/// stored; head hash as hex) is converted on open and verifies, event for event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_format_log_is_converted_and_still_verifies() {
    let (store, url) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "old".into(), ..Default::default() }).await.unwrap();
    let run = new_run(&store, &exp).await;
    let params = (0..10).map(|i| KeyValue::new(format!("p{i}"), format!("v{i}"))).collect();
    store.log_batch(&actor(), &run, Batch { metrics: points("loss", 0..3), params, tags: vec![] }).await.unwrap();
    let events = store.audit_events(0, 1000).await.unwrap();
    store.close().await.unwrap();

    let old = events.clone();
    with_db(&url, Role::Write, move |db| {
        db.batch(
            "BEGIN; DROP TABLE audit_events; \
             CREATE TABLE audit_events (seq BIGINT PRIMARY KEY, time BIGINT NOT NULL, actor TEXT NOT NULL, \
               action TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, payload TEXT NOT NULL, \
               digest TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL); \
             ALTER TABLE audit_head ALTER COLUMN hash TYPE TEXT USING encode(hash, 'hex'); \
             DELETE FROM schema_migrations WHERE version = 12;",
        )
        .unwrap();
        for e in old {
            db.execute(
                "INSERT INTO audit_events VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    e.seq.into(),
                    e.time.into(),
                    e.actor.into(),
                    e.action.into(),
                    e.entity_type.into(),
                    e.entity_id.into(),
                    e.payload.into(),
                    e.digest.into(),
                    e.prev_hash.into(),
                    e.hash.into(),
                ],
            )
            .unwrap();
        }
        db.batch("COMMIT").unwrap();
    })
    .await;

    let store = open(&url).await;
    assert_eq!(store.audit_events(0, 1000).await.unwrap(), events, "the same events, hash for hash");
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // The converted head continues the chain.
    store.set_experiment_tag(&actor(), &exp, KeyValue::new("after", "upgrade")).await.unwrap();
    assert!(store.verify_audit().await.unwrap().is_ok());
    store.close().await.unwrap();
}

/// Changing any stored byte of an event (payload, actor, time, hash) or removing one is
/// reported at that event, on PostgreSQL as on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_edited_audit_rows() {
    let (store, url) = fixture().await;
    let exp =
        store.create_experiment(&actor(), NewExperiment { name: "victim".into(), ..Default::default() }).await.unwrap();
    let run = new_run(&store, &exp).await;
    let batch = Batch { metrics: points("loss", 0..2), params: vec![KeyValue::new("lr", "0.1")], tags: vec![] };
    store.log_batch(&actor(), &run, batch).await.unwrap();
    store.set_experiment_tag(&actor(), &exp, KeyValue::new("later", "x")).await.unwrap();
    let seq = store.audit_events(0, 1000).await.unwrap().iter().find(|e| e.action == "log_batch").unwrap().seq;
    assert!(store.verify_audit().await.unwrap().is_ok(), "clean before tampering");
    let cases = [
        (
            "UPDATE audit_events SET payload = overlay(payload PLACING '\\x00'::bytea FROM 9 FOR 1) \
          WHERE seq = $1 AND substr(payload, 9, 1) <> '\\x00'::bytea",
            seq,
        ),
        (
            "UPDATE audit_events SET payload = overlay(payload PLACING '\\x01'::bytea FROM 9 FOR 1) \
          WHERE seq = $1 AND substr(payload, 9, 1) <> '\\x01'::bytea",
            seq,
        ),
        ("UPDATE audit_events SET actor = 'mallory' WHERE seq = $1", seq),
        ("UPDATE audit_events SET time = time + 1 WHERE seq = $1", seq),
        ("UPDATE audit_events SET hash = sha256(hash) WHERE seq = $1", seq),
        ("DELETE FROM audit_events WHERE seq = $1", seq),
    ];
    for (sql, seq) in cases {
        // Each case on a copy of the log, put back afterwards.
        let changed = with_db(&url, Role::Write, move |db| {
            db.batch("CREATE TABLE audit_backup AS SELECT * FROM audit_events").unwrap();
            db.execute(sql, &[seq.into()]).unwrap()
        })
        .await;
        let report = store.verify_audit().await.unwrap();
        with_db(&url, Role::Write, |db| {
            db.batch("DELETE FROM audit_events; INSERT INTO audit_events SELECT * FROM audit_backup; DROP TABLE audit_backup")
                .unwrap();
        })
        .await;
        if changed == 0 {
            continue; // the byte already had that value; its twin case changes it
        }
        assert!(!report.is_ok(), "{sql} went unnoticed");
        assert!(report.problems.iter().any(|p| p.seq == Some(seq)), "{sql}: {:?}", report.problems);
    }
    assert!(store.verify_audit().await.unwrap().is_ok(), "restored");
    store.close().await.unwrap();
}

/// The writer remembers the rows of the runs it is writing (`writer::RowCache`); what another
/// replica changes in between must be seen, not the remembered rows: a run deleted there, a
/// param logged there, a run created there (which takes the next key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_sees_what_another_changed_in_the_runs_it_is_writing() {
    let (a, url) = fixture().await;
    let b = open(&url).await;
    let exp =
        a.create_experiment(&actor(), NewExperiment { name: "shared".into(), ..Default::default() }).await.unwrap();
    let run = new_run(&a, &exp).await;
    let lr = Batch { params: vec![KeyValue::new("lr", "0.1")], ..Batch::default() };
    a.log_batch(&actor(), &run, lr).await.unwrap();

    b.delete_run(&actor(), &run).await.unwrap();
    let finish =
        RunUpdate { run_id: run.clone(), status: Some(RunStatus::Finished), end_time: Some(5), run_name: None };
    let refused = a.update_run(&actor(), finish.clone()).await.expect_err("the run was deleted by the other replica");
    assert!(refused.to_string().contains("must be in the 'active' state"), "{refused}");

    b.restore_run(&actor(), &run).await.unwrap();
    b.log_batch(&actor(), &run, Batch { params: vec![KeyValue::new("x", "1")], ..Batch::default() }).await.unwrap();
    let changed = Batch { params: vec![KeyValue::new("x", "2")], ..Batch::default() };
    let refused = a.log_batch(&actor(), &run, changed).await.expect_err("x was logged by the other replica");
    assert!(refused.to_string().contains("Changing param values is not allowed"), "{refused}");

    let first = new_run(&a, &exp).await;
    let theirs = new_run(&b, &exp).await;
    let second = new_run(&a, &exp).await;
    assert_eq!(a.update_run(&actor(), finish).await.unwrap().status, RunStatus::Finished);
    for id in [&first, &theirs, &second] {
        assert_eq!(b.get_run(id).await.unwrap().info.run_id, *id);
    }
    assert!(a.verify_audit().await.unwrap().is_ok());
    a.close().await.unwrap();
    b.close().await.unwrap();
}
