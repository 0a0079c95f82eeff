/** The `boot` suite's console check on real console captures (runner/watch/testdata). */
import assert from "node:assert/strict";
import { BAD_CONSOLE_KINDS, consoleEvents } from "./boot.ts";

/** A capture as the kernel console sends it: CRLF line ends (the files are stored with LF). */
const capture = (name: string) =>
  Deno.readTextFileSync(new URL(`../runner/watch/testdata/${name}`, import.meta.url))
    .replaceAll("\n", "\r\n");
const bad = (text: string) => consoleEvents(text).filter((e) => BAD_CONSOLE_KINDS.has(e.kind));

Deno.test("consoleEvents: a clean ROCK 3B boot has no crash or WARNING; a panic, an Oops and a WARNING are found", () => {
  assert.deepEqual(bad(capture("rock3b_boot.log")), []);
  assert.ok(consoleEvents(capture("rock3b_boot.log")).length > 0, "the boot banners are events");
  assert.deepEqual(bad(capture("sysrq_panic.log")).map((e) => e.kind), ["panic"]);
  assert.match(bad(capture("sysrq_panic.log"))[0].reason, /sysrq triggered crash/);
  assert.ok(bad(capture("arm64_null_oops.log")).some((e) => e.kind === "oops"));
  assert.deepEqual(bad(capture("rk_iommu_warning.log")).map((e) => e.kind), ["warning"]);
});

Deno.test("consoleEvents: command output (bare LF) that prints a panic line is no crash; junk never throws", () => {
  // The framed shell runs with -opost: `dmesg` output ends in LF, the kernel console in CRLF.
  assert.deepEqual(bad("[  123.457311] Kernel panic - not syncing: sysrq triggered crash\n"), []);
  assert.equal(
    bad("[  123.457311] Kernel panic - not syncing: sysrq triggered crash\r\n").length,
    1,
  );
  assert.deepEqual(bad("\0\xff\x1b[2J" + "x".repeat(100_000)), []);
  assert.deepEqual(consoleEvents(""), []);
});
