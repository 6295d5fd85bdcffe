//! The stored rows of logged models, datasets and run inputs/outputs, and their audit
//! after-images. As in `sql::rows`, writers and the verifier image a row through the same
//! function, so the recorded and the recomputed images cannot drift apart; surrogate keys stay
//! out of images, which name models, runs and datasets by their public ids.

use cairn_core::audit::{Change, canonical_json, child_id, entity, sha256_hex};
use cairn_core::logged_models::{Dataset, LoggedModel, LoggedModelStatus, ModelMetric};
use cairn_core::model::{KeyValue, LifecycleStage};
use cairn_core::{Error, Result};
use serde_json::{Value, json};

use crate::sql::db::{Row, SqlValue};

fn next(it: &mut impl Iterator<Item = SqlValue>) -> SqlValue {
    it.next().unwrap_or(SqlValue::Null)
}

fn opt_text(v: SqlValue) -> Result<Option<String>> {
    match v {
        SqlValue::Null => Ok(None),
        other => Ok(Some(other.into_text()?)),
    }
}

/// A row of `logged_models`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    /// Internal surrogate key; not part of the image.
    pub model_pk: i64,
    pub model_id: String,
    pub experiment_id: i64,
    pub name: String,
    pub artifact_location: String,
    pub creation_time: i64,
    pub last_updated_time: i64,
    pub status: String,
    pub status_message: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub lifecycle_stage: String,
}

impl ModelRow {
    /// Columns in the order [`ModelRow::from_row`] reads them.
    pub const COLUMNS: &'static str = "model_pk, model_id, experiment_id, name, artifact_location, creation_time, \
         last_updated_time, status, status_message, model_type, source_run_id, lifecycle_stage";

    /// [`ModelRow::COLUMNS`] qualified with the table alias `m`.
    pub const COLUMNS_M: &'static str = "m.model_pk, m.model_id, m.experiment_id, m.name, m.artifact_location, \
         m.creation_time, m.last_updated_time, m.status, m.status_message, m.model_type, m.source_run_id, \
         m.lifecycle_stage";

    /// Reads a row selected with [`ModelRow::COLUMNS`].
    pub fn from_row(row: Row) -> Result<Self> {
        let mut it = row.into_iter();
        Ok(ModelRow {
            model_pk: next(&mut it).int()?,
            model_id: next(&mut it).into_text()?,
            experiment_id: next(&mut it).int()?,
            name: next(&mut it).into_text()?,
            artifact_location: next(&mut it).into_text()?,
            creation_time: next(&mut it).int()?,
            last_updated_time: next(&mut it).int()?,
            status: next(&mut it).into_text()?,
            status_message: opt_text(next(&mut it))?,
            model_type: opt_text(next(&mut it))?,
            source_run_id: opt_text(next(&mut it))?,
            lifecycle_stage: next(&mut it).into_text()?,
        })
    }

    /// The parameters binding this row to `INSERT INTO logged_models (COLUMNS…, seq)`, or to
    /// the full `UPDATE` in `models::write_row`.
    pub fn params(&self, seq: i64) -> Vec<SqlValue> {
        vec![
            self.model_pk.into(),
            self.model_id.as_str().into(),
            self.experiment_id.into(),
            self.name.as_str().into(),
            self.artifact_location.as_str().into(),
            self.creation_time.into(),
            self.last_updated_time.into(),
            self.status.as_str().into(),
            self.status_message.as_deref().into(),
            self.model_type.as_deref().into(),
            self.source_run_id.as_deref().into(),
            self.lifecycle_stage.as_str().into(),
            seq.into(),
        ]
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        json!({
            "model_id": self.model_id,
            "experiment_id": self.experiment_id.to_string(),
            "name": self.name,
            "artifact_location": self.artifact_location,
            "creation_time": self.creation_time,
            "last_updated_time": self.last_updated_time,
            "status": self.status,
            "status_message": self.status_message,
            "model_type": self.model_type,
            "source_run_id": self.source_run_id,
            "lifecycle_stage": self.lifecycle_stage,
        })
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: entity::LOGGED_MODEL, id: self.model_id.clone(), after: Some(self.image()) }
    }

    /// Whether the model is live.
    pub fn is_active(&self) -> bool {
        self.lifecycle_stage == LifecycleStage::Active.as_str()
    }

    /// The domain value with its tags, params and metrics.
    pub fn into_domain(
        self,
        tags: Vec<KeyValue>,
        params: Vec<KeyValue>,
        metrics: Vec<ModelMetric>,
    ) -> Result<LoggedModel> {
        let status = LoggedModelStatus::parse(&self.status).map_err(|_| {
            Error::internal(format!("logged model {} has unknown status '{}'", self.model_id, self.status))
        })?;
        Ok(LoggedModel {
            model_id: self.model_id,
            experiment_id: self.experiment_id.to_string(),
            name: self.name,
            artifact_location: self.artifact_location,
            creation_timestamp: self.creation_time,
            last_updated_timestamp: self.last_updated_time,
            status,
            status_message: self.status_message,
            model_type: self.model_type,
            source_run_id: self.source_run_id,
            tags,
            params,
            metrics,
        })
    }
}

