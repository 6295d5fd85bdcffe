//! The registry's stored rows and their audit after-images.
//!
//! As in `sql::rows`, each audited table has one row type, one column list and one `image`
//! function shared by the writer and the verifier. Registered models are named in the audit log
//! by their internal key (`model_pk`), which never changes and is never reused, so that a rename
//! rewrites one entity rather than re-keying every version, tag and alias; the model's image
//! carries its name.

use cairn_core::audit::{Change, child_id, entity};
use cairn_core::registry::{HistoryEntry, HistoryKind, ModelVersionStatus, Stage};
use cairn_core::{Error, Result};
use serde_json::{Value, json};

use crate::sql::db::{Row, SqlValue};

/// Takes the columns of a row in order.
pub(super) struct Cols(std::vec::IntoIter<SqlValue>);

impl Cols {
    /// Starts at the first column of `row`.
    pub fn new(row: Row) -> Self {
        Cols(row.into_iter())
    }

    fn next(&mut self) -> SqlValue {
        self.0.next().unwrap_or(SqlValue::Null)
    }

    /// The next column, an integer.
    pub fn int(&mut self) -> Result<i64> {
        Ok(self.next().int()?)
    }

    /// The next column, an integer or NULL.
    pub fn opt_int(&mut self) -> Result<Option<i64>> {
        Ok(self.next().opt_int()?)
    }

    /// The next column, text.
    pub fn text(&mut self) -> Result<String> {
        Ok(self.next().into_text()?)
    }

    /// The next column, text or NULL.
    pub fn opt_text(&mut self) -> Result<Option<String>> {
        match self.next() {
            SqlValue::Null => Ok(None),
            other => Ok(Some(other.into_text()?)),
        }
    }
}

/// The audit id of a registered model.
pub fn model_id(model_pk: i64) -> String {
    model_pk.to_string()
}

/// The audit id of a model version.
pub fn version_id(model_pk: i64, version: i64) -> String {
    child_id(&model_pk.to_string(), &version.to_string())
}

/// A row of `registered_models`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub model_pk: i64,
    pub name: String,
    pub creation_time: i64,
    pub last_updated_time: i64,
    pub description: Option<String>,
    pub next_version: i64,
}

impl ModelRow {
    /// Columns in the order [`ModelRow::from_row`] reads them.
    pub const COLUMNS: &'static str = "model_pk, name, creation_time, last_updated_time, description, next_version";

    /// Reads a row selected with [`ModelRow::COLUMNS`].
    pub fn from_row(row: Row) -> Result<Self> {
        let mut c = Cols::new(row);
        Ok(ModelRow {
            model_pk: c.int()?,
            name: c.text()?,
            creation_time: c.int()?,
            last_updated_time: c.int()?,
            description: c.opt_text()?,
            next_version: c.int()?,
        })
    }

    /// The parameters binding this row to `(COLUMNS…, seq)`.
    pub fn params(&self, seq: i64) -> Vec<SqlValue> {
        vec![
            self.model_pk.into(),
            self.name.as_str().into(),
            self.creation_time.into(),
            self.last_updated_time.into(),
            self.description.clone().into(),
            self.next_version.into(),
            seq.into(),
        ]
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        json!({
            "name": self.name,
            "creation_time": self.creation_time,
            "last_updated_time": self.last_updated_time,
            "description": self.description,
            "next_version": self.next_version,
        })
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: entity::REGISTERED_MODEL, id: model_id(self.model_pk), after: Some(self.image()) }
    }
}

/// A row of `model_versions`. Stage and status stay as stored text, so that a row edited
/// behind the server's back is imaged as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    pub model_pk: i64,
    pub version: i64,
    pub creation_time: i64,
    pub last_updated_time: i64,
    pub user_id: String,
    pub current_stage: String,
    pub description: Option<String>,
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
    pub model_id: Option<String>,
    pub pin_id: Option<String>,
}

impl VersionRow {
    /// Columns in the order [`VersionRow::from_row`] reads them.
    pub const COLUMNS: &'static str = "model_pk, version, creation_time, last_updated_time, user_id, current_stage, \
         description, source, run_id, run_link, status, status_message, model_id, pin_id";

    /// [`VersionRow::COLUMNS`] qualified with the table alias `v`.
    pub const COLUMNS_V: &'static str = "v.model_pk, v.version, v.creation_time, v.last_updated_time, v.user_id, \
         v.current_stage, v.description, v.source, v.run_id, v.run_link, v.status, v.status_message, v.model_id, \
         v.pin_id";

