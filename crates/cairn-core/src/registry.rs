//! The model registry: registered models, their numbered versions, tags, aliases and stages,
//! and the history Cairn keeps of every alias move and stage transition.
//!
//! MLflow overwrites an alias or a stage in place, so "what did `@champion` point to last
//! Tuesday" cannot be answered from its store. Cairn records each change as a history entry
//! (who, when, from what, to what) in the same audited transaction as the change itself, which
//! makes [`ModelRegistry::alias_as_of`] a lookup rather than archaeology.
//!
//! A model version's files are pinned at registration: the store copies the digests of the
//! files under its source (a run's artifact folder or a logged model) into the version's own
//! manifest, so later changes to the run's files cannot change what the version serves.

pub mod validation;

use async_trait::async_trait;
use serde::Serialize;

use crate::artifacts::ArtifactFile;
use crate::model::{Actor, KeyValue, Millis, Page};
use crate::search::{Filter, OrderBy};
use crate::{Error, Result};

/// MLflow's default page size for registry searches.
pub const REGISTRY_SEARCH_MAX_RESULTS_DEFAULT: u64 = 100;
/// The prefix of a model version's pin id, which names its pinned files in artifact paths.
pub const PIN_ID_PREFIX: &str = "mv-";

/// A model version's deployment stage (deprecated in MLflow 3 but still used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Stage {
    None,
    Staging,
    Production,
    Archived,
}

impl Stage {
    /// Every stage, in MLflow's order.
    pub const ALL: [Stage; 4] = [Stage::None, Stage::Staging, Stage::Production, Stage::Archived];

    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Parses a stage name case-insensitively, as MLflow does.
    pub fn parse(s: &str) -> Result<Self> {
        Stage::ALL.into_iter().find(|stage| stage.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            Error::invalid(format!(
                "Invalid Model Version stage: {s}. Value must be one of None, Staging, Production, Archived."
            ))
        })
    }
}

/// Where a model version's registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ModelVersionStatus {
    PendingRegistration,
    FailedRegistration,
    Ready,
}

impl ModelVersionStatus {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelVersionStatus::PendingRegistration => "PENDING_REGISTRATION",
            ModelVersionStatus::FailedRegistration => "FAILED_REGISTRATION",
            ModelVersionStatus::Ready => "READY",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "PENDING_REGISTRATION" => Ok(ModelVersionStatus::PendingRegistration),
            "FAILED_REGISTRATION" => Ok(ModelVersionStatus::FailedRegistration),
            "READY" => Ok(ModelVersionStatus::Ready),
            other => Err(Error::invalid(format!("unknown model version status '{other}'"))),
        }
    }
}

/// An alias of a registered model and the version it points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelAlias {
    pub alias: String,
    pub version: i64,
}

/// A registered model with its tags, aliases and the latest version in each stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: Millis,
    pub last_updated_timestamp: Millis,
    pub description: Option<String>,
    pub tags: Vec<KeyValue>,
    pub aliases: Vec<ModelAlias>,
    /// The highest version in each stage that has one (MLflow's `latest_versions`).
    pub latest_versions: Vec<ModelVersion>,
}

/// One version of a registered model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: i64,
    pub creation_timestamp: Millis,
    pub last_updated_timestamp: Millis,
    pub user_id: String,
    pub current_stage: Stage,
    pub description: Option<String>,
    /// The source as the client gave it (`runs:/…`, `models:/m-…`, `mlflow-artifacts:/…`, …).
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub status: ModelVersionStatus,
    pub status_message: Option<String>,
    pub tags: Vec<KeyValue>,
    pub aliases: Vec<String>,
    /// The logged model this version registers, if any.
    pub model_id: Option<String>,
    /// Identifies this version's pinned files (`mv-` and 32 hex digits) when its source lies in
    /// Cairn; `None` when the source is outside (an external URI nothing could pin).
    pub pin_id: Option<String>,
}

/// What a caller supplies to create a registered model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewRegisteredModel {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<KeyValue>,
}

/// What a caller supplies to create a model version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<KeyValue>,
    pub model_id: Option<String>,
    pub user_id: String,
}

/// A registered-model search, already parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegisteredModelQuery {
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    pub max_results: u64,
    pub offset: u64,
}

/// A model-version search, already parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelVersionQuery {
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    pub max_results: u64,
    pub offset: u64,
}

/// What kind of registry change a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    ModelCreated,
    ModelRenamed,
    ModelDeleted,
    VersionCreated,
    VersionDeleted,
    StageTransition,
    AliasSet,
    AliasDeleted,
}

impl HistoryKind {
    /// Every kind.
    pub const ALL: [HistoryKind; 8] = [
        HistoryKind::ModelCreated,
        HistoryKind::ModelRenamed,
        HistoryKind::ModelDeleted,
        HistoryKind::VersionCreated,
        HistoryKind::VersionDeleted,
        HistoryKind::StageTransition,
        HistoryKind::AliasSet,
        HistoryKind::AliasDeleted,
    ];

