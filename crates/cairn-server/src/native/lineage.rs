//! `/api/cairn/v1/lineage/*` and `/api/cairn/v1/deployments/*`: register the lineage graph's
//! nodes, slices, edges and deployments, and ask it questions, optionally as it stood at a past
//! time.
//!
//! Nodes are named `kind:key` (`dataset:sales@v3`, `model-version:churn/3`); in a path they are
//! `{kind}/{key}` and the key may contain slashes. Times (`as_of`, `at`) are milliseconds since
//! the epoch or RFC 3339 timestamps. Every answer is JSON except the DOT export; every error is
//! `{"error_code", "message"}` like the MLflow routes. `docs`: `crates/cairn-server/openapi.json`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};

use cairn_core::lineage::{
    Direction, EdgeKind, MAX_TRAVERSAL_DEPTH, NewEdge, NewNode, NodeKind, NodeRef, SliceSpec, Subgraph, TraversalQuery,
    diff_upstream, to_dot, to_prov_json,
};
use cairn_core::model::Millis;
use cairn_core::time::parse_instant;

use crate::AppState;
use crate::auth::Principal;
use crate::auth::redact::redact_subgraph;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Fields, JsonBytes, RequestActor, parse_query};

/// How far a traversal goes when the caller does not say.
pub const DEFAULT_DEPTH: u32 = 10;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/cairn/v1/lineage/nodes/{kind}/{*key}", put(register_node).get(get_node))
        .route("/api/cairn/v1/lineage/slices", post(register_slice))
        .route("/api/cairn/v1/lineage/edges", post(add_edge))
        .route("/api/cairn/v1/deployments/{name}", post(deploy))
        .route("/api/cairn/v1/deployments", get(serving_history))
        .route("/api/cairn/v1/lineage/upstream", get(upstream))
        .route("/api/cairn/v1/lineage/downstream", get(downstream))
        .route("/api/cairn/v1/lineage/diff", get(diff))
        .route("/api/cairn/v1/lineage/export", get(export))
        .route("/api/cairn/v1/lineage/health", get(health))
        .route("/api/cairn/v1/lineage/completeness", get(completeness))
}

// ---------------------------------------------------------------------------------------------
// Request reading shared with the predictions and OpenLineage routes.

/// A request body read as a JSON object. Unlike the MLflow routes, the native API takes nested
/// objects (attributes, slice specs, prediction lists), so handlers get the raw map.
pub(super) fn json_object(body: Result<JsonBytes, ApiError>) -> ApiResult<Map<String, Value>> {
    let JsonBytes(bytes) = body?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => {
            Err(ApiError::invalid(format!("The request body must be a JSON object, got {}", json_kind(&other))))
        }
        Err(e) => Err(ApiError::invalid(format!("Malformed JSON request body: {e}"))),
    }
}

/// "a string", "an array", … for messages.
pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Refuses fields a body does not define, so a misspelt `digets` is an error rather than a
/// silently missing digest in an immutable lineage record.
pub(super) fn refuse_unknown_fields(map: &Map<String, Value>, known: &[&str]) -> ApiResult<()> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ApiError::invalid(format!("Unknown field '{k}'; expected one of {}", known.join(", ")))),
    }
}

/// Path parameters that did not decode (invalid percent-encoding or UTF-8).
pub(super) fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::invalid(format!("Invalid path: {}", rejection.body_text()))
}

/// A time given as milliseconds (a JSON number or decimal text) or RFC 3339 text.
pub(super) fn instant(name: &str, value: &Value) -> ApiResult<Millis> {
    let parsed = match value {
        Value::Number(n) => {
            n.as_i64().ok_or_else(|| cairn_core::Error::invalid(format!("'{n}' is not whole milliseconds")))
        }
        Value::String(s) => parse_instant(s),
        other => {
            Err(cairn_core::Error::invalid(format!("a time must be a number or a string, got {}", json_kind(other))))
        }
    };
    parsed.map_err(|e| ApiError::invalid(format!("Invalid value for parameter '{name}': {e}")))
}

/// The optional `as_of` query argument.
pub(super) fn as_of(args: &Fields) -> ApiResult<Option<Millis>> {
    args.str("as_of")?.map(|t| instant("as_of", &Value::String(t))).transpose()
}

