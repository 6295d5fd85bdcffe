// A prediction's provenance: paste its id and see the chain deployment → model version → run →
// data slices → dataset versions, code version and environment, each with its digest, as the
// deployment stood when the prediction was made (the server's trace), or as of a chosen instant.

import { useEffect, useState } from "preact/hooks";
import type { LineageNode } from "../../api/cairn";
import { predictionTrace, type PredictionTrace } from "../../api/governance";
import { Redacted } from "../../components/Redacted";
import { Guard } from "../../components/Status";
import { formatTime } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { lineageHref, modelVersionOf, versionHref } from "../../state/gov";
import { isRedacted, kindLabel, kindOf } from "../../lineage/graph";
import { AsOfPicker, Digest, Met } from "../gov/AsOf";

/** The order a trace is read in, from the prediction back to where its data came from. */
const CHAIN = ["prediction", "deployment", "model-version", "model", "run", "slice", "dataset", "code", "env"];

/** The trace's nodes in chain order, each with how many edges away from the prediction it is. */
export function chainOrder(trace: PredictionTrace): { node: LineageNode; depth: number }[] {
  const start = `prediction:${trace.prediction.prediction_id}`;
  const deps = new Map<string, string[]>();
  for (const e of trace.lineage.edges) deps.set(e.source, [...(deps.get(e.source) ?? []), e.target]);
  const depth = new Map<string, number>([[start, 0]]);
  const queue = [start];
  while (queue.length) {
    const id = queue.shift()!;
    for (const t of deps.get(id) ?? []) {
      if (!depth.has(t)) {
        depth.set(t, depth.get(id)! + 1);
        queue.push(t);
      }
    }
  }
  const rank = (node: LineageNode) => {
    const i = CHAIN.indexOf(kindOf(node));
    return i < 0 ? CHAIN.length : i;
  };
  return trace.lineage.nodes
    .map((node) => ({ node, depth: depth.get(node.id) ?? 99 }))
    .sort((a, b) => rank(a.node) - rank(b.node) || a.depth - b.depth || (a.node.id < b.node.id ? -1 : 1));
}

export function TraceView({ predictionId, asOf }: { predictionId: string; asOf: string | null }) {
  const [text, setText] = useState(predictionId);
  useEffect(() => setText(predictionId), [predictionId]);
  return (
    <section aria-labelledby="trace-title">
      <h1 id="trace-title">Prediction trace</h1>
      <form
        class="inline-form toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          navigate({ name: "trace", predictionId: text.trim(), asOf });
        }}
      >
        <label>
          Prediction id
          <input type="text" name="prediction" size={40} value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary">
          Trace
        </button>
      </form>
      <AsOfPicker asOf={asOf} what="the lineage" onChange={(t) => navigate({ name: "trace", predictionId, asOf: t })} />
      {predictionId ? <Trace key={`${predictionId}|${asOf}`} id={predictionId} asOf={asOf} /> : <p class="muted">Paste the id a serving system logged with the prediction.</p>}
    </section>
  );
}

function Trace({ id, asOf }: { id: string; asOf: string | null }) {
  const trace = useAsync((signal) => predictionTrace(id, asOf, signal), [id, asOf]);
  useEffect(() => {
    if (trace.data) markReady("trace", { nodes: trace.data.lineage.nodes.length });
  }, [trace.data]);
  return (
    <Guard what="Prediction" id={id} state={trace}>
      {(t) => {
        const p = t.prediction;
        const mv = p.model_version ? modelVersionOf(p.model_version) : null;
        return (
          <>
            <div class="card">
              <dl class="facts">
                <dt>Made</dt>
                <dd>{formatTime(p.time)}</dd>
                <dt>Deployment</dt>
                <dd>{p.deployment ?? <span class="muted">none (made by the model version directly)</span>}</dd>
                <dt>Model version</dt>
                <dd>{p.model_version && isRedacted(p.model_version) ? <Redacted kind="model-version" /> : mv ? <a href={versionHref(mv[0], mv[1], asOf)}>{p.model_version}</a> : <span class="muted">unknown</span>}</dd>
                <dt>Input digest</dt>
                <dd>
                  <code>{p.input_digest}</code>
                </dd>
                <dt>Output digest</dt>
                <dd>{p.output_digest ? <code>{p.output_digest}</code> : <span class="muted">none</span>}</dd>
                <dt>Lineage</dt>
                <dd>
                  <Met ok={t.completeness.complete} />
                  {!t.completeness.complete && <span class="muted"> lacks {t.completeness.missing.join(", ")}</span>}
                </dd>
              </dl>
              <p>
                <a href={lineageHref(`prediction:${p.prediction_id}`, asOf, { up: 10, down: 0 })}>Open in the lineage explorer</a>
              </p>
            </div>
            <h2>Chain</h2>
            <ol class="trace-chain">
              {chainOrder(t).map(({ node, depth }) => (
                <li key={node.id} data-id={node.id} class={isRedacted(node.id) ? "redacted-step" : undefined} style={{ marginLeft: `${Math.min(depth, 8) * 14}px` }}>
                  <span class="step-kind">{kindLabel(kindOf(node))}</span>
                  {isRedacted(node.id) ? (
                    <>
                      <Redacted kind={node.kind} /> <span class="muted">outside your permissions</span>
                    </>
                  ) : (
                    <>
                      <a href={lineageHref(node.id, asOf)}>{node.label || node.id}</a> <Digest value={node.digest} />
                      <div class="muted">
                        <code>{node.id}</code>
                      </div>
                    </>
                  )}
                </li>
              ))}
            </ol>
            {t.lineage.truncated && <p class="badge">The trace was truncated.</p>}
          </>
        );
      }}
    </Guard>
  );
}
