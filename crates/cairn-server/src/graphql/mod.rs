//! `POST /graphql` (and `GET` with query arguments): MLflow's GraphQL API, which its UI uses for
//! run pages and charts. The schema is MLflow's ([`schema`]); each root field runs the same
//! parsing and store calls as its REST route. Before execution, [`limits`] refuses a query that
//! batches too many reads, as MLflow does.
//!
//! Answers have MLflow's shape, always `200`: `{"data": …, "errors": [message, …] | null}`,
//! errors being plain strings (MLflow drops GraphQL's locations and paths). A field whose
//! resolver failed is `null` in `data`, with the REST route's error message in `errors`.

mod component;
mod limits;
mod schema;

use std::sync::OnceLock;

use async_graphql::Variables;
use async_graphql::dynamic::Schema;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Fields, JsonBody, parse_query};

/// Route: `GET` and `POST /graphql`, at the root as in MLflow.
pub fn router() -> Router<AppState> {
    Router::new().route("/graphql", get(query_get).post(query_post))
}

/// The schema, built once.
fn schema() -> ApiResult<&'static Schema> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| schema::build().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ApiError::from(cairn_core::Error::internal(format!("the GraphQL schema is invalid: {e}"))))
}

async fn query_get(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    // In a query string the variables come as one JSON text.
    let variables = match args.str("variables")? {
        Some(text) if !text.is_empty() => {
            Some(serde_json::from_str(&text).map_err(|e| ApiError::invalid(format!("Invalid 'variables': {e}")))?)
        }
        _ => None,
    };
    execute(state, &args, variables).await
}

async fn query_post(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult<Json<Value>> {
    let variables = body.raw("variables").cloned();
    execute(state, &body, variables).await
}

async fn execute(state: AppState, args: &Fields, variables: Option<Value>) -> ApiResult<Json<Value>> {
    let query = args.required_str("query")?;
    let document = async_graphql::parser::parse_query(&query)
        .map_err(|e| ApiError::invalid(format!("The GraphQL query does not parse: {e}")))?;
    if let Some(message) = limits::check(&document) {
        return Ok(Json(json!({ "data": null, "errors": [message] })));
    }
    let field_errors = std::sync::Arc::new(schema::FieldErrors::default());
    let mut request =
        async_graphql::Request::new(component::strip(&query, &document)).data(state).data(field_errors.clone());
    if let Some(variables) = variables {
        request = request.variables(Variables::from_json(variables));
    }
    if let Some(name) = args.str("operationName")?.filter(|n| !n.is_empty()) {
        request = request.operation_name(name);
    }
    let response = schema()?.execute(request).await;
    let data = serde_json::to_value(&response.data).unwrap_or(Value::Null);
    let mut errors: Vec<Value> = response.errors.into_iter().map(|e| Value::String(e.message)).collect();
    errors.extend(field_errors.take().into_iter().map(Value::String));
    Ok(Json(json!({ "data": data, "errors": if errors.is_empty() { Value::Null } else { Value::Array(errors) } })))
}
