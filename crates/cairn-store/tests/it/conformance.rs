//! The conformance suite: behaviour every backend must show, written against `dyn Store` only.
//!
//! Each case is a `pub async fn(Arc<dyn Store>)` given a fresh store. A backend runs them all
//! with `conformance_cases!(fixture)`, where `fixture` is an async fn returning the store and a
//! guard that keeps its database alive for the test (see `sqlite.rs`).

use std::collections::HashSet;
use std::sync::Arc;

use cairn_core::Error;
use cairn_core::audit::AuditQuery;
use cairn_core::model::{Actor, Batch, KeyValue, LifecycleStage, Metric, NewExperiment, NewRun, RunStatus, RunUpdate};
use cairn_core::model::{Page, Run, ViewType};
use cairn_core::sampling::{Downsampler, Point, SampledQuery, SampledSeries, StepBuckets};
use cairn_core::search::{parse_experiment_filter, parse_experiment_order_by, parse_run_filter, parse_run_order_by};
use cairn_core::store::{BulkIntervalQuery, ExperimentQuery, HistoryQuery, RunQuery, Store};

/// Generates one `#[tokio::test]` per conformance case for a backend fixture.
macro_rules! conformance_cases {
    ($fixture:path) => {
        $crate::conformance::conformance_cases!(@each $fixture;
            default_experiment_exists,
            experiments_lifecycle,
            experiment_tags,
            deleting_an_experiment_deletes_its_runs,
            run_counts_per_experiment_follow_the_view,
            runs_lifecycle,
            run_names,
            runs_with_a_chosen_id_and_replayed_batches,
            idempotent_answers_are_kept_and_the_first_wins,
            idempotency_claims_are_won_once,
            params_are_immutable,
            run_tags,
            log_batch_is_atomic,
            nan_and_infinity_round_trip,
            latest_metric_rule,
            history_pagination,
            history_order_after_every_write,
            bulk_interval_sampling,
            sampled_history_keeps_spikes,
            sampled_history_ranges_and_small_series,
            sampled_history_nan_and_timestamps,
            sampled_history_several_runs_and_bad_requests,
            sampled_history_matches_a_fold_of_every_point,
            sampled_history_rollups_match_a_plain_scan,
            concurrent_writers,
            audit_log_records_every_mutation,
            audit_queries_filter_and_page_both_ways,
            audit_checkpoints_anchor_incremental_verification,
            sealed_audit_events_read_query_and_verify_as_before,
            failed_requests_leave_no_trace,
            search_runs_filters_orders_and_pages,
            search_experiments_filters_and_pages,
        );
    };
    (@each $fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, _guard) = $fixture().await;
                $crate::conformance::$case(store.clone()).await;
                store.close().await.expect("close");
            }
        )*
    };
}
pub(crate) use conformance_cases;

fn actor() -> Actor {
    Actor("tester".to_owned())
}

fn metric(key: &str, value: f64, timestamp: i64, step: i64) -> Metric {
    Metric { key: key.to_owned(), value, timestamp, step }
}

async fn new_experiment(store: &Arc<dyn Store>, name: &str) -> String {
    store
        .create_experiment(&actor(), NewExperiment { name: name.to_owned(), ..NewExperiment::default() })
        .await
        .expect("create experiment")
}

async fn new_run(store: &Arc<dyn Store>, experiment_id: &str) -> String {
    let new = NewRun {
        experiment_id: experiment_id.to_owned(),
        user_id: "u".into(),
        start_time: Some(1),
        ..NewRun::default()
    };
    store.create_run(&actor(), new).await.expect("create run").info.run_id
}

async fn log(store: &Arc<dyn Store>, run_id: &str, batch: Batch) -> cairn_core::Result<()> {
    store.log_batch(&actor(), run_id, batch).await
}

async fn history(store: &Arc<dyn Store>, run_id: &str, key: &str) -> Vec<Metric> {
    let q = HistoryQuery { run_id: run_id.to_owned(), key: key.to_owned(), max_results: None, offset: 0 };
    store.metric_history(q).await.expect("history").items
}

fn assert_invalid(result: cairn_core::Result<impl std::fmt::Debug>, needle: &str) {
    match result {
        Err(Error::InvalidParameter(m)) => assert!(m.contains(needle), "message {m:?} lacks {needle:?}"),
        other => panic!("expected InvalidParameter containing {needle:?}, got {other:?}"),
    }
}

fn assert_not_found(result: cairn_core::Result<impl std::fmt::Debug>, message: &str) {
    match result {
        Err(Error::NotFound(m)) => assert_eq!(m, message),
        other => panic!("expected NotFound({message:?}), got {other:?}"),
    }
}

async fn assert_verifies(store: &Arc<dyn Store>) {
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_ok(), "audit problems: {:?}", report.problems);
}

pub async fn default_experiment_exists(store: Arc<dyn Store>) {
    let default = store.get_experiment("0").await.expect("default experiment");
    assert_eq!(default.name, "Default");
    assert_eq!(default.lifecycle_stage, LifecycleStage::Active);
    assert!(default.artifact_location.ends_with('0'), "{}", default.artifact_location);
    assert_eq!(store.get_experiment_by_name("Default").await.unwrap().experiment_id, "0");
    assert_verifies(&store).await;
}

pub async fn experiments_lifecycle(store: Arc<dyn Store>) {
    let tags = vec![KeyValue::new("team", "a"), KeyValue::new("team", "b")];
    let new = NewExperiment { name: "exp".into(), artifact_location: None, tags };
    let id = store.create_experiment(&actor(), new).await.unwrap();
    assert_eq!(id, "1", "user experiments are numbered from 1");
    let second = new_experiment(&store, "second").await;
    assert_eq!(second, "2");

    let exp = store.get_experiment(&id).await.unwrap();
    assert_eq!(exp.name, "exp");
    assert!(exp.artifact_location.ends_with("/1"), "{}", exp.artifact_location);
    assert_eq!(exp.tags, vec![KeyValue::new("team", "b")], "the last value of a repeated tag wins");
    assert_eq!(exp.creation_time, exp.last_update_time);
    assert_eq!(store.get_experiment_by_name("exp").await.unwrap().experiment_id, id);

    let custom = NewExperiment { name: "custom".into(), artifact_location: Some("s3://bucket/x".into()), tags: vec![] };
    let custom = store.create_experiment(&actor(), custom).await.unwrap();
    assert_eq!(store.get_experiment(&custom).await.unwrap().artifact_location, "s3://bucket/x");

    let dup = store.create_experiment(&actor(), NewExperiment { name: "exp".into(), ..Default::default() }).await;
    assert!(matches!(dup, Err(Error::AlreadyExists(_))), "{dup:?}");
    assert_invalid(store.create_experiment(&actor(), NewExperiment::default()).await, "Invalid experiment name");

    store.rename_experiment(&actor(), &id, "renamed").await.unwrap();
    let renamed = store.get_experiment(&id).await.unwrap();
    assert_eq!(renamed.name, "renamed");
    assert!(renamed.last_update_time >= exp.last_update_time);
    let clash = store.rename_experiment(&actor(), &id, "second").await;
    assert!(matches!(clash, Err(Error::AlreadyExists(_))), "{clash:?}");
    assert_not_found(store.get_experiment_by_name("exp").await, "Could not find experiment with name 'exp'");

    store.delete_experiment(&actor(), &id).await.unwrap();
    assert_eq!(store.get_experiment(&id).await.unwrap().lifecycle_stage, LifecycleStage::Deleted);
    assert_not_found(store.delete_experiment(&actor(), &id).await, "No Experiment with id=1 exists");
    let rename_deleted = store.rename_experiment(&actor(), &id, "x").await;
    assert!(matches!(rename_deleted, Err(Error::InvalidState(_))), "{rename_deleted:?}");
    store.restore_experiment(&actor(), &id).await.unwrap();
    assert_eq!(store.get_experiment(&id).await.unwrap().lifecycle_stage, LifecycleStage::Active);
    assert_not_found(store.restore_experiment(&actor(), &id).await, "No Experiment with id=1 exists");

    assert_not_found(store.get_experiment("999").await, "No Experiment with id=999 exists");
    assert_invalid(store.get_experiment("abc").await, "must be a valid integer");
    assert_verifies(&store).await;
}

pub async fn experiment_tags(store: Arc<dyn Store>) {
    let id = new_experiment(&store, "tagged").await;
    store.set_experiment_tag(&actor(), &id, KeyValue::new("k", "1")).await.unwrap();
    store.set_experiment_tag(&actor(), &id, KeyValue::new("k", "2")).await.unwrap();
    store.set_experiment_tag(&actor(), &id, KeyValue::new("other", "x")).await.unwrap();
    let tags = store.get_experiment(&id).await.unwrap().tags;
    assert_eq!(tags, vec![KeyValue::new("k", "2"), KeyValue::new("other", "x")]);

    store.delete_experiment_tag(&actor(), &id, "k").await.unwrap();
    assert_eq!(store.get_experiment(&id).await.unwrap().tags, vec![KeyValue::new("other", "x")]);
    assert_not_found(
        store.delete_experiment_tag(&actor(), &id, "k").await,
        &format!("No tag with name: k in experiment with id {id}"),
    );

    store.delete_experiment(&actor(), &id).await.unwrap();
    assert_invalid(
        store.set_experiment_tag(&actor(), &id, KeyValue::new("k", "3")).await,
        "must be in the 'active' state",
    );
    assert_not_found(
        store.set_experiment_tag(&actor(), "77", KeyValue::new("k", "3")).await,
        "No Experiment with id=77 exists",
    );
    assert_verifies(&store).await;
}

