//! `/api/cairn/v1/models/*`: the registry's history, which MLflow's API has no place for.
//!
//! MLflow overwrites an alias or a stage in place; Cairn keeps every change (who, when, from
//! what, to what) and answers two questions about the past:
//!
//! - `GET /api/cairn/v1/models/{name}/history[?as_of=T]`: the model's timeline, oldest first,
//!   up to `T` when given. The model may since have been renamed or deleted: `name` is matched
//!   against the names it had, and each entry carries the name at the time.
//!
//!   ```json
//!   {"name": "m", "as_of": null, "history": [
//!     {"seq": 7, "time": 1763892000000, "actor": "alice", "kind": "alias_set", "name": "m",
//!      "version": 2, "alias": "champion", "previous_version": 1, "from_stage": null,
//!      "to_stage": null, "previous_name": null}, …]}
//!   ```
//!
//!   `kind` is one of `model_created`, `model_renamed`, `model_deleted`, `version_created`,
//!   `version_deleted`, `stage_transition` (with `from_stage`/`to_stage`: `None`, `Staging`,
//!   `Production`, `Archived`), `alias_set` and `alias_deleted` (with `previous_version`).
//!   `seq` is the audit event that made the change. A name with no history is a 404.
//!
//! - `GET /api/cairn/v1/models/{name}/aliases/{alias}[?as_of=T]`: the version the alias
//!   pointed to at `T` (now when absent), with that version's current record when it still
//!   exists (`model_version`, else `null`); a 404 when the alias pointed nowhere then.
//!
//!   ```json
//!   {"name": "m", "alias": "champion", "as_of": 1763892000000, "version": 1,
//!    "model_version": {"name": "m", "version": 1, "current_stage": "Archived", "source": "…",
//!                      "pin_id": "mv-…", …}}
//!   ```
//!
//! - `GET /api/cairn/v1/models/{name}/versions/{version}/files`: the files pinned at
//!   registration, each with its digest and size (`pin_id` null and no files for a version
//!   registered without files).
//!
//! - `GET /api/cairn/v1/models/{name}/versions/{version}/policy`: what the server's promotion
//!   policy says of the version, rule by rule, for every promotion the rule governs: each
//!   requirement with `met` and what was found or is missing, and the lineage facts gathered.
//!   `{"policy": false, "rules": []}` when the server runs without `--policy-file`. A caller
//!   who may not read the version's source run sees whether its tags and metrics meet the
//!   rules, not their values (those checks carry `"redacted": true`).
//!
//! `T` is milliseconds since the epoch or an RFC 3339 timestamp (`2026-11-23T10:00:00Z`).
//! Errors use the same `{"error_code", "message"}` bodies as the MLflow routes.

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use cairn_core::lineage::explain_policy;
use cairn_core::model::Millis;
use cairn_core::registry::{HistoryEntry, HistoryKind, ModelVersion};
use cairn_core::store::Store;
use cairn_core::{Error, time};

use crate::AppState;
use crate::auth::Principal;
use crate::auth::redact::readable;
use crate::error::ApiResult;
use crate::extract::parse_query;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/cairn/v1/models/{name}/history", get(history))
        .route("/api/cairn/v1/models/{name}/aliases/{alias}", get(alias_at))
        .route("/api/cairn/v1/models/{name}/versions/{version}/files", get(files_of_version))
        .route("/api/cairn/v1/models/{name}/versions/{version}/policy", get(version_policy))
}

async fn files_of_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let record = state.store.get_model_version(&name, parse_version(&version)?).await?;
    let files = match record.pin_id.as_deref() {
        Some(pin_id) => state.store.pinned_files(pin_id, "").await?,
        None => Vec::new(),
    };
    Ok(Json(json!({
        "name": record.name,
        "version": record.version,
        "pin_id": record.pin_id,
        "algorithm": cairn_artifacts::HASH_ALGORITHM,
        "files": files,
    })))
}

