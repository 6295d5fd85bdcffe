//! Idempotency keys: a client that may send a write twice (a replay after a lost answer) names
//! it with a key, and the server answers a repeat with the answer it recorded instead of
//! applying the write again. The recorded answers are request bookkeeping, not domain data:
//! they are not audited, and they expire after [`RETENTION_MILLIS`].
//!
//! Two requests with one key may arrive together (a client retrying while its first attempt is
//! still being served, or two replicas behind a load balancer each given one). So a request
//! first *claims* its key, atomically: exactly one claim wins and applies the write; the others
//! see the claim in progress and wait for its answer (or are told to retry). A claim whose
//! request never finished (the server died under it) is taken over after
//! [`CLAIM_TIMEOUT_MILLIS`].

use async_trait::async_trait;

use crate::Result;
use crate::model::Millis;

/// How long an answer is kept: long enough to cover an offline client syncing a week later.
pub const RETENTION_MILLIS: Millis = 7 * 24 * 60 * 60 * 1000;
/// How long a claim holds its key with no answer before another request may take it over: far
/// longer than any write takes, so only a claim whose server died mid-request expires.
pub const CLAIM_TIMEOUT_MILLIS: Millis = 2 * 60 * 1000;
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// The answer recorded for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentAnswer {
    /// Who sent the request and what it was (method, path, body), hashed: a key reused for
    /// another request, or by another user, is not answered from the record.
    pub request_digest: String,
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: apply the write, then record its answer (or release the
    /// key if it failed).
    Claimed,
    /// A request already finished under the key; this is its answer.
    Answered(IdempotentAnswer),
    /// Another request holds the key and has not answered yet; `request_digest` is the one it
    /// claimed with, so a different request under the same key can be refused at once.
    InProgress { request_digest: String },
}

/// Checks a key: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(crate::Error::invalid(format!(
            "Invalid Idempotency-Key: expected 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(())
}

/// Where recorded answers live.
#[async_trait]
pub trait IdempotencyStore {
    /// The answer recorded for `key`, if it has not expired.
    async fn idempotent_answer(&self, key: &str) -> Result<Option<IdempotentAnswer>>;
    /// Records the answer for `key` (the first answer wins; it replaces a claim) and drops
    /// expired ones.
    async fn record_idempotent_answer(&self, key: &str, answer: IdempotentAnswer) -> Result<()>;
    /// Claims `key` for a request with `request_digest`: atomically, so of any number of
    /// concurrent claims (on one server or several over one database) exactly one is
    /// [`Claim::Claimed`]. A claim older than [`CLAIM_TIMEOUT_MILLIS`] is taken over.
    async fn claim_idempotency_key(&self, key: &str, request_digest: &str) -> Result<Claim>;
    /// Gives up a claim that has no answer (its write failed, so a retry may try again); an
    /// answered key is left alone.
    async fn release_idempotency_key(&self, key: &str) -> Result<()>;
}
