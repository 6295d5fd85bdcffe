//! Appending audit events inside the write transaction, listing them, and verifying the log
//! against the live tables.

use std::collections::HashMap;

use cairn_core::audit::{
    AuditEvent, AuditQuery, GENESIS_HASH, MetricRow, Payload, Verifier, VerifyReport, chain_hash, child_id, entity,
    metrics_digest, sha256_hex,
};
use cairn_core::model::Millis;
use cairn_core::progress::{Progress, Silent};
use cairn_core::{Error, Result};

use crate::sql::artifacts;
use crate::sql::db::{Db, Dialect, Row, SqlValue};
use crate::sql::rows::{ChildKind, ChildRow, ExperimentRow, RunRow};

/// Events read per query while verifying.
const VERIFY_PAGE: u64 = 5000;

/// The end of the hash chain: the last event's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

impl AuditHead {
    /// Reads the head at the start of a write transaction. On PostgreSQL the head row is locked
    /// until COMMIT, so that writers in different server processes append one at a time; SQLite's
    /// `BEGIN IMMEDIATE` already excludes other writers, and the head is the newest event.
    pub fn load(db: &mut dyn Db) -> Result<Self> {
        let sql = match db.dialect() {
            Dialect::Sqlite => "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
            Dialect::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        };
        let rows = db.query(sql, &[])?;
        match rows.into_iter().next() {
            Some(mut row) if row.len() == 2 => {
                let hash = std::mem::replace(&mut row[1], SqlValue::Null).into_text()?;
                Ok(AuditHead { seq: row[0].int()?, hash })
            }
            _ => Ok(AuditHead { seq: 0, hash: GENESIS_HASH.to_owned() }),
        }
    }

    /// Persists the head before COMMIT where the dialect keeps it in its own row.
    pub fn save(&self, db: &mut dyn Db) -> Result<()> {
        if db.dialect() == Dialect::Postgres {
            db.defer(
                "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
                &[self.seq.into(), self.hash.as_str().into()],
            )?;
        }
        Ok(())
    }
}

/// What a mutation says about itself; [`append`] adds the sequence number, time and hashes.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub payload: Payload,
}

/// Appends one event after `head` and advances `head` to it.
pub fn append(db: &mut dyn Db, head: &mut AuditHead, time: Millis, event: NewEvent<'_>) -> Result<()> {
    let seq = head.seq + 1;
    let payload = event.payload.to_canonical();
    let digest = sha256_hex(payload.as_bytes());
    let hash =
        chain_hash(&head.hash, seq, time, event.actor, event.action, event.entity_type, event.entity_id, &digest);
    // Nothing but a broken database refuses this insert (the head is locked and `seq` is the
    // next one), so it may travel with the request's next statement.
    db.defer(
        "INSERT INTO audit_events (seq, time, actor, action, entity_type, entity_id, payload, digest, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            seq.into(),
            time.into(),
            event.actor.into(),
            event.action.into(),
            event.entity_type.into(),
            event.entity_id.into(),
            payload.into(),
            digest.into(),
            head.hash.as_str().into(),
            hash.as_str().into(),
        ],
    )?;
    *head = AuditHead { seq, hash };
    Ok(())
}

fn event_from_row(row: Row) -> Result<AuditEvent> {
    let mut it = row.into_iter();
    let mut next = || it.next().unwrap_or(SqlValue::Null);
    Ok(AuditEvent {
        seq: next().int()?,
        time: next().int()?,
        actor: next().into_text()?,
        action: next().into_text()?,
        entity_type: next().into_text()?,
        entity_id: next().into_text()?,
        payload: next().into_text()?,
        digest: next().into_text()?,
        prev_hash: next().into_text()?,
        hash: next().into_text()?,
    })
}

/// Events with `seq > after_seq`, oldest first, at most `limit`.
pub fn list(db: &mut dyn Db, after_seq: i64, limit: u64) -> Result<Vec<AuditEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    db.query(
        "SELECT seq, time, actor, action, entity_type, entity_id, payload, digest, prev_hash, hash \
         FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[after_seq.into(), limit.into()],
    )?
    .into_iter()
    .map(event_from_row)
    .collect()
}

