//! Appending audit events inside the write transaction, listing them, and verifying the log
//! against the live tables.

use std::collections::{BTreeMap, HashMap};

use cairn_core::audit::{
    AuditEvent, AuditQuery, CHECKPOINT_ACTION, GENESIS_HASH, MetricRow, ParamRow, Payload, UNREADABLE_DIGEST, Verifier,
    VerifyReport, chain_hash, checkpoint_payload, child_id, entity, metrics_digest, params_digest, parse_checkpoint,
    sha256_hex,
};
use cairn_core::model::Millis;
use cairn_core::progress::{Progress, Silent};
use cairn_core::{Error, Result};

use crate::sql::db::{Db, Dialect, Row, SqlValue};
use crate::sql::rows::{ChildKind, ChildRow, ExperimentRow, RunRow};
use crate::sql::writer::WriteTx;
use crate::sql::{artifacts, audit_blocks, audit_codec};

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
                let hash = hex::encode(std::mem::replace(&mut row[1], SqlValue::Null).into_bytes()?);
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
                &[self.seq.into(), hash_bytes(&self.hash)?.into()],
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
    let stored = audit_codec::encode(&payload, event.entity_id)?;
    // Nothing but a broken database refuses this insert (the head is locked and `seq` is the
    // next one), so it may travel with the request's next statement. The digest and the previous
    // hash are not stored: both are recomputed from the rows (see [`event_from_row`]).
    db.defer(
        "INSERT INTO audit_events (seq, time, actor, action, entity_type, entity_id, payload, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            seq.into(),
            time.into(),
            event.actor.into(),
            event.action.into(),
            event.entity_type.into(),
            event.entity_id.into(),
            stored.into(),
            hash_bytes(&hash)?.into(),
        ],
    )?;
    *head = AuditHead { seq, hash };
    if seq % audit_blocks::BLOCK == 0 {
        audit_blocks::seal_due(db, seq)?;
    }
    Ok(())
}

/// A hex hash as the 32 bytes the log stores.
fn hash_bytes(hash: &str) -> Result<Vec<u8>> {
    hex::decode(hash).map_err(|_| Error::internal(format!("'{hash}' is not a hex hash")))
}

/// The columns [`event_from_row`] reads from an unsealed row. The previous event's hash is
/// looked up by key rather than stored twice (on its row, or as the anchor of the block it
/// ends); a missing predecessor reads as NULL.
const EVENT_COLUMNS: &str = "a.seq, a.time, a.actor, a.action, a.entity_type, a.entity_id, a.payload, a.hash, \
     COALESCE((SELECT p.hash FROM audit_events p WHERE p.seq = a.seq - 1), \
              (SELECT b.hash FROM audit_blocks b WHERE b.last_seq = a.seq - 1))";

/// Rebuilds an event from its stored row: the payload is decoded and digested, the hashes
/// given as hex. A payload that does not decode yields an empty payload and a digest starting
/// with [`UNREADABLE_DIGEST`], so that listing the log still works and verification names the event.
/// `strict` (verification) also treats stored bytes that are not exactly what Cairn writes as
/// unreadable (see [`audit_codec::decode_strict`]); listing skips that cost.
fn event_from_row(row: Row, strict: bool) -> Result<AuditEvent> {
    let mut it = row.into_iter();
    let mut next = || it.next().unwrap_or(SqlValue::Null);
    let seq = next().int()?;
    let time = next().int()?;
    let actor = next().into_text()?;
    let action = next().into_text()?;
    let entity_type = next().into_text()?;
    let entity_id = next().into_text()?;
    let stored = next().into_bytes()?;
    let hash = hex::encode(next().into_bytes()?);
    let prev_hash = match next() {
        SqlValue::Null if seq == 1 => GENESIS_HASH.to_owned(),
        // The event before this one is gone; no hash links to nothing.
        SqlValue::Null => String::new(),
        other => hex::encode(other.into_bytes()?),
    };
    let decoded =
        if strict { audit_codec::decode_strict(&stored, &entity_id) } else { audit_codec::decode(&stored, &entity_id) };
    let (payload, digest) = match decoded {
        Ok(payload) => {
            let digest = sha256_hex(payload.as_bytes());
            (payload, digest)
        }
        Err(why) => (String::new(), format!("{UNREADABLE_DIGEST}{why}")),
    };
    Ok(AuditEvent { seq, time, actor, action, entity_type, entity_id, payload, digest, prev_hash, hash })
}

