// The runs of one or several experiments: filter, sort, columns, grouping, selection and the
// chart tab, all kept in the address.

import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError } from "../../api/client";
import * as mlflow from "../../api/mlflow";
import type { Experiment } from "../../api/types";
import { ChartControls, MetricCharts } from "../../charts/MetricCharts";
import { ErrorBox, Guard, Loading } from "../../components/Status";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { columnsFor, knownKeys, orderBy } from "../../state/columns";
import { formatRoute, type ChartSettings, type RunsState } from "../../state/route";
import { groupedRows, nestedRows } from "../../state/rows";
import { ColumnPicker } from "./ColumnPicker";
import { FilterBox } from "./FilterBox";
import { RunsTable } from "./RunsTable";
import { usePagedRuns } from "./usePagedRuns";
import { canManage, weakest } from "../../state/permissions";
import { useExperimentPermissions } from "../../session/session";

/** Without a selection, the chart tab shows the first runs of the table. */
const DEFAULT_CHARTED = 10;
const GROUPED_METRIC_WIDTH = 190;

export function RunsView({ experimentIds, state }: { experimentIds: string[]; state: RunsState }) {
  const experiments = useAsync((signal) => Promise.all(experimentIds.map((id) => mlflow.getExperiment(id, signal))), [experimentIds.join(",")]);
  return (
    <Guard what="Experiment" id={experimentIds.join(", ")} state={experiments}>
      {(list) => <RunsOf experiments={list} state={state} />}
    </Guard>
  );
}

