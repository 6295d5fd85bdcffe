// The virtualised runs table: fixed-height rows, only those in view (plus a margin) in the
// DOM, so 10,000 runs scroll like 100. Reaching the last loaded rows asks for the next page.
// Headers sort on the server; the keyboard moves a cursor row (arrows, Home/End, PageUp/Down),
// Space selects it and Enter opens it.

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { Column } from "../../state/columns";
import type { Row } from "../../state/rows";
import { formatShort, formatValue } from "../../lib/format";
import { runHref } from "../../state/route";
import { navigate } from "../../lib/router";
import { parseRoute } from "../../state/route";

export const ROW_HEIGHT = 30;
const OVERSCAN = 10;
/** Ask for the next page when the view is this many rows from the end of what is loaded. */
const PREFETCH_ROWS = 60;
const CHECK_WIDTH = 36;

export interface RunsTableProps {
  rows: Row[];
  columns: Column[];
  sort: { column: string; ascending: boolean } | null;
  selected: ReadonlySet<string>;
  canLoadMore: boolean;
  onLoadMore: () => void;
  onSort: (column: string) => void;
  onToggleSelect: (runId: string) => void;
  onToggleAll: (on: boolean) => void;
  onToggleExpand: (id: string) => void;
  onVisible?: () => void;
}

function rowKey(row: Row): string {
  return row.type === "run" ? row.run.info.run_id : `group:${row.value}`;
}

