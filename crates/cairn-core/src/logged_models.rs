//! MLflow 3's logged models and what runs consume and produce: dataset inputs, model inputs and
//! model outputs.
//!
//! A logged model is created by `log_model` before its files are uploaded (status pending),
//! receives its files under its own artifact root, and is finalized as ready or failed. Its
//! files live in the same content-addressed blob store as run artifacts, indexed by the
//! artifact manifest under the model's id (`m-` and 32 hex digits).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{Actor, Batch, KeyValue, Millis, Page};
use crate::search::{LoggedModelField, LoggedModelFilter};
use crate::{Error, Result};

/// The prefix of every logged model id.
pub const MODEL_ID_PREFIX: &str = "m-";

/// Whether `id` has the shape of a logged model id.
pub fn is_model_id(id: &str) -> bool {
    id.strip_prefix(MODEL_ID_PREFIX)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Checks an id a client chose for a new logged model: the shape the server generates.
pub fn validate_model_id(id: &str) -> Result<()> {
    if is_model_id(id) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid logged model id '{id}': expected '{MODEL_ID_PREFIX}' and 32 lowercase hexadecimal digits"
        )))
    }
}

/// Where a logged model's upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum LoggedModelStatus {
    Pending,
    Ready,
    UploadFailed,
}

impl LoggedModelStatus {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LoggedModelStatus::Pending => "LOGGED_MODEL_PENDING",
            LoggedModelStatus::Ready => "LOGGED_MODEL_READY",
            LoggedModelStatus::UploadFailed => "LOGGED_MODEL_UPLOAD_FAILED",
        }
    }

    /// Parses MLflow's spelling or its enum number.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "LOGGED_MODEL_PENDING" | "1" => Ok(LoggedModelStatus::Pending),
            "LOGGED_MODEL_READY" | "2" => Ok(LoggedModelStatus::Ready),
            "LOGGED_MODEL_UPLOAD_FAILED" | "3" => Ok(LoggedModelStatus::UploadFailed),
            other => Err(Error::invalid(format!("Invalid logged model status '{other}'"))),
        }
    }
}

/// A metric attached to a logged model: logged by a run with the model's id, optionally
/// against a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelMetric {
    pub key: String,
    pub value: f64,
    pub timestamp: Millis,
    pub step: i64,
    pub run_id: Option<String>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

/// A logged model with its tags, params and metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModel {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    /// Where its files are uploaded (`<experiment artifact location>/models/<model_id>/artifacts`).
    pub artifact_location: String,
    pub creation_timestamp: Millis,
    pub last_updated_timestamp: Millis,
    pub status: LoggedModelStatus,
    pub status_message: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub tags: Vec<KeyValue>,
    pub params: Vec<KeyValue>,
    pub metrics: Vec<ModelMetric>,
}

/// What a caller supplies to create a logged model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewLoggedModel {
    /// `None` gets a generated id; `Some` is an id the client chose (`m-` and 32 lowercase hex
    /// digits), which a client logging offline gives the model it creates.
    pub model_id: Option<String>,
    pub experiment_id: String,
    /// `None` gets a generated name, as in MLflow.
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub tags: Vec<KeyValue>,
    pub params: Vec<KeyValue>,
}

/// A dataset version as runs log it (MLflow's `Dataset`). Its identity is
/// `(experiment, name, digest)`: logging the same dataset from many runs stores it once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
}

/// A dataset a run used, with the input's tags (`mlflow.data.context` = training, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInput {
    pub dataset: Dataset,
    pub tags: Vec<KeyValue>,
}

/// One dataset an experiment's runs used, in one context (MLflow's `DatasetSummary`, which its
/// UI lists per experiment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub experiment_id: String,
    pub name: String,
    pub digest: String,
    /// The input's `mlflow.data.context` tag (training, eval, …), when it has one.
    pub context: Option<String>,
}

/// The input tag that says what a dataset was used for.
pub const DATASET_CONTEXT_TAG: &str = "mlflow.data.context";

/// Most summaries one dataset search returns, as in MLflow.
pub const MAX_DATASET_SUMMARIES: usize = 1000;

/// A logged model a run produced, at a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelOutput {
    pub model_id: String,
    pub step: i64,
}

/// What a run consumed: datasets and logged models (MLflow's `RunInputs`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunInputs {
    pub dataset_inputs: Vec<DatasetInput>,
    /// Ids of logged models the run used.
    pub model_inputs: Vec<String>,
}

/// What a run produced (MLflow's `RunOutputs`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunOutputs {
    pub model_outputs: Vec<ModelOutput>,
}

/// What links a logged metric point to a logged model (MLflow 3's `model_id`, `dataset_name`
/// and `dataset_digest` on a metric). Such a point is recorded for the run as usual and, in
/// addition, for the model, where [`LoggedModel::metrics`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricLink {
    pub model_id: String,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

