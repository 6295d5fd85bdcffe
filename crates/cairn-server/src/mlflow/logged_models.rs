//! MLflow 3's logged models (`/mlflow/logged-models…`): create, get, finalize (`PATCH`),
//! delete, tags, params, search and the listing of a model's files. Methods, paths and shapes
//! follow MLflow 3.17.2's `service.proto` and `rest_store.py`.

use axum::extract::{RawQuery, State};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use cairn_core::logged_models::{
    DatasetFilter, LoggedModel, LoggedModelOrder, LoggedModelQuery, LoggedModelStatus, ModelMetric, NewLoggedModel,
    SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT,
};
use cairn_core::search::{LoggedModelFilter, parse_logged_model_filter, parse_logged_model_order_field};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Fields, JsonBody, PathParams, RequestActor, parse_query};
use crate::mlflow::artifacts::{directory_entries, sanitize};
use crate::mlflow::experiments::key_values;
use crate::mlflow::paging;
use crate::{AppState, wire};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/logged-models", post(create))
        .route("/logged-models/search", post(search))
        .route("/logged-models/{model_id}", get(get_model).patch(finalize).delete(delete_model))
        .route("/logged-models/{model_id}/tags", patch(set_tags))
        .route("/logged-models/{model_id}/tags/{tag_key}", delete(delete_tag))
        .route("/logged-models/{model_id}/params", post(log_params))
        .route("/logged-models/{model_id}/artifacts/directories", get(list_artifacts))
}

/// A logged model as MLflow's `LoggedModel` message: `info` (identity, status, tags) and
/// `data` (params and metrics).
pub fn logged_model(m: &LoggedModel) -> Value {
    let mut info = Map::new();
    info.insert("model_id".into(), json!(m.model_id));
    info.insert("experiment_id".into(), json!(m.experiment_id));
    info.insert("name".into(), json!(m.name));
    info.insert("creation_timestamp_ms".into(), json!(m.creation_timestamp));
    info.insert("last_updated_timestamp_ms".into(), json!(m.last_updated_timestamp));
    info.insert("artifact_uri".into(), json!(m.artifact_location));
    info.insert("status".into(), json!(m.status.as_str()));
    for (key, value) in
        [("model_type", &m.model_type), ("source_run_id", &m.source_run_id), ("status_message", &m.status_message)]
    {
        if let Some(value) = value {
            info.insert(key.into(), json!(value));
        }
    }
    wire::set_list(&mut info, "tags", m.tags.iter().map(wire::key_value).collect());
    let mut data = Map::new();
    wire::set_list(&mut data, "params", m.params.iter().map(wire::key_value).collect());
    wire::set_list(&mut data, "metrics", m.metrics.iter().map(|p| model_metric(&m.model_id, p)).collect());
    json!({ "info": info, "data": data })
}

/// A metric point of a logged model, with the model, run and dataset it was logged for.
fn model_metric(model_id: &str, p: &ModelMetric) -> Value {
    let mut v = json!({
        "key": p.key,
        "value": wire::metric_value(p.value),
        "timestamp": p.timestamp,
        "step": p.step,
        "model_id": model_id,
    });
    for (key, value) in
        [("run_id", &p.run_id), ("dataset_name", &p.dataset_name), ("dataset_digest", &p.dataset_digest)]
    {
        if let Some(value) = value {
            v[key] = json!(value);
        }
    }
    v
}

pub(crate) fn model_response(m: &LoggedModel) -> Json<Value> {
    Json(json!({ "model": logged_model(m) }))
}

async fn create(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let model = state.store.create_logged_model(&actor, new_logged_model(&body, None)?).await?;
    Ok(model_response(&model))
}

/// The model a create body describes (MLflow's `CreateLoggedModel`), under `model_id` when the
/// client chose one.
pub(crate) fn new_logged_model(body: &Fields, model_id: Option<String>) -> ApiResult<NewLoggedModel> {
    Ok(NewLoggedModel {
        model_id,
        experiment_id: body.required_str("experiment_id")?,
        // MLflow generates a name for an absent or empty one.
        name: body.str("name")?.filter(|n| !n.is_empty()),
        model_type: body.str("model_type")?,
        source_run_id: body.str("source_run_id")?,
        tags: key_values(body, "tags")?,
        params: key_values(body, "params")?,
    })
}