/// A filtered page of the log. Every filter is a bound parameter; the page is read off the
/// primary key in the asked direction, so it costs the same on the millionth event as on the
/// first when the filters match often.
pub fn query(db: &mut dyn Db, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    let mut bind = |clause: &str, value: SqlValue| {
        params.push(value);
        clauses.push(clause.replace('?', &format!("${}", params.len())));
    };
    let text_filters =
        [("actor", &q.actor), ("action", &q.action), ("entity_type", &q.entity_type), ("entity_id", &q.entity_id)];
    for (column, value) in text_filters {
        if let Some(value) = value {
            bind(&format!("{column} = ?"), value.clone().into());
        }
    }
    if let Some(since) = q.since {
        bind("time >= ?", since.into());
    }
    if let Some(until) = q.until {
        bind("time <= ?", until.into());
    }
    if let Some(after) = q.after_seq {
        bind("seq > ?", after.into());
    }
    if let Some(before) = q.before_seq {
        bind("seq < ?", before.into());
    }
    let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    let order = if q.newest_first { "DESC" } else { "ASC" };
    params.push(i64::try_from(q.limit).unwrap_or(i64::MAX).into());
    let sql = format!(
        "SELECT seq, time, actor, action, entity_type, entity_id, payload, digest, prev_hash, hash \
         FROM audit_events {filter} ORDER BY seq {order} LIMIT ${}",
        params.len()
    );
    db.query(&sql, &params)?.into_iter().map(event_from_row).collect()
}

/// Replays the whole log through a [`Verifier`] and compares every live row with it. Call inside
/// one read snapshot so that the log and the tables are read at the same point in time.
pub fn verify(db: &mut dyn Db) -> Result<VerifyReport> {
    verify_with(db, &Silent)?.ok_or_else(|| Error::internal("an unwatched verification was cancelled"))
}

/// [`verify`], reporting the events checked to `progress` and stopping between two pages of
/// events (`None`) if it is cancelled. The comparison of live rows with the log comes last and
/// is one phase.
pub fn verify_with(db: &mut dyn Db, progress: &dyn Progress) -> Result<Option<VerifyReport>> {
    let total = db.query("SELECT count(*) FROM audit_events", &[])?;
    let total = total.into_iter().next().and_then(|r| r.into_iter().next()).map(|v| v.int()).transpose()?;
    progress.phase("audit events", total.and_then(|n| u64::try_from(n).ok()));
    let mut verifier = Verifier::new();
    let mut after = i64::MIN;
    loop {
        if progress.cancelled() {
            return Ok(None);
        }
        let page = list(db, after, VERIFY_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            verifier.event(event);
        }
        progress.advance(page.len() as u64);
    }
    progress.phase("live rows against the log", None);

    for row in db.query(&format!("SELECT {} FROM experiments", ExperimentRow::COLUMNS), &[])? {
        let row = ExperimentRow::from_row(row)?;
        verifier.live_entity(entity::EXPERIMENT, &row.experiment_id.to_string(), &row.image());
    }
    for row in db.query("SELECT experiment_id, key, value FROM experiment_tags", &[])? {
        let mut it = row.into_iter();
        let owner = it.next().unwrap_or(SqlValue::Null).int()?.to_string();
        let child = child_row(ChildKind::ExperimentTag, owner, it)?;
        verifier.live_entity(entity::EXPERIMENT_TAG, &child.audit_id(), &child.image());
    }

    let mut run_ids: HashMap<i64, String> = HashMap::new();
    for row in db.query(&format!("SELECT {} FROM runs", RunRow::COLUMNS), &[])? {
        let row = RunRow::from_row(row)?;
        verifier.live_entity(entity::RUN, &row.run_id, &row.image());
        run_ids.insert(row.run_pk, row.run_id);
    }
    for (kind, table) in [(ChildKind::Param, "params"), (ChildKind::RunTag, "run_tags")] {
        // `table` is one of two constants above.
        for row in db.query(&format!("SELECT run_pk, key, value FROM {table}"), &[])? {
            let mut it = row.into_iter();
            let owner = run_owner(&run_ids, it.next().unwrap_or(SqlValue::Null).int()?);
            let child = child_row(kind, owner, it)?;
            verifier.live_entity(kind.entity(), &child.audit_id(), &child.image());
        }
    }

    for file in artifacts::all(db)? {
        let id = child_id(&file.run_id, &file.file.path);
        verifier.live_entity(entity::ARTIFACT_FILE, &id, &artifacts::image(&file.run_id, &file.file));
    }

    crate::sql::lineage::verify_live(db, &mut verifier)?;
    crate::sql::registry::verify_live(db, &mut verifier)?;
    verify_metrics(db, &mut verifier, &run_ids)?;
    crate::sql::logged_models::verify_live(db, &mut verifier)?;
    crate::sql::auth::verify_live(db, &mut verifier)?;
    Ok(Some(verifier.finish()))
}

