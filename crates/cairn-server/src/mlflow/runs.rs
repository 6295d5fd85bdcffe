//! `/mlflow/runs/*`: create, get, update, delete, restore, log-metric, log-parameter, set-tag,
//! delete-tag, log-batch and search.

use axum::extract::{Extension, RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use cairn_core::logged_models::MetricLink;
use cairn_core::model::{Batch, KeyValue, Metric, NewRun, Page, Run, RunStatus, RunUpdate, ViewType};
use cairn_core::search::{parse_run_filter, parse_run_order_by};
use cairn_core::store::{RunQuery, SEARCH_MAX_RESULTS_DEFAULT, SEARCH_MAX_RESULTS_THRESHOLD};
use cairn_core::validation::{self, MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH};

use crate::error::ApiResult;
use crate::extract::{Fields, JsonBody, JsonBytes, RequestActor, parse_body, parse_query};
use crate::mlflow::batch_body::{self, ParsedBatch, PreParsed};
use crate::mlflow::experiments::key_values;
use crate::mlflow::paging;
use crate::sized_json::SizedJson;
use crate::{AppState, wire};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs/create", post(create))
        .route("/runs/get", get(get_run))
        .route("/runs/update", post(update))
        .route("/runs/delete", post(delete))
        .route("/runs/restore", post(restore))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-parameter", post(log_param))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/delete-tag", post(delete_tag))
        .route("/runs/log-batch", post(log_batch))
        .route("/runs/search", post(search))
}

async fn create(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let run_name = body.str("run_name")?.filter(|n| !n.is_empty());
    let tags = key_values(&body, "tags")?;
    validation::validate_run_name(run_name.as_deref(), &tags)?;
    let new = NewRun {
        run_id: None,
        experiment_id: body.required_str("experiment_id")?,
        user_id: body.str("user_id")?.unwrap_or_default(),
        run_name,
        start_time: body.i64("start_time")?,
        tags,
    };
    let run = state.store.create_run(&actor, new).await?;
    Ok(Json(json!({ "run": wire::RunJson(&run) })))
}

async fn get_run(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let run = state.store.get_run(&args.run_id()?).await?;
    Ok(Json(json!({ "run": wire::RunJson(&run) })))
}

async fn update(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let update = RunUpdate {
        run_id: body.run_id()?,
        status: body.enumeration("status", RunStatus::parse)?,
        end_time: body.i64("end_time")?,
        // MLflow renames only when the new name is non-empty.
        run_name: body.str("run_name")?.filter(|n| !n.is_empty()),
    };
    let info = state.store.update_run(&actor, update).await?;
    Ok(Json(json!({ "run_info": wire::run_info(&info) })))
}

async fn delete(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    state.store.delete_run(&actor, &body.run_id()?).await?;
    Ok(Json(json!({})))
}

async fn restore(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    state.store.restore_run(&actor, &body.run_id()?).await?;
    Ok(Json(json!({})))
}

fn metric(item: &Fields) -> ApiResult<Metric> {
    Ok(Metric {
        key: item.required_str("key")?,
        value: item.required_f64("value")?,
        timestamp: item.required_i64("timestamp")?,
        step: item.i64("step")?.unwrap_or(0),
    })
}

/// What links a metric to a logged model (MLflow 3's `model_id`, with the dataset it was
/// measured on). Only `model_id` is looked up for the common case of a plain metric; MLflow
/// ignores dataset fields on a metric without a model.
fn metric_link(item: &Fields) -> ApiResult<Option<MetricLink>> {
    let Some(model_id) = item.str("model_id")?.filter(|id| !id.is_empty()) else { return Ok(None) };
    Ok(Some(MetricLink {
        model_id,
        dataset_name: item.str("dataset_name")?.filter(|n| !n.is_empty()),
        dataset_digest: item.str("dataset_digest")?.filter(|d| !d.is_empty()),
    }))
}

/// Logs `batch`, through the model-linking path only when some metric names a logged model, so
/// that ordinary batches keep their ingest path.
async fn log_linked(
    state: &AppState,
    actor: &cairn_core::model::Actor,
    run_id: &str,
    batch: Batch,
    links: Vec<Option<MetricLink>>,
) -> ApiResult<()> {
    if links.iter().any(Option::is_some) {
        state.store.log_batch_linked(actor, run_id, batch, links).await?;
    } else {
        state.store.log_batch(actor, run_id, batch).await?;
    }
    Ok(())
}