pub async fn run_counts_per_experiment_follow_the_view(store: Arc<dyn Store>) {
    let (busy, empty) = (new_experiment(&store, "counted").await, new_experiment(&store, "no runs").await);
    let runs = [new_run(&store, &busy).await, new_run(&store, &busy).await, new_run(&store, &busy).await];
    store.delete_run(&actor(), &runs[0]).await.unwrap();
    let count = |view| {
        let store = store.clone();
        let ids = vec![empty.clone(), busy.clone()];
        async move { store.count_runs(ids, view).await.unwrap() }
    };
    assert_eq!(count(ViewType::ActiveOnly).await, vec![(empty.clone(), 0), (busy.clone(), 2)], "in the order asked");
    assert_eq!(count(ViewType::DeletedOnly).await, vec![(empty.clone(), 0), (busy.clone(), 1)]);
    assert_eq!(count(ViewType::All).await, vec![(empty.clone(), 0), (busy.clone(), 3)]);
    let unknown = store.count_runs(vec!["987654".into()], ViewType::All).await.unwrap_err();
    assert!(matches!(unknown, Error::NotFound(_)), "{unknown:?}");
    assert!(matches!(store.count_runs(vec!["x".into()], ViewType::All).await, Err(Error::InvalidParameter(_))));
}

pub async fn deleting_an_experiment_deletes_its_runs(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "cascade").await;
    let a = new_run(&store, &exp).await;
    let b = new_run(&store, &exp).await;
    store.delete_experiment(&actor(), &exp).await.unwrap();
    for run in [&a, &b] {
        assert_eq!(store.get_run(run).await.unwrap().info.lifecycle_stage, LifecycleStage::Deleted);
    }
    let create = NewRun { experiment_id: exp.clone(), ..NewRun::default() };
    assert_invalid(
        store.create_run(&actor(), create).await,
        &format!("The experiment {exp} must be in the 'active' state"),
    );
    store.restore_experiment(&actor(), &exp).await.unwrap();
    for run in [&a, &b] {
        assert_eq!(store.get_run(run).await.unwrap().info.lifecycle_stage, LifecycleStage::Active);
    }
    assert_verifies(&store).await;
}

pub async fn runs_lifecycle(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "runs").await;
    let new = NewRun {
        run_id: None,
        experiment_id: exp.clone(),
        user_id: "alice".into(),
        run_name: Some("first".into()),
        start_time: Some(1234),
        tags: vec![KeyValue::new("source", "test")],
    };
    let run = store.create_run(&actor(), new).await.unwrap();
    let id = run.info.run_id.clone();
    assert_eq!(id.len(), 32);
    assert_eq!(run.info.run_name, "first");
    assert_eq!(run.info.status, RunStatus::Running);
    assert_eq!(run.info.start_time, Some(1234));
    assert_eq!(run.info.user_id, "alice");
    let location = store.get_experiment(&exp).await.unwrap().artifact_location;
    assert_eq!(run.info.artifact_uri, format!("{location}/{id}/artifacts"));
    assert_eq!(run.tags, vec![KeyValue::new("mlflow.runName", "first"), KeyValue::new("source", "test")]);
    assert_eq!(store.get_run(&id).await.unwrap(), run);

    let update = RunUpdate {
        run_id: id.clone(),
        status: Some(RunStatus::Finished),
        end_time: Some(5678),
        run_name: Some("better".into()),
    };
    let info = store.update_run(&actor(), update).await.unwrap();
    assert_eq!((info.status, info.end_time, info.run_name.as_str()), (RunStatus::Finished, Some(5678), "better"));
    let fetched = store.get_run(&id).await.unwrap();
    assert_eq!(fetched.info, info);
    assert!(fetched.tags.contains(&KeyValue::new("mlflow.runName", "better")));

    store.delete_run(&actor(), &id).await.unwrap();
    assert_eq!(store.get_run(&id).await.unwrap().info.lifecycle_stage, LifecycleStage::Deleted);
    let message = format!("The run {id} must be in the 'active' state. Current state is deleted.");
    assert_invalid(
        log(&store, &id, Batch { params: vec![KeyValue::new("p", "1")], ..Batch::default() }).await,
        &message,
    );
    assert_invalid(
        store.update_run(&actor(), RunUpdate { run_id: id.clone(), ..RunUpdate::default() }).await,
        &message,
    );
    store.restore_run(&actor(), &id).await.unwrap();
    assert_eq!(store.get_run(&id).await.unwrap().info.lifecycle_stage, LifecycleStage::Active);

    assert_not_found(store.get_run("nope").await, "Run with id=nope not found");
    assert_not_found(store.delete_run(&actor(), "nope").await, "Run with id=nope not found");
    let missing_exp = NewRun { experiment_id: "404".into(), ..NewRun::default() };
    assert_not_found(store.create_run(&actor(), missing_exp).await, "No Experiment with id=404 exists");
    assert_verifies(&store).await;
}

pub async fn run_names(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "names").await;
    let random = store.create_run(&actor(), NewRun { experiment_id: exp.clone(), ..NewRun::default() }).await.unwrap();
    assert_eq!(random.info.run_name.split('-').count(), 3, "{}", random.info.run_name);
    assert!(random.tags.contains(&KeyValue::new("mlflow.runName", random.info.run_name.clone())));

    let by_tag = NewRun {
        experiment_id: exp.clone(),
        tags: vec![KeyValue::new("mlflow.runName", "tagged")],
        ..NewRun::default()
    };
    assert_eq!(store.create_run(&actor(), by_tag).await.unwrap().info.run_name, "tagged");

    let both = NewRun {
        experiment_id: exp.clone(),
        run_name: Some("a".into()),
        tags: vec![KeyValue::new("mlflow.runName", "b")],
        ..NewRun::default()
    };
    assert_invalid(store.create_run(&actor(), both).await, "Both 'run_name' argument and 'mlflow.runName' tag");

    // Setting the tag renames the run.
    let run = random.info.run_id;
    log(&store, &run, Batch { tags: vec![KeyValue::new("mlflow.runName", "renamed")], ..Batch::default() })
        .await
        .unwrap();
    assert_eq!(store.get_run(&run).await.unwrap().info.run_name, "renamed");
    assert_verifies(&store).await;
}

/// What an offline client's sync relies on: a run created under the id the client chose, and a
/// batch sent twice (a replay after a lost answer) storing its points once.
pub async fn runs_with_a_chosen_id_and_replayed_batches(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "offline").await;
    let id = "0123456789abcdef0123456789abcdef";
    let chosen = NewRun { run_id: Some(id.into()), experiment_id: exp.clone(), ..NewRun::default() };
    let run = store.create_run(&actor(), chosen.clone()).await.unwrap();
    assert_eq!(run.info.run_id, id);
    assert!(run.info.artifact_uri.contains(id), "{}", run.info.artifact_uri);
    assert_eq!(store.get_run(id).await.unwrap().info.experiment_id.to_string(), exp);
    assert!(matches!(store.create_run(&actor(), chosen).await, Err(Error::AlreadyExists(_))));
    for bad in ["short", "0123456789ABCDEF0123456789ABCDEF", "../../../../../../../../etc/passwd"] {
        let new = NewRun { run_id: Some(bad.into()), experiment_id: exp.clone(), ..NewRun::default() };
        assert_invalid(store.create_run(&actor(), new).await, "expected 32 lowercase hexadecimal digits");
    }

    let batch = Batch {
        metrics: vec![metric("loss", 0.5, 1000, 0), metric("loss", 0.25, 1001, 1)],
        params: vec![KeyValue::new("lr", "0.1")],
        tags: vec![KeyValue::new("t", "v")],
    };
    log(&store, id, batch.clone()).await.unwrap();
    log(&store, id, batch).await.unwrap();
    assert_eq!(history(&store, id, "loss").await.len(), 2);
    assert_verifies(&store).await;
}

