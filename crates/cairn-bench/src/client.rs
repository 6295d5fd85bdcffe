//! A minimal MLflow REST client: only the calls the scenarios make, with the JSON shapes of
//! MLflow's `service.proto` as the `mlflow` Python client sends them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The message a SQLite-backed server returns when a writer could not get the database lock.
const DB_LOCKED: &str = "database is locked";

/// Generous, because MLflow takes seconds on the large calls and a timeout would be a false error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Why one call failed.
#[derive(Debug)]
pub enum CallError {
    /// The server answered with a non-success status.
    Http { status: u16, body: String },
    /// The request never got an answer (connection refused, reset, timed out) or the answer
    /// was not the JSON expected.
    Transport(String),
}

impl CallError {
    /// Whether the server said its SQLite database was locked: the failure concurrent writers
    /// provoke in a server without group commit.
    pub fn is_database_locked(&self) -> bool {
        match self {
            CallError::Http { body, .. } => body.contains(DB_LOCKED),
            CallError::Transport(message) => message.contains(DB_LOCKED),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Http { status, body } => {
                // Error bodies can be whole HTML pages; the first line or so is what helps.
                let short: String = body.chars().take(300).collect();
                write!(f, "HTTP {status}: {short}")
            }
            CallError::Transport(message) => write!(f, "transport error: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<reqwest::Error> for CallError {
    fn from(e: reqwest::Error) -> Self {
        CallError::Transport(e.to_string())
    }
}

/// One metric point as `log-batch` takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

/// One parameter as `log-batch` takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    pub key: String,
    pub value: String,
}

/// A `runs/search` request.
#[derive(Debug, Clone, Serialize)]
pub struct SearchRequest {
    pub experiment_ids: Vec<String>,
    pub filter: String,
    pub order_by: Vec<String>,
    pub max_results: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
}

/// One page of `runs/search`, keeping only what the scenarios check.
#[derive(Debug, Deserialize)]
pub struct SearchPage {
    #[serde(default)]
    pub runs: Vec<RunView>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// The parts of a run the search scenario checks.
#[derive(Debug, Deserialize)]
pub struct RunView {
    pub info: RunInfoView,
    #[serde(default)]
    pub data: RunDataView,
}

/// Run identity.
#[derive(Debug, Deserialize)]
pub struct RunInfoView {
    pub run_id: String,
    #[serde(default)]
    pub run_name: Option<String>,
}

/// Run data: only the latest metrics.
#[derive(Debug, Default, Deserialize)]
pub struct RunDataView {
    #[serde(default)]
    pub metrics: Vec<MetricView>,
}

/// A metric as the server returns it. MLflow serialises NaN and the infinities as strings, so
/// the value is kept as raw JSON and read as a number only when it is one.
#[derive(Debug, Deserialize)]
pub struct MetricView {
    pub key: String,
    pub value: serde_json::Value,
}

impl RunView {
    /// The latest value of metric `key`, when the run has it as a finite number.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.data.metrics.iter().find(|m| m.key == key).and_then(|m| m.value.as_f64())
    }
}

/// One page of `metrics/get-history`: the points are counted, not decoded, so that the timing
/// measures the server rather than this client's parsing.
#[derive(Debug, Deserialize)]
pub struct HistoryPage {
    #[serde(default)]
    pub metrics: Vec<IgnoredAny>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct CreateExperimentResponse {
    experiment_id: String,
}

#[derive(Deserialize)]
struct CreateRunResponse {
    run: CreatedRun,
}

#[derive(Deserialize)]
struct CreatedRun {
    info: RunInfoView,
}

/// A connection-pooling client for one server. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    http: reqwest::Client,
    base: String,
}

/// The `Authorization` header the mlflow client would send: basic from
/// `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`, else bearer from
/// `MLFLOW_TRACKING_TOKEN`, else none (for measuring a server with access control on).
fn credentials() -> anyhow::Result<reqwest::header::HeaderMap> {
    use base64::Engine;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut headers = reqwest::header::HeaderMap::new();
    let value = match (env("MLFLOW_TRACKING_USERNAME"), env("MLFLOW_TRACKING_PASSWORD"), env("MLFLOW_TRACKING_TOKEN")) {
        (Some(user), Some(password), _) => {
            Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))))
        }
        (_, _, Some(token)) => Some(format!("Bearer {token}")),
        _ => None,
    };
    if let Some(value) = value {
        let mut value = reqwest::header::HeaderValue::from_str(&value)?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(headers)
}

