//! `/api/cairn/v1/audit/*`: read the audit log (filtered, in either direction) and verify it
//! against the live tables.

use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_query;
use crate::native::lineage::instant;
use cairn_core::audit::AuditQuery;

/// Events returned when the caller gives no `limit`.
pub const DEFAULT_EVENT_LIMIT: u64 = 100;
/// The largest `limit` accepted.
pub const MAX_EVENT_LIMIT: u64 = 10_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/cairn/v1/audit/events", get(events)).route("/api/cairn/v1/audit/verify", post(verify))
}

/// A page of events. Oldest first after `after` (0 by default) unless `order=desc`, which pages
/// newest first, below `before` when given. `actor`, `action`, `entity_type`, `entity_id`
/// (exact) and `since`/`until` (times) filter. `next_after` (ascending) or `next_before`
/// (descending) is present when more may follow.
async fn events(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let args = parse_query(query.as_deref(), &[])?;
    let limit = match args.i64("limit")? {
        None => DEFAULT_EVENT_LIMIT,
        Some(n) if (1..=MAX_EVENT_LIMIT as i64).contains(&n) => n as u64,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter 'limit' supplied. It must be between 1 and {MAX_EVENT_LIMIT}"
            )));
        }
    };
    let newest_first = match args.str("order")?.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid value '{other}' for parameter 'order': expected asc or desc"
            )));
        }
    };
    let time = |name: &str| -> ApiResult<Option<i64>> {
        args.str(name)?.map(|t| instant(name, &Value::String(t))).transpose()
    };
    let text = |name: &str| -> ApiResult<Option<String>> { Ok(args.str(name)?.filter(|v| !v.is_empty())) };
    let query = AuditQuery {
        actor: text("actor")?,
        action: text("action")?,
        entity_type: text("entity_type")?,
        entity_id: text("entity_id")?,
        since: time("since")?,
        until: time("until")?,
        after_seq: if newest_first { args.i64("after")? } else { Some(args.i64("after")?.unwrap_or(0)) },
        before_seq: args.i64("before")?,
        newest_first,
        limit,
    };
    let events = state.store.query_audit(query).await?;
    let mut body = json!({ "events": events });
    if let Some(last) = events.last().filter(|_| events.len() as u64 == limit) {
        body[if newest_first { "next_before" } else { "next_after" }] = json!(last.seq);
    }
    Ok(Json(body))
}

async fn verify(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let report = state.store.verify_audit().await?;
    Ok(Json(json!({ "ok": report.is_ok(), "events": report.events, "problems": report.problems })))
}
