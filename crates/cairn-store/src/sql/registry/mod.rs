//! The model registry over SQL: registered models, versions, tags, aliases and stages, the
//! append-only history of every alias move and stage transition, and the pinned files of each
//! version.
//!
//! Like the rest of the store, mutations are validated on the caller's task, then run by the
//! writer, each with its history entries and exactly one audit event in the same transaction;
//! reads run on the read pool inside one snapshot. One module per concept: [`models`],
//! [`versions`], [`aliases`], [`history`], [`pinning`], [`search`]; [`rows`] holds the stored
//! rows and their audit images, [`verify`] compares the live tables with the log.

pub mod aliases;
pub mod history;
pub mod models;
pub mod pinning;
pub mod rows;
pub mod search;
pub mod verify;
pub mod versions;

use async_trait::async_trait;
use cairn_core::Result;
use cairn_core::artifacts::ArtifactFile;
use cairn_core::model::{Actor, KeyValue, Millis, Page};
use cairn_core::registry::validation::{
    validate_alias_name, validate_description, validate_model_name, validate_model_version_tag,
    validate_new_model_name, validate_registered_model_tag, validate_settable_alias, validate_tag_key,
};
use cairn_core::registry::{
    HistoryEntry, ModelRegistry, ModelVersion, ModelVersionQuery, NewModelVersion, NewRegisteredModel, RegisteredModel,
    RegisteredModelQuery, Stage,
};

pub use verify::verify_live;

use crate::sql::SqlStore;