/// With access control on, a caller who may read the model but not its version's source run
/// gets the same verdict (the version passes or fails the same rules for everyone), but the
/// checks that read the run's tags and metrics say only whether they are met, not the values,
/// and carry `"redacted": true`.
async fn version_policy(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let version = parse_version(&version)?;
    let facts = crate::governance::facts(&state, &name, version).await?;
    let Some(policy) = state.policy.as_deref() else {
        return Ok(Json(json!({ "name": name, "version": version, "policy": false, "rules": [] })));
    };
    let datasets: Vec<Value> =
        facts.datasets.iter().map(|(node, digest)| json!({ "node": node, "digest": digest })).collect();
    let mut rules = serde_json::to_value(explain_policy(policy, &facts)).map_err(|e| Error::internal(e.to_string()))?;
    if let (Some(auth), Some(Extension(principal))) = (&state.auth, &principal)
        && !principal.is_admin
    {
        let record = state.store.get_model_version(&name, version).await?;
        let run = record.run_id.as_deref().filter(|r| !r.is_empty());
        let data = auth.data().await?;
        if let Some(run) = run
            && !readable(auth, &data, principal, &format!("run:{run}")).await
        {
            let own_tags: Vec<&str> = record.tags.iter().map(|t| t.key.as_str()).collect();
            hide_run_values(&mut rules, &own_tags);
        }
    }
    Ok(Json(json!({
        "name": name,
        "version": version,
        "policy": true,
        "rules": rules,
        "facts": {
            "datasets": datasets,
            "code_versions": facts.code_versions,
            "environments": facts.environments,
        },
    })))
}

/// Rewrites the checks of a verdict (`rules`, as JSON) whose facts come from the source run —
/// every metric, and the tags the version does not set itself — to say only whether they are
/// met. A missing fact names nothing of the run and keeps its message.
fn hide_run_values(rules: &mut Value, own_tags: &[&str]) {
    let Some(rules) = rules.as_array_mut() else { return };
    for check in rules.iter_mut().filter_map(|r| r.get_mut("checks")).filter_map(Value::as_array_mut).flatten() {
        let fact = check["fact"].as_str().unwrap_or_default().to_owned();
        let from_run = fact.starts_with("metric:") || fact.strip_prefix("tag:").is_some_and(|t| !own_tags.contains(&t));
        let message = check["message"].as_str().unwrap_or_default();
        let absent = message.ends_with("is not recorded") || message.ends_with("is not set");
        if !from_run || absent {
            continue;
        }
        let verdict = if check["met"] == true { "met" } else { "not met" };
        check["message"] = json!(format!("{verdict}; the value is on the source run, which you may not read"));
        check["redacted"] = json!(true);
    }
}

/// A version number from the path, refused with MLflow's message when it is not one.
fn parse_version(text: &str) -> ApiResult<i64> {
    Ok(cairn_core::registry::parse_version(text)?)
}

/// The `as_of` query argument, if any.
fn as_of(query: Option<&str>) -> ApiResult<Option<Millis>> {
    let args = parse_query(query, &[])?;
    Ok(args.str("as_of")?.map(|t| time::parse_instant(&t)).transpose()?)
}

async fn history(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let as_of = as_of(query.as_deref())?;
    let entries = state.store.model_history(&name, as_of).await?;
    if entries.is_empty() {
        return Err(Error::not_found(format!("No registered model named '{name}' has any history")).into());
    }
    Ok(Json(json!({ "name": name, "as_of": as_of, "history": entries })))
}

async fn alias_at(
    State(state): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let at = as_of(query.as_deref())?.unwrap_or_else(now_millis);
    let found = lookup_alias(state.store.as_ref(), &name, &alias, at).await?;
    Ok(Json(json!({
        "name": name,
        "alias": alias,
        "as_of": at,
        "version": found.version,
        "model_version": found.record,
    })))
}

/// What an alias pointed to at some time.
#[derive(Debug)]
pub struct AliasTarget {
    pub version: i64,
    /// The version's record today, when it still exists (under the model's current name).
    pub record: Option<ModelVersion>,
}

/// The version `alias` of `name` pointed to at `at`, not-found when it pointed nowhere.
pub async fn lookup_alias(store: &dyn Store, name: &str, alias: &str, at: Millis) -> cairn_core::Result<AliasTarget> {
    let Some(version) = store.alias_as_of(name, alias, at).await? else {
        return Err(Error::not_found(format!(
            "Alias '{alias}' of registered model '{name}' pointed to no version at {}",
            time::format_instant(at)
        )));
    };
    let history = store.model_history(name, None).await?;
    let record = match current_name(&history) {
        None => None,
        Some(current) => match store.get_model_version(current, version).await {
            Ok(record) => Some(record),
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
    };
    Ok(AliasTarget { version, record })
}

/// The model's name today, following renames; `None` once it was deleted.
fn current_name(history: &[HistoryEntry]) -> Option<&str> {
    let last = history.last()?;
    (last.kind != HistoryKind::ModelDeleted).then_some(last.name.as_str())
}

fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
