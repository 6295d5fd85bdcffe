// MLflow's permission levels and what each allows, as the server decides them: a level allows
// every need at or below its rank; DENY and NO_PERMISSIONS allow nothing. Writes need EDIT,
// deletes and restores MANAGE (see the server's access-rule table).

import type { Permission } from "../api/cairn";

const RANK: Record<Permission, number> = { DENY: -1, NO_PERMISSIONS: 0, READ: 1, USE: 2, EDIT: 3, MANAGE: 4 };

/** Whether `granted` includes `needed`. */
export function allows(granted: Permission | undefined, needed: Permission): boolean {
  if (!granted || granted === "DENY") return false;
  return RANK[needed] > 0 && RANK[granted] >= RANK[needed];
}

/** May change the resource (rename, tags). */
export const canEdit = (p: Permission | undefined) => allows(p, "EDIT");
/** May delete or restore it. */
export const canManage = (p: Permission | undefined) => allows(p, "MANAGE");

/** The lowest of several levels: what the caller may do to all of them at once. */
export function weakest(levels: (Permission | undefined)[]): Permission | undefined {
  let out: Permission | undefined;
  for (const p of levels) {
    if (p === undefined) return undefined;
    if (out === undefined || RANK[p] < RANK[out]) out = p;
  }
  return out;
}
