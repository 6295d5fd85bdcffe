//! `/mlflow/metrics/*`: a metric's full history (paged) and sampled histories of many runs.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use cairn_core::store::{BulkIntervalQuery, HistoryQuery};

use crate::error::{ApiError, ApiResult};
use crate::extract::parse_query;
use crate::{wire, AppState};

/// Most runs one bulk-interval request may name (MLflow's `MAX_RUNS_GET_METRIC_HISTORY_BULK`).
pub const MAX_RUNS_PER_BULK_REQUEST: usize = 100;
/// Most points per run a bulk-interval request returns (MLflow's `MAX_RESULTS_PER_RUN`).
pub const MAX_RESULTS_PER_RUN: u64 = 2500;

const API_DOCS_HINT: &str = " See the API docs for more information about request parameters.";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics/get-history", get(history))
        .route("/metrics/get-history-bulk-interval", get(bulk_interval))
}

async fn history(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let run_id = args.run_id()?;
    let key = args.required_str("metric_key")?;
    // Without max_results MLflow returns the whole history in one response.
    let max_results = match args.i64("max_results")? {
        None => None,
        Some(n) if n >= 1 => Some(n as u64),
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied. It must be a positive integer."
            )));
        }
    };
    let offset = wire::decode_page_token(args.str("page_token")?.as_deref())?;
    let page = state.store.metric_history(HistoryQuery { run_id, key, max_results, offset }).await?;
    let mut body = Map::new();
    wire::set_list(&mut body, "metrics", page.items.iter().map(wire::metric).collect());
    wire::set_page_token(&mut body, page.next_offset);
    Ok(Json(Value::Object(body)))
}

async fn bulk_interval(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &["run_ids"])?;
    let run_ids = args.str_list("run_ids")?;
    if run_ids.is_empty() {
        return Err(args.missing("run_ids"));
    }
    if run_ids.len() > MAX_RUNS_PER_BULK_REQUEST {
        return Err(ApiError::invalid(format!(
            "GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS_PER_BULK_REQUEST} \
             run_ids. Received {} run_ids.{API_DOCS_HINT}",
            run_ids.len()
        )));
    }
    let key = args.required_str("metric_key")?;
    let max_results = match args.i64("max_results")? {
        None => MAX_RESULTS_PER_RUN,
        Some(n) if (1..=MAX_RESULTS_PER_RUN as i64).contains(&n) => n as u64,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "max_results must be between 1 and {MAX_RESULTS_PER_RUN}.{API_DOCS_HINT}"
            )));
        }
    };
    let (start_step, end_step) = match (args.i64("start_step")?, args.i64("end_step")?) {
        (Some(start), Some(end)) if start > end => {
            return Err(ApiError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={start} and end_step={end}."
            )));
        }
        (Some(start), Some(end)) => (Some(start), Some(end)),
        (None, None) => (None, None),
        _ => {
            return Err(ApiError::invalid(
                "If either start step or end step are specified, both must be specified.",
            ));
        }
    };
    let query = BulkIntervalQuery { run_ids, key, start_step, end_step, max_results };
    let points = state.store.metric_history_bulk_interval(query).await?;
    let mut body = Map::new();
    wire::set_list(&mut body, "metrics", points.iter().map(wire::run_metric).collect());
    Ok(Json(json!(body)))
}
