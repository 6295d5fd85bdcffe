// Pure helpers of the compare view's plots: a value per run for a `params.<key>` or
// `metrics.<key>` dimension, and an axis that maps values to [0, 1] (linear for numbers,
// evenly spaced for categories).

import type { Run } from "../../api/types";
import { toNumber } from "../../lib/format";

export function dimensionValue(run: Run, dim: string): string | number | undefined {
  if (dim.startsWith("metrics.")) {
    const m = run.data.metrics?.find((x) => x.key === dim.slice(8));
    return m ? toNumber(m.value) : undefined;
  }
  if (dim.startsWith("params.")) return run.data.params?.find((x) => x.key === dim.slice(7))?.value;
  return undefined;
}

export interface Axis {
  /** Position in [0, 1], or null for a missing or unplaceable value. */
  scale: (v: string | number | undefined) => number | null;
  ticks: { at: number; label: string }[];
  numeric: boolean;
}

export function makeAxis(values: (string | number | undefined)[]): Axis {
  const present = values.filter((v) => v !== undefined && v !== "");
  const numbers = present.map((v) => (typeof v === "number" ? v : Number(v)));
  if (present.length && numbers.every(Number.isFinite)) {
    const min = Math.min(...numbers);
    const max = Math.max(...numbers);
    const span = max - min || 1;
    const scale = (v: string | number | undefined) => {
      if (v === undefined || v === "") return null;
      const n = typeof v === "number" ? v : Number(v);
      return Number.isFinite(n) ? (n - min) / span : null;
    };
    const ticks = min === max ? [{ at: 0, label: String(min) }] : [0, 0.5, 1].map((t) => ({ at: t, label: String(Number((min + t * span).toPrecision(4))) }));
    return { scale, ticks, numeric: true };
  }
  const categories = Array.from(new Set(present.map(String))).sort();
  const at = (c: string) => (categories.length === 1 ? 0.5 : categories.indexOf(c) / (categories.length - 1));
  return {
    scale: (v) => (v === undefined || v === "" || !categories.includes(String(v)) ? null : at(String(v))),
    ticks: categories.slice(0, 12).map((c) => ({ at: at(c), label: c })),
    numeric: false,
  };
}

/** The keys whose values differ between runs (a missing value counts as different). */
export function differingKeys(runs: Run[], get: (r: Run) => { key: string; value: string }[] | undefined): Set<string> {
  const all = new Set<string>();
  runs.forEach((r) => get(r)?.forEach((kv) => all.add(kv.key)));
  const out = new Set<string>();
  for (const key of all) {
    const values = runs.map((r) => get(r)?.find((kv) => kv.key === key)?.value);
    if (new Set(values).size > 1) out.add(key);
  }
  return out;
}