function RunsOf({ experiments, state }: { experiments: Experiment[]; state: RunsState }) {
  const experimentIds = experiments.map((e) => e.experiment_id);
  const update = useCallback(
    (patch: Partial<RunsState>, replace = false) => navigate({ name: "runs", experimentIds, state: { ...state, ...patch } }, { replace }),
    [experimentIds.join(","), state],
  );
  const order = orderBy(state.sort);
  const paged = usePagedRuns({ experimentIds, filter: state.filter, orderBy: order, viewType: state.showDeleted ? "ALL" : "ACTIVE_ONLY" });
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const [actionError, setActionError] = useState<unknown>(null);
  const startedAt = useRef(performance.now());
  const levels = useExperimentPermissions(experimentIds);

  // A group row shows min / mean / max in each metric column, which needs room for three numbers.
  const columns = useMemo(
    () => columnsFor(state.columns).map((c) => (state.groupBy && c.kind === "metrics" ? { ...c, width: Math.max(c.width, GROUPED_METRIC_WIDTH) } : c)),
    [state.columns.join(","), state.groupBy],
  );
  const keys = useMemo(() => knownKeys(paged.runs.slice(0, 1000)), [paged.runs.length > 0 ? paged.runs[0] : null, Math.min(paged.runs.length, 1000)]);
  const rows = useMemo(() => {
    if (state.groupBy) {
      const collapsed = new Set(Array.from(expanded).filter((k) => k.startsWith("group:")).map((k) => k.slice(6)));
      return groupedRows(paged.runs, state.groupBy, columns, collapsed);
    }
    return nestedRows(paged.runs, expanded);
  }, [paged.runs, state.groupBy, columns, expanded]);
  const selected = useMemo(() => new Set(state.selected), [state.selected.join(",")]);

  const filterError = paged.error instanceof ApiError && paged.error.status === 400 ? paged.error.message : null;

  const onVisible = useCallback(() => markReady("runs", { ms: performance.now() - startedAt.current }), []);
  useEffect(() => {
    // A new query: the next rows drawn mark readiness again (the sort benchmark measures this).
    startedAt.current = performance.now();
  }, [state.filter, order.join(","), state.showDeleted]);
  useEffect(() => {
    if (!paged.loading && !paged.error && paged.runs.length === 0) markReady("runs", { empty: true });
  }, [paged.loading, paged.error, paged.runs.length]);

  const toggleExpand = (id: string) =>
    setExpanded((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const toggleSelect = (id: string) => update({ selected: selected.has(id) ? state.selected.filter((s) => s !== id) : [...state.selected, id] }, true);
  const toggleAll = (on: boolean) => update({ selected: on ? paged.runs.map((r) => r.info.run_id) : [] }, true);
  const onSort = (column: string) => {
    const current = state.sort?.column === column ? state.sort : null;
    // Off -> descending -> ascending -> off, as metric columns are most often read best-first.
    const next = !current ? { column, ascending: false } : !current.ascending ? { column, ascending: true } : null;
    update({ sort: next });
  };
  const act = async (action: (id: string) => Promise<unknown>) => {
    setActionError(null);
    try {
      for (const id of state.selected) await action(id);
      update({ selected: [] });
      paged.reload();
    } catch (e) {
      setActionError(e);
    }
  };

  // Deleting and restoring need MANAGE on the runs' experiments; the buttons show only then.
  const mayManage = canManage(weakest(levels));
  const selectedRuns = paged.runs.filter((r) => selected.has(r.info.run_id));
  const anyDeleted = selectedRuns.some((r) => r.info.lifecycle_stage === "deleted");
  const anyActive = selectedRuns.some((r) => r.info.lifecycle_stage !== "deleted");
  const groupable = [...keys.params.map((k) => `params.${k}`), ...keys.tags.map((k) => `tags.${k}`)];

  const charted = (state.selected.length ? selectedRuns : paged.runs.slice(0, DEFAULT_CHARTED)).map((r, i) => ({
    runId: r.info.run_id,
    label: r.info.run_name || r.info.run_id.slice(0, 8),
    colorIndex: i,
  }));
  const chartKeys = Array.from(
    new Set((state.selected.length ? selectedRuns : paged.runs.slice(0, DEFAULT_CHARTED)).flatMap((r) => (r.data.metrics ?? []).map((m) => m.key))),
  ).sort();

  return (
    <section aria-labelledby="runs-title">
      <header class="view-header">
        <div>
          <p class="muted">
            <a href="#/experiments">Experiments</a> /
          </p>
          <h1 id="runs-title">{experiments.map((e) => e.name).join(", ")}</h1>
          <p class="muted">
            Experiment {experimentIds.map((id) => <code key={id}>{id}</code>)}
            {experiments[0]?.artifact_location ? <> · artifacts at <code>{experiments[0].artifact_location}</code></> : null}
          </p>
        </div>
      </header>
      <div class="toolbar">
        <FilterBox value={state.filter} error={filterError} keys={keys} onApply={(filter) => update({ filter, selected: [] })} />
      </div>
      <div class="toolbar">
        <ColumnPicker keys={keys} chosen={state.columns} onChange={(columns) => update({ columns })} />
        <label>
          Group by
          <select value={state.groupBy ?? ""} onChange={(e) => update({ groupBy: e.currentTarget.value || null })}>
            <option value="">(none)</option>
            {groupable.map((g) => (
              <option key={g} value={g}>
                {g}
              </option>
            ))}
          </select>
        </label>
        <label class="checkbox">
          <input type="checkbox" checked={state.showDeleted} onChange={(e) => update({ showDeleted: e.currentTarget.checked, selected: [] })} />
          Show deleted runs
        </label>
        <span class="muted" aria-live="polite">
          {paged.runs.length.toLocaleString()} runs{paged.done ? "" : " loaded, more on scroll"} · {state.selected.length} selected
        </span>
        {state.selected.length >= 2 && (
          <a class="button-link" href={formatRoute({ name: "compare", experimentIds, runIds: state.selected, chart: state.chart })}>
            Compare {state.selected.length} runs
          </a>
        )}
        {anyActive && mayManage && (
          <button type="button" class="danger" onClick={() => window.confirm(`Delete ${state.selected.length} run(s)? They can be restored.`) && void act(mlflow.deleteRun)}>
            Delete selected
          </button>
        )}
        {anyDeleted && mayManage && (
          <button type="button" onClick={() => void act(mlflow.restoreRun)}>
            Restore selected
          </button>
        )}
      </div>
      {actionError ? <ErrorBox what="the change" error={actionError} action /> : null}
      <div class="tabs" role="tablist" aria-label="Runs view">
        <button type="button" role="tab" aria-selected={state.view === "table"} onClick={() => update({ view: "table" })}>
          Table
        </button>
        <button type="button" role="tab" aria-selected={state.view === "charts"} onClick={() => update({ view: "charts" })}>
          Charts
        </button>
      </div>
      {paged.error && !filterError ? (
        <ErrorBox what="runs" error={paged.error} retry={paged.reload} />
      ) : filterError ? null : state.view === "charts" ? (
        paged.runs.length === 0 && paged.loading ? (
          <Loading what="runs" />
        ) : (
          <>
            <ChartControls settings={state.chart} onChange={(chart: ChartSettings) => update({ chart }, true)} />
            <p class="muted">{state.selected.length ? `${charted.length} selected runs` : `The first ${charted.length} runs of the table; select runs to choose.`}</p>
            <MetricCharts runs={charted} metricKeys={chartKeys} settings={state.chart} />
          </>
        )
      ) : paged.runs.length === 0 && paged.loading ? (
        <Loading what="runs" />
      ) : paged.runs.length === 0 ? (
        <p class="muted">No runs{state.filter ? " match this filter" : " yet"}.</p>
      ) : (
        <>
          <RunsTable
            rows={rows}
            columns={columns}
            sort={state.sort}
            selected={selected}
            canLoadMore={!paged.done && !paged.loading}
            onLoadMore={paged.loadMore}
            onSort={onSort}
            onToggleSelect={toggleSelect}
            onToggleAll={toggleAll}
            onToggleExpand={toggleExpand}
            onVisible={onVisible}
          />
          <p class="grid-footer">{paged.loading ? "Loading more runs…" : paged.done ? "All runs loaded." : ""}</p>
        </>
      )}
    </section>
  );
}
