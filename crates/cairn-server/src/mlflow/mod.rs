//! MLflow's tracking REST API. Each resource module owns its routes, request parsing and
//! responses; this module mounts them under the REST prefix and the UI's `ajax-api` prefix
//! (one route definition serves both), plus the few routes MLflow serves only under
//! `ajax-api` and the tracking server's root-level download routes.

mod artifact_list;
mod artifact_location;
mod artifacts;
pub(crate) mod batch_body;
mod commit;
mod datasets;
mod download;
pub(crate) mod experiments;
mod get_artifact;
pub mod graphql_bridge;
mod history_bulk;
mod inputs;
mod local_files;
mod logged_model_files;
pub(crate) mod logged_models;
mod metrics;
mod multipart;
mod paging;
mod registry;
mod runs;
mod server_info;
mod upload_artifact;

use axum::Router;

use crate::AppState;

/// All MLflow routes under both prefixes MLflow serves them at.
pub fn router() -> Router<AppState> {
    let v2 = Router::new()
        .merge(experiments::router())
        .merge(runs::router())
        .merge(metrics::router())
        .merge(logged_models::router())
        .merge(inputs::router())
        .merge(registry::router())
        .merge(artifact_list::router());
    // What MLflow's server answers only for its UI.
    let ajax_only = Router::new()
        .merge(history_bulk::router())
        .merge(datasets::router())
        .merge(upload_artifact::router())
        .merge(logged_model_files::router());
    let v3 = server_info::router();
    Router::new()
        .merge(artifacts::router())
        .merge(get_artifact::router())
        .nest("/api/2.0/mlflow", v2.clone())
        .nest("/ajax-api/2.0/mlflow", v2.merge(ajax_only))
        .nest("/api/3.0/mlflow", v3.clone())
        .nest("/ajax-api/3.0/mlflow", v3)
}
