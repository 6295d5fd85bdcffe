//! Request extractors that fail the way MLflow fails: every malformed body, wrong type or
//! missing field becomes `INVALID_PARAMETER_VALUE` with a message naming the field, never axum's
//! plain-text rejection.
//!
//! POST bodies and GET query strings both become [`Fields`], a JSON object that handlers read
//! with typed accessors. Scalars follow protobuf's JSON mapping: int64 fields accept numbers and
//! decimal strings, doubles accept numbers, numeric strings and `"NaN"`, `"Infinity"`,
//! `"-Infinity"`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use base64::Engine;
use serde_json::{Map, Value};

use cairn_core::model::{Actor, KeyValue};
use cairn_core::validation::py_json_str;

use crate::error::{ApiError, ErrorCode};
use crate::wire;

/// MLflow appends this to every request-schema error.
const API_DOCS_HINT: &str = " See the API docs for more information about request parameters.";

/// The fields of one request.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    map: Map<String, Value>,
    /// Prefix for field names in messages (`metrics[3].`) when reading a nested object.
    path: String,
}

impl Fields {
    /// Wraps a JSON object.
    pub fn new(map: Map<String, Value>) -> Self {
        Fields { map, path: String::new() }
    }

    /// The JSON object back.
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    fn name(&self, field: &str) -> String {
        format!("{}{field}", self.path)
    }

    fn present(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    /// The field's JSON as sent (absent and `null` are `None`), for values passed on whole.
    pub fn raw(&self, field: &str) -> Option<&Value> {
        self.present(field)
    }

    /// The error MLflow gives when a field has the wrong JSON type.
    pub fn type_error(&self, field: &str, value: &Value) -> ApiError {
        ApiError::invalid(format!(
            "Invalid value {} for parameter '{}' supplied:  Hint: Value was of type '{}'.{API_DOCS_HINT}",
            render(value),
            self.name(field),
            python_type(value)
        ))
    }

    /// The error MLflow gives when a required field is absent or empty.
    pub fn missing(&self, field: &str) -> ApiError {
        ApiError::invalid(format!("Missing value for required parameter '{}'.{API_DOCS_HINT}", self.name(field)))
    }

    /// An optional string.
    pub fn str(&self, field: &str) -> Result<Option<String>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.type_error(field, other)),
        }
    }

    /// A required string; MLflow treats the empty string as missing.
    pub fn required_str(&self, field: &str) -> Result<String, ApiError> {
        match self.str(field)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(self.missing(field)),
        }
    }

    /// A tag or param: a required `key` and a `value` that MLflow lets default to empty.
    pub fn key_value(&self) -> Result<KeyValue, ApiError> {
        Ok(KeyValue::new(self.required_str("key")?, self.str("value")?.unwrap_or_default()))
    }

    /// A run id, read from `run_id` or its legacy alias `run_uuid`.
    pub fn run_id(&self) -> Result<String, ApiError> {
        match self.str("run_id")? {
            Some(id) if !id.is_empty() => Ok(id),
            _ => match self.str("run_uuid")? {
                Some(id) if !id.is_empty() => Ok(id),
                _ => Err(self.missing("run_id")),
            },
        }
    }

    /// An optional int64.
    pub fn i64(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(v) => wire::parse_i64(v).map(Some).ok_or_else(|| self.type_error(field, v)),
        }
    }

    /// A required int64.
    pub fn required_i64(&self, field: &str) -> Result<i64, ApiError> {
        self.i64(field)?.ok_or_else(|| self.missing(field))
    }

    /// An optional bool (protobuf's JSON mapping also accepts the strings `"true"`/`"false"`).
    pub fn bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(other) => Err(self.type_error(field, other)),
        }
    }

    /// A required double.
    pub fn required_f64(&self, field: &str) -> Result<f64, ApiError> {
        match self.present(field) {
            None => Err(self.missing(field)),
            Some(v) => wire::parse_f64(v).ok_or_else(|| self.type_error(field, v)),
        }
    }

    /// An optional protobuf enum, given by name or number; `parse` maps either spelling.
    pub fn enumeration<T>(
        &self,
        field: &str,
        parse: impl Fn(&str) -> cairn_core::Result<T>,
    ) -> Result<Option<T>, ApiError> {
        let text = match self.present(field) {
            None => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => return Err(self.type_error(field, other)),
        };
        parse(&text).map(Some).map_err(ApiError::from)
    }

    /// A list of strings (absent means empty).
    pub fn str_list(&self, field: &str) -> Result<Vec<String>, ApiError> {
        match self.present(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.type_error(field, &Value::Array(items.clone()))),
                })
                .collect(),
            Some(other) => Err(self.type_error(field, other)),
        }
    }

    /// A list of objects (absent means empty), each readable as [`Fields`] whose messages name
    /// the element (`tags[2].key`).
    pub fn objects(&self, field: &str) -> Result<Vec<Fields>, ApiError> {
        let mut copy = Fields { map: Map::new(), path: self.path.clone() };
        if let Some(value) = self.map.get(field) {
            copy.map.insert(field.to_owned(), value.clone());
        }
        copy.take_objects(field)
    }

    /// A nested object (absent means `None`), readable as [`Fields`] whose messages name it
    /// (`dataset.name`).
    pub fn object(&self, field: &str) -> Result<Option<Fields>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields { map: map.clone(), path: format!("{}{field}.", self.path) })),
            Some(other) => Err(self.type_error(field, other)),
        }
    }

    /// Like [`Fields::objects`], but moves the list out of the request instead of copying it:
    /// the log-batch hot path reads up to a thousand metric objects this way.
    pub fn take_objects(&mut self, field: &str) -> Result<Vec<Fields>, ApiError> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Object(map) => Ok(Fields { map, path: format!("{}{field}[{i}].", self.path) }),
                    other => Err(self.type_error(&format!("{field}[{i}]"), &other)),
                })
                .collect(),
            Some(other) => Err(self.type_error(field, &other)),
        }
    }
}

