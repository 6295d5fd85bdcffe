//! A small client of a tracking server's public API, for the commands that work through a
//! running server rather than on the store (`cairn run`, `cairn reproduce`): MLflow's REST
//! routes for experiments, runs and artifacts, and Cairn's lineage routes.
//!
//! The server is found and signed in to as the `mlflow` client does it (`MLFLOW_TRACKING_URI`,
//! `MLFLOW_TRACKING_TOKEN`, `MLFLOW_TRACKING_USERNAME`/`PASSWORD`), so a script and the command
//! that launched it always talk to the same server as the same user.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};

const MLFLOW: &str = "/api/2.0/mlflow";
const ARTIFACTS: &str = "/api/2.0/mlflow-artifacts/artifacts";
const LINEAGE: &str = "/api/cairn/v1/lineage";

/// Which server to talk to, read from the same variables as the `mlflow` client.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The tracking server's URL.
    #[arg(long, env = "MLFLOW_TRACKING_URI", default_value = "http://127.0.0.1:5000")]
    pub tracking_uri: String,
}

/// The server's view of a run: what `runs/get` answers, flattened.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: String,
    pub experiment_id: String,
    pub run_name: String,
    pub status: String,
    pub artifact_uri: String,
    pub tags: BTreeMap<String, String>,
    pub params: BTreeMap<String, String>,
    /// The latest value of each metric.
    pub metrics: BTreeMap<String, f64>,
}

/// A client of one tracking server.
#[derive(Debug, Clone)]
pub struct Tracking {
    base: String,
    http: reqwest::Client,
    auth: Auth,
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

impl Tracking {
    /// A client of the server at `uri`, `http://` or `https://`. For HTTPS the system's trust
    /// store is used, plus the CA bundle in `MLFLOW_TRACKING_SERVER_CERT_PATH` when set, and
    /// `MLFLOW_TRACKING_INSECURE_TLS=true` skips verification: the variables the mlflow client
    /// reads, so that `cairn run` and the script it launches trust the same server.
    pub fn new(uri: &str) -> anyhow::Result<Self> {
        let base = uri.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!("the tracking URI must be the http:// or https:// URL of a running server, got '{uri}'");
        }
        let auth = match (
            std::env::var("MLFLOW_TRACKING_TOKEN").ok(),
            std::env::var("MLFLOW_TRACKING_USERNAME").ok(),
            std::env::var("MLFLOW_TRACKING_PASSWORD").ok(),
        ) {
            (Some(token), _, _) if !token.is_empty() => Auth::Bearer(token),
            (_, Some(user), Some(password)) => Auth::Basic(user, password),
            _ => Auth::None,
        };
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(120));
        if let Some(path) = std::env::var_os("MLFLOW_TRACKING_SERVER_CERT_PATH").filter(|p| !p.is_empty()) {
            let pem = std::fs::read(&path).with_context(|| {
                format!("cannot read MLFLOW_TRACKING_SERVER_CERT_PATH ({})", path.to_string_lossy())
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!("MLFLOW_TRACKING_SERVER_CERT_PATH ({}) holds no PEM certificate", path.to_string_lossy())
            })?;
            if certificates.is_empty() {
                bail!("MLFLOW_TRACKING_SERVER_CERT_PATH ({}) holds no PEM certificate", path.to_string_lossy());
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let insecure = std::env::var("MLFLOW_TRACKING_INSECURE_TLS")
            .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1"));
        if insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build()?;
        Ok(Tracking { base, http, auth })
    }

    /// The server's URL, as the child process gets it.
    pub fn uri(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.auth {
            Auth::None => builder,
            Auth::Bearer(token) => builder.bearer_auth(token),
            Auth::Basic(user, password) => builder.basic_auth(user, Some(password)),
        }
    }

    /// Sends a request and reads its JSON answer; an error answer becomes an error naming the
    /// server's message.
    async fn send(&self, what: &str, builder: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = builder.send().await.with_context(|| format!("{what}: cannot reach {}", self.base))?;
        read(what, response).await
    }
}

impl Tracking {
    async fn post(&self, what: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(what, self.request(reqwest::Method::POST, path).json(&body)).await
    }

    async fn get(&self, what: &str, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        self.send(what, self.request(reqwest::Method::GET, path).query(query)).await
    }

    /// The id of the experiment called `name`, created if it does not exist.
    pub async fn experiment_id(&self, name: &str) -> anyhow::Result<String> {
        let path = format!("{MLFLOW}/experiments/get-by-name");
        let found = self.request(reqwest::Method::GET, &path).query(&[("experiment_name", name)]).send().await;
        let found = found.with_context(|| format!("looking up experiment '{name}': cannot reach {}", self.base))?;
        if found.status().is_success() {
            let body: Value = found.json().await?;
            return string_at(&body, &["experiment", "experiment_id"]);
        }
        if found.status() != reqwest::StatusCode::NOT_FOUND {
            let status = found.status();
            let text = found.text().await.unwrap_or_default();
            bail!("looking up experiment '{name}': the server answered {status}: {text}");
        }
        let path = format!("{MLFLOW}/experiments/create");
        let created = self.post("creating the experiment", &path, json!({"name": name})).await?;
        string_at(&created, &["experiment_id"])
    }

