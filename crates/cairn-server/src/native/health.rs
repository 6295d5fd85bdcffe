//! `GET /health`, `GET /ready` and `GET /version`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health)).route("/ready", get(ready)).route("/version", get(version))
}

/// 200 when the store answers a trivial query, 503 otherwise.
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if store_answers(&state).await {
        (StatusCode::OK, Json(json!({ "status": "ok" })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })))
    }
}

/// 200 when this server should be sent requests: its store answers (it was migrated before the
/// server started listening) and it is not draining for a shutdown; 503 otherwise.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.readiness.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "draining" })));
    }
    health(State(state)).await
}

async fn store_answers(state: &AppState) -> bool {
    // Asking for events past the largest sequence number is an index probe that returns
    // nothing, so it checks that the store is reachable without doing work.
    match state.store.audit_events(i64::MAX, 1).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            false
        }
    }
}

async fn version() -> Json<Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION"), "mlflow_api": "2.0" }))
}
