//! The registry routes driven through the whole application (`app(state)` with `oneshot`) over
//! a fresh SQLite store: MLflow's methods, request reading and error answers, and the native
//! history routes.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

use cairn_core::artifacts::NewArtifact;
use cairn_core::model::Actor;
use cairn_core::store::Store;
use cairn_store::StoreConfig;

use crate::{AppState, app};

const API: &str = "/api/2.0/mlflow";

struct TestApp {
    router: Router,
    store: Arc<dyn Store>,
    _dir: TempDir,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{:?}", self.body);
        self.body
    }

    /// Asserts an MLflow error and returns its message.
    #[track_caller]
    fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(self.body["error_code"], code, "{:?}", self.body);
        self.body["message"].as_str().expect("message").to_owned()
    }
}

impl TestApp {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
        let store = cairn_store::open(&StoreConfig::new(uri)).await.expect("open store");
        TestApp { router: app(AppState::new(store.clone())), store, _dir: dir }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.expect("infallible");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        Reply { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, &format!("{API}/{path}"), None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, &format!("{API}/{path}"), Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, &format!("{API}/{path}"), Some(body)).await
    }

    async fn delete(&self, path: &str, body: Value) -> Reply {
        self.call(Method::DELETE, &format!("{API}/{path}"), Some(body)).await
    }

    async fn native(&self, path: &str) -> Reply {
        self.call(Method::GET, &format!("/api/cairn/v1/models/{path}"), None).await
    }

    async fn events(&self) -> usize {
        self.store.audit_events(0, 1_000_000).await.expect("audit events").len()
    }

    /// A run with a file under `model/`, and the source the client would register from it.
    async fn run_with_model(&self) -> (String, String) {
        let experiment = self.post("experiments/create", json!({"name": "e"})).await.ok();
        let experiment_id = experiment["experiment_id"].as_str().unwrap().to_owned();
        let run = self.post("runs/create", json!({"experiment_id": experiment_id})).await.ok();
        let info = &run["run"]["info"];
        let run_id = info["run_id"].as_str().unwrap().to_owned();
        // A manifest row stands in for an upload: pinning needs a file, not its bytes.
        let manifest = self.store.clone().artifact_manifest().expect("the SQL store keeps a manifest");
        let file = NewArtifact { path: "model/MLmodel".into(), digest: "ab".repeat(32), size: 3 };
        manifest.put_artifact(&Actor::anonymous(), &run_id, file).await.expect("manifest row");
        let source = format!("{}/model", info["artifact_uri"].as_str().unwrap());
        (run_id, source)
    }
}

#[tokio::test]
async fn requests_are_validated_before_the_store_is_asked() {
    let app = TestApp::new().await;
    let before = app.events().await;
    let missing = app.post("registered-models/create", json!({})).await;
    assert!(missing.error(400, "INVALID_PARAMETER_VALUE").starts_with("Missing value for required parameter 'name'"));
    let wrong_type = app.post("registered-models/create", json!({"name": 5})).await;
    assert!(wrong_type.error(400, "INVALID_PARAMETER_VALUE").contains("Value was of type 'int'"));
    let bad_version = app.get("model-versions/get?name=m&version=abc").await;
    assert_eq!(bad_version.error(400, "INVALID_PARAMETER_VALUE"), "Parameter 'version' must be an integer, got 'abc'.");
    let too_many = app.get("registered-models/search?max_results=1001").await;
    let message = too_many.error(400, "INVALID_PARAMETER_VALUE");
    assert!(message.starts_with("Invalid value \"1001\" for parameter 'max_results'"), "{message}");
    let bad_filter = app.get("registered-models/search?filter=nonsense%20%3D%20%27x%27").await;
    bad_filter.error(400, "INVALID_PARAMETER_VALUE");
    let twice = app.get("model-versions/search?order_by=name&order_by=name%20DESC").await;
    twice.error(400, "INVALID_PARAMETER_VALUE");
    let bad_token = app.get("registered-models/search?page_token=%21%21").await;
    assert!(bad_token.error(400, "INVALID_PARAMETER_VALUE").starts_with("Invalid page token"));
    let zero = app.get("model-versions/search?max_results=0").await;
    assert!(zero.error(400, "INVALID_PARAMETER_VALUE").contains("must be a positive integer, but got 0"));
    let bad_stage = app.post("registered-models/get-latest-versions", json!({"name": "m", "stages": ["Prod"]})).await;
    assert!(bad_stage.error(400, "INVALID_PARAMETER_VALUE").starts_with("Invalid Model Version stage: Prod."));
    let transition = json!({"name": "m", "version": "1", "stage": "Archived", "archive_existing_versions": true});
    let archive = app.post("model-versions/transition-stage", transition).await;
    assert!(archive.error(400, "INVALID_PARAMETER_VALUE").contains("'Archived' is not an Active stage"));
    let transition = json!({"name": "m", "version": "1", "stage": "Staging", "archive_existing_versions": "yes"});
    let not_bool = app.post("model-versions/transition-stage", transition).await;
    assert!(not_bool.error(400, "INVALID_PARAMETER_VALUE").contains("'archive_existing_versions'"));
    assert_eq!(app.events().await, before, "refused requests must not be audited");
}

