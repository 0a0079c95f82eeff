/**
 * `rkhil blast-radius`, `rkhil predict --all-boards` and `rkhil atlas` as a user runs them:
 * a subprocess, its output and its exit status (bad input: exit 2, one clear error, no trace).
 */
import assert from "node:assert/strict";
import { noStackTrace, rkhil } from "./cli/testutil.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const SEED = new URL("../oracle/testdata/patches/seed-thread.txt", import.meta.url).pathname;

Deno.test("blast-radius on the seed's quoted patch: Markdown and JSON", async () => {
  const md = await rkhil("blast-radius", SEED, "--board", "rock-3b-8g", "--markdown");
  assert.equal(md.code, 0, md.stderr);
  assert.match(md.stdout, /\| 6\.6–7\.3 \| BUS_ERROR → OK FIXED \|/);
  assert.match(md.stdout, /OK CONSTRAINED/);
  const js = await rkhil(
    "blast-radius",
    SEED,
    "--board",
    "rk3568-2g",
    "--kernel",
    "6.12",
    "--json",
  );
  assert.equal(js.code, 0, js.stderr);
  const r = JSON.parse(js.stdout);
  assert.equal(r.schema, 1);
  assert.equal(r.cells.length, 1);
  assert.equal(
    r.cells[0].instances.find((i: { unit: string }) => i.unit === "fe043e00").class,
    "CONSTRAINED",
  );
});

Deno.test("predict --patch NAME --all-boards", async () => {
  const r = await rkhil(
    "predict",
    "--patch",
    "v2-dma32-withdrawn",
    "--all-boards",
    "--kernel",
    "6.12",
  );
  assert.equal(r.code, 0, r.stderr);
  for (const b of ["rk3568-2g", "rk3568-4g", "rk3588-16g", "rock-3b-8g"]) {
    assert.match(r.stdout, new RegExp(`Board ${b}`));
  }
});

Deno.test("bad input: exit 2 with one clear error and no stack trace", async () => {
  const cases = [
    ["blast-radius", "/nonexistent.patch"],
    ["blast-radius", MAIN],
    ["blast-radius", SEED, "--kernel", "9.9"],
    ["blast-radius", SEED, "--board", "no-such-board"],
    ["predict", "--all-boards"],
    ["predict", "--all-boards", "--patch", "nope"],
    ["predict", "--board", "rock-3b-8g"],
    ["atlas", "--suite", "buster"],
  ];
  for (const args of cases) {
    const r = await rkhil(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /error/i, args.join(" "));
    noStackTrace(r, `${args.join(" ")}: stack trace`);
  }
});
