//! MLflow's JSON wire format: protobuf's JSON mapping as MLflow's server produces it.
//!
//! Output: int64 fields are JSON numbers (MLflow converts them back from protobuf's strings),
//! empty repeated fields and unset optional fields are omitted, a NaN metric is `"NaN"` and ±inf
//! is ±`1.7976931348623157e+308` (MLflow's SQL store clamps infinities to the largest double).
//! Input: int64 as a number or a decimal string, doubles as a number, a numeric string, `"NaN"`,
//! `"Infinity"` or `"-Infinity"`.

use base64::Engine;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value, json};

use cairn_core::logged_models::{DatasetInput, RunInputs, RunOutputs};
use cairn_core::model::{Experiment, KeyValue, Metric, Run, RunInfo, RunMetric, SortValue};

use crate::error::ApiError;

/// Reads an int64 from a JSON number (integral) or a decimal string.
pub fn parse_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            // Protobuf accepts `5.0` for an integer field, but not `5.5`.
            let f = n.as_f64()?;
            (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
        }),
        Value::String(s) if !s.contains(' ') => s.parse().ok(),
        _ => None,
    }
}

/// Reads a double from a JSON number, a numeric string or one of protobuf's special spellings.
pub fn parse_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            // Rust would also read "inf" and "nan"; protobuf wants the spellings above.
            other => other.parse::<f64>().ok().filter(|f| f.is_finite()),
        },
        _ => None,
    }
}

/// A metric value as MLflow's server writes it.
pub fn metric_value(v: f64) -> Value {
    if v.is_nan() {
        Value::String("NaN".to_owned())
    } else if v.is_infinite() {
        json!(if v > 0.0 { f64::MAX } else { f64::MIN })
    } else {
        json!(v)
    }
}

/// A metric value written straight to JSON by the rule of [`metric_value`], for responses that
/// hold many of them.
pub struct MetricValueJson(pub f64);

impl Serialize for MetricValueJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_nan() {
            serializer.serialize_str("NaN")
        } else if v.is_infinite() {
            serializer.serialize_f64(if v > 0.0 { f64::MAX } else { f64::MIN })
        } else {
            serializer.serialize_f64(v)
        }
    }
}

/// Encodes a result offset as MLflow's SQL store does: base64 of `{"offset": N}`.
pub fn encode_page_token(offset: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// Decodes a page token into an offset; no token (or an empty one) means the start.
pub fn decode_page_token(token: Option<&str>) -> Result<u64, ApiError> {
    Ok(decode_token(token)?.map_or(0, |(offset, _)| offset))
}

/// The token of a `runs/search` page: MLflow's `{"offset": N}` and, under `after`, the sort key
/// of the page's last run, so that the next page starts after that run instead of counting the
/// rows before it again. Values are JSON `null`, integers and strings, and a float is
/// `{"real": "<shortest decimal>"}`, which also carries infinities.
pub fn encode_run_page_token(offset: u64, after: Option<&[SortValue]>) -> String {
    let Some(after) = after else { return encode_page_token(offset) };
    let values: Vec<Value> = after
        .iter()
        .map(|v| match v {
            SortValue::Null => Value::Null,
            SortValue::Int(i) => json!(i),
            SortValue::Real(f) => json!({ "real": f.to_string() }),
            SortValue::Text(t) => json!(t),
        })
        .collect();
    base64::engine::general_purpose::STANDARD.encode(json!({ "offset": offset, "after": values }).to_string())
}

/// Decodes a `runs/search` page token (see [`encode_run_page_token`]) into the offset and the
/// sort key, if it has one.
pub fn decode_run_page_token(token: Option<&str>) -> Result<(u64, Option<Vec<SortValue>>), ApiError> {
    let Some((offset, parsed)) = decode_token(token)? else { return Ok((0, None)) };
    let Some(after) = parsed.get("after") else { return Ok((offset, None)) };
    let invalid = || ApiError::invalid(format!("Invalid page token, parsed value={parsed}"));
    let values = after.as_array().ok_or_else(invalid)?;
    let key = values
        .iter()
        .map(|v| match v {
            Value::Null => Some(SortValue::Null),
            Value::Number(n) => n.as_i64().map(SortValue::Int),
            Value::String(t) => Some(SortValue::Text(t.clone())),
            Value::Object(o) if o.len() == 1 => {
                o.get("real").and_then(Value::as_str).and_then(|r| r.parse().ok()).map(SortValue::Real)
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(invalid)?;
    Ok((offset, Some(key)))
}

/// The offset and the whole JSON object of a page token, or `None` for no token.
fn decode_token(token: Option<&str>) -> Result<Option<(u64, Value)>, ApiError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else { return Ok(None) };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| ApiError::invalid("Invalid page token, could not base64-decode"))?;
    let text = String::from_utf8_lossy(&decoded);
    let parsed: Value = serde_json::from_slice(&decoded)
        .map_err(|_| ApiError::invalid(format!("Invalid page token, decoded value={text}")))?;
    let offset = parsed.get("offset").filter(|v| !v.is_null());
    match offset.and_then(parse_i64) {
        Some(n) if n > 0 => Ok(Some((n as u64, parsed))),
        Some(_) | None => Err(ApiError::invalid(format!("Invalid page token, parsed value={parsed}"))),
    }
}

/// Puts `next_page_token` in a response when there is a next page.
pub fn set_page_token(body: &mut Map<String, Value>, next_offset: Option<u64>) {
    if let Some(offset) = next_offset {
        body.insert("next_page_token".to_owned(), Value::String(encode_page_token(offset)));
    }
}

/// Inserts `items` under `key` unless empty, as protobuf's JSON omits empty repeated fields.
pub fn set_list(body: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if !items.is_empty() {
        body.insert(key.to_owned(), Value::Array(items));
    }
}

/// A key/value pair (tag or param).
pub fn key_value(kv: &KeyValue) -> Value {
    to_value(&KeyValueJson(kv))
}

/// A value tree of one of this module's writers, whose keys are all strings, so that
/// converting cannot fail.
fn to_value(item: &impl Serialize) -> Value {
    serde_json::to_value(item).unwrap_or(Value::Null)
}

/// A key/value pair written straight to JSON; [`key_value`] is the same as a value tree.
pub struct KeyValueJson<'a>(pub &'a KeyValue);

impl Serialize for KeyValueJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("key", &self.0.key)?;
        map.serialize_entry("value", &self.0.value)?;
        map.end()
    }
}

