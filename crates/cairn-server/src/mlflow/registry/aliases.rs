//! `/mlflow/registered-models/alias`: `POST` sets an alias, `DELETE` removes it, `GET` returns
//! the version it points to. Every move is kept in the model's history by the store.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::RequestActor;
use crate::mlflow::registry::{Args, render, version};

pub fn router() -> Router<AppState> {
    Router::new().route("/registered-models/alias", post(set_alias).delete(delete_alias).get(get_by_alias))
}

async fn set_alias(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let alias = fields.required_str("alias")?;
    let number = version(&fields)?;
    let target = cairn_core::lineage::PromotionTarget::Alias(alias.clone());
    crate::governance::check_promotion(&state, &name, number, target).await?;
    state.store.set_registered_model_alias(&actor, &name, &alias, number).await?;
    Ok(Json(json!({})))
}

async fn delete_alias(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let alias = fields.required_str("alias")?;
    state.store.delete_registered_model_alias(&actor, &name, &alias).await?;
    Ok(Json(json!({})))
}

async fn get_by_alias(State(state): State<AppState>, Args { fields, .. }: Args) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let alias = fields.required_str("alias")?;
    let found = state.store.get_model_version_by_alias(&name, &alias).await?;
    Ok(Json(json!({ "model_version": render::model_version(&found) })))
}
