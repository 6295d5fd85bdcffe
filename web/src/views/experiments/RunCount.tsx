// The number of active runs of one experiment. MLflow's API has no count, so this reads one
// search page of up to 1,000 runs and shows "1,000+" beyond that rather than walking a huge
// experiment page by page.

import { searchRuns } from "../../api/mlflow";
import { useAsync } from "../../lib/useAsync";

const CAP = 1000;

async function count(experimentId: string, signal: AbortSignal): Promise<number> {
  const page = await searchRuns({ experimentIds: [experimentId], maxResults: CAP }, signal);
  const total = page.runs?.length ?? 0;
  return page.next_page_token ? CAP : total;
}

export function RunCount({ experimentId }: { experimentId: string }) {
  const result = useAsync((signal) => count(experimentId, signal), [experimentId]);
  if (result.error) return <span class="muted">?</span>;
  if (result.data === undefined) return <span class="muted">…</span>;
  return <span>{result.data >= CAP ? `${CAP.toLocaleString()}+` : result.data.toLocaleString()}</span>;
}