/// A list written one element at a time, each through the writer `W`.
struct ListJson<'a, T, W>(&'a [T], fn(&'a T) -> W);

impl<'a, T, W: Serialize> Serialize for ListJson<'a, T, W> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&(self.1)(item))?;
        }
        seq.end()
    }
}

/// An experiment.
pub fn experiment(e: &Experiment) -> Value {
    let mut body = Map::new();
    body.insert("experiment_id".into(), json!(e.experiment_id));
    body.insert("name".into(), json!(e.name));
    body.insert("artifact_location".into(), json!(e.artifact_location));
    body.insert("lifecycle_stage".into(), json!(e.lifecycle_stage.as_str()));
    body.insert("last_update_time".into(), json!(e.last_update_time));
    body.insert("creation_time".into(), json!(e.creation_time));
    set_list(&mut body, "tags", e.tags.iter().map(key_value).collect());
    // MLflow 3 reports the workspace of every experiment; without workspaces it is "default".
    body.insert("workspace".into(), json!("default"));
    Value::Object(body)
}

/// A run's metadata, with `run_uuid` beside `run_id` as MLflow still sends both.
pub fn run_info(info: &RunInfo) -> Value {
    to_value(&RunInfoJson(info))
}

/// A run's metadata written straight to JSON, keys sorted as in a value tree.
struct RunInfoJson<'a>(&'a RunInfo);

impl Serialize for RunInfoJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let info = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("artifact_uri", &info.artifact_uri)?;
        if let Some(t) = info.end_time {
            map.serialize_entry("end_time", &t)?;
        }
        map.serialize_entry("experiment_id", &info.experiment_id)?;
        map.serialize_entry("lifecycle_stage", info.lifecycle_stage.as_str())?;
        map.serialize_entry("run_id", &info.run_id)?;
        map.serialize_entry("run_name", &info.run_name)?;
        map.serialize_entry("run_uuid", &info.run_id)?;
        if let Some(t) = info.start_time {
            map.serialize_entry("start_time", &t)?;
        }
        map.serialize_entry("status", info.status.as_str())?;
        map.serialize_entry("user_id", &info.user_id)?;
        map.end()
    }
}

/// A run: info, data (latest metrics, params, tags), inputs (datasets and logged models it
/// used) and outputs (logged models it produced), written straight to JSON: a search page holds
/// a thousand of them. MLflow's server always sends `inputs` and `outputs`, empty or not.
pub struct RunJson<'a>(pub &'a Run);

