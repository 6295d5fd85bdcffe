// The experiments list: name, id, run count, last activity, tags; search by name; create,
// rename, delete and restore.

import { useEffect, useMemo, useState } from "preact/hooks";
import * as mlflow from "../../api/mlflow";
import type { Experiment } from "../../api/types";
import { ErrorBox, Loading } from "../../components/Status";
import { formatTime } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { defaultRunsState, experimentHref } from "../../state/route";
import { canEdit, canManage } from "../../state/permissions";
import { useExperimentPermission, useSession } from "../../session/session";
import { RunCount } from "./RunCount";

async function allExperiments(showDeleted: boolean): Promise<Experiment[]> {
  const out: Experiment[] = [];
  let token: string | undefined;
  do {
    const page = await mlflow.searchExperiments({ viewType: showDeleted ? "ALL" : "ACTIVE_ONLY", pageToken: token });
    out.push(...(page.experiments ?? []));
    token = page.next_page_token;
  } while (token);
  return out;
}

export function ExperimentsView({ search, showDeleted }: { search: string; showDeleted: boolean }) {
  const experiments = useAsync(() => allExperiments(showDeleted), [showDeleted]);
  const [query, setQuery] = useState(search);
  const [actionError, setActionError] = useState<unknown>(null);
  const [newName, setNewName] = useState("");
  const [renaming, setRenaming] = useState<{ id: string; name: string } | null>(null);
  const { may_write: mayCreate } = useSession();

  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    return (experiments.data ?? []).filter((e) => !q || e.name.toLowerCase().includes(q));
  }, [experiments.data, query]);

  useEffect(() => {
    if (experiments.data) markReady("experiments", { count: experiments.data.length });
  }, [experiments.data]);

  const act = async (action: () => Promise<unknown>) => {
    setActionError(null);
    try {
      await action();
      experiments.retry();
    } catch (e) {
      setActionError(e);
    }
  };

  const onSearch = (value: string) => {
    setQuery(value);
    navigate({ name: "experiments", search: value, showDeleted }, { replace: true });
  };

  return (
    <section aria-labelledby="experiments-title">
      <header class="view-header">
        <h1 id="experiments-title">Experiments</h1>
        {mayCreate && <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            const name = newName.trim();
            if (name) void act(async () => {
              const id = await mlflow.createExperiment(name);
              setNewName("");
              navigate({ name: "runs", experimentIds: [id], state: defaultRunsState() });
            });
          }}
        >
          <label>
            New experiment
            <input value={newName} onInput={(e) => setNewName(e.currentTarget.value)} placeholder="name" />
          </label>
          <button type="submit" disabled={!newName.trim()}>
            Create
          </button>
        </form>}
      </header>
      <div class="toolbar">
        <label>
          Search by name
          <input type="search" value={query} onInput={(e) => onSearch(e.currentTarget.value)} placeholder="filter experiments" />
        </label>
        <label class="checkbox">
          <input type="checkbox" checked={showDeleted} onChange={(e) => navigate({ name: "experiments", search: query, showDeleted: e.currentTarget.checked })} />
          Show deleted
        </label>
      </div>
      {actionError ? <ErrorBox what="the change" error={actionError} action /> : null}
      {experiments.error ? (
        <ErrorBox what="experiments" error={experiments.error} retry={experiments.retry} />
      ) : !experiments.data ? (
        <Loading what="experiments" />
      ) : (
        <table class="data-table experiments">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">ID</th>
              <th scope="col">Runs</th>
              <th scope="col">Last activity</th>
              <th scope="col">Tags</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {shown.map((e) => (
              <tr key={e.experiment_id} class={e.lifecycle_stage === "deleted" ? "deleted" : undefined}>
                <td>
                  {renaming?.id === e.experiment_id ? (
                    <form
                      class="inline-form"
                      onSubmit={(ev) => {
                        ev.preventDefault();
                        const name = renaming.name.trim();
                        if (name) void act(() => mlflow.renameExperiment(e.experiment_id, name)).then(() => setRenaming(null));
                      }}
                    >
                      <label class="visually-hidden" for={`rename-${e.experiment_id}`}>
                        New name for {e.name}
                      </label>
                      <input id={`rename-${e.experiment_id}`} value={renaming.name} onInput={(ev) => setRenaming({ id: e.experiment_id, name: ev.currentTarget.value })} />
                      <button type="submit">Save</button>
                      <button type="button" onClick={() => setRenaming(null)}>
                        Cancel
                      </button>
                    </form>
                  ) : (
                    <a href={experimentHref(e.experiment_id)}>{e.name}</a>
                  )}
                  {e.lifecycle_stage === "deleted" && <span class="badge">deleted</span>}
                </td>
                <td>
                  <code>{e.experiment_id}</code>
                </td>
                <td>
                  <RunCount experimentId={e.experiment_id} />
                </td>
                <td>{formatTime(e.last_update_time ?? e.creation_time)}</td>
                <td class="tags">
                  {(e.tags ?? [])
                    .filter((t) => !t.key.startsWith("mlflow."))
                    .map((t) => (
                      <span class="tag" key={t.key}>
                        {t.key}: {t.value}
                      </span>
                    ))}
                </td>
                <td class="actions">
                  <ExperimentActions
                    experiment={e}
                    onRename={() => setRenaming({ id: e.experiment_id, name: e.name })}
                    onDelete={() => {
                      if (window.confirm(`Delete the experiment "${e.name}"? It can be restored later.`)) void act(() => mlflow.deleteExperiment(e.experiment_id));
                    }}
                    onRestore={() => void act(() => mlflow.restoreExperiment(e.experiment_id))}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {experiments.data && shown.length === 0 && <p class="muted">No experiment matches.</p>}
    </section>
  );
}

/** A row's buttons, those the caller may use: rename needs EDIT, delete and restore MANAGE. */
function ExperimentActions({ experiment: e, onRename, onDelete, onRestore }: { experiment: Experiment; onRename: () => void; onDelete: () => void; onRestore: () => void }) {
  const level = useExperimentPermission(e.experiment_id);
  if (e.lifecycle_stage === "deleted") {
    return canManage(level) ? (
      <button type="button" onClick={onRestore} aria-label={`Restore ${e.name}`}>
        Restore
      </button>
    ) : null;
  }
  return (
    <>
      {canEdit(level) && (
        <button type="button" onClick={onRename} aria-label={`Rename ${e.name}`}>
          Rename
        </button>
      )}
      {canManage(level) && (
        <button type="button" class="danger" aria-label={`Delete ${e.name}`} onClick={onDelete}>
          Delete
        </button>
      )}
      {level !== undefined && !canEdit(level) && <span class="muted">read-only</span>}
    </>
  );
}
