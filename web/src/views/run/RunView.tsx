// One run: overview, description, params, metrics with sparklines, tags (editable), datasets,
// logged models and registered versions, upstream lineage, charts and artifacts.

import { useEffect, useMemo, useState } from "preact/hooks";
import { lineageUpstream, sampledMetrics, NATIVE_ROUTES } from "../../api/cairn";
import { withQuery } from "../../api/client";
import * as mlflow from "../../api/mlflow";
import type { Run } from "../../api/types";
import { MetricCharts, ChartControls } from "../../charts/MetricCharts";
import { Markdown } from "../../components/Markdown";
import { Sparkline } from "../../components/Sparkline";
import { pointsPerSeries } from "../../charts/budget";
import { ErrorBox, Guard, Loading } from "../../components/Status";
import { formatDuration, formatTime, formatValue, runDuration, tagValue, toNumber } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { useAsync } from "../../lib/useAsync";
import { DEFAULT_CHART, runHref, type ChartSettings } from "../../state/route";
import { PARENT_TAG } from "../../state/rows";
import { ArtifactBrowser } from "./ArtifactBrowser";
import { TagEditor } from "./TagEditor";
import { ExperimentLink } from "../../components/ExperimentLink";
import { canEdit, canManage } from "../../state/permissions";
import { useExperimentPermission } from "../../session/session";

export function RunView({ experimentId, runId }: { experimentId: string; runId: string }) {
  const run = useAsync((signal) => mlflow.getRun(runId, signal), [runId]);
  return (
    <Guard what="Run" id={runId} state={run}>
      {(data) =>
        data.info.experiment_id !== experimentId ? (
          <p class="error-box" role="alert">
            This run belongs to experiment <a href={runHref(data.info.experiment_id, runId)}>{data.info.experiment_id}</a>, not {experimentId}.
          </p>
        ) : (
          <RunPage run={data} reload={run.retry} />
        )
      }
    </Guard>
  );
}

function Section({ title, children, id }: { title: string; id: string; children: preact.ComponentChildren }) {
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}

