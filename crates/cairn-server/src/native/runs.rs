//! `PUT /api/cairn/v1/runs/{run_id}`: create a run under an id the client chose. A client that
//! logged while the server was unreachable (the Python package's offline spool) gave its run an
//! id then; syncing creates the run under that id, so everything logged against it lands in the
//! right place and the run keeps its identity. Sending the same request again answers the run
//! that exists (200), so a replay interrupted half-way can run again; the same id in another
//! experiment is refused.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::{Value, json};

use cairn_core::model::NewRun;
use cairn_core::validation;

use crate::error::ApiResult;
use crate::extract::{JsonBody, RequestActor};
use crate::mlflow::experiments::key_values;
use crate::native::chosen_id::created_or_existing;
use crate::native::lineage::path_error;
use crate::{AppState, wire};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/cairn/v1/runs/{run_id}", put(create_with_id))
}

/// `{experiment_id, user_id?, run_name?, start_time?, tags?}`, as MLflow's `runs/create`.
async fn create_with_id(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let Path(run_id) = path.map_err(path_error)?;
    let run_name = body.str("run_name")?.filter(|n| !n.is_empty());
    let tags = key_values(&body, "tags")?;
    validation::validate_run_name(run_name.as_deref(), &tags)?;
    let new = NewRun {
        run_id: Some(run_id.clone()),
        experiment_id: body.required_str("experiment_id")?,
        user_id: body.str("user_id")?.unwrap_or_default(),
        run_name,
        start_time: body.i64("start_time")?,
        tags,
    };
    let experiment_id = new.experiment_id.clone();
    let run = created_or_existing(
        state.store.create_run(&actor, new).await,
        state.store.get_run(&run_id),
        |r| r.info.experiment_id.as_str(),
        &experiment_id,
    )
    .await?;
    Ok(Json(json!({ "run": wire::RunJson(&run) })))
}
