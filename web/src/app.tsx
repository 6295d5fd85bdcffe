// The shell: a header with navigation, and the view the address names.

import { useEffect } from "preact/hooks";
import { NotFound } from "./components/Status";
import { useRoute } from "./lib/router";
import type { Route } from "./state/route";
import { ExperimentsView } from "./views/experiments/ExperimentsView";
import { RunsView } from "./views/runs/RunsView";
import { RunView } from "./views/run/RunView";
import { CompareView } from "./views/compare/CompareView";
import { GovView, govTitle, GOV_NAV } from "./views/GovView";

function View({ route }: { route: Route }) {
  switch (route.name) {
    case "experiments":
      return <ExperimentsView search={route.search} showDeleted={route.showDeleted} />;
    case "runs":
      return <RunsView key={route.experimentIds.join(",")} experimentIds={route.experimentIds} state={route.state} />;
    case "run":
      return <RunView key={route.runId} experimentId={route.experimentId} runId={route.runId} />;
    case "compare":
      return <CompareView experimentIds={route.experimentIds} runIds={route.runIds} chart={route.chart} />;
    case "notFound":
      return <NotFound what="Page" />;
    default:
      return <GovView route={route} />;
  }
}

function title(route: Route): string {
  switch (route.name) {
    case "experiments":
      return "Experiments";
    case "runs":
      return `Experiment ${route.experimentIds.join(", ")}`;
    case "run":
      return `Run ${route.runId}`;
    case "compare":
      return `Compare ${route.runIds.length} runs`;
    case "notFound":
      return "Not found";
    default:
      return govTitle(route);
  }
}

export function App() {
  const route = useRoute();
  useEffect(() => {
    document.title = `${title(route)} · Cairn`;
  }, [route]);
  return (
    <>
      <header class="app-header">
        <a class="brand" href="#/experiments">
          Cairn
        </a>
        <nav aria-label="Main">
          <a href="#/experiments" aria-current={route.name === "experiments" || route.name === "runs" || route.name === "run" ? "page" : undefined}>
            Experiments
          </a>
          {GOV_NAV.map((item) => (
            <a key={item.href} href={item.href} aria-current={item.names.includes(route.name) ? "page" : undefined}>
              {item.label}
            </a>
          ))}
        </nav>
      </header>
      <main id="main">
        <View route={route} />
      </main>
    </>
  );
}
