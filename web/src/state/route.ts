// The app's state lives in the address: `#/<path>?<query>`, with MLflow's paths for
// experiments and runs so the links the mlflow client prints open the right view. Parsing and
// formatting are pure and inverse to each other (tested in test/route.test.ts).

import { formatGovRoute, parseGovRoute, type GovRoute } from "./gov";

export type XAxis = "step" | "time" | "relative";

/** Chart settings shared by the runs view's chart tab, the run page and the compare view. */
export interface ChartSettings {
  x: XAxis;
  logY: boolean;
  /** EMA weight in [0, 1): 0 draws the raw series only. */
  smoothing: number;
}

/** What the runs table shows: everything that a shared link must reproduce. */
export interface RunsState {
  filter: string;
  /** Column id (`attributes.start_time`, `metrics.loss`, ...) and direction, or null for the server's order. */
  sort: { column: string; ascending: boolean } | null;
  /** Chosen extra columns, as ids `params.<key>`, `metrics.<key>`, `tags.<key>`. */
  columns: string[];
  selected: string[];
  showDeleted: boolean;
  /** A `params.<key>` or `tags.<key>` to group rows by, or null. */
  groupBy: string | null;
  view: "table" | "charts";
  chart: ChartSettings;
}

export type Route =
  | { name: "experiments"; showDeleted: boolean; search: string }
  | { name: "runs"; experimentIds: string[]; state: RunsState }
  | { name: "run"; experimentId: string; runId: string }
  | { name: "compare"; experimentIds: string[]; runIds: string[]; chart: ChartSettings }
  | GovRoute
  | { name: "notFound"; path: string };

export const DEFAULT_CHART: ChartSettings = { x: "step", logY: false, smoothing: 0 };

export function defaultRunsState(): RunsState {
  return {
    filter: "",
    sort: null,
    columns: [],
    selected: [],
    showDeleted: false,
    groupBy: null,
    view: "table",
    chart: { ...DEFAULT_CHART },
  };
}

function list(value: string | null): string[] {
  return value ? value.split(",").map(safeDecode).filter((v) => v !== "") : [];
}

function joinList(values: readonly string[]): string {
  // Commas inside a key are escaped so the list splits back into the same values.
  return values.map((v) => v.replace(/%/g, "%25").replace(/,/g, "%2C")).join(",");
}

function parseChart(q: URLSearchParams): ChartSettings {
  const x = q.get("x");
  const smoothing = Number(q.get("smooth") ?? "0");
  return {
    x: x === "time" || x === "relative" ? x : "step",
    logY: q.get("log") === "1",
    smoothing: Number.isFinite(smoothing) && smoothing >= 0 && smoothing < 1 ? smoothing : 0,
  };
}

function writeChart(q: URLSearchParams, chart: ChartSettings): void {
  if (chart.x !== "step") q.set("x", chart.x);
  if (chart.logY) q.set("log", "1");
  if (chart.smoothing > 0) q.set("smooth", String(chart.smoothing));
}

export function parseRunsState(q: URLSearchParams): RunsState {
  const order = q.get("order");
  let sort: RunsState["sort"] = null;
  if (order) {
    const descending = order.startsWith("-");
    sort = { column: descending ? order.slice(1) : order, ascending: !descending };
  }
  const view = q.get("view");
  return {
    filter: q.get("filter") ?? "",
    sort,
    columns: list(q.get("cols")),
    selected: list(q.get("sel")),
    showDeleted: q.get("deleted") === "1",
    groupBy: q.get("group") || null,
    view: view === "charts" ? "charts" : "table",
    chart: parseChart(q),
  };
}

export function writeRunsState(state: RunsState): URLSearchParams {
  const q = new URLSearchParams();
  if (state.filter) q.set("filter", state.filter);
  if (state.sort) q.set("order", (state.sort.ascending ? "" : "-") + state.sort.column);
  if (state.columns.length) q.set("cols", joinList(state.columns));
  if (state.selected.length) q.set("sel", joinList(state.selected));
  if (state.showDeleted) q.set("deleted", "1");
  if (state.groupBy) q.set("group", state.groupBy);
  if (state.view !== "table") q.set("view", state.view);
  writeChart(q, state.chart);
  return q;
}

/** Parses the part of the address after `#`. */
export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const queryAt = raw.indexOf("?");
  const path = (queryAt >= 0 ? raw.slice(0, queryAt) : raw).replace(/\/+$/, "");
  const q = new URLSearchParams(queryAt >= 0 ? raw.slice(queryAt + 1) : "");
  const parts = path.split("/").filter((p) => p !== "").map(safeDecode);

  if (parts.length === 0 || (parts.length === 1 && parts[0] === "experiments")) {
    return { name: "experiments", showDeleted: q.get("deleted") === "1", search: q.get("q") ?? "" };
  }
  if (parts[0] === "experiments" && parts.length === 2) {
    return { name: "runs", experimentIds: [parts[1]!], state: parseRunsState(q) };
  }
  if (parts[0] === "experiments" && parts.length === 4 && parts[2] === "runs") {
    return { name: "run", experimentId: parts[1]!, runId: parts[3]! };
  }
  if (parts[0] === "compare-experiments" && parts.length === 1) {
    const ids = list(q.get("ids"));
    if (ids.length) return { name: "runs", experimentIds: ids, state: parseRunsState(q) };
  }
  if (parts[0] === "compare-runs" && parts.length === 1) {
    return { name: "compare", experimentIds: list(q.get("experiments")), runIds: list(q.get("runs")), chart: parseChart(q) };
  }
  const gov = parseGovRoute(parts, q);
  if (gov) return gov;
  return { name: "notFound", path: "/" + parts.join("/") };
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** The address (starting with `#`) of a route. */
export function formatRoute(route: Route): string {
  const withQuery = (path: string, q: URLSearchParams) => {
    const text = q.toString();
    return text ? `#${path}?${text}` : `#${path}`;
  };
  switch (route.name) {
    case "experiments": {
      const q = new URLSearchParams();
      if (route.search) q.set("q", route.search);
      if (route.showDeleted) q.set("deleted", "1");
      return withQuery("/experiments", q);
    }
    case "runs": {
      const q = writeRunsState(route.state);
      if (route.experimentIds.length === 1) return withQuery(`/experiments/${encodeURIComponent(route.experimentIds[0]!)}`, q);
      const all = new URLSearchParams({ ids: joinList(route.experimentIds) });
      q.forEach((v, k) => all.set(k, v));
      return withQuery("/compare-experiments", all);
    }
    case "run":
      return `#/experiments/${encodeURIComponent(route.experimentId)}/runs/${encodeURIComponent(route.runId)}`;
    case "compare": {
      const q = new URLSearchParams({ runs: joinList(route.runIds) });
      if (route.experimentIds.length) q.set("experiments", joinList(route.experimentIds));
      writeChart(q, route.chart);
      return withQuery("/compare-runs", q);
    }
    case "notFound":
      return `#${route.path}`;
    default:
      return formatGovRoute(route);
  }
}

export function runHref(experimentId: string, runId: string): string {
  return formatRoute({ name: "run", experimentId, runId });
}

export function experimentHref(experimentId: string): string {
  return formatRoute({ name: "runs", experimentIds: [experimentId], state: defaultRunsState() });
}
