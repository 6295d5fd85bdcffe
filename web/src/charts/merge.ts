// Turning downsampled series into uPlot's columnar data: one shared, sorted x array and, per
// series, y values aligned to it with null where that series has no point. Each series keeps
// its min/max band arrays aligned the same way.

import { toNumber } from "../lib/format";
import type { SampledSeries } from "../api/cairn";
import type { XAxis } from "../state/route";

/** One run's series, ready to align: x in the chosen axis's units, values as numbers. */
export interface Line {
  id: string;
  x: number[];
  y: number[];
  min: number[];
  max: number[];
  sampled: boolean;
}

/** x values for a series: the step, seconds since the epoch, or seconds since the run's first point. */
export function xValues(series: Pick<SampledSeries, "step" | "timestamp">, axis: XAxis): number[] {
  if (axis === "step") return series.step.slice();
  const t = series.timestamp;
  if (axis === "time") return t.map((ms) => ms / 1000);
  const first = t.length ? Math.min(...t) : 0;
  return t.map((ms) => (ms - first) / 1000);
}

/** A wire series as a line on `axis`, its points ordered by x (time axes may reorder steps). */
export function toLine(series: SampledSeries, axis: XAxis): Line {
  const x = xValues(series, axis);
  const order = x.map((_, i) => i);
  if (axis !== "step") order.sort((a, b) => x[a]! - x[b]!);
  return {
    id: series.run_id,
    x: order.map((i) => x[i]!),
    y: order.map((i) => toNumber(series.value[i])),
    min: order.map((i) => toNumber(series.min[i])),
    max: order.map((i) => toNumber(series.max[i])),
    sampled: series.sampled,
  };
}

export interface Aligned {
  x: number[];
  /** Per input line, its y/min/max on the shared x (null where the line has no point). */
  lines: { y: (number | null)[]; min: (number | null)[]; max: (number | null)[] }[];
}

/** Aligns lines on the sorted union of their x values. Non-finite values become gaps. */
export function align(lines: readonly Line[]): Aligned {
  const xs = new Set<number>();
  for (const l of lines) for (const x of l.x) xs.add(x);
  const x = Array.from(xs).sort((a, b) => a - b);
  const index = new Map<number, number>();
  x.forEach((v, i) => index.set(v, i));
  const finite = (v: number) => (Number.isFinite(v) ? v : null);
  const out = lines.map((l) => {
    const y = new Array<number | null>(x.length).fill(null);
    const min = new Array<number | null>(x.length).fill(null);
    const max = new Array<number | null>(x.length).fill(null);
    for (let i = 0; i < l.x.length; i++) {
      const at = index.get(l.x[i]!)!;
      y[at] = finite(l.y[i]!);
      min[at] = finite(l.min[i]!);
      max[at] = finite(l.max[i]!);
    }
    return { y, min, max };
  });
  return { x, lines: out };
}
