// Lineage health: the share of model versions with complete lineage and of predictions made
// without it, now and at a few instants before (each a health question "as of" then), the
// model versions that are incomplete with what each lacks, and flagged predictions by
// deployment.

import { useEffect } from "preact/hooks";
import { firstAuditTime, lineageHealth, type LineageHealth } from "../../api/governance";
import { ApiError } from "../../api/client";
import { Redacted } from "../../components/Redacted";
import { ErrorBox, Loading } from "../../components/Status";
import { isRedacted } from "../../lineage/graph";
import { formatTime } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { useSession } from "../../session/session";
import { lineageHref, modelVersionOf, versionHref } from "../../state/gov";
import { mayAudit } from "../audit/AuditView";
import { AsOfPicker } from "../gov/AsOf";

/** Points on the "over time" chart: the instants health is asked at. */
const POINTS = 8;

/** How far back the chart reaches when the start of the log cannot be read (not an admin). */
const FALLBACK_SPAN_MS = 30 * 24 * 3600 * 1000;

/** `count` instants from `start` to `end`, evenly spaced, the last one `end`. */
export function instants(start: number, end: number, count: number): number[] {
  if (count < 2 || end <= start) return [end];
  return Array.from({ length: count }, (_, i) => Math.round(start + ((end - start) * (i + 1)) / count));
}

interface Loaded {
  now: LineageHealth;
  series: { at: number; health: LineageHealth }[];
  /** Whether the chart starts at the log's first event (else the last 30 days). */
  fromFirstEvent: boolean;
}

async function load(asOf: string | null, readsAudit: boolean, signal: AbortSignal): Promise<Loaded> {
  const end = asOf ? Date.parse(asOf) : Date.now();
  const now = await lineageHealth(asOf, signal);
  // The log's first event dates the start of everything Cairn knows. Reading the log is for
  // admins, so anyone else gets the last 30 days without asking (and a 403 all the same if the
  // session's view of who is an admin is out of date).
  const first = !readsAudit
    ? undefined
    : await firstAuditTime(signal).catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 403) return undefined;
        throw e;
      });
  const start = first === undefined ? end - FALLBACK_SPAN_MS : (first ?? end);
  const series = await Promise.all(instants(start, end, POINTS).map(async (at) => ({ at, health: at === end ? now : await lineageHealth(new Date(at).toISOString(), signal) })));
  return { now, series, fromFirstEvent: first !== undefined };
}

export function HealthView({ asOf }: { asOf: string | null }) {
  const readsAudit = mayAudit(useSession());
  const data = useAsync((signal) => load(asOf, readsAudit, signal), [asOf, readsAudit]);
  useEffect(() => {
    if (data.data) markReady("health", { incomplete: data.data.now.incomplete.length });
  }, [data.data]);
  return (
    <section aria-labelledby="health-title">
      <h1 id="health-title">Lineage health</h1>
      <AsOfPicker asOf={asOf} what="lineage health" onChange={(t) => navigate({ name: "health", asOf: t })} />
      {data.error ? <ErrorBox what="lineage health" error={data.error} retry={data.retry} /> : !data.data ? <Loading what="lineage health" /> : <Health data={data.data} asOf={asOf} />}
    </section>
  );
}

const pct = (r: number) => `${(r * 100).toFixed(1)}%`;

/** A share of `of` things, or a dash when there is nothing to take a share of (the server says 1.0 for 0 of 0). */
const share = (r: number, of: number) => (of === 0 ? "—" : pct(r));