/// `json.dumps` of a value, as MLflow shows it in messages.
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => py_json_str(s),
        other => other.to_string(),
    }
}

/// The Python type name MLflow's hint reports for a decoded JSON value.
fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The bytes of a body a route reads as JSON, once its `Content-Type` says it is JSON.
///
/// MLflow's server refuses a POST or PUT without `Content-Type: application/json` (parameters
/// such as `charset` allowed), and so does Cairn: a cross-site page can send a "simple" request
/// only as `text/plain` or a form, so this check is half of the cross-site-request defence (see
/// `guard`). Other methods keep MLflow's leniency; browsers preflight them.
#[derive(Debug)]
pub struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if matches!(*req.method(), Method::POST | Method::PUT) {
            check_json_content_type(req.headers().get(header::CONTENT_TYPE))?;
        }
        Bytes::from_request(req, state).await.map(JsonBytes).map_err(body_rejection)
    }
}

/// MLflow's answers to a missing or non-JSON `Content-Type`.
pub fn check_json_content_type(value: Option<&HeaderValue>) -> Result<(), ApiError> {
    let Some(value) = value else {
        return Err(ApiError::invalid("Bad Request. Content-Type header is missing."));
    };
    let essence = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::invalid("Bad Request. Content-Type must be one of ['application/json']."))
    }
}

/// A POST body parsed as a JSON object.
#[derive(Debug)]
pub struct JsonBody(pub Fields);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        parse_body(&bytes).map(JsonBody)
    }
}

/// The answer when a request body cannot be read: too large, or cut off. Every route that
/// reads a body uses it, so they all fail alike.
pub fn body_rejection(rejection: BytesRejection) -> ApiError {
    if stalled(&rejection) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::InvalidParameterValue,
            "The request body stalled: no data arrived within the server's body timeout",
        )
    } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidParameterValue,
            format!("Request body exceeds the limit of {} bytes", crate::BODY_LIMIT_BYTES),
        )
    } else {
        ApiError::invalid(format!("Could not read the request body: {}", rejection.body_text()))
    }
}

/// Whether reading a body failed because the client stopped sending it (the body timeout of
/// `connections`), somewhere down the error's chain of causes.
pub fn stalled(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Parses a request body the way MLflow's server does: empty means `{}`, and a JSON string
/// holding JSON (what old clients send) is decoded a second time.
pub fn parse_body(bytes: &[u8]) -> Result<Fields, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Fields::default());
    }
    let malformed = |e: serde_json::Error| ApiError::invalid(format!("Malformed JSON request body: {e}"));
    let mut value: Value = serde_json::from_slice(bytes).map_err(malformed)?;
    if let Value::String(inner) = &value {
        value = serde_json::from_str(inner).map_err(malformed)?;
    }
    match value {
        Value::Object(map) => Ok(Fields::new(map)),
        other => Err(ApiError::invalid(format!("The request body must be a JSON object, got {}", python_type(&other)))),
    }
}

/// A GET query string as [`Fields`]: every value is a string, and the fields a route declares
/// repeated (`run_ids`, `experiment_ids`) collect all their occurrences into a list.
pub fn parse_query(query: Option<&str>, repeated: &[&str]) -> Result<Fields, ApiError> {
    let pairs: Vec<(String, String)> = match query {
        None | Some("") => Vec::new(),
        Some(q) => serde_urlencoded_pairs(q)?,
    };
    let mut map = Map::new();
    for (key, value) in pairs {
        if repeated.contains(&key.as_str()) {
            let entry = map.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = entry {
                items.push(Value::String(value));
            }
        } else {
            // Flask's `args.get` returns the first occurrence.
            map.entry(key).or_insert(Value::String(value));
        }
    }
    Ok(Fields::new(map))
}

