//! What GraphQL's root fields call: the REST routes' own request parsing and store calls, each
//! answering the REST route's JSON. The `graphql` module reads its output from that JSON.

use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Fields;
use crate::wire;

/// `experiments/get`.
pub async fn get_experiment(state: &AppState, experiment_id: &str) -> ApiResult<Value> {
    let experiment = state.store.get_experiment(experiment_id).await?;
    Ok(json!({ "experiment": wire::experiment(&experiment) }))
}

/// `runs/get`.
pub async fn get_run(state: &AppState, args: &Fields) -> ApiResult<Value> {
    let run = state.store.get_run(&args.run_id()?).await?;
    Ok(json!({ "run": wire::RunJson(&run) }))
}

/// `runs/search`.
pub async fn search_runs(state: &AppState, args: &Fields) -> ApiResult<Value> {
    let page = state.store.search_runs(super::runs::search_query(args)?).await?;
    Ok(serde_json::to_value(super::runs::search_page(&page)).unwrap_or(Value::Null))
}

/// `metrics/get-history-bulk-interval`.
pub async fn metric_history_bulk_interval(state: &AppState, args: &Fields) -> ApiResult<Value> {
    let points = state.store.metric_history_bulk_interval(super::metrics::bulk_interval_query(args)?).await?;
    Ok(json!({ "metrics": points.iter().map(wire::run_metric).collect::<Vec<_>>() }))
}

/// `artifacts/list`.
pub async fn list_artifacts(state: &AppState, args: &Fields) -> ApiResult<Value> {
    super::artifact_list::list_run_artifacts(state, args).await
}

/// `experiments/search-datasets`.
pub async fn search_datasets(state: &AppState, args: &Fields) -> ApiResult<Value> {
    super::datasets::search(state, args).await
}

/// `model-versions/search`.
pub async fn search_model_versions(state: &AppState, args: &Fields) -> ApiResult<Value> {
    super::registry::search_versions(state, args).await
}
