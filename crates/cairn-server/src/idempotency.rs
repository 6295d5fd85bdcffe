//! `Idempotency-Key` on JSON write requests: a client that may send a write twice (the Python
//! package replaying its offline journal after a lost answer) names it with a key, and a repeat
//! gets the recorded answer, marked `Idempotent-Replayed: true`, instead of being applied again.
//!
//! - Only successful answers are recorded (a failed write can be retried as it is), for
//!   [`RETENTION_MILLIS`](cairn_core::idempotency::RETENTION_MILLIS).
//! - Keys are scoped by user: the record is found under a hash of the actor and the key, so one
//!   user's key never answers another's request.
//! - The same key with another request (method, path, body) is refused rather than answered.
//! - Requests that are not JSON (artifact uploads, which stream) are not covered: an upload of
//!   the same bytes to the same path already leaves the same state.
//! - Two requests with the same key at the same moment are applied once: the first *claims*
//!   the key in the store (atomically, across replicas too) before it runs, and the others wait
//!   up to [`WAIT_FOR_CLAIM`] for its answer and replay it. If it is still running then, they are
//!   told `409 INVALID_STATE` ("in progress", with `Retry-After: 1`), which a retry resolves. A claim whose write failed
//!   is released, so a retry runs the write again.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use cairn_core::audit::sha256_hex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cairn_core::idempotency::{Claim, IdempotentAnswer, validate_key};

use crate::error::ErrorCode;

use crate::error::ApiError;
use crate::extract::basic_auth_user;
use crate::{AppState, BODY_LIMIT_BYTES};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a request waits for another holding its key before it answers "in progress": long
/// enough for any ordinary write, short enough that the client's own timeout has not fired.
const WAIT_FOR_CLAIM: Duration = Duration::from_secs(10);
/// How often a waiting request looks again.
const POLL: Duration = Duration::from_millis(25);

fn is_write(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

/// Length-prefixed fields, hashed: no two different field lists give the same bytes.
fn digest(fields: &[&[u8]]) -> String {
    let mut bytes = Vec::new();
    for field in fields {
        bytes.extend_from_slice(&(field.len() as u64).to_be_bytes());
        bytes.extend_from_slice(field);
    }
    sha256_hex(&bytes)
}

/// What a key is stored under: the actor's and the key's digest, so that one user's key never
/// answers another's request. `actor` is `user:ID` with access control on, else `claimed:NAME`
/// or empty.
pub fn scoped_key(actor: &str, key: &str) -> String {
    digest(&[actor.as_bytes(), key.as_bytes()])
}

/// What a key is bound to: the actor, method, path with query, and body of the request that
/// first named it.
pub fn request_digest(actor: &str, method: &str, path_and_query: &str, body: &[u8]) -> String {
    digest(&[actor.as_bytes(), method.as_bytes(), path_and_query.as_bytes(), body])
}

/// The middleware: answers repeats from the record, records first answers.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !is_write(request.method()) || !is_json(&request) {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(HEADER) else { return next.run(request).await };
    let key = match value.to_str() {
        Ok(key) => key.to_owned(),
        Err(_) => return ApiError::invalid("Invalid Idempotency-Key: not visible ASCII").into_response(),
    };
    if let Err(e) = validate_key(&key) {
        return ApiError::from(e).into_response();
    }
    // With access control on, the authenticated principal (a user or one of their tokens);
    // without it, the name a Basic header claims, which is all the server knows then.
    let actor = match request.extensions().get::<crate::auth::Principal>() {
        Some(principal) => format!("user:{}", principal.user_id),
        None => request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(basic_auth_user)
            .map(|name| format!("claimed:{name}"))
            .unwrap_or_default(),
    };
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, BODY_LIMIT_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::invalid("The request body is too large or was cut off").into_response(),
    };
    let scoped_key = scoped_key(&actor, &key);
    let path = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let request_digest = request_digest(&actor, parts.method.as_str(), path, &bytes);

    let refuse_other = || {
        ApiError::invalid(format!(
            "Idempotency-Key '{key}' was already used for a different request; use a new key for a new write"
        ))
        .into_response()
    };
    let deadline = Instant::now() + WAIT_FOR_CLAIM;
    loop {
        match state.store.claim_idempotency_key(&scoped_key, &request_digest).await {
            Err(e) => return ApiError::from(e).into_response(),
            Ok(Claim::Claimed) => break,
            Ok(Claim::Answered(answer)) if answer.request_digest == request_digest => return replay(answer),
            Ok(Claim::Answered(_)) => return refuse_other(),
            Ok(Claim::InProgress { request_digest: theirs }) if theirs != request_digest => return refuse_other(),
            Ok(Claim::InProgress { .. }) if Instant::now() >= deadline => {
                let mut response = ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::InvalidState,
                    format!("A request with Idempotency-Key '{key}' is still in progress; retry it shortly"),
                )
                .into_response();
                // Unlike other conflicts this one passes: the header tells clients to retry.
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            // Looking again claims the key if its holder failed and released it meanwhile.
            Ok(Claim::InProgress { .. }) => tokio::time::sleep(POLL).await,
        }
    }

    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if !response.status().is_success() {
        release(&state, &scoped_key).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT_BYTES).await else {
        tracing::error!("a write answer could not be read for its idempotency record");
        release(&state, &scoped_key).await;
        return ApiError::from(cairn_core::Error::internal("unreadable answer")).into_response();
    };
    let content_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_owned();
    if let Ok(text) = std::str::from_utf8(&bytes) {
        let answer =
            IdempotentAnswer { request_digest, status: parts.status.as_u16(), content_type, body: text.to_owned() };
        // The write is done and its answer stands; failing to record it only means a repeat
        // would be applied again, so it is logged rather than turned into an error.
        if let Err(e) = state.store.record_idempotent_answer(&scoped_key, answer).await {
            tracing::warn!(error = %e, "could not record an idempotent answer");
            release(&state, &scoped_key).await;
        }
    } else {
        release(&state, &scoped_key).await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Gives the key back after a write that left no answer to replay, so waiting requests and
/// retries run it themselves. Failing that, the claim expires on its own, so it is only logged.
async fn release(state: &AppState, scoped_key: &str) {
    if let Err(e) = state.store.release_idempotency_key(scoped_key).await {
        tracing::warn!(error = %e, "could not release an idempotency claim");
    }
}

fn replay(answer: IdempotentAnswer) -> Response {
    let status = axum::http::StatusCode::from_u16(answer.status).unwrap_or(axum::http::StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    if let Ok(content_type) = HeaderValue::from_str(&answer.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    }
    response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
