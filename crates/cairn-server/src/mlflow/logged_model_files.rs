//! `GET /ajax-api/2.0/mlflow/logged-models/<model_id>/artifacts/files?artifact_file_path=…`:
//! one file of a logged model, sent as an attachment; served only under the UI prefix as in
//! MLflow.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{PathParams, parse_query};
use crate::mlflow::artifacts::sanitize;
use crate::mlflow::download::attachment;
use crate::mlflow::local_files;

/// Route: `GET /logged-models/{model_id}/artifacts/files` (under `/ajax-api/2.0/mlflow` only).
pub fn router() -> Router<AppState> {
    Router::new().route("/logged-models/{model_id}/artifacts/files", get(file))
}

async fn file(
    State(state): State<AppState>,
    PathParams(model_id): PathParams<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let args = parse_query(query.as_deref(), &[])?;
    let Some(raw) = args.str("artifact_file_path")?.filter(|p| !p.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "Request must include the \"artifact_file_path\" query parameter.",
        ));
    };
    let path = sanitize(&raw)?;
    let artifacts = state.artifacts()?;
    let model = state.store.get_logged_model(&model_id).await?;
    match artifacts.manifest.get_artifact(&model.model_id, path.as_str()).await? {
        Some(file) => attachment(artifacts, &file, path.as_str(), headers.get(header::RANGE)).await,
        None => local_files::attachment(&state, &model.artifact_location, &path)
            .await?
            .ok_or_else(|| ApiError::from(cairn_core::Error::not_found(format!("No artifact at '{path}'")))),
    }
}
