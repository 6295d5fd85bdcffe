//! Stored rows and their audit after-images.
//!
//! Each audited table has one row type here, one `SELECT` column list that reads it and one
//! `image` function that turns it into the canonical JSON recorded in the audit log. Writes
//! build the row, insert it and record `image()` of that same value; verification reads the
//! live row with the same column list and compares `image()` of it. Because both sides go
//! through the same function, the recorded and the recomputed images cannot drift apart.
//!
//! Rows keep the raw stored values (stages and statuses as text) so that a row edited behind
//! the server's back is imaged as it is, not as it would parse.

use cairn_core::audit::{Change, child_id, entity};
use cairn_core::model::{Experiment, KeyValue, LifecycleStage, RunInfo, RunStatus};
use cairn_core::{Error, Result};
use serde_json::{Value, json};

use crate::sql::db::{DbError, Row, SqlValue};

fn column(row: &mut Row, i: usize) -> Result<SqlValue, DbError> {
    row.get_mut(i)
        .map(|v| std::mem::replace(v, SqlValue::Null))
        .ok_or_else(|| DbError::Other(format!("row has no column {i}")))
}

/// A row of `experiments`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRow {
    pub experiment_id: i64,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub creation_time: i64,
    pub last_update_time: i64,
}

impl ExperimentRow {
    /// Columns in the order [`ExperimentRow::from_row`] reads them.
    pub const COLUMNS: &'static str =
        "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";

    /// Reads a row selected with [`ExperimentRow::COLUMNS`].
    pub fn from_row(mut row: Row) -> Result<Self> {
        Ok(ExperimentRow {
            experiment_id: column(&mut row, 0)?.int()?,
            name: column(&mut row, 1)?.into_text()?,
            artifact_location: column(&mut row, 2)?.into_text()?,
            lifecycle_stage: column(&mut row, 3)?.into_text()?,
            creation_time: column(&mut row, 4)?.int()?,
            last_update_time: column(&mut row, 5)?.int()?,
        })
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        json!({
            "experiment_id": self.experiment_id.to_string(),
            "name": self.name,
            "artifact_location": self.artifact_location,
            "lifecycle_stage": self.lifecycle_stage,
            "creation_time": self.creation_time,
            "last_update_time": self.last_update_time,
        })
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: entity::EXPERIMENT, id: self.experiment_id.to_string(), after: Some(self.image()) }
    }

    /// Whether the experiment is live.
    pub fn is_active(&self) -> bool {
        self.lifecycle_stage == LifecycleStage::Active.as_str()
    }

    /// The domain value, with its tags.
    pub fn into_domain(self, tags: Vec<KeyValue>) -> Result<Experiment> {
        Ok(Experiment {
            experiment_id: self.experiment_id.to_string(),
            name: self.name,
            artifact_location: self.artifact_location,
            lifecycle_stage: parse_stage(&self.lifecycle_stage)?,
            creation_time: self.creation_time,
            last_update_time: self.last_update_time,
            tags,
        })
    }
}

/// A row of `runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Internal surrogate key; not part of the image.
    pub run_pk: i64,
    pub run_id: String,
    pub experiment_id: i64,
    pub name: String,
    pub user_id: String,
    pub status: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub lifecycle_stage: String,
    pub deleted_time: Option<i64>,
    pub artifact_uri: String,
}

impl RunRow {
    /// Columns in the order [`RunRow::from_row`] reads them.
    pub const COLUMNS: &'static str = "run_pk, run_id, experiment_id, name, user_id, status, start_time, \
         end_time, lifecycle_stage, deleted_time, artifact_uri";

