//! The lineage graph on every backend: the full story from raw data to a served prediction, as
//! of a time before the data was re-versioned, and the refusals of bad input.

use std::sync::Arc;
use std::time::Duration;

use cairn_core::Error;
use cairn_core::lineage::{
    Direction, EdgeKind, NewEdge, NewNode, NewPrediction, NodeKind, NodeRef, SliceSpec, TraversalQuery,
    parse_openlineage_event,
};
use cairn_core::model::{Actor, Batch, KeyValue, NewExperiment, NewRun};
use cairn_core::registry::{NewModelVersion, NewRegisteredModel};
use cairn_core::store::Store;
use serde_json::json;

/// Generates one `#[tokio::test]` per lineage case for a backend fixture.
macro_rules! lineage_cases {
    ($fixture:ident) => {
        $crate::lineage::lineage_cases!(@each $fixture;
            lineage_story_as_of_before_retraining,
            bad_lineage_input_is_refused_and_stores_nothing,
            openlineage_events_join_the_graph,
            serving_history_and_the_details_of_health,
        );
    };
    (@each $fixture:ident; $($case:ident),* $(,)?) => {
        mod lineage_cases {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (store, _guard) = super::$fixture().await;
                    $crate::lineage::$case(store.clone()).await;
                    store.close().await.expect("close");
                }
            )*
        }
    };
}
pub(crate) use lineage_cases;

fn actor() -> Actor {
    Actor("lineage-tester".to_owned())
}

fn node(text: &str) -> NodeRef {
    NodeRef::parse(text).unwrap()
}

fn dataset_node(key: &str, digest: &str) -> NewNode {
    NewNode {
        label: None,
        digest: Some(digest.into()),
        attributes: [
            ("source_uri".to_owned(), json!(format!("s3://lake/{key}"))),
            ("row_count".to_owned(), json!(100)),
        ]
        .into_iter()
        .collect(),
    }
}

async fn dataset(store: &Arc<dyn Store>, key: &str, digest: &str) -> NodeRef {
    let n = node(&format!("dataset:{key}"));
    store.register_node(&actor(), n.clone(), dataset_node(key, digest)).await.expect("register dataset");
    n
}

async fn edge(store: &Arc<dyn Store>, source: &NodeRef, kind: EdgeKind, target: &NodeRef) {
    let new = NewEdge { source: source.clone(), kind, target: target.clone() };
    store.add_edge(&actor(), new).await.unwrap_or_else(|e| panic!("{source} -{}-> {target}: {e}", kind.as_str()));
}

