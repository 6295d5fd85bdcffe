//! Recorded answers of writes that carried an Idempotency-Key (`idempotency_keys`, migration
//! 0008). Written through the writer like everything else, but without an audit event: they are
//! request bookkeeping that expires, not a change to the data the log vouches for.
//!
//! A claim is a row with status 0 (no HTTP status is 0) and an empty answer, its `recorded_at`
//! the moment it was claimed; the answer later fills the same row. The claim is an
//! `INSERT … ON CONFLICT DO NOTHING` whose row count says who won, which is atomic on both
//! backends, whether the contenders share this process's writer or are replicas over one
//! PostgreSQL database.

use async_trait::async_trait;
use cairn_core::Result;
use cairn_core::idempotency::{CLAIM_TIMEOUT_MILLIS, Claim, IdempotencyStore, IdempotentAnswer, RETENTION_MILLIS};

use crate::sql::SqlStore;
use crate::sql::common::now_millis;
use crate::sql::db::SqlValue;

#[async_trait]
impl IdempotencyStore for SqlStore {
    async fn idempotent_answer(&self, key: &str) -> Result<Option<IdempotentAnswer>> {
        let key = key.to_owned();
        let oldest = now_millis() - RETENTION_MILLIS;
        self.read(move |db| {
            let rows = db.query(
                "SELECT request_digest, status, content_type, body FROM idempotency_keys \
                 WHERE idem_key = $1 AND recorded_at >= $2 AND status <> 0",
                &[key.as_str().into(), oldest.into()],
            )?;
            let Some(row) = rows.first() else { return Ok(None) };
            let text = |i: usize| row.get(i).cloned().unwrap_or(SqlValue::Null).into_text();
            let status = row.get(1).cloned().unwrap_or(SqlValue::Null).int()?;
            Ok(Some(IdempotentAnswer {
                request_digest: text(0)?,
                status: u16::try_from(status).map_err(|_| cairn_core::Error::internal("stored status out of range"))?,
                content_type: text(2)?,
                body: text(3)?,
            }))
        })
        .await
    }

    async fn record_idempotent_answer(&self, key: &str, answer: IdempotentAnswer) -> Result<()> {
        let key = key.to_owned();
        self.writer
            .write(move |db, tx| {
                let now = tx.now();
                db.execute("DELETE FROM idempotency_keys WHERE recorded_at < $1", &[(now - RETENTION_MILLIS).into()])?;
                db.execute(
                    "INSERT INTO idempotency_keys (idem_key, request_digest, status, content_type, body, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idem_key) DO UPDATE SET \
                     request_digest = excluded.request_digest, status = excluded.status, \
                     content_type = excluded.content_type, body = excluded.body, recorded_at = excluded.recorded_at \
                     WHERE idempotency_keys.status = 0",
                    &[
                        key.as_str().into(),
                        answer.request_digest.as_str().into(),
                        i64::from(answer.status).into(),
                        answer.content_type.as_str().into(),
                        answer.body.as_str().into(),
                        now.into(),
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn claim_idempotency_key(&self, key: &str, request_digest: &str) -> Result<Claim> {
        let key = key.to_owned();
        let digest = request_digest.to_owned();
        self.writer
            .write(move |db, tx| {
                let now = tx.now();
                let inserted = db.execute(
                    "INSERT INTO idempotency_keys (idem_key, request_digest, status, content_type, body, recorded_at) \
                     VALUES ($1, $2, 0, '', '', $3) ON CONFLICT (idem_key) DO NOTHING",
                    &[key.as_str().into(), digest.as_str().into(), now.into()],
                )?;
                if inserted == 1 {
                    return Ok(Claim::Claimed);
                }
                // A claim whose server died under it, or an answer past its retention, is as
                // good as no row; the UPDATE's condition is checked again on the locked row, so
                // of two takers only one changes it.
                let taken = db.execute(
                    "UPDATE idempotency_keys SET request_digest = $1, status = 0, content_type = '', body = '', \
                     recorded_at = $2 WHERE idem_key = $3 AND ((status = 0 AND recorded_at < $4) OR recorded_at < $5)",
                    &[
                        digest.as_str().into(),
                        now.into(),
                        key.as_str().into(),
                        (now - CLAIM_TIMEOUT_MILLIS).into(),
                        (now - RETENTION_MILLIS).into(),
                    ],
                )?;
                if taken == 1 {
                    return Ok(Claim::Claimed);
                }
                let rows = db.query(
                    "SELECT request_digest, status, content_type, body FROM idempotency_keys WHERE idem_key = $1",
                    &[key.as_str().into()],
                )?;
                let Some(row) = rows.first() else {
                    return Err(cairn_core::Error::internal("an idempotency key vanished while it was claimed"));
                };
                let text = |i: usize| row.get(i).cloned().unwrap_or(SqlValue::Null).into_text();
                let status = row.get(1).cloned().unwrap_or(SqlValue::Null).int()?;
                if status == 0 {
                    return Ok(Claim::InProgress { request_digest: text(0)? });
                }
                Ok(Claim::Answered(IdempotentAnswer {
                    request_digest: text(0)?,
                    status: u16::try_from(status)
                        .map_err(|_| cairn_core::Error::internal("stored status out of range"))?,
                    content_type: text(2)?,
                    body: text(3)?,
                }))
            })
            .await
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.writer
            .write(move |db, _tx| {
                db.execute("DELETE FROM idempotency_keys WHERE idem_key = $1 AND status = 0", &[key.as_str().into()])?;
                Ok(())
            })
            .await
    }
}