/// The optional `depth` query argument: 0 (the node alone) to [`MAX_TRAVERSAL_DEPTH`].
fn depth(args: &Fields) -> ApiResult<u32> {
    let Some(text) = args.str("depth")? else { return Ok(DEFAULT_DEPTH) };
    match text.trim().parse::<u32>() {
        Ok(n) if n <= MAX_TRAVERSAL_DEPTH => Ok(n),
        _ => Err(ApiError::invalid(format!(
            "Invalid value '{text}' for parameter 'depth': give a whole number from 0 to {MAX_TRAVERSAL_DEPTH}"
        ))),
    }
}

/// A node reference (`kind:key`) read from a required string parameter or field.
pub(super) fn node_ref(args: &Fields, name: &str) -> ApiResult<NodeRef> {
    let text = args.required_str(name)?;
    NodeRef::parse(&text).map_err(|e| ApiError::invalid(format!("Invalid value for parameter '{name}': {e}")))
}

/// A node of a known kind, written `kind:key` or just `key` (`churn/3` for a model version).
pub(super) fn node_of_kind(name: &str, text: &str, kind: NodeKind) -> ApiResult<NodeRef> {
    let invalid = |e: cairn_core::Error| ApiError::invalid(format!("Invalid value for parameter '{name}': {e}"));
    if let Some(key) = text.strip_prefix(kind.as_str()).and_then(|rest| rest.strip_prefix(':')) {
        return NodeRef::new(kind, key).map_err(invalid);
    }
    // A key of another kind (`run:abc` where a dataset is expected) is a mistake, not a
    // dataset whose name happens to start with `run:`.
    if let Ok(other) = NodeRef::parse(text) {
        return Err(ApiError::invalid(format!(
            "Invalid value for parameter '{name}': expected a {} node, got {other}",
            kind.as_str()
        )));
    }
    NodeRef::new(kind, text).map_err(invalid)
}

// ---------------------------------------------------------------------------------------------
// Registration.

fn node_from_path(path: Result<Path<(String, String)>, PathRejection>) -> ApiResult<NodeRef> {
    let Path((kind, key)) = path.map_err(path_error)?;
    let kind = NodeKind::parse(&kind)?;
    Ok(NodeRef::new(kind, key)?)
}

/// `{label?, digest?, attributes?}`.
fn new_node(mut map: Map<String, Value>) -> ApiResult<NewNode> {
    refuse_unknown_fields(&map, &["label", "digest", "attributes"])?;
    let attributes = take(&mut map, "attributes");
    let fields = Fields::new(map);
    let attributes = match attributes {
        None => Map::new(),
        Some(Value::Object(a)) => a,
        Some(other) => {
            return Err(ApiError::invalid(format!("attributes must be an object, got {}", json_kind(&other))));
        }
    };
    let digest = fields.str("digest")?;
    if digest.as_deref() == Some("") {
        return Err(ApiError::invalid("digest must not be empty; leave it out when the node has none"));
    }
    Ok(NewNode { label: fields.str("label")?, digest, attributes })
}

/// Moves a field out of a body (for objects and arrays, which [`Fields`] does not read);
/// `None` when it is missing or null.
pub(super) fn take(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    map.remove(name).filter(|v| !v.is_null())
}

async fn register_node(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<JsonBytes, ApiError>,
) -> ApiResult<Json<Value>> {
    let node = node_from_path(path)?;
    let new = new_node(json_object(body)?)?;
    let node = state.store.register_node(&actor, node, new).await?;
    Ok(Json(json!({ "node": node })))
}

async fn get_node(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let node = node_from_path(path)?;
    let args = parse_query(query.as_deref(), &[])?;
    let node = state.store.get_node(&node, as_of(&args)?).await?;
    Ok(Json(json!({ "node": node })))
}

