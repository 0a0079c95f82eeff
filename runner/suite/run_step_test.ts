/**
 * `runStep` into a real run store, without a target (the classes a step's own outcome and
 * errors give, the "not run" rule, interrupts), and the capability rule. The classes a kernel
 * fault and a lost target give are proven on real guests in `suite_qemu_test.ts`.
 */
import assert from "node:assert/strict";
import { InfraError, RkhilError } from "../errors.ts";
import { Interrupt, InterruptedError } from "../jobs/interrupt.ts";
import { parseResults, RunStore } from "../results/store.ts";
import { runStep, type RunStepContext } from "./run_step.ts";
import { missingCapability } from "./runner.ts";
import { HistoryWriter } from "../history/writer.ts";
import { openHistory } from "../history/schema.ts";
import { queryResults } from "../history/query.ts";

async function withStore(fn: (ctx: RunStepContext, lines: string[]) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-runstep-" });
  const store = await RunStore.open(dir);
  const lines: string[] = [];
  try {
    await fn({
      store,
      suite: "driver",
      targetName: "lab-1",
      kernel: "6.12.118+deb13-arm64",
      release: "6.12.118+deb13-arm64",
      state: {},
      log: (l) => lines.push(l),
    }, lines);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const stored = async (ctx: RunStepContext) =>
  parseResults(await Deno.readTextFile(`${ctx.store.dir}/results.jsonl`)).results;

Deno.test("runStep: the outcome is recorded on disk with suite, target, kernel, release and timing", async () => {
  await withStore(async (ctx, lines) => {
    const r = await runStep(ctx, "facts", async () => {
      await new Promise((res) => setTimeout(res, 20));
      return { verdict: "PASS", details: { summary: "19 facts, 0 missing" } };
    });
    const [disk] = await stored(ctx);
    assert.deepEqual(disk, r);
    assert.equal(r.test, "facts");
    assert.equal(r.suite, "driver");
    assert.equal(r.target, "lab-1");
    assert.equal(r.kernel, "6.12.118+deb13-arm64");
    assert.equal(r.release, "6.12.118+deb13-arm64");
    assert.ok(r.durationMs >= 15, String(r.durationMs));
    assert.ok(Math.abs(Date.parse(r.startedAt) - Date.now()) < 5_000);
    assert.deepEqual(lines, ["  PASS  facts"]);
  });
});

Deno.test("runStep: a thrown error gives its class; only the first reason line is logged", async () => {
  await withStore(async (ctx, lines) => {
    const miss = await runStep(ctx, "a", () => {
      throw new InfraError("SSH connection lost", "check the network");
    });
    assert.equal(miss.verdict, "MISS");
    assert.equal(miss.reason, "SSH connection lost\n  what to do: check the network");
    const skip = await runStep(ctx, "b", () => {
      throw new RkhilError("not a Debian kernel", "boot Debian", "SKIP");
    });
    assert.equal(skip.verdict, "SKIP");
    const err = await runStep(ctx, "c", () => Promise.reject(new TypeError("x is undefined")));
    assert.deepEqual([err.verdict, err.reason], ["ERROR", "x is undefined"]);
    assert.deepEqual(lines, [
      "  MISS  a: SSH connection lost",
      "  SKIP  b: not a Debian kernel",
      "  ERROR c: x is undefined",
    ]);
    // Nothing stops the later steps: no target was lost and no kernel crashed.
    assert.equal(ctx.state.stopped, undefined);
    assert.equal((await stored(ctx)).length, 3);
  });
});

Deno.test("runStep: after a stop every step is MISS 'not run' and its work never starts", async () => {
  await withStore(async (ctx) => {
    ctx.state.stopped = "target lost in facts (QEMU exited)";
    let ran = false;
    const r = await runStep(ctx, "oracle/driver", () => {
      ran = true;
      return Promise.resolve({ verdict: "PASS" });
    });
    assert.equal(ran, false);
    assert.deepEqual([r.verdict, r.reason, r.durationMs], [
      "MISS",
      "not run: target lost in facts (QEMU exited)",
      0,
    ]);
  });
});

Deno.test("runStep: an interrupt ends the running step as MISS 'interrupted' and is rethrown", async () => {
  await withStore(async (ctx) => {
    const it = new Interrupt();
    const c = { ...ctx, interrupt: it };
    const running = runStep(c, "oracle/driver", () => new Promise(() => {}));
    setTimeout(() => it.trigger("SIGTERM"), 10);
    await assert.rejects(running, (e) => e instanceof InterruptedError && e.signal === "SIGTERM");
    // A step after the interrupt does not start: recorded as interrupted too.
    await assert.rejects(runStep(c, "oracle/memory", () => Promise.resolve({ verdict: "PASS" })));
    const rs = await stored(ctx);
    assert.deepEqual(rs.map((r) => [r.test, r.verdict, r.reason]), [
      ["oracle/driver", "MISS", "interrupted (SIGTERM)"],
      ["oracle/memory", "MISS", "interrupted (SIGTERM)"],
    ]);
  });
});

Deno.test("missingCapability: names what is missing and what the target has", () => {
  const qemu = {
    capabilities: new Set(["kernel-introspection", "probe-module", "boot-config"] as const),
  };
  const board = { capabilities: new Set(["kernel-introspection"] as const) };
  assert.equal(missingCapability({ requires: ["probe-module"] }, qemu), undefined);
  assert.equal(missingCapability({ requires: [] }, { capabilities: new Set() }), undefined);
  assert.equal(
    missingCapability({ requires: ["probe-module", "boot-config"] }, board),
    "needs capability probe-module, boot-config (this target has: kernel-introspection)",
  );
  assert.equal(
    missingCapability({ requires: ["npu"] }, { capabilities: new Set() }),
    "needs capability npu (this target has: none)",
  );
});

Deno.test("runStep: results go to the history after the store; a failing history loses nothing and is logged once", async () => {
  await withStore(async (ctx, lines) => {
    const dbPath = `${ctx.store.dir}/history.sqlite`;
    const writer = HistoryWriter.open(dbPath, ctx.store.dir);
    const c = { ...ctx, history: writer };
    await runStep(c, "facts", () => Promise.resolve({ verdict: "PASS" }));
    // The history's database goes away under the run (closed): every later write throws.
    writer.close();
    const a = await runStep(
      c,
      "oracle/driver",
      () => Promise.resolve({ verdict: "FAIL", reason: "x" }),
    );
    const b = await runStep(c, "oracle/memory", () => Promise.resolve({ verdict: "PASS" }));
    assert.deepEqual([a.verdict, a.reason, b.verdict], ["FAIL", "x", "PASS"]);
    // results.jsonl has all three; the history has the one written before it failed.
    assert.deepEqual((await stored(ctx)).map((r) => r.test), [
      "facts",
      "oracle/driver",
      "oracle/memory",
    ]);
    const db = openHistory(dbPath);
    try {
      assert.deepEqual(queryResults(db).map((r) => [r.test, r.verdict]), [["facts", "PASS"]]);
    } finally {
      db.close();
    }
    const logged = lines.filter((l) => l.includes("history"));
    assert.equal(logged.length, 1, lines.join("\n"));
    assert.match(
      logged[0],
      /^ {2}history: could not record oracle\/driver \(.+\); results\.jsonl has every result/,
    );
    assert.deepEqual(lines.filter((l) => !l.includes("history")), [
      "  PASS  facts",
      "  FAIL  oracle/driver: x",
      "  PASS  oracle/memory",
    ]);
  });
});

Deno.test("runStep: a history that throws something other than an Error still never fails the step", async () => {
  await withStore(async (ctx, lines) => {
    let calls = 0;
    const history = {
      record() {
        calls++;
        throw "disk full"; // a non-Error throw
      },
    };
    const r = await runStep(
      { ...ctx, history },
      "facts",
      () => Promise.resolve({ verdict: "PASS" }),
    );
    assert.equal(r.verdict, "PASS");
    assert.equal(calls, 1);
    assert.equal((await stored(ctx)).length, 1);
    assert.equal(lines.length, 2);
  });
});
