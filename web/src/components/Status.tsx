// What a view shows while it loads, when it fails and when what it shows does not exist.

import { ApiError } from "../api/client";

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** A failure: what failed, the server's message, and a retry. A refusal (403) says so plainly:
 * retrying would not help, so it offers none. `action` words the headline for a change. */
export function ErrorBox({ what, error, retry, action }: { what: string; error: unknown; retry?: () => void; action?: boolean }) {
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? error.code : undefined;
  if (error instanceof ApiError && error.denied) {
    return (
      <div class="error-box denied" role="alert">
        <strong>Permission denied{action ? "" : `: you may not see ${what}`}.</strong>
        <p>
          {code && <code>{code}</code>} {message}
        </p>
        <p class="muted">Ask an admin, or whoever manages it, for a grant.</p>
      </div>
    );
  }
  return (
    <div class="error-box" role="alert">
      <strong>{action ? `Could not make ${what}.` : `Could not load ${what}.`}</strong>
      <p>
        {code && <code>{code}</code>} {message}
      </p>
      {retry && (
        <button type="button" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function NotFound({ what, id }: { what: string; id?: string }) {
  return (
    <section class="not-found" aria-labelledby="not-found-title">
      <h1 id="not-found-title">{what} not found</h1>
      <p>{id ? <>There is no {what.toLowerCase()} with id <code>{id}</code>.</> : <>Nothing lives at this address.</>}</p>
      <p>
        <a href="#/experiments">Back to the experiments</a>
      </p>
    </section>
  );
}

/** Loading, failure or not-found for one request; `children` renders once the data is there. */
export function Guard<T>({ what, id, state, children }: { what: string; id?: string; state: { data: T | undefined; error: unknown; loading: boolean; retry: () => void }; children: (data: T) => preact.ComponentChildren }) {
  if (state.error instanceof ApiError && state.error.notFound) return <NotFound what={what} id={id} />;
  if (state.error instanceof ApiError && state.error.denied) return <ErrorBox what={`this ${what.toLowerCase()}`} error={state.error} />;
  if (state.error) return <ErrorBox what={what.toLowerCase()} error={state.error} retry={state.retry} />;
  if (state.data === undefined) return <Loading what={what.toLowerCase()} />;
  return <>{children(state.data)}</>;
}