/// MLflow's server cuts over-long param and run tag values instead of refusing them
/// (`MLFLOW_TRUNCATE_LONG_VALUES` defaults to true), so the same calls succeed here.
fn truncated(mut kv: KeyValue, limit: usize) -> KeyValue {
    if validation::truncate_to_limit(&mut kv.value, limit) {
        tracing::warn!(key = %kv.key, limit, "value truncated to the length limit");
    }
    kv
}

async fn log_metric(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let run_id = body.run_id()?;
    let batch = Batch { metrics: vec![metric(&body)?], ..Batch::default() };
    log_linked(&state, &actor, &run_id, batch, vec![metric_link(&body)?]).await?;
    Ok(Json(json!({})))
}

async fn log_param(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let run_id = body.run_id()?;
    let param = body.key_value()?;
    let batch = Batch { params: vec![truncated(param, MAX_PARAM_VAL_LENGTH)], ..Batch::default() };
    state.store.log_batch(&actor, &run_id, batch).await?;
    Ok(Json(json!({})))
}

async fn set_tag(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let run_id = body.run_id()?;
    let tag = body.key_value()?;
    let batch = Batch { tags: vec![truncated(tag, MAX_TAG_VAL_LENGTH)], ..Batch::default() };
    state.store.log_batch(&actor, &run_id, batch).await?;
    Ok(Json(json!({})))
}

async fn delete_tag(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let run_id = body.run_id()?;
    let key = body.required_str("key")?;
    state.store.delete_tag(&actor, &run_id, &key).await?;
    Ok(Json(json!({})))
}

async fn log_batch(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    pre_parsed: Option<Extension<PreParsed>>,
    JsonBytes(bytes): JsonBytes,
) -> ApiResult<Json<Value>> {
    // Nearly every batch is well-formed and takes the typed reader (access control may have
    // run it already, to find the run); anything else is read again by the general one, which
    // owns MLflow's error messages.
    let pre_parsed = pre_parsed.and_then(|Extension(p)| p.take());
    let ParsedBatch { run_id, batch, links } = match pre_parsed.or_else(|| batch_body::parse(&bytes)) {
        Some(parsed) => parsed,
        None => read_batch(parse_body(&bytes)?)?,
    };
    let Batch { metrics, params, tags } = batch;
    let params = params.into_iter().map(|p| truncated(p, MAX_PARAM_VAL_LENGTH)).collect();
    let tags = tags.into_iter().map(|t| truncated(t, MAX_TAG_VAL_LENGTH)).collect();
    log_linked(&state, &actor, &run_id, Batch { metrics, params, tags }, links).await?;
    Ok(Json(json!({})))
}

/// Reads a log-batch body through the general reader, failing with MLflow's message for the
/// first malformed field.
fn read_batch(mut body: Fields) -> ApiResult<ParsedBatch> {
    let run_id = body.run_id()?;
    let items = body.take_objects("metrics")?;
    let metrics = items.iter().map(metric).collect::<ApiResult<Vec<_>>>()?;
    let links = items.iter().map(metric_link).collect::<ApiResult<Vec<_>>>()?;
    let params = key_values(&body, "params")?;
    let tags = key_values(&body, "tags")?;
    Ok(ParsedBatch { run_id, batch: Batch { metrics, params, tags }, links })
}