#[tokio::test]
async fn routes_take_mlflow_methods_only() {
    let app = TestApp::new().await;
    app.get("registered-models/create?name=m").await.error(405, "BAD_REQUEST");
    app.post("registered-models/update", json!({"name": "m"})).await.error(405, "BAD_REQUEST");
    app.post("model-versions/delete", json!({"name": "m", "version": "1"})).await.error(405, "BAD_REQUEST");
    app.call(Method::PUT, &format!("{API}/registered-models/alias"), Some(json!({}))).await.error(405, "BAD_REQUEST");
    app.call(Method::POST, "/ajax-api/2.0/mlflow/registered-models/create", Some(json!({})))
        .await
        .error(400, "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn sources_must_lie_in_the_run_they_claim() {
    let app = TestApp::new().await;
    let (run_id, source) = app.run_with_model().await;
    app.post("registered-models/create", json!({"name": "m"})).await.ok();
    let before = app.events().await;
    let check = |body: Value, fragment: &'static str| {
        let app = &app;
        async move {
            let r = app.post("model-versions/create", body).await;
            let message = r.error(400, "INVALID_PARAMETER_VALUE");
            assert!(message.contains(fragment), "{message}");
        }
    };
    check(json!({"name": "m", "source": source}), "The run_id request parameter must identify").await;
    check(json!({"name": "m", "source": source, "run_id": "f".repeat(32)}), "The run_id request parameter").await;
    check(json!({"name": "m", "source": format!("runs:/{run_id}/model"), "run_id": "other"}), "run_id request").await;
    check(json!({"name": "m", "source": format!("{source}/../../x"), "run_id": run_id}), "an absolute path").await;
    check(json!({"name": "m", "source": "/tmp/model"}), "To use a local path as a model version source").await;
    check(json!({"name": "m", "source": "models:/m-abc"}), "The model_id request parameter").await;
    check(json!({"name": "m", "source": "models://host/x/1"}), "must use the active model registry").await;
    assert_eq!(app.events().await, before);
}

