//! `GET /mlflow/artifacts/list?run_id=…&path=…`: the tracking API's listing of one directory of
//! a run's artifacts. Unlike the proxied `mlflow-artifacts` listing, entries carry their path
//! from the run's artifact root (`dir/a.txt`), and the answer names that root (`root_uri`).

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Fields, parse_query};
use crate::mlflow::artifacts::{directory_entries, sanitize};
use crate::mlflow::local_files;

/// Route: `GET /artifacts/list` (under both MLflow prefixes).
pub fn router() -> Router<AppState> {
    Router::new().route("/artifacts/list", get(list))
}

async fn list(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    list_run_artifacts(&state, &parse_query(query.as_deref(), &[])?).await.map(Json)
}

/// The listing as MLflow's JSON (shared with GraphQL's `mlflowListArtifacts`).
pub(crate) async fn list_run_artifacts(state: &AppState, args: &Fields) -> ApiResult<Value> {
    let run_id = args.run_id()?;
    let dir = sanitize(&args.str("path")?.unwrap_or_default())?;
    let run = state.store.get_run(&run_id).await?;
    let artifacts = state.artifacts()?;
    let files = artifacts.manifest.list_artifacts(&run.info.run_id, dir.as_str()).await?;
    let held = directory_entries(dir.as_str(), &files);
    let mut entries = local_files::merged(state, &run.info.artifact_uri, &dir, held).await?;
    if !dir.is_root() {
        for entry in &mut entries {
            let name = entry["path"].as_str().unwrap_or_default().to_owned();
            entry["path"] = json!(format!("{dir}/{name}"));
        }
    }
    let mut body = json!({ "root_uri": run.info.artifact_uri });
    if !entries.is_empty() {
        body["files"] = Value::Array(entries);
    }
    Ok(body)
}
