//! MLflow's model-registry REST API: `/mlflow/registered-models/*` and `/mlflow/model-versions/*`.
//!
//! Methods follow MLflow's routes exactly: reads are `GET` with query arguments, creation and
//! other actions `POST`, updates `PATCH` and deletions `DELETE`, each with a JSON body.
//! `registered-models/alias` is one path with three methods (set, delete, get by alias), and
//! `registered-models/get-latest-versions` answers both `POST` (what the client tries first) and
//! `GET`. Versions travel as strings and timestamps as int64, as in MLflow's protobuf messages.
//!
//! Handlers are thin: [`Args`] reads the request, `source` checks a new version's source the way
//! MLflow's server does before anything is written, the store does the rest, and `render`
//! writes MLflow's JSON. What MLflow throws away (alias moves, stage transitions) the store keeps
//! as history, served by the native `/api/cairn/v1/models` routes rather than here.

mod aliases;
mod models;
mod render;
mod source;
#[cfg(test)]
mod tests;
mod version_tag;
mod versions;

pub use versions::{artifact_uri, search as search_versions};

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::Method;
use serde_json::{Map, Value};

use cairn_core::search::{Filter, OrderBy};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Fields, parse_body, parse_query};

/// The repeated fields of registry requests, collected into lists when they come in a query
/// string (`order_by=a&order_by=b`, `stages=Staging`).
const REPEATED_FIELDS: &[&str] = &["order_by", "stages"];

/// All registry routes, relative to the `/mlflow` prefix the caller nests them under.
pub fn router() -> Router<AppState> {
    Router::new().merge(models::router()).merge(versions::router()).merge(aliases::router())
}

/// The fields of a registry request, read as MLflow's server reads them: a `GET` with a query
/// string from the query, anything else (and a `GET` without one) from the JSON body.
#[derive(Debug)]
pub struct Args {
    pub fields: Fields,
    /// The body's top-level JSON values, kept for the one field [`Fields`] has no reader for
    /// (the boolean `archive_existing_versions`). Empty for query strings.
    raw: Map<String, Value>,
}

impl<S: Send + Sync> FromRequest<S> for Args {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::GET
            && let Some(query) = req.uri().query().filter(|q| !q.is_empty())
        {
            let fields = parse_query(Some(query), REPEATED_FIELDS)?;
            return Ok(Args { fields, raw: Map::new() });
        }
        let crate::extract::JsonBytes(bytes) = crate::extract::JsonBytes::from_request(req, state).await?;
        let fields = parse_body(&bytes)?;
        Ok(Args { fields, raw: raw_object(&bytes) })
    }
}

impl Args {
    /// An optional boolean, `false` when absent: JSON `true`/`false` in a body; `true`/`false`
    /// in any case in a query string, which MLflow accepts for protobuf bool fields.
    pub fn flag(&self, field: &str) -> ApiResult<bool> {
        match self.raw.get(field) {
            Some(Value::Bool(b)) => return Ok(*b),
            Some(Value::Null) => return Ok(false),
            Some(other) => return Err(self.fields.type_error(field, other)),
            None => {}
        }
        let Some(text) = self.fields.str(field)? else { return Ok(false) };
        match text.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::invalid(format!("Invalid boolean value: {text}, must be 'true' or 'false'."))),
        }
    }
}

/// The top-level object of a body [`parse_body`] accepted, including the double-encoded form.
fn raw_object(bytes: &[u8]) -> Map<String, Value> {
    let mut value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    if let Value::String(inner) = &value {
        value = serde_json::from_str(inner).unwrap_or(Value::Null);
    }
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The required `version` field: a string holding an integer, as MLflow's `version` fields are.
/// Any integer passes, so that `0` or `-1` get the store's "not found" as they do from MLflow.
pub fn version(args: &Fields) -> ApiResult<i64> {
    let text = args.required_str("version")?;
    parse_version_text(&text)
}

/// Parses a version number with MLflow's message for anything that is not an integer.
pub fn parse_version_text(text: &str) -> ApiResult<i64> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| ApiError::invalid(format!("Parameter 'version' must be an integer, got '{text}'.")))
}

/// `max_results` of a registry search: `default` when absent, otherwise 1 to `limit`. Above the
/// limit MLflow's request schema answers with its generic "invalid value" message, which names
/// the value as the client sent it.
pub fn max_results(args: &Fields, default: u64, limit: u64) -> ApiResult<u64> {
    let Some(n) = args.i64("max_results")? else { return Ok(default) };
    if n < 1 {
        return Err(ApiError::invalid(format!(
            "Invalid value for max_results. It must be a positive integer, but got {n}"
        )));
    }
    if n as u64 > limit {
        let sent = match args.str("max_results") {
            Ok(Some(text)) => Value::String(text),
            _ => Value::from(n),
        };
        return Err(args.type_error("max_results", &sent));
    }
    Ok(n as u64)
}

/// The `filter` and `order_by` fields of a registry search, parsed with the grammar of the
/// searched entity; an order naming one field twice is refused, as MLflow's store refuses it.
pub fn filter_and_order(
    args: &Fields,
    parse_filter: fn(&str) -> cairn_core::Result<Filter>,
    parse_order_by: fn(&[&str]) -> cairn_core::Result<Vec<OrderBy>>,
) -> ApiResult<(Filter, Vec<OrderBy>)> {
    let filter = match args.str("filter")? {
        Some(f) if !f.trim().is_empty() => parse_filter(&f)?,
        _ => Filter::default(),
    };
    let order_by = args.str_list("order_by")?;
    let order_by = parse_order_by(&order_by.iter().map(String::as_str).collect::<Vec<_>>())?;
    Ok((filter, order_by))
}
