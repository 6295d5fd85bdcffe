// Readiness marks: each view sets `cairn:<view>:ready` with performance.mark once its data is on
// screen, so tests and the benchmark measure what a user sees rather than network idleness.

export function markReady(view: string, detail?: Record<string, unknown>): void {
  performance.mark(`cairn:${view}:ready`, { detail });
}
