//! `/mlflow/registered-models/*` except aliases: create, get, rename, update, delete, search,
//! set-tag, delete-tag and get-latest-versions.

use axum::extract::State;
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use cairn_core::registry::{NewRegisteredModel, REGISTRY_SEARCH_MAX_RESULTS_DEFAULT, RegisteredModelQuery, Stage};

use cairn_core::search::{parse_registered_model_filter, parse_registered_model_order_by_list};

use crate::error::ApiResult;
use crate::extract::RequestActor;
use crate::mlflow::experiments::key_values;
use crate::mlflow::registry::{Args, filter_and_order, max_results, render};
use crate::{AppState, wire};

/// MLflow's largest page of registered models.
pub const SEARCH_MAX_RESULTS_THRESHOLD: u64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/registered-models/create", post(create))
        .route("/registered-models/get", get(get_model))
        .route("/registered-models/rename", post(rename))
        .route("/registered-models/update", patch(update))
        .route("/registered-models/delete", delete(delete_model))
        .route("/registered-models/search", get(search_models))
        .route("/registered-models/set-tag", post(set_tag))
        .route("/registered-models/delete-tag", delete(delete_tag))
        .route("/registered-models/get-latest-versions", post(latest_versions).get(latest_versions))
}

fn model_response(model: &cairn_core::registry::RegisteredModel) -> Json<Value> {
    Json(json!({ "registered_model": render::registered_model(model) }))
}

async fn create(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let new = NewRegisteredModel {
        name: fields.required_str("name")?,
        description: fields.str("description")?,
        tags: key_values(&fields, "tags")?,
    };
    let model = state.store.create_registered_model(&actor, new).await?;
    Ok(model_response(&model))
}

async fn get_model(State(state): State<AppState>, Args { fields, .. }: Args) -> ApiResult<Json<Value>> {
    let model = state.store.get_registered_model(&fields.required_str("name")?).await?;
    Ok(model_response(&model))
}

async fn rename(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let new_name = fields.required_str("new_name")?;
    let model = state.store.rename_registered_model(&actor, &name, &new_name).await?;
    state.access_changed().await;
    Ok(model_response(&model))
}

async fn update(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    // MLflow sets the description to what the request carries, and an absent one clears it.
    let description = fields.str("description")?;
    let model = state.store.update_registered_model(&actor, &name, description).await?;
    Ok(model_response(&model))
}

async fn delete_model(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    state.store.delete_registered_model(&actor, &fields.required_str("name")?).await?;
    state.access_changed().await;
    Ok(Json(json!({})))
}

async fn search_models(State(state): State<AppState>, Args { fields, .. }: Args) -> ApiResult<Json<Value>> {
    let max_results = max_results(&fields, REGISTRY_SEARCH_MAX_RESULTS_DEFAULT, SEARCH_MAX_RESULTS_THRESHOLD)?;
    let (filter, order_by) =
        filter_and_order(&fields, parse_registered_model_filter, parse_registered_model_order_by_list)?;
    let query = RegisteredModelQuery {
        filter,
        order_by,
        max_results,
        offset: wire::decode_page_token(fields.str("page_token")?.as_deref())?,
    };
    let page = state.store.search_registered_models(query).await?;
    let mut body = Map::new();
    wire::set_list(&mut body, "registered_models", page.items.iter().map(render::registered_model).collect());
    wire::set_page_token(&mut body, page.next_offset);
    Ok(Json(Value::Object(body)))
}

async fn set_tag(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let tag = fields.key_value()?;
    state.store.set_registered_model_tag(&actor, &name, tag).await?;
    Ok(Json(json!({})))
}

async fn delete_tag(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let key = fields.required_str("key")?;
    state.store.delete_registered_model_tag(&actor, &name, &key).await?;
    Ok(Json(json!({})))
}

async fn latest_versions(State(state): State<AppState>, Args { fields, .. }: Args) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let stages = fields.str_list("stages")?.iter().map(|s| Stage::parse(s)).collect::<cairn_core::Result<Vec<_>>>()?;
    let versions = state.store.get_latest_versions(&name, stages).await?;
    let mut body = Map::new();
    render::set_versions(&mut body, "model_versions", &versions);
    Ok(Json(Value::Object(body)))
}
