//! `GET /ajax-api/2.0/mlflow/metrics/get-history-bulk`: one metric's whole history for up to
//! 100 runs at once, served only under the UI prefix as in MLflow.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use cairn_core::model::{Metric, RunMetric};
use cairn_core::store::HistoryQuery;

use crate::error::{ApiError, ApiResult};
use crate::extract::parse_query;
use crate::{AppState, wire};

/// Most points one request returns, over all its runs (MLflow's `MAX_HISTORY_RESULTS`).
pub const MAX_HISTORY_RESULTS: u64 = 25_000;
/// Most runs one request may name (MLflow's `MAX_RUN_IDS_PER_REQUEST`).
pub const MAX_RUN_IDS: usize = 100;

/// Route: `GET /metrics/get-history-bulk` (under `/ajax-api/2.0/mlflow` only).
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics/get-history-bulk", get(history_bulk))
}

async fn history_bulk(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &["run_id"])?;
    let mut run_ids = args.str_list("run_id")?;
    if run_ids.is_empty() {
        return Err(ApiError::invalid("GetMetricHistoryBulk request must specify at least one run_id."));
    }
    if run_ids.len() > MAX_RUN_IDS {
        return Err(ApiError::invalid(format!(
            "GetMetricHistoryBulk request cannot specify more than {MAX_RUN_IDS} run_ids. Received {} run_ids.",
            run_ids.len()
        )));
    }
    let Some(key) = args.str("metric_key")? else {
        return Err(ApiError::invalid("GetMetricHistoryBulk request must specify a metric_key."));
    };
    let max_results = match args.i64("max_results")? {
        None => MAX_HISTORY_RESULTS,
        Some(n) if n >= 0 => (n as u64).min(MAX_HISTORY_RESULTS),
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied. It must be a non-negative integer."
            )));
        }
    };
    // Runs in id order, each run's points by (timestamp, step, value), and the limit applies to
    // the whole answer, as in MLflow's SQL store.
    run_ids.sort();
    run_ids.dedup();
    let mut points: Vec<RunMetric> = Vec::new();
    for run_id in run_ids {
        if points.len() as u64 >= max_results {
            break;
        }
        let remaining = max_results - points.len() as u64;
        let query = HistoryQuery { run_id: run_id.clone(), key: key.clone(), max_results: None, offset: 0 };
        let mut history = match state.store.metric_history(query).await {
            Ok(page) => page.items,
            // Ids that name no run contribute nothing rather than failing the batch.
            Err(cairn_core::Error::NotFound(_) | cairn_core::Error::InvalidParameter(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        history.sort_by(point_order);
        history.truncate(remaining as usize);
        points.extend(history.into_iter().map(|metric| RunMetric { run_id: run_id.clone(), metric }));
    }
    let mut body = Map::new();
    body.insert("metrics".into(), Value::Array(points.iter().map(wire::run_metric).collect()));
    Ok(Json(json!(body)))
}

fn point_order(a: &Metric, b: &Metric) -> std::cmp::Ordering {
    (a.timestamp, a.step).cmp(&(b.timestamp, b.step)).then_with(|| a.value.total_cmp(&b.value))
}
