// Formatting of times, durations and MLflow's wire numbers for display.

import type { Int64, WireNumber } from "../api/types";

/** A wire number as a JS number: MLflow writes NaN and the infinities as strings. */
export function toNumber(value: WireNumber | null | undefined): number {
  if (value === null || value === undefined) return NaN;
  if (typeof value === "number") return value;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  return Number(value);
}

export function toMillis(value: Int64 | undefined): number | null {
  if (value === undefined || value === null || value === "") return null;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : null;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** `2026-12-02 07:51:03`, local time. */
export function formatTime(value: Int64 | undefined): string {
  const ms = toMillis(value);
  if (ms === null) return "";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `1h 2m`, `3.4s`, `250ms`. */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function runDuration(start: Int64 | undefined, end: Int64 | undefined): number | null {
  const s = toMillis(start);
  const e = toMillis(end);
  return s !== null && e !== null ? e - s : null;
}

/** A metric value with up to 5 significant digits; NaN and infinities spelled out. */
export function formatValue(value: WireNumber | undefined): string {
  if (value === undefined) return "";
  const n = toNumber(value);
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity || n >= 1.7976931348623157e308) return "∞";
  if (n === -Infinity || n <= -1.7976931348623157e308) return "-∞";
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n);
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e9)) return n.toExponential(4);
  return String(Number(n.toPrecision(5)));
}

/** A number with 3 significant digits, for cells that show several numbers side by side. */
export function formatShort(n: number): string {
  if (!Number.isFinite(n)) return formatValue(n);
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return n.toExponential(2);
  return String(Number(n.toPrecision(3)));
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function tagValue(tags: { key: string; value: string }[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.key === key)?.value;
}
