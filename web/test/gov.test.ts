// The governance views' addresses, the registry replayed as of an instant, the lineage
// explorer's graph helpers and layout, attestation reading, and the governance routes the UI
// calls checked against the committed openapi.json.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { LineageNode } from "../src/api/cairn";
import { GOVERNANCE_ROUTES, type HistoryEntry, type PredictionTrace } from "../src/api/governance";
import { formatRoute, parseRoute, type Route } from "../src/state/route";
import { defaultAuditState, defaultLineageState, parseAsOf } from "../src/state/gov";
import { describe, replay } from "../src/state/registry";
import { diffMarks, isRedacted, kindOf, mergeGraphs, mergeProv, toDot } from "../src/lineage/graph";
import { assignRanks, crossings, layout, orderRanks, type LayoutEdge } from "../src/lineage/layout";
import { compare, pae, publicKeyBytes, readEnvelope } from "../src/state/attest";
import { chainOrder } from "../src/views/trace/TraceView";
import { instants } from "../src/views/health/HealthView";
import { mayAudit, prettyPayload } from "../src/views/audit/AuditView";

const AS_OF = "2026-11-23T10:00:00.000Z";

test("every governance view round-trips through the address, as-of included", () => {
  const routes: Route[] = [
    { name: "models", search: "churn & co", asOf: AS_OF },
    { name: "model", model: "a/b c", asOf: null },
    { name: "modelVersion", model: "churn", version: "3", asOf: AS_OF },
    { name: "lineage", asOf: AS_OF, state: { node: "dataset:s3://b/x@v1", up: 5, down: 0, diff: "model-version:m/1", expanded: ["run:a,b", "slice:%z"], selected: "run:r1" } },
    { name: "lineage", asOf: null, state: defaultLineageState() },
    { name: "trace", predictionId: "p-1/2", asOf: AS_OF },
    { name: "deployments", asOf: null },
    { name: "health", asOf: AS_OF },
    { name: "audit", state: { ...defaultAuditState(), actor: "alice", action: "set_alias", entityType: "run", entityId: "x y", since: "2026-01-01", until: "5", before: 1000, open: 999 } },
    { name: "audit", state: defaultAuditState() },
  ];
  for (const route of routes) assert.deepEqual(parseRoute(formatRoute(route)), route, formatRoute(route));
  // MLflow's registry links.
  assert.deepEqual(parseRoute("#/models/churn/versions/2"), { name: "modelVersion", model: "churn", version: "2", asOf: null });
  assert.equal(parseRoute("#/models/churn/versions").name, "notFound");
});

test("bad values in the address fall back instead of breaking the view", () => {
  const r = parseRoute("#/lineage?node=run:a&up=99&down=-1&asOf=yesterday");
  assert.deepEqual(r, { name: "lineage", asOf: null, state: { ...defaultLineageState("run:a") } });
  assert.equal(parseAsOf("1763892000000"), "2025-11-23T10:00:00.000Z");
  const audit = parseRoute("#/audit?before=abc&open=-3");
  assert.deepEqual(audit, { name: "audit", state: defaultAuditState() });
});

const entry = (e: Partial<HistoryEntry>): HistoryEntry => ({
  seq: 0, time: 0, actor: "a", kind: "model_created", name: "m", version: null, alias: null, previous_version: null, from_stage: null, to_stage: null, previous_name: null, ...e,
});

test("the registry is replayed from its history as it stood", () => {
  const history = [
    entry({ kind: "model_created" }),
    entry({ kind: "version_created", version: 1, time: 10 }),
    entry({ kind: "alias_set", alias: "champion", version: 1 }),
    entry({ kind: "version_created", version: 2, time: 20 }),
    entry({ kind: "stage_transition", version: 2, from_stage: "None", to_stage: "Production" }),
    entry({ kind: "alias_set", alias: "champion", version: 2, previous_version: 1 }),
    entry({ kind: "version_deleted", version: 1 }),
    entry({ kind: "model_renamed", name: "m2", previous_name: "m" }),
  ];
  const then = replay(history.slice(0, 3));
  assert.deepEqual([...then.aliases], [["champion", 1]]);
  assert.deepEqual([...then.versions.keys()], [1]);
  const now = replay(history);
  assert.equal(now.name, "m2");
  assert.deepEqual([...now.aliases], [["champion", 2]]);
  assert.deepEqual([...now.versions.values()].map((v) => [v.version, v.stage]), [[2, "Production"]]);
  assert.equal(describe(history[5]!), "alias @champion: v1 → v2");
  assert.equal(describe(history[4]!), "stage of v2: None → Production");
  assert.equal(replay([...history, entry({ kind: "model_deleted" })]).exists, false);
});

