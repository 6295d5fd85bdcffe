// The native routes of the governance views (registry history and policy, lineage, predictions,
// deployments, health, audit). `GOVERNANCE_ROUTES` lists each as openapi.json spells it; a unit
// test checks every entry against the committed document, like `NATIVE_ROUTES`.

import { request, withQuery, type Query } from "./client";
import type { LineageEdge, LineageNode } from "./cairn";

export const GOVERNANCE_ROUTES = {
  modelHistory: { method: "get", path: "/api/cairn/v1/models/{name}/history", query: ["as_of"] },
  versionFiles: { method: "get", path: "/api/cairn/v1/models/{name}/versions/{version}/files", query: [] },
  versionPolicy: { method: "get", path: "/api/cairn/v1/models/{name}/versions/{version}/policy", query: [] },
  lineageNode: { method: "get", path: "/api/cairn/v1/lineage/nodes/{kind}/{key}", query: ["as_of"] },
  upstream: { method: "get", path: "/api/cairn/v1/lineage/upstream", query: ["node", "depth", "as_of"] },
  downstream: { method: "get", path: "/api/cairn/v1/lineage/downstream", query: ["node", "depth", "as_of"] },
  diff: { method: "get", path: "/api/cairn/v1/lineage/diff", query: ["left", "right", "depth", "as_of"] },
  exportGraph: { method: "get", path: "/api/cairn/v1/lineage/export", query: ["node", "direction", "depth", "as_of", "format"] },
  health: { method: "get", path: "/api/cairn/v1/lineage/health", query: ["as_of"] },
  completeness: { method: "get", path: "/api/cairn/v1/lineage/completeness", query: ["node", "as_of"] },
  trace: { method: "get", path: "/api/cairn/v1/predictions/{id}/trace", query: ["as_of"] },
  servingHistory: { method: "get", path: "/api/cairn/v1/deployments", query: ["deployment", "as_of"] },
  auditEvents: {
    method: "get",
    path: "/api/cairn/v1/audit/events",
    query: ["after", "before", "order", "actor", "action", "entity_type", "entity_id", "since", "until", "limit"],
  },
  auditVerify: { method: "post", path: "/api/cairn/v1/audit/verify", query: [] },
} as const;

type Route = (typeof GOVERNANCE_ROUTES)[keyof typeof GOVERNANCE_ROUTES];

function url<R extends Route>(route: R, params: Record<string, string>, query: { [K in R["query"][number]]?: Query[string] }): string {
  // Lineage keys may hold slashes, which the node route takes as they are (`{*key}`).
  const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) =>
    name === "key" ? (params[name] ?? "").split("/").map(encodeURIComponent).join("/") : encodeURIComponent(params[name] ?? ""),
  );
  return withQuery(path, query as Query);
}

/** An "as of" instant as the server reads it (RFC 3339), or undefined for now. */
export type AsOf = string | null;
const at = (asOf: AsOf) => asOf ?? undefined;

export type HistoryKind =
  | "model_created"
  | "model_renamed"
  | "model_deleted"
  | "version_created"
  | "version_deleted"
  | "stage_transition"
  | "alias_set"
  | "alias_deleted";

export interface HistoryEntry {
  seq: number;
  time: number;
  actor: string;
  kind: HistoryKind;
  name: string;
  version: number | null;
  alias: string | null;
  previous_version: number | null;
  from_stage: string | null;
  to_stage: string | null;
  previous_name: string | null;
}

export async function modelHistory(name: string, asOf: AsOf, signal?: AbortSignal): Promise<HistoryEntry[]> {
  const body = await request<{ history: HistoryEntry[] }>("GET", url(GOVERNANCE_ROUTES.modelHistory, { name }, { as_of: at(asOf) }), undefined, signal);
  return body.history;
}

export interface PinnedFile {
  path: string;
  digest: string;
  size: number;
  created_time?: number;
}

export interface VersionFiles {
  pin_id: string | null;
  algorithm: string;
  files: PinnedFile[];
}

export function versionFiles(name: string, version: string, signal?: AbortSignal): Promise<VersionFiles> {
  return request("GET", url(GOVERNANCE_ROUTES.versionFiles, { name, version }, {}), undefined, signal);
}

export interface RequirementCheck {
  fact: string;
  met: boolean;
  message: string;
  /** True when the value is on a source run the caller may not read (the message says only met or not). */
  redacted?: boolean;
}

export interface RuleVerdict {
  rule: string;
  stages: string[];
  aliases: string[];
  checks: RequirementCheck[];
  passes: boolean;
}

export interface PolicyVerdict {
  policy: boolean;
  rules: RuleVerdict[];
  facts?: { datasets: { node: string; digest: string | null }[]; code_versions: string[]; environments: string[] };
}

export function versionPolicy(name: string, version: string, signal?: AbortSignal): Promise<PolicyVerdict> {
  return request("GET", url(GOVERNANCE_ROUTES.versionPolicy, { name, version }, {}), undefined, signal);
}

export interface Subgraph {
  nodes: LineageNode[];
  edges: GraphEdge[];
  truncated: boolean;
}

export interface GraphEdge extends LineageEdge {
  recorded_at?: number;
  valid_from?: number | null;
  valid_to?: number | null;
}

