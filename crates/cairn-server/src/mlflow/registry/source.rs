//! The checks MLflow's server makes on a new model version's `source` before registering it
//! (`_resolve_registered_model_source_lineage`, `_validate_source_run`, `_validate_source_model`
//! in MLflow 3.17.2's `server/handlers.py`), with MLflow's messages.
//!
//! They matter because a source names files the server will later serve as the version's
//! artifacts: a version may only claim files of the run (`run_id`) or logged model (`model_id`)
//! it says it comes from, and never reach outside them with `..`. A source naming another
//! registered model version (`models:/name/3`, `models:/name@champion`) is resolved to that
//! version and inherits its run and logged model.
//!
//! Cairn never connects to a source, so MLflow's refusal of host-addressed schemes (which guards
//! its server against fetching from arbitrary hosts) has nothing to protect here and is left out.

use cairn_core::Error;
use cairn_core::registry::Stage;
use cairn_core::store::Store;

use crate::error::{ApiError, ApiResult};
use crate::mlflow::registry::parse_version_text;

/// The tag that marks a registered model as a prompt, which cannot be a version's source.
const IS_PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// A new version's source, run and logged model, as they will be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
}

/// The request's view of a new version: `run_id`/`model_id` are `Some` when the field was
/// present, even empty, as protobuf's `HasField` tells MLflow.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
}

/// Checks a new version's source against the run or logged model it claims, resolving a
/// `models:/<name>/…` source to the version it names. Fails with MLflow's
/// `INVALID_PARAMETER_VALUE` messages, or not-found when a named registered model is missing.
pub async fn check(store: &dyn Store, claimed: Claimed) -> ApiResult<Lineage> {
    let lineage = resolve_registered_source(store, claimed).await?;
    match lineage.model_id.as_deref() {
        Some(model_id) => check_model_source(store, &lineage.source, model_id).await?,
        None => check_run_source(store, &lineage.source, lineage.run_id.as_deref()).await?,
    }
    Ok(lineage)
}

/// A `models:/<name>/<version|stage|latest>` or `models:/<name>@<alias>` source becomes
/// `models:/<name>/<version>` and takes that version's run and logged model unless the request
/// gives them (in which case they must agree).
async fn resolve_registered_source(store: &dyn Store, claimed: Claimed) -> ApiResult<Lineage> {
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let uri = Uri::parse(&claimed.source);
    if uri.scheme != "models" {
        return Ok(Lineage {
            source: claimed.source,
            run_id: nonempty(claimed.run_id),
            model_id: nonempty(claimed.model_id),
        });
    }
    if !uri.netloc.is_empty() {
        return Err(ApiError::invalid(format!(
            "Invalid model version source: '{}'. Registered model sources must use the active model registry.",
            claimed.source
        )));
    }
    let reference = ModelRef::parse(&uri.path).ok_or_else(|| unidentified(&claimed.source, "model_id"))?;
    let (name, selector) = match reference {
        ModelRef::LoggedModel(_) => {
            return Ok(Lineage {
                source: claimed.source,
                run_id: nonempty(claimed.run_id),
                model_id: nonempty(claimed.model_id),
            });
        }
        ModelRef::Registered { name, selector } => (name, selector),
    };
    let model = store.get_registered_model(&name).await?;
    if model.tags.iter().any(|t| t.key == IS_PROMPT_TAG && t.value.eq_ignore_ascii_case("true")) {
        return Err(ApiError::invalid(format!(
            "Invalid model version source: '{}'. Prompt versions cannot be used as model version sources.",
            claimed.source
        )));
    }
    let version = match selector {
        Selector::Version(v) => v,
        Selector::Alias(alias) => store.get_model_version_by_alias(&name, &alias).await?.version,
        Selector::Latest(stage) => latest_version(store, &name, stage.as_deref()).await?,
    };
    let target = store.get_model_version(&name, version).await?;
    let differs = |claim: &Option<String>, actual: &Option<String>| {
        claim.as_ref().is_some_and(|c| c.as_str() != actual.as_deref().unwrap_or(""))
    };
    if differs(&claimed.run_id, &target.run_id) || differs(&claimed.model_id, &target.model_id) {
        return Err(ApiError::invalid(format!(
            "Invalid model version source: '{}'. The run_id and model_id request parameters must match the \
             referenced model version.",
            claimed.source
        )));
    }
    Ok(Lineage {
        source: format!("models:/{name}/{}", target.version),
        run_id: if claimed.run_id.is_some() { nonempty(claimed.run_id) } else { target.run_id },
        model_id: if claimed.model_id.is_some() { nonempty(claimed.model_id) } else { target.model_id },
    })
}

