//! The proxied artifact routes and the native manifest route, in-process over SQLite and a
//! local blob directory.

use std::path::Path;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

use cairn_server::{AppState, app};
use cairn_store::StoreConfig;

const ARTIFACTS: &str = "/api/2.0/mlflow-artifacts/artifacts";
const API: &str = "/api/2.0/mlflow";

struct ArtifactApp {
    router: Router,
    dir: TempDir,
}

struct Raw {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl ArtifactApp {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
        let store = cairn_store::open(&StoreConfig::new(uri)).await.expect("open store");
        let blobs = cairn_artifacts::BlobStore::open(&dir.path().join("artifacts").to_string_lossy()).expect("blobs");
        let state = AppState::with_artifacts(store, blobs).expect("state");
        ArtifactApp { router: app(state), dir }
    }

    async fn send(&self, request: Request<Body>) -> Raw {
        let response = self.router.clone().oneshot(request).await.expect("router is infallible");
        let (parts, body) = response.into_parts();
        Raw { status: parts.status, headers: parts.headers, body: body.collect().await.expect("body").to_bytes() }
    }

    async fn request(&self, method: Method, path: &str, body: impl Into<Body>) -> Raw {
        self.send(Request::builder().method(method).uri(path).body(body.into()).unwrap()).await
    }

