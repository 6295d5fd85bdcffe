// One model version: its record, pinned files with digests, source run and logged model, the
// lineage completeness, the promotion policy's verdict rule by rule (facts present and
// missing), and the attestations that can cover it (checked against this version's digest).

import { useEffect, useState } from "preact/hooks";
import { ApiError } from "../../api/client";
import { completeness, lineageNode, versionFiles, versionPolicy, type PolicyVerdict, type VersionFiles } from "../../api/governance";
import * as mlflow from "../../api/mlflow";
import * as registry from "../../api/registry";
import { Markdown } from "../../components/Markdown";
import { Redacted } from "../../components/Redacted";
import { ErrorBox, Guard, Loading } from "../../components/Status";
import { formatBytes, formatTime } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { lineageHref, modelHref } from "../../state/gov";
import { runHref } from "../../state/route";
import { AsOfPicker, Digest, Met } from "../gov/AsOf";
import { AttestationCheck } from "./AttestationCheck";

export function VersionView({ model, version, asOf }: { model: string; version: string; asOf: string | null }) {
  const state = useAsync((signal) => registry.getVersion(model, version, signal), [model, version]);
  return (
    <Guard what="Model version" id={`${model} v${version}`} state={state}>
      {(record) => <VersionPage record={record} asOf={asOf} />}
    </Guard>
  );
}

function VersionPage({ record, asOf }: { record: registry.VersionRecord; asOf: string | null }) {
  const name = record.name;
  const node = `model-version:${name}/${record.version}`;
  const files = useAsync((signal) => versionFiles(name, record.version, signal), [name, record.version]);
  const policy = useAsync((signal) => versionPolicy(name, record.version, signal), [name, record.version]);
  const check = useAsync((signal) => completeness(node, asOf, signal), [node, asOf]);
  const lineage = useAsync((signal) => lineageNode(node, asOf, signal).catch(() => null), [node, asOf]);
  // The source run may be in an experiment the user may not read (403): shown as redacted.
  const run = useAsync(
    (signal) =>
      record.run_id
        ? mlflow.getRun(record.run_id, signal).catch((e: unknown) => (e instanceof ApiError && e.status === 403 ? ("denied" as const) : null))
        : Promise.resolve(null),
    [record.run_id],
  );
  useEffect(() => {
    const settled = (s: { data: unknown; error: unknown }) => s.data !== undefined || s.error !== undefined;
    if (files.data && settled(policy) && settled(check) && run.data !== undefined && lineage.data !== undefined) markReady("version", { files: files.data.files.length });
  }, [files.data, policy.data, policy.error, check.data, check.error, run.data, lineage.data]);
  useEffect(() => {
    if (policy.error && !(policy.error instanceof ApiError)) console.warn(policy.error);
  }, [policy.error]);
  const previous = Number(record.version) > 1 ? `model-version:${name}/${Number(record.version) - 1}` : null;
  return (
    <section aria-labelledby="version-title">
      <p class="muted">
        <a href="#/models">Registered models</a> / <a href={modelHref(name, asOf)}>{name}</a> /
      </p>
      <h1 id="version-title">
        {name} v{record.version}
      </h1>
      <AsOfPicker asOf={asOf} what="this version's lineage" onChange={(t) => navigate({ name: "modelVersion", model: name, version: record.version, asOf: t })} />
      <div class="run-grid">
        <section class="card" aria-labelledby="version-about">
          <h2 id="version-about">Version</h2>
          <dl class="facts">
            <dt>Status</dt>
            <dd>{record.status}</dd>
            <dt>Stage</dt>
            <dd>{record.current_stage ?? "None"}</dd>
            <dt>Aliases</dt>
            <dd>{(record.aliases ?? []).length ? (record.aliases ?? []).map((a) => <span class="tag" key={a}>@{a}</span>) : <span class="muted">none</span>}</dd>
            <dt>Created</dt>
            <dd>
              {formatTime(record.creation_timestamp)} {record.user_id && <span class="muted">by {record.user_id}</span>}
            </dd>
            <dt>Source</dt>
            <dd>
              {/* A source under a run the user may not read names that run: its id is withheld. */}
              <code>{run.data === "denied" && record.run_id ? (record.source ?? "").split(record.run_id).join("…") : record.source}</code>
            </dd>
            <dt>Source run</dt>
            <dd>
              {record.run_id ? (
                run.data === "denied" ? (
                  <Redacted kind="run" />
                ) : run.data ? (
                  <a href={runHref(run.data.info.experiment_id, record.run_id)}>{run.data.info.run_name || record.run_id}</a>
                ) : (
                  <code>{record.run_id}</code>
                )
              ) : (
                <span class="muted">none</span>
              )}
            </dd>
            <dt>Logged model</dt>
            <dd>
              {/* A logged model lives in its run's experiment, hidden with the run. */}
              {!record.model_id ? <span class="muted">none</span> : run.data === "denied" ? <Redacted kind="model" /> : <code>{record.model_id}</code>}
            </dd>
            <dt>Files digest</dt>
            <dd>
              <Digest value={lineage.data?.digest} />
            </dd>
            <dt>Lineage</dt>
            <dd>
              {check.data ? (
                <>
                  <Met ok={check.data.complete} />
                  {!check.data.complete && <span class="muted"> lacks {check.data.missing.join(", ")}</span>}
                </>
              ) : check.error ? (
                <span class="muted">unknown</span>
              ) : (
                "…"
              )}{" "}
              · <a href={lineageHref(node, asOf)}>explore</a>
              {previous && (
                <>
                  {" "}
                  · <a href={lineageHref(node, asOf, { diff: previous, down: 0 })}>compare with v{Number(record.version) - 1}</a>
                </>
              )}
            </dd>
            <dt>Tags</dt>
            <dd>
              {(record.tags ?? []).length
                ? (record.tags ?? []).map((t) => (
                    <span class="tag" key={t.key}>
                      {t.key}={t.value}
                    </span>
                  ))
                : <span class="muted">none</span>}
            </dd>
          </dl>
          {record.description && <Markdown text={record.description} />}
        </section>
        <section class="card" aria-labelledby="version-policy">
          <h2 id="version-policy">Promotion policy</h2>
          {policy.error ? <ErrorBox what="the policy verdict" error={policy.error} retry={policy.retry} /> : !policy.data ? <Loading what="policy" /> : <PolicyCard verdict={policy.data} />}
        </section>
      </div>
      <section class="card spaced" aria-labelledby="version-files">
        <h2 id="version-files">Pinned files</h2>
        {files.error ? <ErrorBox what="the files" error={files.error} retry={files.retry} /> : !files.data ? <Loading what="files" /> : <FilesTable files={files.data} />}
      </section>
      <section class="card spaced" aria-labelledby="version-attest">
        <h2 id="version-attest">Attestations</h2>
        <AttestationCheck node={node} digest={lineage.data?.digest ?? null} asOf={asOf} />
      </section>
    </section>
  );
}

