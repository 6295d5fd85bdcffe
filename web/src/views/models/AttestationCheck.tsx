// Checks an attestation file against this version: is it about this version, does it name the
// files' digest Cairn pinned, do its upstream digests still match the lineage, and (with the
// public key) is the signature good. Nothing leaves the browser; attestations are files the
// holder keeps, written by `cairn attest NAME@VERSION --key KEY`.

import { useState } from "preact/hooks";
import { traverse } from "../../api/governance";
import { compare, pae, publicKeyBytes, readEnvelope, signatureBytes, type Comparison, type Statement } from "../../state/attest";
import { Met } from "../gov/AsOf";

interface Result {
  statement: Statement;
  comparison: Comparison;
  signature: "good" | "bad" | "unchecked" | string;
}

async function checkSignature(envelopeText: string, keyText: string): Promise<Result["signature"]> {
  if (!keyText.trim()) return "unchecked";
  const { envelope, payload } = readEnvelope(envelopeText);
  const sig = signatureBytes(envelope);
  if (!sig) return "bad";
  try {
    const key = await crypto.subtle.importKey("raw", publicKeyBytes(keyText), { name: "Ed25519" }, false, ["verify"]);
    return (await crypto.subtle.verify({ name: "Ed25519" }, key, sig, pae(envelope.payloadType, payload))) ? "good" : "bad";
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export function AttestationCheck({ node, digest, asOf }: { node: string; digest: string | null; asOf: string | null }) {
  const [text, setText] = useState("");
  const [key, setKey] = useState("");
  const [result, setResult] = useState<Result | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async () => {
    setError(null);
    setResult(null);
    try {
      const { statement } = readEnvelope(text);
      const graph = await traverse("upstream", node, 16, asOf);
      const upstream = new Map(graph.nodes.map((n) => [n.id, n.digest]));
      setResult({ statement, comparison: compare(statement, node, digest, upstream), signature: await checkSignature(text, key) });
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <div class="attest">
      <p class="muted">
        An attestation covers this version when its subject is the files' digest <code>{digest ?? "(none pinned)"}</code>. Write one with{" "}
        <code>cairn attest {node.replace(/^model-version:/, "").replace(/\/(\d+)$/, "@$1")} --key KEY</code>, then check it here.
      </p>
      <div class="inline-form">
        <label>
          Attestation file
          <input
            type="file"
            accept=".json,application/json"
            onChange={async (e) => {
              const file = e.currentTarget.files?.[0];
              if (file) setText(await file.text());
            }}
          />
        </label>
        <label>
          Public key
          <input type="text" name="public-key" value={key} placeholder="cairn-ed25519-public:…" onInput={(e) => setKey(e.currentTarget.value)} />
        </label>
        <button type="button" disabled={!text} onClick={run}>
          Check attestation
        </button>
      </div>
      {error && (
        <p class="error-box" role="alert">
          {error}
        </p>
      )}
      {result && (
        <ul class="check-list attest-result">
          <li class={result.comparison.sameVersion ? "met" : "missing"}>about {result.statement.predicate.model_version}</li>
          <li class={result.comparison.sameFiles ? "met" : "missing"}>names the pinned files' digest {result.statement.subject[0]?.digest.sha256 ?? "(none)"}</li>
          <li class={result.comparison.changed.length === 0 ? "met" : "missing"}>
            {result.comparison.changed.length === 0
              ? `all ${result.statement.predicate.nodes.length} attested nodes still have their digests`
              : `changed since: ${result.comparison.changed.map((c) => `${c.id} (${c.attested ?? "none"} → ${c.now === undefined ? "gone" : (c.now ?? "none")})`).join("; ")}`}
          </li>
          <li class={result.signature === "good" ? "met" : result.signature === "unchecked" ? "" : "missing"}>
            signature: {result.signature === "good" ? "valid for this key" : result.signature === "bad" ? "does not match this key" : result.signature === "unchecked" ? "not checked (give the public key)" : result.signature}
          </li>
          <li>
            issued {new Date(result.statement.predicate.issued_at).toLocaleString()}, lineage then <Met ok={result.statement.predicate.lineage_complete} />
          </li>
        </ul>
      )}
    </div>
  );
}
