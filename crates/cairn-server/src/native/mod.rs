//! Cairn's own routes: liveness, version and the audit log.

mod audit;
mod health;

use axum::Router;

use crate::AppState;

/// All native routes.
pub fn router() -> Router<AppState> {
    Router::new().merge(health::router()).merge(audit::router())
}
