// Pure helpers of the lineage explorer: merging the subgraphs it fetched, what each node kind and
// edge kind is called, the diff marks, and the exports written in the browser (DOT of what is
// shown; PROV-JSON documents from the server merged into one).

import type { LineageNode } from "../api/cairn";
import type { GraphEdge, Subgraph, UpstreamDiff } from "../api/governance";

export interface Graph {
  nodes: Map<string, LineageNode>;
  edges: GraphEdge[];
  truncated: boolean;
}

const edgeKey = (e: GraphEdge) => `${e.source}\u0000${e.kind}\u0000${e.target}\u0000${e.valid_from ?? ""}`;

/** Whether a node id is a placeholder the server put in place of a node the caller may not read. */
export function isRedacted(id: string): boolean {
  return id.startsWith("redacted:");
}

/**
 * The server numbers placeholders within one answer, so `redacted:1` of one subgraph and of
 * another may be different nodes: each part's placeholders get the part's number too
 * (`redacted:2.1`), so that merging never joins two hidden nodes into one. A hidden node that
 * two parts both reach is drawn twice, which shows less than it could but invents no edge.
 */
function separatePlaceholders(part: Subgraph, index: number): Subgraph {
  const rename = (id: string) => (isRedacted(id) ? `redacted:${index + 1}.${id.slice("redacted:".length)}` : id);
  if (!part.nodes.some((n) => isRedacted(n.id)) && !part.edges.some((e) => isRedacted(e.source) || isRedacted(e.target))) return part;
  return {
    ...part,
    nodes: part.nodes.map((n) => (isRedacted(n.id) ? { ...n, id: rename(n.id) } : n)),
    edges: part.edges.map((e) => ({ ...e, source: rename(e.source), target: rename(e.target) })),
  };
}

/** The union of several subgraphs, each node and edge once. */
export function mergeGraphs(parts: readonly Subgraph[]): Graph {
  const nodes = new Map<string, LineageNode>();
  const edges = new Map<string, GraphEdge>();
  let truncated = false;
  for (const [i, raw] of parts.entries()) {
    const part = parts.length > 1 ? separatePlaceholders(raw, i) : raw;
    for (const n of part.nodes) if (!nodes.has(n.id)) nodes.set(n.id, n);
    for (const e of part.edges) edges.set(edgeKey(e), e);
    truncated ||= part.truncated;
  }
  return { nodes, edges: [...edges.values()].filter((e) => nodes.has(e.source) && nodes.has(e.target)), truncated };
}

export function nodeKind(id: string): string {
  const colon = id.indexOf(":");
  return colon > 0 ? id.slice(0, colon) : "";
}

/** A node's kind: a placeholder's id says only "redacted", its `kind` field says what it hides. */
export function kindOf(node: Pick<LineageNode, "id" | "kind">): string {
  return isRedacted(node.id) ? (node.kind ?? "") : nodeKind(node.id);
}

/** What each kind is called on screen, and its PROV class. */
export const KINDS: Record<string, { label: string; prov: "entity" | "activity" }> = {
  dataset: { label: "Dataset", prov: "entity" },
  slice: { label: "Slice", prov: "entity" },
  run: { label: "Run", prov: "activity" },
  code: { label: "Code", prov: "entity" },
  env: { label: "Environment", prov: "entity" },
  model: { label: "Logged model", prov: "entity" },
  "model-version": { label: "Model version", prov: "entity" },
  deployment: { label: "Deployment", prov: "activity" },
  prediction: { label: "Prediction", prov: "entity" },
};

export function kindLabel(kind: string): string {
  return KINDS[kind]?.label ?? kind;
}

/** An edge's PROV meaning, read from the dependent to its dependency. */
export function edgeLabel(kind: string): string {
  switch (kind) {
    case "used":
      return "prov:used";
    case "was_generated_by":
      return "prov:wasGeneratedBy";
    case "was_derived_from":
      return "prov:wasDerivedFrom";
    case "served":
      return "prov:used (served)";
    default:
      return kind;
  }
}

export type DiffMark = "shared" | "left" | "right" | "start";

/** How diff mode colours each node: in both upstreams, in one only, or one of the two starts. */
export function diffMarks(diff: UpstreamDiff): Map<string, DiffMark> {
  const marks = new Map<string, DiffMark>();
  for (const id of diff.shared) marks.set(id, "shared");
  for (const id of diff.only_left) marks.set(id, "left");
  for (const id of diff.only_right) marks.set(id, "right");
  marks.set(diff.left, "start");
  marks.set(diff.right, "start");
  return marks;
}

function dotString(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** Graphviz DOT of the shown subgraph. */
export function toDot(graph: Graph): string {
  const lines = ["digraph lineage {", "  rankdir=RL;"];
  for (const n of graph.nodes.values()) {
    const label = n.digest ? `${n.label}\n${n.digest.slice(0, 12)}` : n.label;
    const shape = KINDS[nodeKind(n.id)]?.prov === "activity" ? "box" : "ellipse";
    lines.push(`  ${dotString(n.id)} [label=${dotString(label)}, shape=${shape}];`);
  }
  for (const e of graph.edges) lines.push(`  ${dotString(e.source)} -> ${dotString(e.target)} [label=${dotString(edgeLabel(e.kind))}];`);
  lines.push("}");
  return lines.join("\n") + "\n";
}

/** Several PROV-JSON documents as one: records keyed by id are unioned; relations, whose
 *  blank-node ids each document numbers from zero, are renumbered and kept once each. */
export function mergeProv(docs: readonly Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, Record<string, unknown>> = {};
  const seen = new Set<string>();
  let next = 0;
  for (const doc of docs) {
    for (const [section, value] of Object.entries(doc)) {
      if (!value || typeof value !== "object" || Array.isArray(value)) {
        (out as Record<string, unknown>)[section] = value;
        continue;
      }
      const target = (out[section] ??= {});
      for (const [id, record] of Object.entries(value as Record<string, unknown>)) {
        if (!id.startsWith("_:")) {
          target[id] = record;
          continue;
        }
        const key = `${section}\u0000${JSON.stringify(record)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        target[`_:e${next++}`] = record;
      }
    }
  }
  return out;
}

/** Offers `text` as a file download. */
export function download(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
