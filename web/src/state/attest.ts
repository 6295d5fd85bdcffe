// Reading a Cairn attestation (an in-toto statement in a DSSE envelope, signed with ed25519, as
// `cairn attest` writes it) in the browser: the statement it carries, the bytes its signature
// covers, and how its digests compare with what the server knows now. Pure; the signature check
// itself is WebCrypto's (see AttestationCheck).

export const PAYLOAD_TYPE = "application/vnd.in-toto+json";

export interface Statement {
  subject: { name: string; digest: { sha256?: string } }[];
  predicateType: string;
  predicate: {
    model_version: string;
    issued_at: number;
    lineage_complete: boolean;
    missing: string[];
    nodes: { id: string; label: string; digest: string | null }[];
  };
}

export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

function base64Bytes(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The envelope and its statement, or an error saying what the text is not. */
export function readEnvelope(text: string): { envelope: Envelope; statement: Statement; payload: Uint8Array<ArrayBuffer> } {
  let envelope: Envelope;
  try {
    envelope = JSON.parse(text) as Envelope;
  } catch {
    throw new Error("The file is not JSON: an attestation is the DSSE envelope `cairn attest` writes.");
  }
  if (envelope?.payloadType !== PAYLOAD_TYPE || typeof envelope.payload !== "string") {
    throw new Error("Not a DSSE envelope of an in-toto statement.");
  }
  let payload: Uint8Array<ArrayBuffer>;
  try {
    payload = base64Bytes(envelope.payload);
  } catch {
    throw new Error("The envelope's payload is not base64.");
  }
  let statement: Statement;
  try {
    statement = JSON.parse(new TextDecoder().decode(payload)) as Statement;
  } catch {
    throw new Error("The envelope's payload is not a JSON statement.");
  }
  if (!Array.isArray(statement?.subject) || !statement.predicate || !Array.isArray(statement.predicate.nodes)) {
    throw new Error("The statement has no subject or no lineage predicate.");
  }
  return { envelope, statement, payload };
}

/** DSSE's pre-authentication encoding: what the signature signs. */
export function pae(payloadType: string, payload: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const head = new TextEncoder().encode(`DSSEv1 ${new TextEncoder().encode(payloadType).length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** The 32 key bytes of `cairn-ed25519-public:<hex>`. */
export function publicKeyBytes(text: string): Uint8Array<ArrayBuffer> {
  const m = /^cairn-ed25519-public:([0-9a-fA-F]{64})$/.exec(text.trim());
  if (!m) throw new Error("Not a Cairn public key (cairn-ed25519-public:<64 hex digits>).");
  const hex = m[1]!;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function signatureBytes(envelope: Envelope): Uint8Array<ArrayBuffer> | null {
  const sig = envelope.signatures?.[0]?.sig;
  return typeof sig === "string" ? base64Bytes(sig) : null;
}

export interface Comparison {
  /** Whether the statement is about this model version. */
  sameVersion: boolean;
  /** Whether the files digest it names is the version's now. */
  sameFiles: boolean;
  /** Nodes whose digest now differs (or that are gone), with both digests. */
  changed: { id: string; attested: string | null; now: string | null | undefined }[];
}

/** Compares a statement with the version's node and its upstream as the server has them now. */
export function compare(statement: Statement, node: string, digest: string | null, upstream: Map<string, string | null>): Comparison {
  const changed: Comparison["changed"] = [];
  for (const n of statement.predicate.nodes) {
    if (n.id === node) continue;
    const now = upstream.get(n.id);
    if (now === undefined || (now ?? null) !== (n.digest ?? null)) changed.push({ id: n.id, attested: n.digest ?? null, now });
  }
  return {
    sameVersion: statement.predicate.model_version === node,
    sameFiles: digest !== null && statement.subject.some((s) => s.digest?.sha256 === digest),
    changed,
  };
}
