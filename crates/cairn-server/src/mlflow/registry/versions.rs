//! `/mlflow/model-versions/*`: create, get, update, delete, search, set-tag, delete-tag,
//! get-download-uri and transition-stage.

use axum::extract::State;
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use cairn_core::registry::{ModelVersion, ModelVersionQuery, NewModelVersion, Stage};

use cairn_core::search::{parse_model_version_filter, parse_model_version_order_by_list};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Fields, RequestActor};
use crate::mlflow::experiments::key_values;
use crate::mlflow::registry::source::{self, Claimed};
use crate::mlflow::registry::version_tag;
use crate::mlflow::registry::{Args, filter_and_order, max_results, render, version};
use crate::{AppState, wire};

/// MLflow's page size for a version search without `max_results` (the request's default), and
/// its largest.
pub const SEARCH_MAX_RESULTS: u64 = 200_000;

/// Where a pinned version's files are served: the client reads `mlflow-artifacts:` URIs through
/// the tracking server's artifact API, which maps this prefix to the version's pinned manifest.
pub const PINNED_FILES_ROOT: &str = "mlflow-artifacts:/model-versions";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/model-versions/create", post(create))
        .route("/model-versions/get", get(get_version))
        .route("/model-versions/update", patch(update))
        .route("/model-versions/delete", delete(delete_version))
        .route("/model-versions/search", get(search_versions))
        .route("/model-versions/set-tag", post(set_tag))
        .route("/model-versions/delete-tag", delete(delete_tag))
        .route("/model-versions/get-download-uri", get(download_uri))
        .route("/model-versions/transition-stage", post(transition_stage))
}

fn version_response(v: &ModelVersion) -> Json<Value> {
    Json(json!({ "model_version": render::model_version(v) }))
}

async fn create(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let claimed = Claimed {
        source: fields.required_str("source")?,
        run_id: fields.str("run_id")?,
        model_id: fields.str("model_id")?,
    };
    let tags = key_values(&fields, "tags")?;
    let run_link = fields.str("run_link")?.filter(|l| !l.is_empty());
    // MLflow stores the request's description, which protobuf makes "" when absent, and returns
    // it as such.
    let description = Some(fields.str("description")?.unwrap_or_default());
    let lineage = source::check(state.store.as_ref(), claimed).await?;
    let new = NewModelVersion {
        name,
        source: lineage.source,
        run_id: lineage.run_id,
        run_link,
        description,
        tags,
        model_id: lineage.model_id,
        user_id: actor.0.clone(),
    };
    let created = state.store.create_model_version(&actor, new).await?;
    if let Some(model_id) = created.model_id.as_deref() {
        // A second write, as in MLflow: the version exists even if tagging the model fails.
        version_tag::record(state.store.as_ref(), &actor, model_id, &created.name, created.version).await?;
    }
    Ok(version_response(&created))
}

async fn get_version(State(state): State<AppState>, Args { fields, .. }: Args) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let found = state.store.get_model_version(&name, version(&fields)?).await?;
    Ok(version_response(&found))
}

async fn update(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let number = version(&fields)?;
    let description = fields.str("description")?;
    let updated = state.store.update_model_version(&actor, &name, number, description).await?;
    Ok(version_response(&updated))
}

async fn delete_version(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    state.store.delete_model_version(&actor, &name, version(&fields)?).await?;
    Ok(Json(json!({})))
}

async fn search_versions(State(state): State<AppState>, Args { fields, .. }: Args) -> ApiResult<Json<Value>> {
    search(&state, &fields).await.map(Json)
}

/// A version search as MLflow's JSON (shared with GraphQL's `mlflowSearchModelVersions`).
pub async fn search(state: &AppState, fields: &Fields) -> ApiResult<Value> {
    let max_results = max_results(fields, SEARCH_MAX_RESULTS, SEARCH_MAX_RESULTS)?;
    let (filter, order_by) = filter_and_order(fields, parse_model_version_filter, parse_model_version_order_by_list)?;
    let query = ModelVersionQuery {
        filter,
        order_by,
        max_results,
        offset: wire::decode_page_token(fields.str("page_token")?.as_deref())?,
    };
    let page = state.store.search_model_versions(query).await?;
    let mut body = Map::new();
    render::set_versions(&mut body, "model_versions", &page.items);
    wire::set_page_token(&mut body, page.next_offset);
    Ok(Value::Object(body))
}

async fn set_tag(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let number = version(&fields)?;
    let tag = fields.key_value()?;
    state.store.set_model_version_tag(&actor, &name, number, tag).await?;
    Ok(Json(json!({})))
}

async fn delete_tag(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    Args { fields, .. }: Args,
) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let number = version(&fields)?;
    let key = fields.required_str("key")?;
    state.store.delete_model_version_tag(&actor, &name, number, &key).await?;
    Ok(Json(json!({})))
}

/// Where the client downloads a version's files from: its pinned files when it has them, so a
/// later change to the run cannot change what the version serves; else its source.
async fn download_uri(State(state): State<AppState>, Args { fields, .. }: Args) -> ApiResult<Json<Value>> {
    let name = fields.required_str("name")?;
    let found = state.store.get_model_version(&name, version(&fields)?).await?;
    Ok(Json(json!({ "artifact_uri": artifact_uri(&found) })))
}

/// The URI a version's files are read from.
pub fn artifact_uri(v: &ModelVersion) -> String {
    match &v.pin_id {
        Some(pin_id) => format!("{PINNED_FILES_ROOT}/{pin_id}"),
        None => v.source.clone(),
    }
}

async fn transition_stage(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    args: Args,
) -> ApiResult<Json<Value>> {
    let fields = &args.fields;
    let name = fields.required_str("name")?;
    let number = version(fields)?;
    let stage_text = fields.required_str("stage")?;
    let archive_existing = args.flag("archive_existing_versions")?;
    let stage = Stage::parse(&stage_text)?;
    if archive_existing && !matches!(stage, Stage::Staging | Stage::Production) {
        // MLflow raises this without an error code (an internal error); it is the caller's
        // mistake, so Cairn answers INVALID_PARAMETER_VALUE with the same words.
        return Err(ApiError::invalid(format!(
            "Model version transition cannot archive existing model versions because '{stage_text}' is not an \
             Active stage. Valid stages are ['Staging', 'Production']"
        )));
    }
    let target = cairn_core::lineage::PromotionTarget::Stage(stage.as_str().to_owned());
    crate::governance::check_promotion(&state, &name, number, target).await?;
    let moved = state.store.transition_model_version_stage(&actor, &name, number, stage, archive_existing).await?;
    Ok(version_response(&moved))
}