export async function lineageNode(ref: string, asOf: AsOf, signal?: AbortSignal): Promise<LineageNode> {
  const colon = ref.indexOf(":");
  const body = await request<{ node: LineageNode }>(
    "GET",
    url(GOVERNANCE_ROUTES.lineageNode, { kind: ref.slice(0, colon), key: ref.slice(colon + 1) }, { as_of: at(asOf) }),
    undefined,
    signal,
  );
  return body.node;
}

export function traverse(direction: "upstream" | "downstream", node: string, depth: number, asOf: AsOf, signal?: AbortSignal): Promise<Subgraph> {
  const route = direction === "upstream" ? GOVERNANCE_ROUTES.upstream : GOVERNANCE_ROUTES.downstream;
  return request("GET", url(route, {}, { node, depth, as_of: at(asOf) }), undefined, signal);
}

export interface UpstreamDiff {
  left: string;
  right: string;
  shared: string[];
  only_left: string[];
  only_right: string[];
  same_data: boolean;
  same_code: boolean;
  same_environment: boolean;
  truncated: boolean;
}

export function lineageDiff(left: string, right: string, depth: number, asOf: AsOf, signal?: AbortSignal): Promise<UpstreamDiff> {
  return request("GET", url(GOVERNANCE_ROUTES.diff, {}, { left, right, depth, as_of: at(asOf) }), undefined, signal);
}

/** The export address of one direction of a subgraph (PROV-JSON is JSON, DOT is text). */
export function exportUrl(node: string, direction: "upstream" | "downstream", depth: number, asOf: AsOf, format: "prov-json" | "dot" | "json"): string {
  return url(GOVERNANCE_ROUTES.exportGraph, {}, { node, direction, depth, as_of: at(asOf), format });
}

export function exportProv(node: string, direction: "upstream" | "downstream", depth: number, asOf: AsOf): Promise<Record<string, unknown>> {
  return request("GET", exportUrl(node, direction, depth, asOf, "prov-json"));
}

export interface Completeness {
  complete: boolean;
  missing: string[];
}

export async function completeness(node: string, asOf: AsOf, signal?: AbortSignal): Promise<Completeness> {
  const body = await request<{ completeness: Completeness }>("GET", url(GOVERNANCE_ROUTES.completeness, {}, { node, as_of: at(asOf) }), undefined, signal);
  return body.completeness;
}

export interface LineageHealth {
  model_versions: number;
  model_versions_complete: number;
  model_versions_complete_ratio: number;
  predictions: number;
  predictions_flagged: number;
  predictions_flagged_ratio: number;
  incomplete: { model_version: string; missing: string[] }[];
  by_deployment: { deployment: string | null; predictions: number; flagged: number }[];
}

export function lineageHealth(asOf: AsOf, signal?: AbortSignal): Promise<LineageHealth> {
  return request("GET", url(GOVERNANCE_ROUTES.health, {}, { as_of: at(asOf) }), undefined, signal);
}

export interface Prediction {
  prediction_id: string;
  deployment: string | null;
  model_version: string | null;
  input_digest: string;
  output_digest: string | null;
  time: number;
  recorded_at: number;
  lineage_complete: boolean;
}

export interface PredictionTrace {
  prediction: Prediction;
  completeness: Completeness;
  lineage: Subgraph;
}

export function predictionTrace(id: string, asOf: AsOf, signal?: AbortSignal): Promise<PredictionTrace> {
  return request("GET", url(GOVERNANCE_ROUTES.trace, { id }, { as_of: at(asOf) }), undefined, signal);
}

export interface ServingInterval {
  deployment: string;
  model_version: string;
  valid_from: number | null;
  valid_to: number | null;
  recorded_at: number;
}

export async function servingHistory(asOf: AsOf, signal?: AbortSignal): Promise<ServingInterval[]> {
  const body = await request<{ intervals: ServingInterval[] }>("GET", url(GOVERNANCE_ROUTES.servingHistory, {}, { as_of: at(asOf) }), undefined, signal);
  return body.intervals;
}

export interface AuditEvent {
  seq: number;
  time: number;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string;
  payload: string;
  digest: string;
  prev_hash: string;
  hash: string;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  entity_type?: string;
  entity_id?: string;
  since?: string;
  until?: string;
}

export interface AuditPage {
  events: AuditEvent[];
  next_before?: number;
}

/** A page of events, newest first, below `before` when given. */
export function auditEvents(filter: AuditFilter, before: number | null, limit: number, signal?: AbortSignal): Promise<AuditPage> {
  const blank = (v: string | undefined) => (v ? v : undefined);
  return request(
    "GET",
    url(GOVERNANCE_ROUTES.auditEvents, {}, {
      order: "desc",
      before: before ?? undefined,
      limit,
      actor: blank(filter.actor),
      action: blank(filter.action),
      entity_type: blank(filter.entity_type),
      entity_id: blank(filter.entity_id),
      since: blank(filter.since),
      until: blank(filter.until),
    }),
    undefined,
    signal,
  );
}

export interface VerifyReport {
  ok: boolean;
  events: number;
  problems: { seq: number | null; message: string }[];
}

export function verifyAudit(): Promise<VerifyReport> {
  return request("POST", GOVERNANCE_ROUTES.auditVerify.path, {});
}

/** When the first audit event was written: where everything Cairn knows begins. */
export async function firstAuditTime(signal?: AbortSignal): Promise<number | null> {
  const body = await request<AuditPage>("GET", url(GOVERNANCE_ROUTES.auditEvents, {}, { after: 0, limit: 1 }), undefined, signal);
  return body.events[0]?.time ?? null;
}
