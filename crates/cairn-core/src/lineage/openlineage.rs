//! OpenLineage run events, read into Cairn's terms.
//!
//! Airflow, Spark, dbt and anything built on `openlineage-python` report lineage as run events:
//! a job's run starts, runs, completes or fails, reading input datasets and writing output
//! datasets, each described by facets. Cairn reads what its graph needs (the run, the job, the
//! datasets with their versions, schemas and row counts) and keeps the facets verbatim so no
//! detail the sender gave is lost. Malformed events are refused with the path of the bad field.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::Millis;
use crate::time::parse_instant;
use crate::{Error, Result};

/// The largest number of input or output datasets one event may carry.
pub const MAX_EVENT_DATASETS: usize = 10_000;

/// An OpenLineage run state transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OpenLineageEventType {
    Start,
    Running,
    Complete,
    Abort,
    Fail,
    Other,
}

impl OpenLineageEventType {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "START" => Self::Start,
            "RUNNING" => Self::Running,
            "COMPLETE" => Self::Complete,
            "ABORT" => Self::Abort,
            "FAIL" => Self::Fail,
            "OTHER" => Self::Other,
            other => {
                return Err(Error::invalid(format!(
                    "eventType '{other}' is not one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER"
                )));
            }
        })
    }

    /// Whether the run has ended with this event.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Abort | Self::Fail)
    }
}

/// A dataset an event names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenLineageDataset {
    pub namespace: String,
    pub name: String,
    /// From the `version` facet (`datasetVersion`), when the producer sent one.
    pub version: Option<String>,
    /// The number of rows, from the `outputStatistics` or `dataQualityMetrics` facets.
    pub row_count: Option<i64>,
    /// The `schema` facet's fields, verbatim.
    pub schema: Option<Value>,
    /// All facets (dataset, input and output facets), verbatim.
    pub facets: Map<String, Value>,
}

impl OpenLineageDataset {
    /// The dataset's name in Cairn's graph: `<namespace>/<name>`.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A run event, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenLineageEvent {
    pub event_type: OpenLineageEventType,
    pub event_time: Millis,
    pub run_id: String,
    pub job_namespace: String,
    pub job_name: String,
    /// The run of the parent job, when the event names one (a task inside a DAG run).
    pub parent_run_id: Option<String>,
    pub inputs: Vec<OpenLineageDataset>,
    pub outputs: Vec<OpenLineageDataset>,
    pub producer: String,
    /// The run's facets, verbatim.
    pub run_facets: Map<String, Value>,
    /// The job's facets, verbatim (source code location, SQL, …).
    pub job_facets: Map<String, Value>,
}

/// A field that is present and not null.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|v| !v.is_null())
}