/// Migration 0012's backfill: rewrites every event of the old log (`audit_events_v1`, hashes as
/// hex, payload as text, digest and previous hash stored) into the compact table, then drops
/// the old one. The chain itself is unchanged (it covers the canonical JSON, which the compact
/// form gives back exactly), so the converted log verifies as the old one did. The two columns
/// that are no longer stored are checked first against what they are derived from: a log whose
/// digest or link was already edited is refused rather than converted, because converting it
/// would throw away the evidence.
pub fn compact_v1_log(db: &mut dyn Db) -> Result<()> {
    const PAGE: i64 = 5000;
    let mut last: Option<(i64, String)> = None;
    loop {
        let after = last.as_ref().map_or(i64::MIN, |(seq, _)| *seq);
        let rows = db.query(
            "SELECT seq, time, actor, action, entity_type, entity_id, payload, digest, prev_hash, hash \
             FROM audit_events_v1 WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[after.into(), PAGE.into()],
        )?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let [seq, time, actor, action, entity_type, entity_id, payload, digest, prev_hash, hash]: [SqlValue; 10] =
                row.try_into().map_err(|_| Error::internal("an old audit row has the wrong width"))?;
            let seq = seq.int()?;
            let entity_id = entity_id.into_text()?;
            let payload = payload.into_text()?;
            let hash = hash.into_text()?;
            let refuse = |what: &str| {
                Error::internal(format!(
                    "audit event {seq} {what}, so the log was changed outside Cairn. This version keeps the log \
                     without the columns that show it; run `cairn audit verify` with the previous version and \
                     restore the store from a backup before upgrading"
                ))
            };
            if sha256_hex(payload.as_bytes()) != digest.into_text()? {
                return Err(refuse("does not match its digest"));
            }
            let expected_prev = match &last {
                Some((prev, prev_hash)) if *prev == seq - 1 => prev_hash.clone(),
                None if seq == 1 => GENESIS_HASH.to_owned(),
                _ => return Err(refuse("does not follow the event before it")),
            };
            if prev_hash.into_text()? != expected_prev {
                return Err(refuse("does not link to the event before it"));
            }
            let stored_hash = hash_bytes(&hash).map_err(|_| refuse("has a malformed hash"))?;
            db.execute(
                "INSERT INTO audit_events (seq, time, actor, action, entity_type, entity_id, payload, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    seq.into(),
                    time,
                    actor,
                    action,
                    entity_type,
                    entity_id.as_str().into(),
                    audit_codec::encode(&payload, &entity_id)?.into(),
                    stored_hash.into(),
                ],
            )?;
            last = Some((seq, hash));
        }
    }
    db.batch("DROP TABLE audit_events_v1")?;
    Ok(())
}

/// Events with `seq > after_seq`, oldest first, at most `limit`.
pub fn list(db: &mut dyn Db, after_seq: i64, limit: u64) -> Result<Vec<AuditEvent>> {
    list_rows(db, after_seq, limit, false)
}

/// Sealed events first (they are the older ones), then unsealed rows.
fn list_rows(db: &mut dyn Db, after_seq: i64, limit: u64, strict: bool) -> Result<Vec<AuditEvent>> {
    let mut events = audit_blocks::read_after(db, after_seq, limit, strict)?;
    let remaining = limit.saturating_sub(events.len() as u64);
    if remaining == 0 {
        return Ok(events);
    }
    let after = events.last().map_or(after_seq, |e| e.seq);
    let rows = db.query(
        &format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events a WHERE a.seq > $1 AND a.payload IS NOT NULL \
             ORDER BY a.seq LIMIT $2"
        ),
        &[after.into(), i64::try_from(remaining).unwrap_or(i64::MAX).into()],
    )?;
    for row in rows {
        events.push(event_from_row(row, strict)?);
    }
    Ok(events)
}