    /// Creates a run and returns `(run_id, its root below mlflow-artifacts:/)`.
    async fn run(&self) -> (String, String) {
        let body = json!({ "experiment_id": "0", "start_time": 1 }).to_string();
        let request = Request::post(format!("{API}/runs/create"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let reply = self.send(request).await.json();
        let info = &reply["run"]["info"];
        let uri = info["artifact_uri"].as_str().expect("artifact_uri");
        let root = uri.strip_prefix("mlflow-artifacts:/").expect("proxied root").to_owned();
        (info["run_id"].as_str().unwrap().to_owned(), root)
    }

    async fn put(&self, path: &str, bytes: &'static [u8]) -> Raw {
        self.request(Method::PUT, &format!("{ARTIFACTS}/{path}"), bytes).await
    }

    fn blob_files(&self) -> usize {
        count_files(&self.dir.path().join("artifacts").join("blobs"))
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.filter_map(Result::ok).map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_list_download_and_delete_round_trip() {
    let app = ArtifactApp::new().await;
    let (run_id, root) = app.run().await;
    assert_eq!(app.put(&format!("{root}/model/weights.bin"), b"0123456789").await.status, StatusCode::OK);
    assert_eq!(app.put(&format!("{root}/model/sub/conf.json"), b"{}").await.status, StatusCode::OK);
    assert_eq!(app.put(&format!("{root}/readme.txt"), b"hello").await.status, StatusCode::OK);

    let listed = app.request(Method::GET, &format!("{ARTIFACTS}?path={root}"), Body::empty()).await.json();
    assert_eq!(
        listed["files"],
        json!([
            {"path": "model", "is_dir": true},
            {"path": "readme.txt", "is_dir": false, "file_size": 5},
        ])
    );
    let listed = app.request(Method::GET, &format!("{ARTIFACTS}?path={root}/model"), Body::empty()).await.json();
    assert_eq!(listed["files"][0], json!({"path": "sub", "is_dir": true}));
    assert_eq!(listed["files"][1], json!({"path": "weights.bin", "is_dir": false, "file_size": 10}));
    // A file lists as empty, which is how the client tells files from folders.
    let listed = app.request(Method::GET, &format!("{ARTIFACTS}?path={root}/readme.txt"), Body::empty()).await;
    assert_eq!(listed.json(), json!({}));

    let got = app.request(Method::GET, &format!("{ARTIFACTS}/{root}/model/weights.bin"), Body::empty()).await;
    assert_eq!((got.status, &got.body[..]), (StatusCode::OK, &b"0123456789"[..]));
    assert_eq!(got.headers[header::CONTENT_LENGTH], "10");

    let native = app.request(Method::GET, &format!("/api/cairn/v1/runs/{run_id}/artifacts"), Body::empty()).await;
    let native = native.json();
    assert_eq!(native["files"].as_array().unwrap().len(), 3);
    assert_eq!(native["files"][2]["path"], "readme.txt");
    assert_eq!(native["files"][2]["digest"], cairn_artifacts::Digest::of(b"hello").to_hex());
    assert_eq!(native["algorithm"], "sha256");
    let unknown = app.request(Method::GET, "/api/cairn/v1/runs/nope/artifacts", Body::empty()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let deleted = app.request(Method::DELETE, &format!("{ARTIFACTS}/{root}/model"), Body::empty()).await;
    assert_eq!(deleted.status, StatusCode::OK);
    let gone = app.request(Method::GET, &format!("{ARTIFACTS}/{root}/model/weights.bin"), Body::empty()).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json()["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_are_served_as_partial_content() {
    let app = ArtifactApp::new().await;
    let (_, root) = app.run().await;
    app.put(&format!("{root}/data.bin"), b"abcdefghij").await;
    let get = |range: &'static str| {
        let request =
            Request::get(format!("{ARTIFACTS}/{root}/data.bin")).header(header::RANGE, range).body(Body::empty());
        app.send(request.unwrap())
    };
    let part = get("bytes=2-4").await;
    assert_eq!((part.status, &part.body[..]), (StatusCode::PARTIAL_CONTENT, &b"cde"[..]));
    assert_eq!(part.headers[header::CONTENT_RANGE], "bytes 2-4/10");
    let tail = get("bytes=-3").await;
    assert_eq!((tail.status, &tail.body[..]), (StatusCode::PARTIAL_CONTENT, &b"hij"[..]));
    let beyond = get("bytes=20-").await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.headers[header::CONTENT_RANGE], "bytes */10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_or_foreign_paths_are_refused() {
    let app = ArtifactApp::new().await;
    let (_, root) = app.run().await;
    for bad in [format!("{root}/../../x"), format!("{root}/%2e%2e/%2e%2e/x"), format!("{root}/a%00b")] {
        let reply = app.put(&bad, b"x").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", reply.json());
        assert_eq!(reply.json()["error_code"], "INVALID_PARAMETER_VALUE", "{bad}");
    }
    assert_eq!(app.blob_files(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_outside_every_run_belong_to_the_root_and_reach_no_run() {
    let app = ArtifactApp::new().await;
    let (_, root) = app.run().await;
    // A path under no run, and a run's id under the wrong experiment: both are root files.
    let run_id = root.split('/').nth(1).unwrap();
    for foreign in ["0/loose/file.txt".to_owned(), format!("9/{run_id}/artifacts/f.txt")] {
        let reply = app.put(&foreign, b"root bytes").await;
        assert_eq!(reply.status, StatusCode::OK, "{foreign}: {:?}", reply.json());
        let got = app.request(Method::GET, &format!("{ARTIFACTS}/{foreign}"), Body::empty()).await;
        assert_eq!(&got.body[..], b"root bytes", "{foreign}");
    }
    let in_run = app.request(Method::GET, &format!("{ARTIFACTS}/{root}/f.txt"), Body::empty()).await;
    assert_eq!(in_run.status, StatusCode::NOT_FOUND, "the run's own tree is untouched");
    let listed = app.request(Method::GET, &format!("{ARTIFACTS}?path=0/loose"), Body::empty()).await;
    assert_eq!(listed.json()["files"][0]["path"], "file.txt");
    let gone = app.request(Method::DELETE, &format!("{ARTIFACTS}/0/loose"), Body::empty()).await;
    assert_eq!(gone.status, StatusCode::OK);
    let again = app.request(Method::GET, &format!("{ARTIFACTS}/0/loose/file.txt"), Body::empty()).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_files_in_two_runs_share_one_blob() {
    let app = ArtifactApp::new().await;
    let ((_, one), (_, two)) = (app.run().await, app.run().await);
    app.put(&format!("{one}/a.txt"), b"same bytes").await;
    app.put(&format!("{two}/b/c.txt"), b"same bytes").await;
    app.put(&format!("{two}/other.txt"), b"different").await;
    assert_eq!(app.blob_files(), 2);
    let got = app.request(Method::GET, &format!("{ARTIFACTS}/{two}/b/c.txt"), Body::empty()).await;
    assert_eq!(&got.body[..], b"same bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_upload_leaves_no_row_and_no_blob() {
    let app = ArtifactApp::new().await;
    let (run_id, root) = app.run().await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"first part")),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
    ];
    let body = Body::from_stream(futures::stream::iter(chunks));
    let reply = app.request(Method::PUT, &format!("{ARTIFACTS}/{root}/partial.bin"), body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.json());
    assert_eq!(app.blob_files(), 0);
    let native = app.request(Method::GET, &format!("/api/cairn/v1/runs/{run_id}/artifacts"), Body::empty()).await;
    assert_eq!(native.json()["files"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_routes_say_when_serving_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
    let store = cairn_store::open(&StoreConfig::new(uri)).await.unwrap();
    let router = app(AppState::new(store));
    let response =
        router.oneshot(Request::get(format!("{ARTIFACTS}?path=0")).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}
