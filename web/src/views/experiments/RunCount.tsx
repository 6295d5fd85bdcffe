// The number of active runs of one experiment, from Cairn's run-count route: one grouped count
// on the server instead of a page of runs read only to be counted.

import { runCounts } from "../../api/cairn";
import { useAsync } from "../../lib/useAsync";

async function count(experimentId: string, signal: AbortSignal): Promise<number> {
  const counts = await runCounts([experimentId], signal);
  return counts.get(experimentId) ?? 0;
}

export function RunCount({ experimentId }: { experimentId: string }) {
  const result = useAsync((signal) => count(experimentId, signal), [experimentId]);
  if (result.error) return <span class="muted">?</span>;
  if (result.data === undefined) return <span class="muted">…</span>;
  return <span>{result.data.toLocaleString()}</span>;
}