async fn search(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult<SizedJson> {
    // MLflow's handler rejects an oversized page before its store sees it, with this message.
    if let Some(n) = body.i64("max_results")?.filter(|&n| n > SEARCH_MAX_RESULTS_THRESHOLD as i64) {
        return Err(body.type_error("max_results", &json!(n)));
    }
    let page = state.store.search_runs(search_query(&body)?).await?;
    // A run's info and empty inputs take about 400 bytes, each param, tag or metric about 80.
    let entries: usize = page.items.iter().map(|r| r.params.len() + r.tags.len() + r.metrics.len()).sum();
    let capacity = page.items.len() * 400 + entries * 80 + 128;
    Ok(SizedJson::new(&search_page(&page), capacity))
}

/// A `runs/search` request as the store's query (shared with GraphQL's `mlflowSearchRuns`).
pub(crate) fn search_query(body: &Fields) -> ApiResult<RunQuery> {
    let (filter, order_by) = paging::filter_and_order(body, parse_run_filter, parse_run_order_by)?;
    let (offset, after) = wire::decode_run_page_token(body.str("page_token")?.as_deref())?;
    Ok(RunQuery {
        experiment_ids: body.str_list("experiment_ids")?,
        filter,
        order_by,
        view: body.enumeration("run_view_type", ViewType::parse)?.unwrap_or_default(),
        max_results: paging::max_results(body, SEARCH_MAX_RESULTS_DEFAULT)?,
        offset,
        after,
    })
}

/// A page of runs, written one run at a time: built whole as a `Value` tree, a page of a
/// thousand runs (a map per param, tag and metric) took tens of megabytes for a response of one.
pub(crate) fn search_page(page: &Page<Run>) -> wire::PageJson<'_, Run, wire::RunJson<'_>> {
    let next_page_token =
        page.next_offset.map(|offset| wire::encode_run_page_token(offset, page.next_after.as_deref()));
    wire::PageJson { key: "runs", items: &page.items, write: wire::RunJson, next_page_token }
}

#[cfg(test)]
mod tests {
    use cairn_core::model::{LifecycleStage, RunInfo, SortValue};

    use super::*;

    fn run(i: usize) -> Run {
        Run {
            info: RunInfo {
                run_id: format!("r{i}"),
                run_name: format!("run-{i}"),
                experiment_id: "1".into(),
                user_id: "u".into(),
                status: RunStatus::Finished,
                start_time: Some(5),
                end_time: i.is_multiple_of(2).then_some(9),
                artifact_uri: "mlflow-artifacts:/1/r/artifacts".into(),
                lifecycle_stage: LifecycleStage::Active,
            },
            metrics: vec![Metric { key: "acc".into(), value: f64::NAN, timestamp: 1, step: 0 }],
            params: vec![KeyValue::new("optimizer", "adam")],
            tags: vec![KeyValue::new("mlflow.runName", format!("run-{i}"))],
            inputs: Default::default(),
            outputs: Default::default(),
        }
    }

    /// MLflow's JSON for `run(i)`: sorted keys, no empty lists, `end_time` only when set, a
    /// NaN metric as "NaN", and `inputs`/`outputs` always present.
    fn expected_run(i: usize) -> String {
        let end = if i.is_multiple_of(2) { r#""end_time":9,"# } else { "" };
        format!(
            concat!(
                r#"{{"data":{{"metrics":[{{"key":"acc","step":0,"timestamp":1,"value":"NaN"}}],"#,
                r#""params":[{{"key":"optimizer","value":"adam"}}],"tags":[{{"key":"mlflow.runName","value":"run-{i}"}}]}},"#,
                r#""info":{{"artifact_uri":"mlflow-artifacts:/1/r/artifacts",{end}"experiment_id":"1","#,
                r#""lifecycle_stage":"active","run_id":"r{i}","run_name":"run-{i}","run_uuid":"r{i}","start_time":5,"#,
                r#""status":"FINISHED","user_id":"u"}},"inputs":{{}},"outputs":{{}}}}"#,
            ),
            i = i,
            end = end,
        )
    }

    #[test]
    fn search_pages_are_written_as_mlflow_writes_them() {
        let page = |runs: Vec<Run>, next| serde_json::to_string(&search_page(&Page::new(runs, next))).unwrap();
        let token = wire::encode_page_token(2);
        assert_eq!(
            page(vec![run(0), run(1)], Some(2)),
            format!(r#"{{"next_page_token":"{token}","runs":[{},{}]}}"#, expected_run(0), expected_run(1))
        );
        assert_eq!(page(vec![run(3)], None), format!(r#"{{"runs":[{}]}}"#, expected_run(3)));
        assert_eq!(page(Vec::new(), None), "{}");
        // A page that hands on its last run's sort key puts it in the token beside the offset.
        let keyed = Page { next_after: Some(vec![SortValue::Real(f64::INFINITY)]), ..Page::new(vec![run(5)], Some(1)) };
        let text = serde_json::to_string(&search_page(&keyed)).unwrap();
        let token = serde_json::from_str::<Value>(&text).unwrap()["next_page_token"].as_str().unwrap().to_owned();
        let decoded = wire::decode_run_page_token(Some(&token)).unwrap();
        assert_eq!(decoded, (1, Some(vec![SortValue::Real(f64::INFINITY)])));
        assert_eq!(wire::decode_page_token(Some(&token)).unwrap(), 1, "other routes read the offset alone");
        // The same run as a value tree (as get-run sends it) has the same JSON.
        assert_eq!(
            serde_json::to_string(&json!({ "run": wire::RunJson(&run(4)) })).unwrap(),
            format!(r#"{{"run":{}}}"#, expected_run(4))
        );
    }
}
