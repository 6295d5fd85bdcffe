//! Experiment routes.

use serde_json::json;

use crate::common::{API, TestApp};

#[tokio::test]
async fn default_experiment_has_mlflow_shape() {
    let app = TestApp::new().await;
    let body = app.get(&format!("{API}/experiments/get?experiment_id=0")).await.ok();
    let e = &body["experiment"];
    assert_eq!(e["experiment_id"], "0");
    assert_eq!(e["name"], "Default");
    assert_eq!(e["lifecycle_stage"], "active");
    assert!(e["creation_time"].is_i64(), "int64 fields are JSON numbers: {e}");
    assert!(e["last_update_time"].is_i64());
    assert!(e.get("tags").is_none(), "empty repeated fields are omitted: {e}");
}

#[tokio::test]
async fn create_get_rename_tag_delete_restore() {
    let app = TestApp::new().await;
    let created = app
        .post(
            &format!("{API}/experiments/create"),
            json!({ "name": "exp", "tags": [{ "key": "team", "value": "ml" }] }),
        )
        .await
        .ok();
    let id = created["experiment_id"].as_str().unwrap().to_owned();
    assert_eq!(created, json!({ "experiment_id": id }));

    let by_name = app.get(&format!("{API}/experiments/get-by-name?experiment_name=exp")).await.ok();
    assert_eq!(by_name["experiment"]["experiment_id"], id.as_str());
    assert_eq!(by_name["experiment"]["tags"], json!([{ "key": "team", "value": "ml" }]));
    assert_eq!(by_name["experiment"]["artifact_location"], format!("mlflow-artifacts:/{id}"));

    let ok =
        app.post(&format!("{API}/experiments/update"), json!({ "experiment_id": id, "new_name": "renamed" })).await;
    assert_eq!(ok.ok(), json!({}));
    app.post(
        &format!("{API}/experiments/set-experiment-tag"),
        json!({ "experiment_id": id, "key": "stage", "value": "dev" }),
    )
    .await
    .ok();
    app.post(&format!("{API}/experiments/delete-experiment-tag"), json!({ "experiment_id": id, "key": "team" }))
        .await
        .ok();
    let e = app.get(&format!("{API}/experiments/get?experiment_id={id}")).await.ok()["experiment"].clone();
    assert_eq!(e["name"], "renamed");
    assert_eq!(e["tags"], json!([{ "key": "stage", "value": "dev" }]));

    app.post(&format!("{API}/experiments/delete"), json!({ "experiment_id": id })).await.ok();
    let e = app.get(&format!("{API}/experiments/get?experiment_id={id}")).await.ok()["experiment"].clone();
    assert_eq!(e["lifecycle_stage"], "deleted");
    app.post(&format!("{API}/experiments/restore"), json!({ "experiment_id": id })).await.ok();
    let e = app.get(&format!("{API}/experiments/get?experiment_id={id}")).await.ok()["experiment"].clone();
    assert_eq!(e["lifecycle_stage"], "active");
}

#[tokio::test]
async fn duplicate_and_missing_names_are_refused_without_writes() {
    let app = TestApp::new().await;
    app.experiment("taken").await;
    let before = app.event_count().await;
    let r = app.post(&format!("{API}/experiments/create"), json!({ "name": "taken" })).await;
    r.error(400, "RESOURCE_ALREADY_EXISTS");
    let r = app.post(&format!("{API}/experiments/create"), json!({})).await;
    assert_eq!(
        r.error(400, "INVALID_PARAMETER_VALUE"),
        "Missing value for required parameter 'name'. See the API docs for more information about request parameters."
    );
    let r = app.post(&format!("{API}/experiments/create"), json!({ "name": 7 })).await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").contains("Value was of type 'int'"));
    let r = app.post(&format!("{API}/experiments/create"), json!({ "name": "x".repeat(501) })).await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").contains("exceeds the maximum length of 500"));
    let r =
        app.post(&format!("{API}/experiments/create"), json!({ "name": "r", "artifact_location": "runs:/x" })).await;
    r.error(400, "INVALID_PARAMETER_VALUE");
    let r = app
        .post(&format!("{API}/experiments/set-experiment-tag"), json!({ "experiment_id": "0", "key": "bad/../key" }))
        .await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").contains("would resolve to 'key'"));
    assert_eq!(app.event_count().await, before, "refused requests write nothing");
    let r = app.get(&format!("{API}/experiments/get?experiment_id=424242")).await;
    r.error(404, "RESOURCE_DOES_NOT_EXIST");
    let r = app.get(&format!("{API}/experiments/get-by-name?experiment_name=nope")).await;
    r.error(404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn search_pages_with_tokens_on_get_and_post_and_both_prefixes() {
    let app = TestApp::new().await;
    for name in ["a", "b", "c"] {
        app.experiment(name).await;
    }
    // Default + 3 experiments, two per page.
    let first = app.post(&format!("{API}/experiments/search"), json!({ "max_results": 2 })).await.ok();
    assert_eq!(first["experiments"].as_array().unwrap().len(), 2);
    let token = first["next_page_token"].as_str().expect("a next page").to_owned();
    let second =
        app.post(&format!("{API}/experiments/search"), json!({ "max_results": "2", "page_token": token })).await.ok();
    assert_eq!(second["experiments"].as_array().unwrap().len(), 2);
    assert!(second.get("next_page_token").is_none(), "{second}");

    let via_get = app.get("/ajax-api/2.0/mlflow/experiments/search?max_results=10&view_type=ALL").await.ok();
    assert_eq!(via_get["experiments"].as_array().unwrap().len(), 4);

    let r = app.post(&format!("{API}/experiments/search"), json!({ "page_token": "garbage!" })).await;
    assert_eq!(r.error(400, "INVALID_PARAMETER_VALUE"), "Invalid page token, could not base64-decode");
    let r = app.post(&format!("{API}/experiments/search"), json!({ "max_results": 0 })).await;
    r.error(400, "INVALID_PARAMETER_VALUE");
    let r = app.post(&format!("{API}/experiments/search"), json!({ "view_type": "SOMETIMES" })).await;
    r.error(400, "INVALID_PARAMETER_VALUE");
}
