//! Error classes common to every route: malformed bodies, unknown routes and methods, size
//! limits, hostile input.

use serde_json::json;

use crate::common::{API, TestApp};

#[tokio::test]
async fn malformed_bodies_are_invalid_parameter_values() {
    let app = TestApp::new().await;
    let before = app.event_count().await;
    let r = app.post_raw(&format!("{API}/experiments/create"), "{\"name\": ").await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").starts_with("Malformed JSON request body"));
    let r = app.post_raw(&format!("{API}/experiments/create"), "[\"name\"]").await;
    r.error(400, "INVALID_PARAMETER_VALUE");
    let r = app.post_raw(&format!("{API}/runs/log-metric"), "").await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").contains("'run_id'"));
    // Old clients double-encode their JSON; MLflow accepts it and so do we.
    let ok = app.post_raw(&format!("{API}/experiments/create"), json!("{\"name\": \"double\"}").to_string()).await;
    ok.ok();
    assert_eq!(app.event_count().await, before + 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let app = TestApp::new().await;
    let r = app.get(&format!("{API}/experiments/nope")).await;
    r.error(404, "ENDPOINT_NOT_FOUND");
    let r = app.post(&format!("{API}/experiments/get"), json!({})).await;
    r.error(405, "BAD_REQUEST");
    let r = app.get("/api/3.0/mlflow/anything").await;
    r.error(404, "ENDPOINT_NOT_FOUND");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::new().await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(cairn_server::BODY_LIMIT_BYTES + 1));
    let r = app.post_raw(&format!("{API}/experiments/create"), huge).await;
    assert!(r.error(413, "INVALID_PARAMETER_VALUE").contains("exceeds the limit"));
}

#[tokio::test]
async fn hostile_strings_are_data_not_code() {
    let app = TestApp::new().await;
    let name = "x'); DROP TABLE runs; -- \u{1F600} \"q\"";
    let id = app.experiment(name).await;
    let by_name = app.get(&format!("{API}/experiments/get?experiment_id={id}")).await.ok();
    assert_eq!(by_name["experiment"]["name"], name);
    let run_id = app.run(&id).await;
    app.post(&format!("{API}/runs/set-tag"), json!({ "run_id": run_id, "key": "k", "value": "'; DELETE FROM runs;" }))
        .await
        .ok();
    let r =
        app.post(&format!("{API}/runs/set-tag"), json!({ "run_id": "' OR 1=1 --", "key": "k", "value": "v" })).await;
    assert!(r.status.is_client_error(), "{r:?}");
    assert!(app.get_run(&run_id).await["data"]["tags"].as_array().unwrap().iter().any(|t| t["key"] == "k"));
    assert!(app.store.verify_audit().await.unwrap().is_ok());
}

#[tokio::test]
async fn hostile_filters_are_refused_cleanly() {
    let app = TestApp::new().await;
    let run_id = app.run("0").await;
    let before = app.get_run(&run_id).await;
    for filter in [
        "metrics.x = 1; DROP TABLE runs",
        "params.p = 'unterminated",
        "tags.`k` LIKE",
        "attributes.nope = 1",
        "1 = 1 OR 1 = 1",
    ] {
        let r = app.post(&format!("{API}/runs/search"), json!({ "experiment_ids": ["0"], "filter": filter })).await;
        r.error(400, "INVALID_PARAMETER_VALUE");
    }
    let r = app
        .post(&format!("{API}/runs/search"), json!({ "experiment_ids": ["0"], "order_by": ["metrics.m SIDEWAYS"] }))
        .await;
    r.error(400, "INVALID_PARAMETER_VALUE");
    assert_eq!(app.get_run(&run_id).await, before);
}
