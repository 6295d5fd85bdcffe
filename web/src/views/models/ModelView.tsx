// One registered model: description, tags, aliases, the timeline of every alias move and stage
// transition (who, when, from which version to which) and its versions with status, source
// run, aliases, stage, tags and lineage completeness. "As of" replays the history to show the
// model as it stood then.

import { useEffect, useMemo, useState } from "preact/hooks";
import { completeness, modelHistory, type Completeness, type HistoryEntry } from "../../api/governance";
import { ApiError } from "../../api/client";
import * as mlflow from "../../api/mlflow";
import * as registry from "../../api/registry";
import { Markdown } from "../../components/Markdown";
import { Redacted } from "../../components/Redacted";
import { Guard } from "../../components/Status";
import { formatTime } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { useSession } from "../../session/session";
import { lineageHref, versionHref } from "../../state/gov";
import { describe, replay } from "../../state/registry";
import { AsOfPicker, Met } from "../gov/AsOf";

/** How many versions get a completeness check: each is a lineage traversal on the server. */
const COMPLETENESS_ROWS = 50;

interface Loaded {
  /** The instant the history was read as of: the page shows that, even while a newer one loads. */
  asOf: string | null;
  model: registry.RegisteredModelFull;
  versions: registry.VersionRecord[];
  history: HistoryEntry[];
}

async function load(name: string, asOf: string | null, signal: AbortSignal): Promise<Loaded> {
  const [model, versions, history] = await Promise.all([
    registry.getModel(name, signal),
    registry.modelVersions(name, signal),
    modelHistory(name, asOf, signal).catch(() => [] as HistoryEntry[]),
  ]);
  return { asOf, model, versions, history };
}

export function ModelView({ model, asOf }: { model: string; asOf: string | null }) {
  const state = useAsync((signal) => load(model, asOf, signal), [model, asOf]);
  return (
    <Guard what="Registered model" id={model} state={state}>
      {(data) => <ModelPage data={data} />}
    </Guard>
  );
}

function ModelPage({ data }: { data: Loaded }) {
  const { model, asOf } = data;
  const then = useMemo(() => (asOf ? replay(data.history) : null), [data.history, asOf]);
  // As of a past instant, versions are those that existed then, with the stage and aliases they had.
  const rows = useMemo(() => {
    const current = data.versions.map((v) => ({ ...v, aliases: v.aliases ?? [] }));
    if (!then) return current;
    const byVersion = new Map(current.map((v) => [Number(v.version), v]));
    return [...then.versions.values()]
      .sort((a, b) => b.version - a.version)
      .map((v) => {
        const record = byVersion.get(v.version);
        const aliases = [...then.aliases].filter(([, n]) => n === v.version).map(([a]) => a);
        return { ...(record ?? { name: model.name, version: String(v.version), status: "deleted since" }), current_stage: v.stage, aliases };
      });
  }, [data.versions, then, model.name]);
  const aliases = then ? [...then.aliases].map(([alias, version]) => ({ alias, version: String(version) })) : (model.aliases ?? []);
  useEffect(() => markReady("model", { versions: rows.length }), [data]);
  const moves = data.history.filter((e) => e.kind === "alias_set" || e.kind === "alias_deleted" || e.kind === "stage_transition" || e.kind === "model_renamed");
  return (
    <section aria-labelledby="model-title">
      <p class="muted">
        <a href="#/models">Registered models</a> /
      </p>
      <h1 id="model-title">{model.name}</h1>
      <AsOfPicker asOf={asOf} what="this model" onChange={(t) => navigate({ name: "model", model: model.name, asOf: t })} />
      {then && !then.exists && <p class="error-box" role="status">This model did not exist at that time.</p>}
      <div class="run-grid">
        <section class="card" aria-labelledby="model-about">
          <h2 id="model-about">About</h2>
          <dl class="facts">
            <dt>Created</dt>
            <dd>{formatTime(model.creation_timestamp)}</dd>
            <dt>Updated</dt>
            <dd>{formatTime(model.last_updated_timestamp)}</dd>
            <dt>Versions</dt>
            <dd>{rows.length}</dd>
            <dt>Aliases</dt>
            <dd>
              {aliases.length === 0 ? (
                <span class="muted">none</span>
              ) : (
                aliases.map((a) => (
                  <a class="tag" key={a.alias} href={versionHref(model.name, a.version, asOf)}>
                    @{a.alias} → v{a.version}
                  </a>
                ))
              )}
            </dd>
            <dt>Tags</dt>
            <dd>
              {(model.tags ?? []).length === 0 ? (
                <span class="muted">none</span>
              ) : (
                (model.tags ?? []).map((t) => (
                  <span class="tag" key={t.key}>
                    {t.key}={t.value}
                  </span>
                ))
              )}
            </dd>
          </dl>
          {model.description && <Markdown text={model.description} />}
        </section>
        <section class="card" aria-labelledby="model-history">
          <h2 id="model-history">History of aliases and stages</h2>
          {moves.length === 0 ? (
            <p class="muted">No alias moves or stage transitions{asOf ? " by then" : ""}.</p>
          ) : (
            <ol class="timeline" reversed>
              {[...moves].reverse().map((e) => (
                <li key={e.seq}>
                  <time dateTime={new Date(e.time).toISOString()}>{formatTime(e.time)}</time>
                  <span>{describe(e)}</span>
                  <span class="muted">by {e.actor}</span>
                </li>
              ))}
            </ol>
          )}
        </section>
      </div>
      <h2 id="versions-title">Versions</h2>
      <VersionsTable name={model.name} rows={rows} asOf={asOf} />
    </section>
  );
}