/// The hash event `seq` has as the log reads now (recomputed if it is sealed), if it exists.
fn event_hash(db: &mut dyn Db, seq: i64) -> Result<Option<String>> {
    let event = list_rows(db, seq - 1, 1, false)?.into_iter().next();
    Ok(event.filter(|e| e.seq == seq).map(|e| e.hash))
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
            bind(&format!("a.{column} = ?"), value.clone().into());
        }
    }
    if let Some(since) = q.since {
        bind("a.time >= ?", since.into());
    }
    if let Some(until) = q.until {
        bind("a.time <= ?", until.into());
    }
    if let Some(after) = q.after_seq {
        bind("a.seq > ?", after.into());
    }
    if let Some(before) = q.before_seq {
        bind("a.seq < ?", before.into());
    }
    clauses.push("a.payload IS NOT NULL".to_owned());
    let filter = format!("WHERE {}", clauses.join(" AND "));
    let limit = usize::try_from(q.limit).unwrap_or(usize::MAX);
    let unsealed = |db: &mut dyn Db, params: &mut Vec<SqlValue>, limit: usize| -> Result<Vec<AuditEvent>> {
        let order = if q.newest_first { "DESC" } else { "ASC" };
        params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events a {filter} ORDER BY a.seq {order} LIMIT ${}",
            params.len()
        );
        db.query(&sql, params)?.into_iter().map(|row| event_from_row(row, false)).collect()
    };
    // Sealed events are older than unsealed ones and are filtered here, a block at a time.
    let mut found = Vec::new();
    if q.newest_first {
        found = unsealed(db, &mut params, limit)?;
        if found.len() < limit {
            audit_blocks::visit_before(db, q.before_seq.unwrap_or(i64::MAX), |block| {
                let oldest = block.last().map_or(i64::MIN, |e| e.seq);
                found.extend(block.into_iter().filter(|e| matches_query(q, e)));
                found.truncate(limit);
                found.len() < limit && q.after_seq.is_none_or(|after| oldest > after + 1)
            })?;
        }
    } else {
        let mut after = q.after_seq.unwrap_or(i64::MIN);
        while found.len() < limit {
            let page = audit_blocks::read_after(db, after, 5 * audit_blocks::BLOCK as u64, false)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            found.extend(page.into_iter().filter(|e| matches_query(q, e)));
            if q.before_seq.is_some_and(|before| after >= before) {
                break;
            }
        }
        found.truncate(limit);
        if found.len() < limit {
            let more = unsealed(db, &mut params, limit - found.len())?;
            found.extend(more);
        }
    }
    Ok(found)
}

/// Whether a (sealed) event passes the filters of `q`, as the SQL of [`query`] tests unsealed rows.
fn matches_query(q: &AuditQuery, e: &AuditEvent) -> bool {
    let text =
        [(&q.actor, &e.actor), (&q.action, &e.action), (&q.entity_type, &e.entity_type), (&q.entity_id, &e.entity_id)];
    text.iter().all(|(want, have)| want.as_ref().is_none_or(|w| w == *have))
        && q.since.is_none_or(|t| e.time >= t)
        && q.until.is_none_or(|t| e.time <= t)
        && q.after_seq.is_none_or(|s| e.seq > s)
        && q.before_seq.is_none_or(|s| e.seq < s)
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
    let mut verifier = Verifier::new();
    if !replay(db, &mut verifier, i64::MIN, progress)? {
        return Ok(None);
    }
    compare_live(db, verifier, progress).map(Some)
}

/// Verifies only the events after the newest checkpoint: that the event the checkpoint names
/// still has the hash it recorded, and that every later event (the checkpoint among them) has
/// its digest, hash and link. The live tables are not compared: the state the log implies needs
/// every event, which is what [`verify_with`] (`cairn audit verify --full`) does. Without a
/// usable checkpoint this is [`verify_with`].
pub fn verify_from_checkpoint(db: &mut dyn Db, progress: &dyn Progress) -> Result<Option<VerifyReport>> {
    let Some((at, seq, hash)) = latest_checkpoint(db)? else { return verify_with(db, progress) };
    let mut verifier = Verifier::resume(seq, &hash);
    match event_hash(db, seq)? {
        Some(now) if now == hash => {}
        Some(now) => verifier.report_problem(
            Some(seq),
            format!(
                "checkpoint event {at} recorded hash {hash} for event {seq}, which now has {now}: events up to {seq} \
                 changed after they were verified (run `cairn audit verify --full`)"
            ),
        ),
        None => verifier.report_problem(
            Some(seq),
            format!("checkpoint event {at} names event {seq}, which is missing (run `cairn audit verify --full`)"),
        ),
    }
    if !replay(db, &mut verifier, seq, progress)? {
        return Ok(None);
    }
    Ok(Some(verifier.finish_log()))
}

/// The newest checkpoint that reads as one: its own seq, and the seq and hash it names. A
/// checkpoint that does not decode, or names itself or a later event, is not used, so the
/// verification falls back to a full pass that reports it.
fn latest_checkpoint(db: &mut dyn Db) -> Result<Option<(i64, i64, String)>> {
    // A sealed checkpoint keeps its action on its row, so the index finds it either way.
    let rows = db.query(
        "SELECT seq FROM audit_events WHERE action = $1 ORDER BY seq DESC LIMIT 1",
        &[CHECKPOINT_ACTION.into()],
    )?;
    let Some(at) = rows.into_iter().next().and_then(|r| r.into_iter().next()) else { return Ok(None) };
    let at = at.int()?;
    let Some(event) = list_rows(db, at - 1, 1, true)?.into_iter().next().filter(|e| e.seq == at) else {
        return Ok(None);
    };
    let claim = Payload::parse(&event.payload).ok().as_ref().and_then(parse_checkpoint);
    Ok(claim.filter(|(seq, _)| *seq < event.seq).map(|(seq, hash)| (event.seq, seq, hash)))
}

