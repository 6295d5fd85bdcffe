//! Idempotency keys: a client that may send a write twice (a replay after a lost answer) names
//! it with a key, and the server answers a repeat with the answer it recorded instead of
//! applying the write again. The recorded answers are request bookkeeping, not domain data:
//! they are not audited, and they expire after [`RETENTION_MILLIS`].

use async_trait::async_trait;

use crate::Result;
use crate::model::Millis;

/// How long an answer is kept: long enough to cover an offline client syncing a week later.
pub const RETENTION_MILLIS: Millis = 7 * 24 * 60 * 60 * 1000;
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
    /// Records the answer for `key` (the first answer wins) and drops expired ones.
    async fn record_idempotent_answer(&self, key: &str, answer: IdempotentAnswer) -> Result<()>;
}
