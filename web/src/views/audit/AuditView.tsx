// The audit log: events newest first in pages read off the sequence number (so the millionth
// page is as quick as the first), filters by actor, action, entity and time range in the
// address, each event's payload, and "verify the chain", which recomputes every hash and
// compares the live tables with the log, showing the first event it finds wrong. With access
// control on, both are for admins: anyone else gets a short explanation and no request is made.

import { useEffect, useState } from "preact/hooks";
import { auditEvents, verifyAudit, type AuditEvent, type VerifyReport } from "../../api/governance";
import { ErrorBox, Loading } from "../../components/Status";
import { formatTime } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { useSession } from "../../session/session";
import { defaultAuditState, type AuditState } from "../../state/gov";
import { Digest } from "../gov/AsOf";

export const PAGE_SIZE = 50;

/** The event's payload as indented JSON (it is canonical JSON text), or as it is when not JSON. */
export function prettyPayload(payload: string): string {
  try {
    return JSON.stringify(JSON.parse(payload), null, 2);
  } catch {
    return payload;
  }
}

/** Whether the session may read the audit log: everyone without access control, else admins. */
export function mayAudit(session: { auth: string; user: { is_admin: boolean } | null }): boolean {
  return session.auth === "none" || session.user?.is_admin === true;
}

export function AuditView({ state }: { state: AuditState }) {
  const session = useSession();
  if (!mayAudit(session)) {
    return (
      <section aria-labelledby="audit-title">
        <h1 id="audit-title">Audit log</h1>
        <div class="card admin-only" role="status">
          <p>
            The audit log and its verification are for admins. You are signed in as <strong>{session.user?.username}</strong>, who is not one.
          </p>
          <p class="muted">Ask an admin to look up an event, or to verify the chain.</p>
        </div>
      </section>
    );
  }
  return <AuditLog state={state} />;
}

function AuditLog({ state }: { state: AuditState }) {
  const go = (next: Partial<AuditState>) => navigate({ name: "audit", state: { ...state, ...next } });
  const filter = { actor: state.actor, action: state.action, entity_type: state.entityType, entity_id: state.entityId, since: state.since, until: state.until };
  const page = useAsync((signal) => auditEvents(filter, state.before, PAGE_SIZE, signal), [JSON.stringify(filter), state.before]);
  const [report, setReport] = useState<VerifyReport | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [verifyError, setVerifyError] = useState<unknown>(null);
  useEffect(() => {
    if (page.data) markReady("audit", { events: page.data.events.length });
  }, [page.data]);
  const verify = async () => {
    setVerifying(true);
    setVerifyError(null);
    try {
      setReport(await verifyAudit());
    } catch (e) {
      setVerifyError(e);
    } finally {
      setVerifying(false);
    }
  };
  const firstBad = report?.problems.find((p) => p.seq !== null)?.seq ?? null;
  const bad = new Set(report?.problems.map((p) => p.seq).filter((s): s is number => s !== null));
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <Filters state={state} onApply={(f) => go({ ...f, before: null, open: null })} />
      <div class="toolbar">
        <button type="button" class="primary" onClick={verify} disabled={verifying}>
          {verifying ? "Verifying…" : "Verify the chain"}
        </button>
        {verifyError !== null && <ErrorBox what="the verification" error={verifyError} retry={verify} />}
      </div>
      {report && <VerifyResult report={report} firstBad={firstBad} onShow={(seq) => go({ ...defaultAuditState(), before: seq + 1, open: seq })} />}
      {page.error ? (
        <ErrorBox what="audit events" error={page.error} retry={page.retry} />
      ) : !page.data ? (
        <Loading what="audit events" />
      ) : (
        <>
          <Pager state={state} events={page.data.events} next={page.data.next_before} go={go} />
          {page.data.events.length === 0 ? (
            <p class="muted">No events match.</p>
          ) : (
            <EventsTable events={page.data.events} open={state.open} bad={bad} onOpen={(seq) => go({ open: state.open === seq ? null : seq })} />
          )}
          <Pager state={state} events={page.data.events} next={page.data.next_before} go={go} />
        </>
      )}
    </section>
  );
}

