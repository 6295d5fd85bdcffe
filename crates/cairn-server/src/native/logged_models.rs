//! `PUT /api/cairn/v1/logged-models/{model_id}`: create a logged model (MLflow 3) under an id the
//! client chose. The Python package's offline spool answers `log_model`'s `CreateLoggedModel`
//! itself while the server is unreachable, giving the model an id (`m-` and 32 lowercase hex
//! digits, the shape the server generates); syncing creates the model under that id, so the
//! files, params, tags, finalization and run output logged against it land on it. As with runs
//! (`native::runs`), the same request again answers the model that exists (200), so a replay
//! interrupted half-way can run again; the same id in another experiment is refused.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{JsonBody, RequestActor};
use crate::mlflow::logged_models::{model_response, new_logged_model};
use crate::native::chosen_id::created_or_existing;
use crate::native::lineage::path_error;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/cairn/v1/logged-models/{model_id}", put(create_with_id))
}

/// `{experiment_id, name?, model_type?, source_run_id?, tags?, params?}`, as MLflow's
/// `logged-models` create.
async fn create_with_id(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let Path(model_id) = path.map_err(path_error)?;
    let new = new_logged_model(&body, Some(model_id.clone()))?;
    let experiment_id = new.experiment_id.clone();
    // On a repeat, the model as it stands now: a replay may come after its files and finalization.
    let model = created_or_existing(
        state.store.create_logged_model(&actor, new).await,
        state.store.get_logged_model_any_stage(&model_id),
        |m| m.experiment_id.as_str(),
        &experiment_id,
    )
    .await?;
    Ok(model_response(&model))
}
