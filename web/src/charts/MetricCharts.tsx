// A chart card per metric key for a set of runs, drawn from the server's downsampled history
// (min, max and last point per bucket, so spikes survive). Zooming into a step range fetches
// that range again at full detail. Each card sets the `cairn:chart:ready` mark once drawn.

import { useCallback, useMemo, useState } from "preact/hooks";
import { sampledMetrics } from "../api/cairn";
import { ErrorBox, Loading } from "../components/Status";
import { markReady } from "../lib/marks";
import { useAsync } from "../lib/useAsync";
import type { ChartSettings } from "../state/route";
import { LineChart, type ChartLine } from "./LineChart";
import { toLine } from "./merge";
import { pointsPerSeries } from "./budget";

/** Runs per request: several requests in flight let the server read series in parallel. */
const RUNS_PER_REQUEST = 25;

export interface ChartRun {
  runId: string;
  label: string;
  colorIndex: number;
}

function MetricCard({ metricKey, runs, settings }: { metricKey: string; runs: ChartRun[]; settings: ChartSettings }) {
  const [range, setRange] = useState<{ min: number; max: number } | null>(null);
  const runIds = runs.map((r) => r.runId);
  const stepRange = settings.x === "step" && range ? { startStep: Math.floor(range.min), endStep: Math.ceil(range.max) } : {};
  const result = useAsync(
    async (signal) => {
      const chunks: string[][] = [];
      for (let i = 0; i < runIds.length; i += RUNS_PER_REQUEST) chunks.push(runIds.slice(i, i + RUNS_PER_REQUEST));
      const points = pointsPerSeries(runIds.length);
      const pages = await Promise.all(chunks.map((ids) => sampledMetrics({ runIds: ids, key: metricKey, points, ...stepRange }, signal)));
      return pages.flat();
    },
    [runIds.join(","), metricKey, stepRange.startStep, stepRange.endStep],
  );
  const lines = useMemo<ChartLine[]>(() => {
    if (!result.data) return [];
    const byId = new Map(runs.map((r) => [r.runId, r]));
    return result.data
      .filter((s) => s.step.length > 0 && byId.has(s.run_id))
      .map((s) => {
        const run = byId.get(s.run_id)!;
        return { ...toLine(s, settings.x), label: run.label, colorIndex: run.colorIndex };
      });
  }, [result.data, settings.x, runs]);
  const onDrawn = useCallback(() => {
    if (lines.length) markReady("chart", { key: metricKey, points: lines.reduce((n, l) => n + l.x.length, 0) });
  }, [lines, metricKey]);
  const onZoom = useCallback((r: { min: number; max: number } | null) => setRange(r), []);

  if (result.error) return <ErrorBox what={`the ${metricKey} chart`} error={result.error} retry={result.retry} />;
  if (!result.data) return <div class="chart-card"><Loading what={metricKey} /></div>;
  if (!lines.length) return null;
  const title = range ? `${metricKey} (steps ${Math.floor(range.min)}–${Math.ceil(range.max)}; double-click to reset)` : metricKey;
  return <LineChart title={title} lines={lines} settings={settings} onZoom={onZoom} onDrawn={onDrawn} />;
}

export function MetricCharts({ runs, metricKeys, settings }: { runs: ChartRun[]; metricKeys: string[]; settings: ChartSettings }) {
  if (!runs.length) return <p class="muted">Select runs to chart.</p>;
  if (!metricKeys.length) return <p class="muted">These runs logged no metrics.</p>;
  return (
    <div class="charts">
      {metricKeys.map((key) => (
        <MetricCard key={key} metricKey={key} runs={runs} settings={settings} />
      ))}
    </div>
  );
}

/** The controls of chart settings: x axis, log scale, smoothing. */
export function ChartControls({ settings, onChange }: { settings: ChartSettings; onChange: (s: ChartSettings) => void }) {
  return (
    <div class="toolbar chart-controls">
      <label>
        X axis
        <select value={settings.x} onChange={(e) => onChange({ ...settings, x: e.currentTarget.value as ChartSettings["x"] })}>
          <option value="step">Step</option>
          <option value="time">Wall time</option>
          <option value="relative">Relative time</option>
        </select>
      </label>
      <label class="checkbox">
        <input type="checkbox" checked={settings.logY} onChange={(e) => onChange({ ...settings, logY: e.currentTarget.checked })} />
        Log scale
      </label>
      <label>
        Smoothing
        <input
          type="range"
          min="0"
          max="0.99"
          step="0.01"
          value={settings.smoothing}
          onChange={(e) => onChange({ ...settings, smoothing: Number(e.currentTarget.value) })}
        />
        <output>{settings.smoothing.toFixed(2)}</output>
      </label>
    </div>
  );
}