/// The answers recorded for Idempotency-Keys: found by key, the first answer kept, and no
/// audit event written for them (they are request bookkeeping).
pub async fn idempotent_answers_are_kept_and_the_first_wins(store: Arc<dyn Store>) {
    use cairn_core::idempotency::IdempotentAnswer;
    let answer = |body: &str| IdempotentAnswer {
        request_digest: "d1".into(),
        status: 200,
        content_type: "application/json".into(),
        body: body.into(),
    };
    assert_eq!(store.idempotent_answer("k1").await.unwrap(), None);
    let events = store.audit_events(0, 10_000).await.unwrap().len();
    store.record_idempotent_answer("k1", answer(r#"{"run":{"é":1}}"#)).await.unwrap();
    store.record_idempotent_answer("k1", answer("{}")).await.unwrap();
    assert_eq!(store.idempotent_answer("k1").await.unwrap(), Some(answer(r#"{"run":{"é":1}}"#)));
    assert_eq!(store.idempotent_answer("k2").await.unwrap(), None);
    assert_eq!(store.audit_events(0, 10_000).await.unwrap().len(), events);
    assert_verifies(&store).await;
}

/// Claiming an Idempotency-Key: of many concurrent claims exactly one wins; the others see it
/// in progress until its answer is recorded, then get that answer; a released claim (a failed
/// write) can be claimed again.
pub async fn idempotency_claims_are_won_once(store: Arc<dyn Store>) {
    use cairn_core::idempotency::{Claim, IdempotentAnswer};
    const CONTENDERS: usize = 16;
    let mut handles = Vec::new();
    for _ in 0..CONTENDERS {
        let store = store.clone();
        handles.push(tokio::spawn(async move { store.claim_idempotency_key("race", "d1").await.unwrap() }));
    }
    let mut claims = Vec::new();
    for h in handles {
        claims.push(h.await.expect("task"));
    }
    assert_eq!(claims.iter().filter(|c| **c == Claim::Claimed).count(), 1, "{claims:?}");
    let in_progress = Claim::InProgress { request_digest: "d1".into() };
    assert_eq!(claims.iter().filter(|c| **c == in_progress).count(), CONTENDERS - 1, "{claims:?}");
    // A claim is no answer.
    assert_eq!(store.idempotent_answer("race").await.unwrap(), None);

    let answer = IdempotentAnswer {
        request_digest: "d1".into(),
        status: 200,
        content_type: "application/json".into(),
        body: "{}".into(),
    };
    store.record_idempotent_answer("race", answer.clone()).await.unwrap();
    assert_eq!(store.claim_idempotency_key("race", "d1").await.unwrap(), Claim::Answered(answer.clone()));
    // Releasing leaves an answered key alone.
    store.release_idempotency_key("race").await.unwrap();
    assert_eq!(store.idempotent_answer("race").await.unwrap(), Some(answer));

    assert_eq!(store.claim_idempotency_key("failing", "d2").await.unwrap(), Claim::Claimed);
    store.release_idempotency_key("failing").await.unwrap();
    assert_eq!(store.claim_idempotency_key("failing", "d3").await.unwrap(), Claim::Claimed);
    assert_eq!(
        store.claim_idempotency_key("failing", "d2").await.unwrap(),
        Claim::InProgress { request_digest: "d3".into() }
    );
    assert_verifies(&store).await;
}

pub async fn params_are_immutable(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "params").await;
    let run = new_run(&store, &exp).await;
    let p = |v: &str| Batch { params: vec![KeyValue::new("lr", v)], ..Batch::default() };
    log(&store, &run, p("0.1")).await.unwrap();
    log(&store, &run, p("0.1")).await.expect("re-logging the same value is allowed");
    assert_invalid(log(&store, &run, p("0.2")).await, "Changing param values is not allowed");
    assert_eq!(store.get_run(&run).await.unwrap().params, vec![KeyValue::new("lr", "0.1")]);
    let dup = Batch { params: vec![KeyValue::new("a", "1"), KeyValue::new("a", "1")], ..Batch::default() };
    assert_invalid(log(&store, &run, dup).await, "Duplicate parameter keys");
    assert_verifies(&store).await;
}

pub async fn run_tags(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "tags").await;
    let run = new_run(&store, &exp).await;
    let t = |k: &str, v: &str| Batch { tags: vec![KeyValue::new(k, v)], ..Batch::default() };
    log(&store, &run, t("k", "1")).await.unwrap();
    log(&store, &run, t("k", "2")).await.unwrap();
    let tags = store.get_run(&run).await.unwrap().tags;
    assert!(tags.contains(&KeyValue::new("k", "2")) && !tags.contains(&KeyValue::new("k", "1")), "{tags:?}");
    store.delete_tag(&actor(), &run, "k").await.unwrap();
    assert!(!store.get_run(&run).await.unwrap().tags.iter().any(|t| t.key == "k"));
    assert_not_found(store.delete_tag(&actor(), &run, "k").await, &format!("No tag with name: k in run with id {run}"));
    assert_verifies(&store).await;
}

pub async fn log_batch_is_atomic(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "atomic").await;
    let run = new_run(&store, &exp).await;
    log(&store, &run, Batch { params: vec![KeyValue::new("fixed", "1")], ..Batch::default() }).await.unwrap();
    let events_before = store.audit_events(0, 10_000).await.unwrap().len();

    // A conflicting param found only inside the transaction: nothing of the batch stays.
    let bad = Batch {
        metrics: vec![metric("loss", 1.0, 10, 0), metric("loss", 0.5, 11, 1)],
        params: vec![KeyValue::new("new", "x"), KeyValue::new("fixed", "2")],
        tags: vec![KeyValue::new("t", "v")],
    };
    assert_invalid(log(&store, &run, bad).await, "Changing param values is not allowed");
    // An invalid item found by validation: nothing of the batch stays either.
    let invalid =
        Batch { metrics: vec![metric("loss", 1.0, 10, 0)], tags: vec![KeyValue::new("", "v")], ..Batch::default() };
    assert!(log(&store, &run, invalid).await.is_err());

    let fetched = store.get_run(&run).await.unwrap();
    assert_eq!(fetched.params, vec![KeyValue::new("fixed", "1")]);
    assert!(fetched.metrics.is_empty());
    assert!(!fetched.tags.iter().any(|t| t.key == "t"));
    assert!(history(&store, &run, "loss").await.is_empty());
    assert_eq!(store.audit_events(0, 10_000).await.unwrap().len(), events_before);
    assert_verifies(&store).await;
}

pub async fn nan_and_infinity_round_trip(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "floats").await;
    let run = new_run(&store, &exp).await;
    let batch = Batch {
        metrics: vec![
            metric("m", f64::NAN, 1, 0),
            metric("m", f64::INFINITY, 2, 1),
            metric("m", f64::NEG_INFINITY, 3, 2),
            metric("m", -0.5, 4, 3),
        ],
        ..Batch::default()
    };
    log(&store, &run, batch).await.unwrap();
    let values: Vec<f64> = history(&store, &run, "m").await.iter().map(|m| m.value).collect();
    assert_eq!(values.len(), 4);
    assert!(values[0].is_nan());
    assert_eq!(&values[1..], &[f64::INFINITY, f64::NEG_INFINITY, -0.5]);
    // Logging the NaN point again is a duplicate, not a new row.
    log(&store, &run, Batch { metrics: vec![metric("m", f64::NAN, 1, 0)], ..Batch::default() }).await.unwrap();
    assert_eq!(history(&store, &run, "m").await.len(), 4);
    log(&store, &run, Batch { metrics: vec![metric("last", f64::NAN, 1, 9)], ..Batch::default() }).await.unwrap();
    let latest = store.get_run(&run).await.unwrap().metrics;
    assert!(latest.iter().find(|m| m.key == "last").unwrap().value.is_nan());
    assert_eq!(latest.iter().find(|m| m.key == "m").unwrap().value, -0.5);
    assert_verifies(&store).await;
}

pub async fn latest_metric_rule(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "latest").await;
    let run = new_run(&store, &exp).await;
    let latest = || {
        let store = store.clone();
        let run = run.clone();
        async move { store.get_run(&run).await.unwrap().metrics.into_iter().find(|m| m.key == "acc").unwrap() }
    };
    let one = |m: Metric| Batch { metrics: vec![m], ..Batch::default() };

    log(&store, &run, one(metric("acc", 5.0, 10, 1))).await.unwrap();
    // A lower step loses even with a later timestamp.
    log(&store, &run, one(metric("acc", 9.0, 20, 0))).await.unwrap();
    assert_eq!(latest().await, metric("acc", 5.0, 10, 1));
    // Same step and timestamp: the higher value wins.
    log(&store, &run, one(metric("acc", 7.0, 10, 1))).await.unwrap();
    assert_eq!(latest().await.value, 7.0);
    // Same step, earlier timestamp: loses.
    log(&store, &run, one(metric("acc", 100.0, 5, 1))).await.unwrap();
    assert_eq!(latest().await.value, 7.0);
    // Within one batch the best point wins, wherever it is.
    let batch = Batch { metrics: vec![metric("acc", 1.0, 30, 3), metric("acc", 2.0, 30, 2)], ..Batch::default() };
    log(&store, &run, batch).await.unwrap();
    assert_eq!(latest().await, metric("acc", 1.0, 30, 3));
    // NaN compares as 0: a later NaN wins, then 0.5 at the same step and time beats it.
    log(&store, &run, one(metric("acc", f64::NAN, 40, 4))).await.unwrap();
    assert!(latest().await.value.is_nan());
    log(&store, &run, one(metric("acc", 0.5, 40, 4))).await.unwrap();
    assert_eq!(latest().await.value, 0.5);
}

/// Reads a whole history in pages of seven.
async fn paged_history(store: &Arc<dyn Store>, run_id: &str, key: &str) -> Vec<(i64, i64, f64)> {
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let q = HistoryQuery { run_id: run_id.to_owned(), key: key.to_owned(), max_results: Some(7), offset };
        let page = store.metric_history(q).await.unwrap();
        seen.extend(page.items.iter().map(|m| (m.timestamp, m.step, m.value)));
        match page.next_offset {
            Some(next) => offset = next,
            None => return seen,
        }
    }
}

/// The store may read an in-order history straight off its clustering (by step) instead of
/// sorting by time; after each of these writes the pages must still be in MLflow's order.
pub async fn history_order_after_every_write(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "history-order").await;
    let steps = |range: std::ops::Range<i64>| -> Vec<(i64, i64)> { range.map(|i| (i, 1000 + 10 * i)).collect() };
    // Each case is a sequence of batches of (step, timestamp) points.
    type Batches = Vec<Vec<(i64, i64)>>;
    let cases: Vec<(&str, Batches)> = vec![
        // In order, then appended in order: nothing needs sorting.
        ("appended", vec![steps(0..20), steps(20..30)]),
        // A later step logged before everything else comes first.
        ("late step, early time", vec![steps(0..20), vec![(50, 500)]]),
        // Each batch is in order on its own, but the second starts before the stored latest.
        ("overlapping batches", vec![steps(0..20), vec![(25, 1005), (26, 1006)]]),
        // The same step as the latest, at an earlier time than the points before it.
        ("same step, earlier time", vec![steps(0..20), vec![(19, 1001)]]),
        // Out of order within one batch.
        ("within a batch", vec![vec![(0, 100), (1, 300), (2, 200), (3, 400)]]),
        // Sent backwards, but in order once sorted.
        ("reversed arrival", vec![steps(0..20).into_iter().rev().collect()]),
        // A point in the middle of the steps and the times keeps the order.
        ("filled gap", vec![vec![(0, 100), (2, 300)], vec![(1, 200)], vec![(3, 400)]]),
    ];
    for (name, batches) in cases {
        let run = new_run(&store, &exp).await;
        let mut logged = Vec::new();
        for (i, batch) in batches.into_iter().enumerate() {
            let metrics: Vec<Metric> =
                batch.iter().map(|&(step, ts)| metric("m", (step * 7 % 5) as f64, ts, step)).collect();
            logged.extend(metrics.iter().map(|m| (m.timestamp, m.step, m.value)));
            log(&store, &run, Batch { metrics, ..Batch::default() }).await.unwrap();
            let mut expected = logged.clone();
            expected.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
            assert_eq!(paged_history(&store, &run, "m").await, expected, "{name}, after batch {i}");
        }
    }
}

