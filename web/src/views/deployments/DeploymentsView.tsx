// Deployments: for each, the model versions it served and from when to when, as bars on one
// time axis and as a table; "as of" shows the history known at that instant.

import { useEffect, useMemo } from "preact/hooks";
import { servingHistory, type ServingInterval } from "../../api/governance";
import { LockIcon } from "../../components/LockIcon";
import { Redacted } from "../../components/Redacted";
import { ErrorBox, Loading } from "../../components/Status";
import { isRedacted } from "../../lineage/graph";
import { formatDuration, formatTime } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { lineageHref, modelVersionOf, versionHref } from "../../state/gov";
import { AsOfPicker } from "../gov/AsOf";

const PALETTE = ["#2f6fd6", "#e07020", "#2e8b57", "#8e44ad", "#c0392b", "#159a9c", "#b8860b", "#6c3fc4"];

/** Intervals grouped by deployment, in the order the server gave (by name). */
export function byDeployment(intervals: readonly ServingInterval[]): Map<string, ServingInterval[]> {
  const out = new Map<string, ServingInterval[]>();
  for (const i of intervals) out.set(i.deployment, [...(out.get(i.deployment) ?? []), i]);
  return out;
}

export function DeploymentsView({ asOf }: { asOf: string | null }) {
  const data = useAsync((signal) => servingHistory(asOf, signal), [asOf]);
  useEffect(() => {
    if (data.data) markReady("deployments", { intervals: data.data.length });
  }, [data.data]);
  return (
    <section aria-labelledby="deployments-title">
      <h1 id="deployments-title">Deployments</h1>
      <AsOfPicker asOf={asOf} what="the deployments" onChange={(t) => navigate({ name: "deployments", asOf: t })} />
      {data.error ? (
        <ErrorBox what="deployments" error={data.error} retry={data.retry} />
      ) : !data.data ? (
        <Loading what="deployments" />
      ) : data.data.length === 0 ? (
        <p class="muted">No deployment has served a model version{asOf ? " by then" : ""}. Record one with <code>POST /api/cairn/v1/deployments/&lt;name&gt;</code>.</p>
      ) : (
        <Timeline intervals={data.data} asOf={asOf} />
      )}
    </section>
  );
}

function Timeline({ intervals, asOf }: { intervals: ServingInterval[]; asOf: string | null }) {
  const end = asOf ? Date.parse(asOf) : Date.now();
  const start = Math.min(...intervals.map((i) => i.valid_from ?? i.recorded_at));
  const span = Math.max(1, end - start);
  const groups = useMemo(() => byDeployment(intervals), [intervals]);
  const colors = new Map<string, string>();
  for (const i of intervals) if (!colors.has(i.model_version)) colors.set(i.model_version, PALETTE[colors.size % PALETTE.length]!);
  return (
    <>
      <p class="muted">
        From {formatTime(start)} to {asOf ? formatTime(end) : "now"}.
      </p>
      {[...groups].map(([name, list]) => (
        <section class="card deployment" key={name} data-deployment={name} aria-labelledby={`dep-${name}`}>
          <h2 id={`dep-${name}`}>
            <a href={lineageHref(`deployment:${name}`, asOf, { up: 4, down: 0 })}>{name}</a>
          </h2>
          <div class="deploy-bars" aria-hidden="true">
            {list.map((i, k) => {
              const from = i.valid_from ?? i.recorded_at;
              const to = i.valid_to ?? end;
              const mv = modelVersionOf(i.model_version);
              const style = { left: `${((from - start) / span) * 100}%`, width: `${Math.max(0.3, ((to - from) / span) * 100)}%`, background: colors.get(i.model_version) };
              // A version the user may not read is drawn where it served, unnamed and unlinked.
              if (isRedacted(i.model_version)) {
                return (
                  <span key={k} class="deploy-bar redacted-bar" title={`redacted model version: ${formatTime(from)} – ${i.valid_to ? formatTime(i.valid_to) : "serving"}`} style={style}>
                    <LockIcon />
                  </span>
                );
              }
              return (
                <a
                  key={k}
                  class="deploy-bar"
                  href={mv ? versionHref(mv[0], mv[1], asOf) : lineageHref(i.model_version, asOf)}
                  title={`${i.model_version}: ${formatTime(from)} – ${i.valid_to ? formatTime(i.valid_to) : "serving"}`}
                  style={style}
                >
                  {mv ? `v${mv[1]}` : i.model_version}
                </a>
              );
            })}
          </div>
          <div class="table-box">
            <table class="data-table">
              <thead>
                <tr>
                  <th scope="col">Model version</th>
                  <th scope="col">From</th>
                  <th scope="col">To</th>
                  <th scope="col">For</th>
                </tr>
              </thead>
              <tbody>
                {list.map((i, k) => {
                  const mv = modelVersionOf(i.model_version);
                  const from = i.valid_from ?? i.recorded_at;
                  return (
                    <tr key={k}>
                      <td>{isRedacted(i.model_version) ? <Redacted kind="model-version" /> : mv ? <a href={versionHref(mv[0], mv[1], asOf)}>{i.model_version}</a> : i.model_version}</td>
                      <td>{formatTime(from)}</td>
                      <td>{i.valid_to ? formatTime(i.valid_to) : <strong>serving</strong>}</td>
                      <td>{formatDuration((i.valid_to ?? end) - from)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </>
  );
}
