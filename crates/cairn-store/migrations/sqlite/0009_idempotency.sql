-- Answers recorded for writes that carried an Idempotency-Key, so a replayed write is answered
-- from here instead of being applied again (crates/cairn-core/src/idempotency.rs). Request
-- bookkeeping, not domain data: not audited, no seq, dropped after the retention period.
CREATE TABLE idempotency_keys (
    idem_key       TEXT PRIMARY KEY,
    request_digest TEXT NOT NULL,
    status         INTEGER NOT NULL,
    content_type   TEXT NOT NULL,
    body           TEXT NOT NULL,
    recorded_at    BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_recorded_at ON idempotency_keys (recorded_at);
