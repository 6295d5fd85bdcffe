//! A router over a fresh SQLite store in a temporary folder, and request helpers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

use cairn_core::store::Store;
use cairn_server::{AppState, app};
use cairn_store::StoreConfig;

/// The MLflow REST prefix.
pub const API: &str = "/api/2.0/mlflow";

/// An application over its own store.
pub struct TestApp {
    pub router: Router,
    pub store: Arc<dyn Store>,
    _dir: TempDir,
}

/// A response: status and JSON body (`Null` when the body is empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// Asserts an MLflow error and returns its message.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(self.body["error_code"], code, "{:?}", self.body);
        self.body["message"].as_str().expect("message is a string").to_owned()
    }

    /// Asserts success and returns the body.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{:?}", self.body);
        self.body
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(|state| state).await
    }

    /// An application whose state `configure` adjusts (a policy, say).
    pub async fn with(configure: impl FnOnce(AppState) -> AppState) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
        let store = cairn_store::open(&StoreConfig::new(uri)).await.expect("open store");
        TestApp { router: app(configure(AppState::new(store.clone()))), store, _dir: dir }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("router is infallible");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.post_raw(path, body.to_string()).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send_json(Method::PUT, path, body.to_string()).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send_json(Method::PATCH, path, body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<Body>) -> Reply {
        self.send_json(Method::POST, path, body).await
    }

    async fn send_json(&self, method: Method, path: &str, body: impl Into<Body>) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .unwrap();
        self.send(request).await
    }

    /// Creates an experiment and returns its id.
    pub async fn experiment(&self, name: &str) -> String {
        let body = self.post(&format!("{API}/experiments/create"), json!({ "name": name })).await.ok();
        body["experiment_id"].as_str().expect("experiment_id").to_owned()
    }

    /// Creates a run and returns its id.
    pub async fn run(&self, experiment_id: &str) -> String {
        let body = self
            .post(&format!("{API}/runs/create"), json!({ "experiment_id": experiment_id, "start_time": 1000 }))
            .await
            .ok();
        body["run"]["info"]["run_id"].as_str().expect("run_id").to_owned()
    }

    /// The run as `runs/get` returns it.
    pub async fn get_run(&self, run_id: &str) -> Value {
        self.get(&format!("{API}/runs/get?run_id={run_id}")).await.ok()["run"].clone()
    }

    /// How many audit events exist: a mutation that was refused must not add one.
    pub async fn event_count(&self) -> usize {
        self.store.audit_events(0, 1_000_000).await.expect("audit events").len()
    }
}
