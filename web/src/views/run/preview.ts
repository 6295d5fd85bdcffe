// Which preview a file gets, decided by its name only (the server sends every artifact as
// application/octet-stream, and nothing here trusts a file to say what it is). HTML and SVG are
// shown as source text: never rendered, so their scripts never run.

export type PreviewKind = "image" | "markdown" | "json" | "csv" | "text" | "none";

const IMAGE_TYPES: Record<string, string> = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", bmp: "image/bmp" };
const TEXT = new Set(["txt", "log", "yaml", "yml", "py", "cfg", "ini", "toml", "sh", "html", "htm", "svg", "xml", "js", "ts", "r", "sql", "ipynb", "out", "err", "conf", "env", "requirements", "lock"]);
const TEXT_NAMES = new Set(["MLmodel", "MLproject", "Dockerfile", "LICENSE", "README", "requirements.txt", "conda.yaml", "python_env.yaml"]);

export function extension(path: string): string {
  const name = path.split("/").pop() ?? path;
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

export function previewKind(path: string): PreviewKind {
  const name = path.split("/").pop() ?? path;
  const ext = extension(path);
  if (IMAGE_TYPES[ext]) return "image";
  if (ext === "md" || ext === "markdown") return "markdown";
  if (ext === "json") return "json";
  if (ext === "csv" || ext === "tsv") return "csv";
  if (TEXT.has(ext) || TEXT_NAMES.has(name)) return "text";
  return "none";
}

export function imageType(path: string): string {
  return IMAGE_TYPES[extension(path)] ?? "application/octet-stream";
}

/** Parses CSV (quoted fields, doubled quotes) into at most `maxRows` rows. */
export function parseCsv(text: string, maxRows: number, separator = ","): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === separator) {
      row.push(field);
      field = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += ch;
  }
  if ((field !== "" || row.length) && rows.length < maxRows) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

export interface TreeNode {
  name: string;
  path: string;
  children: TreeNode[];
  file?: { size: number; digest: string };
}

/** A folder tree from a flat manifest, folders first, then by name. */
export function buildTree(files: readonly { path: string; size: number; digest: string }[]): TreeNode[] {
  const root: TreeNode = { name: "", path: "", children: [] };
  for (const f of files) {
    const parts = f.path.split("/").filter((p) => p);
    let node = root;
    parts.forEach((part, i) => {
      const path = parts.slice(0, i + 1).join("/");
      let child = node.children.find((c) => c.name === part && (i === parts.length - 1 ? true : !c.file));
      if (!child) {
        child = { name: part, path, children: [] };
        node.children.push(child);
      }
      if (i === parts.length - 1) child.file = { size: f.size, digest: f.digest };
      node = child;
    });
  }
  const sort = (nodes: TreeNode[]) => {
    nodes.sort((a, b) => (a.file ? 1 : 0) - (b.file ? 1 : 0) || a.name.localeCompare(b.name));
    nodes.forEach((n) => sort(n.children));
  };
  sort(root.children);
  return root.children;
}
