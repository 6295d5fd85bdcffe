//! One test over a real socket: startup, a few requests, graceful shutdown.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use cairn_server::{AppState, serve_on};
use cairn_store::StoreConfig;

/// Serves a SQLite store at `uri` on a free local port until the sender is used.
async fn start(uri: &str) -> (std::net::SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let store = cairn_store::open(&StoreConfig::new(uri.to_owned())).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(
        listener,
        AppState::new(store),
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(5),
    ));
    (address, stop_tx, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tcp_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
    let (address, stop_tx, server) = start(&uri).await;
    let base = format!("http://{address}");

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

/// Reads one HTTP/1.1 response from `stream`, returning its head (status line and headers,
/// lower-cased) and its body.
async fn read_response(stream: &mut tokio::net::TcpStream) -> (String, String) {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed before a whole response: {:?}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse().unwrap());
            if received.len() >= end + 4 + length {
                return (head, text[end + 4..end + 4 + length].to_string());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_given_before_the_body_arrives_closes_the_connection_and_says_so() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
    let (address, stop_tx, server) = start(&uri).await;

    // A client that sends the head, then the body in a second packet, as `requests` does: the
    // unknown route is answered from the head alone.
    let body = r#"{"name":"late"}"#;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/2.0/mlflow/nothing HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (answer, _) = read_response(&mut stream).await;
    assert!(answer.starts_with("http/1.1 404"), "{answer}");
    assert!(answer.lines().any(|line| line == "connection: close"), "the client is told not to reuse it: {answer}");

    // A request whose body the handler reads keeps its connection for the next request.
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    for name in ["kept-1", "kept-2"] {
        let body = format!(r#"{{"name":"{name}"}}"#);
        let request = format!(
            "POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let (answer, body) = read_response(&mut stream).await;
        assert!(answer.starts_with("http/1.1 200"), "{answer} {body}");
        assert!(!answer.contains("connection: close"), "{answer}");
        assert!(body.contains("experiment_id"), "{body}");
    }

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("stops in time").unwrap().unwrap();
}