    /// Reads a row selected with [`RunRow::COLUMNS`].
    pub fn from_row(mut row: Row) -> Result<Self> {
        Ok(RunRow {
            run_pk: column(&mut row, 0)?.int()?,
            run_id: column(&mut row, 1)?.into_text()?,
            experiment_id: column(&mut row, 2)?.int()?,
            name: column(&mut row, 3)?.into_text()?,
            user_id: column(&mut row, 4)?.into_text()?,
            status: column(&mut row, 5)?.into_text()?,
            start_time: column(&mut row, 6)?.opt_int()?,
            end_time: column(&mut row, 7)?.opt_int()?,
            lifecycle_stage: column(&mut row, 8)?.into_text()?,
            deleted_time: column(&mut row, 9)?.opt_int()?,
            artifact_uri: column(&mut row, 10)?.into_text()?,
        })
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        json!({
            "run_id": self.run_id,
            "experiment_id": self.experiment_id.to_string(),
            "name": self.name,
            "user_id": self.user_id,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "lifecycle_stage": self.lifecycle_stage,
            "deleted_time": self.deleted_time,
            "artifact_uri": self.artifact_uri,
        })
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: entity::RUN, id: self.run_id.clone(), after: Some(self.image()) }
    }

    /// Whether the run is live.
    pub fn is_active(&self) -> bool {
        self.lifecycle_stage == LifecycleStage::Active.as_str()
    }

    /// The parameters binding this row to `INSERT INTO runs (COLUMNS…, seq)`.
    pub fn insert_params(&self, seq: i64) -> Vec<SqlValue> {
        vec![
            self.run_pk.into(),
            self.run_id.as_str().into(),
            self.experiment_id.into(),
            self.name.as_str().into(),
            self.user_id.as_str().into(),
            self.status.as_str().into(),
            self.start_time.into(),
            self.end_time.into(),
            self.lifecycle_stage.as_str().into(),
            self.deleted_time.into(),
            self.artifact_uri.as_str().into(),
            seq.into(),
        ]
    }

    /// The domain value.
    pub fn to_info(&self) -> Result<RunInfo> {
        Ok(RunInfo {
            run_id: self.run_id.clone(),
            run_name: self.name.clone(),
            experiment_id: self.experiment_id.to_string(),
            user_id: self.user_id.clone(),
            status: RunStatus::parse(&self.status)
                .map_err(|_| Error::internal(format!("run {} has unknown status '{}'", self.run_id, self.status)))?,
            start_time: self.start_time,
            end_time: self.end_time,
            artifact_uri: self.artifact_uri.clone(),
            lifecycle_stage: parse_stage(&self.lifecycle_stage)?,
        })
    }
}

/// Which keyed child table a [`ChildRow`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    ExperimentTag,
    Param,
    RunTag,
}

impl ChildKind {
    /// The audit entity name.
    pub fn entity(self) -> &'static str {
        match self {
            ChildKind::ExperimentTag => entity::EXPERIMENT_TAG,
            ChildKind::Param => entity::PARAM,
            ChildKind::RunTag => entity::RUN_TAG,
        }
    }

    fn owner_field(self) -> &'static str {
        match self {
            ChildKind::ExperimentTag => "experiment_id",
            ChildKind::Param | ChildKind::RunTag => "run_id",
        }
    }
}

/// A keyed child row (experiment tag, param or run tag), named by its owner's public id.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildRow {
    pub kind: ChildKind,
    /// The experiment id or run id the row belongs to.
    pub owner: String,
    pub key: String,
    pub value: String,
}

impl ChildRow {
    /// The audit entity id (`owner/key`).
    pub fn audit_id(&self) -> String {
        child_id(&self.owner, &self.key)
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        let mut image = json!({ "key": self.key, "value": self.value });
        image[self.kind.owner_field()] = Value::String(self.owner.clone());
        image
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: self.kind.entity(), id: self.audit_id(), after: Some(self.image()) }
    }

    /// The audit change recording that this row was removed.
    pub fn removal(kind: ChildKind, owner: &str, key: &str) -> Change {
        Change { entity: kind.entity(), id: child_id(owner, key), after: None }
    }
}

fn parse_stage(s: &str) -> Result<LifecycleStage> {
    LifecycleStage::parse(s).map_err(|_| Error::internal(format!("unknown lifecycle stage '{s}' in the store")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_images_name_their_owner() {
        let tag = ChildRow { kind: ChildKind::ExperimentTag, owner: "3".into(), key: "k".into(), value: "v".into() };
        assert_eq!(tag.image(), json!({"experiment_id": "3", "key": "k", "value": "v"}));
        assert_eq!(tag.audit_id(), "3/k");
        let param = ChildRow { kind: ChildKind::Param, owner: "abc".into(), key: "lr".into(), value: "0.1".into() };
        assert_eq!(param.change().entity, entity::PARAM);
        assert_eq!(param.image()["run_id"], "abc");
    }

    #[test]
    fn run_image_excludes_the_surrogate_key() {
        let row = RunRow {
            run_pk: 7,
            run_id: "r".into(),
            experiment_id: 1,
            name: "n".into(),
            user_id: "u".into(),
            status: "RUNNING".into(),
            start_time: Some(1),
            end_time: None,
            lifecycle_stage: "active".into(),
            deleted_time: None,
            artifact_uri: "a".into(),
        };
        let image = row.image();
        assert!(image.get("run_pk").is_none());
        assert_eq!(image["end_time"], Value::Null);
        assert_eq!(row.insert_params(9).len(), RunRow::COLUMNS.split(',').count() + 1);
    }
}