pub async fn history_pagination(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "history").await;
    let run = new_run(&store, &exp).await;
    // Logged out of order; history comes back ordered by timestamp, then step.
    let metrics: Vec<Metric> = (0..25).rev().map(|i| metric("loss", i as f64, 1000 + i, i)).collect();
    log(&store, &run, Batch { metrics: metrics.clone(), ..Batch::default() }).await.unwrap();
    log(&store, &run, Batch { metrics: metrics[..5].to_vec(), ..Batch::default() }).await.unwrap();

    let mut seen = Vec::new();
    let mut offset = 0;
    let mut offsets = Vec::new();
    loop {
        let q = HistoryQuery { run_id: run.clone(), key: "loss".into(), max_results: Some(10), offset };
        let page = store.metric_history(q).await.unwrap();
        seen.extend(page.items);
        offsets.push(page.next_offset);
        match page.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(offsets, vec![Some(10), Some(20), None]);
    let steps: Vec<i64> = seen.iter().map(|m| m.step).collect();
    assert_eq!(steps, (0..25).collect::<Vec<_>>(), "duplicates are stored once, order is by time");
    assert!(history(&store, &run, "unknown").await.is_empty());
    assert!(history(&store, "no-such-run", "loss").await.is_empty());
}

pub async fn bulk_interval_sampling(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "bulk").await;
    let a = new_run(&store, &exp).await;
    let b = new_run(&store, &exp).await;
    for run in [&a, &b] {
        let metrics = (0..100).map(|i| metric("m", i as f64, i, i)).collect();
        log(&store, run, Batch { metrics, ..Batch::default() }).await.unwrap();
    }
    let query = |runs: Vec<String>, max: u64, range: Option<(i64, i64)>| BulkIntervalQuery {
        run_ids: runs,
        key: "m".into(),
        start_step: range.map(|r| r.0),
        end_step: range.map(|r| r.1),
        max_results: max,
    };
    let points =
        store.metric_history_bulk_interval(query(vec![a.clone(), b.clone(), "ghost".into()], 10, None)).await.unwrap();
    let steps_of =
        |run: &str| -> Vec<i64> { points.iter().filter(|p| p.run_id == run).map(|p| p.metric.step).collect() };
    // NTILE(10) over 100 rows starts buckets at 0, 10, …, 90; the last is replaced by step 99.
    assert_eq!(steps_of(&a), vec![0, 10, 20, 30, 40, 50, 60, 70, 80, 99]);
    assert_eq!(steps_of(&b), steps_of(&a));
    assert_eq!(points.len(), 20);

    let ranged = store.metric_history_bulk_interval(query(vec![a.clone()], 100, Some((10, 14)))).await.unwrap();
    assert_eq!(ranged.iter().map(|p| p.metric.step).collect::<Vec<_>>(), vec![10, 11, 12, 13, 14]);
    let last = store.metric_history_bulk_interval(query(vec![a.clone()], 1, None)).await.unwrap();
    assert_eq!(last.iter().map(|p| p.metric.step).collect::<Vec<_>>(), vec![99]);
    assert_invalid(
        store.metric_history_bulk_interval(query(vec![a.clone()], 10, Some((5, 1)))).await,
        "end_step must be greater",
    );
}

fn sampled_query(runs: &[&str], key: &str, points: u64, range: (Option<i64>, Option<i64>)) -> SampledQuery {
    SampledQuery {
        run_ids: runs.iter().map(|r| (*r).to_owned()).collect(),
        key: key.to_owned(),
        points,
        start_step: range.0,
        end_step: range.1,
    }
}

async fn sampled_one(store: &Arc<dyn Store>, q: SampledQuery) -> SampledSeries {
    let mut series = store.sampled_metrics(q).await.expect("sampled history");
    assert_eq!(series.len(), 1);
    series.pop().unwrap()
}

/// Logs `points` in batches of at most 1000, as clients do.
async fn log_points(store: &Arc<dyn Store>, run: &str, points: Vec<Metric>) {
    for chunk in points.chunks(1000) {
        log(store, run, Batch { metrics: chunk.to_vec(), ..Batch::default() }).await.unwrap();
    }
}

pub async fn sampled_history_keeps_spikes(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "sampled-spikes").await;
    let run = new_run(&store, &exp).await;
    // 10,000 steps of a smooth loss with one upward and one downward spike, logged out of order.
    let value = |step: i64| match step {
        4321 => 1e6,
        8765 => -1e6,
        s => 1.0 / (s + 1) as f64,
    };
    let mut points: Vec<Metric> = (0..10_000).map(|s| metric("loss", value(s), 1_000 + s, s)).collect();
    points.reverse();
    log_points(&store, &run, points).await;

    let s = sampled_one(&store, sampled_query(&[&run], "loss", 100, (None, None))).await;
    assert_eq!((s.run_id.as_str(), s.key.as_str(), s.total, s.sampled), (run.as_str(), "loss", 10_000, true));
    // 100 buckets of 100 steps, each reported by its last step.
    assert_eq!(s.step, (0..100).map(|b| b * 100 + 99).collect::<Vec<i64>>());
    assert_eq!(s.timestamp, s.step.iter().map(|st| 1_000 + st).collect::<Vec<i64>>());
    assert_eq!(s.value, s.step.iter().map(|st| value(*st)).collect::<Vec<f64>>());
    for (b, (min, max)) in s.min.iter().zip(&s.max).enumerate() {
        let steps = (b as i64 * 100)..(b as i64 * 100 + 100);
        let expect_min = steps.clone().map(value).fold(f64::INFINITY, f64::min);
        let expect_max = steps.map(value).fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((*min, *max), (expect_min, expect_max), "bucket {b}");
    }
    assert_eq!(s.max[43], 1e6, "the upward spike survives");
    assert_eq!(s.min[87], -1e6, "the downward spike survives");
    assert_eq!(s.step.len(), s.value.len());
    assert_eq!(s.step.len(), s.min.len());
    assert_eq!(s.step.len(), s.max.len());
}

pub async fn sampled_history_ranges_and_small_series(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "sampled-ranges").await;
    let run = new_run(&store, &exp).await;
    // Steps 0, 2, 4, …, 198: 100 points.
    log_points(&store, &run, (0..100).map(|i| metric("acc", i as f64, 50 + i, i * 2)).collect()).await;

    // Ten buckets over steps 40..=79 (width 4): 20 points in range, so bucketed.
    let s = sampled_one(&store, sampled_query(&[&run], "acc", 10, (Some(40), Some(79)))).await;
    assert_eq!((s.total, s.sampled), (20, true));
    assert_eq!(s.step, (0..10).map(|b| 40 + b * 4 + 2).collect::<Vec<i64>>());
    assert_eq!(s.min, (0..10).map(|b| (20 + b * 2) as f64).collect::<Vec<f64>>());
    assert_eq!(s.max, (0..10).map(|b| (21 + b * 2) as f64).collect::<Vec<f64>>());
    assert_eq!(s.value, s.max);

    // The same range with room for every point comes back raw.
    let raw = sampled_one(&store, sampled_query(&[&run], "acc", 20, (Some(40), Some(79)))).await;
    assert_eq!((raw.total, raw.sampled), (20, false));
    assert_eq!(raw.step, (20..40).map(|i| i * 2).collect::<Vec<i64>>());
    assert_eq!(raw.timestamp, (20..40).map(|i| 50 + i).collect::<Vec<i64>>());
    assert_eq!(raw.value, (20..40).map(|i| i as f64).collect::<Vec<f64>>());
    assert_eq!((&raw.min, &raw.max), (&raw.value, &raw.value));

    // One bound: the other is the series' own end.
    let tail = sampled_one(&store, sampled_query(&[&run], "acc", 1000, (Some(190), None))).await;
    assert_eq!(tail.step, vec![190, 192, 194, 196, 198]);
    let head = sampled_one(&store, sampled_query(&[&run], "acc", 1, (None, Some(9)))).await;
    assert_eq!(
        (head.total, head.sampled, &head.step, &head.min, &head.max),
        (5, true, &vec![8], &vec![0.0], &vec![4.0])
    );
    // A single point and a single bucket.
    let one = sampled_one(&store, sampled_query(&[&run], "acc", 1, (Some(10), Some(10)))).await;
    assert_eq!((one.total, one.sampled, &one.step), (1, false, &vec![10]));
    // A range holding nothing, and a range past the series.
    for range in [(Some(41), Some(41)), (Some(1000), Some(2000)), (Some(-5), Some(-1))] {
        let none = sampled_one(&store, sampled_query(&[&run], "acc", 10, range)).await;
        assert_eq!(none, SampledSeries::empty(&run, "acc"), "{range:?}");
    }
    // The whole series into 1000 buckets is raw; into 50 it is bucketed two points each.
    let whole = sampled_one(&store, sampled_query(&[&run], "acc", 1000, (None, None))).await;
    assert_eq!((whole.total, whole.sampled, whole.step.len()), (100, false, 100));
    let halves = sampled_one(&store, sampled_query(&[&run], "acc", 50, (None, None))).await;
    assert_eq!((halves.total, halves.sampled, halves.step.len()), (100, true, 50));
    assert_eq!(halves.step, (0..50).map(|b| b * 4 + 2).collect::<Vec<i64>>());
}

