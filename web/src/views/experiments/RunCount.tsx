// The number of active runs of one experiment, from Cairn's run-count route: one grouped count
// on the server instead of a page of runs read only to be counted. Rows ask together: the
// counts of a whole list are one request per 100 experiments (the route's limit).

import { runCounts, RUN_COUNTS_MAX } from "../../api/cairn";
import { batcher } from "../../lib/batch";
import { useAsync } from "../../lib/useAsync";

const counts = batcher<number>((ids) => runCounts(ids), RUN_COUNTS_MAX);

export function RunCount({ experimentId }: { experimentId: string }) {
  const result = useAsync(() => counts.load(experimentId), [experimentId]);
  if (result.error) return <span class="muted">?</span>;
  if (result.data === undefined) return <span class="muted">…</span>;
  return <span>{result.data.toLocaleString()}</span>;
}
