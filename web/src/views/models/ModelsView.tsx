// The registered models: search by name, latest versions, aliases and tags, paged. With an "as
// of" instant, each model on the page is replayed from its history: models that did not exist
// then are left out, and aliases and versions are the ones it had.

import { useEffect, useState } from "preact/hooks";
import { ApiError } from "../../api/client";
import { modelHistory } from "../../api/governance";
import * as registry from "../../api/registry";
import { ErrorBox, Loading } from "../../components/Status";
import { formatTime } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { navigate } from "../../lib/router";
import { useAsync } from "../../lib/useAsync";
import { modelHref, versionHref } from "../../state/gov";
import { replay, type RegistryThen } from "../../state/registry";
import { AsOfPicker } from "../gov/AsOf";

interface Row {
  model: registry.RegisteredModelFull;
  then: RegistryThen | null;
}

async function loadPage(search: string, asOf: string | null, token: string | undefined, signal: AbortSignal): Promise<{ rows: Row[]; next?: string }> {
  const page = await registry.searchModels(search, token, signal);
  const models = page.registered_models ?? [];
  if (!asOf) return { rows: models.map((model) => ({ model, then: null })), next: page.next_page_token };
  // A model created after the instant did not exist then; only older ones need their history.
  const at = Date.parse(asOf);
  const older = models.filter((m) => Number(m.creation_timestamp ?? 0) <= at);
  const rows = await Promise.all(
    older.map(async (model) => {
      try {
        return { model, then: replay(await modelHistory(model.name, asOf, signal)) };
      } catch (e) {
        // No history by then: the model did not exist yet.
        if (e instanceof ApiError && e.notFound) return { model, then: null as RegistryThen | null, absent: true };
        throw e;
      }
    }),
  );
  return { rows: rows.filter((r) => !("absent" in r) && r.then?.exists !== false), next: page.next_page_token };
}

export function ModelsView({ search, asOf }: { search: string; asOf: string | null }) {
  const [text, setText] = useState(search);
  const [more, setMore] = useState<Row[]>([]);
  const [token, setToken] = useState<string | undefined>(undefined);
  const first = useAsync((signal) => loadPage(search, asOf, undefined, signal), [search, asOf]);
  useEffect(() => {
    setMore([]);
    setToken(first.data?.next);
  }, [first.data]);
  useEffect(() => {
    if (first.data) markReady("models", { count: first.data.rows.length });
  }, [first.data]);
  const rows = [...(first.data?.rows ?? []), ...more];
  const loadMore = async () => {
    const page = await loadPage(search, asOf, token, new AbortController().signal);
    setMore((m) => [...m, ...page.rows]);
    setToken(page.next);
  };
  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title">Registered models</h1>
      <div class="toolbar">
        <form
          class="inline-form"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            navigate({ name: "models", search: text, asOf });
          }}
        >
          <label>
            Search models
            <input type="search" name="q" value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder="name contains…" />
          </label>
          <button type="submit">Search</button>
        </form>
      </div>
      <AsOfPicker asOf={asOf} what="the registry" onChange={(t) => navigate({ name: "models", search, asOf: t })} />
      {first.error ? (
        <ErrorBox what="models" error={first.error} retry={first.retry} />
      ) : !first.data ? (
        <Loading what="models" />
      ) : rows.length === 0 ? (
        <p class="muted">{search ? `No registered model's name contains “${search}”.` : asOf ? "No registered models then." : "No registered models yet."}</p>
      ) : (
        <div class="table-box">
          <table class="data-table models-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Latest versions</th>
                <th scope="col">Aliases</th>
                <th scope="col">Tags</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ model: m, then }) => {
                const aliases = then ? [...then.aliases].map(([alias, version]) => ({ alias, version: String(version) })) : (m.aliases ?? []);
                const latest = then
                  ? [...then.versions.values()].sort((a, b) => b.version - a.version).slice(0, 3).map((v) => ({ version: String(v.version), stage: v.stage }))
                  : (m.latest_versions ?? []).map((v) => ({ version: v.version, stage: v.current_stage ?? "None" }));
                return (
                  <tr key={m.name}>
                    <td>
                      <a href={modelHref(m.name, asOf)}>{m.name}</a>
                    </td>
                    <td>
                      {latest.map((v) => (
                        <a class="tag" key={v.version} href={versionHref(m.name, v.version, asOf)}>
                          v{v.version}
                          {v.stage !== "None" ? ` · ${v.stage}` : ""}
                        </a>
                      ))}
                    </td>
                    <td>
                      {aliases.map((a) => (
                        <span class="tag" key={a.alias}>
                          @{a.alias} → v{a.version}
                        </span>
                      ))}
                    </td>
                    <td>
                      {(m.tags ?? []).map((t) => (
                        <span class="tag" key={t.key}>
                          {t.key}={t.value}
                        </span>
                      ))}
                    </td>
                    <td>{formatTime(m.last_updated_timestamp)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {token && (
        <button type="button" onClick={loadMore}>
          Load more models
        </button>
      )}
    </section>
  );
}
