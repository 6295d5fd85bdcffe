// Addresses of the governance views: the registry (MLflow's `#/models/<name>/versions/<n>`
// scheme), the lineage explorer, a prediction's trace, deployments, lineage health and the audit
// log. Every view that can look at the past carries `asOf` (RFC 3339, UTC) in its query, and
// links between these views keep it, so one chosen instant follows the user around.
// Parsing and formatting are pure and inverse to each other (test/gov.test.ts).

export interface AuditState {
  actor: string;
  action: string;
  entityType: string;
  entityId: string;
  since: string;
  until: string;
  /** Page below this sequence number (newest first); null for the newest page. */
  before: number | null;
  /** The event whose payload is open. */
  open: number | null;
}

export interface LineageState {
  node: string;
  up: number;
  down: number;
  /** A second node to compare upstreams with (diff mode). */
  diff: string | null;
  /** Nodes whose neighbours were expanded by a click. */
  expanded: string[];
  /** The node shown in the side panel. */
  selected: string | null;
}

export type GovRoute =
  | { name: "models"; search: string; asOf: string | null }
  | { name: "model"; model: string; asOf: string | null }
  | { name: "modelVersion"; model: string; version: string; asOf: string | null }
  | { name: "lineage"; state: LineageState; asOf: string | null }
  | { name: "trace"; predictionId: string; asOf: string | null }
  | { name: "deployments"; asOf: string | null }
  | { name: "health"; asOf: string | null }
  | { name: "audit"; state: AuditState };

export const MAX_DEPTH = 10;

export function defaultAuditState(): AuditState {
  return { actor: "", action: "", entityType: "", entityId: "", since: "", until: "", before: null, open: null };
}

export function defaultLineageState(node = ""): LineageState {
  return { node, up: 3, down: 1, diff: null, expanded: [], selected: null };
}

function depth(text: string | null, fallback: number): number {
  if (text === null) return fallback;
  const n = Number(text);
  return Number.isInteger(n) && n >= 0 && n <= MAX_DEPTH ? n : fallback;
}

function seq(text: string | null): number | null {
  if (text === null || text === "") return null;
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** An "as of" instant from the address: RFC 3339 text or milliseconds, else null. */
export function parseAsOf(text: string | null): string | null {
  if (!text) return null;
  if (/^\d+$/.test(text)) return new Date(Number(text)).toISOString();
  const t = Date.parse(text);
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}

// Node references hold colons, slashes and `@`; commas in a list are escaped so it splits back.
const joinList = (values: readonly string[]) => values.map((v) => v.replace(/%/g, "%25").replace(/,/g, "%2C")).join(",");
const splitList = (text: string | null) =>
  text ? text.split(",").filter((v) => v !== "").map((v) => v.replace(/%2C/g, ",").replace(/%25/g, "%")) : [];

/** The governance route at `parts` (the address path, decoded) with query `q`, or null. */
export function parseGovRoute(parts: string[], q: URLSearchParams): GovRoute | null {
  const asOf = parseAsOf(q.get("asOf"));
  const [head, ...rest] = parts;
  if (head === "models") {
    if (rest.length === 0) return { name: "models", search: q.get("q") ?? "", asOf };
    if (rest.length === 1) return { name: "model", model: rest[0]!, asOf };
    if (rest.length === 3 && rest[1] === "versions") return { name: "modelVersion", model: rest[0]!, version: rest[2]!, asOf };
    return null;
  }
  if (rest.length !== 0) return null;
  switch (head) {
    case "lineage":
      return {
        name: "lineage",
        asOf,
        state: {
          node: q.get("node") ?? "",
          up: depth(q.get("up"), 3),
          down: depth(q.get("down"), 1),
          diff: q.get("diff") || null,
          expanded: splitList(q.get("exp")),
          selected: q.get("sel") || null,
        },
      };
    case "trace":
      return { name: "trace", predictionId: q.get("id") ?? "", asOf };
    case "deployments":
      return { name: "deployments", asOf };
    case "health":
      return { name: "health", asOf };
    case "audit":
      return {
        name: "audit",
        state: {
          actor: q.get("actor") ?? "",
          action: q.get("action") ?? "",
          entityType: q.get("entity_type") ?? "",
          entityId: q.get("entity_id") ?? "",
          since: q.get("since") ?? "",
          until: q.get("until") ?? "",
          before: seq(q.get("before")),
          open: seq(q.get("open")),
        },
      };
    default:
      return null;
  }
}

function withQuery(path: string, q: URLSearchParams): string {
  const text = q.toString();
  return text ? `#${path}?${text}` : `#${path}`;
}

/** The address (starting with `#`) of a governance route. */
export function formatGovRoute(route: GovRoute): string {
  const q = new URLSearchParams();
  const setAsOf = (asOf: string | null) => asOf && q.set("asOf", asOf);
  const enc = encodeURIComponent;
  switch (route.name) {
    case "models":
      if (route.search) q.set("q", route.search);
      setAsOf(route.asOf);
      return withQuery("/models", q);
    case "model":
      setAsOf(route.asOf);
      return withQuery(`/models/${enc(route.model)}`, q);
    case "modelVersion":
      setAsOf(route.asOf);
      return withQuery(`/models/${enc(route.model)}/versions/${enc(route.version)}`, q);
    case "lineage": {
      const s = route.state;
      if (s.node) q.set("node", s.node);
      if (s.up !== 3) q.set("up", String(s.up));
      if (s.down !== 1) q.set("down", String(s.down));
      if (s.diff) q.set("diff", s.diff);
      if (s.expanded.length) q.set("exp", joinList(s.expanded));
      if (s.selected) q.set("sel", s.selected);
      setAsOf(route.asOf);
      return withQuery("/lineage", q);
    }
    case "trace":
      if (route.predictionId) q.set("id", route.predictionId);
      setAsOf(route.asOf);
      return withQuery("/trace", q);
    case "deployments":
      setAsOf(route.asOf);
      return withQuery("/deployments", q);
    case "health":
      setAsOf(route.asOf);
      return withQuery("/health", q);
    case "audit": {
      const s = route.state;
      const pairs: [string, string][] = [
        ["actor", s.actor],
        ["action", s.action],
        ["entity_type", s.entityType],
        ["entity_id", s.entityId],
        ["since", s.since],
        ["until", s.until],
      ];
      for (const [k, v] of pairs) if (v) q.set(k, v);
      if (s.before !== null) q.set("before", String(s.before));
      if (s.open !== null) q.set("open", String(s.open));
      return withQuery("/audit", q);
    }
  }
}

export const modelHref = (model: string, asOf: string | null) => formatGovRoute({ name: "model", model, asOf });
export const versionHref = (model: string, version: string | number, asOf: string | null) =>
  formatGovRoute({ name: "modelVersion", model, version: String(version), asOf });
export const lineageHref = (node: string, asOf: string | null, extra: Partial<LineageState> = {}) =>
  formatGovRoute({ name: "lineage", asOf, state: { ...defaultLineageState(node), ...extra } });
export const traceHref = (predictionId: string, asOf: string | null) => formatGovRoute({ name: "trace", predictionId, asOf });

/** `model-version:name/3` → `["name", "3"]`; null for other nodes. */
export function modelVersionOf(node: string): [string, string] | null {
  const m = /^model-version:(.+)\/(\d+)$/.exec(node);
  return m ? [m[1]!, m[2]!] : null;
}
