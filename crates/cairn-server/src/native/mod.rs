//! Cairn's own routes: liveness, version, the audit log, run artifact manifests, the registry's
//! history, runs and logged models created under a client-chosen id, run counts per experiment, downsampled metric histories, the caller's session (who they are, what they may do), the lineage graph, predictions, OpenLineage in, and the OpenAPI document of them all.

mod artifacts;
mod audit;
mod chosen_id;
mod health;
mod lineage;
mod logged_models;
mod metrics;
mod models;
mod openapi;
mod openlineage;
mod predictions;
mod run_counts;
mod runs;
mod session;

use axum::Router;

use crate::AppState;

/// All native routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(audit::router())
        .merge(artifacts::router())
        .merge(models::router())
        .merge(lineage::router())
        .merge(metrics::router())
        .merge(predictions::router())
        .merge(runs::router())
        .merge(logged_models::router())
        .merge(run_counts::router())
        .merge(session::router())
        .merge(openlineage::router())
        .merge(openapi::router())
}
