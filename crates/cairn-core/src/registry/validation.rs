//! MLflow's input rules for the model registry (`_validate_model_name`,
//! `_validate_registered_model_tag`, `_validate_model_version_tag`, `_validate_model_alias_name`,
//! … in `mlflow/utils/validation.py` of MLflow 3.17.2), with MLflow's messages.
//!
//! Lengths are counted in Unicode scalar values, as Python's `len()` counts a `str`. NUL is
//! refused everywhere because PostgreSQL text cannot hold it.

use crate::model::KeyValue;
use crate::validation::{py_json_str, py_repr_str, validate_entity_name};
use crate::{Error, Result};

/// Longest registered-model or model-version tag key.
pub const MAX_REGISTRY_TAG_KEY_LENGTH: usize = 250;
/// Longest registered-model or model-version tag value.
pub const MAX_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
/// Longest alias name.
pub const MAX_ALIAS_LENGTH: usize = 255;
/// The alias every model has implicitly (its highest version); it cannot be set.
pub const LATEST_ALIAS: &str = "latest";

fn missing_value(path: &str) -> Error {
    Error::invalid(format!("Missing value for required parameter '{path}'."))
}

fn reject_nul(what: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(format!("'{what}' may not contain NUL characters")));
    }
    Ok(())
}

fn length_limit(what: &str, limit: usize, value: &str) -> Result<()> {
    reject_nul(what, value)?;
    if value.chars().count() > limit {
        return Err(Error::invalid(format!("'{what}' exceeds the maximum length of {limit} characters")));
    }
    Ok(())
}

/// A registered model's name: not blank, no `/` or `:`, and not a name a path normalisation
/// would change (`.` or `..`, the only such names without a slash).
pub fn validate_model_name(name: &str) -> Result<()> {
    validate_name_at(name, "name")
}

/// The new name of a rename, reported under MLflow's `new_name` when it is missing.
pub fn validate_new_model_name(new_name: &str) -> Result<()> {
    if new_name.trim().is_empty() {
        return Err(missing_value("new_name"));
    }
    validate_name_at(new_name, "name")
}

fn validate_name_at(name: &str, path: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(missing_value(path));
    }
    if name.contains('/') || name.contains(':') {
        return Err(Error::invalid(format!("Invalid model name '{name}'. Names cannot contain '/' or ':'.")));
    }
    if name == "." || name == ".." {
        let resolved = if name == "." { "." } else { ".." };
        return Err(Error::invalid(format!(
            "Invalid value {} for parameter '{path}' supplied: Names may be treated as files in certain cases, \
             and must not resolve to other names when treated as such. This name would resolve to {}",
            py_json_str(name),
            py_repr_str(resolved)
        )));
    }
    reject_nul(path, name)
}

/// A tag key as MLflow's `_validate_tag_name` checks it (also for deleting a tag).
pub fn validate_tag_key(key: &str) -> Result<()> {
    validate_entity_name(key, "key")
}

/// A registered model's tag.
pub fn validate_registered_model_tag(tag: &KeyValue) -> Result<()> {
    validate_tag_key(&tag.key)?;
    length_limit("key", MAX_REGISTRY_TAG_KEY_LENGTH, &tag.key)?;
    length_limit("value", MAX_REGISTRY_TAG_VALUE_LENGTH, &tag.value)
}

/// A model version's tag (MLflow checks it exactly as a registered model's).
pub fn validate_model_version_tag(tag: &KeyValue) -> Result<()> {
    validate_registered_model_tag(tag)
}

/// A description: free text, but no NUL.
pub fn validate_description(description: Option<&str>) -> Result<()> {
    description.map_or(Ok(()), |d| reject_nul("description", d))
}

/// An alias name: word characters and dashes, at most 255 characters.
pub fn validate_alias_name(alias: &str) -> Result<()> {
    if alias.is_empty() {
        return Err(Error::invalid("Registered model alias name cannot be empty."));
    }
    if !alias.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        return Err(Error::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )));
    }
    length_limit("Registered model alias name", MAX_ALIAS_LENGTH, alias)
}

/// An alias that may be set: besides [`validate_alias_name`], not `latest` (any case) and not a
/// version alias such as `v3`, which clients resolve themselves.
pub fn validate_settable_alias(alias: &str) -> Result<()> {
    validate_alias_name(alias)?;
    if is_latest_alias(alias) {
        return Err(Error::invalid("'latest' alias name (case insensitive) is reserved."));
    }
    let mut chars = alias.chars();
    let versionlike = matches!(chars.next(), Some('v' | 'V')) && alias.len() > 1 && chars.all(|c| c.is_numeric());
    if versionlike {
        return Err(Error::invalid(format!("Version alias name '{alias}' is reserved.")));
    }
    Ok(())
}

/// Whether `alias` is the reserved `latest` (case-insensitive).
pub fn is_latest_alias(alias: &str) -> bool {
    alias.eq_ignore_ascii_case(LATEST_ALIAS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<()>) -> String {
        match r {
            Err(Error::InvalidParameter(m)) => m,
            other => panic!("expected an invalid-parameter error, got {other:?}"),
        }
    }

    #[test]
    fn model_names_follow_mlflow() {
        assert!(validate_model_name("my model-1").is_ok());
        assert_eq!(message(validate_model_name("  ")), "Missing value for required parameter 'name'.");
        assert_eq!(message(validate_model_name("a/b")), "Invalid model name 'a/b'. Names cannot contain '/' or ':'.");
        assert!(message(validate_model_name("..")).contains("This name would resolve to '..'"));
        assert_eq!(message(validate_new_model_name("")), "Missing value for required parameter 'new_name'.");
    }

    #[test]
    fn aliases_follow_mlflow() {
        assert!(validate_settable_alias("champion_2-b").is_ok());
        assert_eq!(message(validate_alias_name("")), "Registered model alias name cannot be empty.");
        assert!(message(validate_alias_name("a b")).starts_with("Invalid alias name: 'a b'."));
        assert_eq!(message(validate_settable_alias("LATEST")), "'latest' alias name (case insensitive) is reserved.");
        assert_eq!(message(validate_settable_alias("V12")), "Version alias name 'V12' is reserved.");
        assert!(validate_settable_alias("v").is_ok());
        assert!(validate_settable_alias("v1a").is_ok());
        assert!(message(validate_alias_name(&"a".repeat(256))).contains("exceeds the maximum length of 255"));
    }

    #[test]
    fn tags_follow_mlflow() {
        assert!(validate_registered_model_tag(&KeyValue::new("k", "v")).is_ok());
        assert!(message(validate_registered_model_tag(&KeyValue::new("a!", "v"))).contains("parameter 'key'"));
        let long = "x".repeat(MAX_REGISTRY_TAG_VALUE_LENGTH + 1);
        assert_eq!(
            message(validate_model_version_tag(&KeyValue::new("k", &long))),
            "'value' exceeds the maximum length of 100000 characters"
        );
    }
}