function Filters({ state, onApply }: { state: AuditState; onApply: (f: Partial<AuditState>) => void }) {
  const [f, setF] = useState(state);
  useEffect(() => setF(state), [state.actor, state.action, state.entityType, state.entityId, state.since, state.until]);
  const field = (key: "actor" | "action" | "entityType" | "entityId" | "since" | "until", label: string, placeholder: string) => (
    <label>
      {label}
      <input type="text" name={key} value={f[key]} placeholder={placeholder} onInput={(e) => setF({ ...f, [key]: e.currentTarget.value })} />
    </label>
  );
  return (
    <form
      class="audit-filters"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        onApply({ actor: f.actor.trim(), action: f.action.trim(), entityType: f.entityType.trim(), entityId: f.entityId.trim(), since: f.since.trim(), until: f.until.trim() });
      }}
    >
      {field("actor", "Actor", "alice")}
      {field("action", "Action", "set_alias")}
      {field("entityType", "Entity type", "run")}
      {field("entityId", "Entity id", "")}
      {field("since", "Since", "2026-11-23T10:00:00Z")}
      {field("until", "Until", "ms or RFC 3339")}
      <button type="submit">Filter</button>
      <button type="button" onClick={() => onApply({ ...defaultAuditState() })}>
        Clear
      </button>
    </form>
  );
}

function Pager({ state, events, next, go }: { state: AuditState; events: AuditEvent[]; next: number | undefined; go: (s: Partial<AuditState>) => void }) {
  const newest = events[0]?.seq;
  const oldest = events[events.length - 1]?.seq;
  return (
    <div class="pager">
      <button type="button" disabled={state.before === null} onClick={() => go({ before: null, open: null })}>
        Newest
      </button>
      <button type="button" disabled={next === undefined} onClick={() => go({ before: next ?? null, open: null })}>
        Older
      </button>
      <span class="muted">{events.length ? `events ${newest} to ${oldest}, newest first` : ""}</span>
    </div>
  );
}

function EventsTable({ events, open, bad, onOpen }: { events: AuditEvent[]; open: number | null; bad: Set<number>; onOpen: (seq: number) => void }) {
  return (
    <div class="table-box">
      <table class="data-table audit-table">
        <thead>
          <tr>
            <th scope="col">Seq</th>
            <th scope="col">Time</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Entity</th>
            <th scope="col">Digest</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => [
            <tr key={e.seq} data-seq={e.seq} class={[bad.has(e.seq) ? "bad" : "", open === e.seq ? "open" : ""].join(" ")}>
              <td>
                <button type="button" class="linkish" aria-expanded={open === e.seq} onClick={() => onOpen(e.seq)}>
                  {e.seq}
                </button>
              </td>
              <td>{formatTime(e.time)}</td>
              <td>{e.actor}</td>
              <td>{e.action}</td>
              <td>
                <span class="muted">{e.entity_type}</span> {e.entity_id}
              </td>
              <td>
                <Digest value={e.digest} />
              </td>
            </tr>,
            open === e.seq && (
              <tr key={`${e.seq}-payload`} class="payload-row">
                <td colSpan={6}>
                  <dl class="facts">
                    <dt>Hash</dt>
                    <dd>
                      <code>{e.hash}</code>
                    </dd>
                    <dt>Previous hash</dt>
                    <dd>
                      <code>{e.prev_hash}</code>
                    </dd>
                  </dl>
                  <pre class="payload">
                    <code>{prettyPayload(e.payload)}</code>
                  </pre>
                </td>
              </tr>
            ),
          ])}
        </tbody>
      </table>
    </div>
  );
}

function VerifyResult({ report, firstBad, onShow }: { report: VerifyReport; firstBad: number | null; onShow: (seq: number) => void }) {
  if (report.ok) {
    return (
      <p class="verify-result verdict ok" role="status">
        ✓ The chain verifies: {report.events} events, every hash recomputed and the live tables match the log.
      </p>
    );
  }
  return (
    <div class="verify-result error-box" role="alert">
      <strong>
        ✗ The chain does not verify: {report.problems.length} problem{report.problems.length === 1 ? "" : "s"} in {report.events} events.
      </strong>
      {firstBad !== null && (
        <p>
          First bad event: <button type="button" class="linkish first-bad" onClick={() => onShow(firstBad)}>event {firstBad}</button>
        </p>
      )}
      <ul>
        {report.problems.slice(0, 20).map((p, i) => (
          <li key={i}>
            {p.seq !== null && <code>#{p.seq}</code>} {p.message}
          </li>
        ))}
      </ul>
      {report.problems.length > 20 && <p class="muted">and {report.problems.length - 20} more.</p>}
    </div>
  );
}