type Row = registry.VersionRecord & { aliases: string[] };

/**
 * Which of the source runs the signed-in user may read: a version of a model they may read can
 * come from a run in an experiment they may not, and the page shows that run as a placeholder
 * rather than its id. Without access control, or for an admin, every run is readable and no
 * request is made; otherwise each distinct run is asked once (a 403 means hidden), and a run
 * is `undefined` until its answer comes.
 */
function useReadableRuns(runIds: string[]): (runId: string) => boolean | undefined {
  const session = useSession();
  const open = session.auth === "none" || session.user?.is_admin === true;
  const distinct = useMemo(() => [...new Set(runIds)].sort(), [runIds.join(",")]);
  const readable = useAsync(
    async (signal) => {
      if (open) return new Map<string, boolean>();
      const todo = [...distinct];
      const seen = new Map<string, boolean>();
      const worker = async () => {
        while (todo.length) {
          const id = todo.shift()!;
          const ok = await mlflow.getRun(id, signal).then(
            () => true,
            (e: unknown) => !(e instanceof ApiError && e.status === 403),
          );
          seen.set(id, ok);
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      return seen;
    },
    [distinct.join(","), open],
  );
  return (runId) => (open ? true : readable.data?.get(runId));
}

/** Versions drawn at first; the rest on request, so a model with thousands opens at once. */
const FIRST_ROWS = 100;

function VersionsTable({ name, rows, asOf }: { name: string; rows: Row[]; asOf: string | null }) {
  const [checks, setChecks] = useState<Map<string, Completeness | "error">>(new Map());
  const [limit, setLimit] = useState(FIRST_ROWS);
  const shown = rows.slice(0, limit);
  const readable = useReadableRuns(shown.flatMap((r) => (r.run_id ? [r.run_id] : [])));
  useEffect(() => {
    // Completeness of the newest versions, a few requests at a time, after the table is shown.
    let cancelled = false;
    setChecks(new Map());
    const todo = rows.filter((r) => r.status !== "deleted since").slice(0, COMPLETENESS_ROWS);
    const worker = async () => {
      while (!cancelled && todo.length) {
        const row = todo.shift()!;
        const node = `model-version:${name}/${row.version}`;
        const result = await completeness(node, asOf).catch(() => "error" as const);
        if (!cancelled) setChecks((m) => new Map(m).set(row.version, result));
      }
    };
    void Promise.all([worker(), worker(), worker(), worker()]);
    return () => {
      cancelled = true;
    };
  }, [rows, name, asOf]);
  if (rows.length === 0) return <p class="muted">No versions.</p>;
  return (
    <div class="table-box">
      <table class="data-table versions-table">
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Status</th>
            <th scope="col">Stage</th>
            <th scope="col">Aliases</th>
            <th scope="col">Source run</th>
            <th scope="col">Created</th>
            <th scope="col">Tags</th>
            <th scope="col">Lineage</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((v, i) => {
            const check = checks.get(v.version);
            return (
              <tr key={v.version}>
                <td>
                  <a href={versionHref(name, v.version, asOf)}>v{v.version}</a>
                </td>
                <td>{v.status ?? ""}</td>
                <td>{v.current_stage ?? "None"}</td>
                <td>
                  {v.aliases.map((a) => (
                    <span class="tag" key={a}>
                      @{a}
                    </span>
                  ))}
                </td>
                <td>
                  {!v.run_id ? (
                    <span class="muted">none</span>
                  ) : readable(v.run_id) === undefined ? (
                    <span class="muted">…</span>
                  ) : readable(v.run_id) ? (
                    <a href={lineageHref(`run:${v.run_id}`, asOf)}>{v.run_id.slice(0, 8)}</a>
                  ) : (
                    <Redacted kind="run" />
                  )}
                </td>
                <td>{formatTime(v.creation_timestamp)}</td>
                <td>
                  {(v.tags ?? []).map((t) => (
                    <span class="tag" key={t.key}>
                      {t.key}={t.value}
                    </span>
                  ))}
                </td>
                <td class="lineage-cell">
                  {check === undefined ? (
                    <span class="muted">{i < COMPLETENESS_ROWS ? "…" : ""}</span>
                  ) : check === "error" ? (
                    <span class="muted">unknown</span>
                  ) : (
                    <span title={check.missing.join(", ")}>
                      <Met ok={check.complete} />
                      {!check.complete && <span class="muted"> lacks {check.missing.join(", ")}</span>}
                    </span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {rows.length > limit && (
        <button type="button" class="show-all" onClick={() => setLimit(rows.length)}>
          Show all {rows.length} versions
        </button>
      )}
    </div>
  );
}