/// Records that the log verified up to event `seq`, whose hash is `hash`, as an event of its
/// own, so that the checkpoint is covered by the chain like any other change. Refused if event
/// `seq` does not have that hash (the log moved on differently since it was verified).
pub fn record_checkpoint(db: &mut dyn Db, tx: &mut WriteTx, actor: &str, seq: i64, hash: &str) -> Result<()> {
    if event_hash(db, seq)?.as_deref() != Some(hash) {
        return Err(Error::invalid(format!("event {seq} does not have hash {hash}: no checkpoint recorded")));
    }
    let id = seq.to_string();
    tx.append(
        db,
        NewEvent {
            actor,
            action: CHECKPOINT_ACTION,
            entity_type: "audit_log",
            entity_id: &id,
            payload: checkpoint_payload(seq, hash),
        },
    )
}

/// Feeds the events after `after` to `verifier`, a page at a time; false if cancelled.
fn replay(db: &mut dyn Db, verifier: &mut Verifier, after: i64, progress: &dyn Progress) -> Result<bool> {
    let total = db.query("SELECT count(*) FROM audit_events WHERE seq > $1", &[after.into()])?;
    let total = total.into_iter().next().and_then(|r| r.into_iter().next()).map(|v| v.int()).transpose()?;
    progress.phase("audit events", total.and_then(|n| u64::try_from(n).ok()));
    let mut after = after;
    loop {
        if progress.cancelled() {
            return Ok(false);
        }
        let page = list_rows(db, after, VERIFY_PAGE, true)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            verifier.event(event);
        }
        progress.advance(page.len() as u64);
    }
    Ok(true)
}

/// Compares every live row with the state the replayed log implies.
fn compare_live(db: &mut dyn Db, mut verifier: Verifier, progress: &dyn Progress) -> Result<VerifyReport> {
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
    for row in db.query("SELECT run_pk, key, value FROM run_tags", &[])? {
        let mut it = row.into_iter();
        let owner = run_owner(&run_ids, it.next().unwrap_or(SqlValue::Null).int()?);
        let child = child_row(ChildKind::RunTag, owner, it)?;
        verifier.live_entity(entity::RUN_TAG, &child.audit_id(), &child.image());
    }
    verify_params(db, &mut verifier, &run_ids)?;

    for file in artifacts::all(db)? {
        let id = child_id(&file.run_id, &file.file.path);
        verifier.live_entity(entity::ARTIFACT_FILE, &id, &artifacts::image(&file.run_id, &file.file));
    }

    crate::sql::lineage::verify_live(db, &mut verifier)?;
    crate::sql::registry::verify_live(db, &mut verifier)?;
    verify_metrics(db, &mut verifier, &run_ids)?;
    crate::sql::logged_models::verify_live(db, &mut verifier)?;
    crate::sql::auth::verify_live(db, &mut verifier)?;
    Ok(verifier.finish())
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

/// Hands the live params to the verifier: those of an event that recorded its params by digest
/// as one digest per event, the others (written before params were digested) one by one.
fn verify_params(db: &mut dyn Db, verifier: &mut Verifier, run_ids: &HashMap<i64, String>) -> Result<()> {
    let mut by_seq: BTreeMap<i64, Vec<ChildRow>> = BTreeMap::new();
    for row in db.query("SELECT run_pk, key, value, seq FROM params", &[])? {
        let mut it = row.into_iter();
        let owner = run_owner(run_ids, it.next().unwrap_or(SqlValue::Null).int()?);
        let child = child_row(ChildKind::Param, owner, &mut it)?;
        let seq = it.next().unwrap_or(SqlValue::Null).int()?;
        if verifier.params_digested_by(seq) {
            by_seq.entry(seq).or_default().push(child);
        } else {
            verifier.live_entity(entity::PARAM, &child.audit_id(), &child.image());
        }
    }
    for (seq, rows) in by_seq {
        let mut digest_rows: Vec<ParamRow<'_>> =
            rows.iter().map(|r| ParamRow { run_id: &r.owner, key: &r.key, value: &r.value }).collect();
        let digest = params_digest(&mut digest_rows);
        let keys: Vec<String> = digest_rows.iter().map(|r| format!("{}/{}", r.run_id, r.key)).collect();
        verifier.live_params(seq, &digest, &keys);
    }
    Ok(())
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
