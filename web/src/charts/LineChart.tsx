// One uPlot line chart. The caller hands over lines already downsampled and aligned; this
// component only describes how to draw them: per line a min/max band behind (when the server
// sampled it), the raw line faint when smoothing is on, and the smoothed line on top. A drag
// selects an x range, reported through `onZoom`; a double click resets it. The legend below
// shows each line's value under the cursor, written as text.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { ema } from "./ema";
import { align, type Line } from "./merge";
import { colorFor, withAlpha } from "./colors";
import type { ChartSettings } from "../state/route";
import { formatValue } from "../lib/format";

export interface ChartLine extends Line {
  label: string;
  colorIndex: number;
}

export interface LineChartProps {
  title: string;
  lines: ChartLine[];
  settings: ChartSettings;
  height?: number;
  onZoom?: (range: { min: number; max: number } | null) => void;
  onDrawn?: () => void;
}

interface Built {
  data: uPlot.AlignedData;
  series: uPlot.Series[];
  bands: uPlot.Band[];
  /** Per input line, the index of the series its legend value comes from. */
  legendSeries: number[];
}

function build(lines: ChartLine[], settings: ChartSettings): Built {
  const aligned = align(lines);
  const data: (number | null)[][] = [aligned.x];
  const series: uPlot.Series[] = [{}];
  const bands: uPlot.Band[] = [];
  const legendSeries: number[] = [];
  const smoothing = settings.smoothing;
  lines.forEach((line, i) => {
    const color = colorFor(line.colorIndex);
    const a = aligned.lines[i]!;
    if (line.sampled) {
      data.push(a.max, a.min);
      const maxIdx = series.length;
      series.push({ label: `${line.label} max`, stroke: "transparent", points: { show: false } }, { label: `${line.label} min`, stroke: "transparent", points: { show: false } });
      bands.push({ series: [maxIdx, maxIdx + 1], fill: withAlpha(color, 0.18) });
    }
    if (smoothing > 0) {
      data.push(a.y);
      series.push({ label: `${line.label} raw`, stroke: withAlpha(color, 0.25), width: 1, spanGaps: true, points: { show: false } });
      const smoothed = smoothAligned(a.y, smoothing);
      data.push(smoothed);
    } else {
      data.push(a.y);
    }
    legendSeries.push(series.length);
    series.push({ label: line.label, stroke: color, width: 1.5, spanGaps: true, points: { show: aligned.x.length < 60 } });
  });
  return { data: data as uPlot.AlignedData, series, bands, legendSeries };
}

/** EMA over a line's own points (gaps skipped), placed back on the shared x. */
function smoothAligned(values: (number | null)[], weight: number): (number | null)[] {
  const at: number[] = [];
  const vs: number[] = [];
  values.forEach((v, i) => {
    if (v !== null) {
      at.push(i);
      vs.push(v);
    }
  });
  const smoothed = ema(vs, weight);
  const out = new Array<number | null>(values.length).fill(null);
  at.forEach((i, j) => (out[i] = smoothed[j]!));
  return out;
}

function themeColors() {
  const style = getComputedStyle(document.documentElement);
  return { fg: style.getPropertyValue("--muted").trim() || "#666", grid: style.getPropertyValue("--border").trim() || "#ddd" };
}

export function LineChart({ title, lines, settings, height = 240, onZoom, onDrawn }: LineChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const legend = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoomRef = useRef(onZoom);
  zoomRef.current = onZoom;
  const drawnRef = useRef(onDrawn);
  drawnRef.current = onDrawn;

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const built = build(lines, settings);
    const colors = themeColors();
    const axis = { stroke: colors.fg, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid, width: 1 } };
    const writeLegend = (u: uPlot) => {
      const box = legend.current;
      if (!box) return;
      const idx = u.cursor.idx;
      box.replaceChildren(
        ...lines.map((line, i) => {
          const item = document.createElement("span");
          const swatch = document.createElement("span");
          swatch.className = "swatch";
          swatch.style.background = colorFor(line.colorIndex);
          const column = u.data[built.legendSeries[i]!];
          const value = idx !== null && idx !== undefined && column ? column[idx] : null;
          item.append(swatch, document.createTextNode(`${line.label}${value !== null && value !== undefined ? `: ${formatValue(value)}` : ""}`));
          return item;
        }),
      );
    };
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      title: undefined,
      scales: { x: { time: settings.x === "time" }, y: { distr: settings.logY ? 3 : 1 } },
      series: built.series,
      bands: built.bands,
      axes: [{ ...axis }, { ...axis, size: 60 }],
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: true }, bind: { dblclick: () => () => { zoomRef.current?.(null); return null; } } },
      hooks: {
        setCursor: [writeLegend],
        setSelect: [
          (u) => {
            if (u.select.width > 2) {
              const min = u.posToVal(u.select.left, "x");
              const max = u.posToVal(u.select.left + u.select.width, "x");
              zoomRef.current?.({ min, max });
            }
          },
        ],
        draw: [() => drawnRef.current?.()],
      },
    };
    // Log scales cannot show values <= 0: drop them from the y data rather than fail to draw.
    if (settings.logY) {
      for (let s = 1; s < built.data.length; s++) {
        built.data[s] = (built.data[s] as (number | null)[]).map((v) => (v !== null && v > 0 ? v : null)) as never;
      }
    }
    const u = new uPlot(opts, built.data, el);
    plot.current = u;
    writeLegend(u);
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(el.clientWidth, 200), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [lines, settings.x, settings.logY, settings.smoothing, height]);

  return (
    <figure class="chart-card" aria-label={`Chart of ${title}`}>
      <h3>{title}</h3>
      <div ref={host} class="chart-host" />
      <div ref={legend} class="chart-legend" aria-live="off" />
    </figure>
  );
}
