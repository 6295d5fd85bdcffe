// N runs side by side: params (optionally only those that differ), metrics and tags as tables,
// overlaid charts, a parallel-coordinates plot of params against a chosen metric, and a scatter
// of any param or metric against another. Plots are SVG built as elements.

import { useEffect, useMemo, useState } from "preact/hooks";
import * as mlflow from "../../api/mlflow";
import type { Run } from "../../api/types";
import { colorFor } from "../../charts/colors";
import { ChartControls, MetricCharts } from "../../charts/MetricCharts";
import { Guard } from "../../components/Status";
import { formatValue } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { defaultRunsState, formatRoute, runHref, type ChartSettings } from "../../state/route";
import { ExperimentLink } from "../../components/ExperimentLink";
import { differingKeys, dimensionValue, makeAxis } from "./plots";

const label = (r: Run) => r.info.run_name || r.info.run_id.slice(0, 8);

function KeyValueTable({ title, runs, get, onlyDiff }: { title: string; runs: Run[]; get: (r: Run) => { key: string; value: string }[] | undefined; onlyDiff: boolean }) {
  const keys = useMemo(() => {
    const all = new Set<string>();
    runs.forEach((r) => get(r)?.forEach((kv) => all.add(kv.key)));
    const diff = differingKeys(runs, get);
    return Array.from(all)
      .filter((k) => !onlyDiff || diff.has(k))
      .sort();
  }, [runs, onlyDiff]);
  return (
    <section aria-label={title} class="compare-table">
      <h2>{title}</h2>
      {keys.length === 0 ? (
        <p class="muted">{onlyDiff ? "No differences." : "None."}</p>
      ) : (
        <div style={{ overflowX: "auto" }}>
          <table class="data-table">
            <thead>
              <tr>
                <th scope="col">Key</th>
                {runs.map((r) => (
                  <th scope="col" key={r.info.run_id}>
                    <a href={runHref(r.info.experiment_id, r.info.run_id)}>{label(r)}</a>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k}>
                  <th scope="row">{k}</th>
                  {runs.map((r) => (
                    <td key={r.info.run_id}>{get(r)?.find((kv) => kv.key === k)?.value ?? ""}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ParallelCoordinates({ runs, params, metric }: { runs: Run[]; params: string[]; metric: string }) {
  const dims = [...params.map((p) => `params.${p}`), `metrics.${metric}`];
  const axes = dims.map((d) => makeAxis(runs.map((r) => dimensionValue(r, d))));
  const metricAxis = axes[axes.length - 1]!;
  const W = 900;
  const H = 300;
  const pad = { l: 40, r: 60, t: 30, b: 20 };
  const x = (i: number) => pad.l + (dims.length === 1 ? 0 : (i / (dims.length - 1)) * (W - pad.l - pad.r));
  const y = (t: number) => pad.t + (1 - t) * (H - pad.t - pad.b);
  return (
    <figure class="parallel">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Parallel coordinates of parameters against ${metric}`}>
        {runs.map((r) => {
          const pts = dims.map((d, i) => {
            const t = axes[i]!.scale(dimensionValue(r, d));
            return t === null ? null : `${x(i).toFixed(1)},${y(t).toFixed(1)}`;
          });
          if (pts.some((p) => p === null)) return null;
          const m = metricAxis.scale(dimensionValue(r, `metrics.${metric}`));
          // Colour by the metric: low values blue, high values orange.
          const hue = m === null ? 0 : 220 - m * 190;
          return <polyline key={r.info.run_id} points={pts.join(" ")} fill="none" stroke={`hsl(${hue} 70% 50%)`} stroke-width="1.5" opacity="0.8"><title>{label(r)}</title></polyline>;
        })}
        {dims.map((d, i) => (
          <g key={d} class="axis">
            <line x1={x(i)} x2={x(i)} y1={y(0)} y2={y(1)} />
            <text x={x(i)} y={pad.t - 12} text-anchor="middle">
              {d.replace(/^(params|metrics)\./, "")}
            </text>
            {axes[i]!.ticks.map((t) => (
              <text key={t.label} x={x(i) + 4} y={y(t.at) + 4}>
                {t.label}
              </text>
            ))}
          </g>
        ))}
      </svg>
      <figcaption class="muted">
        One line per run, coloured by {metric}: low values blue, high values orange. Hover a line for its run.
      </figcaption>
    </figure>
  );
}

function Scatter({ runs, xDim, yDim }: { runs: Run[]; xDim: string; yDim: string }) {
  const xa = makeAxis(runs.map((r) => dimensionValue(r, xDim)));
  const ya = makeAxis(runs.map((r) => dimensionValue(r, yDim)));
  const W = 480;
  const H = 320;
  const pad = 48;
  const px = (t: number) => pad + t * (W - 2 * pad);
  const py = (t: number) => H - pad - t * (H - 2 * pad);
  return (
    <figure class="scatter">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Scatter of ${yDim} against ${xDim}`}>
        <g class="axis">
          <line x1={pad} x2={W - pad} y1={H - pad} y2={H - pad} />
          <line x1={pad} x2={pad} y1={pad} y2={H - pad} />
          {xa.ticks.map((t) => (
            <text key={`x${t.label}`} x={px(t.at)} y={H - pad + 16} text-anchor="middle">
              {t.label}
            </text>
          ))}
          {ya.ticks.map((t) => (
            <text key={`y${t.label}`} x={pad - 6} y={py(t.at) + 4} text-anchor="end">
              {t.label}
            </text>
          ))}
          <text x={W / 2} y={H - 8} text-anchor="middle">{xDim}</text>
          <text x={12} y={pad - 16}>{yDim}</text>
        </g>
        {runs.map((r, i) => {
          const tx = xa.scale(dimensionValue(r, xDim));
          const ty = ya.scale(dimensionValue(r, yDim));
          if (tx === null || ty === null) return null;
          return (
            <circle key={r.info.run_id} cx={px(tx)} cy={py(ty)} r="5" fill={colorFor(i)}>
              <title>
                {label(r)}: {formatValue(dimensionValue(r, xDim) as number)}, {formatValue(dimensionValue(r, yDim) as number)}
              </title>
            </circle>
          );
        })}
      </svg>
    </figure>
  );
}

export function CompareView({ experimentIds, runIds, chart }: { experimentIds: string[]; runIds: string[]; chart: ChartSettings }) {
  const runs = useAsync((signal) => Promise.all(runIds.map((id) => mlflow.getRun(id, signal))), [runIds.join(",")]);
  if (!runIds.length) return <p class="muted">No runs chosen: select runs in a runs table, then Compare.</p>;
  return (
    <Guard what="Run" id={runIds.join(", ")} state={runs}>
      {(list) => <Comparison runs={list} experimentIds={experimentIds} chart={chart} />}
    </Guard>
  );
}

function Comparison({ runs, experimentIds, chart }: { runs: Run[]; experimentIds: string[]; chart: ChartSettings }) {
  const [onlyDiff, setOnlyDiff] = useState(false);
  const params = useMemo(() => Array.from(new Set(runs.flatMap((r) => (r.data.params ?? []).map((p) => p.key)))).sort(), [runs]);
  const metrics = useMemo(() => Array.from(new Set(runs.flatMap((r) => (r.data.metrics ?? []).map((m) => m.key)))).sort(), [runs]);
  const [metric, setMetric] = useState(metrics[0] ?? "");
  const dims = [...params.map((p) => `params.${p}`), ...metrics.map((m) => `metrics.${m}`)];
  const [xDim, setX] = useState(dims[0] ?? "");
  const [yDim, setY] = useState(metrics[0] ? `metrics.${metrics[0]}` : dims[1] ?? "");
  useEffect(() => markReady("compare", { runs: runs.length }), [runs]);
  const chartRuns = runs.map((r, i) => ({ runId: r.info.run_id, label: label(r), colorIndex: i }));
  const setChart = (c: ChartSettings) => navigate({ name: "compare", experimentIds, runIds: runs.map((r) => r.info.run_id), chart: c }, { replace: true });
  const metricValues = (r: Run) => (r.data.metrics ?? []).map((m) => ({ key: m.key, value: formatValue(m.value) }));
  return (
    <section aria-labelledby="compare-title">
      <CompareBreadcrumb runs={runs} />
      <h1 id="compare-title">Comparing {runs.length} runs</h1>
      <label class="checkbox">
        <input type="checkbox" checked={onlyDiff} onChange={(e) => setOnlyDiff(e.currentTarget.checked)} />
        Only differences
      </label>
      <KeyValueTable title="Parameters" runs={runs} get={(r) => r.data.params} onlyDiff={onlyDiff} />
      <KeyValueTable title="Metrics" runs={runs} get={metricValues} onlyDiff={onlyDiff} />
      <KeyValueTable title="Tags" runs={runs} get={(r) => r.data.tags?.filter((t) => !t.key.startsWith("mlflow.") || t.key === "mlflow.runName")} onlyDiff={onlyDiff} />
      <h2>Parallel coordinates</h2>
      {params.length && metrics.length ? (
        <>
          <label>
            Metric
            <select value={metric} onChange={(e) => setMetric(e.currentTarget.value)}>
              {metrics.map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </label>
          <ParallelCoordinates runs={runs} params={params.slice(0, 12)} metric={metric} />
        </>
      ) : (
        <p class="muted">Needs parameters and a metric.</p>
      )}
      <h2>Scatter</h2>
      {dims.length >= 2 ? (
        <>
          <div class="toolbar">
            <label>
              X
              <select value={xDim} onChange={(e) => setX(e.currentTarget.value)}>
                {dims.map((d) => (
                  <option key={d}>{d}</option>
                ))}
              </select>
            </label>
            <label>
              Y
              <select value={yDim} onChange={(e) => setY(e.currentTarget.value)}>
                {dims.map((d) => (
                  <option key={d}>{d}</option>
                ))}
              </select>
            </label>
          </div>
          <Scatter runs={runs} xDim={xDim} yDim={yDim} />
        </>
      ) : (
        <p class="muted">Needs two parameters or metrics.</p>
      )}
      <h2>Charts</h2>
      <ChartControls settings={chart} onChange={setChart} />
      <MetricCharts runs={chartRuns} metricKeys={metrics} settings={chart} />
    </section>
  );
}

/**
 * Where the compared runs live: the experiments of the runs themselves (an address may name
 * other experiments, or none), by name, each linking to its runs table.
 */
function CompareBreadcrumb({ runs }: { runs: Run[] }) {
  const ids = Array.from(new Set(runs.map((r) => r.info.experiment_id)));
  return (
    <p class="muted breadcrumb">
      <a href="#/experiments">Experiments</a>
      {ids.map((id, i) => (
        <span key={id}>
          {i === 0 ? " / " : ", "}
          <ExperimentLink id={id} />
        </span>
      ))}
      {ids.length > 1 && (
        <>
          {" "}
          (<a href={formatRoute({ name: "runs", experimentIds: ids, state: defaultRunsState() })}>all {ids.length} together</a>)
        </>
      )}
    </p>
  );
}