pub async fn sampled_history_nan_and_timestamps(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "sampled-nan").await;
    let run = new_run(&store, &exp).await;
    // Steps 0..=9 in buckets of 5. Bucket 0 ends in NaN beside a spike; bucket 1 holds only
    // NaN and infinities. Step 3 is logged twice, the later timestamp first.
    let points = vec![
        metric("m", 1.0, 10, 0),
        metric("m", 50.0, 5, 1),
        metric("m", f64::NAN, 11, 2),
        metric("m", -2.0, 99, 3),
        metric("m", 7.0, 12, 3),
        metric("m", f64::NAN, 1, 4),
        metric("m", f64::NAN, 13, 5),
        metric("m", f64::INFINITY, 14, 6),
        metric("m", f64::NEG_INFINITY, 15, 7),
        metric("m", f64::NAN, 16, 9),
        metric("m", f64::NAN, 3, 9),
    ];
    log(&store, &run, Batch { metrics: points, ..Batch::default() }).await.unwrap();
    let s = sampled_one(&store, sampled_query(&[&run], "m", 2, (None, None))).await;
    assert_eq!((s.total, s.sampled), (11, true));
    // Bucket 0's last point is step 4 (an earlier timestamp than step 3's: steps come first).
    assert_eq!((s.step[0], s.timestamp[0]), (4, 1));
    assert!(s.value[0].is_nan());
    assert_eq!((s.min[0], s.max[0]), (-2.0, 50.0), "NaN does not poison the extremes");
    // Bucket 1: of step 9's two points the later timestamp wins; infinities are its extremes.
    assert_eq!((s.step[1], s.timestamp[1]), (9, 16));
    assert!(s.value[1].is_nan());
    assert_eq!((s.min[1], s.max[1]), (f64::NEG_INFINITY, f64::INFINITY));

    // A bucket of nothing but NaN has NaN extremes.
    let nan = sampled_one(&store, sampled_query(&[&run], "m", 1, (Some(9), Some(9)))).await;
    assert_eq!((nan.total, nan.sampled), (2, true));
    assert_eq!((nan.step[0], nan.timestamp[0]), (9, 16));
    assert!(nan.value[0].is_nan() && nan.min[0].is_nan() && nan.max[0].is_nan());

    // Raw, points are ordered by step then timestamp, not by arrival or time alone.
    let raw = sampled_one(&store, sampled_query(&[&run], "m", 100, (Some(3), Some(3)))).await;
    assert!(!raw.sampled);
    assert_eq!((raw.timestamp, raw.value), (vec![12, 99], vec![7.0, -2.0]));
}

/// A series with repeated steps, NaN, infinities and gaps, asked at several sizes and ranges:
/// whatever the store does inside (row by row, or summarising buckets in SQL), each answer is
/// the core's fold of every stored point in range.
pub async fn sampled_history_matches_a_fold_of_every_point(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "sampled-fold").await;
    let run = new_run(&store, &exp).await;
    let mut points = Vec::new();
    for step in (0..3000_i64).filter(|s| s % 11 != 5) {
        let value = match step {
            s if s % 97 == 0 => f64::NAN,
            s if s % 500 == 3 => f64::INFINITY,
            s if s % 777 == 1 => f64::NEG_INFINITY,
            s => ((s * 7919) % 1000) as f64 / 10.0 - 50.0,
        };
        points.push(metric("m", value, 1_000 + step, step));
        // Every 13th step is logged twice, once earlier and once later than its first point.
        if step % 13 == 0 {
            points.push(metric("m", value + 1.0, 2_000 + step, step));
            points.push(metric("m", f64::NAN, 500 + step, step));
        }
    }
    log_points(&store, &run, points.clone()).await;
    for n in [1_u64, 7, 100, 999, 3000, 10_000] {
        for range in [(None, None), (Some(100), Some(2100)), (Some(2990), None), (None, Some(40))] {
            assert_sampled_is_a_fold(&store, &run, "m", &points, n, range).await;
        }
    }
}

/// Asserts that the store's sampled history of `key` in `run` is the core's fold of `points`
/// (every point the run holds for the key, each stored point once) in `range`: the answer a
/// plain scan of the rows gives, whatever the store reads instead.
pub async fn assert_sampled_is_a_fold(
    store: &Arc<dyn Store>,
    run: &str,
    key: &str,
    points: &[Metric],
    n: u64,
    range: (Option<i64>, Option<i64>),
) {
    let bits = |s: &SampledSeries| {
        let norm = |v: &Vec<f64>| {
            v.iter().map(|x| if x.is_nan() { f64::NAN.to_bits() } else { x.to_bits() }).collect::<Vec<_>>()
        };
        (s.total, s.sampled, s.step.clone(), s.timestamp.clone(), norm(&s.value), norm(&s.min), norm(&s.max))
    };
    let got = sampled_one(store, sampled_query(&[run], key, n, range)).await;
    let inside: Vec<&Metric> = points
        .iter()
        .filter(|p| range.0.is_none_or(|lo| p.step >= lo) && range.1.is_none_or(|hi| p.step <= hi))
        .collect();
    if inside.is_empty() {
        assert_eq!(got, SampledSeries::empty(run, key), "{n} buckets over {range:?}");
        return;
    }
    let lo = range.0.unwrap_or_else(|| inside.iter().map(|p| p.step).min().unwrap());
    let hi = range.1.unwrap_or_else(|| inside.iter().map(|p| p.step).max().unwrap());
    let mut fold = Downsampler::new(StepBuckets::new(lo, hi, n), n);
    for p in &inside {
        fold.push(Point { step: p.step, timestamp: p.timestamp, value: p.value });
    }
    let want = fold.finish(run, key);
    assert_eq!(bits(&got), bits(&want), "{n} buckets over {range:?}");
}

/// A small deterministic generator (64-bit LCG), so that a failure can be replayed.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random series for the rollup cases: about `len` distinct points over steps from -3,000
/// on, some steps repeated with other timestamps, gaps, NaN and infinities, returned in a
/// shuffled order. No two points are exact duplicates.
pub fn random_series(rng: &mut Lcg, key: &str, len: usize) -> Vec<Metric> {
    let mut seen = HashSet::new();
    let mut points = Vec::with_capacity(len);
    let mut step = -3000_i64;
    while points.len() < len {
        // Mostly consecutive steps, sometimes a gap of up to 300 (blocks left empty or cut).
        step += if rng.below(50) == 0 { 1 + rng.below(300) as i64 } else { 1 };
        let repeats = if rng.below(20) == 0 { 1 + rng.below(3) } else { 1 };
        for _ in 0..repeats {
            let value = match rng.below(100) {
                0..=2 => f64::NAN,
                3 => f64::INFINITY,
                4 => f64::NEG_INFINITY,
                5 => 1e12 * (rng.below(2) as f64 * 2.0 - 1.0),
                _ => rng.below(1_000_000) as f64 / 1000.0 - 500.0,
            };
            let timestamp = 1_000_000 + step * 10 + rng.below(5) as i64;
            let bits = if value.is_nan() { f64::NAN.to_bits() } else { value.to_bits() };
            if seen.insert((step, timestamp, bits)) {
                points.push(metric(key, value, timestamp, step));
            }
        }
    }
    for i in (1..points.len()).rev() {
        points.swap(i, rng.below(i as u64 + 1) as usize);
    }
    points
}

/// The rollup (`metric_blocks`) path against a plain fold of every point: a random series
/// written in many batches of random sizes and order, parts of it sent again (exact
/// duplicates, which are stored once and must be counted once), then asked at bucket counts
/// and ranges whose edges cut blocks, fall on block boundaries, go negative, or cover
/// buckets narrower than a block. Also after more points land in blocks already rolled up.
pub async fn sampled_history_rollups_match_a_plain_scan(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "sampled-rollups").await;
    let run = new_run(&store, &exp).await;
    let mut rng = Lcg(0x5eed_0011);
    let points = random_series(&mut rng, "r", 12_000);
    let (first, second) = points.split_at(9_000);
    let mut sent = 0;
    while sent < first.len() {
        let size = (1 + rng.below(700) as usize).min(first.len() - sent);
        let mut batch = first[sent..sent + size].to_vec();
        // Every fourth batch repeats some points already stored (and one within itself).
        if rng.below(4) == 0 && sent > 0 {
            let again = rng.below(sent as u64) as usize;
            batch.push(first[again].clone());
            batch.push(batch[0].clone());
        }
        log(&store, &run, Batch { metrics: batch, ..Batch::default() }).await.unwrap();
        sent += size;
    }
    let steps: Vec<i64> = first.iter().map(|p| p.step).collect();
    let (lo, hi) = (*steps.iter().min().unwrap(), *steps.iter().max().unwrap());
    let ranges = |rng: &mut Lcg| {
        let mut ranges = vec![
            (None, None),
            (Some(-64), Some(63)),
            (Some(-1), None),
            (None, Some(0)),
            (Some(lo - 100), Some(hi + 100)),
        ];
        for _ in 0..6 {
            let a = lo + rng.below((hi - lo) as u64) as i64;
            let b = a + rng.below((hi - a) as u64 + 1) as i64;
            ranges.push((Some(a), Some(b)));
        }
        ranges
    };
    for range in ranges(&mut rng) {
        for n in [1_u64, 3, 10, 64, 100, 257, 1000] {
            assert_sampled_is_a_fold(&store, &run, "r", first, n, range).await;
        }
    }
    // The rest, in one batch with every earlier point sent again: blocks already rolled up
    // grow, and the duplicates add nothing.
    let mut rest = second.to_vec();
    rest.extend(first.iter().take(500).cloned());
    log_points(&store, &run, rest).await;
    for range in ranges(&mut rng) {
        for n in [1_u64, 7, 100, 1000] {
            assert_sampled_is_a_fold(&store, &run, "r", &points, n, range).await;
        }
    }
    // A series that is all NaN in places: whole blocks of NaN have no extremes.
    let nan_run = new_run(&store, &exp).await;
    let nan: Vec<Metric> = (0..1000)
        .map(|s| metric("r", if (128..320).contains(&s) || s % 7 == 0 { f64::NAN } else { s as f64 }, s, s))
        .collect();
    log_points(&store, &nan_run, nan.clone()).await;
    for range in [(None, None), (Some(100), Some(400)), (Some(128), Some(319))] {
        for n in [1_u64, 3, 10, 50] {
            assert_sampled_is_a_fold(&store, &nan_run, "r", &nan, n, range).await;
        }
    }
}

