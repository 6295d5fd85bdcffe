// Runs the unit tests: esbuild bundles each test/*.test.ts for node into .test-out/, then node's
// own test runner runs them. TypeScript is type-checked first by `npm test` (tsc).
import { build } from "esbuild";
import { readdirSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";

const tests = readdirSync("test").filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`);
rmSync(".test-out", { recursive: true, force: true });
await build({ entryPoints: tests, bundle: true, platform: "node", format: "esm", outdir: ".test-out", outExtension: { ".js": ".mjs" }, logLevel: "warning", jsx: "automatic", jsxImportSource: "preact" });
const files = readdirSync(".test-out").map((f) => `.test-out/${f}`);
const result = spawnSync(process.execPath, ["--test", ...files], { stdio: "inherit" });
process.exit(result.status ?? 1);
