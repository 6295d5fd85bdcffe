// The runs of a search, loaded a page at a time: the first page at once, each next one when the
// table asks (as the user scrolls near the end). A new query starts over and drops answers to
// the old one.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { searchRuns, type RunSearch } from "../../api/mlflow";
import type { Run } from "../../api/types";

/** Small first page so the first rows show quickly, larger ones after. */
const FIRST_PAGE = 100;
const NEXT_PAGE = 500;

export interface PagedRuns {
  runs: Run[];
  done: boolean;
  loading: boolean;
  error: unknown;
  loadMore: () => void;
  reload: () => void;
}

export function usePagedRuns(query: Omit<RunSearch, "pageToken" | "maxResults">): PagedRuns {
  const key = JSON.stringify(query);
  const [state, setState] = useState<{ runs: Run[]; token: string | undefined; done: boolean; loading: boolean; error: unknown }>({ runs: [], token: undefined, done: false, loading: true, error: undefined });
  const generation = useRef(0);
  const inFlight = useRef(false);
  const [attempt, setAttempt] = useState(0);

  const fetchPage = useCallback(
    (token: string | undefined, first: boolean) => {
      const gen = generation.current;
      inFlight.current = true;
      setState((s) => ({ ...s, loading: true, error: undefined }));
      searchRuns({ ...(JSON.parse(key) as RunSearch), pageToken: token, maxResults: first ? FIRST_PAGE : NEXT_PAGE }).then(
        (page) => {
          if (gen !== generation.current) return;
          inFlight.current = false;
          setState((s) => ({ runs: first ? page.runs ?? [] : [...s.runs, ...(page.runs ?? [])], token: page.next_page_token, done: !page.next_page_token, loading: false, error: undefined }));
        },
        (error) => {
          if (gen !== generation.current) return;
          inFlight.current = false;
          setState((s) => ({ ...s, loading: false, error }));
        },
      );
    },
    [key],
  );

  useEffect(() => {
    generation.current++;
    setState({ runs: [], token: undefined, done: false, loading: true, error: undefined });
    fetchPage(undefined, true);
  }, [key, attempt, fetchPage]);

  const loadMore = useCallback(() => {
    if (inFlight.current || state.done || state.error) return;
    fetchPage(state.token, false);
  }, [state.done, state.error, state.token, fetchPage]);

  const reload = useCallback(() => setAttempt((n) => n + 1), []);
  return { runs: state.runs, done: state.done, loading: state.loading, error: state.error, loadMore, reload };
}