pub async fn sampled_history_several_runs_and_bad_requests(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "sampled-runs").await;
    let a = new_run(&store, &exp).await;
    let b = new_run(&store, &exp).await;
    let c = new_run(&store, &exp).await;
    log_points(&store, &a, (0..30).map(|s| metric("loss", s as f64, s, s)).collect()).await;
    log_points(&store, &b, (0..300).map(|s| metric("loss", -s as f64, s, s)).collect()).await;
    log_points(&store, &c, vec![metric("other", 1.0, 1, 1)]).await;

    // Request order is kept, repeats included; each run gets its own grid.
    let all = store.sampled_metrics(sampled_query(&[&b, &c, &a, &b], "loss", 10, (None, None))).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.run_id.as_str()).collect();
    assert_eq!(ids, vec![b.as_str(), c.as_str(), a.as_str(), b.as_str()]);
    assert_eq!((all[0].total, all[0].sampled, all[0].step.len()), (300, true, 10));
    assert_eq!(all[0].step[0], 29);
    assert_eq!(all[0].min[0], -29.0);
    assert_eq!(all[1], SampledSeries::empty(&c, "loss"), "a key the run never logged is an empty series");
    assert_eq!((all[2].total, all[2].step[0], all[2].step[9]), (30, 2, 29));
    assert_eq!(all[3], all[0]);
    // A key no run ever logged.
    let none = store.sampled_metrics(sampled_query(&[&a], "never", 10, (None, None))).await.unwrap();
    assert_eq!(none, vec![SampledSeries::empty(&a, "never")]);
    // An unknown run fails the whole request.
    assert_not_found(
        store.sampled_metrics(sampled_query(&[&a, "ghost"], "loss", 10, (None, None))).await,
        "Run with id=ghost not found",
    );
    // A deleted run still has its history, as in MLflow's get-history.
    store.delete_run(&actor(), &a).await.unwrap();
    assert_eq!(sampled_one(&store, sampled_query(&[&a], "loss", 10, (None, None))).await.total, 30);
    assert_invalid(store.sampled_metrics(sampled_query(&[&a], "loss", 0, (None, None))).await, "points must be");
    assert_invalid(
        store.sampled_metrics(sampled_query(&[&a], "loss", 10, (Some(3), Some(2)))).await,
        "start_step=3 and end_step=2",
    );
}

pub async fn concurrent_writers(store: Arc<dyn Store>) {
    const TASKS: usize = 12;
    const BATCHES: usize = 20;
    const POINTS: usize = 25;
    let exp = new_experiment(&store, "concurrent").await;
    let shared = new_run(&store, &exp).await;
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        let exp = exp.clone();
        let shared = shared.clone();
        handles.push(tokio::spawn(async move {
            let own = new_run(&store, &exp).await;
            for b in 0..BATCHES {
                let metrics: Vec<Metric> = (0..POINTS)
                    .map(|p| {
                        let step = (b * POINTS + p) as i64;
                        metric(&format!("k{}", p % 3), step as f64, step, step)
                    })
                    .collect();
                log(&store, &own, Batch { metrics: metrics.clone(), ..Batch::default() }).await.unwrap();
                // The same points with a per-task key land on the shared run.
                let shared_metrics = metrics.into_iter().map(|m| Metric { key: format!("t{task}"), ..m }).collect();
                log(&store, &shared, Batch { metrics: shared_metrics, ..Batch::default() }).await.unwrap();
            }
            own
        }));
    }
    let mut own_runs = Vec::new();
    for h in handles {
        own_runs.push(h.await.expect("task"));
    }
    for run in &own_runs {
        let mut total = 0;
        for k in 0..3 {
            total += history(&store, run, &format!("k{k}")).await.len();
        }
        assert_eq!(total, BATCHES * POINTS, "every acknowledged point of run {run} is stored");
    }
    for task in 0..TASKS {
        assert_eq!(history(&store, &shared, &format!("t{task}")).await.len(), BATCHES * POINTS);
    }
    let distinct: HashSet<String> = own_runs.into_iter().collect();
    assert_eq!(distinct.len(), TASKS);
    assert_verifies(&store).await;
}

pub async fn audit_log_records_every_mutation(store: Arc<dyn Store>) {
    let start = store.audit_events(0, 10_000).await.unwrap();
    let exp = new_experiment(&store, "audited").await;
    store.set_experiment_tag(&actor(), &exp, KeyValue::new("k", "v")).await.unwrap();
    let run = new_run(&store, &exp).await;
    let batch = Batch {
        metrics: vec![metric("m", 1.0, 1, 1), metric("m", 2.0, 2, 2)],
        params: vec![KeyValue::new("p", "1")],
        tags: vec![KeyValue::new("t", "1")],
    };
    log(&store, &run, batch).await.unwrap();
    store.delete_tag(&actor(), &run, "t").await.unwrap();
    store.delete_run(&actor(), &run).await.unwrap();

    let events = store.audit_events(0, 10_000).await.unwrap();
    let new: Vec<&str> = events[start.len()..].iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        new,
        vec!["create_experiment", "set_experiment_tag", "create_run", "log_batch", "delete_tag", "delete_run"]
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "sequence numbers are consecutive");
        if i > 0 {
            assert_eq!(e.prev_hash, events[i - 1].hash, "event {} links to its predecessor", e.seq);
        }
    }
    let log_event = events.iter().find(|e| e.action == "log_batch").unwrap();
    assert_eq!(
        (log_event.entity_type.as_str(), log_event.entity_id.as_str(), log_event.actor.as_str()),
        ("run", run.as_str(), "tester")
    );
    assert!(log_event.payload.contains("\"metrics\":{\"count\":2"), "{}", log_event.payload);
    let tail = store.audit_events(log_event.seq, 1).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].action, "delete_tag");
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.events, events.len() as u64);

    // Points already stored, or repeated within a batch, are not inserted again; the event
    // counts and digests only the new ones, and the log still verifies against the table.
    let other = new_run(&store, &exp).await;
    log(&store, &other, Batch { metrics: vec![metric("m", 1.0, 1, 1)], ..Batch::default() }).await.unwrap();
    let repeated = vec![metric("m", 1.0, 1, 1), metric("m", 3.0, 3, 3), metric("m", 3.0, 3, 3)];
    log(&store, &other, Batch { metrics: repeated, ..Batch::default() }).await.unwrap();
    let last = store.audit_events(0, 10_000).await.unwrap().pop().unwrap();
    assert!(last.payload.contains("\"metrics\":{\"count\":1"), "{}", last.payload);
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// A verification checkpoint is an event of its own; a later incremental verification checks
/// only what follows it, and refuses a checkpoint whose claim does not hold.
pub async fn audit_checkpoints_anchor_incremental_verification(store: Arc<dyn Store>) {
    let silent: Arc<dyn cairn_core::progress::Progress> = Arc::new(cairn_core::progress::Silent);
    let exp = new_experiment(&store, "checkpointed").await;
    let full = store.verify_audit_incremental(silent.clone()).await.unwrap().unwrap();
    assert!(full.is_ok() && full.checkpoint.is_none(), "no checkpoint yet: a full pass {full:?}");
    let (seq, hash) = full.last.clone().unwrap();
    let wrong = "00".repeat(32);
    assert!(store.record_audit_checkpoint(&actor(), seq, &wrong).await.is_err(), "a false claim is refused");
    store.record_audit_checkpoint(&actor(), seq, &hash).await.unwrap();
    let events = store.audit_events(0, 10_000).await.unwrap();
    let checkpoint = events.last().unwrap();
    assert_eq!((checkpoint.seq, checkpoint.action.as_str()), (seq + 1, "verify_checkpoint"));

    store.set_experiment_tag(&actor(), &exp, KeyValue::new("after", "1")).await.unwrap();
    let report = store.verify_audit_incremental(silent.clone()).await.unwrap().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.checkpoint, report.events), (Some(seq), 2), "the checkpoint and the tag only");
    assert_eq!(report.last.as_ref().map(|(s, _)| *s), Some(seq + 2));
    // The full pass still covers everything, checkpoints included.
    let full = store.verify_audit().await.unwrap();
    assert!(full.is_ok(), "{:?}", full.problems);
    assert_eq!(full.events, events.len() as u64 + 1);
}

