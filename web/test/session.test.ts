// The session's pure parts: permission levels as the server ranks them, the batcher that turns
// one request per row into one per 100 rows, and the Basic header for any user name.

import { test } from "node:test";
import assert from "node:assert/strict";
import { allows, canEdit, canManage, weakest } from "../src/state/permissions";
import { batcher } from "../src/lib/batch";
import { basicCredentials, tokenCredentials } from "../src/api/credentials";

test("levels allow what is at or below them, DENY and NO_PERMISSIONS nothing", () => {
  assert.ok(canManage("MANAGE") && canEdit("MANAGE"));
  assert.ok(canEdit("EDIT") && !canManage("EDIT"));
  assert.ok(!canEdit("READ") && !canEdit("USE") && allows("USE", "READ"));
  for (const none of ["DENY", "NO_PERMISSIONS", undefined] as const) {
    assert.ok(!allows(none, "READ"), String(none));
  }
  assert.ok(!allows("MANAGE", "NO_PERMISSIONS"), "nobody needs NO_PERMISSIONS");
});

test("the weakest of several levels decides, and an unknown one leaves it unknown", () => {
  assert.equal(weakest(["MANAGE", "READ", "EDIT"]), "READ");
  assert.equal(weakest(["MANAGE", "DENY"]), "DENY");
  assert.equal(weakest(["MANAGE", undefined]), undefined);
  assert.equal(weakest([]), undefined);
});

test("loads in one task become one request per chunk, each key answered", async () => {
  const asked: string[][] = [];
  const b = batcher<number>(async (keys) => {
    asked.push(keys);
    return new Map(keys.map((k) => [k, Number(k) * 2]));
  }, 100);
  const keys = Array.from({ length: 250 }, (_, i) => String(i));
  // A key asked twice is sent once and both callers get the answer.
  const values = await Promise.all([...keys, "7"].map((k) => b.load(k)));
  assert.deepEqual(asked.map((a) => a.length), [100, 100, 50]);
  assert.equal(values[7], 14);
  assert.equal(values[250], 14);
  assert.equal(values[249], 498);
  // A later task is a new batch.
  assert.equal(await b.load("3"), 6);
  assert.deepEqual(asked[3], ["3"]);
});

test("a failed batch rejects its callers, a key left out of the answer rejects alone", async () => {
  const failing = batcher<number>(async () => {
    throw new Error("server down");
  }, 10);
  await assert.rejects(failing.load("1"), /server down/);
  const partial = batcher<number>(async (keys) => new Map(keys.filter((k) => k !== "gone").map((k) => [k, 1])), 10);
  const [kept, gone] = await Promise.allSettled([partial.load("here"), partial.load("gone")]);
  assert.deepEqual(kept, { status: "fulfilled", value: 1 });
  assert.equal(gone.status, "rejected");
});

test("Basic credentials encode any user name and password as UTF-8", () => {
  assert.equal(basicCredentials("alice", "pw:with:colons"), `Basic ${Buffer.from("alice:pw:with:colons").toString("base64")}`);
  assert.equal(basicCredentials("zoë", "пароль"), `Basic ${Buffer.from("zoë:пароль", "utf8").toString("base64")}`);
  assert.equal(tokenCredentials("  cairn_tok_abc \n"), "Bearer cairn_tok_abc");
});
