//! Logged models, model-linked metrics, dataset inputs and run outputs on both backends. Each
//! backend module runs every case with `logged_model_cases!(fixture)`.

use std::sync::Arc;

use cairn_core::Error;
use cairn_core::artifacts::NewArtifact;
use cairn_core::logged_models::{
    Dataset, DatasetFilter, DatasetInput, DatasetSummary, LoggedModelOrder, LoggedModelQuery, LoggedModelStatus,
    MetricLink, ModelOutput, NewLoggedModel,
};
use cairn_core::model::{Actor, Batch, KeyValue, Metric, NewExperiment, NewRun};
use cairn_core::search::{parse_logged_model_filter, parse_logged_model_order_field, parse_run_filter};
use cairn_core::store::{RunQuery, Store};

/// Generates one `#[tokio::test]` per logged-model case for a backend fixture.
macro_rules! logged_model_cases {
    ($fixture:ident) => {
        $crate::logged_models::logged_model_cases!(@each $fixture;
            logged_model_lifecycle,
            logged_model_created_under_a_chosen_id,
            linked_metrics_are_atomic_with_the_batch,
            logged_model_search_filters_orders_and_pages,
            datasets_are_stored_once_and_searchable,
            dataset_summaries_list_each_dataset_and_context_once,
            run_outputs_and_model_inputs,
            model_files_live_in_the_manifest,
            purging_a_run_removes_its_inputs_outputs_and_linked_points,
        );
    };
    (@each $fixture:ident; $($case:ident),* $(,)?) => {
        mod logged_model_cases {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (store, _guard) = super::$fixture().await;
                    $crate::logged_models::$case(store.clone()).await;
                    store.close().await.expect("close");
                }
            )*
        }
    };
}
pub(crate) use logged_model_cases;

fn actor() -> Actor {
    Actor("model-tester".to_owned())
}

async fn experiment(store: &Arc<dyn Store>, name: &str) -> String {
    let new = NewExperiment { name: name.to_owned(), ..NewExperiment::default() };
    store.create_experiment(&actor(), new).await.expect("create experiment")
}

async fn run(store: &Arc<dyn Store>, experiment_id: &str) -> String {
    let new = NewRun { experiment_id: experiment_id.to_owned(), start_time: Some(1), ..NewRun::default() };
    store.create_run(&actor(), new).await.expect("create run").info.run_id
}

async fn model(store: &Arc<dyn Store>, experiment_id: &str, name: &str, params: &[(&str, &str)]) -> String {
    let new = NewLoggedModel {
        experiment_id: experiment_id.to_owned(),
        name: Some(name.to_owned()),
        params: params.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect(),
        ..NewLoggedModel::default()
    };
    store.create_logged_model(&actor(), new).await.expect("create logged model").model_id
}

fn link(model_id: &str, dataset: Option<&str>) -> Option<MetricLink> {
    Some(MetricLink {
        model_id: model_id.to_owned(),
        dataset_name: dataset.map(str::to_owned),
        dataset_digest: dataset.map(|d| format!("{d}-digest")),
    })
}

fn metric(key: &str, value: f64, timestamp: i64) -> Metric {
    Metric { key: key.to_owned(), value, timestamp, step: 0 }
}

async fn assert_verified(store: &Arc<dyn Store>) {
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_ok(), "{:?}", report.problems);
}