/// `{dataset: "dataset:name@v", spec: SliceSpec}`.
async fn register_slice(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    body: Result<JsonBytes, ApiError>,
) -> ApiResult<Json<Value>> {
    let mut map = json_object(body)?;
    refuse_unknown_fields(&map, &["dataset", "spec"])?;
    let spec = take(&mut map, "spec");
    let fields = Fields::new(map);
    let dataset = node_of_kind("dataset", &fields.required_str("dataset")?, NodeKind::Dataset)?;
    let spec = match spec {
        None => return Err(fields.missing("spec")),
        Some(spec @ Value::Object(_)) => serde_json::from_value::<SliceSpec>(spec)
            .map_err(|e| ApiError::invalid(format!("Invalid slice spec: {e}")))?,
        Some(other) => return Err(ApiError::invalid(format!("spec must be an object, got {}", json_kind(&other)))),
    };
    let node = state.store.register_slice(&actor, dataset, spec).await?;
    Ok(Json(json!({ "node": node })))
}

/// `{source, kind, target}`.
async fn add_edge(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    body: Result<JsonBytes, ApiError>,
) -> ApiResult<Json<Value>> {
    let map = json_object(body)?;
    refuse_unknown_fields(&map, &["source", "kind", "target"])?;
    let fields = Fields::new(map);
    let edge = NewEdge {
        source: node_ref(&fields, "source")?,
        kind: EdgeKind::parse(&fields.required_str("kind")?).map_err(|_| {
            let kinds: Vec<&str> = EdgeKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::invalid(format!("Invalid value for parameter 'kind': expected one of {}", kinds.join(", ")))
        })?,
        target: node_ref(&fields, "target")?,
    };
    let edge = state.store.add_edge(&actor, edge).await?;
    Ok(Json(json!({ "edge": edge })))
}

/// `{model_version: "name/3" | "model-version:name/3", at?}`: the deployment serves that
/// version from `at` (default now).
async fn deploy(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    path: Result<Path<String>, PathRejection>,
    body: Result<JsonBytes, ApiError>,
) -> ApiResult<Json<Value>> {
    let Path(name) = path.map_err(path_error)?;
    let mut map = json_object(body)?;
    refuse_unknown_fields(&map, &["model_version", "at"])?;
    let at = take(&mut map, "at").map(|v| instant("at", &v)).transpose()?;
    let fields = Fields::new(map);
    let model_version = node_of_kind("model_version", &fields.required_str("model_version")?, NodeKind::ModelVersion)?;
    let edge = state.store.deploy(&actor, &name, model_version, at).await?;
    Ok(Json(json!({ "edge": edge })))
}

// ---------------------------------------------------------------------------------------------
// Questions.

/// `deployment` (a name; all when absent), `as_of`: every interval in which a deployment served
/// a model version, by deployment and then oldest first.
async fn serving_history(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let deployment = args.str("deployment")?.map(|d| d.strip_prefix("deployment:").map(str::to_owned).unwrap_or(d));
    let intervals = state.store.serving_history(deployment, as_of(&args)?).await?;
    Ok(Json(json!({ "intervals": intervals })))
}

/// `node`, `depth` and `as_of` of a traversal request.
fn traversal(args: &Fields, direction: Direction) -> ApiResult<TraversalQuery> {
    Ok(TraversalQuery { start: node_ref(args, "node")?, direction, max_depth: depth(args)?, as_of: as_of(args)? })
}

