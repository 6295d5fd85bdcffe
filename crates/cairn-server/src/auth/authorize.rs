//! The check between a request's [`Principal`] and its route's [`Rule`]: a route layer, so it
//! runs after routing (it knows the matched route and path parameters) and only for routes; the
//! web UI's files, served by the fallback, need no sign-in.
//!
//! Finding a resource may need the JSON body (MLflow names runs and models there), so for those
//! rules the body is read once here and handed on unchanged. Searches over experiments' runs and
//! logged models are narrowed before they run, to the experiments the caller may read, so their
//! page tokens stay exact; searches over experiments and the registry are filtered after,
//! keeping the page token of the unfiltered page (a page may come back short, never skip).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use cairn_core::auth::{AuthData, Permission, ResourceType, TokenScope};

use super::routes::{Creates, Locate, Rule, Searches, rule_for};
use super::{Auth, Principal};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Fields, parse_body, parse_query};
use crate::mlflow::batch_body::{self, PreParsed};
use crate::{AppState, BODY_LIMIT_BYTES};

/// 403 with MLflow's code.
pub fn denied(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::PermissionDenied, message)
}

/// The route layer.
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(auth) = state.auth.clone() else { return next.run(request).await };
    match check(&state, &auth, request, next).await {
        Ok(response) => response,
        Err(response) => response,
    }
}

type Checked = Result<Response, Response>;

async fn check(state: &AppState, auth: &Arc<Auth>, request: Request, next: Next) -> Checked {
    let matched = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let Some(rule) = rule_for(request.method().as_str(), &matched) else {
        tracing::error!(method = %request.method(), route = %matched, "a route has no access rule; refused");
        return Err(denied(format!("No access rule covers {} {matched}", request.method())).into_response());
    };
    if rule == Rule::Public {
        return Ok(next.run(request).await);
    }
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return Err(super::principal::unauthenticated("This server requires signing in"));
    };
    let reads = matches!(*request.method(), Method::GET | Method::HEAD)
        || matches!(rule, Rule::Search(_) | Rule::Need(Permission::Read, _));
    if reads && !principal.may_read() || !reads && !principal.may_write() && rule != Rule::Predictions {
        return Err(denied("This API token's scope does not allow this request").into_response());
    }
    let data = auth.data().await.map_err(api)?;
    match rule {
        Rule::Public | Rule::SignedIn | Rule::SignedInWrite | Rule::Handler => Ok(next.run(request).await),
        Rule::Admin if principal.is_admin => Ok(next.run(request).await),
        Rule::Admin => Err(denied("Only an admin may do this").into_response()),
        Rule::Predictions => predictions(&principal, request, next).await,
        Rule::Lineage => {
            let response = next.run(request).await;
            redact_response(auth, &data, &principal, response).await
        }
        Rule::Create(creates) => create(state, auth, &principal, creates, request, next).await,
        Rule::Search(searches) => {
            let response = next.run(request).await;
            filter_response(auth, &data, &principal, searches, response).await
        }
        Rule::Need(needed, locate) => need(auth, &data, &principal, needed, locate, request, next).await,
    }
}

fn api(e: cairn_core::Error) -> Response {
    ApiError::from(e).into_response()
}

/// A request's parameters, read exactly as the handlers read them (the same parsers, the same
/// choice of source: the query of a `GET` that has one, else the JSON body, a JSON string
/// holding an object included), so that the resource checked is the resource acted on.
struct Params {
    /// The query's pairs, or the body object: whole, or only its naming fields when read lightly
    /// (a search's is read whole, to rewrite its `experiment_ids`).
    fields: Fields,
}

impl Params {
    fn str(&self, key: &str) -> Option<String> {
        self.fields.str(key).ok().flatten().filter(|s| !s.is_empty())
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.fields.str_list(key).unwrap_or_default()
    }
}

/// Fields a query string may repeat.
const LISTS: &[&str] = &["experiment_ids", "run_ids"];

/// The body fields a resource is found by. Only these are kept when the body is read lightly:
/// the rest (a log-batch's thousand metrics) is skipped without building values.
const NAMING_FIELDS: &[&str] = &["run_id", "run_uuid", "experiment_id", "name", "model_id", "path", "source"];

