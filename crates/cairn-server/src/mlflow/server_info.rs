//! `GET /api/3.0/mlflow/server-info`: what MLflow 3 clients ask before using optional features.
//! Every capability Cairn does not have is advertised as off, so clients take their plain paths.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/server-info", get(server_info))
}

async fn server_info() -> Json<Value> {
    Json(json!({
        // Clients only use this for telemetry; Cairn's stores are SQL stores.
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "features_enabled": { "gateway": false },
    }))
}