    /// The wire and storage spelling (snake case, as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::ModelCreated => "model_created",
            HistoryKind::ModelRenamed => "model_renamed",
            HistoryKind::ModelDeleted => "model_deleted",
            HistoryKind::VersionCreated => "version_created",
            HistoryKind::VersionDeleted => "version_deleted",
            HistoryKind::StageTransition => "stage_transition",
            HistoryKind::AliasSet => "alias_set",
            HistoryKind::AliasDeleted => "alias_deleted",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Result<Self> {
        HistoryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::invalid(format!("unknown history entry kind '{s}'")))
    }
}

/// One change in a registered model's history. Entries are never updated or removed, not even
/// when the model is deleted, so the timeline stays answerable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// The audit event that made the change.
    pub seq: i64,
    pub time: Millis,
    pub actor: String,
    pub kind: HistoryKind,
    /// The model's name when the change was made.
    pub name: String,
    /// The version concerned (the alias target for `alias_set`).
    pub version: Option<i64>,
    pub alias: Option<String>,
    /// For `alias_set`/`alias_deleted`: the version the alias pointed to before.
    pub previous_version: Option<i64>,
    pub from_stage: Option<Stage>,
    pub to_stage: Option<Stage>,
    /// For `model_renamed`: the name before.
    pub previous_name: Option<String>,
}

/// Parses a model version number as MLflow's wire carries it (a string).
pub fn parse_version(s: &str) -> Result<i64> {
    s.trim()
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| Error::invalid(format!("Parameter 'version' must be an integer, got '{s}'.")))
}

/// The model registry. Every mutation is validated, applied atomically with its history entries
/// and audited like every other store write.
#[async_trait]
pub trait ModelRegistry: Send + Sync + 'static {
    async fn create_registered_model(&self, actor: &Actor, new: NewRegisteredModel) -> Result<RegisteredModel>;
    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel>;
    async fn rename_registered_model(&self, actor: &Actor, name: &str, new_name: &str) -> Result<RegisteredModel>;
    /// Sets the description; `None` clears it.
    async fn update_registered_model(
        &self,
        actor: &Actor,
        name: &str,
        description: Option<String>,
    ) -> Result<RegisteredModel>;
    /// Deletes the model with its versions, tags and aliases. History entries stay.
    async fn delete_registered_model(&self, actor: &Actor, name: &str) -> Result<()>;
    async fn search_registered_models(&self, query: RegisteredModelQuery) -> Result<Page<RegisteredModel>>;
    async fn set_registered_model_tag(&self, actor: &Actor, name: &str, tag: KeyValue) -> Result<()>;
    async fn delete_registered_model_tag(&self, actor: &Actor, name: &str, key: &str) -> Result<()>;
    /// The highest version in each of `stages` (every stage when empty).
    async fn get_latest_versions(&self, name: &str, stages: Vec<Stage>) -> Result<Vec<ModelVersion>>;

    /// Creates the next version, pinning the files of its source when the source lies in Cairn.
    async fn create_model_version(&self, actor: &Actor, new: NewModelVersion) -> Result<ModelVersion>;
    async fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion>;
    async fn update_model_version(
        &self,
        actor: &Actor,
        name: &str,
        version: i64,
        description: Option<String>,
    ) -> Result<ModelVersion>;
    async fn delete_model_version(&self, actor: &Actor, name: &str, version: i64) -> Result<()>;
    async fn search_model_versions(&self, query: ModelVersionQuery) -> Result<Page<ModelVersion>>;
    async fn set_model_version_tag(&self, actor: &Actor, name: &str, version: i64, tag: KeyValue) -> Result<()>;
    async fn delete_model_version_tag(&self, actor: &Actor, name: &str, version: i64, key: &str) -> Result<()>;
    /// Moves a version to `stage`; with `archive_existing`, other versions in that stage move
    /// to `Archived` (each move recorded in the history).
    async fn transition_model_version_stage(
        &self,
        actor: &Actor,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion>;

    async fn set_registered_model_alias(&self, actor: &Actor, name: &str, alias: &str, version: i64) -> Result<()>;
    async fn delete_registered_model_alias(&self, actor: &Actor, name: &str, alias: &str) -> Result<()>;
    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion>;

    /// The history of the model currently or formerly called `name`, oldest first, up to `as_of`
    /// when given.
    async fn model_history(&self, name: &str, as_of: Option<Millis>) -> Result<Vec<HistoryEntry>>;
    /// The version `alias` of `name` pointed to at time `at`, if it pointed anywhere then.
    async fn alias_as_of(&self, name: &str, alias: &str, at: Millis) -> Result<Option<i64>>;

    /// The files pinned for the version whose pin id is `pin_id`, at or under `prefix`
    /// (`""` for all), ordered by path. Not found when no version has that pin id.
    async fn pinned_files(&self, pin_id: &str, prefix: &str) -> Result<Vec<ArtifactFile>>;
}