/// A dataset (`name`, optional `digest`) that metric filters and orderings are restricted to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatasetFilter {
    pub name: String,
    pub digest: Option<String>,
}

/// One ORDER BY key of a logged-model search. A metric key may be restricted to the points
/// logged against one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModelOrder {
    pub field: LoggedModelField,
    pub ascending: bool,
    pub dataset: Option<DatasetFilter>,
}

/// A logged-model search, already parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoggedModelQuery {
    pub experiment_ids: Vec<String>,
    pub filter: LoggedModelFilter,
    pub order_by: Vec<LoggedModelOrder>,
    /// Restricts metric filters to metrics logged against one of these datasets; without metric
    /// filters, keeps only models with a metric on one of them.
    pub datasets: Vec<DatasetFilter>,
    pub max_results: u64,
    pub offset: u64,
}

/// MLflow's default page size of a logged-model search.
pub const SEARCH_LOGGED_MODELS_MAX_RESULTS_DEFAULT: u64 = 100;

/// Checks a logged model's name as MLflow does: absent is fine (one is generated), present must
/// be non-empty and free of the characters that would break `models:/` URIs.
pub fn validate_logged_model_name(name: Option<&str>) -> Result<()> {
    const BAD: [char; 6] = ['/', ':', '.', '%', '"', '\''];
    let Some(name) = name else { return Ok(()) };
    if name.is_empty() || name.contains(BAD) {
        return Err(Error::invalid(format!(
            "Invalid model name ({}) provided. Model name must be a non-empty string and cannot contain \
             the following characters: ('/', ':', '.', '%', '\"', \"'\")",
            crate::validation::py_repr_str(name)
        )));
    }
    Ok(())
}

/// MLflow's size limits on a dataset input (`mlflow/utils/validation.py`).
const MAX_DATASET_NAME_SIZE: usize = 500;
const MAX_DATASET_DIGEST_SIZE: usize = 36;
const MAX_DATASET_SCHEMA_SIZE: usize = 1_048_575;
const MAX_DATASET_SOURCE_SIZE: usize = 65_535;
const MAX_DATASET_PROFILE_SIZE: usize = 16_777_215;
const MAX_INPUT_TAG_KEY_SIZE: usize = 255;
const MAX_INPUT_TAG_VALUE_SIZE: usize = 500;

/// PostgreSQL text cannot hold NUL, so a value one backend would keep and the other refuse is
/// refused on both.
fn reject_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(format!("'{field}' may not contain NUL characters")));
    }
    Ok(())
}

/// Checks the tags or params (`kind`) of a logged model: keys are required, nothing may hold NUL.
pub fn validate_model_key_values(kind: &str, items: &[KeyValue]) -> Result<()> {
    for item in items {
        if item.key.is_empty() {
            return Err(Error::invalid(format!("A logged model {kind} key must not be empty")));
        }
        reject_nul("key", &item.key)?;
        reject_nul("value", &item.value)?;
    }
    Ok(())
}

/// Checks what a caller supplies to create a logged model.
pub fn validate_new_logged_model(new: &NewLoggedModel) -> Result<()> {
    if let Some(id) = &new.model_id {
        validate_model_id(id)?;
    }
    validate_logged_model_name(new.name.as_deref())?;
    for (field, value) in [("name", &new.name), ("model_type", &new.model_type), ("source_run_id", &new.source_run_id)]
    {
        if let Some(value) = value {
            reject_nul(field, value)?;
        }
    }
    validate_model_key_values("tag", &new.tags)?;
    validate_model_key_values("param", &new.params)
}

fn check_length(field: &str, value: &str, limit: usize) -> Result<()> {
    reject_nul(field, value)?;
    if value.chars().count() > limit {
        return Err(Error::invalid(format!("'{field}' exceeds the maximum length of {limit} characters")));
    }
    Ok(())
}

/// Checks dataset inputs against MLflow's limits before they reach the store.
pub fn validate_dataset_inputs(inputs: &[DatasetInput]) -> Result<()> {
    for input in inputs {
        let d = &input.dataset;
        check_length("name", &d.name, MAX_DATASET_NAME_SIZE)?;
        check_length("digest", &d.digest, MAX_DATASET_DIGEST_SIZE)?;
        check_length("source", &d.source, MAX_DATASET_SOURCE_SIZE)?;
        check_length("source_type", &d.source_type, MAX_DATASET_SOURCE_SIZE)?;
        if let Some(schema) = &d.schema {
            check_length("schema", schema, MAX_DATASET_SCHEMA_SIZE)?;
        }
        if let Some(profile) = &d.profile {
            check_length("profile", profile, MAX_DATASET_PROFILE_SIZE)?;
        }
        for tag in &input.tags {
            check_length("key", &tag.key, MAX_INPUT_TAG_KEY_SIZE)?;
            check_length("value", &tag.value, MAX_INPUT_TAG_VALUE_SIZE)?;
        }
    }
    Ok(())
}

