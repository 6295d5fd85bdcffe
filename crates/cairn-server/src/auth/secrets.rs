//! Passwords and API token secrets: hashing, verifying, generating and parsing.
//!
//! Passwords are hashed with argon2id (slow on purpose; the principal cache keeps that off the hot
//! path). Token secrets are 256 random bits, so their SHA-256 digest is enough: nobody can guess
//! a preimage of a random 256-bit value, however fast the hash.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

use cairn_core::{Error, Result};

/// The shortest password accepted, as MLflow's basic-auth app requires.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The argon2id PHC string of `password`.
pub fn hash_password(password: &str) -> Result<String> {
    check_password(password)?;
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| Error::internal(format!("no randomness for a salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("cannot hash a password: {e}")))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Refuses passwords too short to be worth hashing.
pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!("Password must be at least {MIN_PASSWORD_CHARS} characters long.")));
    }
    Ok(())
}

/// A random password for the first admin: 24 characters of URL-safe base64 (144 bits).
pub fn generate_password() -> Result<String> {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    getrandom::getrandom(&mut bytes).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A new token: its public id (`tok_` and 16 hex digits), the whole token to show once
/// (`<id>.<secret>`), and the digest to store.
pub struct GeneratedToken {
    pub id: String,
    pub token: String,
    pub digest: String,
}

impl std::fmt::Debug for GeneratedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedToken").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Makes a token.
pub fn generate_token() -> Result<GeneratedToken> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut id).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    getrandom::getrandom(&mut secret).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    let id = format!("tok_{}", hex::encode(id));
    let secret = hex::encode(secret);
    Ok(GeneratedToken { token: format!("{id}.{secret}"), digest: sha256_hex(&secret), id })
}

/// Splits a presented token into its id and the digest of its secret; `None` when it does not
/// have a token's shape.
pub fn parse_token(token: &str) -> Option<(&str, String)> {
    let (id, secret) = token.split_once('.')?;
    (id.starts_with("tok_") && !secret.is_empty()).then(|| (id, sha256_hex(secret)))
}

/// Lower-case hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Compares two digests in time independent of where they differ.
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse!", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn tokens_parse_back_to_their_digest() {
        let t = generate_token().unwrap();
        let (id, digest) = parse_token(&t.token).unwrap();
        assert_eq!(id, t.id);
        assert!(digests_equal(&digest, &t.digest));
        assert!(parse_token("nodot").is_none());
        assert!(parse_token("abc.def").is_none());
        assert!(!format!("{t:?}").contains(&t.digest));
        assert!(!digests_equal("ab", "abc"));
    }
}
