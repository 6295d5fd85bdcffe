//! Logged models (MLflow 3) and what runs consume and produce, over SQL.
//!
//! [`models`] holds the models with their tags and params, [`metrics`] the metric points runs
//! link to them, [`inputs`] datasets and run inputs/outputs, [`rows`] the stored rows and their
//! audit images, [`verify`] the comparison of these tables with the audit log. A model's files
//! live in `logged_model_files`, reached through `sql::artifacts` with the model id as owner.
//! This module implements [`LoggedModels`] for [`SqlStore`]: validation on the caller's task,
//! writes on the writer, reads in one snapshot.

pub mod inputs;
pub mod metrics;
pub mod models;
pub mod rows;
pub mod verify;

use async_trait::async_trait;
use cairn_core::artifacts::ArtifactFile;
use cairn_core::logged_models::{
    DatasetInput, DatasetSummary, LoggedModel, LoggedModelQuery, LoggedModelStatus, LoggedModels, MetricLink,
    ModelOutput, NewLoggedModel, RunInputs, RunOutputs, validate_dataset_inputs, validate_model_key_values,
    validate_new_logged_model,
};
use cairn_core::model::{Actor, Batch, KeyValue, Page, ViewType};
use cairn_core::{Error, Result};

pub use verify::verify_live;

use crate::sql::db::Db;
use crate::sql::{SqlStore, artifacts, batch, search};

#[async_trait]
impl LoggedModels for SqlStore {
    async fn create_logged_model(&self, actor: &Actor, new: NewLoggedModel) -> Result<LoggedModel> {
        validate_new_logged_model(&new)?;
        let actor = actor.clone();
        self.writer.write(move |db, tx| models::create(db, tx, &actor, &new)).await
    }

    async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        let model_id = model_id.to_owned();
        self.read_consistent(move |db| models::get(db, &model_id, ViewType::ActiveOnly)).await
    }

    async fn get_logged_model_any_stage(&self, model_id: &str) -> Result<LoggedModel> {
        let model_id = model_id.to_owned();
        self.read_consistent(move |db| models::get(db, &model_id, ViewType::All)).await
    }

    async fn finalize_logged_model(
        &self,
        actor: &Actor,
        model_id: &str,
        status: LoggedModelStatus,
        status_message: Option<String>,
    ) -> Result<LoggedModel> {
        let (actor, model_id) = (actor.clone(), model_id.to_owned());
        self.writer
            .write(move |db, tx| models::finalize(db, tx, &actor, &model_id, status, status_message.as_deref()))
            .await
    }

    async fn delete_logged_model(&self, actor: &Actor, model_id: &str) -> Result<()> {
        let (actor, model_id) = (actor.clone(), model_id.to_owned());
        self.writer.write(move |db, tx| models::delete(db, tx, &actor, &model_id)).await
    }

    async fn set_logged_model_tags(&self, actor: &Actor, model_id: &str, tags: Vec<KeyValue>) -> Result<()> {
        validate_model_key_values("tag", &tags)?;
        let (actor, model_id) = (actor.clone(), model_id.to_owned());
        self.writer.write(move |db, tx| models::set_tags(db, tx, &actor, &model_id, &tags)).await
    }

    async fn delete_logged_model_tag(&self, actor: &Actor, model_id: &str, key: &str) -> Result<()> {
        let (actor, model_id, key) = (actor.clone(), model_id.to_owned(), key.to_owned());
        self.writer.write(move |db, tx| models::delete_tag(db, tx, &actor, &model_id, &key)).await
    }

    async fn log_logged_model_params(&self, actor: &Actor, model_id: &str, params: Vec<KeyValue>) -> Result<()> {
        validate_model_key_values("param", &params)?;
        let (actor, model_id) = (actor.clone(), model_id.to_owned());
        self.writer.write(move |db, tx| models::log_params(db, tx, &actor, &model_id, &params)).await
    }

    async fn search_logged_models(&self, query: LoggedModelQuery) -> Result<Page<LoggedModel>> {
        self.read_consistent(move |db| {
            let page = search::search_logged_models(db, &query)?;
            Ok(Page::new(models::hydrate(db, &page.items)?, page.next_offset))
        })
        .await
    }

    async fn log_batch_linked(
        &self,
        actor: &Actor,
        run_id: &str,
        batch: Batch,
        links: Vec<Option<MetricLink>>,
    ) -> Result<()> {
        batch::validate(run_id, &batch)?;
        if links.len() != batch.metrics.len() {
            return Err(Error::internal("metric links do not match the batch's metrics"));
        }
        let (actor, run_id) = (actor.clone(), run_id.to_owned());
        self.writer
            .write(move |db, tx| {
                batch::log_batch_with(db, tx, &actor, &run_id, &batch, |db, seq, run, payload| {
                    payload.changes.extend(metrics::log(db, seq, run, &batch.metrics, &links)?);
                    Ok(())
                })
            })
            .await
    }

    async fn log_inputs(
        &self,
        actor: &Actor,
        run_id: &str,
        datasets: Vec<DatasetInput>,
        model_ids: Vec<String>,
    ) -> Result<()> {
        cairn_core::validation::validate_run_id(run_id)?;
        validate_dataset_inputs(&datasets)?;
        let (actor, run_id) = (actor.clone(), run_id.to_owned());
        self.writer.write(move |db, tx| inputs::log_inputs(db, tx, &actor, &run_id, &datasets, &model_ids)).await
    }

    async fn log_outputs(&self, actor: &Actor, run_id: &str, models: Vec<ModelOutput>) -> Result<()> {
        let (actor, run_id) = (actor.clone(), run_id.to_owned());
        self.writer.write(move |db, tx| inputs::log_outputs(db, tx, &actor, &run_id, &models)).await
    }

    async fn run_inputs(&self, run_id: &str) -> Result<RunInputs> {
        let run_id = run_id.to_owned();
        self.read_consistent(move |db| Ok(inputs::of_run(db, &run_id)?.0)).await
    }

    async fn run_outputs(&self, run_id: &str) -> Result<RunOutputs> {
        let run_id = run_id.to_owned();
        self.read_consistent(move |db| Ok(inputs::of_run(db, &run_id)?.1)).await
    }

    async fn search_datasets(&self, experiment_ids: &[String]) -> Result<Vec<DatasetSummary>> {
        let ids: Vec<i64> = experiment_ids.iter().filter_map(|id| id.parse().ok()).collect();
        self.read_consistent(move |db| inputs::dataset_summaries(db, &ids)).await
    }
}

/// The files of logged model `model_id` (its artifact manifest, ordered by path), or `None`
/// when no such model exists (deleted models still have their files). The registry pins a
/// version registered from `models:/<id>` with these.
pub fn model_files(db: &mut dyn Db, model_id: &str) -> Result<Option<Vec<ArtifactFile>>> {
    if !cairn_core::logged_models::is_model_id(model_id) || models::find(db, model_id)?.is_none() {
        return Ok(None);
    }
    artifacts::list(db, model_id, "").map(Some)
}
