// Exponential moving average with bias correction (as TensorBoard and MLflow smooth): early
// points are not dragged towards zero, and a non-finite value is passed through without
// touching the running average, so a NaN does not poison the rest of the line.

export function ema(values: readonly number[], weight: number): number[] {
  if (!(weight > 0)) return values.slice();
  const w = Math.min(weight, 0.999);
  const out = new Array<number>(values.length);
  let last = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    count++;
    out[i] = last / (1 - Math.pow(w, count));
  }
  return out;
}