fn serde_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let uri: axum::http::Uri =
        format!("/?{query}").parse().map_err(|_| ApiError::invalid("The query string is not valid"))?;
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::invalid(format!("The query string is not valid: {}", e.body_text())))
}

/// Path parameters, with a malformed path (invalid UTF-8 after percent-decoding, a segment of
/// the wrong type) answered as MLflow answers bad input rather than with axum's plain text.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(PathParams(value)),
            Err(rejection) => Err(ApiError::invalid(format!("Invalid path: {}", rejection.body_text()))),
        }
    }
}

/// Who performs a request: the signed-in principal when access control is on; otherwise the
/// user named by HTTP basic auth, else `anonymous`. A name with
/// control characters, or one of the server's own (`Actor::claimed`), is refused.
#[derive(Debug, Clone)]
pub struct RequestActor(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for RequestActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // With access control on, the actor is who signed in, never a name the client claims.
        if let Some(principal) = parts.extensions.get::<crate::auth::Principal>() {
            return Ok(RequestActor(principal.actor()));
        }
        let user = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(basic_auth_user);
        match user {
            None => Ok(RequestActor(Actor::anonymous())),
            Some(name) => Ok(RequestActor(Actor::claimed(&name)?)),
        }
    }
}

/// The username in a `Basic` authorization header, if it is one and is well-formed.
pub fn basic_auth_user(header_value: &str) -> Option<String> {
    let (scheme, encoded) = header_value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    (!user.is_empty()).then(|| user.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(map) => Fields::new(map),
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn wrong_types_get_mlflow_messages() {
        let f = fields(json!({"value": "abc", "name": 5, "timestamp": 1.5}));
        assert_eq!(
            f.required_f64("value").unwrap_err().message,
            "Invalid value \"abc\" for parameter 'value' supplied:  Hint: Value was of type 'str'. \
             See the API docs for more information about request parameters."
        );
        assert!(f.str("name").unwrap_err().message.contains("of type 'int'"));
        assert!(f.i64("timestamp").unwrap_err().message.contains("of type 'float'"));
        assert_eq!(
            f.required_str("missing").unwrap_err().message,
            "Missing value for required parameter 'missing'. See the API docs for more information \
             about request parameters."
        );
    }

    #[test]
    fn empty_strings_are_missing_and_run_uuid_is_an_alias() {
        let f = fields(json!({"name": "", "run_uuid": "abc"}));
        assert!(f.required_str("name").is_err());
        assert_eq!(f.run_id().unwrap(), "abc");
        assert!(fields(json!({})).run_id().unwrap_err().message.contains("'run_id'"));
    }

    #[test]
    fn nested_objects_name_their_path() {
        let f = fields(json!({"metrics": [{"key": "m"}, {"key": "n", "value": []}]}));
        let items = f.objects("metrics").unwrap();
        assert!(items[0].required_f64("value").unwrap_err().message.contains("'metrics[0].value'"));
        assert!(items[1].required_f64("value").unwrap_err().message.contains("'metrics[1].value'"));
        assert!(fields(json!({"metrics": [1]})).objects("metrics").is_err());
        assert!(fields(json!({"metrics": {}})).objects("metrics").is_err());
    }

    #[test]
    fn bodies() {
        assert!(parse_body(b"").unwrap().map.is_empty());
        assert_eq!(parse_body(br#""{\"a\": \"b\"}""#).unwrap().str("a").unwrap().as_deref(), Some("b"));
        assert!(parse_body(b"{not json").unwrap_err().message.starts_with("Malformed JSON"));
        assert!(parse_body(b"[1]").is_err());
    }

    #[test]
    fn query_strings_collect_repeated_keys() {
        let f = parse_query(Some("run_ids=a&run_ids=b&metric_key=m%20x&metric_key=y"), &["run_ids"]).unwrap();
        assert_eq!(f.str_list("run_ids").unwrap(), vec!["a", "b"]);
        assert_eq!(f.str("metric_key").unwrap().as_deref(), Some("m x"));
        let f = parse_query(Some("run_ids=a"), &["run_ids"]).unwrap();
        assert_eq!(f.str_list("run_ids").unwrap(), vec!["a"]);
        assert_eq!(parse_query(Some("max_results=10"), &[]).unwrap().i64("max_results").unwrap(), Some(10));
    }

    #[test]
    fn basic_auth() {
        // "alice:secret"
        assert_eq!(basic_auth_user("Basic YWxpY2U6c2VjcmV0").as_deref(), Some("alice"));
        assert_eq!(basic_auth_user("Bearer abc"), None);
        assert_eq!(basic_auth_user("Basic !!!"), None);
    }
}
