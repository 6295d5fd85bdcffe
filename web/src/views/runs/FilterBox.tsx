// The filter box: MLflow's filter syntax, applied on Enter, with completion of the key under
// the cursor (`metrics.`, `params.`, `tags.`, `attributes.`) and the server's error shown
// right below when the filter is wrong.

import { useEffect, useMemo, useState } from "preact/hooks";
import type { KnownKeys } from "../../state/columns";

const ATTRIBUTES = ["run_name", "status", "start_time", "end_time", "user_id", "run_id", "artifact_uri"];

/** The word being typed at `caret` and where it starts. */
export function wordAt(text: string, caret: number): { start: number; word: string } {
  let start = caret;
  while (start > 0 && /[\w.`-]/.test(text[start - 1]!)) start--;
  return { start, word: text.slice(start, caret) };
}

/** Completions for a partly typed key, as full `kind.key` terms (keys quoted when needed). */
export function completions(word: string, keys: KnownKeys): string[] {
  const dot = word.indexOf(".");
  const term = (kind: string, key: string) => (/^[\w]+$/.test(key) ? `${kind}.${key}` : `${kind}.\`${key}\``);
  if (dot < 0) {
    const kinds = ["metrics.", "params.", "tags.", "attributes."];
    return word ? kinds.filter((k) => k.startsWith(word.toLowerCase()) && k !== word) : [];
  }
  const kind = word.slice(0, dot).toLowerCase();
  const partial = word.slice(dot + 1).replace(/`/g, "").toLowerCase();
  const pool = kind === "metrics" || kind === "metric" ? keys.metrics : kind === "params" || kind === "param" ? keys.params : kind === "tags" || kind === "tag" ? keys.tags : kind === "attributes" || kind === "attribute" ? ATTRIBUTES : [];
  const canonical = kind.endsWith("s") ? kind : kind + "s";
  return pool.filter((k) => k.toLowerCase().startsWith(partial)).slice(0, 20).map((k) => term(canonical, k));
}

export function FilterBox({ value, error, keys, onApply }: { value: string; error: string | null; keys: KnownKeys; onApply: (filter: string) => void }) {
  const [text, setText] = useState(value);
  const [caret, setCaret] = useState(0);
  const [active, setActive] = useState(0);
  const [open, setOpen] = useState(false);
  useEffect(() => setText(value), [value]);

  const { start, word } = wordAt(text, caret);
  const options = useMemo(() => (open ? completions(word, keys) : []), [open, word, keys]);

  const accept = (option: string) => {
    const next = text.slice(0, start) + option + text.slice(caret);
    setText(next);
    setCaret(start + option.length);
    setOpen(option.endsWith("."));
  };

  return (
    <div class="filter-box">
      <label for="runs-filter">Filter runs (MLflow syntax, Enter to apply)</label>
      <input
        id="runs-filter"
        type="search"
        role="combobox"
        list={undefined}
        aria-expanded={options.length > 0}
        aria-controls="filter-suggestions"
        aria-autocomplete="list"
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? "filter-error" : undefined}
        autocomplete="off"
        spellcheck={false}
        value={text}
        placeholder="metrics.loss < 0.5 and params.optimizer = 'adam'"
        onInput={(e) => {
          setText(e.currentTarget.value);
          setCaret(e.currentTarget.selectionStart ?? e.currentTarget.value.length);
          setActive(0);
          setOpen(true);
        }}
        onKeyUp={(e) => setCaret(e.currentTarget.selectionStart ?? 0)}
        onClick={(e) => setCaret(e.currentTarget.selectionStart ?? 0)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          if (options.length && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
            e.preventDefault();
            setActive((a) => (a + (e.key === "ArrowDown" ? 1 : options.length - 1)) % options.length);
          } else if (options.length && (e.key === "Tab" || (e.key === "Enter" && open))) {
            e.preventDefault();
            accept(options[active]!);
          } else if (e.key === "Escape" && options.length) {
            // Escape closes the suggestions; without this a search input would also clear itself.
            e.preventDefault();
            setOpen(false);
          } else if (e.key === "Enter") {
            e.preventDefault();
            onApply(text.trim());
          }
        }}
      />
      {options.length > 0 && (
        <ul id="filter-suggestions" class="suggestions" role="listbox" aria-label="Key suggestions">
          {options.map((o, i) => (
            <li
              key={o}
              role="option"
              aria-selected={i === active}
              onMouseDown={(e) => {
                e.preventDefault();
                accept(o);
              }}
            >
              {o}
            </li>
          ))}
        </ul>
      )}
      {error && (
        <div id="filter-error" class="filter-error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}
