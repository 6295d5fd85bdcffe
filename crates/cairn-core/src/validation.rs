//! MLflow's input rules, so that clients see the same errors from Cairn as from MLflow.
//!
//! Limits, checks, their order and their messages follow `mlflow/utils/validation.py` of the
//! pinned MLflow version (3.17.2). Where MLflow names a JSON path in a message (`metrics[3].name`),
//! so do we: the `*_at` variants take the path of the item inside a batch request, the plain
//! variants use the path MLflow uses for single-item requests.
//!
//! Lengths are counted in Unicode scalar values, as Python's `len()` counts a `str`.

use crate::model::{Batch, KeyValue, Metric};
use crate::{Error, Result};

/// Most metrics one `log-batch` may carry.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most params, and separately most tags, one `log-batch` may carry.
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
/// Most entities of all kinds one `log-batch` may carry.
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// Longest metric, param or run tag key.
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
/// Longest param value.
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
/// Longest run tag value.
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
/// Longest experiment tag key.
pub const MAX_EXPERIMENT_TAG_KEY_LENGTH: usize = 250;
/// Longest experiment tag value.
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 20_000;
/// Longest experiment name.
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
/// Longest run id MLflow's run-id pattern admits.
pub const MAX_RUN_ID_LENGTH: usize = 256;
/// Longest experiment id MLflow's experiment-id pattern admits.
pub const MAX_EXPERIMENT_ID_LENGTH: usize = 64;
/// The reserved tag that mirrors a run's name.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// The sentence MLflow appends when a key contains a forbidden character.
const BAD_CHARACTER_MESSAGE: &str = "Names may only contain alphanumerics, underscores (_), dashes (-), \
     periods (.), spaces ( ), colon(:) and slashes (/).";

/// Validates a whole `log-batch` before anything is written: every item in request order, then
/// the size limits, then param-key uniqueness, as MLflow's store does.
pub fn validate_batch(batch: &Batch) -> Result<()> {
    for (i, m) in batch.metrics.iter().enumerate() {
        // A batch carries up to a thousand metrics; build the element path (and run the full
        // check that reports it) only for a metric the cheap check does not clear.
        if !metric_is_plainly_valid(m) {
            validate_metric_at(m, &format!("metrics[{i}]"))?;
        }
    }
    for (i, p) in batch.params.iter().enumerate() {
        validate_param_at(p, &format!("params[{i}]"))?;
    }
    for (i, t) in batch.tags.iter().enumerate() {
        validate_tag_at(t, &format!("tags[{i}]"))?;
    }
    validate_batch_limits(batch.metrics.len(), batch.params.len(), batch.tags.len())?;
    validate_param_keys_unique(&batch.params)
}

/// Checks the per-kind and total entity counts of one batch.
pub fn validate_batch_limits(metrics: usize, params: usize, tags: usize) -> Result<()> {
    batch_limit("metrics", MAX_METRICS_PER_BATCH, metrics)?;
    batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, params)?;
    batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, tags)?;
    batch_limit("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, metrics + params + tags)
}

fn batch_limit(entity: &str, limit: usize, length: usize) -> Result<()> {
    if length > limit {
        return Err(Error::invalid(format!(
            "A batch logging request can contain at most {limit} {entity}. Got {length} {entity}. \
             Please split up {entity} across multiple requests and try again."
        )));
    }
    Ok(())
}

/// Rejects a batch that logs the same param key twice.
pub fn validate_param_keys_unique(params: &[KeyValue]) -> Result<()> {
    let mut seen: Vec<&str> = Vec::new();
    let mut dupes: Vec<&str> = Vec::new();
    for p in params {
        if seen.contains(&p.key.as_str()) {
            dupes.push(&p.key);
        } else {
            seen.push(&p.key);
        }
    }
    if dupes.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = dupes.iter().map(|k| py_repr_str(k)).collect();
    Err(Error::invalid(format!(
        "Duplicate parameter keys have been submitted: [{}]. Please ensure the request contains \
         only one param value per param key.",
        listed.join(", ")
    )))
}

/// Validates one metric logged on its own (`log-metric`).
pub fn validate_metric(m: &Metric) -> Result<()> {
    validate_metric_at(m, "")
}

