//! MLflow's tracking REST API. Each resource module owns its routes, request parsing and
//! responses; this module mounts them under the REST prefix and the UI's `ajax-api` prefix.

mod artifacts;
mod batch_body;
mod commit;
pub(crate) mod experiments;
mod inputs;
mod logged_models;
mod metrics;
mod multipart;
mod paging;
mod registry;
mod runs;
mod server_info;

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
        .merge(registry::router());
    let v3 = server_info::router();
    Router::new()
        .merge(artifacts::router())
        .nest("/api/2.0/mlflow", v2.clone())
        .nest("/ajax-api/2.0/mlflow", v2)
        .nest("/api/3.0/mlflow", v3.clone())
        .nest("/ajax-api/3.0/mlflow", v3)
}