export function RunsTable(props: RunsTableProps) {
  const { rows, columns, sort, selected } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  const [cursor, setCursor] = useState(0);
  const frame = useRef(0);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const update = () => setView({ top: el.scrollTop, height: el.clientHeight });
    update();
    const resize = new ResizeObserver(update);
    resize.observe(el);
    return () => resize.disconnect();
  }, []);

  const first = Math.max(0, Math.floor(view.top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((view.top + view.height) / ROW_HEIGHT) + OVERSCAN);

  useEffect(() => {
    if (props.canLoadMore && last >= rows.length - PREFETCH_ROWS) props.onLoadMore();
  }, [last, rows.length, props.canLoadMore]);

  useEffect(() => {
    if (rows.length) props.onVisible?.();
  }, [rows.length > 0]);

  const onScroll = () => {
    cancelAnimationFrame(frame.current);
    frame.current = requestAnimationFrame(() => {
      const el = scroller.current;
      if (el) setView({ top: el.scrollTop, height: el.clientHeight });
    });
  };

  const moveCursor = (to: number) => {
    const next = Math.max(0, Math.min(rows.length - 1, to));
    setCursor(next);
    const el = scroller.current;
    if (!el) return;
    const head = ROW_HEIGHT;
    const y = next * ROW_HEIGHT;
    if (y < el.scrollTop) el.scrollTop = y;
    else if (y + ROW_HEIGHT > el.scrollTop + el.clientHeight - head) el.scrollTop = y + ROW_HEIGHT - el.clientHeight + head;
  };

  const onKeyDown = (e: KeyboardEvent) => {
    const page = Math.max(1, Math.floor(view.height / ROW_HEIGHT) - 1);
    const row = rows[cursor];
    switch (e.key) {
      case "ArrowDown": moveCursor(cursor + 1); break;
      case "ArrowUp": moveCursor(cursor - 1); break;
      case "PageDown": moveCursor(cursor + page); break;
      case "PageUp": moveCursor(cursor - page); break;
      case "Home": moveCursor(0); break;
      case "End": moveCursor(rows.length - 1); break;
      case " ":
        if (row?.type === "run") props.onToggleSelect(row.run.info.run_id);
        break;
      case "Enter":
        if (row?.type === "run") navigate(parseRoute(runHref(row.run.info.experiment_id, row.run.info.run_id)));
        else if (row?.type === "group") props.onToggleExpand(`group:${row.value}`);
        break;
      case "ArrowRight":
      case "ArrowLeft":
        if (row?.type === "run" && row.childCount > 0 && row.expanded === (e.key === "ArrowLeft")) props.onToggleExpand(row.run.info.run_id);
        else if (row?.type === "group") props.onToggleExpand(`group:${row.value}`);
        else return;
        break;
      default:
        return;
    }
    e.preventDefault();
  };

  const width = CHECK_WIDTH + columns.reduce((w, c) => w + c.width, 0);
  const allSelected = rows.some((r) => r.type === "run") && rows.every((r) => r.type !== "run" || selected.has(r.run.info.run_id));
  const activeId = rows[cursor] ? `row-${rowKey(rows[cursor]!)}` : undefined;

  return (
    <div
      ref={scroller}
      class="runs-grid"
      role="grid"
      aria-label="Runs"
      aria-rowcount={rows.length + 1}
      aria-multiselectable="true"
      aria-activedescendant={activeId}
      tabIndex={0}
      onScroll={onScroll}
      onKeyDown={onKeyDown}
    >
      <div class="grid-head" role="row" aria-rowindex={1} style={{ width: `${width}px`, height: `${ROW_HEIGHT}px` }}>
        <div class="cell" role="columnheader" style={{ width: `${CHECK_WIDTH}px` }}>
          <input type="checkbox" aria-label="Select all loaded runs" checked={allSelected} onChange={(e) => props.onToggleAll(e.currentTarget.checked)} />
        </div>
        {columns.map((c) => {
          const sorted = sort?.column === c.id ? (sort.ascending ? "ascending" : "descending") : undefined;
          return (
            <div key={c.id} class={`cell${c.numeric ? " num" : ""}`} role="columnheader" aria-sort={sorted} style={{ width: `${c.width}px` }} title={c.label}>
              {c.orderKey ? (
                <button type="button" class="sort" aria-sort={sorted} onClick={() => props.onSort(c.id)} aria-label={`Sort by ${c.label}`}>
                  {c.label} {sorted === "ascending" ? "▲" : sorted === "descending" ? "▼" : ""}
                </button>
              ) : (
                c.label
              )}
            </div>
          );
        })}
      </div>
      <div class="grid-body" style={{ height: `${rows.length * ROW_HEIGHT}px`, width: `${width}px` }}>
        {rows.slice(first, last).map((row, i) => {
          const index = first + i;
          const style = { top: `${index * ROW_HEIGHT}px`, height: `${ROW_HEIGHT}px` };
          const active = index === cursor ? " active" : "";
          if (row.type === "group") {
            const open = row.open;
            return (
              <div key={rowKey(row)} id={`row-${rowKey(row)}`} class={`grid-row group-row${active}`} role="row" aria-rowindex={index + 2} style={style} onClick={() => setCursor(index)}>
                <div class="cell" role="gridcell" style={{ width: `${CHECK_WIDTH}px` }} />
                {columns.map((c, ci) => (
                  <div key={c.id} class={`cell${c.numeric ? " num" : ""}`} role="gridcell" style={{ width: `${c.width}px` }}>
                    {ci === 0 ? (
                      <>
                        <button type="button" class="tree-toggle" aria-label={`Collapse or expand group ${row.value}`} aria-expanded={open} onClick={() => props.onToggleExpand(`group:${row.value}`)}>
                          {open ? "▾" : "▸"}
                        </button>
                        <span title={row.value}>
                          {row.key.replace(/^(params|tags)\./, "")} = {row.value} ({row.count})
                        </span>
                      </>
                    ) : row.aggregates[c.id] ? (
                      <span title={`min ${formatValue(row.aggregates[c.id]!.min)} / mean ${formatValue(row.aggregates[c.id]!.mean)} / max ${formatValue(row.aggregates[c.id]!.max)}`}>
                        {formatShort(row.aggregates[c.id]!.min)} / {formatShort(row.aggregates[c.id]!.mean)} / {formatShort(row.aggregates[c.id]!.max)}
                      </span>
                    ) : null}
                  </div>
                ))}
              </div>
            );
          }
          const run = row.run;
          const id = run.info.run_id;
          const isSelected = selected.has(id);
          return (
            <div
              key={id}
              id={`row-${id}`}
              class={`grid-row${isSelected ? " selected" : ""}${active}${run.info.lifecycle_stage === "deleted" ? " deleted" : ""}`}
              role="row"
              aria-rowindex={index + 2}
              aria-selected={isSelected}
              data-run-id={id}
              style={style}
              onClick={() => setCursor(index)}
            >
              <div class="cell" role="gridcell" style={{ width: `${CHECK_WIDTH}px` }}>
                <input type="checkbox" tabIndex={-1} aria-label={`Select run ${columns[0]!.text(run)}`} checked={isSelected} onChange={() => props.onToggleSelect(id)} />
              </div>
              {columns.map((c, ci) => (
                <div key={c.id} class={`cell${c.numeric ? " num" : ""}${c.id === "attributes.status" ? ` status-${run.info.status}` : ""}`} role="gridcell" style={{ width: `${c.width}px` }} title={c.text(run)}>
                  {ci === 0 ? (
                    <>
                      <span style={{ width: `${row.depth * 16}px`, flex: "none" }} />
                      {row.childCount > 0 ? (
                        <button type="button" class="tree-toggle" aria-expanded={row.expanded} aria-label={`${row.expanded ? "Collapse" : "Expand"} ${row.childCount} child runs`} onClick={() => props.onToggleExpand(id)}>
                          {row.expanded ? "▾" : "▸"}
                        </button>
                      ) : null}
                      <a href={runHref(run.info.experiment_id, id)} tabIndex={-1}>
                        {c.text(run)}
                      </a>
                      {run.info.lifecycle_stage === "deleted" && <span class="badge">deleted</span>}
                    </>
                  ) : (
                    c.text(run)
                  )}
                </div>
              ))}
            </div>
          );
        })}
      </div>
    </div>
  );
}
