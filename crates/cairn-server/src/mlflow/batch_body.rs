//! The log-batch body read straight into typed fields: the ingest hot path.
//!
//! The general reader ([`crate::extract::Fields`]) first builds a `serde_json::Value` tree, a map
//! per metric with an owned string per key, and walks it; for a batch of a thousand metrics that
//! was most of the request workers' CPU. Here serde deserializes the same body into structs that
//! borrow their strings from the request bytes where no escape forces a copy.
//!
//! This reader never produces an error message of its own. It accepts only bodies that the
//! general reader would accept *and* read to the same values: every field must be one the
//! struct names (unknown fields, duplicates and odd shapes are refused), and anything that is
//! not plainly valid (a missing or empty key, a JSON array where an object belongs, …) makes it
//! return `None`. The handler then parses the body again with the general reader, which gives
//! MLflow's exact error codes and messages. Valid batches, which are nearly all of them, are
//! parsed once.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use cairn_core::logged_models::MetricLink;
use cairn_core::model::{Batch, KeyValue, Metric};

use crate::wire;

/// A log-batch request decoded by the fast path: the run, the batch and, per metric, its
/// logged-model link (the same shapes the general reader yields).
#[derive(Debug)]
pub struct ParsedBatch {
    pub run_id: String,
    pub batch: Batch,
    pub links: Vec<Option<MetricLink>>,
}

/// A batch that access control already decoded to find its run, handed to the handler in the
/// request's extensions so that a thousand metrics are read once, not twice. The handler takes
/// it out; the slot is shared only because extensions must be `Clone`.
#[derive(Debug, Clone)]
pub struct PreParsed(Arc<Mutex<Option<ParsedBatch>>>);

impl PreParsed {
    pub fn new(batch: ParsedBatch) -> Self {
        PreParsed(Arc::new(Mutex::new(Some(batch))))
    }

    /// The batch, the first time it is asked for.
    pub fn take(&self) -> Option<ParsedBatch> {
        self.0.lock().ok()?.take()
    }
}

/// Decodes a log-batch body, or `None` when the general reader must look at it (see the module
/// docs: `None` means "not plainly valid", never "valid but different").
pub fn parse(bytes: &[u8]) -> Option<ParsedBatch> {
    let body: Obj<BatchBody<'_>> = serde_json::from_slice(bytes).ok()?;
    body.0.into_parsed()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody<'a> {
    #[serde(borrow, default)]
    run_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    run_uuid: Option<Str<'a>>,
    #[serde(borrow, default)]
    metrics: Option<Vec<Obj<MetricBody<'a>>>>,
    #[serde(borrow, default)]
    params: Option<Vec<Obj<KeyValueBody<'a>>>>,
    #[serde(borrow, default)]
    tags: Option<Vec<Obj<KeyValueBody<'a>>>>,
}

/// One metric as protobuf's `Metric` message spells it (MLflow 3 adds the logged-model link and
/// the run id, which the batch's own `run_id` overrides).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricBody<'a> {
    #[serde(borrow, default)]
    key: Option<Str<'a>>,
    #[serde(default)]
    value: Option<Double>,
    #[serde(default)]
    timestamp: Option<Int64>,
    #[serde(default)]
    step: Option<Int64>,
    #[serde(borrow, default)]
    model_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    dataset_name: Option<Str<'a>>,
    #[serde(borrow, default)]
    dataset_digest: Option<Str<'a>>,
    /// Accepted so that the client's full `Metric` message takes this path; the batch's own
    /// `run_id` decides, as in MLflow.
    #[serde(borrow, default, rename = "run_id")]
    _run_id: Option<Str<'a>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyValueBody<'a> {
    #[serde(borrow, default)]
    key: Option<Str<'a>>,
    #[serde(borrow, default)]
    value: Option<Str<'a>>,
}

