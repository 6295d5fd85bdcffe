// The runs table's rows: children nested under a loaded parent, and grouping by a param or tag
// with min / mean / max of each metric column.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { Run } from "../src/api/types";
import { columnsFor } from "../src/state/columns";
import { aggregate, groupedRows, nestedRows, PARENT_TAG, type Row } from "../src/state/rows";

function run(id: string, opts: { parent?: string; params?: Record<string, string>; loss?: number; tags?: Record<string, string> } = {}): Run {
  const tags = Object.entries(opts.tags ?? {}).map(([key, value]) => ({ key, value }));
  if (opts.parent) tags.push({ key: PARENT_TAG, value: opts.parent });
  return {
    info: { run_id: id, run_name: id, experiment_id: "1", status: "FINISHED", lifecycle_stage: "active" },
    data: {
      params: Object.entries(opts.params ?? {}).map(([key, value]) => ({ key, value })),
      metrics: opts.loss === undefined ? [] : [{ key: "loss", value: opts.loss, step: 0, timestamp: 0 }],
      tags,
    },
  } as unknown as Run;
}

const ids = (rows: Row[]) => rows.map((r) => (r.type === "run" ? `${"  ".repeat(r.depth)}${r.run.info.run_id}` : `[${r.value}]`));

test("children fold under a loaded parent and unfold when expanded", () => {
  const runs = [run("p"), run("c1", { parent: "p" }), run("x"), run("c2", { parent: "p" }), run("g", { parent: "c1" })];
  assert.deepEqual(ids(nestedRows(runs, new Set())), ["p", "x"]);
  const folded = nestedRows(runs, new Set())[0]!;
  assert.ok(folded.type === "run" && folded.childCount === 2 && !folded.expanded);
  assert.deepEqual(ids(nestedRows(runs, new Set(["p"]))), ["p", "  c1", "  c2", "x"]);
  assert.deepEqual(ids(nestedRows(runs, new Set(["p", "c1"]))), ["p", "  c1", "    g", "  c2", "x"]);
});

test("a child whose parent is not loaded (another page, or deleted) is a root", () => {
  assert.deepEqual(ids(nestedRows([run("c", { parent: "elsewhere" }), run("d")], new Set())), ["c", "d"]);
});

test("a cycle of parent tags terminates and shows each run at most once", () => {
  const runs = [run("a", { parent: "b" }), run("b", { parent: "a" }), run("s", { parent: "s" })];
  const rows = nestedRows(runs, new Set(["a", "b"]));
  // a and b are each other's children, so neither is a root: they are shown as roots after the
  // others rather than vanishing. The self-parented run is a root.
  assert.deepEqual(ids(rows), ["s", "a", "  b"]);
});

test("aggregate ignores missing and non-finite values", () => {
  assert.deepEqual(aggregate([1, NaN, 3, 5]), { min: 1, mean: 3, max: 5, count: 3 });
  assert.equal(aggregate([NaN]), null);
  assert.equal(aggregate([]), null);
});

test("grouping by a param: groups in order of first appearance, with metric min / mean / max", () => {
  const runs = [
    run("a", { params: { opt: "adam" }, loss: 1 }),
    run("b", { params: { opt: "sgd" }, loss: 4 }),
    run("c", { params: { opt: "adam" }, loss: 3 }),
    run("d", { loss: 7 }),
  ];
  const columns = columnsFor(["metrics.loss"]);
  const rows = groupedRows(runs, "params.opt", columns, new Set());
  assert.deepEqual(ids(rows), ["[adam]", "  a", "  c", "[sgd]", "  b", "[(none)]", "  d"]);
  const adam = rows[0]!;
  assert.ok(adam.type === "group");
  assert.equal(adam.count, 2);
  assert.deepEqual(adam.aggregates["metrics.loss"], { min: 1, mean: 2, max: 3, count: 2 });
  // A collapsed group keeps its header and hides its runs.
  assert.deepEqual(ids(groupedRows(runs, "params.opt", columns, new Set(["adam"]))), ["[adam]", "[sgd]", "  b", "[(none)]", "  d"]);
});

test("grouping by a tag works the same; grouping by a metric falls back to plain rows", () => {
  const runs = [run("a", { tags: { team: "x" } }), run("b", { tags: { team: "y" } })];
  assert.deepEqual(ids(groupedRows(runs, "tags.team", columnsFor([]), new Set())), ["[x]", "  a", "[y]", "  b"]);
  assert.deepEqual(ids(groupedRows(runs, "metrics.loss", columnsFor([]), new Set())), ["a", "b"]);
});