#[tokio::test]
async fn registry_round_trip_over_query_strings_and_json_bodies() {
    let app = TestApp::new().await;
    let (run_id, source) = app.run_with_model().await;
    let tagged = json!({"name": "m", "tags": [{"key": "k", "value": "v"}]});
    let created = app.post("registered-models/create", tagged).await;
    assert_eq!(created.ok()["registered_model"]["name"], "m");
    let duplicate = app.post("registered-models/create", json!({"name": "m"})).await;
    duplicate.error(400, "RESOURCE_ALREADY_EXISTS");

    let version = app.post("model-versions/create", json!({"name": "m", "source": source, "run_id": run_id})).await;
    let version = version.ok()["model_version"].clone();
    assert_eq!(version["version"], "1");
    assert_eq!(version["status"], "READY");
    assert_eq!(version["current_stage"], "None");
    assert_eq!(version["run_id"], run_id.as_str());

    // A GET reads the query string; without one, MLflow falls back to the body.
    let by_query = app.get("model-versions/get?name=m&version=1").await.ok();
    let path = format!("{API}/model-versions/get");
    let by_body = app.call(Method::GET, &path, Some(json!({"name": "m", "version": "1"}))).await;
    assert_eq!(by_query, by_body.ok());

    app.post("registered-models/alias", json!({"name": "m", "alias": "champion", "version": "1"})).await.ok();
    let aliased = app.get("registered-models/alias?name=m&alias=champion").await.ok();
    assert_eq!(aliased["model_version"]["aliases"], json!(["champion"]));
    let model = app.get("registered-models/get?name=m").await.ok();
    assert_eq!(model["registered_model"]["aliases"], json!([{"alias": "champion", "version": "1"}]));

    let uri = app.get("model-versions/get-download-uri?name=m&version=1").await.ok();
    let uri = uri["artifact_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("mlflow-artifacts:/model-versions/mv-"), "{uri}");

    let moved = json!({"name": "m", "version": "1", "stage": "production", "archive_existing_versions": false});
    let moved = app.post("model-versions/transition-stage", moved).await.ok();
    assert_eq!(moved["model_version"]["current_stage"], "Production");
    let latest = app.get("registered-models/get-latest-versions?name=m&stages=Production").await.ok();
    assert_eq!(latest["model_versions"][0]["version"], "1");

    let updated = app.patch("registered-models/update", json!({"name": "m", "description": "d"})).await.ok();
    assert_eq!(updated["registered_model"]["description"], "d");
    app.delete("registered-models/alias", json!({"name": "m", "alias": "champion"})).await.ok();
    app.delete("registered-models/delete", json!({"name": "m"})).await.ok();
    app.get("registered-models/get?name=m").await.error(404, "RESOURCE_DOES_NOT_EXIST");
    assert!(app.store.verify_audit().await.unwrap().is_ok());
}

#[tokio::test]
async fn native_history_answers_as_of_questions() {
    let app = TestApp::new().await;
    let (run_id, source) = app.run_with_model().await;
    app.post("registered-models/create", json!({"name": "m"})).await.ok();
    for _ in 0..2 {
        app.post("model-versions/create", json!({"name": "m", "source": source, "run_id": run_id})).await.ok();
    }
    app.post("registered-models/alias", json!({"name": "m", "alias": "champion", "version": "1"})).await.ok();
    let history = app.native("m/history").await.ok();
    let entries = history["history"].as_array().unwrap();
    let set = entries.iter().find(|e| e["kind"] == "alias_set").expect("alias_set entry");
    let first_set = set["time"].as_i64().unwrap();
    // Make sure the second move happens at a later millisecond than the first.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.post("registered-models/alias", json!({"name": "m", "alias": "champion", "version": "2"})).await.ok();

    let then = app.native(&format!("m/aliases/champion?as_of={first_set}")).await.ok();
    assert_eq!(then["version"], 1);
    assert_eq!(then["model_version"]["version"], 1);
    assert_eq!(app.native("m/aliases/champion").await.ok()["version"], 2);
    let before = app.native(&format!("m/aliases/champion?as_of={}", first_set - 1)).await;
    before.error(404, "RESOURCE_DOES_NOT_EXIST");
    let early = app.native(&format!("m/history?as_of={}", first_set - 1)).await.ok();
    assert!(early["history"].as_array().unwrap().iter().all(|e| e["kind"] != "alias_set"));

    app.native("nope/history").await.error(404, "RESOURCE_DOES_NOT_EXIST");
    let bad_time = app.native("m/history?as_of=yesterday").await;
    assert!(bad_time.error(400, "INVALID_PARAMETER_VALUE").contains("RFC 3339"));
}