pub async fn logged_model_lifecycle(store: Arc<dyn Store>) {
    let exp = experiment(&store, "lm-lifecycle").await;
    let location = store.get_experiment(&exp).await.unwrap().artifact_location;
    let new = NewLoggedModel {
        model_id: None,
        experiment_id: exp.clone(),
        name: None,
        model_type: Some("regressor".into()),
        source_run_id: None,
        tags: vec![KeyValue::new("t", "1"), KeyValue::new("t", "2")],
        params: vec![KeyValue::new("lr", "0.1")],
    };
    let created = store.create_logged_model(&actor(), new).await.unwrap();
    assert!(cairn_core::logged_models::is_model_id(&created.model_id), "{}", created.model_id);
    assert_eq!(created.status, LoggedModelStatus::Pending);
    assert!(!created.name.is_empty(), "a generated name");
    assert_eq!(created.artifact_location, format!("{location}/models/{}/artifacts", created.model_id));
    assert_eq!(created.tags, vec![KeyValue::new("t", "2")], "the last value of a repeated tag wins");
    let id = created.model_id.clone();
    assert_eq!(store.get_logged_model(&id).await.unwrap(), created);

    store.set_logged_model_tags(&actor(), &id, vec![KeyValue::new("a", "x"), KeyValue::new("t", "3")]).await.unwrap();
    store.delete_logged_model_tag(&actor(), &id, "a").await.unwrap();
    assert!(matches!(store.delete_logged_model_tag(&actor(), &id, "a").await, Err(Error::NotFound(_))));
    store
        .log_logged_model_params(&actor(), &id, vec![KeyValue::new("lr", "0.1"), KeyValue::new("depth", "3")])
        .await
        .unwrap();
    let conflict = store.log_logged_model_params(&actor(), &id, vec![KeyValue::new("lr", "0.2")]).await;
    assert!(matches!(conflict, Err(Error::InvalidParameter(_))), "{conflict:?}");

    let finalized = store
        .finalize_logged_model(&actor(), &id, LoggedModelStatus::UploadFailed, Some("disk full".into()))
        .await
        .unwrap();
    assert_eq!(finalized.status, LoggedModelStatus::UploadFailed);
    assert_eq!(finalized.status_message.as_deref(), Some("disk full"));
    assert_eq!(finalized.tags, vec![KeyValue::new("t", "3")]);
    assert_eq!(finalized.params, vec![KeyValue::new("depth", "3"), KeyValue::new("lr", "0.1")]);

    store.delete_logged_model(&actor(), &id).await.unwrap();
    assert!(matches!(store.get_logged_model(&id).await, Err(Error::NotFound(_))));
    assert_eq!(store.get_logged_model_any_stage(&id).await.unwrap().model_id, id);
    assert!(matches!(store.get_logged_model("m-00000000000000000000000000000000").await, Err(Error::NotFound(_))));

    let bad_name = NewLoggedModel { experiment_id: exp.clone(), name: Some("a/b".into()), ..Default::default() };
    assert!(matches!(store.create_logged_model(&actor(), bad_name).await, Err(Error::InvalidParameter(_))));
    let nowhere = NewLoggedModel { experiment_id: "987654".into(), ..Default::default() };
    assert!(matches!(store.create_logged_model(&actor(), nowhere).await, Err(Error::NotFound(_))));
    store.delete_experiment(&actor(), &exp).await.unwrap();
    let deleted = NewLoggedModel { experiment_id: exp, ..Default::default() };
    assert!(matches!(store.create_logged_model(&actor(), deleted).await, Err(Error::InvalidParameter(_))));
    assert_verified(&store).await;
}

/// A client logging offline picks the model's id; the store creates the model under it,
/// refuses it again (anywhere) and refuses ids of another shape.
pub async fn logged_model_created_under_a_chosen_id(store: Arc<dyn Store>) {
    let exp = experiment(&store, "lm-chosen-id").await;
    let other = experiment(&store, "lm-chosen-id-other").await;
    let location = store.get_experiment(&exp).await.unwrap().artifact_location;
    let run_id = run(&store, &exp).await;
    let id = format!("m-{}", uuid::Uuid::new_v4().simple());
    let new = NewLoggedModel {
        model_id: Some(id.clone()),
        experiment_id: exp.clone(),
        name: Some("offline".into()),
        model_type: Some("pyfunc".into()),
        source_run_id: Some(run_id.clone()),
        tags: vec![KeyValue::new("t", "1")],
        params: vec![KeyValue::new("lr", "0.1")],
    };
    let created = store.create_logged_model(&actor(), new.clone()).await.unwrap();
    assert_eq!(created.model_id, id);
    assert_eq!(created.experiment_id, exp);
    assert_eq!(created.name, "offline");
    assert_eq!(created.source_run_id.as_deref(), Some(run_id.as_str()));
    assert_eq!(created.status, LoggedModelStatus::Pending);
    assert_eq!(created.artifact_location, format!("{location}/models/{id}/artifacts"));
    assert_eq!(created.params, vec![KeyValue::new("lr", "0.1")]);
    assert_eq!(store.get_logged_model(&id).await.unwrap(), created);

    let again = store.create_logged_model(&actor(), new.clone()).await;
    assert!(matches!(again, Err(Error::AlreadyExists(_))), "{again:?}");
    let elsewhere = NewLoggedModel { experiment_id: other.clone(), ..new.clone() };
    assert!(matches!(store.create_logged_model(&actor(), elsewhere).await, Err(Error::AlreadyExists(_))));
    assert_eq!(store.get_logged_model(&id).await.unwrap(), created, "a refused create changes nothing");

    for bad in ["m-ABCDEF00000000000000000000000000", "m-0123", "0123456789abcdef0123456789abcdef", "m-../x"] {
        let new = NewLoggedModel { model_id: Some(bad.into()), experiment_id: other.clone(), ..Default::default() };
        let refused = store.create_logged_model(&actor(), new).await;
        assert!(matches!(refused, Err(Error::InvalidParameter(_))), "{bad}: {refused:?}");
    }
    assert_verified(&store).await;
}