async fn tracked_run(store: &Arc<dyn Store>, experiment_id: &str, tags: &[(&str, &str)]) -> NodeRef {
    let new = NewRun {
        experiment_id: experiment_id.to_owned(),
        user_id: "ana".into(),
        start_time: Some(now()),
        tags: tags.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect(),
        ..NewRun::default()
    };
    let run = store.create_run(&actor(), new).await.expect("create run");
    NodeRef::new(NodeKind::Run, run.info.run_id).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// One training round: a slice of `data`, a run on it with code and environment, a model version.
async fn train(store: &Arc<dyn Store>, experiment_id: &str, data: &NodeRef, commit: &str) -> (NodeRef, NodeRef, i64) {
    let slice = store
        .register_slice(
            &actor(),
            data.clone(),
            SliceSpec {
                partitions: vec!["2026-10".into()],
                sample_fraction: Some(0.5),
                seed: Some(7),
                ..SliceSpec::default()
            },
        )
        .await
        .expect("register slice");
    let run = tracked_run(
        store,
        experiment_id,
        &[
            ("mlflow.source.git.commit", commit),
            ("mlflow.source.git.repoURL", "https://git.example/churn.git"),
            ("cairn.environment.digest", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ],
    )
    .await;
    edge(store, &run, EdgeKind::Used, &slice.node).await;
    store
        .log_batch(&actor(), &run.key, Batch { params: vec![KeyValue::new("alpha", "0.1")], ..Batch::default() })
        .await
        .unwrap();
    let version = store
        .create_model_version(
            &actor(),
            NewModelVersion {
                name: "churn".into(),
                source: format!("runs:/{}/model", run.key),
                run_id: Some(run.key.clone()),
                user_id: "ana".into(),
                ..NewModelVersion::default()
            },
        )
        .await
        .expect("create model version");
    (slice.node, NodeRef::model_version("churn", version.version).unwrap(), version.version)
}

fn predictions(prefix: &str, n: usize) -> Vec<NewPrediction> {
    (0..n)
        .map(|i| NewPrediction {
            prediction_id: format!("{prefix}-{i}"),
            deployment: Some("churn-api".into()),
            model_version: None,
            input_digest: format!("{i:064x}"),
            output_digest: None,
            time: None,
        })
        .collect()
}

pub async fn lineage_story_as_of_before_retraining(store: Arc<dyn Store>) {
    let exp = store
        .create_experiment(&actor(), NewExperiment { name: "churn".into(), ..NewExperiment::default() })
        .await
        .unwrap();
    store
        .create_registered_model(&actor(), NewRegisteredModel { name: "churn".into(), ..Default::default() })
        .await
        .unwrap();

    // Preprocessing: raw -> clean, by a tracked run.
    let raw = dataset(&store, "sales-raw@2026-11-01", "aa11").await;
    let clean = dataset(&store, "sales-clean@1", "bb22").await;
    let prep = tracked_run(&store, &exp, &[]).await;
    edge(&store, &prep, EdgeKind::Used, &raw).await;
    edge(&store, &clean, EdgeKind::WasGeneratedBy, &prep).await;
    edge(&store, &clean, EdgeKind::WasDerivedFrom, &raw).await;

    let (slice1, v1, _) = train(&store, &exp, &clean, "c0ffee1").await;
    store.deploy(&actor(), "churn-api", v1.clone(), None).await.unwrap();
    let report = store.log_predictions(&actor(), predictions("p1", 2000), false).await.unwrap();
    assert_eq!(report.accepted, 2000);
    assert!(report.flagged.is_empty(), "complete lineage: {:?}", report.flagged);

    let trace = store.trace_prediction("p1-7", None).await.unwrap();
    assert!(trace.completeness.complete, "{:?}", trace.completeness);
    assert_eq!(trace.prediction.model_version, Some(v1.clone()));
    assert_eq!(trace.prediction.input_digest, format!("{:064x}", 7));
    let found = |graph: &cairn_core::lineage::Subgraph, n: &NodeRef| graph.node(n).cloned();
    for expected in [&raw, &clean, &slice1, &v1, &prep] {
        assert!(found(&trace.lineage, expected).is_some(), "trace lacks {expected}: {:#?}", trace.lineage.nodes);
    }
    assert_eq!(found(&trace.lineage, &raw).unwrap().digest.as_deref(), Some("aa11"));
    let code = NodeRef::new(NodeKind::Code, "https://git.example/churn.git@c0ffee1").unwrap();
    assert!(found(&trace.lineage, &code).is_some(), "code version from the run's git tags");
    assert!(trace.lineage.nodes.iter().any(|n| n.node.kind == NodeKind::Environment));

    let before_retraining = now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // The data is re-versioned, the model retrained and redeployed.
    let clean2 = dataset(&store, "sales-clean@2", "cc33").await;
    edge(&store, &clean2, EdgeKind::WasDerivedFrom, &raw).await;
    let (slice2, v2, _) = train(&store, &exp, &clean2, "c0ffee2").await;
    store.deploy(&actor(), "churn-api", v2.clone(), None).await.unwrap();
    store.log_predictions(&actor(), predictions("p2", 10), false).await.unwrap();

    let new_trace = store.trace_prediction("p2-0", None).await.unwrap();
    assert_eq!(new_trace.prediction.model_version, Some(v2.clone()));
    assert!(found(&new_trace.lineage, &slice2).is_some());
    assert!(found(&new_trace.lineage, &slice1).is_none(), "the new chain does not include the old slice");

    // The old prediction still traces to the old model and data, now and as of before.
    let old_trace = store.trace_prediction("p1-7", None).await.unwrap();
    assert!(found(&old_trace.lineage, &slice1).is_some());
    assert!(found(&old_trace.lineage, &v2).is_none(), "the deployment's later version is not in the old chain");
    let as_of = store.trace_prediction("p1-7", Some(before_retraining)).await.unwrap();
    assert!(found(&as_of.lineage, &slice1).is_some());
    assert!(store.trace_prediction("p2-0", Some(before_retraining)).await.is_err(), "p2 did not exist yet");

    // What did the deployment serve, as of before the retraining, and now?
    let deployment = NodeRef::new(NodeKind::Deployment, "churn-api").unwrap();
    let upstream =
        |as_of| TraversalQuery { start: deployment.clone(), direction: Direction::Upstream, max_depth: 10, as_of };
    let then = store.traverse(upstream(Some(before_retraining))).await.unwrap();
    assert!(found(&then, &v1).is_some() && found(&then, &v2).is_none(), "{:#?}", then.nodes);
    assert!(found(&then, &clean2).is_none(), "clean@2 was not recorded yet");
    let current = store.traverse(upstream(None)).await.unwrap();
    assert!(found(&current, &v2).is_some() && found(&current, &v1).is_none());

    // Downstream of the raw data: both cleaned versions, both runs, both model versions.
    let down = store
        .traverse(TraversalQuery { start: raw.clone(), direction: Direction::Downstream, max_depth: 10, as_of: None })
        .await
        .unwrap();
    for expected in [&clean, &clean2, &v1, &v2, &deployment] {
        assert!(found(&down, expected).is_some(), "downstream of raw lacks {expected}");
    }
    assert!(down.truncated, "2,000 predictions of one version are more than a traversal lists");

    // Depth limits are honoured and reported.
    let shallow = store
        .traverse(TraversalQuery { start: v1.clone(), direction: Direction::Upstream, max_depth: 1, as_of: None })
        .await
        .unwrap();
    assert!(shallow.truncated);
    assert!(found(&shallow, &raw).is_none());

    let health = store.lineage_health(None).await.unwrap();
    assert_eq!((health.model_versions, health.model_versions_complete), (2, 2));
    assert_eq!((health.predictions, health.predictions_flagged), (2010, 0));
    let then = store.lineage_health(Some(before_retraining)).await.unwrap();
    assert_eq!((then.model_versions, then.model_versions_complete, then.predictions), (1, 1, 2000));

    let report = store.verify_audit().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// Every deployment's serving intervals, as of now and as of before a redeployment, and the
/// health report's incomplete versions and predictions per deployment.
pub async fn serving_history_and_the_details_of_health(store: Arc<dyn Store>) {
    let exp = store
        .create_experiment(&actor(), NewExperiment { name: "serving".into(), ..NewExperiment::default() })
        .await
        .unwrap();
    store
        .create_registered_model(&actor(), NewRegisteredModel { name: "churn".into(), ..Default::default() })
        .await
        .unwrap();
    let data = dataset(&store, "serve@1", "dd44").await;
    let (_, v1, _) = train(&store, &exp, &data, "c0ffee1").await;
    // A version registered from a source alone has no training run: its lineage is incomplete.
    let bare = store
        .create_model_version(
            &actor(),
            NewModelVersion { name: "churn".into(), source: "s3://elsewhere/model".into(), ..Default::default() },
        )
        .await
        .unwrap();
    let v2 = NodeRef::model_version("churn", bare.version).unwrap();
    assert!(store.serving_history(None, None).await.unwrap().is_empty());

    store.deploy(&actor(), "churn-api", v1.clone(), Some(1_000)).await.unwrap();
    store.deploy(&actor(), "batch-scoring", v1.clone(), Some(1_500)).await.unwrap();
    store.log_predictions(&actor(), predictions("s1", 3), false).await.unwrap();
    let before_redeploy = now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.deploy(&actor(), "churn-api", v2.clone(), None).await.unwrap();
    store.log_predictions(&actor(), predictions("s2", 2), false).await.unwrap();
    let direct = NewPrediction {
        model_version: Some(format!("churn/{}", bare.version)),
        deployment: None,
        ..predictions("d", 1).remove(0)
    };
    store.log_predictions(&actor(), vec![direct], false).await.unwrap();

    let all = store.serving_history(None, None).await.unwrap();
    let summary: Vec<(&str, String, Option<i64>, bool)> = all
        .iter()
        .map(|i| (i.deployment.as_str(), i.model_version.to_string(), i.valid_from, i.valid_to.is_some()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("batch-scoring", v1.to_string(), Some(1_500), false),
            ("churn-api", v1.to_string(), Some(1_000), true),
            ("churn-api", v2.to_string(), all[2].valid_from, false),
        ],
        "{all:#?}"
    );
    assert!(all[2].valid_from.is_some_and(|from| from > before_redeploy));
    assert_eq!(all[1].valid_to, all[2].valid_from, "one interval ends where the next begins");

    let one = store.serving_history(Some("churn-api".into()), None).await.unwrap();
    assert_eq!(one.len(), 2);
    assert!(store.serving_history(Some("nowhere".into()), None).await.unwrap().is_empty());
    let then = store.serving_history(Some("churn-api".into()), Some(before_redeploy)).await.unwrap();
    assert_eq!(then.len(), 1, "the redeployment was not known yet: {then:#?}");
    assert_eq!((then[0].model_version.clone(), then[0].valid_to), (v1.clone(), None), "it was still serving then");

    let health = store.lineage_health(None).await.unwrap();
    assert_eq!(health.incomplete.len(), 1, "{:#?}", health.incomplete);
    assert_eq!(health.incomplete[0].model_version, v2);
    assert!(health.incomplete[0].missing.contains(&"training_run".to_owned()), "{:?}", health.incomplete[0].missing);
    let by: Vec<(Option<&str>, u64, u64)> =
        health.by_deployment.iter().map(|d| (d.deployment.as_deref(), d.predictions, d.flagged)).collect();
    assert_eq!(by, vec![(Some("churn-api"), 5, 2), (None, 1, 1)], "{:#?}", health.by_deployment);
    let earlier = store.lineage_health(Some(before_redeploy)).await.unwrap();
    assert_eq!(earlier.by_deployment.iter().map(|d| d.predictions).sum::<u64>(), 3);
}

pub async fn bad_lineage_input_is_refused_and_stores_nothing(store: Arc<dyn Store>) {
    let a = dataset(&store, "a@1", "01").await;
    let b = dataset(&store, "b@1", "02").await;
    edge(&store, &b, EdgeKind::WasDerivedFrom, &a).await;
    let events = store.audit_events(0, 100_000).await.unwrap().len();

    let cases: Vec<(NewEdge, &str)> = vec![
        (NewEdge { source: a.clone(), kind: EdgeKind::WasDerivedFrom, target: b.clone() }, "cycle"),
        (NewEdge { source: a.clone(), kind: EdgeKind::WasDerivedFrom, target: a.clone() }, "itself"),
        (
            NewEdge { source: a.clone(), kind: EdgeKind::WasDerivedFrom, target: node("dataset:ghost@1") },
            "does not exist",
        ),
        (NewEdge { source: a.clone(), kind: EdgeKind::Used, target: b.clone() }, "does not make sense"),
        // Only a run is informed by a run.
        (NewEdge { source: a.clone(), kind: EdgeKind::WasInformedBy, target: b.clone() }, "does not make sense"),
        (NewEdge { source: a.clone(), kind: EdgeKind::Served, target: b.clone() }, "deployments"),
    ];
    for (bad, needle) in cases {
        let err = store.add_edge(&actor(), bad.clone()).await.unwrap_err();
        assert!(err.to_string().contains(needle), "{bad:?}: {err}");
    }
    // Same content again is fine; other content under the same key is refused.
    store.register_node(&actor(), a.clone(), dataset_node("a@1", "01")).await.expect("identical re-registration");
    let conflict = store.register_node(&actor(), a.clone(), dataset_node("a@1", "ff")).await;
    assert!(matches!(conflict, Err(Error::AlreadyExists(_))), "{conflict:?}");
    let direct = store.register_node(&actor(), node("model-version:x/1"), NewNode::default()).await;
    assert!(matches!(direct, Err(Error::InvalidParameter(_))), "{direct:?}");

    // Predictions: unknown deployment, over the limit, duplicates, strict with incomplete lineage.
    assert!(matches!(store.log_predictions(&actor(), predictions("x", 1), false).await, Err(Error::NotFound(_))));
    let too_many = predictions("y", cairn_core::lineage::MAX_PREDICTION_BATCH + 1);
    assert!(matches!(store.log_predictions(&actor(), too_many, false).await, Err(Error::InvalidParameter(_))));

    let exp = store
        .create_experiment(&actor(), NewExperiment { name: "thin".into(), ..NewExperiment::default() })
        .await
        .unwrap();
    store
        .create_registered_model(&actor(), NewRegisteredModel { name: "thin".into(), ..Default::default() })
        .await
        .unwrap();
    let run = tracked_run(&store, &exp, &[]).await;
    store
        .create_model_version(
            &actor(),
            NewModelVersion {
                name: "thin".into(),
                source: "s3://elsewhere/model".into(),
                run_id: Some(run.key.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let thin = node("model-version:thin/1");
    let completeness = store.completeness(&thin, None).await.unwrap();
    assert_eq!(completeness.missing, ["dataset", "code_version", "environment"]);
    store.deploy(&actor(), "thin-api", thin.clone(), None).await.unwrap();
    let mut batch = predictions("s", 3);
    for p in &mut batch {
        p.deployment = Some("thin-api".into());
    }
    let strict = store.log_predictions(&actor(), batch.clone(), true).await.unwrap_err();
    assert!(strict.to_string().contains("code_version"), "{strict}");
    let lenient = store.log_predictions(&actor(), batch.clone(), false).await.unwrap();
    assert_eq!(lenient.flagged.len(), 3);
    let again = store.log_predictions(&actor(), batch, false).await;
    assert!(matches!(again, Err(Error::AlreadyExists(_))), "{again:?}");
    let health = store.lineage_health(None).await.unwrap();
    assert_eq!((health.predictions, health.predictions_flagged), (3, 3));
    assert!(health.model_versions_complete_ratio < 1.0);
    assert!(store.trace_prediction("nope", None).await.is_err());
    assert!(events < store.audit_events(0, 100_000).await.unwrap().len());
    assert!(store.verify_audit().await.unwrap().is_ok());
}

pub async fn openlineage_events_join_the_graph(store: Arc<dyn Store>) {
    let event = |kind: &str| {
        json!({
            "eventType": kind,
            "eventTime": "2026-11-23T10:00:00Z",
            "run": {"runId": "3f5e1c2a-0000-4000-8000-000000000001"},
            "job": {"namespace": "airflow", "name": "clean_sales"},
            "inputs": [{"namespace": "s3://lake", "name": "raw", "facets": {"version": {"datasetVersion": "7"}}}],
            "outputs": [{"namespace": "s3://lake", "name": "clean"}],
            "producer": "https://example/producer",
        })
    };
    for kind in ["START", "COMPLETE"] {
        let parsed = parse_openlineage_event(&event(kind)).unwrap();
        store.ingest_openlineage(&actor(), parsed).await.unwrap();
    }
    let raw = node("dataset:s3://lake/raw@7");
    let down = store
        .traverse(TraversalQuery { start: raw.clone(), direction: Direction::Downstream, max_depth: 5, as_of: None })
        .await
        .unwrap();
    let run = node("run:3f5e1c2a-0000-4000-8000-000000000001");
    assert!(down.node(&run).is_some(), "{:#?}", down.nodes);
    assert!(down.node(&node("dataset:s3://lake/clean@unversioned")).is_some());
    assert_eq!(down.edges.len(), 2, "START and COMPLETE describe the same edges once: {:#?}", down.edges);
    // An event whose output is its own input closes a cycle.
    let mut looped = event("COMPLETE");
    looped["run"]["runId"] = json!("3f5e1c2a-0000-4000-8000-000000000002");
    looped["inputs"] = json!([{"namespace": "s3://lake", "name": "clean"}]);
    looped["outputs"] =
        json!([{"namespace": "s3://lake", "name": "raw", "facets": {"version": {"datasetVersion": "7"}}}]);
    store.ingest_openlineage(&actor(), parse_openlineage_event(&looped).unwrap()).await.expect_err("cycle");
    assert!(store.verify_audit().await.unwrap().is_ok());
}