/// Validates one metric at `path` inside a request (`metrics[3]`), or at the top level when
/// `path` is empty.
pub fn validate_metric_at(m: &Metric, path: &str) -> Result<()> {
    validate_entity_name(&m.key, &json_path(path, "name"))?;
    // The wire layer guarantees a double, so MLflow's "value must be a number" check cannot fail
    // here; timestamps however may be negative.
    if m.timestamp < 0 {
        return Err(Error::invalid(invalid_value(
            &json_path(path, "timestamp"),
            &m.timestamp.to_string(),
            Some(&format!(
                "metric '{}' (value={}). Timestamp must be a nonnegative long (64-bit integer) ",
                m.key,
                py_float(m.value)
            )),
        )));
    }
    length_limit("Metric name", MAX_ENTITY_KEY_LENGTH, &m.key)
}

/// Validates one param logged on its own (`log-parameter`).
pub fn validate_param(p: &KeyValue) -> Result<()> {
    validate_param_at(p, "")
}

/// Validates one param at `path` inside a request (`params[0]`).
pub fn validate_param_at(p: &KeyValue, path: &str) -> Result<()> {
    validate_entity_name(&p.key, &json_path(path, "key"))?;
    length_limit("Param key", MAX_ENTITY_KEY_LENGTH, &p.key)?;
    length_limit("Param value", MAX_PARAM_VAL_LENGTH, &p.value)
}

/// Validates one run tag set on its own (`set-tag`).
pub fn validate_tag(t: &KeyValue) -> Result<()> {
    validate_tag_at(t, "")
}

/// Validates one run tag at `path` inside a request (`tags[0]`).
pub fn validate_tag_at(t: &KeyValue, path: &str) -> Result<()> {
    validate_entity_name(&t.key, &json_path(path, "key"))?;
    length_limit(&json_path(path, "key"), MAX_ENTITY_KEY_LENGTH, &t.key)?;
    length_limit(&json_path(path, "value"), MAX_TAG_VAL_LENGTH, &t.value)
}

/// Validates one experiment tag.
pub fn validate_experiment_tag(t: &KeyValue) -> Result<()> {
    validate_entity_name(&t.key, "key")?;
    length_limit("key", MAX_EXPERIMENT_TAG_KEY_LENGTH, &t.key)?;
    length_limit("value", MAX_EXPERIMENT_TAG_VAL_LENGTH, &t.value)
}

/// Validates a metric, param or tag key for `kind` (`metric`, `param`, `tag`), reporting it at
/// the path MLflow uses for a single-item request.
pub fn validate_key(kind: &str, key: &str) -> Result<()> {
    let (path, what) = match kind {
        "metric" => ("name", "Metric name"),
        "param" => ("key", "Param key"),
        _ => ("key", "key"),
    };
    validate_entity_name(key, path)?;
    length_limit(what, MAX_ENTITY_KEY_LENGTH, key)
}

/// True when `m` certainly passes [`validate_metric_at`]: a name that needs no normalising and
/// no character MLflow forbids, within the length limit, and a non-negative timestamp. False
/// means "check properly", not "invalid".
fn metric_is_plainly_valid(m: &Metric) -> bool {
    let name = m.key.as_str();
    m.timestamp >= 0
        && !name.is_empty()
        && name.len() <= MAX_ENTITY_KEY_LENGTH
        && !name.starts_with("..")
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':'))
        && name.split('/').all(|segment| !matches!(segment, "" | "." | ".."))
}

/// MLflow's rule for metric, param and tag names: only word characters, `/ . - :` and spaces,
/// and a name that a POSIX path normalisation leaves unchanged (so it cannot alias another name
/// when used as a file name).
pub fn validate_entity_name(name: &str, path: &str) -> Result<()> {
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':');
    if !name.chars().all(allowed) {
        return Err(Error::invalid(invalid_value(path, &py_json_str(name), Some(BAD_CHARACTER_MESSAGE))));
    }
    let norm = posix_normpath(name);
    if norm != name || norm == "." || norm.starts_with("..") || norm.starts_with('/') {
        return Err(Error::invalid(invalid_value(
            path,
            &py_json_str(name),
            Some(&format!(
                "Names may be treated as files in certain cases, and must not resolve to other \
                 names when treated as such. This name would resolve to {}",
                py_repr_str(&norm)
            )),
        )));
    }
    Ok(())
}

/// Validates an experiment name. MLflow rejects only the empty name, not a blank one.
pub fn validate_experiment_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("Invalid experiment name: ''"));
    }
    length_limit("name", MAX_EXPERIMENT_NAME_LENGTH, name)
}