function PolicyCard({ verdict }: { verdict: PolicyVerdict }) {
  if (!verdict.policy) return <p class="muted">The server runs without a promotion policy (<code>--policy-file</code>): every promotion is allowed.</p>;
  if (verdict.rules.length === 0) return <p class="muted">No rule of the policy governs this model.</p>;
  return (
    <div class="policy-rules">
      {verdict.rules.map((rule) => {
        const targets = [...rule.stages.map((s) => `stage ${s}`), ...rule.aliases.map((a) => `alias @${a}`)];
        return (
          <div class="policy-rule" key={rule.rule}>
            <h3>
              {rule.rule} <Met ok={rule.passes} yes="passes" no="would refuse" />
            </h3>
            <p class="muted">Governs {targets.length ? targets.join(", ") : "every promotion"}.</p>
            <ul class="check-list">
              {rule.checks.map((c, i) => (
                <li key={i} class={c.met ? "met" : "missing"} data-fact={c.fact}>
                  <code>{c.fact}</code> {c.message} {c.redacted && <Redacted kind="run" />}
                </li>
              ))}
            </ul>
          </div>
        );
      })}
    </div>
  );
}

function FilesTable({ files }: { files: VersionFiles }) {
  const [q, setQ] = useState("");
  if (!files.pin_id) return <p class="muted">This version was registered without files in Cairn, so nothing is pinned.</p>;
  const shown = files.files.filter((f) => !q || f.path.toLowerCase().includes(q.toLowerCase()));
  return (
    <>
      <p class="muted">
        {files.files.length === 1 ? "1 file" : `${files.files.length} files`} pinned at registration ({files.algorithm}); later changes to the run cannot change them.
      </p>
      {files.files.length > 8 && (
        <label>
          Filter files
          <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </label>
      )}
      <div class="table-box">
        <table class="data-table files-table">
          <thead>
            <tr>
              <th scope="col">Path</th>
              <th scope="col">Size</th>
              <th scope="col">Digest</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((f) => (
              <tr key={f.path}>
                <td>{f.path}</td>
                <td>{formatBytes(f.size)}</td>
                <td>
                  <code class="digest">{f.digest}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