/// Older events are sealed into compressed blocks as the log grows (every 256 events once 512
/// are unsealed). Sealing changes nothing anyone can read: the events, their hashes and links
/// come back as before, filtered queries find sealed events in both directions, a checkpoint
/// may name a sealed event, and the log verifies in full and from that checkpoint.
pub async fn sealed_audit_events_read_query_and_verify_as_before(store: Arc<dyn Store>) {
    let silent: Arc<dyn cairn_core::progress::Progress> = Arc::new(cairn_core::progress::Silent);
    let exp = new_experiment(&store, "sealed").await;
    let early = new_run(&store, &exp).await;
    log(&store, &early, Batch { params: vec![KeyValue::new("p", "1")], ..Batch::default() }).await.unwrap();
    let other = Actor("sealer-two".to_owned());
    let tag = |i: usize| KeyValue::new(format!("k{}", i % 7), format!("v{i}"));
    for i in store.audit_events(0, 10_000).await.unwrap().len()..500 {
        let who = if i % 3 == 0 { other.clone() } else { actor() };
        store.set_experiment_tag(&who, &exp, tag(i)).await.unwrap();
    }
    let before = store.audit_events(0, 10_000).await.unwrap();
    for i in 0..700 {
        store.set_experiment_tag(&actor(), &exp, tag(i)).await.unwrap();
    }
    let after = store.audit_events(0, 10_000).await.unwrap();
    assert_eq!(after.len(), before.len() + 700);
    assert_eq!(&after[..before.len()], &before[..], "sealed events read back exactly as they were written");
    for (i, e) in after.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1);
        if i > 0 {
            assert_eq!(e.prev_hash, after[i - 1].hash, "event {} links to its predecessor", e.seq);
        }
    }
    // Pages that start inside a block, and one that spans sealed and unsealed events.
    for (start, n) in [(0, 1), (100, 3), (255, 2), (300, 600), (1000, 50)] {
        let page = store.audit_events(start, n).await.unwrap();
        assert_eq!(page[..], after[start as usize..(start as usize + n as usize).min(after.len())]);
    }

    // Filters find sealed events (the early run's two events, the other actor's tags) both ways.
    for newest_first in [false, true] {
        let q = AuditQuery { entity_id: Some(early.clone()), newest_first, limit: 100, ..AuditQuery::default() };
        let mut found: Vec<i64> = store.query_audit(q).await.unwrap().iter().map(|e| e.seq).collect();
        let mut expected: Vec<i64> = after.iter().filter(|e| e.entity_id == early).map(|e| e.seq).collect();
        if newest_first {
            expected.reverse();
        }
        assert_eq!(found, expected);
        let q = AuditQuery { actor: Some(other.0.clone()), newest_first, limit: 40, ..AuditQuery::default() };
        found = store.query_audit(q).await.unwrap().iter().map(|e| e.seq).collect();
        let mut expected: Vec<i64> = after.iter().filter(|e| e.actor == other.0).map(|e| e.seq).collect();
        if newest_first {
            expected.reverse();
        }
        expected.truncate(40);
        assert_eq!(found, expected, "newest first: {newest_first}");
        let window = AuditQuery {
            after_seq: Some(200),
            before_seq: Some(700),
            newest_first,
            limit: 1000,
            ..AuditQuery::default()
        };
        assert_eq!(store.query_audit(window).await.unwrap().len(), 499);
    }

    let full = store.verify_audit().await.unwrap();
    assert!(full.is_ok(), "{:?}", full.problems);
    assert_eq!(full.events, after.len() as u64);
    let named = &after[299];
    store.record_audit_checkpoint(&actor(), named.seq, &named.hash).await.unwrap();
    let report = store.verify_audit_incremental(silent).await.unwrap().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.checkpoint, report.events), (Some(named.seq), after.len() as u64 - 300 + 1));
}

/// The audit log browsed as the UI does: newest first in pages, filtered by actor, action,
/// entity and time, each page continuing where the last stopped.
pub async fn audit_queries_filter_and_page_both_ways(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "browsed").await;
    let other = Actor("auditor-two".to_owned());
    let mut runs = Vec::new();
    for i in 0..5 {
        let who = if i % 2 == 0 { actor() } else { other.clone() };
        let new = NewRun { experiment_id: exp.clone(), user_id: "u".into(), ..NewRun::default() };
        runs.push(store.create_run(&who, new).await.unwrap().info.run_id);
    }
    let tag = Batch { tags: vec![KeyValue::new("k", "v")], ..Batch::default() };
    store.log_batch(&other, &runs[0], tag).await.unwrap();
    let all = store.audit_events(0, 10_000).await.unwrap();
    let query = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery { newest_first: true, limit: 1_000, ..AuditQuery::default() };
        f(&mut q);
        q
    };
    let seqs = |events: Vec<cairn_core::audit::AuditEvent>| events.iter().map(|e| e.seq).collect::<Vec<_>>();

    // Newest first, then oldest first, the same events.
    let newest = seqs(store.query_audit(query(&|_| {})).await.unwrap());
    let mut oldest: Vec<i64> = all.iter().map(|e| e.seq).collect();
    oldest.reverse();
    assert_eq!(newest, oldest);

    // Pages of two, newest first, each below the last one's smallest seq, cover everything once.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .query_audit(query(&|q| {
                q.limit = 2;
                q.before_seq = before;
            }))
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|e| e.seq);
        paged.extend(seqs(page));
    }
    assert_eq!(paged, newest);

    let by_other = store.query_audit(query(&|q| q.actor = Some("auditor-two".into()))).await.unwrap();
    assert_eq!(
        by_other.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["log_batch", "create_run", "create_run"]
    );
    let created = store.query_audit(query(&|q| q.action = Some("create_run".into()))).await.unwrap();
    assert_eq!(created.len(), 5);
    let of_run = store
        .query_audit(query(&|q| {
            q.entity_type = Some("run".into());
            q.entity_id = Some(runs[0].clone());
        }))
        .await
        .unwrap();
    assert_eq!(of_run.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), vec!["log_batch", "create_run"]);
    let both = store
        .query_audit(query(&|q| {
            q.actor = Some("auditor-two".into());
            q.action = Some("create_run".into());
            q.newest_first = false;
            q.after_seq = Some(0);
        }))
        .await
        .unwrap();
    assert_eq!(both.len(), 2);
    assert!(both[0].seq < both[1].seq, "oldest first when asked");

    // A time window: the events at and after the third run's creation.
    let third = created.iter().rev().nth(2).unwrap();
    let since = store.query_audit(query(&|q| q.since = Some(third.time))).await.unwrap();
    assert!(since.iter().all(|e| e.time >= third.time) && since.iter().any(|e| e.seq == third.seq));
    let until = store.query_audit(query(&|q| q.until = Some(third.time - 1))).await.unwrap();
    assert!(until.iter().all(|e| e.time < third.time));
    assert!(store.query_audit(query(&|q| q.actor = Some("nobody".into()))).await.unwrap().is_empty());
    // A value is bound, never spliced into SQL.
    let injected = store.query_audit(query(&|q| q.actor = Some("x' OR '1'='1".into()))).await.unwrap();
    assert!(injected.is_empty());
}

pub async fn failed_requests_leave_no_trace(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "failures").await;
    let run = new_run(&store, &exp).await;
    log(&store, &run, Batch { params: vec![KeyValue::new("p", "1")], ..Batch::default() }).await.unwrap();
    let before = store.audit_events(0, 10_000).await.unwrap().len();
    // Good and failing requests interleaved, so that they share commit groups.
    let mut handles = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        let run = run.clone();
        handles.push(tokio::spawn(async move {
            let batch = if i % 2 == 0 {
                Batch { metrics: vec![metric("ok", i as f64, i, i)], ..Batch::default() }
            } else {
                Batch {
                    metrics: vec![metric("bad", 1.0, i, i)],
                    params: vec![KeyValue::new("p", "2")],
                    ..Batch::default()
                }
            };
            (i, log(&store, &run, batch).await)
        }));
    }
    for h in handles {
        let (i, result) = h.await.unwrap();
        assert_eq!(result.is_ok(), i % 2 == 0, "request {i}: {result:?}");
    }
    assert_eq!(history(&store, &run, "ok").await.len(), 20);
    assert!(history(&store, &run, "bad").await.is_empty());
    assert_eq!(store.audit_events(0, 10_000).await.unwrap().len(), before + 20);
    assert_verifies(&store).await;
}

/// Runs a run search to completion, page by page, returning run names in result order. It
/// pages twice, by the sort key each page hands on (`next_after`) and by offset, and both must
/// give the same runs.
async fn search_all_names(
    store: &Arc<dyn Store>,
    experiment_id: &str,
    filter: &str,
    order_by: &[&str],
    page: u64,
) -> Vec<String> {
    let mut by_key = Vec::new();
    let mut by_offset = Vec::new();
    for keyset in [true, false] {
        let names = if keyset { &mut by_key } else { &mut by_offset };
        let (mut offset, mut after) = (0, None);
        loop {
            let query = RunQuery {
                experiment_ids: vec![experiment_id.to_owned()],
                filter: parse_run_filter(filter).expect("filter parses"),
                order_by: order_by.iter().map(|o| parse_run_order_by(o).expect("order parses")).collect(),
                view: ViewType::ActiveOnly,
                max_results: page,
                offset,
                after: if keyset { after.clone() } else { None },
            };
            let result = store.search_runs(query).await.expect("search");
            assert!(result.items.len() as u64 <= page);
            assert_eq!(result.next_after.is_some(), result.next_offset.is_some(), "{filter:?} {order_by:?}");
            names.extend(result.items.into_iter().map(|r| r.info.run_name));
            match result.next_offset {
                Some(next) => (offset, after) = (next, result.next_after),
                None => break,
            }
        }
    }
    assert_eq!(by_key, by_offset, "filter {filter:?}, order {order_by:?}, pages of {page}");
    by_key
}