/** A layered DAG like the benchmark's: `layers` ranks, edges from one rank to the one left of it. */
function dag(nodes: number, edges: number, layers: number): { ids: string[]; edges: LayoutEdge[] } {
  let seed = 7;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const ids = Array.from({ length: nodes }, (_, i) => `n${i}`);
  const out: LayoutEdge[] = [];
  const seen = new Set<string>();
  while (out.length < edges) {
    const a = Math.floor(rnd() * nodes);
    const b = Math.floor(rnd() * nodes);
    if (a % layers !== (b % layers) + 1 || seen.has(`${a}-${b}`)) continue;
    seen.add(`${a}-${b}`);
    out.push({ source: `n${a}`, target: `n${b}`, kind: "used" });
  }
  return { ids, edges: out };
}

test("a dependent is always right of what it depends on, and edges stay short", () => {
  const edges: LayoutEdge[] = [
    { source: "run:r", target: "slice:s", kind: "used" },
    { source: "slice:s", target: "dataset:d", kind: "was_derived_from" },
    { source: "run:r", target: "code:c", kind: "used" },
    { source: "model-version:m/1", target: "run:r", kind: "was_derived_from" },
  ];
  const rank = assignRanks(["model-version:m/1", "run:r", "slice:s", "dataset:d", "code:c"], edges);
  for (const e of edges) assert.ok(rank.get(e.source)! > rank.get(e.target)!, `${e.source} right of ${e.target}`);
  // The code version is pulled next to the run that used it, not left at rank 0.
  assert.equal(rank.get("code:c"), rank.get("run:r")! - 1);
  // A cycle (which the server refuses) does not hang or throw.
  assert.ok(assignRanks(["a", "b"], [{ source: "a", target: "b", kind: "used" }, { source: "b", target: "a", kind: "used" }]).size === 2);
});

test("500 nodes and 1,000 edges lay out in well under a second, with fewer crossings than unordered", () => {
  const g = dag(500, 1000, 10);
  const started = performance.now();
  const l = layout(g.ids, g.edges);
  const ms = performance.now() - started;
  assert.equal(l.nodes.size, 500);
  assert.equal(l.edges.length, 1000);
  assert.ok(ms < 300, `layout took ${ms.toFixed(0)} ms`);
  const unordered = layout(g.ids, g.edges, { sweeps: 0 });
  assert.ok(crossings(l) < crossings(unordered) * 0.8, `crossings ${crossings(l)} vs ${crossings(unordered)} unordered`);
  // Same input, same picture.
  assert.deepEqual([...layout(g.ids, g.edges).nodes.values()], [...l.nodes.values()]);
  const ranks = orderRanks(g.ids, g.edges, assignRanks(g.ids, g.edges), 2);
  assert.equal(ranks.flat().length, 500);
});

