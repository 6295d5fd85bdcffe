//! Recorded answers of writes that carried an Idempotency-Key (`idempotency_keys`, migration
//! 0008). Written through the writer like everything else, but without an audit event: they are
//! request bookkeeping that expires, not a change to the data the log vouches for.

use async_trait::async_trait;
use cairn_core::Result;
use cairn_core::idempotency::{IdempotencyStore, IdempotentAnswer, RETENTION_MILLIS};

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
                 WHERE idem_key = $1 AND recorded_at >= $2",
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
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idem_key) DO NOTHING",
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
}
