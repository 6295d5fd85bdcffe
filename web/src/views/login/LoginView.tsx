// The sign-in page, shown instead of any view while a server with `--auth basic` has nobody
// signed in; the address is kept, so signing in lands on the page that was asked for. A user
// signs in with a password or with an API token; the credentials are checked by asking the
// server who they belong to, and kept (see `api/credentials.ts`) only once it accepted them.

import { useEffect, useRef, useState } from "preact/hooks";
import { session } from "../../api/cairn";
import { ApiError } from "../../api/client";
import { basicCredentials, signedIn, tokenCredentials } from "../../api/credentials";
import { markReady } from "../../lib/marks";

type Method = "password" | "token";

function explain(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 401) return `Sign-in refused: ${error.message || "wrong user name or password"}.`;
    if (error.status === 429) return `${error.message}.`;
    if (error.status === 0) return error.message;
    return `The server answered ${error.status}: ${error.message}`;
  }
  return String(error);
}

export function LoginView({ ended }: { ended: boolean }) {
  const [method, setMethod] = useState<Method>("password");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const first = useRef<HTMLInputElement>(null);

  useEffect(() => {
    first.current?.focus();
    markReady("login");
  }, [method]);

  const ready = method === "password" ? username.trim() !== "" && password !== "" : token.trim() !== "";
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!ready || busy) return;
    const authorization = method === "password" ? basicCredentials(username.trim(), password) : tokenCredentials(token);
    setBusy(true);
    setError(null);
    try {
      const answer = await session({ authorization });
      if (!answer.user) throw new Error("The server did not accept these credentials.");
      signedIn(authorization);
    } catch (err) {
      setError(explain(err));
      setPassword("");
      setBusy(false);
    }
  };

  return (
    <section class="login" aria-labelledby="login-title">
      <h1 id="login-title">Sign in to Cairn</h1>
      {ended && !error && (
        <p class="muted" role="status">
          Your session ended: the server no longer accepts the credentials. Sign in again.
        </p>
      )}
      <div class="tabs" role="tablist" aria-label="Sign in with">
        <button type="button" role="tab" aria-selected={method === "password"} onClick={() => setMethod("password")}>
          Password
        </button>
        <button type="button" role="tab" aria-selected={method === "token"} onClick={() => setMethod("token")}>
          API token
        </button>
      </div>
      <form class="login-form" onSubmit={submit}>
        {method === "password" ? (
          <>
            <label>
              User name
              <input ref={first} name="username" autocomplete="username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
            </label>
            <label>
              Password
              <input type="password" name="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
            </label>
          </>
        ) : (
          <label>
            API token
            <input ref={first} type="password" name="token" autocomplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
          </label>
        )}
        {error && (
          <p class="error-box" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={!ready || busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p class="muted">
        Tokens come from <code>cairn tokens create --user NAME</code>. Credentials are kept in this tab only and forgotten when it closes.
      </p>
    </section>
  );
}
