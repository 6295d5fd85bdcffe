// The chart data pipeline: EMA smoothing, wire series to lines, and alignment of several runs'
// lines on one x array (what uPlot wants).

import { test } from "node:test";
import assert from "node:assert/strict";
import { ema } from "../src/charts/ema";
import { align, toLine, xValues } from "../src/charts/merge";
import { pointsPerSeries } from "../src/charts/budget";
import type { SampledSeries } from "../src/api/cairn";

const close = (a: number[], b: number[]) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-12, `${i}: ${v} vs ${b[i]}`));

test("EMA is bias-corrected: a constant stays constant from the first point", () => {
  close(ema([5, 5, 5, 5], 0.9), [5, 5, 5, 5]);
});

test("EMA follows the textbook recurrence divided by 1 - w^n", () => {
  const w = 0.5;
  // Running average 0.5*1 = 0.5 -> /0.5 = 1; then 0.25 + 0.5*3 = 1.75 -> /0.75; then 0.875 + 0.5*5 = 3.375 -> /0.875.
  close(ema([1, 3, 5], w), [1, 1.75 / 0.75, 3.375 / 0.875]);
});

test("EMA with weight 0 returns a copy, and non-finite points pass through untouched", () => {
  const input = [1, 2, 3];
  const out = ema(input, 0);
  assert.deepEqual(out, input);
  assert.notEqual(out, input);
  const smoothed = ema([2, NaN, 2, Infinity, 2], 0.9);
  assert.ok(Number.isNaN(smoothed[1]));
  assert.equal(smoothed[3], Infinity);
  close([smoothed[0]!, smoothed[2]!, smoothed[4]!], [2, 2, 2]);
});

const series = (run_id: string, step: number[], timestamp: number[], value: (number | string)[]): SampledSeries => ({
  run_id,
  key: "loss",
  total: step.length,
  sampled: false,
  step,
  timestamp,
  value,
  min: value,
  max: value,
});

test("x axes: step, wall time in seconds, and time relative to the run's first point", () => {
  const s = series("a", [0, 1, 2], [5000, 7000, 6000], [1, 2, 3]);
  assert.deepEqual(xValues(s, "step"), [0, 1, 2]);
  assert.deepEqual(xValues(s, "time"), [5, 7, 6]);
  assert.deepEqual(xValues(s, "relative"), [0, 2, 1]);
  // On a time axis the points are put in time order, carrying their values along.
  const line = toLine(s, "relative");
  assert.deepEqual(line.x, [0, 1, 2]);
  assert.deepEqual(line.y, [1, 3, 2]);
});

test("wire numbers become numbers: NaN and the infinities arrive as strings", () => {
  const line = toLine(series("a", [0, 1, 2], [0, 0, 0], [1, "NaN", "-Infinity"]), "step");
  assert.equal(line.y[0], 1);
  assert.ok(Number.isNaN(line.y[1]));
  assert.equal(line.y[2], -Infinity);
});

test("align puts runs on the sorted union of x with gaps (null) where a run has no point", () => {
  const a = toLine(series("a", [0, 2, 4], [0, 0, 0], [1, 2, 3]), "step");
  const b = toLine(series("b", [1, 2, 5], [0, 0, 0], [10, "NaN", 30]), "step");
  const out = align([a, b]);
  assert.deepEqual(out.x, [0, 1, 2, 4, 5]);
  assert.deepEqual(out.lines[0]!.y, [1, null, 2, 3, null]);
  // A non-finite value is a gap, not a point uPlot would draw at NaN.
  assert.deepEqual(out.lines[1]!.y, [null, 10, null, null, 30]);
  assert.deepEqual(out.lines[1]!.min, out.lines[1]!.y);
});

test("align of nothing is empty", () => {
  assert.deepEqual(align([]), { x: [], lines: [] });
});

test("a card asks fewer buckets per series as lines are added, never under 200", () => {
  assert.equal(pointsPerSeries(1), 1000);
  assert.equal(pointsPerSeries(20), 1000);
  assert.equal(pointsPerSeries(40), 500);
  assert.equal(pointsPerSeries(100), 200);
  assert.equal(pointsPerSeries(1000), 200);
  assert.equal(pointsPerSeries(0), 1000);
});
