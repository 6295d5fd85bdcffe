//! `/mlflow/metrics/*`: a metric's full history (paged) and sampled histories of many runs.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use cairn_core::model::Metric;
use cairn_core::store::{BulkIntervalQuery, HistoryQuery};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Fields, parse_query};
use crate::sized_json::SizedJson;
use crate::{AppState, wire};

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

/// Room for one point of a history page besides its key: the field names, a step, a
/// millisecond timestamp and a double, as written.
const HISTORY_POINT_BYTES: usize = 80;

async fn history(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<SizedJson> {
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
    let point_bytes = HISTORY_POINT_BYTES + key.len();
    let page = state.store.metric_history(HistoryQuery { run_id, key, max_results, offset }).await?;
    let capacity = page.items.len() * point_bytes + 128;
    Ok(SizedJson::new(&history_page(&page.items, page.next_offset), capacity))
}

/// A history response, written straight from the store's points: as a `Value` tree (a map and
/// an owned key per point) a 100,000-point history was the server's largest allocation, several
/// times the size of the JSON it became.
fn history_page(metrics: &[Metric], next_offset: Option<u64>) -> wire::PageJson<'_, Metric, wire::MetricJson<'_>> {
    let next_page_token = next_offset.map(wire::encode_page_token);
    wire::PageJson { key: "metrics", items: metrics, write: wire::MetricJson, next_page_token }
}

async fn bulk_interval(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &["run_ids"])?;
    let points = state.store.metric_history_bulk_interval(bulk_interval_query(&args)?).await?;
    let mut body = Map::new();
    wire::set_list(&mut body, "metrics", points.iter().map(wire::run_metric).collect());
    Ok(Json(json!(body)))
}

/// A `get-history-bulk-interval` request as the store's query, with MLflow's validation
/// (shared with GraphQL's `mlflowGetMetricHistoryBulkInterval`).
pub(crate) fn bulk_interval_query(args: &Fields) -> ApiResult<BulkIntervalQuery> {
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
            return Err(ApiError::invalid("If either start step or end step are specified, both must be specified."));
        }
    };
    Ok(BulkIntervalQuery { run_ids, key, start_step, end_step, max_results })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_pages_are_written_as_mlflow_writes_them() {
        let point = |key: &str, value: f64, step: i64| Metric { key: key.into(), value, timestamp: 7, step };
        let metrics = vec![
            point("loss", 0.25, 0),
            point("l\"o\\ss é", f64::NAN, -3),
            point("loss", f64::INFINITY, i64::MAX),
            point("loss", f64::NEG_INFINITY, i64::MIN),
            point("loss", 1e-300, 2),
        ];
        let points = concat!(
            r#"{"key":"loss","step":0,"timestamp":7,"value":0.25},"#,
            r#"{"key":"l\"o\\ss é","step":-3,"timestamp":7,"value":"NaN"},"#,
            r#"{"key":"loss","step":9223372036854775807,"timestamp":7,"value":1.7976931348623157e+308},"#,
            r#"{"key":"loss","step":-9223372036854775808,"timestamp":7,"value":-1.7976931348623157e+308},"#,
            r#"{"key":"loss","step":2,"timestamp":7,"value":1e-300}"#,
        );
        let page = |metrics: &[Metric], next| serde_json::to_string(&history_page(metrics, next)).unwrap();
        assert_eq!(page(&metrics, None), format!(r#"{{"metrics":[{points}]}}"#));
        let token = wire::encode_page_token(25_000);
        assert_eq!(page(&metrics, Some(25_000)), format!(r#"{{"metrics":[{points}],"next_page_token":"{token}"}}"#));
        assert_eq!(page(&[], None), "{}");
        assert_eq!(page(&[], Some(7)), format!(r#"{{"next_page_token":"{}"}}"#, wire::encode_page_token(7)));
        // The value-tree writer, used for single points elsewhere, agrees.
        let tree: Vec<Value> = metrics.iter().map(wire::metric).collect();
        assert_eq!(serde_json::to_string(&tree).unwrap(), format!("[{points}]"));
    }
}
