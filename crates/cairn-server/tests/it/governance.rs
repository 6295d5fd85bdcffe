//! Promotion policies through MLflow's own routes: an alias or a stage change that the policy
//! forbids is refused naming every missing fact, and succeeds once the facts are recorded.

use serde_json::json;

use cairn_core::lineage::{EdgeKind, NewEdge, NewNode, NodeRef, parse_policy};
use cairn_core::model::{Actor, Batch, KeyValue, Metric};
use cairn_core::registry::{NewModelVersion, NewRegisteredModel};

use crate::common::{API, TestApp};

const POLICY: &str = r#"{"rules": [{
    "name": "production",
    "applies_to": {"models": ["churn*"], "stages": ["Production"], "aliases": ["champion"]},
    "require": {"dataset_digests": true, "code_version": true, "environment": true,
                "tags": ["validated_by"], "metrics": [{"key": "auc", "min": 0.8}]}
}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_need_the_facts_the_policy_names() {
    let app = TestApp::with(|state| state.with_policy(parse_policy(POLICY).unwrap())).await;
    let actor = Actor("gov".into());
    let exp = app.experiment("churn").await;
    let run = app.run(&exp).await;
    app.store
        .create_registered_model(&actor, NewRegisteredModel { name: "churn".into(), ..Default::default() })
        .await
        .unwrap();
    let version = NewModelVersion {
        name: "churn".into(),
        source: "s3://x/model".into(),
        run_id: Some(run.clone()),
        ..Default::default()
    };
    app.store.create_model_version(&actor, version).await.unwrap();

    let alias = json!({"name": "churn", "alias": "champion", "version": "1"});
    let before = app.event_count().await;
    let message = app.post(&format!("{API}/registered-models/alias"), alias.clone()).await.error(400, "INVALID_STATE");
    for fact in ["dataset", "code_version", "environment", "tag:validated_by", "metric:auc"] {
        assert!(message.contains(fact), "{fact} not named in: {message}");
    }
    assert_eq!(app.event_count().await, before, "a refused promotion writes nothing");
    let stage = json!({"name": "churn", "version": "1", "stage": "Production", "archive_existing_versions": false});
    app.post(&format!("{API}/model-versions/transition-stage"), stage.clone()).await.error(400, "INVALID_STATE");
    // Other aliases and stages are not governed.
    app.post(
        &format!("{API}/registered-models/alias"),
        json!({"name": "churn", "alias": "challenger", "version": "1"}),
    )
    .await
    .ok();

    // Record the facts: data with a digest, code, environment, a tag and a good metric.
    let data = NodeRef::parse("dataset:sales@1").unwrap();
    let digest = NewNode { label: None, digest: Some("ab12".into()), ..Default::default() };
    app.store.register_node(&actor, data.clone(), digest).await.unwrap();
    let run_node = NodeRef::parse(&format!("run:{run}")).unwrap();
    app.store.add_edge(&actor, NewEdge { source: run_node, kind: EdgeKind::Used, target: data }).await.unwrap();
    let batch = Batch {
        metrics: vec![Metric { key: "auc".into(), value: 0.91, timestamp: 1, step: 0 }],
        params: vec![],
        tags: vec![
            KeyValue::new("mlflow.source.git.commit", "abc123"),
            KeyValue::new("cairn.environment.digest", "ee11"),
            KeyValue::new("validated_by", "ana"),
        ],
    };
    app.store.log_batch(&actor, &run, batch).await.unwrap();

    app.post(&format!("{API}/registered-models/alias"), alias).await.ok();
    app.post(&format!("{API}/model-versions/transition-stage"), stage).await.ok();
}
