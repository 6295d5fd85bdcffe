//! Who a request comes from. [`authenticate`] runs once per request, before routing: it checks
//! `Authorization: Basic` (a user's password, as `MLFLOW_TRACKING_USERNAME`/`PASSWORD` send it)
//! or `Authorization: Bearer` (an API token, as `MLFLOW_TRACKING_TOKEN` sends it) and puts the
//! [`Principal`] in the request's extensions. A request without credentials goes on without
//! one (the web UI's files and public routes need none; [`super::authorize`] answers 401 where
//! one is needed); wrong credentials are answered 401 here.
//!
//! argon2 takes tens of milliseconds on purpose, so a successful verification is remembered for
//! [`VERIFIED_TTL`], keyed by a SHA-256 digest of the credentials (never the password itself)
//! and tied to the password hash it was checked against: a changed password misses at once.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use cairn_core::auth::{AuthData, TokenScope, User};
use cairn_core::model::Actor;

use super::Auth;
use super::secrets::{digests_equal, parse_token, sha256_hex, verify_password};
use crate::error::{ApiError, ErrorCode};

/// How long a verified password is trusted without argon2 again.
pub const VERIFIED_TTL: Duration = Duration::from_secs(60);
const VERIFIED_LIMIT: usize = 10_000;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub is_admin: bool,
    /// The token the request was authenticated with, if not a password.
    pub token: Option<(String, TokenScope)>,
}

impl Principal {
    fn of(user: &User, token: Option<(String, TokenScope)>) -> Self {
        Principal { user_id: user.id, username: user.username.clone(), is_admin: user.is_admin, token }
    }

    /// The audit actor: the user's name, or the token's id (its row names the user).
    pub fn actor(&self) -> Actor {
        match &self.token {
            Some((id, _)) => Actor(format!("token:{id}")),
            None => Actor(self.username.clone()),
        }
    }

    /// Whether the principal's credentials allow changes at all (a `read` or `predictions:`
    /// token does not).
    pub fn may_write(&self) -> bool {
        matches!(self.token, None | Some((_, TokenScope::Write)))
    }

    /// Whether the principal may read (a `predictions:` token may not).
    pub fn may_read(&self) -> bool {
        !matches!(self.token, Some((_, TokenScope::Predictions(_))))
    }
}

/// The address of the client a request came from, put in its extensions by the connection loop.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Verified password credentials: digest -> (user id, the hash they matched, when).
#[derive(Debug, Default)]
pub struct VerifiedCache {
    entries: Mutex<HashMap<String, (i64, String, Instant)>>,
}

impl VerifiedCache {
    fn get(&self, key: &str, data: &AuthData) -> Option<User> {
        let entries = self.entries.lock().expect("verified cache lock");
        let (user_id, hash, at) = entries.get(key)?;
        let user = data.user_by_id(*user_id)?;
        (at.elapsed() < VERIFIED_TTL && user.password_hash == *hash).then(|| user.clone())
    }

    fn put(&self, key: String, user: &User) {
        let mut entries = self.entries.lock().expect("verified cache lock");
        if entries.len() >= VERIFIED_LIMIT {
            entries.retain(|_, (_, _, at)| at.elapsed() < VERIFIED_TTL);
            if entries.len() >= VERIFIED_LIMIT {
                entries.clear();
            }
        }
        entries.insert(key, (user.id, user.password_hash.clone(), Instant::now()));
    }
}

/// The middleware: authenticates the request's credentials, if it has any.
pub async fn authenticate(State(auth): State<Arc<Auth>>, mut request: Request, next: Next) -> Response {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else { return next.run(request).await };
    let value = value.to_str().unwrap_or_default().trim().to_owned();
    let address = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    match verify(&auth, &value, address).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(response) => response,
    }
}

async fn verify(auth: &Auth, value: &str, address: Option<IpAddr>) -> Result<Principal, Response> {
    let mut data = auth.data().await.map_err(|e| ApiError::from(e).into_response())?;
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        if let Some(wait) = auth.failures.blocked(None, address) {
            return Err(too_many(wait));
        }
        let token = credentials.trim();
        let known = parse_token(token).is_some_and(|(id, _)| data.tokens.iter().any(|t| t.id == id));
        if !known {
            data = auth.data_after_miss(Instant::now()).await.map_err(|e| ApiError::from(e).into_response())?;
        }
        return verify_token(auth, &data, token, address).map_err(|b| *b);
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthenticated("Unsupported authorization scheme; use Basic or Bearer"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| unauthenticated("Malformed Basic credentials"))?;
    let (username, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
    if let Some(wait) = auth.failures.blocked(Some(username), address) {
        return Err(too_many(wait));
    }
    let key = sha256_hex(&format!("basic\0{username}\0{password}"));
    if let Some(user) = auth.verified.get(&key, &data) {
        return Ok(Principal::of(&user, None));
    }
    if data.user(username).is_none() {
        data = auth.data_after_miss(Instant::now()).await.map_err(|e| ApiError::from(e).into_response())?;
    }
    let Some(user) = data.user(username).cloned() else {
        auth.failures.record(Some(username), address);
        return Err(unauthenticated("Wrong user name or password"));
    };
    let (password, hash) = (password.to_owned(), user.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false);
    if !matches {
        auth.failures.record(Some(username), address);
        return Err(unauthenticated("Wrong user name or password"));
    }
    auth.verified.put(key, &user);
    Ok(Principal::of(&user, None))
}

fn verify_token(
    auth: &Auth,
    data: &AuthData,
    token: &str,
    address: Option<IpAddr>,
) -> Result<Principal, Box<Response>> {
    let found = parse_token(token)
        .and_then(|(id, digest)| data.tokens.iter().find(|t| t.id == id && digests_equal(&t.secret_digest, &digest)));
    let Some(found) = found else {
        auth.failures.record(None, address);
        return Err(Box::new(unauthenticated("Unknown API token")));
    };
    if !found.is_live(super::now_millis()) {
        let why = if found.revoked_at.is_some() { "revoked" } else { "expired" };
        return Err(Box::new(unauthenticated(&format!("API token {} has been {why}", found.id))));
    }
    let Some(user) = data.user_by_id(found.user_id) else { return Err(Box::new(unauthenticated("Unknown API token"))) };
    auth.touch_token(&found.id);
    Ok(Principal::of(user, Some((found.id.clone(), found.scope.clone()))))
}

/// 401 with the challenge that makes MLflow's client and browsers send credentials.
pub fn unauthenticated(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, message.to_owned()).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"cairn\""));
    response
}

fn too_many(wait_secs: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RequestLimitExceeded,
        format!("Too many failed sign-ins; try again in {wait_secs} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&wait_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}
