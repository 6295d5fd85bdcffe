// The typed client's native routes against the committed openapi.json: every route the UI calls
// exists with that method, every query parameter it sends is declared there, and every required
// parameter is sent.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { NATIVE_ROUTES } from "../src/api/cairn";

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
}
type Ref = { $ref: string };

const spec = JSON.parse(readFileSync(new URL("../../crates/cairn-server/openapi.json", import.meta.url), "utf8"));

function resolve(p: Parameter | Ref): Parameter {
  if (!("$ref" in p)) return p;
  const name = p.$ref.replace("#/components/parameters/", "");
  const found = spec.components?.parameters?.[name];
  assert.ok(found, `unresolved ${p.$ref}`);
  return found;
}

for (const [name, route] of Object.entries(NATIVE_ROUTES)) {
  test(`native route ${name} matches openapi.json`, () => {
    const item = spec.paths[route.path];
    assert.ok(item, `${route.path} is not in openapi.json`);
    const op = item[route.method];
    assert.ok(op, `${route.method.toUpperCase()} ${route.path} is not in openapi.json`);
    const params: Parameter[] = [...(item.parameters ?? []), ...(op.parameters ?? [])].map(resolve);
    const declared = new Set(params.filter((p) => p.in === "query").map((p) => p.name));
    for (const q of route.query) assert.ok(declared.has(q), `${route.path} does not declare query parameter ${q}`);
    for (const p of params.filter((p) => p.required)) {
      if (p.in === "path") assert.ok(route.path.includes(`{${p.name}}`), `path parameter ${p.name}`);
      else assert.ok((route.query as readonly string[]).includes(p.name), `required ${p.in} parameter ${p.name} is never sent`);
    }
  });
}