fn required_str(object: &Map<String, Value>, path: &str, name: &str) -> Result<String> {
    match field(object, name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(Error::invalid(format!("{path}{name} must not be empty"))),
        Some(other) => Err(Error::invalid(format!("{path}{name} must be a string, got {}", kind_of(other)))),
        None => Err(Error::invalid(format!("{path}{name} is required"))),
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    value.as_object().ok_or_else(|| Error::invalid(format!("{path} must be an object, got {}", kind_of(value))))
}

fn optional_object(parent: &Map<String, Value>, path: &str, name: &str) -> Result<Map<String, Value>> {
    match field(parent, name) {
        None => Ok(Map::new()),
        Some(v) => object(v, &format!("{path}{name}")).cloned(),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn datasets(event: &Map<String, Value>, name: &str, extra_facets: &str) -> Result<Vec<OpenLineageDataset>> {
    let Some(list) = field(event, name) else { return Ok(Vec::new()) };
    let list = list.as_array().ok_or_else(|| Error::invalid(format!("{name} must be an array")))?;
    if list.len() > MAX_EVENT_DATASETS {
        return Err(Error::invalid(format!(
            "{name} lists {} datasets; at most {MAX_EVENT_DATASETS} are accepted per event",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("{name}[{i}].");
            let item = object(item, &format!("{name}[{i}]"))?;
            let mut facets = optional_object(item, &path, "facets")?;
            facets.extend(optional_object(item, &path, extra_facets)?);
            let version =
                facets.get("version").and_then(|v| v.get("datasetVersion")).and_then(Value::as_str).map(str::to_owned);
            let row_count = ["outputStatistics", "dataQualityMetrics"]
                .iter()
                .find_map(|facet| facets.get(*facet).and_then(|f| f.get("rowCount")).and_then(Value::as_i64));
            let schema = facets.get("schema").and_then(|s| s.get("fields")).cloned();
            Ok(OpenLineageDataset {
                namespace: required_str(item, &path, "namespace")?,
                name: required_str(item, &path, "name")?,
                version,
                row_count,
                schema,
                facets,
            })
        })
        .collect()
}

/// Reads and validates one OpenLineage run event.
pub fn parse_openlineage_event(value: &Value) -> Result<OpenLineageEvent> {
    let event = object(value, "the event")?;
    let run = object(field(event, "run").ok_or_else(|| Error::invalid("run is required"))?, "run")?;
    let job = object(field(event, "job").ok_or_else(|| Error::invalid("job is required"))?, "job")?;
    let event_type = match field(event, "eventType") {
        None => OpenLineageEventType::Other,
        Some(Value::String(s)) => OpenLineageEventType::parse(s)?,
        Some(other) => return Err(Error::invalid(format!("eventType must be a string, got {}", kind_of(other)))),
    };
    let event_time = parse_instant(&required_str(event, "", "eventTime")?)
        .map_err(|_| Error::invalid("eventTime must be an ISO 8601 timestamp with a time zone"))?;
    let run_facets = optional_object(run, "run.", "facets")?;
    let parent_run_id = run_facets
        .get("parent")
        .and_then(|p| p.get("run"))
        .and_then(|r| r.get("runId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(OpenLineageEvent {
        event_type,
        event_time,
        run_id: required_str(run, "run.", "runId")?,
        job_namespace: required_str(job, "job.", "namespace")?,
        job_name: required_str(job, "job.", "name")?,
        parent_run_id,
        inputs: datasets(event, "inputs", "inputFacets")?,
        outputs: datasets(event, "outputs", "outputFacets")?,
        producer: required_str(event, "", "producer")?,
        run_facets,
        job_facets: optional_object(job, "job.", "facets")?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> Value {
        json!({
            "eventType": "COMPLETE",
            "eventTime": "2026-11-23T10:00:00.000Z",
            "run": {"runId": "0176a8c2-fe01-7439-87e6-56a1a1b4029f",
                    "facets": {"parent": {"run": {"runId": "p-1"}, "job": {"namespace": "a", "name": "dag"}}}},
            "job": {"namespace": "airflow", "name": "clean_sales", "facets": {"sql": {"query": "select 1"}}},
            "inputs": [{"namespace": "s3://raw", "name": "sales", "facets": {
                "version": {"datasetVersion": "v7"},
                "schema": {"fields": [{"name": "id", "type": "int"}]}}}],
            "outputs": [{"namespace": "s3://clean", "name": "sales", "outputFacets": {
                "outputStatistics": {"rowCount": 1200}}}],
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
        })
    }

    #[test]
    fn a_complete_event_yields_run_job_and_datasets() {
        let parsed = parse_openlineage_event(&event()).unwrap();
        assert_eq!(parsed.event_type, OpenLineageEventType::Complete);
        assert!(parsed.event_type.is_terminal());
        assert_eq!(parsed.event_time, 1_795_428_000_000);
        assert_eq!((parsed.job_namespace.as_str(), parsed.job_name.as_str()), ("airflow", "clean_sales"));
        assert_eq!(parsed.parent_run_id.as_deref(), Some("p-1"));
        assert_eq!(parsed.inputs[0].version.as_deref(), Some("v7"));
        assert_eq!(parsed.inputs[0].qualified_name(), "s3://raw/sales");
        assert_eq!(parsed.inputs[0].schema, Some(json!([{"name": "id", "type": "int"}])));
        assert_eq!(parsed.outputs[0].row_count, Some(1200));
        assert_eq!(parsed.job_facets["sql"]["query"], "select 1");
    }

    /// Breaks one field of a valid event.
    type Mutation = fn(&mut Value);

    #[test]
    fn malformed_events_name_the_bad_field() {
        let cases: [(Mutation, &str); 8] = [
            (|e| e["eventType"] = json!("EXPLODED"), "eventType"),
            (|e| e["eventTime"] = json!("last tuesday"), "eventTime"),
            (|e| e["run"] = json!("r"), "run must be an object"),
            (|e| e["run"]["runId"] = json!(""), "run.runId must not be empty"),
            (|e| e["job"].as_object_mut().unwrap().clear(), "job.namespace is required"),
            (|e| e["inputs"] = json!({}), "inputs must be an array"),
            (|e| e["outputs"][0]["name"] = json!(3), "outputs[0].name must be a string"),
            (|e| e.as_object_mut().unwrap().remove("producer").map(|_| ()).unwrap_or(()), "producer is required"),
        ];
        for (mutate, needle) in cases {
            let mut e = event();
            mutate(&mut e);
            let err = parse_openlineage_event(&e).unwrap_err().to_string();
            assert!(err.contains(needle), "expected '{needle}' in '{err}'");
        }
        assert!(parse_openlineage_event(&json!([1])).is_err());
    }
}
