//! `GET /api/cairn/v1/experiments/run-counts?experiment_ids=…&view_type=…`: how many runs each
//! experiment has. MLflow's API has no count, so a UI that lists experiments would otherwise read
//! a page of runs per experiment just to show a number.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use cairn_core::model::ViewType;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_query;

/// Experiments per request: a page of the experiments list and then some.
pub const MAX_EXPERIMENTS: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/cairn/v1/experiments/run-counts", get(run_counts))
}

async fn run_counts(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let fields = parse_query(query.as_deref(), &["experiment_ids"])?;
    let ids = fields.str_list("experiment_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid("experiment_ids must name at least one experiment"));
    }
    if ids.len() > MAX_EXPERIMENTS {
        return Err(ApiError::invalid(format!(
            "experiment_ids names {} experiments; at most {MAX_EXPERIMENTS} are counted at once",
            ids.len()
        )));
    }
    let view = match fields.str("view_type")? {
        Some(view) => ViewType::parse(&view)?,
        None => ViewType::ActiveOnly,
    };
    let counts = state.store.count_runs(ids, view).await?;
    let counts: Vec<Value> =
        counts.into_iter().map(|(id, runs)| json!({ "experiment_id": id, "runs": runs })).collect();
    Ok(Json(json!({ "counts": counts })))
}
