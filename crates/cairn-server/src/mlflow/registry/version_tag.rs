//! The `mlflow.modelVersions` tag of a logged model: the registered versions made from it, which
//! MLflow's server appends to whenever a version is created with a `model_id`. MLflow's UI and
//! client read it back verbatim, so it is written as Python's `json.dumps` writes it (`", "` and
//! `": "` separators, non-ASCII escaped as `\uXXXX`), and a version already listed is not listed
//! twice.

use cairn_core::model::{Actor, KeyValue};
use cairn_core::store::Store;
use serde_json::{Value, json};

use crate::error::ApiResult;

/// The tag's key, as MLflow names it.
pub const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";

/// Adds version `version` of `name` to the logged model's tag.
pub async fn record(store: &dyn Store, actor: &Actor, model_id: &str, name: &str, version: i64) -> ApiResult<()> {
    let model = store.get_logged_model_any_stage(model_id).await?;
    let existing = model.tags.iter().find(|t| t.key == MODEL_VERSIONS_TAG).map(|t| t.value.as_str());
    let value = appended(existing, name, version);
    store.set_logged_model_tags(actor, model_id, vec![KeyValue::new(MODEL_VERSIONS_TAG, value)]).await?;
    Ok(())
}

/// The tag's new value. A value that is not a JSON list (edited by hand) is replaced, as
/// MLflow's would fail to load it and Cairn prefers a usable tag to a failed registration.
fn appended(existing: Option<&str>, name: &str, version: i64) -> String {
    let entry = json!({ "name": name, "version": version });
    let mut list = match existing.map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Array(list))) => list,
        _ => Vec::new(),
    };
    if !list.contains(&entry) {
        list.push(entry);
    }
    let mut out = String::new();
    python_json(&Value::Array(list), &mut out);
    out
}

/// Writes `value` as Python's `json.dumps` does with its defaults. Objects keep their key order
/// (serde_json's `preserve_order` is not enabled, so keys come sorted; MLflow's entries have
/// `name` before `version`, which sorting keeps).
fn python_json(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_string(key, out);
                out.push_str(": ");
                python_json(item, out);
            }
            out.push('}');
        }
        Value::String(s) => python_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

/// Python's `json.dumps` of a string, which MLflow's clients read back.
fn python_string(s: &str, out: &mut String) {
    out.push_str(&cairn_core::validation::py_json_str(s));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_appended_once_in_pythons_format() {
        let first = appended(None, "model", 1);
        assert_eq!(first, r#"[{"name": "model", "version": 1}]"#);
        let second = appended(Some(&first), "model", 2);
        assert_eq!(second, r#"[{"name": "model", "version": 1}, {"name": "model", "version": 2}]"#);
        assert_eq!(appended(Some(&second), "model", 2), second);
        assert_eq!(appended(Some("not json"), "m", 3), r#"[{"name": "m", "version": 3}]"#);
    }

    #[test]
    fn strings_are_escaped_as_python_escapes_them() {
        assert_eq!(appended(None, "caf\u{e9} \"x\"\n", 1), r#"[{"name": "caf\u00e9 \"x\"\n", "version": 1}]"#);
        assert_eq!(appended(None, "\u{1f600}", 1), r#"[{"name": "\ud83d\ude00", "version": 1}]"#);
    }
}
