// A link to an experiment's runs table that names it: breadcrumbs show where a run lives by
// its experiment's name, not its number (the id stands in while the name loads or if it fails).

import * as mlflow from "../api/mlflow";
import { useAsync } from "../lib/useAsync";
import { experimentHref } from "../state/route";

export function ExperimentLink({ id }: { id: string }) {
  const experiment = useAsync((signal) => mlflow.getExperiment(id, signal), [id]);
  return <a href={experimentHref(id)}>{experiment.data?.name ?? `experiment ${id}`}</a>;
}