async fn upstream(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Subgraph>> {
    let args = parse_query(query.as_deref(), &[])?;
    Ok(Json(state.store.traverse(traversal(&args, Direction::Upstream)?).await?))
}

async fn downstream(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Subgraph>> {
    let args = parse_query(query.as_deref(), &[])?;
    Ok(Json(state.store.traverse(traversal(&args, Direction::Downstream)?).await?))
}

/// `left`, `right`, `depth`, `as_of`: what the two nodes' upstreams share and where they differ.
async fn diff(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let (left, right) = (node_ref(&args, "left")?, node_ref(&args, "right")?);
    let (max_depth, as_of) = (depth(&args)?, as_of(&args)?);
    let query =
        |start: &NodeRef| TraversalQuery { start: start.clone(), direction: Direction::Upstream, max_depth, as_of };
    let (l, r) = tokio::try_join!(state.store.traverse(query(&left)), state.store.traverse(query(&right)))?;
    let diff = diff_upstream(&left, &l, &right, &r);
    let mut body = serde_json::to_value(&diff).map_err(|e| cairn_core::Error::internal(e.to_string()))?;
    // A truncated side may hide shared or differing nodes: say so rather than let a partial
    // comparison pass for a complete one.
    body["truncated"] = json!(l.truncated || r.truncated);
    Ok(Json(body))
}

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    ProvJson,
    Dot,
    Json,
}

impl Format {
    fn parse(text: &str) -> ApiResult<Self> {
        match text {
            "prov-json" => Ok(Format::ProvJson),
            "dot" => Ok(Format::Dot),
            "json" => Ok(Format::Json),
            other => Err(ApiError::invalid(format!(
                "Invalid value '{other}' for parameter 'format': expected prov-json, dot or json"
            ))),
        }
    }
}

/// `node`, `direction` (upstream), `depth`, `as_of`, `format` (json): a subgraph as PROV-JSON,
/// Graphviz DOT or Cairn's JSON.
///
/// With access control on, the route's rule redacts the JSON format after this handler like
/// every lineage answer; the other formats are drawn here, so their nodes are redacted first.
async fn export(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let args = parse_query(query.as_deref(), &[])?;
    let format = Format::parse(args.str("format")?.as_deref().unwrap_or("json"))?;
    let direction = match args.str("direction")?.as_deref() {
        None | Some("upstream") => Direction::Upstream,
        Some("downstream") => Direction::Downstream,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid value '{other}' for parameter 'direction': expected upstream or downstream"
            )));
        }
    };
    let mut graph = state.store.traverse(traversal(&args, direction)?).await?;
    if format != Format::Json
        && let (Some(auth), Some(Extension(principal))) = (&state.auth, &principal)
        && !principal.is_admin
    {
        let data = auth.data().await?;
        redact_subgraph(auth, &data, principal, &mut graph).await;
    }
    Ok(match format {
        Format::Json => Json(graph).into_response(),
        Format::ProvJson => Json(to_prov_json(&graph)).into_response(),
        Format::Dot => ([(header::CONTENT_TYPE, "text/vnd.graphviz; charset=utf-8")], to_dot(&graph)).into_response(),
    })
}

/// `as_of`: completeness counts as the graph stood then.
async fn health(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let health = state.store.lineage_health(as_of(&args)?).await?;
    Ok(Json(serde_json::to_value(&health).map_err(|e| cairn_core::Error::internal(e.to_string()))?))
}

/// `node` (a model version, `model-version:name/3` or `name/3`), `as_of`.
async fn completeness(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let node = node_of_kind("node", &args.required_str("node")?, NodeKind::ModelVersion)?;
    let completeness = state.store.completeness(&node, as_of(&args)?).await?;
    Ok(Json(json!({ "node": node, "completeness": completeness })))
}

/// An in-process application over a fresh SQLite store, for the native lineage routes' tests.
#[cfg(test)]
pub(super) mod testing {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tempfile::TempDir;
    use tower::ServiceExt;

    use crate::{AppState, app};

    /// The router and the folder its database lives in.
    pub struct TestApp {
        pub router: Router,
        _dir: TempDir,
    }

    /// Status, content type and body (JSON when it parses, else the text as a JSON string).
    #[derive(Debug)]
    pub struct Reply {
        pub status: StatusCode,
        pub content_type: String,
        pub body: Value,
    }

    impl Reply {
        /// Asserts an error with `code` and returns its message.
        #[track_caller]
        pub fn error(&self, status: u16, code: &str) -> String {
            assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
            assert_eq!(self.body["error_code"], code, "{:?}", self.body);
            self.body["message"].as_str().expect("message").to_owned()
        }
    }

    impl TestApp {
        pub async fn new() -> Self {
            let dir = tempfile::tempdir().expect("temp dir");
            let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
            let store = cairn_store::open(&cairn_store::StoreConfig::new(uri)).await.expect("open store");
            TestApp { router: app(AppState::new(store)), _dir: dir }
        }

        pub async fn send(&self, method: Method, path: &str, body: impl Into<Body>) -> Reply {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json")
                .body(body.into())
                .expect("request");
            let response = self.router.clone().oneshot(request).await.expect("router is infallible");
            let status = response.status();
            let content_type =
                response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let bytes = response.into_body().collect().await.expect("body").to_bytes();
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            Reply { status, content_type, body }
        }

