// A run's tags: searchable, each value editable in place, removable, and new ones added.
// System tags (`mlflow.*`) are listed after the user's own. Without EDIT on the run's
// experiment (`editable` false) the tags are only listed.

import { useState } from "preact/hooks";
import * as mlflow from "../../api/mlflow";
import type { KeyValue } from "../../api/types";
import { ErrorBox } from "../../components/Status";

export function TagEditor({ runId, tags, onChanged, editable }: { runId: string; tags: KeyValue[]; onChanged: () => void; editable: boolean }) {
  const [q, setQ] = useState("");
  const [editing, setEditing] = useState<{ key: string; value: string } | null>(null);
  const [adding, setAdding] = useState({ key: "", value: "" });
  const [error, setError] = useState<unknown>(null);
  const sorted = [...tags].filter((t) => t.key !== "mlflow.note.content").sort((a, b) => Number(a.key.startsWith("mlflow.")) - Number(b.key.startsWith("mlflow.")) || a.key.localeCompare(b.key));
  const shown = sorted.filter((t) => !q || t.key.toLowerCase().includes(q.toLowerCase()) || t.value.toLowerCase().includes(q.toLowerCase()));
  const act = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      setEditing(null);
      onChanged();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <label>
        Search tags
        <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
      </label>
      {error ? <ErrorBox what="the tag change" error={error} action /> : null}
      <table class="data-table kv">
        <tbody>
          {shown.map((t) => (
            <tr key={t.key}>
              <td>{t.key}</td>
              <td>
                {editing?.key === t.key ? (
                  <form
                    class="inline-form"
                    onSubmit={(e) => {
                      e.preventDefault();
                      void act(() => mlflow.setRunTag(runId, t.key, editing.value));
                    }}
                  >
                    <label class="visually-hidden" for={`tag-${t.key}`}>
                      Value of {t.key}
                    </label>
                    <input id={`tag-${t.key}`} value={editing.value} onInput={(e) => setEditing({ key: t.key, value: e.currentTarget.value })} />
                    <button type="submit">Save</button>
                    <button type="button" onClick={() => setEditing(null)}>
                      Cancel
                    </button>
                  </form>
                ) : (
                  <>
                    <span class="tag-value">{t.value}</span>{" "}
                    {editable && <><button type="button" aria-label={`Edit tag ${t.key}`} onClick={() => setEditing({ key: t.key, value: t.value })}>
                      Edit
                    </button>{" "}
                    <button type="button" class="danger" aria-label={`Delete tag ${t.key}`} onClick={() => void act(() => mlflow.deleteRunTag(runId, t.key))}>
                      Delete
                    </button></>}
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {editable && <form
        class="inline-form tag-add"
        onSubmit={(e) => {
          e.preventDefault();
          if (adding.key.trim()) void act(() => mlflow.setRunTag(runId, adding.key.trim(), adding.value)).then(() => setAdding({ key: "", value: "" }));
        }}
      >
        <label>
          New tag
          <input value={adding.key} placeholder="key" onInput={(e) => setAdding({ ...adding, key: e.currentTarget.value })} />
        </label>
        <label>
          Value
          <input value={adding.value} placeholder="value" onInput={(e) => setAdding({ ...adding, value: e.currentTarget.value })} />
        </label>
        <button type="submit" disabled={!adding.key.trim()}>
          Add tag
        </button>
      </form>}
    </>
  );
}
