//! Logged models and run inputs/outputs over SQL. PLACEHOLDER being replaced this session by the
//! logged-models work: every method answers an internal error until then.
#![allow(unused_variables)]

use async_trait::async_trait;
use cairn_core::logged_models::{
    DatasetInput, LoggedModel, LoggedModelQuery, LoggedModelStatus, LoggedModels, ModelOutput, NewLoggedModel,
    RunInputs, RunOutputs,
};
use cairn_core::model::{Actor, KeyValue, Page};
use cairn_core::{Error, Result};

use crate::sql::SqlStore;

fn pending(what: &str) -> Error {
    Error::internal(format!("{what} is not available yet"))
}

#[async_trait]
impl LoggedModels for SqlStore {
    async fn create_logged_model(&self, _actor: &Actor,  _new: NewLoggedModel) -> Result<LoggedModel> {
        Err(pending("create_logged_model"))
    }

    async fn get_logged_model(&self, _model_id: &str) -> Result<LoggedModel> {
        Err(pending("get_logged_model"))
    }

    async fn finalize_logged_model(
        &self,
        actor: &Actor,
        model_id: &str,
        status: LoggedModelStatus,
        status_message: Option<String>,
    ) -> Result<LoggedModel> {
        Err(pending("finalize_logged_model"))
    }

    async fn delete_logged_model(&self, _actor: &Actor,  _model_id: &str) -> Result<()> {
        Err(pending("delete_logged_model"))
    }

    async fn set_logged_model_tags(&self, _actor: &Actor,  _model_id: &str,  _tags: Vec<KeyValue>) -> Result<()> {
        Err(pending("set_logged_model_tags"))
    }

    async fn delete_logged_model_tag(&self, _actor: &Actor,  _model_id: &str,  _key: &str) -> Result<()> {
        Err(pending("delete_logged_model_tag"))
    }

    async fn log_logged_model_params(&self, _actor: &Actor,  _model_id: &str,  _params: Vec<KeyValue>) -> Result<()> {
        Err(pending("log_logged_model_params"))
    }

    async fn search_logged_models(&self, _query: LoggedModelQuery) -> Result<Page<LoggedModel>> {
        Err(pending("search_logged_models"))
    }

    async fn log_inputs(
        &self,
        actor: &Actor,
        run_id: &str,
        datasets: Vec<DatasetInput>,
        model_ids: Vec<String>,
    ) -> Result<()> {
        Err(pending("log_inputs"))
    }

    async fn log_outputs(&self, _actor: &Actor,  _run_id: &str,  _models: Vec<ModelOutput>) -> Result<()> {
        Err(pending("log_outputs"))
    }

    async fn run_inputs(&self, _run_id: &str) -> Result<RunInputs> {
        Err(pending("run_inputs"))
    }

    async fn run_outputs(&self, _run_id: &str) -> Result<RunOutputs> {
        Err(pending("run_outputs"))
    }
}

/// The files of logged model `model_id` (its artifact manifest, ordered by path), or `None`
/// when no such model exists. The registry pins a version registered from `models:/<id>` with
/// these. PLACEHOLDER until the logged-models work lands.
pub fn model_files(
    db: &mut dyn crate::sql::db::Db,
    model_id: &str,
) -> Result<Option<Vec<cairn_core::artifacts::ArtifactFile>>> {
    let _ = (db, model_id);
    Ok(None)
}