impl BatchBody<'_> {
    fn into_parsed(self) -> Option<ParsedBatch> {
        // `run_uuid` is the legacy spelling, read only when `run_id` is absent or empty.
        let run_id = non_empty(self.run_id).or_else(|| non_empty(self.run_uuid))?;
        let items = self.metrics.unwrap_or_default();
        let mut metrics = Vec::with_capacity(items.len());
        let mut links = Vec::with_capacity(items.len());
        for Obj(item) in items {
            let (metric, link) = item.into_metric()?;
            metrics.push(metric);
            links.push(link);
        }
        let params = key_values(self.params)?;
        let tags = key_values(self.tags)?;
        Some(ParsedBatch { run_id, batch: Batch { metrics, params, tags }, links })
    }
}

impl MetricBody<'_> {
    fn into_metric(self) -> Option<(Metric, Option<MetricLink>)> {
        let metric = Metric {
            key: non_empty(self.key)?,
            value: self.value?.0,
            timestamp: self.timestamp?.0,
            step: self.step.map_or(0, |s| s.0),
        };
        // As the general reader: dataset fields count only beside a model id.
        let link = non_empty(self.model_id).map(|model_id| MetricLink {
            model_id,
            dataset_name: non_empty(self.dataset_name),
            dataset_digest: non_empty(self.dataset_digest),
        });
        Some((metric, link))
    }
}

fn key_values(items: Option<Vec<Obj<KeyValueBody<'_>>>>) -> Option<Vec<KeyValue>> {
    items
        .unwrap_or_default()
        .into_iter()
        .map(|Obj(kv)| Some(KeyValue::new(non_empty(kv.key)?, kv.value.map(|v| v.0.into_owned()).unwrap_or_default())))
        .collect()
}

/// MLflow treats an empty string as a missing value.
fn non_empty(s: Option<Str<'_>>) -> Option<String> {
    s.map(|s| s.0).filter(|s| !s.is_empty()).map(Cow::into_owned)
}

/// A string borrowed from the request bytes when it holds no escape, copied otherwise. serde
/// borrows a bare `Cow<str>` field but not one inside an `Option`, hence this wrapper.
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for StrVisitor<'a> {
            type Value = Str<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(StrVisitor(PhantomData))
    }
}

/// A struct that must be written as a JSON object. serde's derived structs also accept a JSON
/// array, field by field in order, which the general reader refuses.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
            type Value = Obj<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
            }
        }

        deserializer.deserialize_map(ObjVisitor(PhantomData))
    }
}

/// An int64 field, read by the same rules as [`wire::parse_i64`] (which it calls, so the two
/// cannot drift): integers, integral floats and decimal strings.
struct Int64(i64);

/// A double field, read by the same rules as [`wire::parse_f64`]: numbers, numeric strings and
/// protobuf's `NaN` / `Infinity` / `-Infinity`.
struct Double(f64);

/// Implements `Deserialize` for a scalar wrapper by handing each JSON scalar to the general
/// reader's own conversion function; what it refuses, this refuses.
macro_rules! scalar_via_wire {
    ($name:ident, $parse:path, $what:literal) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ScalarVisitor;

                impl ScalarVisitor {
                    fn convert<E: de::Error>(v: Value) -> Result<$name, E> {
                        $parse(&v).map($name).ok_or_else(|| E::custom(concat!("not ", $what)))
                    }
                }

                impl<'de> Visitor<'de> for ScalarVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }

                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        Self::convert(Value::from(v))
                    }

                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        Self::convert(Value::from(v))
                    }

                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$name, E> {
                        Self::convert(Value::from(v))
                    }

                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        Self::convert(Value::String(v.to_owned()))
                    }
                }

                deserializer.deserialize_any(ScalarVisitor)
            }
        }
    };
}