pub async fn linked_metrics_are_atomic_with_the_batch(store: Arc<dyn Store>) {
    let exp = experiment(&store, "lm-metrics").await;
    let run_id = run(&store, &exp).await;
    let id = model(&store, &exp, "m", &[]).await;
    let batch = Batch { metrics: vec![metric("acc", 0.5, 10), metric("loss", 1.0, 10)], ..Batch::default() };
    store.log_batch_linked(&actor(), &run_id, batch.clone(), vec![link(&id, Some("val")), None]).await.unwrap();
    // The same linked point again is stored once, like a duplicate run metric.
    store.log_batch_linked(&actor(), &run_id, batch, vec![link(&id, Some("val")), None]).await.unwrap();
    let nan = Batch { metrics: vec![metric("acc", f64::NAN, 11)], ..Batch::default() };
    store.log_batch_linked(&actor(), &run_id, nan, vec![link(&id, None)]).await.unwrap();

    let got = store.get_logged_model(&id).await.unwrap();
    assert_eq!(got.metrics.len(), 2, "{:?}", got.metrics);
    assert_eq!((got.metrics[0].value, got.metrics[0].dataset_name.as_deref()), (0.5, Some("val")));
    assert_eq!(got.metrics[0].dataset_digest.as_deref(), Some("val-digest"));
    assert_eq!(got.metrics[0].run_id.as_deref(), Some(run_id.as_str()));
    assert!(got.metrics[1].value.is_nan() && got.metrics[1].dataset_name.is_none());
    let run = store.get_run(&run_id).await.unwrap();
    assert_eq!(run.metrics.len(), 2, "linked points are the run's points too");

    // An unknown model fails the whole batch: neither the run nor any model gets the points.
    let before = store.audit_events(0, 100_000).await.unwrap().len();
    let bad = Batch { metrics: vec![metric("new", 1.0, 12), metric("acc", 0.7, 12)], ..Batch::default() };
    let err = store
        .log_batch_linked(&actor(), &run_id, bad, vec![None, link("m-11111111111111111111111111111111", None)])
        .await;
    assert!(matches!(err, Err(Error::NotFound(_))), "{err:?}");
    assert_eq!(store.get_run(&run_id).await.unwrap().metrics.len(), 2);
    assert_eq!(store.audit_events(0, 100_000).await.unwrap().len(), before);
    let mismatched = store.log_batch_linked(&actor(), &run_id, Batch::default(), vec![None]).await;
    assert!(matches!(mismatched, Err(Error::Internal(_))));
    assert_verified(&store).await;
}

fn query(experiment_id: &str, filter: &str) -> LoggedModelQuery {
    LoggedModelQuery {
        experiment_ids: vec![experiment_id.to_owned()],
        filter: parse_logged_model_filter(filter).expect("filter"),
        max_results: 100,
        ..LoggedModelQuery::default()
    }
}

async fn names(store: &Arc<dyn Store>, q: LoggedModelQuery) -> Vec<String> {
    store.search_logged_models(q).await.expect("search").items.into_iter().map(|m| m.name).collect()
}