        pub async fn get(&self, path: &str) -> Reply {
            self.send(Method::GET, path, Body::empty()).await
        }

        pub async fn post(&self, path: &str, body: &Value) -> Reply {
            self.send(Method::POST, path, body.to_string()).await
        }

        pub async fn put(&self, path: &str, body: &Value) -> Reply {
            self.send(Method::PUT, path, body.to_string()).await
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use serde_json::json;

    use super::testing::TestApp;

    const V1: &str = "/api/cairn/v1";

    /// Requests refused before the store is asked, each with a message naming what is wrong.
    #[tokio::test]
    async fn malformed_requests_are_refused_with_the_field_named() {
        let app = TestApp::new().await;
        let node = format!("{V1}/lineage/nodes/dataset/sales@v1");
        let cases = [
            (app.put(&format!("{V1}/lineage/nodes/robot/x"), &json!({})).await, "Unknown node kind 'robot'"),
            (app.put(&node, &json!({"digets": "ab"})).await, "Unknown field 'digets'"),
            (app.put(&node, &json!({"digest": 5})).await, "'digest'"),
            (app.put(&node, &json!({"digest": ""})).await, "digest must not be empty"),
            (app.put(&node, &json!({"attributes": [1]})).await, "attributes must be an object"),
            (app.send(Method::PUT, &node, "{nope").await, "Malformed JSON"),
            (app.send(Method::PUT, &node, "[1]").await, "must be a JSON object"),
            (app.get(&format!("{node}?as_of=yesterday")).await, "'as_of'"),
            (app.post(&format!("{V1}/lineage/slices"), &json!({"spec": {}})).await, "'dataset'"),
            (
                app.post(&format!("{V1}/lineage/slices"), &json!({"dataset": "run:abc", "spec": {}})).await,
                "expected a dataset node",
            ),
            (app.post(&format!("{V1}/lineage/slices"), &json!({"dataset": "d@1"})).await, "'spec'"),
            (
                app.post(&format!("{V1}/lineage/slices"), &json!({"dataset": "d@1", "spec": {"rows": 1}})).await,
                "unknown field `rows`",
            ),
            (
                app.post(
                    &format!("{V1}/lineage/edges"),
                    &json!({"source": "run:a", "kind": "ate", "target": "dataset:d@1"}),
                )
                .await,
                "was_derived_from",
            ),
            (
                app.post(
                    &format!("{V1}/lineage/edges"),
                    &json!({"source": "a", "kind": "used", "target": "dataset:d@1"}),
                )
                .await,
                "'source'",
            ),
            (app.post(&format!("{V1}/lineage/edges"), &json!({"source": "run:a", "kind": "used"})).await, "'target'"),
            (app.post(&format!("{V1}/deployments/prod"), &json!({})).await, "'model_version'"),
            (
                app.post(&format!("{V1}/deployments/prod"), &json!({"model_version": "run:x"})).await,
                "expected a model-version node",
            ),
            (app.post(&format!("{V1}/deployments/prod"), &json!({"model_version": "m/1", "at": "soon"})).await, "'at'"),
            (app.get(&format!("{V1}/lineage/upstream")).await, "'node'"),
            (app.get(&format!("{V1}/lineage/upstream?node=run:a&depth=65")).await, "'depth'"),
            (app.get(&format!("{V1}/lineage/downstream?node=run:a&depth=-1")).await, "'depth'"),
            (app.get(&format!("{V1}/lineage/diff?left=run:a")).await, "'right'"),
            (app.get(&format!("{V1}/lineage/export?node=run:a&format=svg")).await, "'format'"),
            (app.get(&format!("{V1}/lineage/export?node=run:a&direction=sideways")).await, "'direction'"),
            (app.get(&format!("{V1}/lineage/completeness?node=dataset:x@1")).await, "expected a model-version node"),
        ];
        for (reply, needle) in cases {
            let message = reply.error(400, "INVALID_PARAMETER_VALUE");
            assert!(message.contains(needle), "expected '{needle}' in '{message}'");
        }
    }

    /// Registration and questions through the routes, over the real store.
    #[tokio::test]
    async fn a_registered_chain_is_answered_in_every_format() {
        let app = TestApp::new().await;
        let nodes = format!("{V1}/lineage/nodes");
        let raw = app.put(&format!("{nodes}/dataset/raw@1"), &json!({"digest": "aa", "attributes": {"rows": 3}})).await;
        assert_eq!(raw.status.as_u16(), 200, "{:?}", raw.body);
        assert_eq!(raw.body["node"]["id"], "dataset:raw@1");
        app.put(&format!("{nodes}/dataset/s3:/b/clean@1"), &json!({"digest": "bb"})).await;
        let edge = app
            .post(
                &format!("{V1}/lineage/edges"),
                &json!({"source": "dataset:s3:/b/clean@1", "kind": "was_derived_from", "target": "dataset:raw@1"}),
            )
            .await;
        assert_eq!(edge.body["edge"]["kind"], "was_derived_from", "{:?}", edge.body);
        let slice = app
            .post(&format!("{V1}/lineage/slices"), &json!({"dataset": "s3:/b/clean@1", "spec": {"row_range": [0, 10]}}))
            .await;
        let slice_id = slice.body["node"]["id"].as_str().expect("slice id").to_owned();

        let got = app.get(&format!("{nodes}/dataset/s3:/b/clean@1")).await;
        assert_eq!(got.body["node"]["digest"], "bb");
        let before = app.get(&format!("{nodes}/dataset/raw@1?as_of=1970-01-01T00:00:00Z")).await;
        before.error(404, "RESOURCE_DOES_NOT_EXIST");

        let up = app.get(&format!("{V1}/lineage/upstream?node={slice_id}&depth=1")).await;
        let ids: Vec<&str> = up.body["nodes"].as_array().unwrap().iter().filter_map(|n| n["id"].as_str()).collect();
        assert!(ids.contains(&"dataset:s3:/b/clean@1") && !ids.contains(&"dataset:raw@1"), "{ids:?}");
        assert_eq!(up.body["truncated"], true);
        let down = app.get(&format!("{V1}/lineage/downstream?node=dataset:raw@1")).await;
        assert_eq!(down.body["nodes"].as_array().unwrap().len(), 3, "{:?}", down.body);

        let dot = app.get(&format!("{V1}/lineage/export?node={slice_id}&format=dot")).await;
        assert!(dot.content_type.starts_with("text/vnd.graphviz"), "{}", dot.content_type);
        assert!(dot.body.as_str().unwrap().contains(r#""dataset:s3:/b/clean@1" -> "dataset:raw@1""#), "{:?}", dot.body);
        let prov = app.get(&format!("{V1}/lineage/export?node={slice_id}&format=prov-json")).await;
        assert_eq!(prov.body["entity"]["cairn:dataset/raw@1"]["cairn:digest"], "aa", "{:?}", prov.body);

        let diff = app.get(&format!("{V1}/lineage/diff?left={slice_id}&right=dataset:s3:/b/clean@1")).await;
        assert_eq!(diff.body["only_left"], json!(["dataset:s3:/b/clean@1"]), "{:?}", diff.body);
        assert_eq!(diff.body["truncated"], false);

        let cycle = app
            .post(
                &format!("{V1}/lineage/edges"),
                &json!({"source": "dataset:raw@1", "kind": "was_derived_from", "target": slice_id}),
            )
            .await;
        assert!(cycle.error(400, "INVALID_PARAMETER_VALUE").contains("cycle"));
    }

    #[test]
    fn nodes_of_a_known_kind_may_omit_the_prefix() {
        use cairn_core::lineage::NodeKind;
        let mv = super::node_of_kind("m", "model-version:churn/3", NodeKind::ModelVersion).unwrap();
        assert_eq!(mv, super::node_of_kind("m", "churn/3", NodeKind::ModelVersion).unwrap());
        let odd = super::node_of_kind("d", "s3://bucket/sales@v1", NodeKind::Dataset).unwrap();
        assert_eq!(odd.key, "s3://bucket/sales@v1");
    }
}