/// Rejects an experiment artifact location that points into a run (`runs:/…`).
pub fn validate_experiment_artifact_location(location: &str) -> Result<()> {
    if location.starts_with("runs:") {
        return Err(Error::invalid(format!("Artifact location cannot be a runs:/ URI. Given: '{location}'")));
    }
    Ok(())
}

/// MLflow's run-id shape: an alphanumeric first character, then up to 255 word characters or
/// dashes.
pub fn validate_run_id(run_id: &str) -> Result<()> {
    if !id_shape_ok(run_id, MAX_RUN_ID_LENGTH) {
        return Err(Error::invalid(invalid_value("run_id", &py_json_str(run_id), None)));
    }
    Ok(())
}

/// MLflow's experiment-id shape: as a run id, but at most 64 characters.
pub fn validate_experiment_id(experiment_id: &str) -> Result<()> {
    if !id_shape_ok(experiment_id, MAX_EXPERIMENT_ID_LENGTH) {
        return Err(Error::invalid(format!("Invalid experiment ID: '{experiment_id}'")));
    }
    Ok(())
}

fn id_shape_ok(id: &str, max_len: usize) -> bool {
    let mut chars = id.chars();
    let Some(first) = chars.next() else { return false };
    // Python's `[a-zA-Z0-9]` is ASCII-only, while `\w` is Unicode-aware.
    first.is_ascii_alphanumeric()
        && id.chars().count() <= max_len
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// A run may be named twice on creation, by `run_name` and by the `mlflow.runName` tag; MLflow
/// refuses the request when the two disagree.
pub fn validate_run_name(run_name: Option<&str>, tags: &[KeyValue]) -> Result<()> {
    if let Some(name) = run_name {
        reject_nul("run_name", name)?;
    }
    let tag = tags.iter().find(|t| t.key == RUN_NAME_TAG).map(|t| t.value.as_str());
    match (run_name, tag) {
        (Some(name), Some(tag)) if !name.is_empty() && !tag.is_empty() && name != tag => Err(Error::invalid(format!(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with \
                 different values (run_name='{name}', mlflow.runName='{tag}')."
        ))),
        _ => Ok(()),
    }
}

/// Cuts `value` to `limit` characters, as MLflow's server does by default for param and run tag
/// values (`MLFLOW_TRUNCATE_LONG_VALUES`). Returns whether anything was cut.
pub fn truncate_to_limit(value: &mut String, limit: usize) -> bool {
    match value.char_indices().nth(limit) {
        Some((byte_index, _)) => {
            value.truncate(byte_index);
            true
        }
        None => false,
    }
}

fn length_limit(entity: &str, limit: usize, value: &str) -> Result<()> {
    reject_nul(entity, value)?;
    if value.chars().count() > limit {
        return Err(Error::invalid(format!("'{entity}' exceeds the maximum length of {limit} characters")));
    }
    Ok(())
}

fn json_path(base: &str, field: &str) -> String {
    if base.is_empty() { field.to_owned() } else { format!("{base}.{field}") }
}

/// MLflow's `invalid_value` message; `shown` is the value already rendered as Python's
/// `json.dumps` would.
fn invalid_value(path: &str, shown: &str, detail: Option<&str>) -> String {
    match detail {
        Some(d) => format!("Invalid value {shown} for parameter '{path}' supplied: {d}"),
        None => format!("Invalid value {shown} for parameter '{path}' supplied."),
    }
}

/// Python's `json.dumps(s)`: double quotes, and every non-ASCII character escaped as `\uXXXX`
/// (as UTF-16 surrogate pairs beyond the basic plane).
pub fn py_json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Python's `repr()` of a string, as MLflow's messages show it: single quotes unless the text
/// contains one and no double quote.
pub(crate) fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a float: `nan`, `inf`, `1.0`, `1e+20`.
fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".to_owned() } else { "-inf".to_owned() };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Rust prints `1e20` and `1e-5`; Python prints `1e+20` and `1e-05`.
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    if v.fract() == 0.0 { format!("{v:.1}") } else { format!("{v}") }
}