/// Milliseconds since the Unix epoch, as MLflow timestamps are.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl MlflowClient {
    /// A client for the server at `base_url` (for example `http://127.0.0.1:5000`).
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .default_headers(credentials()?)
            .timeout(REQUEST_TIMEOUT)
            // Small requests must not wait on Nagle's algorithm, or every server looks slow.
            .tcp_nodelay(true)
            .build()?;
        Ok(MlflowClient { http, base: base_url.trim_end_matches('/').to_owned() })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/2.0/mlflow/{path}", self.base)
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, CallError> {
        let response = self.http.post(self.url(path)).json(body).send().await?;
        read(response).await
    }

    /// Calls any route of the server (`path` from the root, e.g. `/api/cairn/v1/lineage/edges`)
    /// with an optional JSON body and returns the JSON answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, CallError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        read(request.send().await?).await
    }

    /// Creates an experiment and returns its id.
    pub async fn create_experiment(&self, name: &str) -> Result<String, CallError> {
        let r: CreateExperimentResponse = self.post("experiments/create", &json!({ "name": name })).await?;
        Ok(r.experiment_id)
    }

    /// Creates a running run and returns its id.
    pub async fn create_run(&self, experiment_id: &str, run_name: &str) -> Result<String, CallError> {
        let body = json!({ "experiment_id": experiment_id, "run_name": run_name, "start_time": now_ms() });
        let r: CreateRunResponse = self.post("runs/create", &body).await?;
        Ok(r.run.info.run_id)
    }

    /// Logs metrics and params in one `log-batch` call.
    pub async fn log_batch(&self, run_id: &str, metrics: &[Metric], params: &[Param]) -> Result<(), CallError> {
        let body = json!({ "run_id": run_id, "metrics": metrics, "params": params, "tags": [] });
        let _: IgnoredAny = self.post("runs/log-batch", &body).await?;
        Ok(())
    }

    /// Logs metrics, params and tags in one `log-batch` call.
    pub async fn log_batch_with_tags(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[(String, String)],
    ) -> Result<(), CallError> {
        let tags: Vec<serde_json::Value> =
            tags.iter().map(|(key, value)| json!({ "key": key, "value": value })).collect();
        let body = json!({ "run_id": run_id, "metrics": metrics, "params": params, "tags": tags });
        let _: IgnoredAny = self.post("runs/log-batch", &body).await?;
        Ok(())
    }

    /// Marks a run finished.
    pub async fn finish_run(&self, run_id: &str) -> Result<(), CallError> {
        let body = json!({ "run_id": run_id, "status": "FINISHED", "end_time": now_ms() });
        let _: IgnoredAny = self.post("runs/update", &body).await?;
        Ok(())
    }

    /// Fetches one page of `runs/search`.
    pub async fn search_page(&self, request: &SearchRequest) -> Result<SearchPage, CallError> {
        self.post("runs/search", request).await
    }

    /// Fetches one page of a metric's history.
    pub async fn history_page(
        &self,
        run_id: &str,
        key: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<HistoryPage, CallError> {
        let max_results = max_results.to_string();
        let mut query = vec![("run_id", run_id), ("metric_key", key), ("max_results", max_results.as_str())];
        if let Some(token) = page_token {
            query.push(("page_token", token));
        }
        let response = self.http.get(self.url("metrics/get-history")).query(&query).send().await?;
        read(response).await
    }
}

async fn read<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, CallError> {
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        return Err(CallError::Http { status: status.as_u16(), body: String::from_utf8_lossy(&bytes).into_owned() });
    }
    serde_json::from_slice(&bytes).map_err(|e| CallError::Transport(format!("unexpected response body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_database_locked_in_either_error_kind() {
        let http = CallError::Http {
            status: 500,
            body: r#"{"message":"(sqlite3.OperationalError) database is locked"}"#.into(),
        };
        assert!(http.is_database_locked());
        assert!(CallError::Transport("database is locked".into()).is_database_locked());
        assert!(!CallError::Http { status: 400, body: "INVALID_PARAMETER_VALUE".into() }.is_database_locked());
    }

    #[test]
    fn metric_values_that_are_strings_read_as_absent() {
        let run: RunView = serde_json::from_value(json!({
            "info": { "run_id": "r1" },
            "data": { "metrics": [ { "key": "acc", "value": 0.5 }, { "key": "bad", "value": "NaN" } ] }
        }))
        .unwrap();
        assert_eq!(run.metric("acc"), Some(0.5));
        assert_eq!(run.metric("bad"), None);
        assert_eq!(run.metric("missing"), None);
    }
}