/// Which keyed child of a logged model a [`ModelChild`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelChildKind {
    Tag,
    Param,
}

impl ModelChildKind {
    /// The table holding this kind (one of two constants).
    pub fn table(self) -> &'static str {
        match self {
            ModelChildKind::Tag => "logged_model_tags",
            ModelChildKind::Param => "logged_model_params",
        }
    }

    /// The audit entity name.
    pub fn entity(self) -> &'static str {
        match self {
            ModelChildKind::Tag => entity::LOGGED_MODEL_TAG,
            ModelChildKind::Param => entity::LOGGED_MODEL_PARAM,
        }
    }
}

/// A tag or param of a logged model, named by the model's public id.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChild {
    pub kind: ModelChildKind,
    pub model_id: String,
    pub key: String,
    pub value: String,
}

impl ModelChild {
    /// The audit after-image.
    pub fn image(&self) -> Value {
        json!({ "model_id": self.model_id, "key": self.key, "value": self.value })
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: self.kind.entity(), id: child_id(&self.model_id, &self.key), after: Some(self.image()) }
    }

    /// The audit change recording that a tag or param was removed.
    pub fn removal(kind: ModelChildKind, model_id: &str, key: &str) -> Change {
        Change { entity: kind.entity(), id: child_id(model_id, key), after: None }
    }
}

/// A row of `datasets`.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    /// Internal surrogate key; not part of the image.
    pub dataset_pk: i64,
    pub dataset_uuid: String,
    pub experiment_id: i64,
    pub dataset: Dataset,
}

impl DatasetRow {
    /// Columns in the order [`DatasetRow::from_row`] reads them.
    pub const COLUMNS: &'static str = "dataset_pk, dataset_uuid, experiment_id, name, digest, source_type, source, \
         dataset_schema, dataset_profile";

    /// Reads a row selected with [`DatasetRow::COLUMNS`].
    pub fn from_row(row: Row) -> Result<Self> {
        let mut it = row.into_iter();
        Ok(DatasetRow {
            dataset_pk: next(&mut it).int()?,
            dataset_uuid: next(&mut it).into_text()?,
            experiment_id: next(&mut it).int()?,
            dataset: Dataset {
                name: next(&mut it).into_text()?,
                digest: next(&mut it).into_text()?,
                source_type: next(&mut it).into_text()?,
                source: next(&mut it).into_text()?,
                schema: opt_text(next(&mut it))?,
                profile: opt_text(next(&mut it))?,
            },
        })
    }

    /// The parameters binding this row to `INSERT INTO datasets (COLUMNS…, seq)`.
    pub fn params(&self, seq: i64) -> Vec<SqlValue> {
        let d = &self.dataset;
        vec![
            self.dataset_pk.into(),
            self.dataset_uuid.as_str().into(),
            self.experiment_id.into(),
            d.name.as_str().into(),
            d.digest.as_str().into(),
            d.source_type.as_str().into(),
            d.source.as_str().into(),
            d.schema.as_deref().into(),
            d.profile.as_deref().into(),
            seq.into(),
        ]
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        let d = &self.dataset;
        json!({
            "dataset_id": self.dataset_uuid,
            "experiment_id": self.experiment_id.to_string(),
            "name": d.name,
            "digest": d.digest,
            "source_type": d.source_type,
            "source": d.source,
            "schema": d.schema,
            "profile": d.profile,
        })
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: entity::DATASET, id: self.dataset_uuid.clone(), after: Some(self.image()) }
    }
}

/// The audit after-image of one dataset input of a run: the edge and its tags (sorted by key).
pub fn input_image(run_id: &str, dataset_uuid: &str, tags: &[KeyValue]) -> Value {
    let mut sorted: Vec<&KeyValue> = tags.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let tags: Vec<Value> = sorted.iter().map(|t| json!({ "key": t.key, "value": t.value })).collect();
    json!({ "run_id": run_id, "dataset_id": dataset_uuid, "tags": tags })
}

