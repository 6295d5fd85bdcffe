// MLflow's REST routes the UI uses, typed. Paths are the public `/api/2.0/mlflow/...` ones.

import { request, withQuery } from "./client";
import type { Experiment, ExperimentsPage, FileInfo, LoggedModel, Metric, ModelVersion, Run, RunsPage } from "./types";

const BASE = "/api/2.0/mlflow";

export type ViewType = "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL";

export function searchExperiments(opts: { filter?: string; viewType?: ViewType; pageToken?: string; maxResults?: number }): Promise<ExperimentsPage> {
  return request("POST", `${BASE}/experiments/search`, {
    filter: opts.filter || undefined,
    view_type: opts.viewType ?? "ACTIVE_ONLY",
    max_results: opts.maxResults ?? 1000,
    page_token: opts.pageToken,
    order_by: ["last_update_time DESC"],
  });
}

export async function getExperiment(id: string, signal?: AbortSignal): Promise<Experiment> {
  const body = await request<{ experiment: Experiment }>("GET", withQuery(`${BASE}/experiments/get`, { experiment_id: id }), undefined, signal);
  return body.experiment;
}

export async function createExperiment(name: string): Promise<string> {
  const body = await request<{ experiment_id: string }>("POST", `${BASE}/experiments/create`, { name });
  return body.experiment_id;
}

export function renameExperiment(id: string, newName: string): Promise<unknown> {
  return request("POST", `${BASE}/experiments/update`, { experiment_id: id, new_name: newName });
}

export function deleteExperiment(id: string): Promise<unknown> {
  return request("POST", `${BASE}/experiments/delete`, { experiment_id: id });
}

export function restoreExperiment(id: string): Promise<unknown> {
  return request("POST", `${BASE}/experiments/restore`, { experiment_id: id });
}

export interface RunSearch {
  experimentIds: string[];
  filter?: string;
  orderBy?: string[];
  viewType?: ViewType;
  pageToken?: string;
  maxResults?: number;
}

export function searchRuns(q: RunSearch, signal?: AbortSignal): Promise<RunsPage> {
  return request(
    "POST",
    `${BASE}/runs/search`,
    {
      experiment_ids: q.experimentIds,
      filter: q.filter || undefined,
      order_by: q.orderBy && q.orderBy.length ? q.orderBy : undefined,
      run_view_type: q.viewType ?? "ACTIVE_ONLY",
      max_results: q.maxResults ?? 200,
      page_token: q.pageToken,
    },
    signal,
  );
}

export async function getRun(runId: string, signal?: AbortSignal): Promise<Run> {
  const body = await request<{ run: Run }>("GET", withQuery(`${BASE}/runs/get`, { run_id: runId }), undefined, signal);
  return body.run;
}

export function setRunTag(runId: string, key: string, value: string): Promise<unknown> {
  return request("POST", `${BASE}/runs/set-tag`, { run_id: runId, key, value });
}

export function deleteRunTag(runId: string, key: string): Promise<unknown> {
  return request("POST", `${BASE}/runs/delete-tag`, { run_id: runId, key });
}

export function deleteRun(runId: string): Promise<unknown> {
  return request("POST", `${BASE}/runs/delete`, { run_id: runId });
}

export function restoreRun(runId: string): Promise<unknown> {
  return request("POST", `${BASE}/runs/restore`, { run_id: runId });
}

export async function metricHistory(runId: string, key: string, signal?: AbortSignal): Promise<Metric[]> {
  const out: Metric[] = [];
  let token: string | undefined;
  do {
    const page = await request<{ metrics?: Metric[]; next_page_token?: string }>(
      "GET",
      withQuery(`${BASE}/metrics/get-history`, { run_id: runId, metric_key: key, max_results: 25000, page_token: token }),
      undefined,
      signal,
    );
    out.push(...(page.metrics ?? []));
    token = page.next_page_token;
  } while (token);
  return out;
}

export async function listArtifacts(runId: string, path?: string): Promise<FileInfo[]> {
  const body = await request<{ files?: FileInfo[] }>("GET", withQuery(`${BASE}/artifacts/list`, { run_id: runId, path }));
  return body.files ?? [];
}

export async function loggedModelsOfRun(experimentId: string, runId: string): Promise<LoggedModel[]> {
  const body = await request<{ models?: LoggedModel[] }>("POST", `${BASE}/logged-models/search`, {
    experiment_ids: [experimentId],
    filter: `source_run_id = '${runId.replace(/'/g, "")}'`,
    max_results: 100,
  });
  return body.models ?? [];
}

export async function modelVersionsOfRun(runId: string): Promise<ModelVersion[]> {
  const body = await request<{ model_versions?: ModelVersion[] }>(
    "GET",
    withQuery(`${BASE}/model-versions/search`, { filter: `run_id = '${runId.replace(/'/g, "")}'`, max_results: 200 }),
  );
  return body.model_versions ?? [];
}

/** The download address of a run file, through MLflow's proxied artifact route. */
export function artifactUrl(artifactUri: string | undefined, path: string): string | null {
  const prefix = "mlflow-artifacts:/";
  if (!artifactUri || !artifactUri.startsWith(prefix)) return null;
  const root = artifactUri.slice(prefix.length).replace(/^\/+/, "");
  const encoded = `${root}/${path}`.split("/").map(encodeURIComponent).join("/");
  return `/api/2.0/mlflow-artifacts/artifacts/${encoded}`;
}

export interface RegisteredModel {
  name: string;
  latest_versions?: ModelVersion[];
  aliases?: { alias: string; version: string }[];
  last_updated_timestamp?: number | string;
}

export async function searchRegisteredModels(): Promise<RegisteredModel[]> {
  const body = await request<{ registered_models?: RegisteredModel[] }>("GET", withQuery(`${BASE}/registered-models/search`, { max_results: 1000 }));
  return body.registered_models ?? [];
}