scalar_via_wire!(Int64, wire::parse_i64, "an int64");
scalar_via_wire!(Double, wire::parse_f64, "a double");

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::extract::parse_body;

    /// What the general reader makes of the same body, built the way the handler builds it.
    fn general(bytes: &[u8]) -> Option<ParsedBatch> {
        let mut body = parse_body(bytes).ok()?;
        let run_id = body.run_id().ok()?;
        let items = body.take_objects("metrics").ok()?;
        let mut metrics = Vec::new();
        let mut links = Vec::new();
        for item in &items {
            metrics.push(Metric {
                key: item.required_str("key").ok()?,
                value: item.required_f64("value").ok()?,
                timestamp: item.required_i64("timestamp").ok()?,
                step: item.i64("step").ok()?.unwrap_or(0),
            });
            let model_id = item.str("model_id").ok()?.filter(|m| !m.is_empty());
            links.push(match model_id {
                None => None,
                Some(model_id) => Some(MetricLink {
                    model_id,
                    dataset_name: item.str("dataset_name").ok()?.filter(|n| !n.is_empty()),
                    dataset_digest: item.str("dataset_digest").ok()?.filter(|d| !d.is_empty()),
                }),
            });
        }
        let kvs = |field: &str| -> Option<Vec<KeyValue>> {
            body.objects(field).ok()?.iter().map(|f| f.key_value().ok()).collect()
        };
        let (params, tags) = (kvs("params")?, kvs("tags")?);
        Some(ParsedBatch { run_id, batch: Batch { metrics, params, tags }, links })
    }

    /// The fast path either agrees with the general reader or declines.
    fn check(body: Value, fast_accepts: bool) {
        let bytes = serde_json::to_vec(&body).unwrap();
        let fast = parse(&bytes);
        assert_eq!(fast.is_some(), fast_accepts, "fast path on {body}");
        if let Some(fast) = fast {
            // Compared as text, where NaN equals NaN.
            let (fast, general) = (format!("{fast:?}"), format!("{:?}", general(&bytes).unwrap()));
            assert_eq!(fast, general, "same result as the general reader on {body}");
        }
    }

    #[test]
    fn plain_batches_agree_with_the_general_reader() {
        check(
            json!({"run_id": "r1", "metrics": [
            {"key": "loss", "value": 0.5, "timestamp": 1700000000000_i64, "step": 3},
            {"key": "acc", "value": 1, "timestamp": "17", "step": null},
            {"key": "nan", "value": "NaN", "timestamp": 2.0},
            {"key": "inf", "value": "-Infinity", "timestamp": 5, "model_id": "m-1", "dataset_name": "d",
             "dataset_digest": "", "run_id": "ignored"},
            {"key": "esc\\aped \u{e9}", "value": "1e3", "timestamp": 1}]}),
            true,
        );
        check(
            json!({"run_uuid": "r2", "params": [{"key": "lr", "value": "0.1"}, {"key": "p", "value": null}],
                     "tags": [{"key": "t"}], "metrics": null}),
            true,
        );
        check(json!({"run_id": "", "run_uuid": "r3"}), true);
    }

    #[test]
    fn anything_unusual_goes_to_the_general_reader() {
        // Each of these is either an error with a specific MLflow message or a shape the
        // general reader handles its own way; the fast path must not guess.
        for body in [
            json!({"metrics": []}),
            json!({"run_id": "r", "metrics": [{"key": "", "value": 1, "timestamp": 1}]}),
            json!({"run_id": "r", "metrics": [{"key": "k", "timestamp": 1}]}),
            json!({"run_id": "r", "metrics": [{"key": "k", "value": 1}]}),
            json!({"run_id": "r", "metrics": [{"key": "k", "value": 1, "timestamp": 1.5}]}),
            json!({"run_id": "r", "metrics": [{"key": "k", "value": "inf", "timestamp": 1}]}),
            json!({"run_id": "r", "metrics": [{"key": "k", "value": [], "timestamp": 1}]}),
            json!({"run_id": "r", "metrics": [["k", 1, 1]]}),
            json!({"run_id": "r", "metrics": {"key": "k"}}),
            json!({"run_id": "r", "metrics": [{"key": "k", "value": 1, "timestamp": 1, "extra": 1}]}),
            json!({"run_id": "r", "unknown": true}),
            json!({"run_id": 5}),
            json!(["r", null, []]),
            json!({"run_id": "r", "params": [{"key": "k", "value": 5}]}),
        ] {
            check(body, false);
        }
        for raw in [&b""[..], b"{", b"\"{\\\"run_id\\\": \\\"r\\\"}\"", b"{\"run_id\": \"a\", \"run_id\": \"b\"}"] {
            assert!(parse(raw).is_none(), "{}", String::from_utf8_lossy(raw));
        }
    }
}
