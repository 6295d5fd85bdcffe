// A tiny SVG line of a metric's history, drawn from already downsampled values.

export function Sparkline({ values: all, label }: { values: number[]; label: string }) {
  // Two points per pixel is all an 80 px line can show; keep evenly spaced ones.
  const stride = Math.max(1, Math.floor(all.length / 160));
  const values = stride === 1 ? all : all.filter((_, i) => i % stride === 0);
  const finite = values.filter(Number.isFinite);
  if (finite.length < 2) return null;
  const min = Math.min(...finite);
  const max = Math.max(...finite);
  const w = 80;
  const h = 20;
  const span = max - min || 1;
  const points = values
    .map((v, i) => (Number.isFinite(v) ? `${((i / (values.length - 1)) * w).toFixed(1)},${(h - ((v - min) / span) * h).toFixed(1)}` : null))
    .filter((p) => p !== null)
    .join(" ");
  return (
    <svg class="sparkline" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={label}>
      <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.2" />
    </svg>
  );
}
