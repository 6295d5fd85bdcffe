// The lineage explorer: the graph around any node, laid out in layers (what a node depends on
// to its left), node kinds drawn distinctly, edges labelled with their PROV meaning, depth
// control both ways, click to select (side panel with digest and attributes), expand or
// recentre; "as of" any instant; export of what is shown (PROV-JSON, DOT, SVG); and diff mode,
// which colours what two nodes' upstreams share and where they differ.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { LineageNode } from "../../api/cairn";
import { exportProv, lineageDiff, traverse, type Subgraph, type UpstreamDiff } from "../../api/governance";
import { Guard, Loading } from "../../components/Status";
import { formatTime } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { MAX_DEPTH, lineageHref, modelVersionOf, versionHref, type LineageState } from "../../state/gov";
import { diffMarks, download, edgeLabel, isRedacted, KINDS, kindLabel, kindOf, mergeGraphs, mergeProv, nodeKind, toDot, type DiffMark, type Graph } from "../../lineage/graph";
import { LOCK_PATH } from "../../components/LockIcon";
import { Redacted } from "../../components/Redacted";
import { DEFAULT_LAYOUT, layout, type Layout } from "../../lineage/layout";
import { AsOfPicker } from "../gov/AsOf";

export const KIND_COLORS: Record<string, string> = {
  dataset: "#d4a017",
  slice: "#b8860b",
  run: "#2f6fd6",
  code: "#2e8b57",
  env: "#159a9c",
  model: "#8e44ad",
  "model-version": "#6c3fc4",
  deployment: "#e07020",
  prediction: "#7f8c8d",
};

const DIFF_COLORS = { left: "#1f77b4", right: "#e6550d" };

interface Loaded {
  graph: Graph;
  diff: UpstreamDiff | null;
}

async function load(s: LineageState, asOf: string | null, signal: AbortSignal): Promise<Loaded> {
  const calls: Promise<Subgraph>[] = [traverse("upstream", s.node, s.up, asOf, signal)];
  if (s.down > 0) calls.push(traverse("downstream", s.node, s.down, asOf, signal));
  for (const e of s.expanded) {
    calls.push(traverse("upstream", e, 1, asOf, signal), traverse("downstream", e, 1, asOf, signal));
  }
  let diff: Promise<UpstreamDiff | null> = Promise.resolve(null);
  if (s.diff) {
    calls.push(traverse("upstream", s.diff, s.up, asOf, signal));
    diff = lineageDiff(s.node, s.diff, s.up, asOf, signal);
  }
  const [parts, d] = await Promise.all([Promise.all(calls), diff]);
  return { graph: mergeGraphs(parts), diff: d };
}

export function LineageView({ state, asOf }: { state: LineageState; asOf: string | null }) {
  const go = (next: Partial<LineageState>, at = asOf) => navigate({ name: "lineage", asOf: at, state: { ...state, ...next } });
  return (
    <section aria-labelledby="lineage-title">
      <h1 id="lineage-title">Lineage</h1>
      <LineageForm state={state} onApply={(next) => go({ ...next, expanded: [], selected: null })} />
      <AsOfPicker asOf={asOf} what="the lineage graph" onChange={(t) => go({}, t)} />
      {state.node ? (
        <Explorer key={`${state.node}|${asOf}`} state={state} asOf={asOf} go={go} />
      ) : (
        <p class="muted">
          Give a node as <code>kind:key</code>: <code>model-version:churn/3</code>, <code>run:&lt;run id&gt;</code>, <code>dataset:sales@v2</code>, <code>deployment:churn-api</code>… Model versions, runs and deployments link here from their pages.
        </p>
      )}
    </section>
  );
}