#[async_trait]
impl ModelRegistry for SqlStore {
    async fn create_registered_model(&self, actor: &Actor, new: NewRegisteredModel) -> Result<RegisteredModel> {
        models::validate_new(&new)?;
        let actor = actor.clone();
        self.writer.write(move |db, tx| models::create(db, tx, &actor, &new)).await
    }

    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let name = name.to_owned();
        self.read_consistent(move |db| models::get(db, &name)).await
    }

    async fn rename_registered_model(&self, actor: &Actor, name: &str, new_name: &str) -> Result<RegisteredModel> {
        validate_model_name(name)?;
        validate_new_model_name(new_name)?;
        let (actor, name, new_name) = (actor.clone(), name.to_owned(), new_name.to_owned());
        self.writer.write(move |db, tx| models::rename(db, tx, &actor, &name, &new_name)).await
    }

    async fn update_registered_model(
        &self,
        actor: &Actor,
        name: &str,
        description: Option<String>,
    ) -> Result<RegisteredModel> {
        validate_model_name(name)?;
        validate_description(description.as_deref())?;
        let (actor, name) = (actor.clone(), name.to_owned());
        self.writer.write(move |db, tx| models::update(db, tx, &actor, &name, description.as_deref())).await
    }

    async fn delete_registered_model(&self, actor: &Actor, name: &str) -> Result<()> {
        validate_model_name(name)?;
        let (actor, name) = (actor.clone(), name.to_owned());
        self.writer.write(move |db, tx| models::delete(db, tx, &actor, &name)).await
    }

    async fn search_registered_models(&self, query: RegisteredModelQuery) -> Result<Page<RegisteredModel>> {
        self.read_consistent(move |db| search::registered_models(db, &query)).await
    }

    async fn set_registered_model_tag(&self, actor: &Actor, name: &str, tag: KeyValue) -> Result<()> {
        validate_model_name(name)?;
        validate_registered_model_tag(&tag)?;
        let (actor, name) = (actor.clone(), name.to_owned());
        self.writer.write(move |db, tx| models::set_tag(db, tx, &actor, &name, &tag)).await
    }

    async fn delete_registered_model_tag(&self, actor: &Actor, name: &str, key: &str) -> Result<()> {
        validate_model_name(name)?;
        validate_tag_key(key)?;
        let (actor, name, key) = (actor.clone(), name.to_owned(), key.to_owned());
        self.writer.write(move |db, tx| models::delete_tag(db, tx, &actor, &name, &key)).await
    }

    async fn get_latest_versions(&self, name: &str, stages: Vec<Stage>) -> Result<Vec<ModelVersion>> {
        let name = name.to_owned();
        self.read_consistent(move |db| models::latest_versions(db, &name, &stages)).await
    }

    async fn create_model_version(&self, actor: &Actor, new: NewModelVersion) -> Result<ModelVersion> {
        versions::validate_new(&new)?;
        let actor = actor.clone();
        self.writer.write(move |db, tx| versions::create(db, tx, &actor, &new)).await
    }

    async fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        let name = name.to_owned();
        self.read_consistent(move |db| versions::get(db, &name, version)).await
    }

    async fn update_model_version(
        &self,
        actor: &Actor,
        name: &str,
        version: i64,
        description: Option<String>,
    ) -> Result<ModelVersion> {
        validate_model_name(name)?;
        validate_description(description.as_deref())?;
        let (actor, name) = (actor.clone(), name.to_owned());
        self.writer.write(move |db, tx| versions::update(db, tx, &actor, &name, version, description.as_deref())).await
    }

    async fn delete_model_version(&self, actor: &Actor, name: &str, version: i64) -> Result<()> {
        validate_model_name(name)?;
        let (actor, name) = (actor.clone(), name.to_owned());
        self.writer.write(move |db, tx| versions::delete(db, tx, &actor, &name, version)).await
    }

    async fn search_model_versions(&self, query: ModelVersionQuery) -> Result<Page<ModelVersion>> {
        self.read_consistent(move |db| search::model_versions(db, &query)).await
    }

    async fn set_model_version_tag(&self, actor: &Actor, name: &str, version: i64, tag: KeyValue) -> Result<()> {
        validate_model_name(name)?;
        validate_model_version_tag(&tag)?;
        let (actor, name) = (actor.clone(), name.to_owned());
        self.writer.write(move |db, tx| versions::set_tag(db, tx, &actor, &name, version, &tag)).await
    }

    async fn delete_model_version_tag(&self, actor: &Actor, name: &str, version: i64, key: &str) -> Result<()> {
        validate_model_name(name)?;
        validate_tag_key(key)?;
        let (actor, name, key) = (actor.clone(), name.to_owned(), key.to_owned());
        self.writer.write(move |db, tx| versions::delete_tag(db, tx, &actor, &name, version, &key)).await
    }

    async fn transition_model_version_stage(
        &self,
        actor: &Actor,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        validate_model_name(name)?;
        let (actor, name) = (actor.clone(), name.to_owned());
        self.writer
            .write(move |db, tx| versions::transition(db, tx, &actor, &name, version, stage, archive_existing))
            .await
    }

    async fn set_registered_model_alias(&self, actor: &Actor, name: &str, alias: &str, version: i64) -> Result<()> {
        validate_model_name(name)?;
        validate_settable_alias(alias)?;
        let (actor, name, alias) = (actor.clone(), name.to_owned(), alias.to_owned());
        self.writer.write(move |db, tx| aliases::set(db, tx, &actor, &name, &alias, version)).await
    }

    async fn delete_registered_model_alias(&self, actor: &Actor, name: &str, alias: &str) -> Result<()> {
        validate_model_name(name)?;
        validate_alias_name(alias)?;
        let (actor, name, alias) = (actor.clone(), name.to_owned(), alias.to_owned());
        self.writer.write(move |db, tx| aliases::delete(db, tx, &actor, &name, &alias)).await
    }

    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let (name, alias) = (name.to_owned(), alias.to_owned());
        self.read_consistent(move |db| aliases::get_version(db, &name, &alias)).await
    }

    async fn model_history(&self, name: &str, as_of: Option<Millis>) -> Result<Vec<HistoryEntry>> {
        let name = name.to_owned();
        self.read_consistent(move |db| history::model_history(db, &name, as_of)).await
    }

    async fn alias_as_of(&self, name: &str, alias: &str, at: Millis) -> Result<Option<i64>> {
        validate_alias_name(alias)?;
        let (name, alias) = (name.to_owned(), alias.to_owned());
        self.read_consistent(move |db| history::alias_as_of(db, &name, &alias, at)).await
    }

    async fn pinned_files(&self, pin_id: &str, prefix: &str) -> Result<Vec<ArtifactFile>> {
        let (pin_id, prefix) = (pin_id.to_owned(), prefix.to_owned());
        self.read_consistent(move |db| pinning::pinned_files(db, &pin_id, &prefix)).await
    }
}
