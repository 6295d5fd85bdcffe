// Addresses <-> view state: every state survives a round trip through the address, and the
// links the mlflow client prints open the right view.

import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultRunsState, formatRoute, parseRoute, type Route, type RunsState } from "../src/state/route";

test("MLflow's printed links open the experiment and the run", () => {
  assert.deepEqual(parseRoute("#/experiments/1"), { name: "runs", experimentIds: ["1"], state: defaultRunsState() });
  assert.deepEqual(parseRoute("#/experiments/1/runs/abc123"), { name: "run", experimentId: "1", runId: "abc123" });
  assert.equal(parseRoute("").name, "experiments");
  assert.equal(parseRoute("#/").name, "experiments");
  assert.equal(parseRoute("#/models").name, "models");
});

test("unknown addresses are not found, not a crash", () => {
  assert.deepEqual(parseRoute("#/nope/1/2"), { name: "notFound", path: "/nope/1/2" });
  assert.equal(parseRoute("#/experiments/1/runs").name, "notFound");
  // A malformed escape in a hand-edited address is kept as typed.
  assert.deepEqual(parseRoute("#/experiments/%E0%A4%A"), { name: "runs", experimentIds: ["%E0%A4%A"], state: defaultRunsState() });
});

test("runs state round-trips through the address", () => {
  const state: RunsState = {
    filter: "metrics.loss < 0.5 and params.`a,b` = 'x&y'",
    sort: { column: "metrics.val loss", ascending: false },
    columns: ["params.lr", "metrics.val,loss", "tags.team%"],
    selected: ["r1", "r2"],
    showDeleted: true,
    groupBy: "params.optimizer",
    view: "charts",
    chart: { x: "relative", logY: true, smoothing: 0.6 },
  };
  const route: Route = { name: "runs", experimentIds: ["7"], state };
  const hash = formatRoute(route);
  assert.ok(hash.startsWith("#/experiments/7?"), hash);
  assert.deepEqual(parseRoute(hash), route);
});

test("several experiments and the compare view round-trip", () => {
  const runs: Route = { name: "runs", experimentIds: ["1", "2"], state: { ...defaultRunsState(), filter: "params.lr = '0.1'" } };
  assert.deepEqual(parseRoute(formatRoute(runs)), runs);
  const compare: Route = { name: "compare", experimentIds: ["1"], runIds: ["a", "b", "c"], chart: { x: "step", logY: false, smoothing: 0 } };
  assert.deepEqual(parseRoute(formatRoute(compare)), compare);
});

test("the default state writes a bare address", () => {
  assert.equal(formatRoute({ name: "runs", experimentIds: ["3"], state: defaultRunsState() }), "#/experiments/3");
  assert.equal(formatRoute({ name: "experiments", search: "", showDeleted: false }), "#/experiments");
});

test("out-of-range chart settings fall back to defaults", () => {
  const r = parseRoute("#/experiments/1?smooth=5&x=banana&log=yes");
  assert.equal(r.name, "runs");
  if (r.name === "runs") assert.deepEqual(r.state.chart, { x: "step", logY: false, smoothing: 0 });
});
