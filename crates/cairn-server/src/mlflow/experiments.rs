//! `/mlflow/experiments/*`: create, get, get-by-name, search, update (rename), delete, restore,
//! set-experiment-tag and delete-experiment-tag.

use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use cairn_core::model::{KeyValue, NewExperiment, ViewType};
use cairn_core::search::{parse_experiment_filter, parse_experiment_order_by};
use cairn_core::store::{ExperimentQuery, SEARCH_MAX_RESULTS_DEFAULT};
use cairn_core::validation;

use crate::error::ApiResult;
use crate::extract::{Fields, JsonBody, RequestActor, parse_query};
use crate::mlflow::paging;
use crate::{AppState, wire};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/experiments/create", post(create))
        .route("/experiments/get", get(get_by_id))
        .route("/experiments/get-by-name", get(get_by_name))
        .route("/experiments/search", get(search_get).post(search_post))
        .route("/experiments/update", post(update))
        .route("/experiments/delete", post(delete))
        .route("/experiments/restore", post(restore))
        .route("/experiments/set-experiment-tag", post(set_tag))
        .route("/experiments/delete-experiment-tag", post(delete_tag))
}

/// Reads a list of `{key, value}` objects; `value` may be absent (protobuf's default "").
pub fn key_values(fields: &Fields, field: &str) -> ApiResult<Vec<KeyValue>> {
    fields.objects(field)?.iter().map(|item| item.key_value()).collect()
}

async fn create(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let name = body.required_str("name")?;
    let artifact_location = body.str("artifact_location")?.filter(|l| !l.is_empty());
    if let Some(location) = &artifact_location {
        validation::validate_experiment_artifact_location(location)?;
    }
    let artifact_location = match (artifact_location, std::env::current_dir()) {
        (Some(location), Ok(cwd)) => Some(super::artifact_location::resolve(&location, &cwd)),
        (location, _) => location,
    };
    let tags = key_values(&body, "tags")?;
    let new = NewExperiment { name, artifact_location, tags };
    let experiment_id = state.store.create_experiment(&actor, new).await?;
    Ok(Json(json!({ "experiment_id": experiment_id })))
}

async fn get_by_id(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let experiment = state.store.get_experiment(&args.required_str("experiment_id")?).await?;
    Ok(Json(json!({ "experiment": wire::experiment(&experiment) })))
}

async fn get_by_name(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let experiment = state.store.get_experiment_by_name(&args.required_str("experiment_name")?).await?;
    Ok(Json(json!({ "experiment": wire::experiment(&experiment) })))
}

async fn search_get(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    search(state, parse_query(query.as_deref(), &["order_by"])?).await
}

async fn search_post(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult<Json<Value>> {
    search(state, body).await
}

async fn search(state: AppState, args: Fields) -> ApiResult<Json<Value>> {
    let max_results = paging::max_results(&args, SEARCH_MAX_RESULTS_DEFAULT)?;
    let (filter, order_by) = paging::filter_and_order(&args, parse_experiment_filter, parse_experiment_order_by)?;
    let query = ExperimentQuery {
        filter,
        order_by,
        view: args.enumeration("view_type", ViewType::parse)?.unwrap_or_default(),
        max_results,
        offset: wire::decode_page_token(args.str("page_token")?.as_deref())?,
    };
    let page = state.store.search_experiments(query).await?;
    let mut body = Map::new();
    wire::set_list(&mut body, "experiments", page.items.iter().map(wire::experiment).collect());
    wire::set_page_token(&mut body, page.next_offset);
    Ok(Json(Value::Object(body)))
}

async fn update(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let experiment_id = body.required_str("experiment_id")?;
    let new_name = body.required_str("new_name")?;
    state.store.rename_experiment(&actor, &experiment_id, &new_name).await?;
    Ok(Json(json!({})))
}

async fn delete(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    state.store.delete_experiment(&actor, &body.required_str("experiment_id")?).await?;
    Ok(Json(json!({})))
}

async fn restore(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    state.store.restore_experiment(&actor, &body.required_str("experiment_id")?).await?;
    Ok(Json(json!({})))
}

async fn set_tag(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let experiment_id = body.required_str("experiment_id")?;
    let tag = body.key_value()?;
    state.store.set_experiment_tag(&actor, &experiment_id, tag).await?;
    Ok(Json(json!({})))
}

async fn delete_tag(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let experiment_id = body.required_str("experiment_id")?;
    let key = body.required_str("key")?;
    state.store.delete_experiment_tag(&actor, &experiment_id, &key).await?;
    Ok(Json(json!({})))
}