async fn get_model(
    State(state): State<AppState>,
    PathParams(model_id): PathParams<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    // MLflow reads the flag case-insensitively and treats anything but "true" as false.
    let allow_deleted = args.str("allow_deleted")?.is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let model = if allow_deleted {
        state.store.get_logged_model_any_stage(&model_id).await?
    } else {
        state.store.get_logged_model(&model_id).await?
    };
    Ok(model_response(&model))
}

async fn finalize(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    PathParams(model_id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let status = body.enumeration("status", LoggedModelStatus::parse)?.ok_or_else(|| body.missing("status"))?;
    let status_message = body.str("status_message")?.filter(|m| !m.is_empty());
    let model = state.store.finalize_logged_model(&actor, &model_id, status, status_message).await?;
    Ok(model_response(&model))
}

async fn delete_model(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    PathParams(model_id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    state.store.delete_logged_model(&actor, &model_id).await?;
    Ok(Json(json!({})))
}

async fn set_tags(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    PathParams(model_id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let tags = key_values(&body, "tags")?;
    state.store.set_logged_model_tags(&actor, &model_id, tags).await?;
    Ok(Json(json!({})))
}

async fn delete_tag(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    PathParams((model_id, tag_key)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    state.store.delete_logged_model_tag(&actor, &model_id, &tag_key).await?;
    Ok(Json(json!({})))
}

async fn log_params(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    PathParams(model_id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let params = key_values(&body, "params")?;
    state.store.log_logged_model_params(&actor, &model_id, params).await?;
    Ok(Json(json!({})))
}

/// A `{dataset_name, dataset_digest}` object; MLflow requires the name.
fn dataset_filter(item: &Fields) -> ApiResult<DatasetFilter> {
    let name = item
        .str("dataset_name")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid("`dataset_name` in the `datasets` clause must be specified."))?;
    Ok(DatasetFilter { name, digest: item.str("dataset_digest")?.filter(|d| !d.is_empty()) })
}

fn order_key(item: &Fields) -> ApiResult<LoggedModelOrder> {
    let field_name = item.required_str("field_name")?;
    let field = parse_logged_model_order_field(&field_name)?;
    let dataset = match item.str("dataset_name")?.filter(|n| !n.is_empty()) {
        Some(name) => Some(DatasetFilter { name, digest: item.str("dataset_digest")?.filter(|d| !d.is_empty()) }),
        None => None,
    };
    Ok(LoggedModelOrder { field, ascending: item.bool("ascending")?.unwrap_or(true), dataset })
}

async fn search(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult<Json<Value>> {
    let experiment_ids = body.str_list("experiment_ids")?;
    if experiment_ids.is_empty() {
        return Err(body.missing("experiment_ids"));
    }
    let filter = match body.str("filter")? {
        Some(f) if !f.trim().is_empty() => parse_logged_model_filter(&f)?,
        _ => LoggedModelFilter::default(),
    };
    let query = LoggedModelQuery {
        experiment_ids,
        filter,
        order_by: body.objects("order_by")?.iter().map(order_key).collect::<ApiResult<_>>()?,
        datasets: body.objects("datasets")?.iter().map(dataset_filter).collect::<ApiResult<_>>()?,
        max_results: paging::max_results(&body, SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT)?,
        offset: wire::decode_page_token(body.str("page_token")?.as_deref())?,
    };
    let page = state.store.search_logged_models(query).await?;
    let mut out = Map::new();
    wire::set_list(&mut out, "models", page.items.iter().map(logged_model).collect());
    wire::set_page_token(&mut out, page.next_offset);
    Ok(Json(Value::Object(out)))
}

/// The immediate children of a directory of a model's files, with paths relative to the
/// model's artifact root, as MLflow lists a proxied root.
async fn list_artifacts(
    State(state): State<AppState>,
    PathParams(model_id): PathParams<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let model = state.store.get_logged_model(&model_id).await?;
    let dir = sanitize(&args.str("artifact_directory_path")?.unwrap_or_default())?;
    let artifacts = state.artifacts()?;
    let files = artifacts.manifest.list_artifacts(&model.model_id, dir.as_str()).await?;
    let held = directory_entries(dir.as_str(), &files);
    let mut entries = super::local_files::merged(&state, &model.artifact_location, &dir, held).await?;
    if !dir.is_root() {
        for entry in &mut entries {
            if let Some(name) = entry["path"].as_str() {
                entry["path"] = json!(format!("{dir}/{name}"));
            }
        }
    }
    let mut out = Map::new();
    out.insert("root_uri".into(), json!(model.artifact_location));
    wire::set_list(&mut out, "files", entries);
    Ok(Json(Value::Object(out)))
}
