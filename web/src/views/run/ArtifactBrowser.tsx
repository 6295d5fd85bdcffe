// A run's files: a folder tree from Cairn's manifest (sizes and SHA-256 digests), a download
// link per file and a preview of the chosen one. Previews are built as elements from the
// file's text or, for images, from a blob URL of its bytes; nothing is inserted as HTML.

import { useEffect, useState } from "preact/hooks";
import { fetchBytes } from "../../api/client";
import { authorizationHeader } from "../../api/credentials";
import { runArtifactManifest } from "../../api/cairn";
import { artifactUrl } from "../../api/mlflow";
import { ErrorBox, Loading } from "../../components/Status";
import { Markdown } from "../../components/Markdown";
import { formatBytes } from "../../lib/format";
import { useAsync } from "../../lib/useAsync";
import { buildTree, imageType, parseCsv, previewKind, type TreeNode } from "./preview";

/** Text previews read at most this much of a file. */
const TEXT_LIMIT = 512 * 1024;
const IMAGE_LIMIT = 20 * 1024 * 1024;
const CSV_ROWS = 100;

function Tree({ nodes, selected, onSelect }: { nodes: TreeNode[]; selected: string | null; onSelect: (n: TreeNode) => void }) {
  const [open, setOpen] = useState<Set<string>>(new Set());
  return (
    <ul role="group">
      {nodes.map((n) =>
        n.file ? (
          <li key={n.path}>
            <button type="button" aria-current={selected === n.path} onClick={() => onSelect(n)} title={n.path}>
              📄 {n.name} <span class="muted">{formatBytes(n.file.size)}</span>
            </button>
          </li>
        ) : (
          <li key={n.path}>
            <button
              type="button"
              aria-expanded={open.has(n.path)}
              onClick={() =>
                setOpen((s) => {
                  const next = new Set(s);
                  if (next.has(n.path)) next.delete(n.path);
                  else next.add(n.path);
                  return next;
                })
              }
            >
              {open.has(n.path) ? "📂" : "📁"} {n.name}
            </button>
            {open.has(n.path) && <Tree nodes={n.children} selected={selected} onSelect={onSelect} />}
          </li>
        ),
      )}
    </ul>
  );
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

function Preview({ node, url }: { node: TreeNode; url: string | null }) {
  const kind = previewKind(node.path);
  const content = useAsync(
    async (signal) => {
      if (!url || kind === "none") return null;
      const { bytes, total } = await fetchBytes(url, kind === "image" ? IMAGE_LIMIT : TEXT_LIMIT, signal);
      return { bytes, truncated: total !== null && total > bytes.length };
    },
    [url, kind],
  );
  const [imageUrl, setImageUrl] = useState<string | null>(null);
  useEffect(() => {
    if (kind !== "image" || !content.data) return;
    const blobUrl = URL.createObjectURL(new Blob([content.data.bytes as BlobPart], { type: imageType(node.path) }));
    setImageUrl(blobUrl);
    return () => URL.revokeObjectURL(blobUrl);
  }, [content.data, kind, node.path]);

  const header = (
    <header class="toolbar">
      <strong title={node.path}>{node.path}</strong>
      <span class="muted">{formatBytes(node.file?.size)}</span>
      <code title="SHA-256 digest">sha256:{node.file?.digest.slice(0, 16)}…</code>
      {url && <DownloadLink url={url} name={node.name} />}
    </header>
  );
  if (kind === "none") return <div class="artifact-preview">{header}<p class="muted">No preview for this kind of file.</p></div>;
  if (content.error) return <div class="artifact-preview">{header}<ErrorBox what={node.path} error={content.error} retry={content.retry} /></div>;
  if (!content.data) return <div class="artifact-preview">{header}<Loading what={node.name} /></div>;
  const { bytes, truncated } = content.data;
  const note = truncated ? <p class="muted">Showing the first {formatBytes(bytes.length)}; download the file for the rest.</p> : null;
  let body;
  switch (kind) {
    case "image":
      body = imageUrl ? <img src={imageUrl} alt={`Preview of ${node.name}`} /> : null;
      break;
    case "markdown":
      body = <Markdown text={decode(bytes)} />;
      break;
    case "json": {
      const text = decode(bytes);
      let pretty = text;
      try {
        pretty = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        // Not valid (or cut short): show it as it is.
      }
      body = <pre><code>{pretty}</code></pre>;
      break;
    }
    case "csv": {
      const rows = parseCsv(decode(bytes), CSV_ROWS + 1, node.path.toLowerCase().endsWith(".tsv") ? "\t" : ",");
      const [head, ...rest] = rows;
      body = (
        <table class="data-table">
          <thead>
            <tr>{(head ?? []).map((h, i) => <th key={i} scope="col">{h}</th>)}</tr>
          </thead>
          <tbody>
            {rest.map((r, i) => (
              <tr key={i}>{r.map((c, j) => <td key={j}>{c}</td>)}</tr>
            ))}
          </tbody>
        </table>
      );
      break;
    }
    default:
      body = <pre><code>{decode(bytes)}</code></pre>;
  }
  return (
    <div class="artifact-preview" data-preview={kind}>
      {header}
      {note}
      {body}
    </div>
  );
}

export function ArtifactBrowser({ runId, artifactUri }: { runId: string; artifactUri: string | undefined }) {
  const manifest = useAsync(() => runArtifactManifest(runId), [runId]);
  const [selected, setSelected] = useState<TreeNode | null>(null);
  if (manifest.error) return <ErrorBox what="the artifacts" error={manifest.error} retry={manifest.retry} />;
  if (!manifest.data) return <Loading what="artifacts" />;
  if (!manifest.data.length) return <p class="muted">This run has no artifacts.</p>;
  const tree = buildTree(manifest.data);
  return (
    <div class="artifacts">
      <nav aria-label="Artifact files" class="artifact-tree">
        <Tree nodes={tree} selected={selected?.path ?? null} onSelect={setSelected} />
      </nav>
      {selected ? <Preview key={selected.path} node={selected} url={artifactUrl(artifactUri, selected.path)} /> : <p class="muted">Choose a file to preview it.</p>}
    </div>
  );
}

/**
 * A file's download. A plain link cannot carry the signed-in user's credentials (they are a
 * header, not a cookie), so when someone is signed in the file is fetched with them and saved
 * from memory; without access control the browser downloads it directly.
 */
function DownloadLink({ url, name }: { url: string; name: string }) {
  const [error, setError] = useState<unknown>(null);
  if (!authorizationHeader()) {
    return (
      <a href={url} download={name}>
        Download
      </a>
    );
  }
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const { bytes } = await fetchBytes(url);
      const blobUrl = URL.createObjectURL(new Blob([bytes as BlobPart]));
      const link = document.createElement("a");
      link.href = blobUrl;
      link.download = name;
      link.click();
      setTimeout(() => URL.revokeObjectURL(blobUrl), 0);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <a href={url} download={name} onClick={save}>
        Download
      </a>
      {error ? <ErrorBox what={`the download of ${name}`} error={error} action /> : null}
    </>
  );
}
