// The signed-in user's credentials, as the `Authorization` header value the server checks on
// every request (Basic for a password, Bearer for an API token). They live in this tab's
// sessionStorage: a reload keeps the user signed in, closing the tab signs them out, and no
// cookie exists that another site could make the browser send (so there is nothing to forge).
// The page's Content-Security-Policy allows no inline or foreign script that could read them.

const KEY = "cairn.authorization";

type Listener = () => void;
const listeners = new Set<Listener>();

function storage(): Storage | null {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage;
  } catch {
    // Storage can be switched off; then credentials last as long as the page.
    return null;
  }
}

let inMemory: string | null = storage()?.getItem(KEY) ?? null;

/** The header value to send, or null when nobody is signed in. */
export function authorizationHeader(): string | null {
  return inMemory;
}

/** `Authorization` for a user name and password. */
export function basicCredentials(username: string, password: string): string {
  // btoa takes Latin-1 only; encode the UTF-8 bytes so any name or password works.
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/** `Authorization` for an API token. */
export function tokenCredentials(token: string): string {
  return `Bearer ${token.trim()}`;
}

/** Keeps credentials the server accepted. */
export function signedIn(authorization: string): void {
  refused = false;
  inMemory = authorization;
  storage()?.setItem(KEY, authorization);
  listeners.forEach((l) => l());
}

let refused = false;

/** Whether the last sign-out was the server refusing the credentials, not the user's choice. */
export function endedByServer(): boolean {
  return refused;
}

/** Forgets the credentials: the user signed out, or (`byServer`) the server stopped accepting them. */
export function signedOut(byServer = false): void {
  if (inMemory === null) return;
  refused = byServer;
  inMemory = null;
  storage()?.removeItem(KEY);
  listeners.forEach((l) => l());
}

/** Calls `listener` whenever the credentials change; returns the unsubscribe. */
export function onCredentialsChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
