// The caller's session for the whole app: who is signed in (from `GET /api/cairn/v1/session`,
// asked again whenever the stored credentials change) and, per experiment, what they may do.
// Views read it through `useSession` and `useExperimentPermission` to hide the controls the
// server would refuse; the server still decides every request.

import { createContext, type ComponentChildren } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { session as fetchSession, type Permission, type Session } from "../api/cairn";
import { onCredentialsChange } from "../api/credentials";
import { batcher } from "../lib/batch";
import { useAsync, type Async } from "../lib/useAsync";

/** At most this many resources per session request (the server's limit). */
const MAX_PER_REQUEST = 100;

const experimentLevels = batcher<Permission>(async (ids) => {
  const answer = await fetchSession({ experimentIds: ids });
  return new Map(answer.experiments.map((e) => [e.experiment_id, e.permission]));
}, MAX_PER_REQUEST);

const SessionContext = createContext<Session | null>(null);

/** Loads the session, and again after each sign-in or sign-out. */
export function useSessionLoader(): Async<Session> {
  const [generation, setGeneration] = useState(0);
  useEffect(() => onCredentialsChange(() => setGeneration((g) => g + 1)), []);
  return useAsync((signal) => fetchSession({}, signal), [generation]);
}

export function SessionProvider({ session, children }: { session: Session; children: ComponentChildren }) {
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

/** The current session; outside a provider (unit renders), one without access control. */
export function useSession(): Session {
  return useContext(SessionContext) ?? { auth: "none", user: null, may_write: true, experiments: [], registered_models: [] };
}

/**
 * What the caller may do on an experiment: `undefined` while it is being asked. Without access
 * control it is MANAGE at once, with no request.
 */
export function useExperimentPermission(experimentId: string | undefined): Permission | undefined {
  const session = useSession();
  const open = session.auth === "none";
  const level = useAsync(
    () => (open || experimentId === undefined ? Promise.resolve<Permission>("MANAGE") : experimentLevels.load(experimentId)),
    [experimentId, open, session.user?.username],
  );
  if (open) return "MANAGE";
  return level.data;
}

/** The levels of several experiments, in order (`undefined` entries while asked). */
export function useExperimentPermissions(experimentIds: string[]): (Permission | undefined)[] {
  const session = useSession();
  const open = session.auth === "none";
  const levels = useAsync(
    () => (open ? Promise.resolve(experimentIds.map((): Permission => "MANAGE")) : Promise.all(experimentIds.map((id) => experimentLevels.load(id)))),
    [experimentIds.join(","), open, session.user?.username],
  );
  if (open) return experimentIds.map(() => "MANAGE");
  return levels.data ?? experimentIds.map(() => undefined);
}