function LineageForm({ state, onApply }: { state: LineageState; onApply: (s: Partial<LineageState>) => void }) {
  const [node, setNode] = useState(state.node);
  const [diff, setDiff] = useState(state.diff ?? "");
  const [up, setUp] = useState(state.up);
  const [down, setDown] = useState(state.down);
  useEffect(() => {
    setNode(state.node);
    setDiff(state.diff ?? "");
    setUp(state.up);
    setDown(state.down);
  }, [state.node, state.diff, state.up, state.down]);
  return (
    <form
      class="toolbar lineage-form"
      onSubmit={(e) => {
        e.preventDefault();
        onApply({ node: node.trim(), diff: diff.trim() || null, up, down });
      }}
    >
      <label>
        Node
        <input type="text" name="node" size={40} value={node} onInput={(e) => setNode(e.currentTarget.value)} placeholder="model-version:churn/3" />
      </label>
      <DepthSelect label="Upstream depth" name="up" value={up} onChange={setUp} />
      <DepthSelect label="Downstream depth" name="down" value={down} onChange={setDown} />
      <label>
        Compare upstream with
        <input type="text" name="diff" size={30} value={diff} onInput={(e) => setDiff(e.currentTarget.value)} placeholder="(diff mode) another node" />
      </label>
      <button type="submit" class="primary">
        Show
      </button>
    </form>
  );
}

const DEPTHS = Array.from({ length: MAX_DEPTH + 1 }, (_, i) => i);

/** How many edges to follow one way, 0 to `MAX_DEPTH`. */
export function DepthSelect({ label, name, value, onChange }: { label: string; name: string; value: number; onChange: (depth: number) => void }) {
  return (
    <label>
      {label}
      <select name={name} value={value} onChange={(e) => onChange(Number(e.currentTarget.value))}>
        {DEPTHS.map((d) => (
          <option key={d} value={d}>
            {d}
          </option>
        ))}
      </select>
    </label>
  );
}

function Explorer({ state, asOf, go }: { state: LineageState; asOf: string | null; go: (s: Partial<LineageState>) => void }) {
  const data = useAsync((signal) => load(state, asOf, signal), [state.node, state.up, state.down, state.diff, state.expanded.join(","), asOf]);
  // Keep the last graph on screen while a bigger one loads (expanding), instead of a blank.
  const last = useRef<Loaded | undefined>(undefined);
  if (data.data) last.current = data.data;
  const shown = data.data ?? (data.loading ? last.current : undefined);
  if (data.error) return <Guard what="Lineage node" id={state.node} state={data}>{() => null}</Guard>;
  if (!shown) return <Loading what="lineage" />;
  return <GraphView loaded={shown} state={state} asOf={asOf} go={go} />;
}