/// Filters on metrics, params, tags and attributes select the same runs on every backend, in
/// the same order, across pages; NaN and missing metrics sort last; hostile strings match nothing.
pub async fn search_runs_filters_orders_and_pages(store: Arc<dyn Store>) {
    let exp = new_experiment(&store, "search").await;
    // Ten runs: accuracy i/10 (run 9 logs NaN, run 8 logs nothing), lr alternating, a tag on odd runs.
    for i in 0..10i64 {
        let new = NewRun {
            experiment_id: exp.clone(),
            user_id: "u".into(),
            run_name: Some(format!("run-{i}")),
            start_time: Some(1000 + i),
            ..NewRun::default()
        };
        let run_id = store.create_run(&actor(), new).await.expect("create run").info.run_id;
        let mut batch =
            Batch { params: vec![KeyValue::new("lr", if i % 2 == 0 { "0.1" } else { "0.01" })], ..Batch::default() };
        match i {
            8 => {}
            9 => batch.metrics.push(metric("accuracy", f64::NAN, 1, 0)),
            _ => batch.metrics.push(metric("accuracy", i as f64 / 10.0, 1, 0)),
        }
        if i % 2 == 1 {
            batch.tags.push(KeyValue::new("team", if i == 1 { "Vision" } else { "vision" }));
        }
        log(&store, &run_id, batch).await.expect("log");
    }

    let all = search_all_names(&store, &exp, "", &[], 3).await;
    let newest_first: Vec<String> = (0..10).rev().map(|i| format!("run-{i}")).collect();
    assert_eq!(all, newest_first, "default order is start_time DESC");

    let filtered =
        search_all_names(&store, &exp, "metrics.accuracy > 0.25 and params.lr = '0.1'", &["metrics.accuracy DESC"], 2)
            .await;
    assert_eq!(filtered, ["run-6", "run-4"]);

    let by_metric = search_all_names(&store, &exp, "", &["metrics.accuracy ASC"], 4).await;
    assert_eq!(&by_metric[..8], ["run-0", "run-1", "run-2", "run-3", "run-4", "run-5", "run-6", "run-7"]);
    assert_eq!(&by_metric[8..], ["run-9", "run-8"], "NaN sorts after numbers, missing values last");
    // Pages that end inside the NaN and missing groups, and on keys some runs lack, in both
    // directions: the key-paged and offset-paged results must agree (see `search_all_names`).
    let by_metric_desc = search_all_names(&store, &exp, "", &["metrics.accuracy DESC"], 1).await;
    assert_eq!(&by_metric_desc[..2], ["run-7", "run-6"]);
    assert_eq!(&by_metric_desc[8..], ["run-9", "run-8"]);
    for order in [["tags.team DESC"], ["tags.team ASC"], ["params.lr DESC"], ["attributes.end_time ASC"]] {
        assert_eq!(search_all_names(&store, &exp, "", &order, 3).await.len(), 10, "{order:?}");
    }
    assert_eq!(search_all_names(&store, &exp, "metrics.accuracy >= 0.5", &["metrics.accuracy ASC"], 1).await.len(), 3);

    assert_eq!(
        search_all_names(&store, &exp, "tags.team = 'vision'", &["attributes.run_name ASC"], 10).await,
        ["run-3", "run-5", "run-7", "run-9"]
    );
    assert_eq!(search_all_names(&store, &exp, "tags.team LIKE 'V%'", &[], 10).await, ["run-1"]);
    assert_eq!(search_all_names(&store, &exp, "tags.team ILIKE 'V%'", &["attributes.run_name ASC"], 10).await.len(), 5);
    assert_eq!(search_all_names(&store, &exp, "attributes.run_name = 'run-2'", &[], 10).await, ["run-2"]);
    assert_eq!(
        search_all_names(&store, &exp, "attributes.start_time >= 1008", &["attributes.start_time ASC"], 10).await,
        ["run-8", "run-9"]
    );

    // A run started between two pages sorts first; the key-paged second page carries on after
    // the first page's last run, where an offset would shift and show that run again.
    let page_query = |after| RunQuery {
        experiment_ids: vec![exp.clone()],
        filter: parse_run_filter("").expect("filter parses"),
        order_by: Vec::new(),
        view: ViewType::ActiveOnly,
        max_results: 3,
        offset: 0,
        after,
    };
    let first = store.search_runs(page_query(None)).await.expect("first page");
    let late = NewRun {
        experiment_id: exp.clone(),
        user_id: "u".into(),
        run_name: Some("run-late".into()),
        start_time: Some(2000),
        ..NewRun::default()
    };
    let late_id = store.create_run(&actor(), late).await.expect("create run").info.run_id;
    let second = store.search_runs(page_query(first.next_after.clone())).await.expect("second page");
    let names = |page: &Page<Run>| page.items.iter().map(|r| r.info.run_name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&first), ["run-9", "run-8", "run-7"]);
    assert_eq!(names(&second), ["run-6", "run-5", "run-4"], "no repeat after a run was added");
    store.delete_run(&actor(), &late_id).await.expect("delete the late run");

    let hostile = search_all_names(&store, &exp, "tags.team = '; DROP TABLE runs; --'", &[], 10).await;
    assert!(hostile.is_empty());
    assert_eq!(search_all_names(&store, &exp, "", &[], 100).await.len(), 10, "runs survive hostile filters");
    assert_verifies(&store).await;
}

/// Experiment search filters by name and tags, orders, pages and honours the view type.
pub async fn search_experiments_filters_and_pages(store: Arc<dyn Store>) {
    for i in 0..5 {
        let id = new_experiment(&store, &format!("proj-{i}")).await;
        if i >= 3 {
            store.set_experiment_tag(&actor(), &id, KeyValue::new("stage", "prod")).await.expect("tag");
        }
        if i == 4 {
            store.delete_experiment(&actor(), &id).await.expect("delete");
        }
    }
    let search = |filter: &str, order: &str, view: ViewType, page: u64, offset: u64| ExperimentQuery {
        filter: parse_experiment_filter(filter).expect("filter parses"),
        order_by: if order.is_empty() { vec![] } else { vec![parse_experiment_order_by(order).expect("order parses")] },
        view,
        max_results: page,
        offset,
    };
    let names = |page: &cairn_core::model::Page<cairn_core::model::Experiment>| -> Vec<String> {
        page.items.iter().map(|e| e.name.clone()).collect()
    };
    let first = store
        .search_experiments(search("name LIKE 'proj-%'", "name ASC", ViewType::ActiveOnly, 2, 0))
        .await
        .expect("search");
    assert_eq!(names(&first), ["proj-0", "proj-1"]);
    let next = first.next_offset.expect("a second page");
    let second = store
        .search_experiments(search("name LIKE 'proj-%'", "name ASC", ViewType::ActiveOnly, 2, next))
        .await
        .expect("search");
    assert_eq!(names(&second), ["proj-2", "proj-3"]);
    assert_eq!(second.next_offset, None);

    let tagged = store
        .search_experiments(search("tags.stage = 'prod'", "name DESC", ViewType::All, 10, 0))
        .await
        .expect("search");
    assert_eq!(names(&tagged), ["proj-4", "proj-3"]);
    let deleted = store.search_experiments(search("", "", ViewType::DeletedOnly, 10, 0)).await.expect("search");
    assert_eq!(names(&deleted), ["proj-4"]);
}

/// Size of the throughput tests' workload: `CAIRN_INGEST_POINTS` (default a quick 40,000) spread
/// over `WRITERS` concurrent runs in batches of `BATCH` points.
pub struct IngestWorkload {
    pub writers: usize,
    pub batch: usize,
    pub batches_per_writer: usize,
}

impl IngestWorkload {
    /// Eight writers, 1,000 points per batch, as in the benchmark.
    pub fn from_env() -> Self {
        const WRITERS: usize = 8;
        const BATCH: usize = 1000;
        let total: usize = std::env::var("CAIRN_INGEST_POINTS").ok().and_then(|v| v.parse().ok()).unwrap_or(40_000);
        IngestWorkload { writers: WRITERS, batch: BATCH, batches_per_writer: total.div_ceil(BATCH * WRITERS) }
    }

    /// How many points the workload logs.
    pub fn points(&self) -> usize {
        self.writers * self.batch * self.batches_per_writer
    }

    /// Logs the workload through the `Store` API, each writer on its own run, over ten metric
    /// keys; returns the runs and the time from the first batch to the last acknowledgement.
    pub async fn run(&self, store: &Arc<dyn Store>) -> (Vec<String>, std::time::Duration) {
        let exp = new_experiment(store, "ingest").await;
        let mut runs = Vec::new();
        for _ in 0..self.writers {
            runs.push(new_run(store, &exp).await);
        }
        let started = std::time::Instant::now();
        let mut handles = Vec::new();
        for run in runs.clone() {
            let (store, batch, batches) = (store.clone(), self.batch, self.batches_per_writer);
            handles.push(tokio::spawn(async move {
                for b in 0..batches {
                    let metrics = (0..batch)
                        .map(|i| {
                            let step = (b * batch + i) as i64;
                            metric(&format!("metric_{}", i % 10), step as f64 * 0.5, 1_700_000_000_000 + step, step)
                        })
                        .collect();
                    log(&store, &run, Batch { metrics, ..Batch::default() }).await.expect("log_batch");
                }
            }));
        }
        for h in handles {
            h.await.expect("writer task");
        }
        (runs, started.elapsed())
    }

    /// Counts the points stored for `runs` under the workload's ten keys.
    pub async fn stored(store: &Arc<dyn Store>, runs: &[String]) -> usize {
        let mut stored = 0;
        for run in runs {
            for k in 0..10 {
                stored += history(store, run, &format!("metric_{k}")).await.len();
            }
        }
        stored
    }
}

/// For the backends' migration tests: a run with two random series (one of them logged in
/// small batches) written through the store, and the points of each.
pub async fn log_series_for_backfill(store: &Arc<dyn Store>) -> (String, Vec<Metric>, Vec<Metric>) {
    let exp = new_experiment(store, "backfill").await;
    let run = new_run(store, &exp).await;
    let mut rng = Lcg(0xbac_f111);
    let a = random_series(&mut rng, "a", 6_000);
    let b = random_series(&mut rng, "b", 3_000);
    log_points(store, &run, a.clone()).await;
    for chunk in b.chunks(37) {
        log(store, &run, Batch { metrics: chunk.to_vec(), ..Batch::default() }).await.unwrap();
    }
    (run, a, b)
}

/// For the backends' migration tests: the series of [`log_series_for_backfill`] sample as a
/// plain scan does.
pub async fn assert_backfilled_series(store: &Arc<dyn Store>, run: &str, a: &[Metric], b: &[Metric]) {
    for (key, points) in [("a", a), ("b", b)] {
        for range in [(None, None), (Some(-70), Some(130)), (Some(500), Some(2_999))] {
            for n in [1_u64, 10, 100, 1000] {
                assert_sampled_is_a_fold(store, run, key, points, n, range).await;
            }
        }
    }
}