/// The highest version of `name` (in `stage` when given), as `models:/<name>/<stage>` means.
async fn latest_version(store: &dyn Store, name: &str, stage: Option<&str>) -> ApiResult<i64> {
    let stages = match stage {
        Some(s) => vec![Stage::parse(s)?],
        None => Vec::new(),
    };
    let latest = store.get_latest_versions(name, stages).await?;
    latest.iter().map(|v| v.version).max().ok_or_else(|| {
        let stage = stage.map(|s| format!(" and stage '{s}'")).unwrap_or_default();
        Error::not_found(format!("No versions of model with name '{name}'{stage} found")).into()
    })
}

/// MLflow's `_validate_source_run`: a source claimed for a run must lie in that run.
async fn check_run_source(store: &dyn Store, source: &str, run_id: Option<&str>) -> ApiResult<()> {
    let uri = Uri::parse(source);
    if uri.is_local() {
        if let Some(run_id) = run_id {
            let root = run_root(store, source, run_id).await?;
            if local_within(&uri, &root) {
                return Ok(());
            }
        }
        return Err(ApiError::invalid(format!(
            "Invalid model version source: '{source}'. To use a local path as a model version source, the \
             run_id request parameter has to be specified and the local path has to be contained within the \
             artifact directory of the run specified by the run_id."
        )));
    }
    reject_relative_paths(source)?;
    match uri.scheme.as_str() {
        "runs" => {
            let source_run = (uri.netloc.is_empty()).then(|| runs_uri_run_id(&uri.path)).flatten();
            return match (source_run, run_id) {
                (Some(from_source), Some(claimed)) if from_source == claimed => Ok(()),
                _ => Err(unidentified(source, "run_id")),
            };
        }
        // A registered-model source was resolved before; a logged-model one needs `model_id`.
        "models"
            if !uri.netloc.is_empty() || !matches!(ModelRef::parse(&uri.path), Some(ModelRef::Registered { .. })) =>
        {
            return Err(unidentified(source, "model_id"));
        }
        _ => {}
    }
    if uri.is_mlflow_artifacts() {
        if let Some(run_id) = run_id
            && uri.within(&Uri::parse(&run_root(store, source, run_id).await?))
        {
            return Ok(());
        }
        return Err(unidentified(source, "run_id"));
    }
    Ok(())
}

/// MLflow's `_validate_source_model`: a source claimed for a logged model must lie in it.
async fn check_model_source(store: &dyn Store, source: &str, model_id: &str) -> ApiResult<()> {
    let uri = Uri::parse(source);
    if uri.is_local() {
        let root = model_root(store, source, model_id).await?;
        if local_within(&uri, &root) {
            return Ok(());
        }
        return Err(ApiError::invalid(format!(
            "Invalid model version source: '{source}'. To use a local path as a model version source, the \
             model_id request parameter has to be specified and the local path has to be contained within the \
             artifact directory of the run specified by the model_id."
        )));
    }
    reject_relative_paths(source)?;
    match uri.scheme.as_str() {
        "models" => {
            if !uri.netloc.is_empty() {
                return Err(unidentified(source, "model_id"));
            }
            match ModelRef::parse(&uri.path) {
                None => return Err(unidentified(source, "model_id")),
                Some(ModelRef::LoggedModel(id)) if id == model_id => return Ok(()),
                Some(ModelRef::LoggedModel(_)) => return Err(unidentified(source, "model_id")),
                Some(ModelRef::Registered { .. }) => {}
            }
        }
        "runs" => return Err(unidentified(source, "model_id")),
        _ => {}
    }
    if uri.is_mlflow_artifacts() {
        if uri.within(&Uri::parse(&model_root(store, source, model_id).await?)) {
            return Ok(());
        }
        return Err(unidentified(source, "model_id"));
    }
    Ok(())
}

/// The artifact root of the claimed run; a missing run makes the source unidentified.
async fn run_root(store: &dyn Store, source: &str, run_id: &str) -> ApiResult<String> {
    match store.get_run(run_id).await {
        Ok(run) => Ok(run.info.artifact_uri),
        Err(Error::NotFound(_)) => Err(unidentified(source, "run_id")),
        Err(e) => Err(e.into()),
    }
}

/// The artifact location of the claimed logged model; a missing one makes the source
/// unidentified.
async fn model_root(store: &dyn Store, source: &str, model_id: &str) -> ApiResult<String> {
    match store.get_logged_model(model_id).await {
        Ok(model) => Ok(model.artifact_location),
        Err(Error::NotFound(_)) => Err(unidentified(source, "model_id")),
        Err(e) => Err(e.into()),
    }
}

fn unidentified(source: &str, id_field: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid model version source: '{source}'. The {id_field} request parameter must identify the resource \
         that contains the source."
    ))
}

