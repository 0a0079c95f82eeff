import assert from "node:assert/strict";
import { parseResultLine, PlainProgress, TerminalProgress } from "./progress.ts";

Deno.test("plain progress: one timestamped line per job start, result and end", () => {
  const out: string[] = [];
  const p = new PlainProgress((l) => out.push(l), () => new Date("2026-11-30T04:00:00Z"));
  p.jobStart("rock-1", "own kernel");
  p.step();
  p.result("rock-1", "  PASS  boot");
  p.result("rock-1", "  MISS  iommu/log: target lost: QEMU exited");
  p.result("rock-1", "\nrock-1"); // the runner's own heading: not a result
  p.jobEnd("rock-1", "taken out: target lost: QEMU exited");
  assert.deepEqual(out, [
    "2026-11-30T04:00:00.000Z rock-1 own kernel: start",
    "2026-11-30T04:00:00.000Z rock-1 PASS boot",
    "2026-11-30T04:00:00.000Z rock-1 MISS iommu/log: target lost: QEMU exited",
    "2026-11-30T04:00:00.000Z rock-1: taken out: target lost: QEMU exited",
  ]);
  assert.equal(parseResultLine("PASSED boot"), undefined);
  assert.deepEqual(parseResultLine("  DONE  oracle/predict x"), {
    verdict: "DONE",
    text: "oracle/predict x",
  });
});

/** A terminal as cli-progress sees one: a TTY stream of 120 columns that keeps what it gets. */
function fakeTerminal() {
  const chunks: string[] = [];
  const stream = {
    isTTY: true,
    columns: 120,
    rows: 40,
    write(s: string | Uint8Array, cb?: unknown) {
      chunks.push(typeof s === "string" ? s : new TextDecoder().decode(s));
      if (typeof cb === "function") cb();
      return true;
    },
    on() {
      return stream;
    },
    once() {
      return stream;
    },
    removeListener() {
      return stream;
    },
    off() {
      return stream;
    },
    cursorTo(_x: number, _y?: number, cb?: () => void) {
      cb?.();
      return true;
    },
    moveCursor(_dx: number, _dy: number, cb?: () => void) {
      cb?.();
      return true;
    },
    clearLine(_dir: number, cb?: () => void) {
      cb?.();
      return true;
    },
    clearScreenDown(cb?: () => void) {
      cb?.();
      return true;
    },
    getWindowSize: () => [120, 40],
  };
  return { stream, text: () => chunks.join("") };
}

Deno.test("terminal progress: a live line per target and the overall bar (cli-progress)", () => {
  const term = fakeTerminal();
  const p = new TerminalProgress(
    new Map([["qemu-1", 2], ["rock-1", 1]]),
    term.stream as unknown as NodeJS.WriteStream,
  );
  try {
    p.jobStart("qemu-1", "debian:trixie");
    p.step("qemu-1", "iommu", "iommu/log");
    p.result("qemu-1", "  PASS  boot");
    p.result("qemu-1", "  PASS  boot/kernel");
    p.jobEnd("rock-1", "taken out: health check failed");
  } finally {
    p.stop();
  }
  // deno-lint-ignore no-control-regex
  const text = term.text().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
  assert.match(text, /farm [█░]{20} 1\/3 jobs/);
  assert.match(text, /qemu-1 +[█░]{20} 0\/2 debian:trixie {2}iommu\/log {2}\d+ s {2}2 PASS/);
  assert.match(text, /rock-1 +[█░]{20} 1\/1 taken out: health check failed/);
});
