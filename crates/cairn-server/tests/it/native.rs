//! Cairn's native routes: health, version, audit.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use crate::common::{API, TestApp};

#[tokio::test]
async fn health_and_version() {
    let app = TestApp::new().await;
    assert_eq!(app.get("/health").await.ok(), json!({ "status": "ok" }));
    let version = app.get("/version").await.ok();
    assert_eq!(version["mlflow_api"], "2.0");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    let info = app.get("/api/3.0/mlflow/server-info").await.ok();
    assert_eq!(info["workspaces_enabled"], false);
    assert_eq!(info["store_type"], "SqlStore");
    assert_eq!(app.get("/ajax-api/3.0/mlflow/server-info").await.ok(), info);
}

#[tokio::test]
async fn audit_events_record_the_basic_auth_user() {
    let app = TestApp::new().await;
    let start = app.event_count().await as i64;
    // "alice:pw"
    let request = Request::post(format!("{API}/experiments/create"))
        .header("authorization", "Basic YWxpY2U6cHc=")
        .header("content-type", "application/json")
        .body(Body::from(json!({ "name": "audited" }).to_string()))
        .unwrap();
    app.send(request).await.ok();
    app.experiment("anonymous one").await;

    let body = app.get(&format!("/api/cairn/v1/audit/events?after={start}&limit=1")).await.ok();
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["actor"], "alice");
    let next = body["next_after"].as_i64().expect("a full page says where to continue");
    let body = app.get(&format!("/api/cairn/v1/audit/events?after={next}")).await.ok();
    assert_eq!(body["events"][0]["actor"], "anonymous");
    assert!(body.get("next_after").is_none());

    let r = app.get("/api/cairn/v1/audit/events?limit=0").await;
    r.error(400, "INVALID_PARAMETER_VALUE");
    let r = app.get("/api/cairn/v1/audit/events?after=abc").await;
    r.error(400, "INVALID_PARAMETER_VALUE");

    let report = app.post("/api/cairn/v1/audit/verify", json!({})).await.ok();
    assert_eq!(report["ok"], true);
    assert_eq!(report["problems"], json!([]));
    assert!(report["events"].as_u64().unwrap() >= 2);
}
