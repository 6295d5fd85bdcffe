//! `GET /api/cairn/v1/session`: who the caller is and what they may do, for the web UI.
//!
//! The UI signs in by sending credentials with this request (a wrong password is refused by
//! `auth::principal::authenticate` before it gets here, and counted against the rate limit like
//! any other), and hides the controls the answer says the caller may not use. The route is
//! public: without credentials it answers who is needed (`user: null`) instead of 401, so a
//! browser's first look does not raise its own sign-in dialog.
//!
//! Permissions are reported per resource asked (`experiment_id`, `registered_model`, each
//! repeatable), already narrowed by the token's scope: a `read` token on an experiment its user
//! manages is reported `READ`, because that is what its requests will be allowed.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use cairn_core::auth::{Permission, ResourceType};

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_query;

/// Resources per request: a page of the experiments list and then some, as run counts.
pub const MAX_RESOURCES: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/cairn/v1/session", get(session))
}

async fn session(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let fields = parse_query(query.as_deref(), &["experiment_id", "registered_model"])?;
    let experiments = fields.str_list("experiment_id")?;
    let models = fields.str_list("registered_model")?;
    if experiments.len() + models.len() > MAX_RESOURCES {
        return Err(ApiError::invalid(format!(
            "the request names {} resources; at most {MAX_RESOURCES} are answered at once",
            experiments.len() + models.len()
        )));
    }
    let Some(auth) = state.auth.clone() else {
        // Without access control everyone may do everything.
        let all = |ids: &[String], key: &str| -> Vec<Value> {
            ids.iter().map(|id| json!({ key: id, "permission": Permission::Manage.as_str() })).collect()
        };
        return Ok(Json(json!({
            "auth": "none",
            "user": null,
            "may_write": true,
            "experiments": all(&experiments, "experiment_id"),
            "registered_models": all(&models, "name"),
        })));
    };
    let Some(Extension(principal)) = principal else {
        let none = |ids: &[String], key: &str| -> Vec<Value> {
            ids.iter().map(|id| json!({ key: id, "permission": Permission::NoPermissions.as_str() })).collect()
        };
        return Ok(Json(json!({
            "auth": "basic",
            "user": null,
            "may_write": false,
            "experiments": none(&experiments, "experiment_id"),
            "registered_models": none(&models, "name"),
        })));
    };
    let data = auth.data().await?;
    let level = |kind: ResourceType, id: &str| effective(&principal, auth.permission(&data, &principal, kind, id));
    let experiments: Vec<Value> = experiments
        .iter()
        .map(|id| json!({ "experiment_id": id, "permission": level(ResourceType::Experiment, id).as_str() }))
        .collect();
    let models: Vec<Value> = models
        .iter()
        .map(|name| json!({ "name": name, "permission": level(ResourceType::RegisteredModel, name).as_str() }))
        .collect();
    let token = principal.token.as_ref().map(|(id, scope)| json!({ "id": id, "scope": scope.as_string() }));
    Ok(Json(json!({
        "auth": "basic",
        "user": {
            "username": principal.username,
            "is_admin": principal.is_admin,
            "token": token,
        },
        "may_write": principal.may_write(),
        "experiments": experiments,
        "registered_models": models,
    })))
}

/// The level the principal's requests will actually be allowed: a token that may not write
/// reads at most, one that may not read (a `predictions:` token) gets nothing.
fn effective(principal: &Principal, granted: Permission) -> Permission {
    if !principal.may_read() {
        Permission::NoPermissions
    } else if !principal.may_write() && granted.allows(Permission::Read) {
        Permission::Read
    } else {
        granted
    }
}