/// MLflow's `_validate_non_local_source_contains_relative_paths`: after undoing any amount of
/// percent-encoding, the source's path must be absolute, free of `.`, `..` and NUL, so it cannot
/// climb out of the folder it names.
fn reject_relative_paths(source: &str) -> ApiResult<()> {
    let decoded = unquote_fully(source, true);
    let path = collapse_slashes(&Uri::parse(&decoded).path);
    let path = path.trim_end_matches('/');
    let climbs = decoded.split('/').any(|segment| segment == "..");
    let normal = path.starts_with('/') && path.split('/').skip(1).all(|s| !s.is_empty() && s != "." && s != "..");
    if path.contains('\0') || climbs || !normal {
        return Err(ApiError::invalid(format!(
            "Invalid model version source: '{source}'. If supplying a source as an http, https, local file path, \
             ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path \
             references present. Please provide an absolute path."
        )));
    }
    Ok(())
}

/// Whether a local source lies in a local artifact root (compared as normalised paths).
fn local_within(source: &Uri, root: &str) -> bool {
    let root = Uri::parse(root);
    if !root.is_local() {
        return false;
    }
    let parts = |uri: &Uri| -> Option<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for segment in uri.path.split('/').filter(|s| !s.is_empty() && *s != ".") {
            if segment == ".." {
                out.pop()?;
            } else {
                out.push(segment.to_owned());
            }
        }
        Some(out)
    };
    match (parts(source), parts(&root)) {
        (Some(s), Some(r)) => source.path.starts_with('/') && root.path.starts_with('/') && s.starts_with(&r),
        _ => false,
    }
}

/// The run id of `runs:/<run_id>/<path>`, from the URI's path.
fn runs_uri_run_id(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let run_id = rest.split('/').next()?;
    (!run_id.is_empty()).then(|| run_id.to_owned())
}

/// What a `models:/` URI's path names (MLflow's `_parse_model_uri`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ModelRef {
    /// `models:/<model_id>`.
    LoggedModel(String),
    /// `models:/<name>/<version|stage|latest>` or `models:/<name>@<alias>`.
    Registered { name: String, selector: Selector },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Version(i64),
    /// The highest version, in the stage when one is given.
    Latest(Option<String>),
    Alias(String),
}

impl ModelRef {
    fn parse(path: &str) -> Option<ModelRef> {
        let rest = path.strip_prefix('/').filter(|r| !r.is_empty())?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() > 2 || parts[0].trim().is_empty() {
            return None;
        }
        if let [name, suffix] = parts[..] {
            if suffix.trim().is_empty() {
                return None;
            }
            let selector = if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
                Selector::Version(parse_version_text(suffix).ok()?)
            } else if suffix.eq_ignore_ascii_case("latest") {
                Selector::Latest(None)
            } else {
                Selector::Latest(Some(suffix.to_owned()))
            };
            return Some(ModelRef::Registered { name: name.to_owned(), selector });
        }
        if let Some((name, alias)) = parts[0].rsplit_once('@') {
            if alias.trim().is_empty() {
                return None;
            }
            return Some(ModelRef::Registered { name: name.to_owned(), selector: Selector::Alias(alias.to_owned()) });
        }
        Some(ModelRef::LoggedModel(parts[0].to_owned()))
    }
}

/// A URI split as Python's `urllib.parse.urlsplit` splits it (scheme lower-cased, no query or
/// fragment in the path).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Uri {
    scheme: String,
    netloc: String,
    path: String,
}

impl Uri {
    fn parse(text: &str) -> Uri {
        let mut rest = text;
        let mut scheme = String::new();
        if let Some(i) = text.find(':') {
            let candidate = &text[..i];
            let valid = candidate.starts_with(|c: char| c.is_ascii_alphabetic())
                && candidate.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if valid {
                scheme = candidate.to_ascii_lowercase();
                rest = &text[i + 1..];
            }
        }
        let mut netloc = String::new();
        if let Some(after) = rest.strip_prefix("//") {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            netloc = after[..end].to_owned();
            rest = &after[end..];
        }
        let end = rest.find(['?', '#']).unwrap_or(rest.len());
        Uri { scheme, netloc, path: rest[..end].to_owned() }
    }

    /// A local file path: no scheme, or `file:`.
    fn is_local(&self) -> bool {
        self.scheme.is_empty() || self.scheme == "file"
    }

    /// `mlflow-artifacts:` or an HTTP URL into a tracking server's artifact API.
    fn is_mlflow_artifacts(&self) -> bool {
        if self.scheme == "mlflow-artifacts" {
            return true;
        }
        let route = ["api", "2.0", "mlflow-artifacts", "artifacts"];
        let parts = self.parts();
        (self.scheme == "http" || self.scheme == "https") && parts.windows(route.len()).any(|w| w == route)
    }

