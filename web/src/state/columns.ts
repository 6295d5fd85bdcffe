// The runs table's columns: the fixed ones, and params / metrics / tags chosen by id
// (`params.lr`). Each knows how to read its value from a run and, when the server can sort on
// it, the MLflow ORDER BY term.

import type { Run } from "../api/types";
import { formatDuration, formatTime, formatValue, runDuration, tagValue, toNumber } from "../lib/format";

export type ColumnKind = "attribute" | "params" | "metrics" | "tags";

export interface Column {
  id: string;
  kind: ColumnKind;
  label: string;
  width: number;
  numeric: boolean;
  /** The MLflow order_by key (without direction), or null when the server cannot sort on it. */
  orderKey: string | null;
  /** The text the cell shows. */
  text: (run: Run) => string;
  /** The number used for group aggregates, for numeric columns. */
  number?: (run: Run) => number;
}

const tag = (run: Run, key: string) => tagValue(run.data.tags, key);

/** The columns every runs table shows, before the chosen ones. */
export const FIXED_COLUMNS: Column[] = [
  { id: "attributes.run_name", kind: "attribute", label: "Run name", width: 220, numeric: false, orderKey: "attributes.run_name", text: (r) => r.info.run_name ?? tag(r, "mlflow.runName") ?? r.info.run_id },
  { id: "attributes.status", kind: "attribute", label: "Status", width: 90, numeric: false, orderKey: "attributes.status", text: (r) => r.info.status },
  { id: "attributes.start_time", kind: "attribute", label: "Started", width: 170, numeric: false, orderKey: "attributes.start_time", text: (r) => formatTime(r.info.start_time) },
  { id: "duration", kind: "attribute", label: "Duration", width: 80, numeric: true, orderKey: null, text: (r) => formatDuration(runDuration(r.info.start_time, r.info.end_time)) },
  { id: "attributes.user_id", kind: "attribute", label: "User", width: 100, numeric: false, orderKey: "attributes.user_id", text: (r) => r.info.user_id || tag(r, "mlflow.user") || "" },
  { id: "tags.mlflow.source.name", kind: "attribute", label: "Source", width: 140, numeric: false, orderKey: "tags.`mlflow.source.name`", text: (r) => (tag(r, "mlflow.source.name") ?? "").split("/").pop() ?? "" },
  { id: "tags.mlflow.source.git.commit", kind: "attribute", label: "Commit", width: 80, numeric: false, orderKey: "tags.`mlflow.source.git.commit`", text: (r) => (tag(r, "mlflow.source.git.commit") ?? "").slice(0, 7) },
];

/** Splits `params.lr` into its kind and key; null for ids that name no chosen column. */
export function parseColumnId(id: string): { kind: "params" | "metrics" | "tags"; key: string } | null {
  const dot = id.indexOf(".");
  if (dot < 0) return null;
  const kind = id.slice(0, dot);
  const key = id.slice(dot + 1);
  if (!key || (kind !== "params" && kind !== "metrics" && kind !== "tags")) return null;
  return { kind, key };
}

/** MLflow quotes keys with backticks in ORDER BY and filters; a backtick cannot be quoted. */
export function quoteKey(key: string): string {
  return key.includes("`") ? key : "`" + key + "`";
}

export function chosenColumn(id: string): Column | null {
  const parsed = parseColumnId(id);
  if (!parsed) return null;
  const { kind, key } = parsed;
  const orderKey = key.includes("`") ? null : `${kind}.${quoteKey(key)}`;
  if (kind === "metrics") {
    const value = (r: Run) => r.data.metrics?.find((m) => m.key === key)?.value;
    return { id, kind, label: key, width: 110, numeric: true, orderKey, text: (r) => formatValue(value(r)), number: (r) => toNumber(value(r)) };
  }
  if (kind === "params") {
    const value = (r: Run) => r.data.params?.find((p) => p.key === key)?.value;
    return { id, kind, label: key, width: 110, numeric: false, orderKey, text: (r) => value(r) ?? "", number: (r) => Number(value(r) ?? NaN) };
  }
  return { id, kind, label: key, width: 120, numeric: false, orderKey, text: (r) => tag(r, key) ?? "" };
}

export function columnsFor(ids: readonly string[]): Column[] {
  return [...FIXED_COLUMNS, ...ids.map(chosenColumn).filter((c): c is Column => c !== null)];
}

/** The ORDER BY list for a sort, plus the run id as a tie-break so page order is stable. */
export function orderBy(sort: { column: string; ascending: boolean } | null): string[] {
  if (!sort) return [];
  const column = FIXED_COLUMNS.find((c) => c.id === sort.column) ?? chosenColumn(sort.column);
  if (!column?.orderKey) return [];
  return [`${column.orderKey} ${sort.ascending ? "ASC" : "DESC"}`];
}

export interface KnownKeys {
  params: string[];
  metrics: string[];
  tags: string[];
}

/** Every param, metric and (non-system) tag key among `runs`, sorted. */
export function knownKeys(runs: readonly Run[]): KnownKeys {
  const params = new Set<string>();
  const metrics = new Set<string>();
  const tags = new Set<string>();
  for (const r of runs) {
    r.data.params?.forEach((p) => params.add(p.key));
    r.data.metrics?.forEach((m) => metrics.add(m.key));
    r.data.tags?.forEach((t) => {
      if (!t.key.startsWith("mlflow.")) tags.add(t.key);
    });
  }
  const sorted = (s: Set<string>) => Array.from(s).sort();
  return { params: sorted(params), metrics: sorted(metrics), tags: sorted(tags) };
}