test("merged subgraphs keep each node and edge once; diff marks and exports", () => {
  const node = (id: string, digest: string | null = null) => ({ id, label: id, digest, attributes: {}, recorded_at: 0 });
  const a = { nodes: [node("run:r"), node("dataset:d", "aa")], edges: [{ source: "run:r", kind: "used", target: "dataset:d" }], truncated: false };
  const b = { nodes: [node("dataset:d", "aa"), node("run:q")], edges: [{ source: "run:r", kind: "used", target: "dataset:d" }, { source: "run:q", kind: "used", target: "dataset:d" }], truncated: true };
  const g = mergeGraphs([a, b]);
  assert.equal(g.nodes.size, 3);
  assert.equal(g.edges.length, 2);
  assert.equal(g.truncated, true);
  const dot = toDot(mergeGraphs([{ nodes: [node('dataset:a"b\\c')], edges: [], truncated: false }]));
  assert.ok(dot.includes('"dataset:a\\"b\\\\c"'), dot);
  const marks = diffMarks({ left: "x", right: "y", shared: ["s"], only_left: ["l"], only_right: ["r"], same_data: false, same_code: true, same_environment: true, truncated: false });
  assert.deepEqual([...marks], [["s", "shared"], ["l", "left"], ["r", "right"], ["x", "start"], ["y", "start"]]);
  const prov = mergeProv([
    { prefix: { cairn: "x" }, entity: { "cairn:a": { v: 1 } }, used: { "_:e0": { a: 1 } } },
    { entity: { "cairn:b": { v: 2 } }, used: { "_:e0": { a: 2 }, "_:e1": { a: 1 } } },
  ]);
  assert.deepEqual(prov, { prefix: { cairn: "x" }, entity: { "cairn:a": { v: 1 }, "cairn:b": { v: 2 } }, used: { "_:e0": { a: 1 }, "_:e1": { a: 2 } } });
});

test("placeholders of different answers stay different nodes when graphs are merged", () => {
  const hidden = (id: string, kind: string) => ({ id, kind, redacted: true }) as unknown as LineageNode;
  const plain = (id: string) => ({ id, label: id, digest: null, attributes: {}, recorded_at: 0 });
  // Upstream and downstream of a dataset: each answer numbers its own placeholders from 1.
  const up = { nodes: [plain("dataset:d"), hidden("redacted:1", "run")], edges: [{ source: "dataset:d", kind: "was_generated_by", target: "redacted:1" }], truncated: false };
  const down = { nodes: [plain("dataset:d"), hidden("redacted:1", "model-version")], edges: [{ source: "redacted:1", kind: "was_derived_from", target: "dataset:d" }], truncated: false };
  const g = mergeGraphs([up, down]);
  const ids = [...g.nodes.keys()].sort();
  assert.deepEqual(ids, ["dataset:d", "redacted:1.1", "redacted:2.1"]);
  assert.deepEqual(ids.filter(isRedacted).map((id) => kindOf(g.nodes.get(id)!)), ["run", "model-version"]);
  assert.deepEqual(g.edges.map((e) => [e.source, e.target]), [["dataset:d", "redacted:1.1"], ["redacted:2.1", "dataset:d"]]);
  // One answer alone keeps the server's ids, so they match its other fields (a diff's lists).
  assert.deepEqual([...mergeGraphs([up]).nodes.keys()], ["dataset:d", "redacted:1"]);
  assert.equal(kindOf(plain("model-version:m/1")), "model-version");
});

test("the audit log is offered to admins, and to everyone without access control", () => {
  assert.equal(mayAudit({ auth: "none", user: null }), true);
  assert.equal(mayAudit({ auth: "basic", user: { is_admin: true } }), true);
  assert.equal(mayAudit({ auth: "basic", user: { is_admin: false } }), false);
  assert.equal(mayAudit({ auth: "basic", user: null }), false);
});