impl Serialize for RunJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Data<'a>(&'a Run);

        impl Serialize for Data<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let r = self.0;
                let mut map = serializer.serialize_map(None)?;
                if !r.metrics.is_empty() {
                    map.serialize_entry("metrics", &ListJson(&r.metrics, MetricJson))?;
                }
                if !r.params.is_empty() {
                    map.serialize_entry("params", &ListJson(&r.params, KeyValueJson))?;
                }
                if !r.tags.is_empty() {
                    map.serialize_entry("tags", &ListJson(&r.tags, KeyValueJson))?;
                }
                map.end()
            }
        }

        let r = self.0;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("data", &Data(r))?;
        map.serialize_entry("info", &RunInfoJson(&r.info))?;
        map.serialize_entry("inputs", &run_inputs(&r.inputs))?;
        map.serialize_entry("outputs", &run_outputs(&r.outputs))?;
        map.end()
    }
}

/// A run's inputs (MLflow's `RunInputs`).
pub fn run_inputs(inputs: &RunInputs) -> Value {
    let mut body = Map::new();
    set_list(&mut body, "dataset_inputs", inputs.dataset_inputs.iter().map(dataset_input).collect());
    set_list(&mut body, "model_inputs", inputs.model_inputs.iter().map(|id| json!({ "model_id": id })).collect());
    Value::Object(body)
}

/// A run's outputs (MLflow's `RunOutputs`).
pub fn run_outputs(outputs: &RunOutputs) -> Value {
    let mut body = Map::new();
    let models = outputs.model_outputs.iter().map(|o| json!({ "model_id": o.model_id, "step": o.step })).collect();
    set_list(&mut body, "model_outputs", models);
    Value::Object(body)
}

/// One dataset input: the dataset and the input's tags.
pub fn dataset_input(input: &DatasetInput) -> Value {
    let d = &input.dataset;
    let mut dataset = Map::new();
    dataset.insert("name".into(), json!(d.name));
    dataset.insert("digest".into(), json!(d.digest));
    dataset.insert("source_type".into(), json!(d.source_type));
    dataset.insert("source".into(), json!(d.source));
    if let Some(schema) = &d.schema {
        dataset.insert("schema".into(), json!(schema));
    }
    if let Some(profile) = &d.profile {
        dataset.insert("profile".into(), json!(profile));
    }
    let mut body = Map::new();
    set_list(&mut body, "tags", input.tags.iter().map(key_value).collect());
    body.insert("dataset".into(), Value::Object(dataset));
    Value::Object(body)
}

/// A metric point.
pub fn metric(m: &Metric) -> Value {
    to_value(&MetricJson(m))
}

/// A metric point written straight to JSON; a history page holds up to 25,000 of them.
pub struct MetricJson<'a>(pub &'a Metric);

impl Serialize for MetricJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("key", &m.key)?;
        map.serialize_entry("step", &m.step)?;
        map.serialize_entry("timestamp", &m.timestamp)?;
        // One small value (a number, or "NaN"), so the wire rule is reused, not copied.
        map.serialize_entry("value", &metric_value(m.value))?;
        map.end()
    }
}

/// One page of a paged list response (`runs/search`, `metrics/get-history`), written straight
/// to JSON: the items under `key` through the writer `write`, omitted when empty, and
/// `next_page_token` when there is a next page, keys in sorted order as in a value tree.
pub struct PageJson<'a, T, W> {
    pub key: &'static str,
    pub items: &'a [T],
    pub write: fn(&'a T) -> W,
    pub next_page_token: Option<String>,
}

impl<T, W: Serialize> Serialize for PageJson<'_, T, W> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const TOKEN: &str = "next_page_token";
        let token = self.next_page_token.as_ref();
        let list = (!self.items.is_empty()).then_some(ListJson(self.items, self.write));
        let mut map = serializer.serialize_map(Some(usize::from(list.is_some()) + usize::from(token.is_some())))?;
        let list_first = self.key < TOKEN;
        if let Some(list) = list.as_ref().filter(|_| list_first) {
            map.serialize_entry(self.key, list)?;
        }
        if let Some(token) = token {
            map.serialize_entry(TOKEN, token)?;
        }
        if let Some(list) = list.as_ref().filter(|_| !list_first) {
            map.serialize_entry(self.key, list)?;
        }
        map.end()
    }
}

