//! A fake MLflow server: just enough of the REST API for the scenarios, with switchable faults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// Faults the fake can inject.
#[derive(Debug, Default, Clone)]
pub struct Behaviour {
    /// Refuse every n-th `log-batch` call with MLflow's "database is locked" error.
    pub lock_every: Option<u64>,
    /// Return search hits in ascending order whatever was asked.
    pub ascending_search: bool,
}

#[derive(Debug, Default)]
struct Run {
    params: HashMap<String, String>,
    latest: HashMap<String, f64>,
    points: HashMap<String, u64>,
}

#[derive(Default)]
struct Inner {
    runs: Vec<Run>,
    log_batch_calls: u64,
}

#[derive(Clone)]
struct Fake {
    behaviour: Behaviour,
    inner: Arc<Mutex<Inner>>,
}

/// A running fake; it stops when the test's runtime ends.
pub struct Server {
    pub url: String,
}

pub async fn start(behaviour: Behaviour) -> Server {
    let fake = Fake { behaviour, inner: Arc::default() };
    let app = Router::new()
        .route("/api/2.0/mlflow/experiments/create", post(|| async { Json(json!({ "experiment_id": "1" })) }))
        .route("/api/2.0/mlflow/runs/create", post(create_run))
        .route("/api/2.0/mlflow/runs/log-batch", post(log_batch))
        .route("/api/2.0/mlflow/runs/update", post(|| async { Json(json!({})) }))
        .route("/api/2.0/mlflow/runs/search", post(search))
        .route("/api/2.0/mlflow/metrics/get-history", get(history))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { url }
}

fn run_index(id: &str) -> usize {
    id.trim_start_matches("run").parse().unwrap()
}

async fn create_run(State(fake): State<Fake>) -> Json<Value> {
    let mut inner = fake.inner.lock().unwrap();
    inner.runs.push(Run::default());
    Json(json!({ "run": { "info": { "run_id": format!("run{}", inner.runs.len() - 1) } } }))
}

async fn log_batch(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    let mut inner = fake.inner.lock().unwrap();
    inner.log_batch_calls += 1;
    if fake.behaviour.lock_every.is_some_and(|n| inner.log_batch_calls % n == 0) {
        let error =
            json!({ "error_code": "INTERNAL_ERROR", "message": "(sqlite3.OperationalError) database is locked" });
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(error)).into_response();
    }
    let run = &mut inner.runs[run_index(body["run_id"].as_str().unwrap())];
    for m in body["metrics"].as_array().unwrap() {
        let key = m["key"].as_str().unwrap().to_owned();
        *run.points.entry(key.clone()).or_default() += 1;
        run.latest.insert(key, m["value"].as_f64().unwrap());
    }
    for p in body["params"].as_array().unwrap() {
        run.params.insert(p["key"].as_str().unwrap().to_owned(), p["value"].as_str().unwrap().to_owned());
    }
    Json(json!({})).into_response()
}

/// Implements only the bench's default filter and ordering, with offset page tokens.
async fn search(State(fake): State<Fake>, Json(body): Json<Value>) -> Json<Value> {
    let inner = fake.inner.lock().unwrap();
    let mut hits: Vec<(usize, f64)> = inner
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.params.get("optimizer").map(String::as_str) == Some("adam"))
        .filter_map(|(i, r)| r.latest.get("acc").filter(|&&acc| acc > 0.49).map(|&acc| (i, acc)))
        .collect();
    hits.sort_by(|a, b| if fake.behaviour.ascending_search { a.1.total_cmp(&b.1) } else { b.1.total_cmp(&a.1) });
    let offset: usize = body["page_token"].as_str().map_or(0, |t| t.parse().unwrap());
    let size = body["max_results"].as_u64().unwrap() as usize;
    let page: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(size)
        .map(|(i, acc)| json!({ "info": { "run_id": format!("run{i}") }, "data": { "metrics": [ { "key": "acc", "value": acc } ] } }))
        .collect();
    let next = (offset + size < hits.len()).then(|| (offset + size).to_string());
    Json(json!({ "runs": page, "next_page_token": next }))
}

async fn history(State(fake): State<Fake>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let inner = fake.inner.lock().unwrap();
    let total = inner.runs[run_index(&q["run_id"])].points.get(&q["metric_key"]).copied().unwrap_or(0) as usize;
    let offset: usize = q.get("page_token").map_or(0, |t| t.parse().unwrap());
    let size: usize = q["max_results"].parse().unwrap();
    let n = size.min(total.saturating_sub(offset));
    let metrics: Vec<Value> =
        (0..n).map(|i| json!({ "key": q["metric_key"], "value": 0.0, "step": offset + i, "timestamp": 0 })).collect();
    let next = (offset + n < total).then(|| (offset + n).to_string());
    Json(json!({ "metrics": metrics, "next_page_token": next }))
}
