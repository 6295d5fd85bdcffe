// Cairn's native routes (`/api/cairn/v1/...`) the UI uses. `NATIVE_ROUTES` lists each one as
// openapi.json spells it; a unit test checks every entry against the committed document.

import { request, withQuery, type Query } from "./client";

/** Each route with the query parameters the UI sends; the URL helper accepts no others. */
export const NATIVE_ROUTES = {
  runArtifacts: { method: "get", path: "/api/cairn/v1/runs/{run_id}/artifacts", query: [] },
  lineageUpstream: { method: "get", path: "/api/cairn/v1/lineage/upstream", query: ["node", "depth"] },
  sampledMetrics: { method: "get", path: "/api/cairn/v1/metrics/sampled", query: ["run_id", "key", "points", "start_step", "end_step"] },
  runCounts: { method: "get", path: "/api/cairn/v1/experiments/run-counts", query: ["experiment_ids", "view_type"] },
  session: { method: "get", path: "/api/cairn/v1/session", query: ["experiment_id", "registered_model"] },
} as const;

type NativeRoute = (typeof NATIVE_ROUTES)[keyof typeof NATIVE_ROUTES];

/** The URL of a native route: only the query names the route lists type-check. */
function nativeUrl<R extends NativeRoute>(route: R, query: { [K in R["query"][number]]?: Query[string] }): string {
  return withQuery(route.path, query as Query);
}

function fill(path: string, params: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ""));
}

/** Experiments per run-count request: the route's limit. */
export const RUN_COUNTS_MAX = 100;

/** How many active runs each experiment has, in the order asked (at most `RUN_COUNTS_MAX` at once). */
export async function runCounts(experimentIds: string[], signal?: AbortSignal): Promise<Map<string, number>> {
  const body = await request<{ counts?: { experiment_id: string; runs: number }[] }>(
    "GET",
    nativeUrl(NATIVE_ROUTES.runCounts, { experiment_ids: experimentIds }),
    undefined,
    signal,
  );
  // An answer filtered to nothing may leave `counts` out.
  return new Map((body.counts ?? []).map((c) => [c.experiment_id, c.runs]));
}

/** MLflow's permission levels, as the server reports them. */
export type Permission = "MANAGE" | "EDIT" | "USE" | "READ" | "NO_PERMISSIONS" | "DENY";

/** Who the caller is and what they may do on the resources asked. */
export interface Session {
  auth: "none" | "basic";
  user: { username: string; is_admin: boolean; token: { id: string; scope: string } | null } | null;
  may_write: boolean;
  experiments: { experiment_id: string; permission: Permission }[];
  registered_models: { name: string; permission: Permission }[];
}

/** The session of the stored credentials, or of `authorization` when given (signing in). */
export function session(q: { experimentIds?: string[]; registeredModels?: string[]; authorization?: string }, signal?: AbortSignal): Promise<Session> {
  const url = nativeUrl(NATIVE_ROUTES.session, { experiment_id: q.experimentIds, registered_model: q.registeredModels });
  const headers = q.authorization ? { Accept: "application/json", "X-Requested-With": "XMLHttpRequest", Authorization: q.authorization } : undefined;
  return request("GET", url, undefined, signal, headers);
}

export interface ManifestFile {
  path: string;
  digest: string;
  size: number;
  created_time?: number;
}

export async function runArtifactManifest(runId: string): Promise<ManifestFile[]> {
  const body = await request<{ files: ManifestFile[] }>("GET", fill(NATIVE_ROUTES.runArtifacts.path, { run_id: runId }));
  return body.files;
}

/**
 * A node of a lineage answer. With access control on, a run, logged model or model version the
 * caller may not read comes as a placeholder: `{id: "redacted:N", kind, redacted: true}` and
 * nothing else, so its label, digest and attributes are absent.
 */
export interface LineageNode {
  id: string;
  label: string;
  digest: string | null;
  attributes: Record<string, unknown>;
  recorded_at: number;
  /** On placeholders only: the kind of the node it hides (`run`, `model`, `model-version`). */
  kind?: string;
  redacted?: boolean;
}

export interface LineageEdge {
  source: string;
  kind: string;
  target: string;
}

export interface Subgraph {
  nodes: LineageNode[];
  edges: LineageEdge[];
  truncated: boolean;
}

export function lineageUpstream(node: string, depth = 3): Promise<Subgraph> {
  return request("GET", nativeUrl(NATIVE_ROUTES.lineageUpstream, { node, depth }));
}

/** One downsampled series: per bucket the last point, plus the bucket's min and max. */
export interface SampledSeries {
  run_id: string;
  key: string;
  total: number;
  sampled: boolean;
  step: number[];
  timestamp: number[];
  value: (number | string)[];
  min: (number | string)[];
  max: (number | string)[];
}

export interface SampledQuery {
  runIds: string[];
  key: string;
  points: number;
  startStep?: number;
  endStep?: number;
}

/** Sampled requests in flight, by URL: views that want the same series at once (a run page's
 * sparkline and its chart) share one request, so the server reads a long series once. */
const sampledInFlight = new Map<string, Promise<SampledSeries[]>>();

export function sampledMetrics(q: SampledQuery, signal?: AbortSignal): Promise<SampledSeries[]> {
  const url = nativeUrl(NATIVE_ROUTES.sampledMetrics, {
    run_id: q.runIds,
    key: q.key,
    points: q.points,
    start_step: q.startStep,
    end_step: q.endStep,
  });
  let shared = sampledInFlight.get(url);
  if (!shared) {
    // Not tied to one caller's signal: another may still want the answer.
    shared = request<{ series: SampledSeries[] }>("GET", url)
      .then((body) => body.series)
      .finally(() => sampledInFlight.delete(url));
    sampledInFlight.set(url, shared);
  }
  return signal ? abandonable(shared, signal) : shared;
}

/** `promise`, or an AbortError as soon as `signal` fires (the work itself goes on). */
function abandonable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new DOMException("Aborted", "AbortError"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new DOMException("Aborted", "AbortError"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
