//! MLflow 3's logged-model search (`POST /api/2.0/mlflow/logged-models/search`).
//!
//! Cairn does not record logged models yet (that arrives with the model-registry work), so no
//! logged model exists and every well-formed search truly has no results. The route exists
//! because the client asks it as part of ordinary run operations — listing a folder of a run's
//! artifacts searches for models logged by that run — and an unknown-endpoint error there would
//! break plain artifact use. The request is still validated, so malformed input fails as MLflow's
//! would.

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/logged-models/search", post(search_logged_models))
}

async fn search_logged_models(JsonBody(body): JsonBody) -> Result<Json<Value>, ApiError> {
    // Reading each field checks its type; the values select among no models.
    body.str_list("experiment_ids")?;
    body.str("filter")?;
    body.str("page_token")?;
    body.i64("max_results")?;
    body.objects("order_by")?;
    body.objects("datasets")?;
    Ok(Json(json!({ "models": [] })))
}