function GraphView({ loaded, state, asOf, go }: { loaded: Loaded; state: LineageState; asOf: string | null; go: (s: Partial<LineageState>) => void }) {
  const { graph, diff } = loaded;
  const started = useRef(performance.now());
  const placed = useMemo(() => {
    const t0 = performance.now();
    const l = layout([...graph.nodes.keys()], graph.edges, { nodeHeight: 52 });
    return { layout: l, ms: performance.now() - t0 };
  }, [graph]);
  const marks = useMemo(() => (diff ? diffMarks(diff) : null), [diff]);
  const [zoom, setZoom] = useState(1);
  const svgRef = useRef<SVGSVGElement>(null);
  const canvasRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // Bring the start node into view: the graph is often wider than the canvas.
    const box = canvasRef.current;
    const p = placed.layout.nodes.get(state.node);
    if (box && p) {
      box.scrollLeft = Math.max(0, (p.x + DEFAULT_LAYOUT.nodeWidth / 2) * zoom - box.clientWidth / 2);
      box.scrollTop = Math.max(0, (p.y + 26) * zoom - box.clientHeight / 2);
    }
  }, [placed, state.node]);
  useEffect(() => {
    // Ready once the drawn graph has been painted: the next frame after this render.
    requestAnimationFrame(() =>
      markReady("lineage", { nodes: graph.nodes.size, edges: graph.edges.length, layoutMs: placed.ms, totalMs: performance.now() - started.current }),
    );
  }, [placed]);
  const selected = state.selected ? graph.nodes.get(state.selected) : undefined;
  const exportProvJson = async () => {
    const docs = [await exportProv(state.node, "upstream", state.up, asOf)];
    if (state.down > 0) docs.push(await exportProv(state.node, "downstream", state.down, asOf));
    for (const e of state.expanded) docs.push(await exportProv(e, "upstream", 1, asOf), await exportProv(e, "downstream", 1, asOf));
    if (state.diff) docs.push(await exportProv(state.diff, "upstream", state.up, asOf));
    download("lineage.prov.json", "application/json", JSON.stringify(mergeProv(docs), null, 2));
  };
  const exportSvg = () => {
    const svg = svgRef.current;
    if (!svg) return;
    const copy = svg.cloneNode(true) as SVGSVGElement;
    copy.setAttribute("xmlns", "http://www.w3.org/2000/svg");
    copy.setAttribute("width", String(placed.layout.width));
    copy.setAttribute("height", String(placed.layout.height));
    // Inline the few styles the drawing needs, so the file looks the same outside the app.
    const style = document.createElementNS("http://www.w3.org/2000/svg", "style");
    style.textContent =
      "text{font-family:sans-serif;font-size:12px;fill:#1d2330}.kind{font-size:10px;fill:#5f6877}.edge-label{font-size:10px;fill:#5f6877}.graph-edge{fill:none;stroke:#5f6877}";
    copy.insertBefore(style, copy.firstChild);
    download("lineage.svg", "image/svg+xml", new XMLSerializer().serializeToString(copy));
  };
  return (
    <>
      <div class="toolbar">
        <span>
          {graph.nodes.size} nodes, {graph.edges.length} edges
          {graph.truncated && <span class="badge">truncated: raise the depth to see more</span>}
        </span>
        <button type="button" onClick={() => setZoom((z) => Math.max(0.2, z / 1.25))} aria-label="Zoom out">
          −
        </button>
        <button type="button" onClick={() => setZoom(1)}>
          100%
        </button>
        <button type="button" onClick={() => setZoom((z) => Math.min(3, z * 1.25))} aria-label="Zoom in">
          +
        </button>
        <span class="muted">Export:</span>
        <button type="button" onClick={exportProvJson}>
          PROV-JSON
        </button>
        <button type="button" onClick={() => download("lineage.dot", "text/vnd.graphviz", toDot(graph))}>
          DOT
        </button>
        <button type="button" onClick={exportSvg}>
          SVG
        </button>
      </div>
      {diff && <DiffSummary diff={diff} />}
      <Legend graph={graph} />
      <div class="lineage-layout">
        <div class="lineage-canvas" ref={canvasRef} tabIndex={0} aria-label="Lineage graph">
          <GraphSvg svgRef={svgRef} layout={placed.layout} graph={graph} start={state.node} selected={state.selected} marks={marks} zoom={zoom} onSelect={(id) => go({ selected: id })} />
        </div>
        <aside class="lineage-panel" aria-label="Selected node">
          {selected ? (
            <NodePanel node={selected} asOf={asOf} state={state} go={go} />
          ) : (
            <p class="muted">Click a node for its digest and attributes, to expand its neighbours or to recentre the graph on it.</p>
          )}
        </aside>
      </div>
    </>
  );
}

function DiffSummary({ diff }: { diff: UpstreamDiff }) {
  const fact = (ok: boolean, what: string) => <span class={ok ? "verdict ok" : "verdict bad"}>{ok ? `same ${what}` : `different ${what}`}</span>;
  return (
    <div class="diff-summary" role="status">
      {fact(diff.same_data, "data")}
      {fact(diff.same_code, "code")}
      {fact(diff.same_environment, "environment")}
      <span>
        <span class="diff-key-left">only {diff.left}</span>: {diff.only_left.length}
      </span>
      <span>
        <span class="diff-key-right">only {diff.right}</span>: {diff.only_right.length}
      </span>
      <span>shared: {diff.shared.length}</span>
      {diff.truncated && <span class="badge">an upstream was truncated: raise the depth</span>}
    </div>
  );
}