/// A JSON object with only [`NAMING_FIELDS`] kept.
struct Naming(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for Naming {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Naming;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Naming, A::Error> {
                let mut kept = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if NAMING_FIELDS.contains(&key.as_str()) {
                        kept.insert(key, map.next_value::<Value>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Naming(kept))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// Reads the request's parameters, the whole body or (`light`) only its naming fields; the
/// body comes back to be put in the request again.
async fn params(request: Request) -> Result<(Params, Request), Response> {
    read_params(request, false).await
}

async fn read_params(request: Request, light: bool) -> Result<(Params, Request), Response> {
    let get = matches!(*request.method(), Method::GET | Method::HEAD);
    if get && let Some(query) = request.uri().query().filter(|q| !q.is_empty()) {
        // A malformed query names nothing; the handler gives the precise error.
        let fields = parse_query(Some(query), LISTS).unwrap_or_default();
        return Ok((Params { fields }, request));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT_BYTES)
        .await
        .map_err(|_| ApiError::invalid("The request body could not be read").into_response())?;
    let body = if light { naming_fields(&bytes) } else { full_body(&bytes) };
    let params = Params { fields: Fields::new(body) };
    Ok((params, Request::from_parts(parts, Body::from(bytes))))
}

/// Reads a log-batch body with the handler's typed reader; when it takes the body, the batch goes
/// into the request's extensions and its run id is answered.
async fn pre_parse_batch(request: Request) -> Result<(Request, Option<String>), Response> {
    let (mut parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT_BYTES)
        .await
        .map_err(|_| ApiError::invalid("The request body could not be read").into_response())?;
    let run_id = batch_body::parse(&bytes).map(|parsed| {
        let run_id = parsed.run_id.clone();
        parts.extensions.insert(PreParsed::new(parsed));
        run_id
    });
    Ok((Request::from_parts(parts, Body::from(bytes)), run_id))
}

/// `query` with its `experiment_ids` replaced by `readable`, every other pair kept.
fn narrowed_query(query: &str, readable: &[String]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "experiment_ids" {
            out.append_pair(&key, &value);
        }
    }
    for id in readable {
        out.append_pair("experiment_ids", id);
    }
    out.finish()
}

/// The body as `extract::parse_body` reads it; a malformed one names nothing (the handler
/// refuses it with the precise error).
fn full_body(bytes: &[u8]) -> Map<String, Value> {
    match parse_body(bytes) {
        Ok(fields) => fields.into_map(),
        Err(_) => Map::new(),
    }
}

/// [`full_body`] keeping only [`NAMING_FIELDS`].
fn naming_fields(bytes: &[u8]) -> Map<String, Value> {
    if let Ok(Naming(map)) = serde_json::from_slice::<Naming>(bytes) {
        return map;
    }
    // `parse_body` also takes a JSON string that holds the object.
    match serde_json::from_slice::<String>(bytes) {
        Ok(inner) => serde_json::from_str::<Naming>(&inner).map(|n| n.0).unwrap_or_default(),
        Err(_) => Map::new(),
    }
}

async fn need(
    auth: &Auth,
    data: &AuthData,
    principal: &Principal,
    needed: Permission,
    locate: Locate,
    request: Request,
    next: Next,
) -> Checked {
    let (mut parts, body) = request.into_parts();
    let path_params: Vec<(String, String)> = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(p) => p.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        Err(_) => Vec::new(),
    };
    let mut request = Request::from_parts(parts, body);
    let mut locate = locate;
    if locate == Locate::Batch {
        // The typed reader found the run: check it, and hand the batch on read. A body it does
        // not take is located the general way, and the handler reads it again.
        let run_id;
        (request, run_id) = pre_parse_batch(request).await?;
        match run_id {
            Some(run_id) => {
                check_runs(auth, data, principal, needed, [run_id]).await?;
                return Ok(next.run(request).await);
            }
            None => locate = Locate::RunId,
        }
    }
    let path_param = |name: &str| path_params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    // Only narrowing a search rewrites the body, and needs all of it.
    let light = locate != Locate::ExperimentIds;
    let (params, mut request) =
        if uses_params(locate) { read_params(request, light).await? } else { (empty(), request) };
    let allows = |kind: ResourceType, id: &str| auth.permission(data, principal, kind, id).allows(needed);
    let refuse = |what: String| -> ApiError {
        denied(format!("Permission denied: {} on {what} needs {}", principal.username, needed.as_str()))
    };
    match locate {
        Locate::ExperimentId => {
            let id = params.str("experiment_id").unwrap_or_else(|| "0".to_owned());
            if !allows(ResourceType::Experiment, &id) {
                return Err(refuse(format!("experiment {id}")).into_response());
            }
        }
        Locate::ExperimentIds => {
            let ids = params.list("experiment_ids");
            let readable: Vec<&String> = ids.iter().filter(|id| allows(ResourceType::Experiment, id)).collect();
            if readable.len() != ids.len() {
                if readable.is_empty() {
                    // Nothing the caller may read: the empty answer of a search that found nothing.
                    return Ok(axum::Json(serde_json::json!({})).into_response());
                }
                let readable: Vec<String> = readable.into_iter().cloned().collect();
                let (mut parts, body) = request.into_parts();
                if matches!(parts.method, Method::GET | Method::HEAD) {
                    // A GET names its experiments in the query, which is what its handler reads.
                    let query = narrowed_query(parts.uri.query().unwrap_or_default(), &readable);
                    parts.uri = format!("{}?{query}", parts.uri.path())
                        .parse()
                        .map_err(|_| ApiError::invalid("The query string is not valid").into_response())?;
                    request = Request::from_parts(parts, body);
                } else {
                    let mut body = params.fields.into_map();
                    body.insert("experiment_ids".into(), Value::from(readable));
                    let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
                    parts.headers.remove(header::CONTENT_LENGTH);
                    request = Request::from_parts(parts, Body::from(bytes));
                }
            }
        }
        Locate::ExperimentName => {
            if let Some(name) = params.str("experiment_name")
                && let Ok(experiment) = auth.store.get_experiment_by_name(&name).await
                && !allows(ResourceType::Experiment, &experiment.experiment_id)
            {
                return Err(refuse(format!("experiment {}", experiment.experiment_id)).into_response());
            }
        }
        Locate::RunId | Locate::Batch | Locate::RunPath | Locate::RunIds | Locate::RunIdRepeated => {
            let ids = match locate {
                Locate::RunPath => path_param("run_id").into_iter().collect(),
                Locate::RunIds => params.list("run_ids"),
                Locate::RunIdRepeated => {
                    let query = parse_query(request.uri().query(), &["run_id"]).unwrap_or_default();
                    query.str_list("run_id").unwrap_or_default()
                }
                // `run_id`, or `run_uuid` when it is absent or empty, as `Fields::run_id` reads it.
                _ => params.fields.run_id().ok().into_iter().collect::<Vec<_>>(),
            };
            check_runs(auth, data, principal, needed, ids).await?;
        }
        Locate::ModelName | Locate::ModelPath => {
            let name = if locate == Locate::ModelPath { path_param("name") } else { params.str("name") };
            if let Some(name) = name
                && !allows(ResourceType::RegisteredModel, &name)
            {
                return Err(refuse(format!("registered model {name}")).into_response());
            }
        }
        Locate::NewVersion => {
            let name = params.str("name").unwrap_or_default();
            if !allows(ResourceType::RegisteredModel, &name) {
                return Err(refuse(format!("registered model {name}")).into_response());
            }
            let reads =
                |kind: ResourceType, id: &str| auth.permission(data, principal, kind, id).allows(Permission::Read);
            let mut experiments = Vec::new();
            if let Some(run_id) = params.str("run_id")
                && let Some(experiment) = auth.run_experiment(&run_id).await.map_err(api)?
            {
                experiments.push(experiment);
            }
            if let Some(model_id) = params.str("model_id")
                && let Ok(model) = auth.store.get_logged_model_any_stage(&model_id).await
            {
                experiments.push(model.experiment_id);
            }
            if let Some(experiment) = experiments.iter().find(|e| !reads(ResourceType::Experiment, e)) {
                return Err(denied(format!(
                    "Permission denied: the version's source is in experiment {experiment}, which needs READ"
                ))
                .into_response());
            }
            let source = params.str("source").unwrap_or_default();
            if let Some(rest) = source.strip_prefix("models:/") {
                let other = rest.split(['/', '@']).next().unwrap_or_default();
                if !reads(ResourceType::RegisteredModel, other) {
                    return Err(denied(format!(
                        "Permission denied: the version's source, registered model {other}, needs READ"
                    ))
                    .into_response());
                }
            }
        }
        Locate::LoggedModel => {
            if let Some(id) = path_param("model_id").or_else(|| params.str("model_id"))
                && let Ok(model) = auth.store.get_logged_model_any_stage(&id).await
                && !allows(ResourceType::Experiment, &model.experiment_id)
            {
                return Err(refuse(format!("logged model {id}")).into_response());
            }
        }
        Locate::ArtifactPath => {
            let path = path_param("path").or_else(|| params.str("path")).unwrap_or_default();
            match artifact_experiment(auth, &path).await.map_err(api)? {
                ArtifactOwner::Experiment(experiment) if !allows(ResourceType::Experiment, &experiment) => {
                    return Err(refuse(format!("the artifacts of experiment {experiment}")).into_response());
                }
                ArtifactOwner::Experiment(_) => {}
                // A model version's pinned files are read-only copies; reading them is like
                // `get-download-uri`, which the registry model's READ already allows.
                ArtifactOwner::Pinned if needed == Permission::Read || principal.is_admin => {}
                ArtifactOwner::Pinned => return Err(refuse("a model version's pinned files".into()).into_response()),
            }
        }
    }
    Ok(next.run(request).await)
}

/// Refuses unless `principal` holds `needed` on the experiment of every run in `run_ids`. An
/// unknown run passes: it is the handler's 404 to give.
async fn check_runs(
    auth: &Auth,
    data: &AuthData,
    principal: &Principal,
    needed: Permission,
    run_ids: impl IntoIterator<Item = String>,
) -> Result<(), Response> {
    for run_id in run_ids {
        if let Some(experiment) = auth.run_experiment(&run_id).await.map_err(api)?
            && !auth.permission(data, principal, ResourceType::Experiment, &experiment).allows(needed)
        {
            let who = &principal.username;
            return Err(
                denied(format!("Permission denied: {who} on run {run_id} needs {}", needed.as_str())).into_response()
            );
        }
    }
    Ok(())
}

/// Whose artifacts a path is.
enum ArtifactOwner {
    Experiment(String),
    Pinned,
}

/// The experiment whose artifacts `path` names: the run's (`…/<run_id>/artifacts/…`) or the
/// logged model's (`…/models/<m-…>/artifacts/…`) when the path names one that exists, whatever
/// its first segment says; else the first segment, as the default artifact root lays out
/// `<experiment>/<run>/artifacts`.
async fn artifact_experiment(auth: &Auth, path: &str) -> cairn_core::Result<ArtifactOwner> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segments.first() == Some(&"model-versions") {
        return Ok(ArtifactOwner::Pinned);
    }
    let is_run = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if let Some(w) = segments.windows(2).find(|w| is_run(w[0]) && w[1] == "artifacts")
        && let Some(experiment) = auth.run_experiment(w[0]).await?
    {
        return Ok(ArtifactOwner::Experiment(experiment));
    }
    if let Some(w) = segments.windows(3).find(|w| w[0] == "models" && w[1].starts_with("m-") && w[2] == "artifacts")
        && let Ok(model) = auth.store.get_logged_model_any_stage(w[1]).await
    {
        return Ok(ArtifactOwner::Experiment(model.experiment_id));
    }
    Ok(ArtifactOwner::Experiment(segments.first().copied().unwrap_or_default().to_owned()))
}

fn uses_params(locate: Locate) -> bool {
    !matches!(locate, Locate::RunPath | Locate::ModelPath)
}

fn empty() -> Params {
    Params { fields: Fields::default() }
}

/// Predictions: a `predictions:` token only for its own deployment; anyone else who may write
/// (not a `read` token).
async fn predictions(principal: &Principal, request: Request, next: Next) -> Checked {
    let Some((_, TokenScope::Predictions(deployment))) = &principal.token else {
        if !principal.may_write() {
            return Err(denied("This API token's scope does not allow this request").into_response());
        }
        return Ok(next.run(request).await);
    };
    let (params, request) = params(request).await?;
    let items = params.fields.raw("predictions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    // The handler takes the deployment as `deployment:NAME` or `NAME`; the store refuses an
    // item naming a model version as well, so the deployment alone decides what it is about.
    let own = |item: &Value| {
        let named = item.get("deployment").and_then(Value::as_str).unwrap_or_default();
        named.strip_prefix("deployment:").unwrap_or(named) == deployment.as_str()
    };
    if items.is_empty() || !items.iter().all(own) {
        return Err(
            denied(format!("This token may only post predictions of deployment '{deployment}'")).into_response()
        );
    }
    Ok(next.run(request).await)
}

/// Creating an experiment or registered model; on success the creator manages it.
async fn create(
    state: &AppState,
    auth: &Auth,
    principal: &Principal,
    creates: Creates,
    request: Request,
    next: Next,
) -> Checked {
    let (params, request) = params(request).await?;
    let response = next.run(request).await;
    if !response.status().is_success() {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = read_body(body).await?;
    let (kind, id) = match creates {
        Creates::Experiment => (
            ResourceType::Experiment,
            serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("experiment_id").and_then(Value::as_str).map(str::to_owned)),
        ),
        Creates::RegisteredModel => (ResourceType::RegisteredModel, params.str("name")),
    };
    if let Some(id) = id {
        let granted = state.store.grant(&principal.actor(), &principal.username, kind, &id, Permission::Manage).await;
        if let Err(e) = granted.and(auth.reload().await.map(|_| ())) {
            tracing::error!(error = %e, resource = %id, "cannot grant MANAGE to the creator");
        }
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| ApiError::from(cairn_core::Error::internal("cannot read a response to filter it")).into_response())
}

/// Redacts a lineage answer (see [`super::redact`]).
async fn redact_response(auth: &Auth, data: &AuthData, principal: &Principal, response: Response) -> Checked {
    if !response.status().is_success() || principal.is_admin {
        return Ok(response);
    }
    let (mut parts, body) = response.into_parts();
    let bytes = read_body(body).await?;
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(Response::from_parts(parts, Body::from(bytes)));
    };
    super::redact::redact(auth, data, principal, &mut answer).await;
    parts.headers.remove(header::CONTENT_LENGTH);
    let bytes = serde_json::to_vec(&Value::Object(answer)).unwrap_or_default();
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Drops from a search's answer what the caller may not read.
async fn filter_response(
    auth: &Auth,
    data: &AuthData,
    principal: &Principal,
    searches: Searches,
    response: Response,
) -> Checked {
    if !response.status().is_success() || principal.is_admin {
        return Ok(response);
    }
    let (list, key, kind) = match searches {
        Searches::Experiments => ("experiments", "experiment_id", ResourceType::Experiment),
        Searches::RegisteredModels => ("registered_models", "name", ResourceType::RegisteredModel),
        Searches::ModelVersions => ("model_versions", "name", ResourceType::RegisteredModel),
    };
    let (mut parts, body) = response.into_parts();
    let bytes = read_body(body).await?;
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(Response::from_parts(parts, Body::from(bytes)));
    };
    if let Some(Value::Array(items)) = answer.get_mut(list) {
        items.retain(|item| {
            item.get(key)
                .and_then(Value::as_str)
                .is_some_and(|id| auth.permission(data, principal, kind, id).allows(Permission::Read))
        });
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let bytes = serde_json::to_vec(&Value::Object(answer)).unwrap_or_default();
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
