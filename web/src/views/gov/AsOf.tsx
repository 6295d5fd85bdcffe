// The "as of" picker: a date and time (local, to the second) whose instant goes into the
// address as `asOf` (UTC, RFC 3339), and a banner saying which past the page shows.

import { useEffect, useState } from "preact/hooks";

const pad = (n: number) => String(n).padStart(2, "0");

/** `2026-12-02T17:35:20` in local time, as `<input type="datetime-local">` wants it. */
export function toLocalInput(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fromLocalInput(text: string): string | null {
  if (!text) return null;
  const t = new Date(text).getTime();
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}

export function AsOfPicker({ asOf, onChange, what }: { asOf: string | null; onChange: (asOf: string | null) => void; what: string }) {
  const [text, setText] = useState(toLocalInput(asOf));
  useEffect(() => setText(toLocalInput(asOf)), [asOf]);
  return (
    <div class="as-of">
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          onChange(fromLocalInput(text));
        }}
      >
        <label>
          As of
          <input type="datetime-local" step="1" name="as-of" value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <button type="submit">Show</button>
        {asOf && (
          <button type="button" onClick={() => onChange(null)}>
            Now
          </button>
        )}
      </form>
      {asOf && (
        <p class="as-of-banner" role="status">
          Showing {what} as it stood at <time dateTime={asOf}>{new Date(asOf).toLocaleString()}</time> (<code>{asOf}</code>).
        </p>
      )}
    </div>
  );
}

/** A digest shortened for tables, whole in its title and for copying. */
export function Digest({ value }: { value: string | null | undefined }) {
  if (!value) return <span class="muted">none</span>;
  return (
    <code class="digest" title={value}>
      {value.length > 16 ? `${value.slice(0, 12)}…` : value}
    </code>
  );
}

export function Met({ ok, yes = "complete", no = "incomplete" }: { ok: boolean; yes?: string; no?: string }) {
  return <span class={ok ? "verdict ok" : "verdict bad"}>{ok ? `✓ ${yes}` : `✗ ${no}`}</span>;
}
