// The shell: a header with navigation and the signed-in user, and the view the address names;
// on a server with access control and nobody signed in, the sign-in page instead.

import { useEffect } from "preact/hooks";
import { endedByServer } from "./api/credentials";
import { ErrorBox, Loading, NotFound } from "./components/Status";
import { useRoute } from "./lib/router";
import type { Route } from "./state/route";
import { ExperimentsView } from "./views/experiments/ExperimentsView";
import { RunsView } from "./views/runs/RunsView";
import { RunView } from "./views/run/RunView";
import { CompareView } from "./views/compare/CompareView";
import { LoginView } from "./views/login/LoginView";
import { Account } from "./session/Account";
import { SessionProvider, useSessionLoader } from "./session/session";
import { GovView, govTitle, GOV_NAV } from "./views/GovView";
import { mayAudit } from "./views/audit/AuditView";

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
  const session = useSessionLoader();
  const signingIn = session.data?.auth === "basic" && !session.data.user;
  useEffect(() => {
    document.title = `${signingIn ? "Sign in" : title(route)} · Cairn`;
  }, [route, signingIn]);
  if (!session.data) {
    return <main id="main">{session.error ? <ErrorBox what="the server's sign-in settings" error={session.error} retry={session.retry} /> : <Loading what="Cairn" />}</main>;
  }
  if (signingIn) {
    return (
      <main id="main">
        <LoginView ended={endedByServer()} />
      </main>
    );
  }
  return (
    <SessionProvider session={session.data}>
      <header class="app-header">
        <a class="brand" href="#/experiments">
          Cairn
        </a>
        <nav aria-label="Main">
          <a href="#/experiments" aria-current={route.name === "experiments" || route.name === "runs" || route.name === "run" ? "page" : undefined}>
            Experiments
          </a>
          {GOV_NAV.filter((item) => !item.admin || mayAudit(session.data!)).map((item) => (
            <a key={item.href} href={item.href} aria-current={item.names.includes(route.name) ? "page" : undefined}>
              {item.label}
            </a>
          ))}
        </nav>
        <Account />
      </header>
      <main id="main">
        <View route={route} />
      </main>
    </SessionProvider>
  );
}
