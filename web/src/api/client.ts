// The one place the UI talks to the server. Every request goes through `send`, which adds the
// signed-in user's credentials (see `credentials.ts`) and marks the request as a script's, so a
// 401 comes back without the Basic challenge that would raise the browser's own dialog.
// Requests are same-origin and JSON bodies carry `Content-Type: application/json`, which the
// server's CSRF guard expects.

import { authorizationHeader, signedOut } from "./credentials";

/** An error answered by the server (MLflow's `{error_code, message}`) or a failed connection. */
export class ApiError extends Error {
  constructor(
    /** HTTP status, or 0 when the server could not be reached. */
    readonly status: number,
    /** MLflow's error code (`INVALID_PARAMETER_VALUE`, `RESOURCE_DOES_NOT_EXIST`, ...), or `NETWORK_ERROR`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  get notFound(): boolean {
    return this.status === 404 || this.code === "RESOURCE_DOES_NOT_EXIST";
  }

  /** The server refused the caller (403 `PERMISSION_DENIED`, or a token's scope). */
  get denied(): boolean {
    return this.status === 403;
  }
}

export type Query = Record<string, string | number | boolean | undefined | readonly (string | number)[]>;

/** `path?query`, with repeated keys for arrays and undefined values left out. */
export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) params.append(key, String(v));
    else params.append(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** The headers every request carries: the script marker and, when signed in, the credentials. */
export function baseHeaders(extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { "X-Requested-With": "XMLHttpRequest", ...extra };
  const authorization = authorizationHeader();
  if (authorization) headers["Authorization"] = authorization;
  return headers;
}

async function send(method: string, url: string, body?: unknown, signal?: AbortSignal, headers?: Record<string, string>): Promise<Response> {
  const init: RequestInit = { method, credentials: "same-origin", signal, headers: headers ?? baseHeaders({ Accept: "application/json" }) };
  if (body !== undefined) {
    init.headers = { ...init.headers, "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, "NETWORK_ERROR", `Could not reach the server (${method} ${url.split("?")[0]})`);
  }
  // Credentials that worked stopped working (a changed password, a revoked token): sign out,
  // so the app shows the sign-in page instead of a view full of errors.
  if (response.status === 401 && headers === undefined) signedOut(true);
  return response;
}

async function failure(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error_code?: string; message?: string };
    return new ApiError(response.status, body.error_code ?? `HTTP_${response.status}`, body.message ?? text);
  } catch {
    return new ApiError(response.status, `HTTP_${response.status}`, text || response.statusText);
  }
}

/** A JSON request; resolves to the parsed body, rejects with an `ApiError`. `headers`, when
 * given, replace the usual ones (signing in sends credentials that are not stored yet). */
export async function request<T>(method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE", url: string, body?: unknown, signal?: AbortSignal, headers?: Record<string, string>): Promise<T> {
  const response = await send(method, url, body, signal, headers);
  if (!response.ok) throw await failure(response);
  const text = await response.text();
  return (text ? JSON.parse(text) : {}) as T;
}

/** The raw bytes at `url` (artifact downloads), at most `limit` of them when given. */
export async function fetchBytes(url: string, limit?: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; total: number | null }> {
  const response = await fetch(url, {
    credentials: "same-origin",
    signal,
    headers: baseHeaders(limit !== undefined ? { Range: `bytes=0-${limit - 1}` } : {}),
  }).catch((e) => {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, "NETWORK_ERROR", "Could not reach the server");
  });
  if (response.status === 401) signedOut(true);
  if (!response.ok && response.status !== 206) throw await failure(response);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const range = response.headers.get("Content-Range");
  const total = range ? Number(range.split("/")[1]) : bytes.length;
  return { bytes, total: Number.isFinite(total) ? total : null };
}
