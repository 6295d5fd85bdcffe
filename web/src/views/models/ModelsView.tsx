// The registered models, with their latest versions and aliases: enough for a link from the
// run page or the mlflow client to land somewhere useful. The registry's own views come later.

import * as mlflow from "../../api/mlflow";
import { Guard } from "../../components/Status";
import { formatTime } from "../../lib/format";
import { markReady } from "../../lib/marks";
import { useAsync } from "../../lib/useAsync";
import { useEffect } from "preact/hooks";

export function ModelsView() {
  const models = useAsync(() => mlflow.searchRegisteredModels(), []);
  useEffect(() => {
    if (models.data) markReady("models", { count: models.data.length });
  }, [models.data]);
  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title">Registered models</h1>
      <Guard what="Models" state={models}>
        {(list) =>
          list.length === 0 ? (
            <p class="muted">No registered models yet.</p>
          ) : (
            <table class="data-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Latest versions</th>
                  <th scope="col">Aliases</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {list.map((m) => (
                  <tr key={m.name}>
                    <td>{m.name}</td>
                    <td>{(m.latest_versions ?? []).map((v) => `v${v.version}`).join(", ")}</td>
                    <td>{(m.aliases ?? []).map((a) => <span class="tag" key={a.alias}>@{a.alias} → v{a.version}</span>)}</td>
                    <td>{formatTime(m.last_updated_timestamp)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Guard>
    </section>
  );
}
