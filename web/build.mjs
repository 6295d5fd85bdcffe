// Bundles the app with esbuild into the folder given as the first argument (default dist/):
// content-hashed JavaScript and CSS under assets/, index.html pointing at them, and public/. Cargo's
// build script for crates/cairn-web calls this; `npm run build` works on its own too.
import { build } from "esbuild";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const outdir = resolve(process.argv[2] ?? "dist");
mkdirSync(join(outdir, "assets"), { recursive: true });

const result = await build({
  entryPoints: ["src/main.tsx"],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: join(outdir, "assets"),
  // A hash of the content in every name lets the server cache these files forever.
  entryNames: "[name]-[hash]",
  chunkNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => "/" + relative(outdir, resolve(p)));
const script = outputs.find((p) => p.endsWith(".js"));
const style = outputs.find((p) => p.endsWith(".css"));
if (!script || !style) throw new Error(`esbuild wrote no script or stylesheet: ${outputs.join(", ")}`);

const html = readFileSync("index.html", "utf8").replace("%SCRIPT%", script).replace("%STYLE%", style);
writeFileSync(join(outdir, "index.html"), html);
// Files served under fixed names (the favicon) are copied as they are.
cpSync("public", outdir, { recursive: true });
