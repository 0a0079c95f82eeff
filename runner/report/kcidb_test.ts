import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { openHistory } from "../history/schema.ts";
import { listRuns, queryResults } from "../history/query.ts";
import { importRunDir } from "../history/writer.ts";
import { kcidbPath, renderKcidb } from "./kcidb.ts";

const RUNS = fileURLToPath(new URL("../history/testdata/runs", import.meta.url));
const SCHEMA = JSON.parse(
  Deno.readTextFileSync(fileURLToPath(new URL("./kcidb/v5.3.schema.json", import.meta.url))),
);

function validator() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv.compile(SCHEMA);
}

Deno.test("the KCIDB output of every real run validates against the official v5.3 schema", () => {
  const db = openHistory(":memory:");
  for (const d of Deno.readDirSync(RUNS)) importRunDir(db, `${RUNS}/${d.name}`);
  const doc = renderKcidb(queryResults(db), listRuns(db));
  const validate = validator();
  assert.ok(validate(doc), JSON.stringify(validate.errors?.slice(0, 3)));
  assert.deepEqual(doc.version, { major: 5, minor: 3 });
  assert.equal(doc.tests.length, 39 + 13 + 13 + 8);
  const statuses = new Set(doc.tests.map((t) => t.status));
  assert.deepEqual([...statuses].sort(), ["DONE", "FAIL", "MISS", "PASS"]);
  const fail = doc.tests.find((t) => t.status === "FAIL")!;
  assert.equal(fail.path, "oracle.driver");
  assert.deepEqual((fail.environment as { misc: unknown }).misc, {
    board: "qemu-virt-8g",
    target: "qemu-virt-8g",
    run: "2026-11-30T01-00-55Z-main-f34d",
  });
  // The failure carries the console lines of its kernel's capture.
  assert.match(
    String(fail.log_excerpt),
    /Kernel panic - not syncing: sysrq triggered crash\n.*Kernel panic/,
  );
  assert.deepEqual(
    doc.checkouts.map((c) => c.id).sort(),
    [
      "rkhil:6.1.0-57-arm64",
      "rkhil:6.12.118+deb13-arm64",
      "rkhil:7.3.4+deb13-arm64",
      "rkhil:unknown-debian:bookworm",
    ],
  );
  db.close();
});

Deno.test("the validator rejects what KCIDB forbids: a bad status, a bad path, a null", () => {
  const validate = validator();
  const ok = {
    version: { major: 5, minor: 3 },
    tests: [{
      id: "rkhil:r:0",
      build_id: "rkhil:b",
      origin: "rkhil",
      path: "boot",
      status: "PASS",
    }],
  };
  assert.ok(validate(ok));
  for (
    const bad of [
      { status: "AGREE" },
      { path: "oracle/predict rock-3b-8g" },
      { comment: null },
      { id: "no-origin" },
    ]
  ) {
    assert.ok(!validate({ ...ok, tests: [{ ...ok.tests[0], ...bad }] }), JSON.stringify(bad));
  }
});

Deno.test("KCIDB paths: test ids map into the dot-path alphabet", () => {
  assert.equal(kcidbPath("oracle", "oracle/predict rock-3b-8g"), "oracle.predict_rock-3b-8g");
  assert.equal(kcidbPath("validate", "validate/v2-6.6"), "validate.v2-6_6");
  assert.equal(kcidbPath("boot", "boot"), "boot");
  assert.equal(kcidbPath("iommu", "../../etc"), "iommu._._.etc");
  assert.match(kcidbPath("a b", "x\u0000y/ü"), /^([a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*)?$/);
});