fn child_row(kind: ChildKind, owner: String, mut rest: impl Iterator<Item = SqlValue>) -> Result<ChildRow> {
    let key = rest.next().unwrap_or(SqlValue::Null).into_text()?;
    let value = rest.next().unwrap_or(SqlValue::Null).into_text()?;
    Ok(ChildRow { kind, owner, key, value })
}

/// The public id of a run, or a marker naming the dangling key of a row whose run is gone (so
/// the row is reported rather than silently skipped).
fn run_owner(run_ids: &HashMap<i64, String>, run_pk: i64) -> String {
    run_ids.get(&run_pk).cloned().unwrap_or_else(|| format!("#{run_pk}"))
}

/// Digests the metric rows of each event and hands them to the verifier. One event writes to
/// one run, so the rows of every event are found by reading one run at a time (an index range),
/// which keeps memory bounded by the largest run rather than the whole table.
fn verify_metrics(db: &mut dyn Db, verifier: &mut Verifier, run_ids: &HashMap<i64, String>) -> Result<()> {
    let mut keys: HashMap<i64, String> = HashMap::new();
    for row in db.query("SELECT key_id, key FROM metric_keys", &[])? {
        let mut it = row.into_iter();
        let id = it.next().unwrap_or(SqlValue::Null).int()?;
        keys.insert(id, it.next().unwrap_or(SqlValue::Null).into_text()?);
    }
    const COLUMNS: &str = "seq, key_id, step, timestamp, value, is_nan, run_pk";
    let mut pks: Vec<i64> = run_ids.keys().copied().collect();
    pks.sort_unstable();
    for pk in pks {
        let rows = db.query(&format!("SELECT {COLUMNS} FROM metrics WHERE run_pk = $1 ORDER BY seq"), &[pk.into()])?;
        feed_metric_rows(verifier, rows, run_ids, &keys)?;
    }
    let orphans = db.query(
        &format!("SELECT {COLUMNS} FROM metrics WHERE run_pk NOT IN (SELECT run_pk FROM runs) ORDER BY seq"),
        &[],
    )?;
    feed_metric_rows(verifier, orphans, run_ids, &keys)
}

struct LiveMetric {
    seq: i64,
    run_id: String,
    key: String,
    step: i64,
    timestamp: i64,
    value: f64,
}

fn feed_metric_rows(
    verifier: &mut Verifier,
    rows: Vec<Row>,
    run_ids: &HashMap<i64, String>,
    keys: &HashMap<i64, String>,
) -> Result<()> {
    let mut live = Vec::with_capacity(rows.len());
    for row in rows {
        let [seq, key_id, step, timestamp, value, is_nan, run_pk]: [SqlValue; 7] =
            row.try_into().map_err(|_| cairn_core::Error::internal("metric row has the wrong width"))?;
        let key_id = key_id.int()?;
        live.push(LiveMetric {
            seq: seq.int()?,
            run_id: run_owner(run_ids, run_pk.int()?),
            key: keys.get(&key_id).cloned().unwrap_or_else(|| format!("#{key_id}")),
            step: step.int()?,
            timestamp: timestamp.int()?,
            value: if is_nan.int()? != 0 { f64::NAN } else { value.real()? },
        });
    }
    live.sort_by_key(|m| m.seq);
    for group in live.chunk_by(|a, b| a.seq == b.seq) {
        let mut digest_rows: Vec<MetricRow<'_>> = group
            .iter()
            .map(|m| MetricRow { run_id: &m.run_id, key: &m.key, step: m.step, timestamp: m.timestamp, value: m.value })
            .collect();
        verifier.live_metrics(group[0].seq, &metrics_digest(&mut digest_rows));
    }
    Ok(())
}