/// Python's `posixpath.normpath`: collapses `//`, `.` and `..` segments without touching the
/// file system.
fn posix_normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    // POSIX keeps exactly two leading slashes; one or three-plus collapse to one.
    let leading = path.chars().take_while(|&c| c == '/').count();
    let prefix = match leading {
        0 => "",
        2 => "//",
        _ => "/",
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if prefix.is_empty() {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = format!("{prefix}{}", parts.join("/"));
    if joined.is_empty() { ".".to_owned() } else { joined }
}

/// PostgreSQL cannot store NUL in text, so a value that one backend would keep and the other
/// reject is refused on both, with a clear message instead of a database error.
fn reject_nul(entity: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(format!("'{entity}' may not contain NUL characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(key: &str, timestamp: i64) -> Metric {
        Metric { key: key.to_owned(), value: 1.0, timestamp, step: 0 }
    }

    fn message(r: Result<()>) -> String {
        match r {
            Err(Error::InvalidParameter(m)) => m,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn plain_metric_check_never_clears_an_invalid_metric() {
        let names = [
            "loss",
            "a/b",
            "a//b",
            "/a",
            "a/",
            ".",
            "..",
            "..a",
            "a/./b",
            "a/../b",
            "a b:c-d_e.f",
            "a\\b",
            "ü",
            "",
            "a*",
            "./a",
            "a/.",
            "x".repeat(250).leak(),
            "x".repeat(251).leak(),
        ];
        for name in names {
            for timestamp in [0, -1] {
                let m = Metric { key: name.to_owned(), value: 1.0, timestamp, step: 0 };
                if metric_is_plainly_valid(&m) {
                    assert!(validate_metric_at(&m, "metrics[0]").is_ok(), "{name:?} {timestamp}");
                }
            }
        }
        assert!(metric_is_plainly_valid(&metric("loss", 0)));
    }

    #[test]
    fn nul_in_values_is_refused() {
        assert!(message(validate_param(&KeyValue::new("k", "a\0b"))).contains("NUL"));
        assert!(message(validate_tag(&KeyValue::new("k", "\0"))).contains("NUL"));
        assert!(message(validate_experiment_tag(&KeyValue::new("k", "\0"))).contains("NUL"));
        assert!(message(validate_experiment_name("x\0")).contains("NUL"));
        assert!(message(validate_run_name(Some("r\0"), &[])).contains("NUL"));
        assert!(validate_param(&KeyValue::new("k", "fine")).is_ok());
    }

    #[test]
    fn normpath_matches_python() {
        let check = |input: &str, expected: &str| assert_eq!(posix_normpath(input), expected, "{input}");
        check("", ".");
        check("a/b", "a/b");
        check("a//b", "a/b");
        check("a/./b", "a/b");
        check("a/../b", "b");
        check("../a", "../a");
        check("/../a", "/a");
        check("//a", "//a");
        check("///a", "/a");
        check("a/", "a");
        check("..", "..");
    }

    #[test]
    fn names_follow_mlflow_character_and_path_rules() {
        assert!(validate_entity_name("loss/train:v1 x-y.z_w", "key").is_ok());
        assert!(validate_entity_name("précision", "key").is_ok());
        assert_eq!(
            message(validate_entity_name("a!b", "key")),
            format!("Invalid value \"a!b\" for parameter 'key' supplied: {BAD_CHARACTER_MESSAGE}")
        );
        assert_eq!(
            message(validate_entity_name("a/../b", "name")),
            "Invalid value \"a/../b\" for parameter 'name' supplied: Names may be treated as files \
             in certain cases, and must not resolve to other names when treated as such. This name \
             would resolve to 'b'"
        );
        for bad in ["/abs", "a/", ".", "..", "../x", "a//b", ""] {
            assert!(validate_entity_name(bad, "key").is_err(), "{bad}");
        }
    }

    #[test]
    fn metric_messages_use_single_or_batch_paths() {
        assert_eq!(
            message(validate_metric(&metric("a'b", 0))),
            format!("Invalid value \"a'b\" for parameter 'name' supplied: {BAD_CHARACTER_MESSAGE}")
        );
        assert_eq!(
            message(validate_metric_at(&metric("m", -1), "metrics[2]")),
            "Invalid value -1 for parameter 'metrics[2].timestamp' supplied: metric 'm' \
             (value=1.0). Timestamp must be a nonnegative long (64-bit integer) "
        );
        assert_eq!(
            message(validate_metric(&metric(&"k".repeat(251), 0))),
            "'Metric name' exceeds the maximum length of 250 characters"
        );
        assert!(validate_metric(&metric(&"k".repeat(250), 0)).is_ok());
    }

    #[test]
    fn param_and_tag_length_limits() {
        assert_eq!(
            message(validate_param(&KeyValue::new("p", "v".repeat(6001)))),
            "'Param value' exceeds the maximum length of 6000 characters"
        );
        assert!(validate_param(&KeyValue::new("p", "é".repeat(6000))).is_ok());
        assert_eq!(
            message(validate_tag_at(&KeyValue::new("t", "v".repeat(8001)), "tags[1]")),
            "'tags[1].value' exceeds the maximum length of 8000 characters"
        );
        assert_eq!(
            message(validate_tag(&KeyValue::new("k".repeat(251), ""))),
            "'key' exceeds the maximum length of 250 characters"
        );
        assert!(validate_experiment_tag(&KeyValue::new("k", "v".repeat(20_000))).is_ok());
        assert_eq!(
            message(validate_experiment_tag(&KeyValue::new("k", "v".repeat(20_001)))),
            "'value' exceeds the maximum length of 20000 characters"
        );
    }

    #[test]
    fn batch_limits_and_duplicates() {
        let many = |n: usize| (0..n).map(|i| metric(&format!("m{i}"), 0)).collect::<Vec<_>>();
        let batch = Batch { metrics: many(1001), ..Batch::default() };
        assert_eq!(
            message(validate_batch(&batch)),
            "A batch logging request can contain at most 1000 metrics. Got 1001 metrics. Please \
             split up metrics across multiple requests and try again."
        );
        let params = (0..50).map(|i| KeyValue::new(format!("p{i}"), "v")).collect::<Vec<_>>();
        let batch = Batch { metrics: many(951), params, tags: vec![] };
        assert!(message(validate_batch(&batch)).contains("at most 1000 metrics, params, and tags"));
        let params = (0..101).map(|i| KeyValue::new(format!("p{i}"), "v")).collect::<Vec<_>>();
        assert!(message(validate_batch(&Batch { params, ..Batch::default() })).contains("at most 100 params"));
        let params = vec![KeyValue::new("a", "1"), KeyValue::new("b", "2"), KeyValue::new("a", "3")];
        assert_eq!(
            message(validate_batch(&Batch { params, ..Batch::default() })),
            "Duplicate parameter keys have been submitted: ['a']. Please ensure the request \
             contains only one param value per param key."
        );
        // Item errors are reported before count errors, as in MLflow.
        let mut metrics = many(1001);
        metrics[5].key = "bad!".to_owned();
        assert!(message(validate_batch(&Batch { metrics, ..Batch::default() })).contains("metrics[5].name"));
    }

    #[test]
    fn experiment_names_ids_and_locations() {
        assert_eq!(message(validate_experiment_name("")), "Invalid experiment name: ''");
        assert!(validate_experiment_name("  ").is_ok());
        assert_eq!(
            message(validate_experiment_name(&"n".repeat(501))),
            "'name' exceeds the maximum length of 500 characters"
        );
        assert!(validate_experiment_id("0").is_ok());
        assert_eq!(message(validate_experiment_id("-1")), "Invalid experiment ID: '-1'");
        assert!(validate_experiment_id(&"1".repeat(65)).is_err());
        assert!(validate_experiment_artifact_location("runs:/abc/x").is_err());
        assert!(validate_experiment_artifact_location("s3://bucket/x").is_ok());
    }

    #[test]
    fn run_ids_and_names() {
        assert!(validate_run_id("0123abcdef").is_ok());
        assert_eq!(message(validate_run_id("../etc")), "Invalid value \"../etc\" for parameter 'run_id' supplied.");
        assert!(validate_run_id(&"a".repeat(257)).is_err());
        let tags = vec![KeyValue::new(RUN_NAME_TAG, "tagged")];
        assert!(validate_run_name(Some("tagged"), &tags).is_ok());
        assert!(validate_run_name(None, &tags).is_ok());
        assert!(message(validate_run_name(Some("other"), &tags)).contains("different values"));
    }

    #[test]
    fn truncation_counts_characters() {
        let mut s = "é".repeat(10);
        assert!(truncate_to_limit(&mut s, 4));
        assert_eq!(s, "éééé");
        assert!(!truncate_to_limit(&mut s, 4));
    }

    #[test]
    fn python_renderings() {
        assert_eq!(py_json_str("a\"é😀"), "\"a\\\"\\u00e9\\ud83d\\ude00\"");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(1e20), "1e+20");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(f64::NAN), "nan");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
    }
}
