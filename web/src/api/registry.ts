// MLflow's registry routes the registry views use (registered models with search and paging, a
// model, its versions), typed. Paths are the public `/api/2.0/mlflow/...` ones.

import { request, withQuery } from "./client";
import type { Int64, KeyValue } from "./types";

const BASE = "/api/2.0/mlflow";

export interface RegisteredModelFull {
  name: string;
  description?: string;
  creation_timestamp?: Int64;
  last_updated_timestamp?: Int64;
  latest_versions?: VersionRecord[];
  aliases?: { alias: string; version: string }[];
  tags?: KeyValue[];
}

export interface VersionRecord {
  name: string;
  version: string;
  creation_timestamp?: Int64;
  last_updated_timestamp?: Int64;
  user_id?: string;
  current_stage?: string;
  description?: string;
  source?: string;
  run_id?: string;
  status?: string;
  tags?: KeyValue[];
  aliases?: string[];
  model_id?: string;
}

/** MLflow's LIKE filter on the name, with `'` and the wildcards of the text escaped away. */
export function nameFilter(text: string): string | undefined {
  const t = text.trim();
  if (!t) return undefined;
  return `name ILIKE '%${t.replace(/'/g, "").replace(/[%_]/g, "")}%'`;
}

export function searchModels(search: string, pageToken: string | undefined, signal?: AbortSignal): Promise<{ registered_models?: RegisteredModelFull[]; next_page_token?: string }> {
  return request(
    "GET",
    withQuery(`${BASE}/registered-models/search`, { filter: nameFilter(search), max_results: 100, page_token: pageToken, order_by: ["name ASC"] }),
    undefined,
    signal,
  );
}

export async function getModel(name: string, signal?: AbortSignal): Promise<RegisteredModelFull> {
  const body = await request<{ registered_model: RegisteredModelFull }>("GET", withQuery(`${BASE}/registered-models/get`, { name }), undefined, signal);
  return body.registered_model;
}

/** Every version of `name`, newest first, following page tokens. */
export async function modelVersions(name: string, signal?: AbortSignal): Promise<VersionRecord[]> {
  const out: VersionRecord[] = [];
  let token: string | undefined;
  const filter = `name = '${name.replace(/'/g, "\\'")}'`;
  do {
    const page = await request<{ model_versions?: VersionRecord[]; next_page_token?: string }>(
      "GET",
      withQuery(`${BASE}/model-versions/search`, { filter, max_results: 10000, order_by: ["version_number DESC"], page_token: token }),
      undefined,
      signal,
    );
    out.push(...(page.model_versions ?? []));
    token = page.next_page_token;
  } while (token);
  return out;
}

export async function getVersion(name: string, version: string, signal?: AbortSignal): Promise<VersionRecord> {
  const body = await request<{ model_version: VersionRecord }>("GET", withQuery(`${BASE}/model-versions/get`, { name, version }), undefined, signal);
  return body.model_version;
}
