// The registry as it stood at some instant, replayed from a model's history (every alias move,
// stage transition and version, oldest first) — what the "as of" views show. Pure; tested in
// test/registry.test.ts.

import type { HistoryEntry } from "../api/governance";

export interface VersionThen {
  version: number;
  stage: string;
  created: number;
}

export interface RegistryThen {
  /** False before the model was created or after it was deleted. */
  exists: boolean;
  name: string;
  versions: Map<number, VersionThen>;
  /** Alias → version. */
  aliases: Map<string, number>;
}

export function replay(history: readonly HistoryEntry[]): RegistryThen {
  const state: RegistryThen = { exists: false, name: "", versions: new Map(), aliases: new Map() };
  for (const e of history) {
    switch (e.kind) {
      case "model_created":
        state.exists = true;
        state.name = e.name;
        break;
      case "model_renamed":
        state.name = e.name;
        break;
      case "model_deleted":
        state.exists = false;
        state.versions.clear();
        state.aliases.clear();
        break;
      case "version_created":
        if (e.version !== null) state.versions.set(e.version, { version: e.version, stage: "None", created: e.time });
        break;
      case "version_deleted":
        if (e.version !== null) {
          state.versions.delete(e.version);
          for (const [alias, v] of state.aliases) if (v === e.version) state.aliases.delete(alias);
        }
        break;
      case "stage_transition": {
        const v = e.version !== null ? state.versions.get(e.version) : undefined;
        if (v && e.to_stage) v.stage = e.to_stage;
        break;
      }
      case "alias_set":
        if (e.alias && e.version !== null) state.aliases.set(e.alias, e.version);
        break;
      case "alias_deleted":
        if (e.alias) state.aliases.delete(e.alias);
        break;
    }
  }
  return state;
}

/** One history entry in words: "alias champion: v1 → v2", "stage of v3: Staging → Production". */
export function describe(e: HistoryEntry): string {
  switch (e.kind) {
    case "model_created":
      return `model ${e.name} created`;
    case "model_renamed":
      return `renamed ${e.previous_name ?? "?"} → ${e.name}`;
    case "model_deleted":
      return "model deleted";
    case "version_created":
      return `version ${e.version} registered`;
    case "version_deleted":
      return `version ${e.version} deleted`;
    case "stage_transition":
      return `stage of v${e.version}: ${e.from_stage ?? "None"} → ${e.to_stage ?? "None"}`;
    case "alias_set":
      return e.previous_version !== null ? `alias @${e.alias}: v${e.previous_version} → v${e.version}` : `alias @${e.alias} → v${e.version}`;
    case "alias_deleted":
      return `alias @${e.alias} removed (was v${e.previous_version ?? e.version ?? "?"})`;
  }
}
