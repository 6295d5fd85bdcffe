//! `POST /ajax-api/2.0/mlflow/experiments/search-datasets`: the datasets an experiment's runs
//! used, once per dataset and context, served only under the UI prefix as in MLflow.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use cairn_core::logged_models::DatasetSummary;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Fields, JsonBody};

/// Most experiments one request may name (MLflow's `MAX_EXPERIMENT_IDS_PER_REQUEST`).
pub const MAX_EXPERIMENT_IDS: usize = 20;

/// Route: `POST /experiments/search-datasets` (under `/ajax-api/2.0/mlflow` only).
pub fn router() -> Router<AppState> {
    Router::new().route("/experiments/search-datasets", post(search_datasets))
}

async fn search_datasets(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult<Json<Value>> {
    search(&state, &body).await.map(Json)
}

/// The search as MLflow's JSON (shared with GraphQL's `mlflowSearchDatasets`).
pub(crate) async fn search(state: &AppState, body: &Fields) -> ApiResult<Value> {
    let experiment_ids = body.str_list("experiment_ids")?;
    if experiment_ids.is_empty() {
        return Err(ApiError::invalid("SearchDatasets request must specify at least one experiment_id."));
    }
    if experiment_ids.len() > MAX_EXPERIMENT_IDS {
        return Err(ApiError::invalid(format!(
            "SearchDatasets request cannot specify more than {MAX_EXPERIMENT_IDS} experiment_ids. Received {} \
             experiment_ids.",
            experiment_ids.len()
        )));
    }
    let summaries = state.store.search_datasets(&experiment_ids).await?;
    Ok(summaries_json(&summaries))
}

/// The response as MLflow writes it: an empty list is no field at all, a missing context no key.
pub fn summaries_json(summaries: &[DatasetSummary]) -> Value {
    let mut body = Map::new();
    if !summaries.is_empty() {
        body.insert("dataset_summaries".into(), Value::Array(summaries.iter().map(summary).collect()));
    }
    Value::Object(body)
}

/// One summary in MLflow's field names.
pub fn summary(s: &DatasetSummary) -> Value {
    let mut v = json!({ "experiment_id": s.experiment_id, "name": s.name, "digest": s.digest });
    if let Some(context) = &s.context {
        v["context"] = json!(context);
    }
    v
}