    /// Starts a run with the given tags; answers its id and artifact URI.
    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> anyhow::Result<(String, String)> {
        let tags: Vec<Value> = tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        let mut body = json!({"experiment_id": experiment_id, "start_time": now_millis(), "tags": tags});
        if let Some(name) = run_name {
            body["run_name"] = json!(name);
        }
        let answer = self.post("starting the run", &format!("{MLFLOW}/runs/create"), body).await?;
        Ok((string_at(&answer, &["run", "info", "run_id"])?, string_at(&answer, &["run", "info", "artifact_uri"])?))
    }

    /// Ends a run with `status` (`FINISHED`, `FAILED`, `KILLED`).
    pub async fn end_run(&self, run_id: &str, status: &str) -> anyhow::Result<()> {
        let body = json!({"run_id": run_id, "status": status, "end_time": now_millis()});
        self.post("ending the run", &format!("{MLFLOW}/runs/update"), body).await.map(drop)
    }

    /// Sets tags on a run in one batch.
    pub async fn set_tags(&self, run_id: &str, tags: &BTreeMap<String, String>) -> anyhow::Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        // MLflow takes at most 100 tags per batch.
        let tags: Vec<Value> = tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        for chunk in tags.chunks(100) {
            let body = json!({"run_id": run_id, "tags": chunk});
            self.post("tagging the run", &format!("{MLFLOW}/runs/log-batch"), body).await?;
        }
        Ok(())
    }

    /// A run with its tags, params and latest metrics.
    pub async fn get_run(&self, run_id: &str) -> anyhow::Result<RunRecord> {
        let (what, path) = (format!("reading run {run_id}"), format!("{MLFLOW}/runs/get"));
        let answer = self.get(&what, &path, &[("run_id", run_id)]).await?;
        let run = &answer["run"];
        let pairs = |field: &str| -> BTreeMap<String, String> {
            run["data"][field]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| Some((i["key"].as_str()?.to_owned(), i["value"].as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let metrics = run["data"]["metrics"]
            .as_array()
            .map(|items| items.iter().filter_map(|m| Some((m["key"].as_str()?.to_owned(), metric_value(&m["value"])?))))
            .into_iter()
            .flatten()
            .collect();
        Ok(RunRecord {
            run_id: string_at(run, &["info", "run_id"])?,
            experiment_id: string_at(run, &["info", "experiment_id"])?,
            run_name: run["info"]["run_name"].as_str().unwrap_or_default().to_owned(),
            status: run["info"]["status"].as_str().unwrap_or_default().to_owned(),
            artifact_uri: string_at(run, &["info", "artifact_uri"])?,
            tags: pairs("tags"),
            params: pairs("params"),
            metrics,
        })
    }

    /// Every value a run logged for one metric, as `(step, value)` in step order (logging order
    /// within a step), read page by page.
    pub async fn metric_history(&self, run_id: &str, key: &str) -> anyhow::Result<Vec<(i64, f64)>> {
        let (what, path) =
            (format!("reading the history of {key} in run {run_id}"), format!("{MLFLOW}/metrics/get-history"));
        let mut points: Vec<(i64, i64, f64)> = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = vec![("run_id", run_id), ("metric_key", key), ("max_results", "25000")];
            if !token.is_empty() {
                query.push(("page_token", &token));
            }
            let answer = self.get(&what, &path, &query).await?;
            for m in answer["metrics"].as_array().into_iter().flatten() {
                if let Some(value) = metric_value(&m["value"]) {
                    let step = m["step"].as_i64().or_else(|| m["step"].as_str()?.parse().ok()).unwrap_or(0);
                    let at = m["timestamp"].as_i64().or_else(|| m["timestamp"].as_str()?.parse().ok()).unwrap_or(0);
                    points.push((step, at, value));
                }
            }
            match answer["next_page_token"].as_str() {
                Some(next) if !next.is_empty() => token = next.to_owned(),
                _ => break,
            }
        }
        points.sort_by_key(|&(step, at, _)| (step, at));
        Ok(points.into_iter().map(|(step, _, value)| (step, value)).collect())
    }

    /// Uploads one file into a run's artifacts (replacing what was at that path).
    pub async fn upload_artifact(&self, artifact_uri: &str, path: &str, data: Vec<u8>) -> anyhow::Result<()> {
        let url = artifact_path(artifact_uri, path)?;
        let builder = self.request(reqwest::Method::PUT, &url).body(data);
        self.send(&format!("uploading {path}"), builder).await.map(drop)
    }

    /// Downloads one file of a run's artifacts; `None` when the run has no such file.
    pub async fn download_artifact(&self, artifact_uri: &str, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let url = artifact_path(artifact_uri, path)?;
        let response = self.request(reqwest::Method::GET, &url).send().await;
        let response = response.with_context(|| format!("downloading {path}: cannot reach {}", self.base))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            bail!("downloading {path}: the server answered {}", response.status());
        }
        Ok(Some(response.bytes().await?.to_vec()))
    }

    /// Registers a lineage node (a no-op when it exists with the same content).
    pub async fn register_node(&self, node: &str, body: Value) -> anyhow::Result<Value> {
        let (kind, key) = node.split_once(':').ok_or_else(|| anyhow!("a node is kind:key, got '{node}'"))?;
        let path = format!("{LINEAGE}/nodes/{}/{}", encode(kind), encode(key));
        let builder = self.request(reqwest::Method::PUT, &path).json(&body);
        Ok(self.send(&format!("registering {node}"), builder).await?["node"].take())
    }

    /// A lineage node, or `None` when there is none of that name.
    pub async fn get_node(&self, node: &str) -> anyhow::Result<Option<Value>> {
        let (kind, key) = node.split_once(':').ok_or_else(|| anyhow!("a node is kind:key, got '{node}'"))?;
        let path = format!("{LINEAGE}/nodes/{}/{}", encode(kind), encode(key));
        let response = self.request(reqwest::Method::GET, &path).send().await;
        let response = response.with_context(|| format!("reading {node}: cannot reach {}", self.base))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(read(&format!("reading {node}"), response).await?["node"].take()))
    }

