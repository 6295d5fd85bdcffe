// The signed-in indicator in the header: who, how (password or which kind of token), and
// sign-out. Nothing is shown without access control, where nobody signs in.

import { signedOut } from "../api/credentials";
import { useSession } from "./session";

export function Account() {
  const { auth, user } = useSession();
  if (auth === "none" || !user) return null;
  const how = user.token ? `${user.token.scope} token` : user.is_admin ? "admin" : null;
  return (
    <div class="account">
      <span>
        Signed in as <strong class="account-name">{user.username}</strong>
        {how && <span class="badge">{how}</span>}
      </span>
      <button type="button" onClick={() => signedOut()}>
        Sign out
      </button>
    </div>
  );
}
