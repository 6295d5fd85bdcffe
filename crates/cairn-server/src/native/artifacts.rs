//! `GET /api/cairn/v1/runs/{run_id}/artifacts`: a run's manifest with digests, which MLflow's
//! API has no place for.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiResult;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/cairn/v1/runs/{run_id}/artifacts", get(run_artifacts))
}

async fn run_artifacts(State(state): State<AppState>, Path(run_id): Path<String>) -> ApiResult<Json<Value>> {
    let artifacts = state.artifacts()?;
    let files = artifacts.manifest.list_artifacts(&run_id, "").await?;
    Ok(Json(json!({
        "run_id": run_id,
        "algorithm": cairn_artifacts::HASH_ALGORITHM,
        "files": files,
    })))
}