function Searchable({ label, rows }: { label: string; rows: { key: string; value: preact.ComponentChildren; text: string }[] }) {
  const [q, setQ] = useState("");
  const shown = rows.filter((r) => !q || r.key.toLowerCase().includes(q.toLowerCase()) || r.text.toLowerCase().includes(q.toLowerCase()));
  return (
    <>
      {rows.length > 5 && (
        <label>
          Search {label}
          <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </label>
      )}
      {rows.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <table class="data-table kv">
          <tbody>
            {shown.map((r) => (
              <tr key={r.key}>
                <td>{r.key}</td>
                <td>{r.value}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function MetricsTable({ run }: { run: Run }) {
  const metrics = run.data.metrics ?? [];
  // Sparklines for the first metrics only. They ask what the page's charts ask (a single run's
  // series at the charts' size), so each series is read once for both.
  const keys = metrics.slice(0, 30).map((m) => m.key);
  const lines = useAsync(
    async (signal) => {
      const out: Record<string, number[]> = {};
      await Promise.all(
        keys.map(async (key) => {
          const [series] = await sampledMetrics({ runIds: [run.info.run_id], key, points: pointsPerSeries(1) }, signal);
          if (series) out[key] = series.value.map(toNumber);
        }),
      );
      return out;
    },
    [run.info.run_id, keys.join(",")],
  );
  return (
    <Searchable
      label="metrics"
      rows={metrics.map((m) => ({
        key: m.key,
        text: formatValue(m.value),
        value: (
          <>
            {formatValue(m.value)} <span class="muted">step {String(m.step ?? 0)}</span> {lines.data?.[m.key] ? <Sparkline values={lines.data[m.key]!} label={`History of ${m.key}`} /> : null}
          </>
        ),
      }))}
    />
  );
}

function Children({ run }: { run: Run }) {
  const children = useAsync(
    () => mlflow.searchRuns({ experimentIds: [run.info.experiment_id], filter: `tags.\`${PARENT_TAG}\` = '${run.info.run_id}'`, maxResults: 100 }),
    [run.info.run_id],
  );
  if (children.error) return <ErrorBox what="child runs" error={children.error} retry={children.retry} />;
  if (!children.data) return <Loading what="child runs" />;
  const list = children.data.runs ?? [];
  if (!list.length) return <span class="muted">none</span>;
  return (
    <span>
      {list.map((c, i) => (
        <>
          {i > 0 && ", "}
          <a key={c.info.run_id} href={runHref(c.info.experiment_id, c.info.run_id)}>
            {c.info.run_name || c.info.run_id}
          </a>
        </>
      ))}
      {children.data.next_page_token ? " …" : ""}
    </span>
  );
}

function Models({ run }: { run: Run }) {
  const data = useAsync(
    async () => {
      const [logged, versions] = await Promise.all([mlflow.loggedModelsOfRun(run.info.experiment_id, run.info.run_id), mlflow.modelVersionsOfRun(run.info.run_id)]);
      return { logged, versions };
    },
    [run.info.run_id],
  );
  if (data.error) return <ErrorBox what="models" error={data.error} retry={data.retry} />;
  if (!data.data) return <Loading what="models" />;
  const { logged, versions } = data.data;
  if (!logged.length && !versions.length) return <p class="muted">This run logged no models.</p>;
  return (
    <>
      {logged.length > 0 && (
        <>
          <h3>Logged models</h3>
          <ul>
            {logged.map((m) => (
              <li key={m.info.model_id}>
                {m.info.name} <code>{m.info.model_id}</code>
              </li>
            ))}
          </ul>
        </>
      )}
      {versions.length > 0 && (
        <>
          <h3>Registered versions</h3>
          <ul>
            {versions.map((v) => (
              <li key={`${v.name}/${v.version}`}>
                {v.name} version {v.version}
                {v.aliases?.length ? <> · aliases {v.aliases.map((a) => <span class="tag" key={a}>@{a}</span>)}</> : null}
                {v.current_stage && v.current_stage !== "None" ? <span class="badge">{v.current_stage}</span> : null}
              </li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}

function Lineage({ runId }: { runId: string }) {
  const node = `run:${runId}`;
  const graph = useAsync(() => lineageUpstream(node, 3), [runId]);
  const apiHref = withQuery(NATIVE_ROUTES.lineageUpstream.path, { node, depth: 3 });
  if (graph.error) return <ErrorBox what="the lineage" error={graph.error} retry={graph.retry} />;
  if (!graph.data) return <Loading what="lineage" />;
  const upstream = graph.data.nodes.filter((n) => n.id !== node);
  return (
    <>
      {upstream.length === 0 ? (
        <p class="muted">No recorded upstream: no datasets, code version or environment for this run.</p>
      ) : (
        <table class="data-table">
          <thead>
            <tr>
              <th scope="col">Kind</th>
              <th scope="col">Node</th>
              <th scope="col">Digest</th>
            </tr>
          </thead>
          <tbody>
            {upstream.map((n) => (
              <tr key={n.id}>
                <td>{n.id.split(":")[0]}</td>
                <td>{n.label || n.id}</td>
                <td>{n.digest ? <code title={n.digest}>{n.digest.slice(0, 20)}…</code> : <span class="muted">none</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p>
        <a href={apiHref}>Upstream graph in the lineage API</a>
        {graph.data.truncated ? " (truncated)" : ""}
      </p>
    </>
  );
}

function RunPage({ run, reload }: { run: Run; reload: () => void }) {
  const { info, data } = run;
  const tags = data.tags ?? [];
  const description = tagValue(tags, "mlflow.note.content");
  const parent = tagValue(tags, PARENT_TAG);
  const sourceName = tagValue(tags, "mlflow.source.name");
  const commit = tagValue(tags, "mlflow.source.git.commit");
  const repo = tagValue(tags, "mlflow.source.git.repoURL");
  const [chart, setChart] = useState<ChartSettings>(DEFAULT_CHART);
  const [actionError, setActionError] = useState<unknown>(null);
  const metricKeys = useMemo(() => (data.metrics ?? []).map((m) => m.key).sort(), [data.metrics]);

  useEffect(() => markReady("run", { runId: info.run_id }), [info.run_id]);
  // Delete and restore need MANAGE on the run's experiment, tag changes EDIT.
  const level = useExperimentPermission(info.experiment_id);

  const lifecycle = async (action: () => Promise<unknown>) => {
    setActionError(null);
    try {
      await action();
      reload();
    } catch (e) {
      setActionError(e);
    }
  };

  return (
    <article aria-labelledby="run-title">
      <header class="view-header">
        <div>
          <p class="muted">
            <a href="#/experiments">Experiments</a> / <ExperimentLink id={info.experiment_id} /> /
          </p>
          <h1 id="run-title">
            {info.run_name || info.run_id} <span class={`badge status-${info.status}`}>{info.status}</span>
            {info.lifecycle_stage === "deleted" && <span class="badge">deleted</span>}
          </h1>
        </div>
        <div class="toolbar">
          {!canManage(level) ? null : info.lifecycle_stage === "deleted" ? (
            <button type="button" onClick={() => void lifecycle(() => mlflow.restoreRun(info.run_id))}>
              Restore run
            </button>
          ) : (
            <button type="button" class="danger" onClick={() => window.confirm("Delete this run? It can be restored.") && void lifecycle(() => mlflow.deleteRun(info.run_id))}>
              Delete run
            </button>
          )}
        </div>
      </header>
      {actionError ? <ErrorBox what="the change" error={actionError} action /> : null}
      <div class="run-grid">
        <Section title="Overview" id="overview">
          <dl class="facts">
            <dt>Run ID</dt>
            <dd><code>{info.run_id}</code></dd>
            <dt>Status</dt>
            <dd class={`status-${info.status}`}>{info.status}</dd>
            <dt>Started</dt>
            <dd>{formatTime(info.start_time)}</dd>
            <dt>Ended</dt>
            <dd>{formatTime(info.end_time) || "—"}</dd>
            <dt>Duration</dt>
            <dd>{formatDuration(runDuration(info.start_time, info.end_time)) || "—"}</dd>
            <dt>User</dt>
            <dd>{info.user_id || tagValue(tags, "mlflow.user") || "—"}</dd>
            <dt>Source</dt>
            <dd>{sourceName ? <code>{sourceName}</code> : "—"} {tagValue(tags, "mlflow.source.type") ? <span class="badge">{tagValue(tags, "mlflow.source.type")}</span> : null}</dd>
            <dt>Git commit</dt>
            <dd>{commit ? <><code>{commit}</code>{repo ? <> in <code>{repo}</code></> : null}</> : "—"}</dd>
            <dt>Parent run</dt>
            <dd>{parent ? <a href={runHref(info.experiment_id, parent)}>{parent}</a> : "—"}</dd>
            <dt>Child runs</dt>
            <dd><Children run={run} /></dd>
            <dt>Artifacts</dt>
            <dd><code>{info.artifact_uri}</code></dd>
          </dl>
        </Section>
        <Section title="Description" id="description">
          {description ? <Markdown text={description} /> : <p class="muted">No description.</p>}
        </Section>
        <Section title="Parameters" id="params">
          <Searchable label="parameters" rows={(data.params ?? []).map((p) => ({ key: p.key, value: p.value, text: p.value }))} />
        </Section>
        <Section title="Metrics" id="metrics">
          <MetricsTable run={run} />
        </Section>
        <Section title="Tags" id="tags">
          <TagEditor runId={info.run_id} tags={tags} onChanged={reload} editable={canEdit(level)} />
        </Section>
        <Section title="Datasets" id="datasets">
          {(run.inputs?.dataset_inputs ?? []).length === 0 ? (
            <p class="muted">No datasets logged.</p>
          ) : (
            <table class="data-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Context</th>
                  <th scope="col">Source</th>
                </tr>
              </thead>
              <tbody>
                {(run.inputs?.dataset_inputs ?? []).map((d, i) => (
                  <tr key={i}>
                    <td>{d.dataset.name}</td>
                    <td><code>{d.dataset.digest}</code></td>
                    <td>{tagValue(d.tags, "mlflow.data.context") ?? "—"}</td>
                    <td>{d.dataset.source_type ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
        <Section title="Models" id="models">
          <Models run={run} />
        </Section>
        <Section title="Upstream lineage" id="lineage">
          <Lineage runId={info.run_id} />
        </Section>
      </div>
      <section aria-labelledby="charts-title">
        <h2 id="charts-title">Charts</h2>
        <ChartControls settings={chart} onChange={setChart} />
        <MetricCharts runs={[{ runId: info.run_id, label: info.run_name || info.run_id, colorIndex: 0 }]} metricKeys={metricKeys} settings={chart} />
      </section>
      <section class="card" aria-labelledby="artifacts-title">
        <h2 id="artifacts-title">Artifacts</h2>
        <ArtifactBrowser runId={info.run_id} artifactUri={info.artifact_uri} />
      </section>
    </article>
  );
}