test("an attestation is read, its signed bytes rebuilt, and its digests compared", () => {
  const statement = {
    subject: [{ name: "models:/m/1", digest: { sha256: "ff" } }],
    predicateType: "https://cairn.dev/attestation/lineage/v1",
    predicate: { model_version: "model-version:m/1", issued_at: 1, lineage_complete: true, missing: [], nodes: [{ id: "model-version:m/1", label: "m", digest: "ff" }, { id: "dataset:d", label: "d", digest: "aa" }, { id: "run:r", label: "r", digest: null }] },
  };
  const payload = Buffer.from(JSON.stringify(statement)).toString("base64");
  const text = JSON.stringify({ payloadType: "application/vnd.in-toto+json", payload, signatures: [{ keyid: "k", sig: "AAAA" }] });
  const read = readEnvelope(text);
  assert.equal(read.statement.predicate.model_version, "model-version:m/1");
  assert.equal(new TextDecoder().decode(pae("ab", new Uint8Array([120]))), "DSSEv1 2 ab 1 x");
  assert.throws(() => readEnvelope("{}"), /DSSE/);
  assert.throws(() => readEnvelope("nope"), /not JSON/);
  assert.equal(publicKeyBytes(`cairn-ed25519-public:${"0f".repeat(32)}`)[0], 15);
  assert.throws(() => publicKeyBytes("cairn-ed25519-public:00"), /public key/);
  const same = compare(read.statement, "model-version:m/1", "ff", new Map([["dataset:d", "aa"], ["run:r", null]]));
  assert.deepEqual(same, { sameVersion: true, sameFiles: true, changed: [] });
  const moved = compare(read.statement, "model-version:m/1", "ee", new Map([["dataset:d", "bb"]]));
  assert.equal(moved.sameFiles, false);
  assert.deepEqual(moved.changed.map((c) => c.id), ["dataset:d", "run:r"]);
});

test("a trace reads from the prediction back to the data; health instants; payloads", () => {
  const n = (id: string) => ({ id, label: id, digest: null, attributes: {}, recorded_at: 0 });
  const trace: PredictionTrace = {
    prediction: { prediction_id: "p", deployment: "api", model_version: "model-version:m/1", input_digest: "i", output_digest: null, time: 0, recorded_at: 0, lineage_complete: true },
    completeness: { complete: true, missing: [] },
    lineage: {
      nodes: ["dataset:raw", "env:e", "run:r", "prediction:p", "slice:s", "deployment:api", "model-version:m/1", "dataset:clean"].map(n),
      edges: [
        { source: "prediction:p", kind: "used", target: "deployment:api" },
        { source: "deployment:api", kind: "served", target: "model-version:m/1" },
        { source: "model-version:m/1", kind: "was_derived_from", target: "run:r" },
        { source: "run:r", kind: "used", target: "slice:s" },
        { source: "slice:s", kind: "was_derived_from", target: "dataset:clean" },
        { source: "dataset:clean", kind: "was_derived_from", target: "dataset:raw" },
        { source: "run:r", kind: "used", target: "env:e" },
      ],
      truncated: false,
    },
  };
  assert.deepEqual(chainOrder(trace).map((s) => s.node.id), ["prediction:p", "deployment:api", "model-version:m/1", "run:r", "slice:s", "dataset:clean", "dataset:raw", "env:e"]);
  assert.deepEqual(instants(0, 100, 4), [25, 50, 75, 100]);
  assert.deepEqual(instants(100, 100, 4), [100]);
  assert.equal(prettyPayload('{"a":1}'), '{\n  "a": 1\n}');
  assert.equal(prettyPayload("<b>"), "<b>");
});

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
}
const spec = JSON.parse(readFileSync(new URL("../../crates/cairn-server/openapi.json", import.meta.url), "utf8"));
const resolve = (p: Parameter | { $ref: string }): Parameter => ("$ref" in p ? spec.components.parameters[p.$ref.replace("#/components/parameters/", "")] : p);

for (const [name, route] of Object.entries(GOVERNANCE_ROUTES)) {
  test(`governance route ${name} matches openapi.json`, () => {
    const item = spec.paths[route.path];
    assert.ok(item, `${route.path} is not in openapi.json`);
    const op = item[route.method];
    assert.ok(op, `${route.method.toUpperCase()} ${route.path} is not in openapi.json`);
    const params: Parameter[] = [...(item.parameters ?? []), ...(op.parameters ?? [])].map(resolve);
    const declared = new Set(params.filter((p) => p.in === "query").map((p) => p.name));
    for (const q of route.query) assert.ok(declared.has(q), `${route.path} does not declare query parameter ${q}`);
    for (const p of params.filter((p) => p.required)) {
      if (p.in === "path") assert.ok(route.path.includes(`{${p.name}}`), `path parameter ${p.name}`);
      else assert.ok((route.query as readonly string[]).includes(p.name), `required ${p.in} parameter ${p.name} is never sent`);
    }
  });
}