function Legend({ graph }: { graph: Graph }) {
  const kinds = [...new Set([...graph.nodes.values()].map(kindOf))].sort();
  const hidden = [...graph.nodes.keys()].some(isRedacted);
  return (
    <div class="kind-legend" aria-label="Node kinds">
      {kinds.map((k) => (
        <span key={k}>
          <span class="swatch" style={{ background: KIND_COLORS[k] ?? "#999", borderRadius: KINDS[k]?.prov === "activity" ? "0" : "6px" }} />
          {kindLabel(k)}
          {KINDS[k]?.prov === "activity" ? " (activity)" : ""}
        </span>
      ))}
      {hidden && (
        <span class="muted">
          <Redacted /> nodes are outside your permissions
        </span>
      )}
    </div>
  );
}

const ellipsis = (text: string, n: number) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

function GraphSvg({
  layout: l,
  graph,
  start,
  selected,
  marks,
  zoom,
  onSelect,
  svgRef,
}: {
  layout: Layout;
  graph: Graph;
  start: string;
  selected: string | null;
  marks: Map<string, DiffMark> | null;
  zoom: number;
  onSelect: (id: string) => void;
  svgRef: preact.RefObject<SVGSVGElement | null>;
}) {
  const w = DEFAULT_LAYOUT.nodeWidth;
  const h = 52;
  // The outline says, in this order: selected, one side of a diff, the kind.
  const outline = (id: string, kindColor: string) => {
    if (id === selected) return "var(--fg)";
    const mark = marks?.get(id);
    if (mark === "left") return DIFF_COLORS.left;
    if (mark === "right") return DIFF_COLORS.right;
    if (id === start) return "var(--accent)";
    return kindColor;
  };
  return (
    <svg ref={svgRef} class="lineage-svg" width={l.width * zoom} height={l.height * zoom} viewBox={`0 0 ${l.width} ${l.height}`} role="img" aria-label={`Lineage graph of ${start}`}>
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" fill="currentColor" opacity="0.6" />
        </marker>
      </defs>
      <g class="edges">
        {l.edges.map((e, i) => (
          <g key={i} class="edge" data-source={e.source} data-target={e.target} data-kind={e.kind}>
            <path class={`graph-edge ${e.kind}`} d={e.path} marker-end="url(#arrow)" />
            <text class="edge-label" x={e.labelX} y={e.labelY - 3} text-anchor="middle">
              {edgeLabel(e.kind)}
            </text>
          </g>
        ))}
      </g>
      <g class="nodes">
        {[...l.nodes.values()].map((p) => {
          const n = graph.nodes.get(p.id)!;
          const kind = kindOf(n);
          const hidden = isRedacted(p.id);
          const color = KIND_COLORS[kind] ?? "#999";
          const activity = KINDS[kind]?.prov === "activity";
          const mark = marks?.get(p.id);
          const cls = ["graph-node", `kind-${kind}`, hidden ? "redacted-node" : "", p.id === start ? "start" : "", p.id === selected ? "selected" : "", mark === "left" ? "diff-left" : mark === "right" ? "diff-right" : mark === "shared" ? "diff-shared" : ""]
            .filter(Boolean)
            .join(" ");
          return (
            <g
              key={p.id}
              class={cls}
              data-id={p.id}
              transform={`translate(${p.x},${p.y})`}
              onClick={() => onSelect(p.id)}
              tabIndex={0}
              role="button"
              aria-label={hidden ? `${kindLabel(kind)} (redacted)` : `${kindLabel(kind)} ${n.label}`}
              onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), onSelect(p.id))}
            >
              <title>{hidden ? `${kindLabel(kind)} outside your permissions` : `${p.id}${n.digest ? `\ndigest ${n.digest}` : ""}`}</title>
              <rect class="node-bg" width={w} height={h} rx={activity ? 2 : 12} />
              <rect width={w} height={h} rx={activity ? 2 : 12} fill={color} fill-opacity={mark === "shared" ? 0.08 : 0.22} style={{ stroke: outline(p.id, color) }} />
              {activity && <rect width={6} height={h} fill={color} />}
              <text class="kind" x={12} y={14}>
                {kindLabel(kind)}
                {mark === "left" ? " · only left" : mark === "right" ? " · only right" : mark === "shared" ? " · shared" : ""}
              </text>
              {hidden && <path class="lock-icon" d={LOCK_PATH} transform="translate(12 20) scale(0.75)" fill-rule="evenodd" />}
              <text x={hidden ? 26 : 12} y={31}>
                {hidden ? "redacted" : ellipsis(n.label || p.id, 27)}
              </text>
              {n.digest && (
                <text class="kind" x={12} y={45}>
                  {n.digest.slice(0, 16)}
                </text>
              )}
            </g>
          );
        })}
      </g>
    </svg>
  );
}

