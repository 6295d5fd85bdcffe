//! Claims on blob digests that order uploads against garbage collection across processes (see
//! `ArtifactManifest::pin_blob`). Each function runs inside a write transaction.
//!
//! Two transactions that check "nobody else holds a claim" and then insert their own must not
//! both pass. On SQLite every write transaction excludes the others already. On PostgreSQL, whose
//! transactions only read committed data, writers are serialized today by the audit head's row
//! lock, which every group transaction takes first; the claims do not rely on that (a faster
//! writer may drop it): they also take a transaction-scoped advisory lock named after the digest, so the check and the insert of one claim happen before or after
//! those of any other claim on the same digest, whichever process makes it. The lock is only
//! tried, never waited for: a writer's group transaction may hold it together with other locks
//! (the audit head's row) until its commit, and waiting could deadlock two writers. A digest
//! whose lock is taken counts as claimed by the other side, which is the safe answer for both:
//! the upload waits a moment and pins again, the collector leaves the blob for its next pass.

use cairn_core::Result;
use cairn_core::model::Millis;

use crate::sql::artifacts;
use crate::sql::db::{Db, Dialect};

/// Set in every claim lock's key, so that it cannot collide with the migration lock.
const LOCK_NAMESPACE: i64 = 0x0b10_b000_0000_0000;

/// The advisory lock key of `digest`: its first 13 hex digits (52 bits) inside the namespace.
/// Different digests may share a key; that only makes one wait for the other.
fn lock_key(digest: &str) -> i64 {
    let head = digest.get(..13).and_then(|h| i64::from_str_radix(h, 16).ok()).unwrap_or(0);
    LOCK_NAMESPACE | head
}

/// Whether this transaction holds the claim lock of `digest` (always, on SQLite).
fn lock(db: &mut dyn Db, digest: &str) -> Result<bool> {
    if db.dialect() != Dialect::Postgres {
        return Ok(true);
    }
    let rows =
        db.query("SELECT CASE WHEN pg_try_advisory_xact_lock($1) THEN 1 ELSE 0 END", &[lock_key(digest).into()])?;
    Ok(rows.into_iter().next().and_then(|row| row.into_iter().next()).map(|v| v.int()).transpose()? == Some(1))
}

/// Removes the expired claims on `digest`, which crashed processes left behind.
fn forget_expired(db: &mut dyn Db, digest: &str, now: Millis) -> Result<()> {
    db.execute("DELETE FROM blob_pins WHERE digest = $1 AND expires_at <= $2", &[digest.into(), now.into()])?;
    db.execute("DELETE FROM blob_deletions WHERE digest = $1 AND expires_at <= $2", &[digest.into(), now.into()])?;
    Ok(())
}

fn exists(db: &mut dyn Db, sql: &str, digest: &str) -> Result<bool> {
    Ok(!db.query(sql, &[digest.into()])?.is_empty())
}

/// An upload's pin; `false` while a collector holds a deletion claim.
pub fn pin(db: &mut dyn Db, digest: &str, holder: &str, now: Millis, ttl: Millis) -> Result<bool> {
    if !lock(db, digest)? {
        return Ok(false);
    }
    forget_expired(db, digest, now)?;
    if exists(db, "SELECT 1 FROM blob_deletions WHERE digest = $1", digest)? {
        return Ok(false);
    }
    db.execute(
        "INSERT INTO blob_pins (digest, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (digest, holder) DO UPDATE SET expires_at = excluded.expires_at",
        &[digest.into(), holder.into(), now.saturating_add(ttl).into()],
    )?;
    Ok(true)
}

pub fn unpin(db: &mut dyn Db, digest: &str, holder: &str) -> Result<()> {
    db.execute("DELETE FROM blob_pins WHERE digest = $1 AND holder = $2", &[digest.into(), holder.into()])?;
    Ok(())
}

/// A collector's claim; `true` only for a blob nothing names, pins or is already deleting.
pub fn claim_deletion(db: &mut dyn Db, digest: &str, holder: &str, now: Millis, ttl: Millis) -> Result<bool> {
    if !lock(db, digest)? {
        return Ok(false);
    }
    forget_expired(db, digest, now)?;
    if artifacts::is_referenced(db, digest)?
        || exists(db, "SELECT 1 FROM blob_pins WHERE digest = $1", digest)?
        || exists(db, "SELECT 1 FROM blob_deletions WHERE digest = $1", digest)?
    {
        return Ok(false);
    }
    db.execute(
        "INSERT INTO blob_deletions (digest, holder, expires_at) VALUES ($1, $2, $3)",
        &[digest.into(), holder.into(), now.saturating_add(ttl).into()],
    )?;
    Ok(true)
}

pub fn release_deletion(db: &mut dyn Db, digest: &str, holder: &str) -> Result<()> {
    db.execute("DELETE FROM blob_deletions WHERE digest = $1 AND holder = $2", &[digest.into(), holder.into()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_stay_in_their_namespace() {
        let key = lock_key(&"f".repeat(64));
        assert_eq!(key & LOCK_NAMESPACE, LOCK_NAMESPACE);
        assert_ne!(lock_key(&"0".repeat(64)), lock_key(&"1".repeat(64)));
        assert_eq!(lock_key("not hex"), LOCK_NAMESPACE);
    }
}
