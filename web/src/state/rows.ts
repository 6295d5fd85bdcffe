// The rows the runs table draws, from the runs loaded so far: children nested under their
// parent when the parent is loaded (collapsed unless expanded), or, when grouping, one header
// row per distinct value of a param or tag with min / mean / max of each metric column.

import type { Run } from "../api/types";
import { tagValue } from "../lib/format";
import type { Column } from "./columns";
import { parseColumnId } from "./columns";

export const PARENT_TAG = "mlflow.parentRunId";

export interface Aggregate {
  min: number;
  mean: number;
  max: number;
  count: number;
}

export type Row =
  | { type: "run"; run: Run; depth: number; childCount: number; expanded: boolean }
  | { type: "group"; key: string; value: string; count: number; open: boolean; aggregates: Record<string, Aggregate | null> };

export function nestedRows(runs: readonly Run[], expanded: ReadonlySet<string>): Row[] {
  const loaded = new Set(runs.map((r) => r.info.run_id));
  const children = new Map<string, Run[]>();
  const roots: Run[] = [];
  for (const run of runs) {
    const parent = tagValue(run.data.tags, PARENT_TAG);
    if (parent && parent !== run.info.run_id && loaded.has(parent)) {
      const list = children.get(parent) ?? [];
      list.push(run);
      children.set(parent, list);
    } else {
      roots.push(run);
    }
  }
  const out: Row[] = [];
  const seen = new Set<string>();
  const visit = (run: Run, depth: number) => {
    // A cycle of parent tags must not loop forever.
    if (seen.has(run.info.run_id)) return;
    seen.add(run.info.run_id);
    const kids = children.get(run.info.run_id) ?? [];
    const open = expanded.has(run.info.run_id);
    out.push({ type: "run", run, depth, childCount: kids.length, expanded: open });
    if (open) kids.forEach((k) => visit(k, depth + 1));
  };
  // Runs on a cycle of parent tags have no root above them; they become roots rather than vanish.
  const reached = new Set<string>();
  const reach = (id: string) => {
    if (reached.has(id)) return;
    reached.add(id);
    (children.get(id) ?? []).forEach((k) => reach(k.info.run_id));
  };
  roots.forEach((r) => reach(r.info.run_id));
  for (const run of runs) {
    if (reached.has(run.info.run_id)) continue;
    roots.push(run);
    reach(run.info.run_id);
  }
  roots.forEach((r) => visit(r, 0));
  return out;
}

export function aggregate(values: readonly number[]): Aggregate | null {
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return null;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const v of finite) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  return { min, mean: sum / finite.length, max, count: finite.length };
}

/** Groups by `groupBy` (`params.<key>` or `tags.<key>`), groups in order of first appearance. */
export function groupedRows(runs: readonly Run[], groupBy: string, columns: readonly Column[], collapsed: ReadonlySet<string>): Row[] {
  const parsed = parseColumnId(groupBy);
  if (!parsed || parsed.kind === "metrics") return nestedRows(runs, new Set());
  const valueOf = (r: Run) => (parsed.kind === "params" ? r.data.params?.find((p) => p.key === parsed.key)?.value : tagValue(r.data.tags, parsed.key));
  const groups = new Map<string, Run[]>();
  for (const run of runs) {
    const v = valueOf(run) ?? "(none)";
    const list = groups.get(v) ?? [];
    list.push(run);
    groups.set(v, list);
  }
  const metricColumns = columns.filter((c) => c.kind === "metrics" && c.number);
  const out: Row[] = [];
  for (const [value, members] of groups) {
    const aggregates: Record<string, Aggregate | null> = {};
    for (const c of metricColumns) aggregates[c.id] = aggregate(members.map((m) => c.number!(m)));
    out.push({ type: "group", key: groupBy, value, count: members.length, open: !collapsed.has(value), aggregates });
    if (!collapsed.has(value)) for (const run of members) out.push({ type: "run", run, depth: 1, childCount: 0, expanded: false });
  }
  return out;
}