    /// Reads a row selected with [`VersionRow::COLUMNS`].
    pub fn from_row(row: Row) -> Result<Self> {
        let mut c = Cols::new(row);
        Ok(VersionRow {
            model_pk: c.int()?,
            version: c.int()?,
            creation_time: c.int()?,
            last_updated_time: c.int()?,
            user_id: c.text()?,
            current_stage: c.text()?,
            description: c.opt_text()?,
            source: c.text()?,
            run_id: c.opt_text()?,
            run_link: c.opt_text()?,
            status: c.text()?,
            status_message: c.opt_text()?,
            model_id: c.opt_text()?,
            pin_id: c.opt_text()?,
        })
    }

    /// The parameters binding this row to `(COLUMNS…, seq)`.
    pub fn params(&self, seq: i64) -> Vec<SqlValue> {
        vec![
            self.model_pk.into(),
            self.version.into(),
            self.creation_time.into(),
            self.last_updated_time.into(),
            self.user_id.as_str().into(),
            self.current_stage.as_str().into(),
            self.description.clone().into(),
            self.source.as_str().into(),
            self.run_id.clone().into(),
            self.run_link.clone().into(),
            self.status.as_str().into(),
            self.status_message.clone().into(),
            self.model_id.clone().into(),
            self.pin_id.clone().into(),
            seq.into(),
        ]
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        json!({
            "model_pk": self.model_pk,
            "version": self.version,
            "creation_time": self.creation_time,
            "last_updated_time": self.last_updated_time,
            "user_id": self.user_id,
            "current_stage": self.current_stage,
            "description": self.description,
            "source": self.source,
            "run_id": self.run_id,
            "run_link": self.run_link,
            "status": self.status,
            "status_message": self.status_message,
            "model_id": self.model_id,
            "pin_id": self.pin_id,
        })
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: entity::MODEL_VERSION, id: version_id(self.model_pk, self.version), after: Some(self.image()) }
    }

    /// The stored stage, parsed.
    pub fn stage(&self) -> Result<Stage> {
        Stage::parse(&self.current_stage).map_err(|_| {
            Error::internal(format!("model version has unknown stage '{}' in the store", self.current_stage))
        })
    }

    /// The stored status, parsed.
    pub fn status(&self) -> Result<ModelVersionStatus> {
        ModelVersionStatus::parse(&self.status)
            .map_err(|_| Error::internal(format!("model version has unknown status '{}' in the store", self.status)))
    }
}

/// A keyed child of a model or version (a tag, or an alias whose value is the version).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedRow {
    pub entity: &'static str,
    /// `model_pk` or `model_pk/version`.
    pub owner: String,
    pub key: String,
    pub value: Value,
}

impl KeyedRow {
    /// A registered model's tag.
    pub fn model_tag(model_pk: i64, key: &str, value: &str) -> Self {
        KeyedRow {
            entity: entity::REGISTERED_MODEL_TAG,
            owner: model_id(model_pk),
            key: key.to_owned(),
            value: Value::String(value.to_owned()),
        }
    }

    /// A model version's tag.
    pub fn version_tag(model_pk: i64, version: i64, key: &str, value: &str) -> Self {
        KeyedRow {
            entity: entity::MODEL_VERSION_TAG,
            owner: version_id(model_pk, version),
            key: key.to_owned(),
            value: Value::String(value.to_owned()),
        }
    }

    /// A registered model's alias.
    pub fn alias(model_pk: i64, alias: &str, version: i64) -> Self {
        KeyedRow {
            entity: entity::REGISTERED_MODEL_ALIAS,
            owner: model_id(model_pk),
            key: alias.to_owned(),
            value: Value::from(version),
        }
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        json!({ "key": self.key, "value": self.value })
    }

    /// The audit id (`owner/key`).
    pub fn audit_id(&self) -> String {
        child_id(&self.owner, &self.key)
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: self.entity, id: self.audit_id(), after: Some(self.image()) }
    }

    /// The audit change recording that this row was removed.
    pub fn removal(&self) -> Change {
        Change { entity: self.entity, id: self.audit_id(), after: None }
    }
}

/// A row of `model_version_files`.
#[derive(Debug, Clone, PartialEq)]
pub struct PinnedFileRow {
    pub pin_id: String,
    pub path: String,
    pub digest: String,
    pub size: i64,
    pub created_time: i64,
}

