//! MLflow's input rules, so that clients see the same errors from Cairn as from MLflow.
//!
//! Limits and messages follow `mlflow/utils/validation.py` of the pinned MLflow version.

use crate::model::{Batch, KeyValue, Metric};
use crate::{Error, Result};

/// Most metrics one `log-batch` may carry.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most params, and separately most tags, one `log-batch` may carry.
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
/// Most entities of all kinds one `log-batch` may carry.
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// Longest metric, param or tag key.
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
/// Longest param value.
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
/// Longest run tag value.
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
/// Longest experiment tag value.
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 5000;
/// Longest experiment name.
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;

/// Validates a whole batch before anything is written.
pub fn validate_batch(batch: &Batch) -> Result<()> {
    if batch.metrics.len() > MAX_METRICS_PER_BATCH {
        return Err(Error::invalid(format!(
            "A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. Got {} metrics.",
            batch.metrics.len()
        )));
    }
    for m in &batch.metrics {
        validate_metric(m)?;
    }
    for p in &batch.params {
        validate_param(p)?;
    }
    for t in &batch.tags {
        validate_tag(t)?;
    }
    Ok(())
}

/// Validates one metric.
pub fn validate_metric(m: &Metric) -> Result<()> {
    validate_key("metric", &m.key)
}

/// Validates one param.
pub fn validate_param(p: &KeyValue) -> Result<()> {
    validate_key("param", &p.key)?;
    if p.value.chars().count() > MAX_PARAM_VAL_LENGTH {
        return Err(Error::invalid(format!(
            "Param value exceeds the maximum length of {MAX_PARAM_VAL_LENGTH} characters"
        )));
    }
    Ok(())
}

/// Validates one run tag.
pub fn validate_tag(t: &KeyValue) -> Result<()> {
    validate_key("tag", &t.key)?;
    if t.value.chars().count() > MAX_TAG_VAL_LENGTH {
        return Err(Error::invalid(format!(
            "Tag value exceeds the maximum length of {MAX_TAG_VAL_LENGTH} characters"
        )));
    }
    Ok(())
}

/// Validates a metric, param or tag key.
pub fn validate_key(kind: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(format!("Invalid {kind} name: ''. Names may not be empty.")));
    }
    if key.chars().count() > MAX_ENTITY_KEY_LENGTH {
        return Err(Error::invalid(format!(
            "{kind} name '{key}' exceeds the maximum length of {MAX_ENTITY_KEY_LENGTH} characters"
        )));
    }
    Ok(())
}

/// Validates an experiment name.
pub fn validate_experiment_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid("Invalid experiment name: ''"));
    }
    if name.chars().count() > MAX_EXPERIMENT_NAME_LENGTH {
        return Err(Error::invalid(format!(
            "Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} characters"
        )));
    }
    Ok(())
}
