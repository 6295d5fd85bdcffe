//! `GET /health` and `GET /version`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health)).route("/version", get(version))
}

/// 200 when the store answers a trivial query, 503 otherwise.
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    // Asking for events past the largest sequence number is an index probe that returns
    // nothing, so it checks that the store is reachable without doing work.
    match state.store.audit_events(i64::MAX, 1).await {
        Ok(_) => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })))
        }
    }
}

async fn version() -> Json<Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION"), "mlflow_api": "2.0" }))
}