impl PinnedFileRow {
    /// Columns in the order [`PinnedFileRow::from_row`] reads them.
    pub const COLUMNS: &'static str = "pin_id, path, digest, size, created_time";

    /// Reads a row selected with [`PinnedFileRow::COLUMNS`].
    pub fn from_row(row: Row) -> Result<Self> {
        let mut c = Cols::new(row);
        Ok(PinnedFileRow {
            pin_id: c.text()?,
            path: c.text()?,
            digest: c.text()?,
            size: c.int()?,
            created_time: c.int()?,
        })
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        json!({
            "pin_id": self.pin_id,
            "path": self.path,
            "digest": self.digest,
            "size": self.size,
            "created_time": self.created_time,
        })
    }

    fn audit_id(&self) -> String {
        child_id(&self.pin_id, &self.path)
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: entity::MODEL_VERSION_FILE, id: self.audit_id(), after: Some(self.image()) }
    }

    /// The audit change recording that this row was removed.
    pub fn removal(&self) -> Change {
        Change { entity: entity::MODEL_VERSION_FILE, id: self.audit_id(), after: None }
    }
}

/// A row of `model_history`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub seq: i64,
    pub entry: i64,
    pub model_pk: i64,
    pub time: i64,
    pub actor: String,
    pub kind: String,
    pub name: String,
    pub version: Option<i64>,
    pub alias: Option<String>,
    pub previous_version: Option<i64>,
    pub from_stage: Option<String>,
    pub to_stage: Option<String>,
    pub previous_name: Option<String>,
}

impl HistoryRow {
    /// Columns in the order [`HistoryRow::from_row`] reads them.
    pub const COLUMNS: &'static str = "seq, entry, model_pk, time, actor, kind, name, version, alias, \
         previous_version, from_stage, to_stage, previous_name";

    /// Reads a row selected with [`HistoryRow::COLUMNS`].
    pub fn from_row(row: Row) -> Result<Self> {
        let mut c = Cols::new(row);
        Ok(HistoryRow {
            seq: c.int()?,
            entry: c.int()?,
            model_pk: c.int()?,
            time: c.int()?,
            actor: c.text()?,
            kind: c.text()?,
            name: c.text()?,
            version: c.opt_int()?,
            alias: c.opt_text()?,
            previous_version: c.opt_int()?,
            from_stage: c.opt_text()?,
            to_stage: c.opt_text()?,
            previous_name: c.opt_text()?,
        })
    }

    /// The parameters binding this row to `(COLUMNS…)`.
    pub fn params(&self) -> Vec<SqlValue> {
        vec![
            self.seq.into(),
            self.entry.into(),
            self.model_pk.into(),
            self.time.into(),
            self.actor.as_str().into(),
            self.kind.as_str().into(),
            self.name.as_str().into(),
            self.version.into(),
            self.alias.clone().into(),
            self.previous_version.into(),
            self.from_stage.clone().into(),
            self.to_stage.clone().into(),
            self.previous_name.clone().into(),
        ]
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        json!({
            "model_pk": self.model_pk,
            "time": self.time,
            "actor": self.actor,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "previous_version": self.previous_version,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "previous_name": self.previous_name,
        })
    }

    /// The audit id (`seq/entry`).
    pub fn audit_id(&self) -> String {
        child_id(&self.seq.to_string(), &self.entry.to_string())
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: entity::MODEL_HISTORY, id: self.audit_id(), after: Some(self.image()) }
    }

    /// The domain value.
    pub fn into_domain(self) -> Result<HistoryEntry> {
        let stage = |s: Option<String>| -> Result<Option<Stage>> {
            s.map(|s| Stage::parse(&s).map_err(|_| Error::internal(format!("history has unknown stage '{s}'"))))
                .transpose()
        };
        Ok(HistoryEntry {
            seq: self.seq,
            time: self.time,
            actor: self.actor,
            kind: HistoryKind::parse(&self.kind)
                .map_err(|_| Error::internal(format!("history has unknown kind '{}'", self.kind)))?,
            name: self.name,
            version: self.version,
            alias: self.alias,
            previous_version: self.previous_version,
            from_stage: stage(self.from_stage)?,
            to_stage: stage(self.to_stage)?,
            previous_name: self.previous_name,
        })
    }
}
