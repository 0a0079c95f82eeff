import assert from "node:assert/strict";
import { parseResults, RunStore, tally, type TestResult } from "./store.ts";

const r = (test: string, verdict: TestResult["verdict"]): TestResult => ({
  test,
  target: "t",
  kernel: "k",
  verdict,
  startedAt: new Date(0).toISOString(),
  durationMs: 1,
});

Deno.test("results are appended, flushed and read back; a resumed run appends", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = await RunStore.open(dir);
    await s.record(r("boot", "PASS"));
    await s.record(r("facts", "MISS"));
    s.close();
    const s2 = await RunStore.open(dir);
    await s2.record(r("oracle/memory", "FAIL"));
    s2.close();
    const { results, damagedLines } = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`));
    assert.deepEqual(results.map((x) => x.test), ["boot", "facts", "oracle/memory"]);
    assert.equal(damagedLines, 0);
    assert.deepEqual(tally(results), { PASS: 1, FAIL: 1, ERROR: 0, MISS: 1, SKIP: 0, DONE: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a runner killed mid-run loses no finished result", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A child process records results in a loop; kill it with SIGKILL partway.
    const code = `
      import { RunStore } from ${JSON.stringify(new URL("./store.ts", import.meta.url).href)};
      const s = await RunStore.open(${JSON.stringify(dir)});
      for (let i = 0; ; i++) {
        await s.record({ test: "t" + i, target: "x", kernel: "k", verdict: "PASS",
          startedAt: "", durationMs: 0, details: { pad: "x".repeat(5000) } });
        if (i === 20) console.log("ready");
      }`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    await reader.read(); // "ready": at least 21 results recorded
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    const { results, damagedLines } = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`));
    assert.ok(results.length >= 21, `${results.length}`);
    assert.ok(damagedLines <= 1);
    results.forEach((x, i) => assert.equal(x.test, `t${i}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("garbage lines are counted, not fatal", () => {
  const { results, damagedLines } = parseResults(
    `${JSON.stringify(r("a", "PASS"))}\n{"test": "b", "verd\n\u0000\u0001\n[1,2]\n`,
  );
  assert.equal(results.length, 1);
  assert.equal(damagedLines, 3);
});

Deno.test("lines that are not results (unknown verdict, wrong field types) are damaged", () => {
  const ok = r("a", "PASS");
  const lines = [
    ok,
    { ...ok, verdict: "MAYBE" },
    { ...ok, reason: 5 },
    { ...ok, details: [1] },
    { ...ok, measurements: [{ name: "x", value: "1" }] },
    { ...ok, kernel: null },
    null,
  ].map((x) => JSON.stringify(x)).join("\n");
  const { results, damagedLines } = parseResults(lines);
  assert.deepEqual(results, [ok]);
  assert.equal(damagedLines, 6);
});

Deno.test("a run reopened after a torn write appends on a new line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/results.jsonl`, JSON.stringify(r("boot", "PASS")) + '\n{"te');
    const s = await RunStore.open(dir);
    await s.record(r("facts", "MISS"));
    s.close();
    const { results, damagedLines } = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`));
    assert.deepEqual(results.map((x) => x.test), ["boot", "facts"]);
    assert.equal(damagedLines, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a full device: record throws an ERROR naming file, test and reason, with a hint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // results.jsonl is /dev/full: every write fails with ENOSPC, as on a full filesystem (the
    // half-written line it cuts off is tested on a real full tmpfs in faults_qemu_test.ts).
    await Deno.symlink("/dev/full", `${dir}/results.jsonl`);
    const s = await RunStore.open(dir);
    const err = await s.record(r("facts", "PASS")).then(() => undefined, (e) => e);
    s.close();
    assert.ok(err instanceof Error);
    assert.equal((err as { verdict?: string }).verdict, "ERROR");
    assert.match(err.message, /^cannot record facts in .*results\.jsonl: No space left on device/);
    assert.match((err as { hint?: string }).hint ?? "", /filesystem is full.*--runs-dir/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