/// The audit change recording one dataset input of a run.
pub fn input_change(run_id: &str, dataset_uuid: &str, tags: &[KeyValue]) -> Change {
    Change {
        entity: entity::RUN_DATASET_INPUT,
        id: child_id(run_id, dataset_uuid),
        after: Some(input_image(run_id, dataset_uuid, tags)),
    }
}

/// The audit after-image of a logged model a run used.
pub fn model_input_image(run_id: &str, model_id: &str) -> Value {
    json!({ "run_id": run_id, "model_id": model_id })
}

/// The audit change recording a logged model a run used.
pub fn model_input_change(run_id: &str, model_id: &str) -> Change {
    Change {
        entity: entity::RUN_MODEL_INPUT,
        id: child_id(run_id, model_id),
        after: Some(model_input_image(run_id, model_id)),
    }
}

/// The audit id of a logged model a run produced at a step.
pub fn model_output_id(run_id: &str, model_id: &str, step: i64) -> String {
    format!("{run_id}/{model_id}/{step}")
}

/// The audit after-image of a logged model a run produced.
pub fn model_output_image(run_id: &str, model_id: &str, step: i64) -> Value {
    json!({ "run_id": run_id, "model_id": model_id, "step": step })
}

/// The audit change recording a logged model a run produced.
pub fn model_output_change(run_id: &str, model_id: &str, step: i64) -> Change {
    Change {
        entity: entity::RUN_MODEL_OUTPUT,
        id: model_output_id(run_id, model_id, step),
        after: Some(model_output_image(run_id, model_id, step)),
    }
}

/// One model-linked metric point as imaged for the audit log, with public ids. A NaN value is
/// given by a fixed bit pattern so that every NaN images the same.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMetricRow {
    pub model_id: String,
    pub run_id: String,
    pub key: String,
    pub step: i64,
    pub timestamp: i64,
    pub value: f64,
    pub dataset_name: String,
    pub dataset_digest: String,
}

impl ModelMetricRow {
    fn canonical(&self) -> Value {
        let bits = if self.value.is_nan() { f64::NAN.to_bits() } else { self.value.to_bits() };
        json!([
            self.model_id,
            self.run_id,
            self.key,
            self.step,
            self.timestamp,
            bits.to_string(),
            self.dataset_name,
            self.dataset_digest
        ])
    }
}

/// The after-image of the model-linked metric rows one event wrote: their count and a digest
/// independent of their order.
pub fn metric_rows_image(rows: &[ModelMetricRow]) -> Value {
    let mut encoded: Vec<String> = rows.iter().map(|r| canonical_json(&r.canonical())).collect();
    encoded.sort_unstable();
    json!({ "count": rows.len(), "digest": sha256_hex(encoded.join("\n").as_bytes()) })
}

/// The audit change recording the model-linked metric rows written by event `seq`.
pub fn metric_rows_change(seq: i64, rows: &[ModelMetricRow]) -> Change {
    Change { entity: entity::LOGGED_MODEL_METRIC_ROWS, id: seq.to_string(), after: Some(metric_rows_image(rows)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(value: f64, step: i64) -> ModelMetricRow {
        ModelMetricRow {
            model_id: "m-1".into(),
            run_id: "r".into(),
            key: "acc".into(),
            step,
            timestamp: 5,
            value,
            dataset_name: String::new(),
            dataset_digest: String::new(),
        }
    }

    #[test]
    fn metric_row_images_ignore_order_and_nan_payloads() {
        let a = [point(1.0, 1), point(f64::NAN, 2)];
        let b = [point(-f64::NAN, 2), point(1.0, 1)];
        assert_eq!(metric_rows_image(&a), metric_rows_image(&b));
        assert_ne!(metric_rows_image(&a), metric_rows_image(&[point(1.0, 1), point(2.0, 2)]));
        assert_eq!(metric_rows_image(&a)["count"], 2);
    }

    #[test]
    fn input_images_sort_tags() {
        let tags = [KeyValue::new("b", "2"), KeyValue::new("a", "1")];
        let image = input_image("r", "d", &tags);
        assert_eq!(image["tags"][0]["key"], "a");
        assert_eq!(input_change("r", "d", &tags).id, "r/d");
    }
}