/// Logged models and run inputs/outputs. Every mutation is audited.
#[async_trait]
pub trait LoggedModels: Send + Sync + 'static {
    /// Creates a pending model in an active experiment, with its files' root at
    /// `<experiment artifact location>/models/<model_id>/artifacts`.
    async fn create_logged_model(&self, actor: &Actor, new: NewLoggedModel) -> Result<LoggedModel>;
    /// A model that is not deleted.
    async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel>;
    /// A model in any lifecycle stage (MLflow's `allow_deleted=true`).
    async fn get_logged_model_any_stage(&self, model_id: &str) -> Result<LoggedModel>;
    /// Sets the final status (ready or upload failed) and its message.
    async fn finalize_logged_model(
        &self,
        actor: &Actor,
        model_id: &str,
        status: LoggedModelStatus,
        status_message: Option<String>,
    ) -> Result<LoggedModel>;
    /// Tombstones a model; it disappears from gets and searches, its rows stay.
    async fn delete_logged_model(&self, actor: &Actor, model_id: &str) -> Result<()>;
    async fn set_logged_model_tags(&self, actor: &Actor, model_id: &str, tags: Vec<KeyValue>) -> Result<()>;
    async fn delete_logged_model_tag(&self, actor: &Actor, model_id: &str, key: &str) -> Result<()>;
    async fn log_logged_model_params(&self, actor: &Actor, model_id: &str, params: Vec<KeyValue>) -> Result<()>;
    async fn search_logged_models(&self, query: LoggedModelQuery) -> Result<Page<LoggedModel>>;

    /// `log-batch` (or `log-metric`) whose metrics may carry a model id: `links[i]` belongs to
    /// `batch.metrics[i]`. Linked points are written for the run as usual and for their model,
    /// in one transaction with one audit event. Batches without links go through
    /// `Store::log_batch`, whose path this leaves untouched.
    async fn log_batch_linked(
        &self,
        actor: &Actor,
        run_id: &str,
        batch: Batch,
        links: Vec<Option<MetricLink>>,
    ) -> Result<()>;

    /// Records datasets and logged models a run used (`runs/log-inputs`). A dataset is stored
    /// once per experiment (by name and digest); an input already recorded is kept as it is.
    async fn log_inputs(
        &self,
        actor: &Actor,
        run_id: &str,
        datasets: Vec<DatasetInput>,
        model_ids: Vec<String>,
    ) -> Result<()>;
    /// Records logged models a run produced (`runs/outputs`).
    async fn log_outputs(&self, actor: &Actor, run_id: &str, models: Vec<ModelOutput>) -> Result<()>;
    async fn run_inputs(&self, run_id: &str) -> Result<RunInputs>;
    async fn run_outputs(&self, run_id: &str) -> Result<RunOutputs>;
    /// The distinct (dataset, context) pairs the runs of `experiment_ids` used, at most
    /// [`MAX_DATASET_SUMMARIES`], ordered by experiment, name, digest and context. Ids that name
    /// no experiment match nothing.
    async fn search_datasets(&self, experiment_ids: &[String]) -> Result<Vec<DatasetSummary>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_have_one_shape() {
        assert!(is_model_id("m-0123456789abcdef0123456789abcdef"));
        assert!(!is_model_id("m-0123456789ABCDEF0123456789abcdef"));
        assert!(!is_model_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_model_id("m-0123"));
    }

    #[test]
    fn model_names_follow_mlflow() {
        assert!(validate_logged_model_name(None).is_ok());
        assert!(validate_logged_model_name(Some("my_model-1")).is_ok());
        for bad in ["", "a/b", "a.b", "a:b", "50%", "it's"] {
            let err = validate_logged_model_name(Some(bad)).unwrap_err().to_string();
            assert!(err.starts_with("Invalid model name ("), "{bad}: {err}");
        }
    }

    #[test]
    fn dataset_limits() {
        let input = |digest: &str, tag_value: &str| DatasetInput {
            dataset: Dataset {
                name: "d".into(),
                digest: digest.into(),
                source_type: "local".into(),
                source: "{}".into(),
                schema: None,
                profile: None,
            },
            tags: vec![KeyValue::new("mlflow.data.context", tag_value)],
        };
        assert!(validate_dataset_inputs(&[input("abc", "training")]).is_ok());
        let err = validate_dataset_inputs(&[input(&"x".repeat(37), "t")]).unwrap_err().to_string();
        assert_eq!(err, "'digest' exceeds the maximum length of 36 characters");
        assert!(validate_dataset_inputs(&[input("a", &"v".repeat(501))]).is_err());
    }
}