function NodePanel({ node, asOf, state, go }: { node: LineageNode; asOf: string | null; state: LineageState; go: (s: Partial<LineageState>) => void }) {
  if (isRedacted(node.id)) {
    // Nothing of a hidden node can be shown, and its placeholder id names nothing the server
    // could traverse from, so neither recentring nor expanding is offered.
    return (
      <>
        <h2>
          <Redacted kind={node.kind} />
        </h2>
        <p class="muted">This {kindLabel(node.kind ?? "").toLowerCase() || "node"} is outside your permissions: the server withheld its name, digest and attributes. The edges drawn to it are real.</p>
      </>
    );
  }
  const kind = nodeKind(node.id);
  const mv = modelVersionOf(node.id);
  const attributes = Object.entries(node.attributes ?? {});
  return (
    <>
      <h2>{node.label || node.id}</h2>
      <dl class="facts">
        <dt>Kind</dt>
        <dd>{kindLabel(kind)}</dd>
        <dt>Id</dt>
        <dd>
          <code>{node.id}</code>
        </dd>
        <dt>Digest</dt>
        <dd>{node.digest ? <code>{node.digest}</code> : <span class="muted">none</span>}</dd>
        <dt>Recorded</dt>
        <dd>{formatTime(node.recorded_at)}</dd>
      </dl>
      <div class="toolbar">
        <button type="button" onClick={() => go({ node: node.id, expanded: [], selected: null })}>
          Recentre here
        </button>
        <button type="button" disabled={state.expanded.includes(node.id) || node.id === state.node} onClick={() => go({ expanded: [...state.expanded, node.id] })}>
          Expand neighbours
        </button>
        {node.id !== state.node && (
          <button type="button" onClick={() => go({ diff: node.id, selected: null })}>
            Compare upstreams
          </button>
        )}
      </div>
      {mv && (
        <p>
          <a href={versionHref(mv[0], mv[1], asOf)}>Open the model version</a>
        </p>
      )}
      {kind === "prediction" && (
        <p>
          <a href={`#/trace?id=${encodeURIComponent(node.id.slice("prediction:".length))}${asOf ? `&asOf=${encodeURIComponent(asOf)}` : ""}`}>Trace this prediction</a>
        </p>
      )}
      <h3>Attributes</h3>
      {attributes.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <table class="data-table kv">
          <tbody>
            {attributes.map(([k, v]) => (
              <tr key={k}>
                <td>{k}</td>
                <td>{typeof v === "string" ? v : <code>{JSON.stringify(v)}</code>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p>
        <a href={lineageHref(node.id, asOf)}>Link to this node's lineage</a>
      </p>
    </>
  );
}