    /// Records `source -kind-> target`.
    pub async fn add_edge(&self, source: &str, kind: &str, target: &str) -> anyhow::Result<()> {
        let body = json!({"source": source, "kind": kind, "target": target});
        self.post(&format!("recording {source} -{kind}-> {target}"), &format!("{LINEAGE}/edges"), body).await.map(drop)
    }
}

/// Reads a JSON answer; an error answer becomes an error naming the server's message.
async fn read(what: &str, response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let bytes = response.bytes().await.with_context(|| format!("{what}: reading the answer"))?;
    if !status.is_success() {
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        bail!("{what}: the server answered {status}: {message}");
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{what}: the answer is not JSON"))
}

/// The route of an artifact of a run whose artifacts the server proxies
/// (`mlflow-artifacts:/1/<run>/artifacts` → `/api/2.0/mlflow-artifacts/artifacts/1/<run>/artifacts/<path>`).
fn artifact_path(artifact_uri: &str, path: &str) -> anyhow::Result<String> {
    let Some(rest) = artifact_uri.strip_prefix("mlflow-artifacts:") else {
        bail!(
            "the run's artifacts are at '{artifact_uri}', which the tracking server does not serve; \
             start the server with its default artifact root (mlflow-artifacts:/)"
        );
    };
    // `mlflow-artifacts://host:port/path` names a server; the path is what matters here.
    let rest = match rest.strip_prefix("//") {
        Some(with_host) => with_host.find('/').map_or("", |i| &with_host[i..]),
        None => rest,
    };
    let root = rest.trim_matches('/');
    let encoded: Vec<String> = path.split('/').map(encode).collect();
    Ok(format!("{ARTIFACTS}/{root}/{}", encoded.join("/")))
}

/// Percent-encodes one path segment (everything but unreserved characters).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@' | b'+') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn string_at(value: &Value, path: &[&str]) -> anyhow::Result<String> {
    let mut at = value;
    for key in path {
        at = &at[*key];
    }
    match at {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => bail!("the server's answer has no {}", path.join(".")),
    }
}

/// A metric value as MLflow writes it: a number, or `"NaN"`/`"Infinity"` text.
fn metric_value(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

/// Milliseconds since the epoch, as MLflow stamps runs.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_routes_follow_the_run_root() {
        let check = |uri: &str, path: &str, want: &str| assert_eq!(artifact_path(uri, path).unwrap(), want);
        check(
            "mlflow-artifacts:/1/abc/artifacts",
            "cairn/run/stdout.log",
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/cairn/run/stdout.log",
        );
        check(
            "mlflow-artifacts://h:5000/1/abc/artifacts",
            "a b",
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a%20b",
        );
        assert!(artifact_path("s3://bucket/1/abc", "x").is_err());
    }

    #[test]
    fn metric_values_read_mlflow_spellings() {
        assert_eq!(metric_value(&json!(0.5)), Some(0.5));
        assert!(metric_value(&json!("NaN")).unwrap().is_nan());
        assert_eq!(metric_value(&json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(metric_value(&json!(null)), None);
    }
}
