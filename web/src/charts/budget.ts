// How many buckets each series of a chart card asks for: about one per horizontal pixel for a
// few lines, fewer as lines are added so that a card never draws more than `POINTS_PER_CARD`
// points. A hundred overlaid runs get 200 buckets each, whose min/max bands still keep spikes,
// instead of a thousand apiece that no one could tell apart on screen.

/** Buckets for a card of one to twenty lines. */
export const POINTS = 1000;
const POINTS_PER_CARD = 20_000;
const MIN_POINTS = 200;

/** Buckets asked per series when `lines` series share a card. */
export function pointsPerSeries(lines: number): number {
  return Math.max(MIN_POINTS, Math.min(POINTS, Math.floor(POINTS_PER_CARD / Math.max(1, lines))));
}
