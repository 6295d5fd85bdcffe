//! The model registry over SQL. PLACEHOLDER being replaced this session by the registry work:
//! every method answers an internal error until then.
#![allow(unused_variables)]

use async_trait::async_trait;
use cairn_core::artifacts::ArtifactFile;
use cairn_core::model::{Actor, KeyValue, Millis, Page};
use cairn_core::registry::{
    HistoryEntry, ModelRegistry, ModelVersion, ModelVersionQuery, NewModelVersion, NewRegisteredModel,
    RegisteredModel, RegisteredModelQuery, Stage,
};
use cairn_core::{Error, Result};

use crate::sql::SqlStore;

fn pending(what: &str) -> Error {
    Error::internal(format!("{what} is not available yet"))
}

#[async_trait]
impl ModelRegistry for SqlStore {
    async fn create_registered_model(&self, _actor: &Actor,  _new: NewRegisteredModel) -> Result<RegisteredModel> {
        Err(pending("create_registered_model"))
    }

    async fn get_registered_model(&self, _name: &str) -> Result<RegisteredModel> {
        Err(pending("get_registered_model"))
    }

    async fn rename_registered_model(&self, _actor: &Actor,  _name: &str,  _new_name: &str) -> Result<RegisteredModel> {
        Err(pending("rename_registered_model"))
    }

    async fn update_registered_model(
        &self,
        actor: &Actor,
        name: &str,
        description: Option<String>,
    ) -> Result<RegisteredModel> {
        Err(pending("update_registered_model"))
    }

    async fn delete_registered_model(&self, _actor: &Actor,  _name: &str) -> Result<()> {
        Err(pending("delete_registered_model"))
    }

    async fn search_registered_models(&self, _query: RegisteredModelQuery) -> Result<Page<RegisteredModel>> {
        Err(pending("search_registered_models"))
    }

    async fn set_registered_model_tag(&self, _actor: &Actor,  _name: &str,  _tag: KeyValue) -> Result<()> {
        Err(pending("set_registered_model_tag"))
    }

    async fn delete_registered_model_tag(&self, _actor: &Actor,  _name: &str,  _key: &str) -> Result<()> {
        Err(pending("delete_registered_model_tag"))
    }

    async fn get_latest_versions(&self, _name: &str,  _stages: Vec<Stage>) -> Result<Vec<ModelVersion>> {
        Err(pending("get_latest_versions"))
    }

    async fn create_model_version(&self, _actor: &Actor,  _new: NewModelVersion) -> Result<ModelVersion> {
        Err(pending("create_model_version"))
    }

    async fn get_model_version(&self, _name: &str,  _version: i64) -> Result<ModelVersion> {
        Err(pending("get_model_version"))
    }

    async fn update_model_version(
        &self,
        actor: &Actor,
        name: &str,
        version: i64,
        description: Option<String>,
    ) -> Result<ModelVersion> {
        Err(pending("update_model_version"))
    }

    async fn delete_model_version(&self, _actor: &Actor,  _name: &str,  _version: i64) -> Result<()> {
        Err(pending("delete_model_version"))
    }

    async fn search_model_versions(&self, _query: ModelVersionQuery) -> Result<Page<ModelVersion>> {
        Err(pending("search_model_versions"))
    }

    async fn set_model_version_tag(&self, _actor: &Actor,  _name: &str,  _version: i64,  _tag: KeyValue) -> Result<()> {
        Err(pending("set_model_version_tag"))
    }

    async fn delete_model_version_tag(&self, _actor: &Actor,  _name: &str,  _version: i64,  _key: &str) -> Result<()> {
        Err(pending("delete_model_version_tag"))
    }

    async fn transition_model_version_stage(
        &self,
        actor: &Actor,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        Err(pending("transition_model_version_stage"))
    }

    async fn set_registered_model_alias(&self, _actor: &Actor,  _name: &str,  _alias: &str,  _version: i64) -> Result<()> {
        Err(pending("set_registered_model_alias"))
    }

    async fn delete_registered_model_alias(&self, _actor: &Actor,  _name: &str,  _alias: &str) -> Result<()> {
        Err(pending("delete_registered_model_alias"))
    }

    async fn get_model_version_by_alias(&self, _name: &str,  _alias: &str) -> Result<ModelVersion> {
        Err(pending("get_model_version_by_alias"))
    }

    async fn model_history(&self, _name: &str,  _as_of: Option<Millis>) -> Result<Vec<HistoryEntry>> {
        Err(pending("model_history"))
    }

    async fn alias_as_of(&self, _name: &str,  _alias: &str,  _at: Millis) -> Result<Option<i64>> {
        Err(pending("alias_as_of"))
    }

    async fn pinned_files(&self, _pin_id: &str,  _prefix: &str) -> Result<Vec<ArtifactFile>> {
        Err(pending("pinned_files"))
    }
}