    /// Non-empty path segments with all percent-encoding undone.
    fn parts(&self) -> Vec<String> {
        self.path.split('/').filter(|s| !s.is_empty()).map(|s| unquote_fully(s, false)).collect()
    }

    /// MLflow's `_is_uri_within_root`: same scheme and host, and the root's segments lead the
    /// source's.
    fn within(&self, root: &Uri) -> bool {
        let (parts, root_parts) = (self.parts(), root.parts());
        self.scheme == root.scheme
            && self.netloc.eq_ignore_ascii_case(&root.netloc)
            && !root_parts.is_empty()
            && parts.starts_with(&root_parts)
    }
}

fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// Percent-decodes until nothing changes (`%252e` is `.` too); with `plus`, `+` is a space as
/// in `unquote_plus`. Invalid UTF-8 is replaced rather than refused: the result is only compared.
fn unquote_fully(text: &str, plus: bool) -> String {
    let mut current = text.to_owned();
    loop {
        let next = unquote_once(&current, plus);
        if next == current {
            return current;
        }
        current = next;
    }
}

fn unquote_once(text: &str, plus: bool) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(if plus && bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_split_like_python() {
        let split = |text: &str| {
            let u = Uri::parse(text);
            (u.scheme, u.netloc, u.path)
        };
        let owned = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        let expected = owned("mlflow-artifacts", "", "/1/abc/artifacts/model");
        assert_eq!(split("mlflow-artifacts:/1/abc/artifacts/model"), expected);
        let text = "HTTP://Host:5000/api/2.0/mlflow-artifacts/artifacts/1?x=1";
        assert_eq!(split(text), owned("http", "Host:5000", "/api/2.0/mlflow-artifacts/artifacts/1"));
        let u = Uri::parse(text);
        assert!(u.is_mlflow_artifacts());
        assert!(Uri::parse("/tmp/model").is_local());
        assert!(Uri::parse("file:///tmp/model").is_local());
        assert!(!Uri::parse("s3://bucket/model").is_local());
    }

    #[test]
    fn model_uris_parse_like_mlflow() {
        let registered = |name: &str, selector: Selector| Some(ModelRef::Registered { name: name.into(), selector });
        assert_eq!(ModelRef::parse("/m-abc"), Some(ModelRef::LoggedModel("m-abc".into())));
        assert_eq!(ModelRef::parse("/name/3"), registered("name", Selector::Version(3)));
        assert_eq!(ModelRef::parse("/name/Latest"), registered("name", Selector::Latest(None)));
        let production = Selector::Latest(Some("Production".into()));
        assert_eq!(ModelRef::parse("/name/Production"), registered("name", production));
        assert_eq!(ModelRef::parse("/name@champion"), registered("name", Selector::Alias("champion".into())));
        for bad in ["", "/", "/a/b/c", "/name/", "/name@", "/ /1"] {
            assert_eq!(ModelRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn relative_paths_are_refused_however_encoded() {
        for ok in ["mlflow-artifacts:/1/r/artifacts/model", "s3://bucket/a/b", "runs:/abc/model"] {
            assert!(reject_relative_paths(ok).is_ok(), "{ok}");
        }
        for bad in [
            "mlflow-artifacts:/1/../../etc",
            "mlflow-artifacts:/1/%2e%2e/x",
            "mlflow-artifacts:/1/%252e%252e/x",
            "http://host/api/2.0/mlflow-artifacts/artifacts%00",
            "s3:/bucket/a/./b",
            "s3://bucket",
        ] {
            assert!(reject_relative_paths(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn containment_compares_decoded_segments() {
        let root = Uri::parse("mlflow-artifacts:/1/abc/artifacts");
        assert!(Uri::parse("mlflow-artifacts:/1/abc/artifacts/model").within(&root));
        assert!(Uri::parse("mlflow-artifacts:///1/abc/artifacts/model").within(&root));
        assert!(!Uri::parse("mlflow-artifacts:/1/abd/artifacts/model").within(&root));
        assert!(!Uri::parse("mlflow-artifacts:/1/abc").within(&root));
        assert!(!Uri::parse("s3:/1/abc/artifacts/model").within(&root));
        assert!(local_within(&Uri::parse("/data/1/r/artifacts/model"), "file:///data/1/r/artifacts"));
        assert!(!local_within(&Uri::parse("/data/1/r/artifacts/../../x"), "/data/1/r/artifacts"));
    }

    #[test]
    fn decoding_handles_truncated_escapes() {
        assert_eq!(unquote_fully("a%2", false), "a%2");
        assert_eq!(unquote_fully("%", false), "%");
        assert_eq!(unquote_fully("a+b%20c", true), "a b c");
        assert_eq!(unquote_fully("%25252e", false), ".");
    }
}
