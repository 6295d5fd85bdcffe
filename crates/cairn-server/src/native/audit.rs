//! `/api/cairn/v1/audit/*`: read the audit log and verify it against the live tables.

use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_query;

/// Events returned when the caller gives no `limit`.
pub const DEFAULT_EVENT_LIMIT: u64 = 100;
/// The largest `limit` accepted.
pub const MAX_EVENT_LIMIT: u64 = 10_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/cairn/v1/audit/events", get(events)).route("/api/cairn/v1/audit/verify", post(verify))
}

/// Events with `seq > after`, oldest first. `next_after` is present when more may follow.
async fn events(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let after = args.i64("after")?.unwrap_or(0);
    let limit = match args.i64("limit")? {
        None => DEFAULT_EVENT_LIMIT,
        Some(n) if (1..=MAX_EVENT_LIMIT as i64).contains(&n) => n as u64,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter 'limit' supplied. It must be between 1 and {MAX_EVENT_LIMIT}"
            )));
        }
    };
    let events = state.store.audit_events(after, limit).await?;
    let mut body = json!({ "events": events });
    if let Some(last) = events.last().filter(|_| events.len() as u64 == limit) {
        body["next_after"] = json!(last.seq);
    }
    Ok(Json(body))
}

async fn verify(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let report = state.store.verify_audit().await?;
    Ok(Json(json!({ "ok": report.is_ok(), "events": report.events, "problems": report.problems })))
}
