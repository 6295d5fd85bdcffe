//! What runs consume and produce: `runs/log-inputs` (datasets, with their input tags, and
//! logged models a run used) and `runs/outputs` (logged models a run produced). Both show up in
//! the run's `inputs` and `outputs` on get and search.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use cairn_core::logged_models::{Dataset, DatasetInput, ModelOutput};

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Fields, JsonBody, RequestActor};

pub fn router() -> Router<AppState> {
    Router::new().route("/runs/log-inputs", post(log_inputs)).route("/runs/outputs", post(log_outputs))
}

/// One `DatasetInput` message. The dataset's name, digest, source type and source are required
/// by MLflow's protocol; schema and profile are optional.
fn dataset_input(item: &Fields) -> ApiResult<DatasetInput> {
    let dataset = item.object("dataset")?.ok_or_else(|| item.missing("dataset"))?;
    let tags = item
        .objects("tags")?
        .iter()
        .map(|tag| {
            Ok(cairn_core::model::KeyValue::new(tag.required_str("key")?, tag.str("value")?.unwrap_or_default()))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(DatasetInput {
        dataset: Dataset {
            name: dataset.required_str("name")?,
            digest: dataset.required_str("digest")?,
            source_type: dataset.required_str("source_type")?,
            source: dataset.required_str("source")?,
            schema: dataset.str("schema")?.filter(|s| !s.is_empty()),
            profile: dataset.str("profile")?.filter(|p| !p.is_empty()),
        },
        tags,
    })
}

async fn log_inputs(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let run_id = body.required_str("run_id")?;
    let datasets = body.objects("datasets")?.iter().map(dataset_input).collect::<ApiResult<Vec<_>>>()?;
    let models = body.objects("models")?.iter().map(|m| m.required_str("model_id")).collect::<ApiResult<Vec<_>>>()?;
    state.store.log_inputs(&actor, &run_id, datasets, models).await?;
    Ok(Json(json!({})))
}

async fn log_outputs(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let run_id = body.required_str("run_id")?;
    let items = body.objects("models")?;
    if items.is_empty() {
        return Err(body.missing("models"));
    }
    let models = items
        .iter()
        .map(|m| Ok(ModelOutput { model_id: m.required_str("model_id")?, step: m.i64("step")?.unwrap_or(0) }))
        .collect::<ApiResult<Vec<_>>>()?;
    state.store.log_outputs(&actor, &run_id, models).await?;
    Ok(Json(json!({})))
}
