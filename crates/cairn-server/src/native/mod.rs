//! Cairn's own routes: liveness, version, the audit log and run artifact manifests.

mod artifacts;
mod audit;
mod health;

use axum::Router;

use crate::AppState;

/// All native routes.
pub fn router() -> Router<AppState> {
    Router::new().merge(health::router()).merge(audit::router()).merge(artifacts::router())
}