pub async fn logged_model_search_filters_orders_and_pages(store: Arc<dyn Store>) {
    let exp = experiment(&store, "lm-search").await;
    let other = experiment(&store, "lm-search-other").await;
    let run_id = run(&store, &exp).await;
    let mut ids = Vec::new();
    for (name, acc, lr) in [("low", 0.2, "0.1"), ("mid", 0.6, "0.01"), ("high", 0.9, "0.01")] {
        let id = model(&store, &exp, name, &[("lr", lr)]).await;
        let batch = Batch { metrics: vec![metric("acc", acc, 10)], ..Batch::default() };
        store.log_batch_linked(&actor(), &run_id, batch, vec![link(&id, Some("val"))]).await.unwrap();
        ids.push(id);
        // Creation times differ so that the default order is well defined.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // A newer point on another dataset makes "low" best overall but not on "val".
    let later = Batch { metrics: vec![metric("acc", 0.99, 20)], ..Batch::default() };
    store.log_batch_linked(&actor(), &run_id, later, vec![link(&ids[0], Some("test"))]).await.unwrap();
    store.set_logged_model_tags(&actor(), &ids[1], vec![KeyValue::new("kind", "lin")]).await.unwrap();
    model(&store, &other, "elsewhere", &[]).await;
    let gone = model(&store, &exp, "gone", &[]).await;
    store.delete_logged_model(&actor(), &gone).await.unwrap();

    assert_eq!(names(&store, query(&exp, "")).await, ["high", "mid", "low"], "newest first, deleted hidden");
    assert_eq!(names(&store, query(&exp, "metrics.acc > 0.5")).await, ["high", "mid", "low"]);
    let mut on_val = query(&exp, "metrics.acc > 0.5");
    on_val.datasets = vec![DatasetFilter { name: "val".into(), digest: Some("val-digest".into()) }];
    assert_eq!(names(&store, on_val).await, ["high", "mid"]);
    let mut any_on_test = query(&exp, "");
    any_on_test.datasets = vec![DatasetFilter { name: "test".into(), digest: None }];
    assert_eq!(names(&store, any_on_test).await, ["low"]);
    assert_eq!(names(&store, query(&exp, "params.lr = '0.01'")).await, ["high", "mid"]);
    assert_eq!(names(&store, query(&exp, "tags.kind = 'lin' AND name != 'x'")).await, ["mid"]);
    assert_eq!(names(&store, query(&exp, "name IN ('low', 'high')")).await, ["high", "low"]);
    assert_eq!(names(&store, query(&exp, "name LIKE 'HI%'")).await, Vec::<String>::new(), "LIKE is case-sensitive");
    assert_eq!(names(&store, query(&exp, "name ILIKE 'HI%'")).await, ["high"]);
    assert_eq!(names(&store, query(&exp, "status = 'LOGGED_MODEL_PENDING'")).await.len(), 3);
    assert_eq!(names(&store, query(&exp, "creation_time > 0")).await.len(), 3);
    assert_eq!(names(&store, query(&exp, &format!("model_id = '{}'", ids[1]))).await, ["mid"]);

    let order = |field: &str, ascending: bool, dataset: Option<&str>| LoggedModelOrder {
        field: parse_logged_model_order_field(field).unwrap(),
        ascending,
        dataset: dataset.map(|d| DatasetFilter { name: d.into(), digest: None }),
    };
    let mut by_val = query(&exp, "");
    by_val.order_by = vec![order("metrics.acc", false, Some("val"))];
    assert_eq!(names(&store, by_val).await, ["high", "mid", "low"]);
    let mut by_latest = query(&exp, "");
    by_latest.order_by = vec![order("metrics.acc", false, None)];
    assert_eq!(names(&store, by_latest).await, ["low", "high", "mid"], "the latest point counts");
    let mut by_name = query(&exp, "");
    by_name.order_by = vec![order("name", true, None)];
    assert_eq!(names(&store, by_name).await, ["high", "low", "mid"]);

    let mut first = query(&exp, "");
    first.max_results = 2;
    let page = store.search_logged_models(first.clone()).await.unwrap();
    assert_eq!((page.items.len(), page.next_offset), (2, Some(2)));
    first.offset = 2;
    let rest = store.search_logged_models(first).await.unwrap();
    assert_eq!((rest.items.len(), rest.next_offset), (1, None));
    assert!(names(&store, LoggedModelQuery { max_results: 10, ..Default::default() }).await.is_empty());
}

fn dataset_input(name: &str, digest: &str, context: &str) -> DatasetInput {
    DatasetInput {
        dataset: Dataset {
            name: name.to_owned(),
            digest: digest.to_owned(),
            source_type: "local".into(),
            source: "{\"uri\": \"/data\"}".into(),
            schema: Some("{\"mlflow_colspec\": []}".into()),
            profile: None,
        },
        tags: vec![KeyValue::new("mlflow.data.context", context)],
    }
}

async fn run_ids(store: &Arc<dyn Store>, experiment_id: &str, filter: &str) -> Vec<String> {
    let q = RunQuery {
        experiment_ids: vec![experiment_id.to_owned()],
        filter: parse_run_filter(filter).expect("filter"),
        max_results: 100,
        ..RunQuery::default()
    };
    store.search_runs(q).await.expect("search runs").items.into_iter().map(|r| r.info.run_id).collect()
}

pub async fn datasets_are_stored_once_and_searchable(store: Arc<dyn Store>) {
    let exp = experiment(&store, "lm-datasets").await;
    let (a, b, plain) = (run(&store, &exp).await, run(&store, &exp).await, run(&store, &exp).await);
    let inputs = vec![dataset_input("train", "d1", "training"), dataset_input("train", "d1", "ignored duplicate")];
    store.log_inputs(&actor(), &a, inputs, vec![]).await.unwrap();
    store.log_inputs(&actor(), &a, vec![dataset_input("train", "d1", "again")], vec![]).await.unwrap();
    store.log_inputs(&actor(), &b, vec![dataset_input("train", "d1", "validation")], vec![]).await.unwrap();
    store.log_inputs(&actor(), &b, vec![dataset_input("eval", "d2", "evaluation")], vec![]).await.unwrap();

    let got = store.get_run(&a).await.unwrap().inputs;
    assert_eq!(got.dataset_inputs.len(), 1);
    assert_eq!(got.dataset_inputs[0], dataset_input("train", "d1", "training"), "the first logging wins");
    assert_eq!(store.run_inputs(&b).await.unwrap().dataset_inputs.len(), 2);
    assert!(store.get_run(&plain).await.unwrap().inputs.dataset_inputs.is_empty());

    let mut both = run_ids(&store, &exp, "datasets.name = 'train'").await;
    both.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(both, expected);
    assert_eq!(run_ids(&store, &exp, "datasets.context = 'training'").await, [a.as_str()]);
    assert_eq!(run_ids(&store, &exp, "datasets.digest IN ('d2')").await, [b.as_str()]);
    assert_eq!(run_ids(&store, &exp, "datasets.name LIKE 'ev%'").await, [b.as_str()]);
    assert_eq!(
        run_ids(&store, &exp, "datasets.name != 'train'").await,
        [b.as_str()],
        "runs without datasets never match"
    );

    let closed = run(&store, &exp).await;
    store.delete_run(&actor(), &closed).await.unwrap();
    let refused = store.log_inputs(&actor(), &closed, vec![dataset_input("x", "y", "z")], vec![]).await;
    assert!(matches!(refused, Err(Error::InvalidParameter(_))), "{refused:?}");
    let mut too_long = dataset_input("x", "y", "z");
    too_long.dataset.digest = "d".repeat(37);
    assert!(matches!(store.log_inputs(&actor(), &a, vec![too_long], vec![]).await, Err(Error::InvalidParameter(_))));
    assert_verified(&store).await;
}

pub async fn dataset_summaries_list_each_dataset_and_context_once(store: Arc<dyn Store>) {
    let exp = experiment(&store, "lm-dataset-summaries").await;
    let other = experiment(&store, "lm-dataset-summaries-other").await;
    let (a, b, c) = (run(&store, &exp).await, run(&store, &exp).await, run(&store, &other).await);
    store.log_inputs(&actor(), &a, vec![dataset_input("train", "d1", "training")], vec![]).await.unwrap();
    store.log_inputs(&actor(), &b, vec![dataset_input("train", "d1", "training")], vec![]).await.unwrap();
    store.log_inputs(&actor(), &b, vec![dataset_input("eval", "d2", "evaluation")], vec![]).await.unwrap();
    let mut untagged = dataset_input("raw", "d3", "unused");
    untagged.tags.clear();
    store.log_inputs(&actor(), &c, vec![untagged], vec![]).await.unwrap();

    let summary = |experiment_id: &str, name: &str, digest: &str, context: Option<&str>| DatasetSummary {
        experiment_id: experiment_id.into(),
        name: name.into(),
        digest: digest.into(),
        context: context.map(str::to_owned),
    };
    let got = store.search_datasets(std::slice::from_ref(&exp)).await.unwrap();
    assert_eq!(
        got,
        vec![summary(&exp, "eval", "d2", Some("evaluation")), summary(&exp, "train", "d1", Some("training"))],
        "one summary per dataset and context, however many runs used it"
    );
    let both = store.search_datasets(&[other.clone(), exp.clone(), "not-an-id".into(), "99999".into()]).await.unwrap();
    assert_eq!(both.len(), 3);
    assert!(both.contains(&summary(&other, "raw", "d3", None)), "an input without a context still counts");
    assert!(store.search_datasets(&[]).await.unwrap().is_empty());
}

pub async fn run_outputs_and_model_inputs(store: Arc<dyn Store>) {
    let exp = experiment(&store, "lm-outputs").await;
    let (producer, consumer) = (run(&store, &exp).await, run(&store, &exp).await);
    let id = model(&store, &exp, "m", &[]).await;
    let output = ModelOutput { model_id: id.clone(), step: 3 };
    store.log_outputs(&actor(), &producer, vec![output.clone(), output.clone()]).await.unwrap();
    store.log_inputs(&actor(), &consumer, vec![], vec![id.clone(), id.clone()]).await.unwrap();

    assert_eq!(store.get_run(&producer).await.unwrap().outputs.model_outputs, vec![output]);
    assert_eq!(store.run_outputs(&producer).await.unwrap().model_outputs.len(), 1);
    assert_eq!(store.get_run(&consumer).await.unwrap().inputs.model_inputs, vec![id.clone()]);
    let unknown = ModelOutput { model_id: "m-22222222222222222222222222222222".into(), step: 0 };
    assert!(matches!(store.log_outputs(&actor(), &producer, vec![unknown]).await, Err(Error::NotFound(_))));
    assert!(matches!(store.run_outputs("nope").await, Err(Error::NotFound(_))));
    assert_verified(&store).await;
}

pub async fn model_files_live_in_the_manifest(store: Arc<dyn Store>) {
    let exp = experiment(&store, "lm-files").await;
    let id = model(&store, &exp, "m", &[]).await;
    let manifest = store.clone().artifact_manifest().expect("manifest");
    let file =
        |path: &str, byte: char| NewArtifact { path: path.to_owned(), digest: byte.to_string().repeat(64), size: 7 };
    manifest.put_artifact(&actor(), &id, file("MLmodel", 'a')).await.unwrap();
    manifest.put_artifact(&actor(), &id, file("data/model.pkl", 'b')).await.unwrap();
    let listed: Vec<String> = manifest.list_artifacts(&id, "").await.unwrap().into_iter().map(|f| f.path).collect();
    assert_eq!(listed, ["MLmodel", "data/model.pkl"]);
    assert_eq!(manifest.get_artifact(&id, "data/model.pkl").await.unwrap().unwrap().digest, "b".repeat(64));
    assert!(manifest.is_referenced(&"b".repeat(64)).await.unwrap());
    assert!(manifest.all_artifacts().await.unwrap().iter().any(|f| f.run_id == id && f.file.path == "MLmodel"));
    let missing = "m-33333333333333333333333333333333";
    assert!(matches!(manifest.put_artifact(&actor(), missing, file("x", 'c')).await, Err(Error::NotFound(_))));

    manifest.delete_artifacts(&actor(), &id, "data").await.unwrap();
    assert!(!manifest.is_referenced(&"b".repeat(64)).await.unwrap());
    assert_eq!(manifest.list_artifacts(&id, "").await.unwrap().len(), 1);
    assert_verified(&store).await;
}

pub async fn purging_a_run_removes_its_inputs_outputs_and_linked_points(store: Arc<dyn Store>) {
    let exp = experiment(&store, "lm-purge").await;
    let (doomed, kept) = (run(&store, &exp).await, run(&store, &exp).await);
    let id = model(&store, &exp, "m", &[]).await;
    for run_id in [&doomed, &kept] {
        store.log_inputs(&actor(), run_id, vec![dataset_input("d", "1", "training")], vec![id.clone()]).await.unwrap();
        store.log_outputs(&actor(), run_id, vec![ModelOutput { model_id: id.clone(), step: 0 }]).await.unwrap();
        let batch = Batch { metrics: vec![metric("acc", 0.5, 1)], ..Batch::default() };
        store.log_batch_linked(&actor(), run_id, batch, vec![link(&id, None)]).await.unwrap();
    }
    store.delete_run(&actor(), &doomed).await.unwrap();
    let manifest = store.clone().artifact_manifest().expect("manifest");
    let report = manifest.purge_deleted_runs(&actor(), i64::MAX).await.unwrap();
    assert_eq!(report.runs, [doomed.as_str()]);

    let model = store.get_logged_model(&id).await.unwrap();
    assert_eq!(model.metrics.len(), 1, "only the kept run's point remains");
    assert_eq!(model.metrics[0].run_id.as_deref(), Some(kept.as_str()));
    let inputs = store.get_run(&kept).await.unwrap().inputs;
    assert_eq!((inputs.dataset_inputs.len(), inputs.model_inputs.len()), (1, 1));
    assert_verified(&store).await;
}
