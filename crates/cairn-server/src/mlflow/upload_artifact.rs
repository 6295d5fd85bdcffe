//! `POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=…&path=…`: the UI's small-file upload
//! into a run's artifacts (the request body is the file), served only under the UI prefix as in
//! MLflow, with its 10 MB limit.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{RequestActor, parse_query};
use crate::mlflow::artifacts::{sanitize, store_file};

/// Largest file this route takes (MLflow's limit for it).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// Route: `POST /upload-artifact` (under `/ajax-api/2.0/mlflow` only).
pub fn router() -> Router<AppState> {
    Router::new().route("/upload-artifact", post(upload))
}

fn too_large() -> ApiError {
    ApiError::invalid("Artifact size is too large. Max size is 10MB.")
}

async fn upload(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let Some(run_id) = args.str("run_uuid")?.filter(|s| !s.is_empty()) else {
        return Err(ApiError::invalid("Request must specify run_uuid."));
    };
    let Some(raw_path) = args.str("path")?.filter(|s| !s.is_empty()) else {
        return Err(ApiError::invalid("Request must specify path."));
    };
    let path = sanitize(&raw_path)?;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD_BYTES as u64) {
        return Err(too_large());
    }
    // Small by definition, so read whole: the emptiness and size checks need the full body.
    let data = axum::body::to_bytes(body, MAX_UPLOAD_BYTES + 1).await.map_err(|_| too_large())?;
    if data.is_empty() {
        return Err(ApiError::invalid("Request must specify data."));
    }
    if data.len() > MAX_UPLOAD_BYTES {
        return Err(too_large());
    }
    let artifacts = state.artifacts()?;
    let run = state.store.get_run(&run_id).await?;
    store_file(artifacts, &actor, &run.info.run_id, &path, Body::from(data)).await?;
    Ok(Json(json!({})))
}
