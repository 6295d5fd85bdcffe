//! The tracking server's own download routes, which MLflow's UI uses and serves at the root
//! (not under `/api`):
//! - `GET /get-artifact?run_id=…&path=…` (or `run_uuid`): a file of a run;
//! - `GET /model-versions/get-artifact?name=…&version=…&path=…`: a file of a registered model
//!   version, wherever its files live (pinned files, `runs:/`, `models:/`, `mlflow-artifacts:`).
//!
//! Both send attachments typed by file name (see `download`). Files the server does not hold
//! (a version whose source is an outside URI such as `s3://…`) are `RESOURCE_DOES_NOT_EXIST`.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;

use cairn_artifacts::RelativePath;
use cairn_core::artifacts::ArtifactFile;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_query;
use crate::mlflow::artifacts::{find_file, sanitize};
use crate::mlflow::download::attachment;
use crate::mlflow::local_files;
use crate::mlflow::registry::{artifact_uri, parse_version_text};

/// Routes: `GET /get-artifact` and `GET /model-versions/get-artifact`, at the root.
pub fn router() -> Router<AppState> {
    Router::new().route("/get-artifact", get(run_artifact)).route("/model-versions/get-artifact", get(version_artifact))
}

async fn run_artifact(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let args = parse_query(query.as_deref(), &[])?;
    let run_id = match args.str("run_id")?.filter(|s| !s.is_empty()) {
        Some(id) => id,
        None => args.required_str("run_uuid")?,
    };
    let path = sanitize(&args.required_str("path")?)?;
    let artifacts = state.artifacts()?;
    let run = state.store.get_run(&run_id).await?;
    if artifacts.manifest.get_artifact(&run.info.run_id, path.as_str()).await?.is_none()
        && let Some(response) = local_files::attachment(&state, &run.info.artifact_uri, &path).await?
    {
        return Ok(response);
    }
    let file = owned_file(&state, &run.info.run_id, &path).await?;
    attachment(artifacts, &file, path.as_str(), headers.get(header::RANGE)).await
}

async fn version_artifact(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let args = parse_query(query.as_deref(), &[])?;
    let name = args.required_str("name")?;
    let version = parse_version_text(&args.required_str("version")?)?;
    let path = sanitize(&args.required_str("path")?)?;
    let artifacts = state.artifacts()?;
    let found = state.store.get_model_version(&name, version).await?;
    let uri = artifact_uri(&found);
    let file = match Location::of(&uri) {
        Location::Proxied(root) => find_file(&state, &sanitize(&join(&root, path.as_str()))?).await?,
        Location::Run { run_id, dir } => owned_file(&state, &run_id, &sanitize(&join(&dir, path.as_str()))?).await?,
        Location::Model(model_id) => owned_file(&state, &model_id, &path).await?,
        Location::Elsewhere => {
            return Err(ApiError::from(cairn_core::Error::not_found(format!(
                "The files of model '{name}' version {version} are at '{uri}', which this server does not hold"
            ))));
        }
    };
    attachment(artifacts, &file, path.as_str(), headers.get(header::RANGE)).await
}

/// A file in the manifest of `owner` (a run or logged model id).
async fn owned_file(state: &AppState, owner: &str, path: &RelativePath) -> ApiResult<ArtifactFile> {
    let artifacts = state.artifacts()?;
    artifacts
        .manifest
        .get_artifact(owner, path.as_str())
        .await?
        .ok_or_else(|| ApiError::from(cairn_core::Error::not_found(format!("No artifact at '{path}'"))))
}

fn join(dir: &str, path: &str) -> String {
    match (dir.trim_matches('/'), path) {
        ("", path) => path.to_owned(),
        (dir, "") => dir.to_owned(),
        (dir, path) => format!("{dir}/{path}"),
    }
}

/// Where a version's artifact URI points, as far as this server can serve it.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    /// Below the `mlflow-artifacts:` root, at this path.
    Proxied(String),
    /// A directory of a run's artifacts.
    Run {
        run_id: String,
        dir: String,
    },
    /// A logged model's files.
    Model(String),
    Elsewhere,
}

impl Location {
    fn of(uri: &str) -> Location {
        if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
            // `mlflow-artifacts://host:port/path` names this server too; the host is ignored.
            let path = match rest.strip_prefix("//") {
                Some(with_host) => with_host.split_once('/').map_or("", |(_, p)| p),
                None => rest,
            };
            return Location::Proxied(path.trim_start_matches('/').to_owned());
        }
        if let Some(rest) = uri.strip_prefix("runs:/") {
            let rest = rest.trim_start_matches('/');
            let (run_id, dir) = rest.split_once('/').unwrap_or((rest, ""));
            return Location::Run { run_id: run_id.to_owned(), dir: dir.to_owned() };
        }
        if let Some(rest) = uri.strip_prefix("models:/") {
            let id = rest.trim_matches('/');
            if cairn_core::logged_models::is_model_id(id) {
                return Location::Model(id.to_owned());
            }
        }
        Location::Elsewhere
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_uris_resolve_to_what_the_server_holds() {
        assert_eq!(Location::of("mlflow-artifacts:"), Location::Proxied(String::new()));
        assert_eq!(
            Location::of("mlflow-artifacts:/model-versions/p-1"),
            Location::Proxied("model-versions/p-1".into())
        );
        assert_eq!(
            Location::of("mlflow-artifacts://host:5000/1/abc/artifacts"),
            Location::Proxied("1/abc/artifacts".into())
        );
        assert_eq!(Location::of("runs:/abc/model"), Location::Run { run_id: "abc".into(), dir: "model".into() });
        assert_eq!(Location::of("runs:/abc"), Location::Run { run_id: "abc".into(), dir: String::new() });
        let id = "m-0123456789abcdef0123456789abcdef";
        assert_eq!(Location::of(&format!("models:/{id}")), Location::Model(id.into()));
        assert_eq!(Location::of("models:/name/1"), Location::Elsewhere);
        assert_eq!(Location::of("s3://bucket/x"), Location::Elsewhere);
        assert_eq!(join("", "a.txt"), "a.txt");
        assert_eq!(join("model/", "MLmodel"), "model/MLmodel");
    }
}