function Health({ data, asOf }: { data: Loaded; asOf: string | null }) {
  const h = data.now;
  return (
    <>
      <div class="stat-row">
        <div class="stat">
          <span class="muted">Model versions with complete lineage</span>
          <strong class="stat-versions">{share(h.model_versions_complete_ratio, h.model_versions)}</strong>
          {h.model_versions_complete} of {h.model_versions}
        </div>
        <div class="stat">
          <span class="muted">Predictions without complete lineage</span>
          <strong class="stat-predictions">{share(h.predictions_flagged_ratio, h.predictions)}</strong>
          {h.predictions_flagged} of {h.predictions}
        </div>
      </div>
      <h2>Over time</h2>
      <RatioChart series={data.series} />
      {!data.fromFirstEvent && <p class="muted">The last 30 days: when the log began is in the audit log, which only admins may read.</p>}
      <h2>Incomplete model versions</h2>
      {h.model_versions === 0 ? (
        <p class="muted">No model versions{asOf ? " at this instant" : " yet"}.</p>
      ) : h.incomplete.length === 0 ? (
        <p class="muted">Every model version has complete lineage.</p>
      ) : (
        <div class="table-box">
          <table class="data-table incomplete-table">
            <thead>
              <tr>
                <th scope="col">Model version</th>
                <th scope="col">Lacks</th>
              </tr>
            </thead>
            <tbody>
              {h.incomplete.map((v) => {
                const mv = modelVersionOf(v.model_version);
                const hidden = isRedacted(v.model_version);
                return (
                  <tr key={v.model_version}>
                    <td>{hidden ? <Redacted kind="model-version" /> : mv ? <a href={versionHref(mv[0], mv[1], asOf)}>{v.model_version}</a> : v.model_version}</td>
                    <td>
                      {v.missing.map((m) => (
                        <span class="tag" key={m}>
                          {m}
                        </span>
                      ))}{" "}
                      {!hidden && <a href={lineageHref(v.model_version, asOf)}>lineage</a>}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <h2>Flagged predictions by deployment</h2>
      {h.by_deployment.length === 0 ? (
        <p class="muted">No predictions recorded.</p>
      ) : (
        <div class="table-box">
          <table class="data-table by-deployment-table">
            <thead>
              <tr>
                <th scope="col">Deployment</th>
                <th scope="col">Predictions</th>
                <th scope="col">Flagged</th>
                <th scope="col">Share flagged</th>
              </tr>
            </thead>
            <tbody>
              {h.by_deployment.map((d) => (
                <tr key={d.deployment ?? ""}>
                  <td>{d.deployment ? <a href={lineageHref(`deployment:${d.deployment}`, asOf, { up: 4, down: 0 })}>{d.deployment}</a> : <span class="muted">none (by model version)</span>}</td>
                  <td>{d.predictions}</td>
                  <td>{d.flagged}</td>
                  <td>{pct(d.predictions ? d.flagged / d.predictions : 0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function RatioChart({ series }: { series: Loaded["series"] }) {
  const W = 720;
  const H = 200;
  const pad = { l: 44, r: 12, t: 10, b: 36 };
  const t0 = series[0]?.at ?? 0;
  const t1 = series[series.length - 1]?.at ?? 1;
  const x = (t: number) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - pad.l - pad.r);
  const y = (r: number) => pad.t + (1 - r) * (H - pad.t - pad.b);
  // A line runs only through instants where its share means something: before the first model
  // version (or prediction) there is nothing to be complete, so the line starts later rather
  // than claiming 100% of nothing.
  const line = (f: (h: LineageHealth) => number, defined: (h: LineageHealth) => boolean) => {
    let pen = "M";
    return series
      .map((p) => {
        if (!defined(p.health)) {
          pen = "M";
          return "";
        }
        const step = `${pen}${x(p.at).toFixed(1)},${y(f(p.health)).toFixed(1)}`;
        pen = "L";
        return step;
      })
      .join(" ");
  };
  const hasVersions = (h: LineageHealth) => h.model_versions > 0;
  return (
    <figure class="health-chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label="Lineage completeness over time">
        {[0, 0.5, 1].map((r) => (
          <g key={r}>
            <line class="axis" x1={pad.l} x2={W - pad.r} y1={y(r)} y2={y(r)} />
            <text x={pad.l - 6} y={y(r) + 4} text-anchor="end">
              {r * 100}%
            </text>
          </g>
        ))}
        <path d={line((h) => h.model_versions_complete_ratio, hasVersions)} fill="none" stroke="#2e8b57" stroke-width="2" />
        <path d={line((h) => h.predictions_flagged_ratio, (h) => h.predictions > 0)} fill="none" stroke="#c0392b" stroke-width="2" stroke-dasharray="5 3" />
        {series.map((p) =>
          hasVersions(p.health) ? (
            <circle key={p.at} class="instant" cx={x(p.at)} cy={y(p.health.model_versions_complete_ratio)} r="3" fill="#2e8b57">
              <title>{`${p.health.model_versions_complete} of ${p.health.model_versions} complete, ${formatTime(p.at)}`}</title>
            </circle>
          ) : (
            <line key={p.at} class="instant no-versions" x1={x(p.at)} x2={x(p.at)} y1={y(0) - 4} y2={y(0) + 4} stroke="#999">
              <title>{`no model versions, ${formatTime(p.at)}`}</title>
            </line>
          ),
        )}
        <text x={pad.l} y={H - 8}>
          {formatTime(t0)}
        </text>
        <text x={W - pad.r} y={H - 8} text-anchor="end">
          {formatTime(t1)}
        </text>
      </svg>
      <figcaption class="muted">
        <span style={{ color: "#2e8b57" }}>━ model versions complete</span> · <span style={{ color: "#c0392b" }}>╍ predictions flagged</span>, at {series.length} {series.length === 1 ? "instant" : "instants"}
      </figcaption>
    </figure>
  );
}
