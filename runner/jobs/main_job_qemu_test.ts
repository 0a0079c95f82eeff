/**
 * The main job on a real Debian kernel in QEMU: boot, SSH with a pinned key, kernel facts, the
 * oracle's memory model held against the kernel, and predictions per release.
 */
import assert from "node:assert/strict";
import { parseResults } from "../results/store.ts";
import { testRunRoot } from "../test_dirs.ts";
import { runMainJob } from "./main_job.ts";

Deno.test("main job on Debian trixie: every step passes and the memory model agrees", async () => {
  const root = await testRunRoot("rkhil-run-");
  const lines: string[] = [];
  {
    const r = await runMainJob({
      kernels: ["debian:trixie"],
      predictBoards: ["rock-3b-8g"],
      runsRoot: root,
      // validate_test.ts runs the probe scenarios on every kernel.
      validate: false,
      log: (l) => lines.push(l),
    });
    const byTest = Object.fromEntries(r.results.map((x) => [x.test, x]));
    for (const t of ["boot", "facts", "oracle/driver", "oracle/memory"]) {
      assert.equal(byTest[t]?.verdict, "PASS", `${t}: ${byTest[t]?.reason}`);
    }
    assert.equal(r.exitCode, 0);
    const mem = byTest["oracle/memory"].details as { agreed: string[] };
    assert.ok(mem.agreed.includes("ZONE_NORMAL span"), JSON.stringify(mem));
    assert.ok(mem.agreed.includes("SWIOTLB size"));
    const pred = byTest["oracle/predict rock-3b-8g"];
    assert.equal(pred.verdict, "DONE");
    const outcomes = (pred.details as { outcomes: Record<string, string> }).outcomes;
    assert.equal(outcomes["fde4b000"], "BUS_ERROR");
    assert.equal(outcomes["fe043e00"], "OK");
    // Results were written as they happened: one line per step the job logged.
    const stored = parseResults(await Deno.readTextFile(`${r.dir}/results.jsonl`));
    const logged = lines.filter((l) => /^ {2}(PASS|FAIL|ERROR|MISS|SKIP|DONE) /.test(l));
    assert.equal(stored.damagedLines, 0);
    assert.equal(stored.results.length, logged.length);
    assert.deepEqual(stored.results.map((x) => x.test), [
      "boot",
      "facts",
      "oracle/driver",
      "oracle/memory",
      "oracle/predict rock-3b-8g",
    ]);
    const report = await Deno.readTextFile(`${r.dir}/report.md`);
    assert.match(report, /\| debian:trixie \| 6\.12\.\d+\+deb13-arm64 \|/);
    assert.match(report, /agree/);
  }
});

Deno.test("main job with an unknown kernel: a classified result, no crash", async () => {
  const root = await Deno.makeTempDir({ prefix: "rkhil-run-" });
  try {
    const r = await runMainJob({
      kernels: ["debian:no-such-suite"],
      predictBoards: [],
      runsRoot: root,
      log: () => {},
    });
    assert.equal(r.exitCode, 1);
    const boot = r.results.find((x) => x.test === "boot")!;
    assert.ok(["ERROR", "MISS"].includes(boot.verdict), boot.verdict);
    assert.match(boot.reason ?? "", /bookworm|trixie|sid/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
