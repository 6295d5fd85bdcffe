// The current route, read from `location.hash`; navigation pushes a history entry (or replaces
// the current one), so back and forward walk through view states.

import { useEffect, useState } from "preact/hooks";
import { formatRoute, parseRoute, type Route } from "../state/route";

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", update);
    window.addEventListener("popstate", update);
    return () => {
      window.removeEventListener("hashchange", update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return route;
}

export function navigate(route: Route, opts: { replace?: boolean } = {}): void {
  const hash = formatRoute(route);
  if (hash === location.hash) return;
  if (opts.replace) {
    history.replaceState(null, "", hash);
  } else {
    history.pushState(null, "", hash);
  }
  // pushState does not fire hashchange; tell the app ourselves.
  window.dispatchEvent(new PopStateEvent("popstate"));
}
