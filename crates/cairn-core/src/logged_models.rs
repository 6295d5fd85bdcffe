//! MLflow 3's logged models and what runs consume and produce: dataset inputs, model inputs and
//! model outputs.
//!
//! A logged model is created by `log_model` before its files are uploaded (status pending),
//! receives its files under its own artifact root, and is finalized as ready or failed. Its
//! files live in the same content-addressed blob store as run artifacts, indexed by the
//! artifact manifest under the model's id (`m-` and 32 hex digits).

use async_trait::async_trait;
use serde::Serialize;

use crate::model::{Actor, KeyValue, Millis, Page};
use crate::search::{Filter, OrderBy};
use crate::{Error, Result};

/// The prefix of every logged model id.
pub const MODEL_ID_PREFIX: &str = "m-";

/// Whether `id` has the shape of a logged model id.
pub fn is_model_id(id: &str) -> bool {
    id.strip_prefix(MODEL_ID_PREFIX)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
}

/// A dataset a run used, with the input's tags (`mlflow.data.context` = training, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetInput {
    pub dataset: Dataset,
    pub tags: Vec<KeyValue>,
}

/// A logged model a run produced, at a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelOutput {
    pub model_id: String,
    pub step: i64,
}

/// What a run consumed: datasets and logged models (MLflow's `RunInputs`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RunInputs {
    pub dataset_inputs: Vec<DatasetInput>,
    /// Ids of logged models the run used.
    pub model_inputs: Vec<String>,
}

/// What a run produced (MLflow's `RunOutputs`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RunOutputs {
    pub model_outputs: Vec<ModelOutput>,
}

/// A logged-model search, already parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoggedModelQuery {
    pub experiment_ids: Vec<String>,
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    /// Restricts metric filters and orderings to metrics logged against these datasets
    /// (`(name, digest)`, digest optional).
    pub datasets: Vec<(String, Option<String>)>,
    pub max_results: u64,
    pub offset: u64,
}

/// Logged models and run inputs/outputs. Every mutation is audited.
#[async_trait]
pub trait LoggedModels: Send + Sync + 'static {
    async fn create_logged_model(&self, actor: &Actor, new: NewLoggedModel) -> Result<LoggedModel>;
    async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel>;
    /// Sets the final status (ready or upload failed) and its message.
    async fn finalize_logged_model(
        &self,
        actor: &Actor,
        model_id: &str,
        status: LoggedModelStatus,
        status_message: Option<String>,
    ) -> Result<LoggedModel>;
    async fn delete_logged_model(&self, actor: &Actor, model_id: &str) -> Result<()>;
    async fn set_logged_model_tags(&self, actor: &Actor, model_id: &str, tags: Vec<KeyValue>) -> Result<()>;
    async fn delete_logged_model_tag(&self, actor: &Actor, model_id: &str, key: &str) -> Result<()>;
    async fn log_logged_model_params(&self, actor: &Actor, model_id: &str, params: Vec<KeyValue>) -> Result<()>;
    async fn search_logged_models(&self, query: LoggedModelQuery) -> Result<Page<LoggedModel>>;

    /// Records datasets and logged models a run used (`runs/log-inputs`).
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
}
