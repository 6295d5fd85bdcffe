// The column picker: which params, metrics and tags the runs table shows.

import { useState } from "preact/hooks";
import type { KnownKeys } from "../../state/columns";

export function ColumnPicker({ keys, chosen, onChange }: { keys: KnownKeys; chosen: string[]; onChange: (ids: string[]) => void }) {
  const [open, setOpen] = useState(false);
  const [search, setSearch] = useState("");
  const toggle = (id: string, on: boolean) => onChange(on ? [...chosen, id] : chosen.filter((c) => c !== id));
  const group = (title: string, kind: "params" | "metrics" | "tags", list: string[]) => {
    const shown = list.filter((k) => k.toLowerCase().includes(search.toLowerCase()));
    if (!shown.length) return null;
    return (
      <fieldset>
        <legend>{title}</legend>
        {shown.map((key) => {
          const id = `${kind}.${key}`;
          return (
            <label key={id} class="checkbox">
              <input type="checkbox" checked={chosen.includes(id)} onChange={(e) => toggle(id, e.currentTarget.checked)} />
              {key}
            </label>
          );
        })}
      </fieldset>
    );
  };
  return (
    <div class="column-picker">
      <button type="button" aria-expanded={open} aria-controls="column-panel" onClick={() => setOpen(!open)}>
        Columns ({chosen.length})
      </button>
      {open && (
        <div id="column-panel" class="panel" role="dialog" aria-label="Choose columns" onKeyDown={(e) => e.key === "Escape" && setOpen(false)}>
          <label>
            Find a key
            <input type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
          </label>
          {group("Metrics", "metrics", keys.metrics)}
          {group("Parameters", "params", keys.params)}
          {group("Tags", "tags", keys.tags)}
          {chosen.length > 0 && (
            <button type="button" onClick={() => onChange([])}>
              Clear all
            </button>
          )}
        </div>
      )}
    </div>
  );
}
