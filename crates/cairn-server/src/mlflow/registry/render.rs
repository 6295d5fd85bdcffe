//! Registered models and model versions as MLflow's server writes them.
//!
//! MLflow's protobuf messages carry a version number as a string and timestamps as int64 (sent
//! as JSON numbers, like every int64 on Cairn's MLflow routes). Unset optional fields and empty
//! lists are left out. A registered model omits an empty description, while a model version
//! keeps one, as MLflow's entities do.

use serde_json::{Map, Value, json};

use cairn_core::registry::{ModelAlias, ModelVersion, RegisteredModel};

use crate::wire::{key_value, set_list};

/// A registered model with its tags, aliases and latest version per stage.
pub fn registered_model(m: &RegisteredModel) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(m.name));
    body.insert("creation_timestamp".into(), json!(m.creation_timestamp));
    body.insert("last_updated_timestamp".into(), json!(m.last_updated_timestamp));
    if let Some(description) = m.description.as_deref().filter(|d| !d.is_empty()) {
        body.insert("description".into(), json!(description));
    }
    set_list(&mut body, "latest_versions", m.latest_versions.iter().map(model_version).collect());
    set_list(&mut body, "tags", m.tags.iter().map(key_value).collect());
    set_list(&mut body, "aliases", m.aliases.iter().map(alias).collect());
    Value::Object(body)
}

/// An alias of a registered model: the version is a string, as everywhere on the wire.
fn alias(a: &ModelAlias) -> Value {
    json!({ "alias": a.alias, "version": a.version.to_string() })
}

/// One model version.
pub fn model_version(v: &ModelVersion) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(v.name));
    body.insert("version".into(), json!(v.version.to_string()));
    body.insert("creation_timestamp".into(), json!(v.creation_timestamp));
    body.insert("last_updated_timestamp".into(), json!(v.last_updated_timestamp));
    if !v.user_id.is_empty() {
        body.insert("user_id".into(), json!(v.user_id));
    }
    body.insert("current_stage".into(), json!(v.current_stage.as_str()));
    if let Some(description) = &v.description {
        body.insert("description".into(), json!(description));
    }
    body.insert("source".into(), json!(v.source));
    if let Some(run_id) = &v.run_id {
        body.insert("run_id".into(), json!(run_id));
    }
    if let Some(run_link) = &v.run_link {
        body.insert("run_link".into(), json!(run_link));
    }
    body.insert("status".into(), json!(v.status.as_str()));
    if let Some(message) = v.status_message.as_deref().filter(|m| !m.is_empty()) {
        body.insert("status_message".into(), json!(message));
    }
    set_list(&mut body, "tags", v.tags.iter().map(key_value).collect());
    set_list(&mut body, "aliases", v.aliases.iter().map(|a| json!(a)).collect());
    // MLflow's proto has the field though its own server leaves it unset; the client ignores
    // it, and other readers learn which logged model the version registers.
    if let Some(model_id) = &v.model_id {
        body.insert("model_id".into(), json!(model_id));
    }
    Value::Object(body)
}

/// A list of model versions under `key`, omitted when empty.
pub fn set_versions(body: &mut Map<String, Value>, key: &str, versions: &[ModelVersion]) {
    set_list(body, key, versions.iter().map(model_version).collect());
}

#[cfg(test)]
mod tests {
    use cairn_core::model::KeyValue;
    use cairn_core::registry::{ModelVersionStatus, Stage};

    use super::*;

    fn version() -> ModelVersion {
        ModelVersion {
            name: "m".into(),
            version: 3,
            creation_timestamp: 10,
            last_updated_timestamp: 20,
            user_id: String::new(),
            current_stage: Stage::Staging,
            description: Some(String::new()),
            source: "runs:/r/model".into(),
            run_id: Some("r".into()),
            run_link: None,
            status: ModelVersionStatus::Ready,
            status_message: None,
            tags: vec![KeyValue::new("k", "v")],
            aliases: vec!["champion".into()],
            model_id: None,
            pin_id: Some(format!("mv-{}", "0".repeat(32))),
        }
    }

    #[test]
    fn versions_are_strings_and_unset_fields_are_omitted() {
        let v = model_version(&version());
        assert_eq!(v["version"], "3");
        assert_eq!(v["creation_timestamp"], 10);
        assert_eq!(v["current_stage"], "Staging");
        assert_eq!(v["status"], "READY");
        assert_eq!(v["description"], "");
        assert_eq!(v["aliases"], json!(["champion"]));
        assert_eq!(v["tags"], json!([{"key": "k", "value": "v"}]));
        for absent in ["user_id", "run_link", "status_message", "model_id", "pin_id"] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
    }

    #[test]
    fn models_carry_aliases_with_string_versions() {
        let m = RegisteredModel {
            name: "m".into(),
            creation_timestamp: 1,
            last_updated_timestamp: 2,
            description: Some(String::new()),
            tags: vec![],
            aliases: vec![ModelAlias { alias: "champion".into(), version: 3 }],
            latest_versions: vec![version()],
        };
        let v = registered_model(&m);
        assert_eq!(v["aliases"], json!([{"alias": "champion", "version": "3"}]));
        assert_eq!(v["latest_versions"][0]["version"], "3");
        assert!(v.get("description").is_none());
        assert!(v.get("tags").is_none());
    }
}