/// A metric point with the run it belongs to.
pub fn run_metric(m: &RunMetric) -> Value {
    let mut v = metric(&m.metric);
    v["run_id"] = json!(m.run_id);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int64_accepts_numbers_and_strings() {
        let check = |v: Value, expected: Option<i64>| assert_eq!(parse_i64(&v), expected, "{v}");
        check(json!(5), Some(5));
        check(json!("5"), Some(5));
        check(json!("-7"), Some(-7));
        check(json!(5.0), Some(5));
        check(json!(5.5), None);
        check(json!("abc"), None);
        check(json!("5 "), None);
        check(json!(true), None);
        check(json!("9223372036854775808"), None);
        check(json!(1e300), None);
    }

    #[test]
    fn doubles_accept_protobuf_spellings() {
        assert_eq!(parse_f64(&json!(1.5)), Some(1.5));
        assert_eq!(parse_f64(&json!(3)), Some(3.0));
        assert_eq!(parse_f64(&json!("2.5")), Some(2.5));
        assert!(parse_f64(&json!("NaN")).unwrap().is_nan());
        assert_eq!(parse_f64(&json!("Infinity")), Some(f64::INFINITY));
        assert_eq!(parse_f64(&json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(&json!("inf")), None);
        assert_eq!(parse_f64(&json!("abc")), None);
        assert_eq!(parse_f64(&json!(null)), None);
        assert_eq!(parse_f64(&json!([1])), None);
    }

    #[test]
    fn metric_values_render_like_mlflow() {
        assert_eq!(metric_value(f64::NAN), json!("NaN"));
        assert_eq!(metric_value(f64::INFINITY).to_string(), "1.7976931348623157e+308");
        assert_eq!(metric_value(f64::NEG_INFINITY).to_string(), "-1.7976931348623157e+308");
        assert_eq!(metric_value(0.25), json!(0.25));
        assert_eq!(metric_value(1.0).to_string(), "1.0");
    }

    #[test]
    fn the_streaming_metric_value_writer_agrees_with_the_value_tree() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.25, 1.0, -0.0, 1e-300, f64::MAX] {
            assert_eq!(serde_json::to_string(&MetricValueJson(v)).unwrap(), metric_value(v).to_string(), "{v}");
        }
    }

    #[test]
    fn page_tokens_round_trip_and_match_mlflow() {
        // What MLflow's `SearchUtils.create_page_token(1000)` returns.
        assert_eq!(encode_page_token(1000), "eyJvZmZzZXQiOiAxMDAwfQ==");
        assert_eq!(decode_page_token(Some(&encode_page_token(42))).unwrap(), 42);
        assert_eq!(decode_page_token(None).unwrap(), 0);
        assert_eq!(decode_page_token(Some("")).unwrap(), 0);
        let err = |t: &str| decode_page_token(Some(t)).unwrap_err().message;
        assert_eq!(err("!!!"), "Invalid page token, could not base64-decode");
        assert!(err("bm90IGpzb24=").starts_with("Invalid page token, decoded value=not json"));
        assert!(err("eyJ4IjogMX0=").starts_with("Invalid page token, parsed value=")); // {"x": 1}
        let negative = base64::engine::general_purpose::STANDARD.encode("{\"offset\": -5}");
        assert!(err(&negative).starts_with("Invalid page token, parsed value="));
    }

    #[test]
    fn run_page_tokens_carry_the_sort_key_exactly_and_refuse_forged_ones() {
        let key = vec![
            SortValue::Int(0),
            SortValue::Real(0.1 + 0.2),
            SortValue::Real(f64::NEG_INFINITY),
            SortValue::Null,
            SortValue::Text("run \"x\" é".into()),
        ];
        let token = encode_run_page_token(200, Some(&key));
        assert_eq!(decode_run_page_token(Some(&token)).unwrap(), (200, Some(key)));
        assert_eq!(decode_run_page_token(Some(&encode_page_token(7))).unwrap(), (7, None));
        assert_eq!(decode_run_page_token(None).unwrap(), (0, None));
        let forged = |after: &str| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": 5, \"after\": {after}}}"));
            decode_run_page_token(Some(&token)).unwrap_err().message
        };
        for after in
            ["1", "[true]", "[1.5]", "[{\"real\": \"x\"}]", "[{\"real\": 1}]", "[[1]]", "[{\"real\": \"1\", \"y\": 2}]"]
        {
            assert!(forged(after).starts_with("Invalid page token, parsed value="), "{after}");
        }
    }
}
