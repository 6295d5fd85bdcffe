//! One test over a real socket: startup, a few requests, graceful shutdown.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use cairn_server::{AppState, serve_on};
use cairn_store::StoreConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tcp_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
    let store = cairn_store::open(&StoreConfig::new(uri.clone())).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(
        listener,
        AppState::new(store),
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(5),
    ));

    let client = reqwest::Client::new();
    let health: Value = client.get(format!("{base}/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({ "status": "ok" }));
    let created = client
        .post(format!("{base}/api/2.0/mlflow/experiments/create"))
        .json(&json!({ "name": "over-tcp" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let missing = client.get(format!("{base}/api/2.0/mlflow/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["error_code"], "ENDPOINT_NOT_FOUND");

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("stops in time").unwrap().unwrap();
    assert!(client.get(format!("{base}/health")).send().await.is_err(), "no longer listening");

    // The store was closed cleanly: reopening sees the write and a valid audit chain.
    let reopened = cairn_store::open(&StoreConfig::new(uri)).await.unwrap();
    assert_eq!(reopened.get_experiment_by_name("over-tcp").await.unwrap().name, "over-tcp");
    assert!(reopened.verify_audit().await.unwrap().is_ok());
    reopened.close().await.unwrap();
}
