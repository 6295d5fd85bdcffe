// The placeholder shown where the server withheld something the signed-in user may not read:
// the same words and look in every view, so a reader can tell "hidden from you" from "none".

import { kindLabel } from "../lineage/graph";
import { LockIcon } from "./LockIcon";

/** `kind` is the hidden node's kind (`run`, `model-version`, …), when the server said it. */
export function Redacted({ kind }: { kind?: string }) {
  const what = kind ? kindLabel(kind).toLowerCase() : "item";
  return (
    <span class="redacted" title="Outside your permissions: the server withheld its name and details">
      <LockIcon /> redacted {what}
    </span>
  );
}
