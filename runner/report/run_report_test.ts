import assert from "node:assert/strict";
import { UserInputError } from "../errors.ts";
import { RunStore, type TestResult } from "../results/store.ts";
import { renderRunReport, writeRunReport } from "./run_report.ts";

const at = new Date(0).toISOString();
const res = (kernel: string, test: string, verdict: TestResult["verdict"], extra = {}) => ({
  test,
  target: "qemu-virt-8g",
  kernel,
  verdict,
  startedAt: at,
  durationMs: 1,
  ...extra,
});

/** What an older main job recorded for one kernel that went well (no suite field). */
const goodKernel: TestResult[] = [
  res("debian:trixie", "boot", "PASS", {
    measurements: [{ name: "boot to shell", value: 1.5, unit: "s" }, {
      name: "boot to ssh",
      value: 2.17,
      unit: "s",
    }],
    details: { release: "6.12.118+deb13-arm64", memory: "8G" },
  }),
  res("debian:trixie", "facts", "PASS", { details: { summary: "19 facts, 0 missing" } }),
  res("debian:trixie", "oracle/driver", "PASS", { details: { summary: "agree (11 facts)" } }),
  res("debian:trixie", "oracle/memory", "PASS", { details: { summary: "agree (9 facts)" } }),
  res("debian:trixie", "oracle/predict rock-3b-8g", "DONE", {
    details: { outcomes: { fde4b000: "BUS_ERROR", fe043e00: "OK" } },
  }),
  res("debian:trixie", "validate/v1", "PASS"),
  res("debian:trixie", "validate/bounce", "PASS"),
];

/** The suite runner's records: the embedded target on trixie, and a board that lacks probe-module. */
const REL = "6.12.118+deb13-arm64";
const suites = (target: string, kernel: string): TestResult[] => {
  const r = (suite: string, test: string, verdict: TestResult["verdict"], extra = {}) => ({
    ...res(kernel, test, verdict, extra),
    suite,
    target,
    release: REL,
  });
  return [
    r("boot", "boot", "PASS", {
      measurements: [{ name: "boot to ssh", value: 2.5, unit: "s" }],
      details: { release: REL, memory: "8G" },
    }),
    r("boot", "boot/kernel", "PASS", { details: { summary: REL } }),
    r("boot", "boot/console", "PASS", { details: { summary: "no crash, no WARNING" } }),
    r("driver", "facts", "PASS", { details: { summary: "19 facts, 0 missing" } }),
    r("driver", "oracle/driver", "PASS", { details: { summary: "agree (11 facts)" } }),
    r("driver", "oracle/memory", "PASS", { details: { summary: "agree (9 facts)" } }),
    r("iommu", "iommu/log", "PASS", {
      details: { summary: "no IOMMU predicted, no rk_iommu line" },
    }),
    r("iommu", "oracle/predict rock-3b-8g", "DONE", {
      details: { outcomes: { fde4b000: "BUS_ERROR", fe043e00: "OK" } },
    }),
    ...(target === "qemu-virt-8g"
      ? [
        r("probe", "probe/v1", "PASS"),
        r("probe", "probe/bounce", "FAIL", { reason: "iova 0x10000000: predicted ok" }),
        r("probe-boot", "probe/2g", "PASS"),
      ]
      : [
        r("probe", "probe", "SKIP", {
          reason: "needs capability probe-module (this target has: kernel-introspection)",
          details: { prediction: { scenarios: { v1: "ok+WRONG_PAGE (tables <4G)" } } },
        }),
        r("probe-boot", "probe-boot", "SKIP", {
          reason:
            "needs capability probe-module, boot-config (this target has: kernel-introspection)",
        }),
      ]),
  ];
};

Deno.test("run report: grouped by target, a column per suite, skipped suites with the reason", () => {
  const results = [...suites("qemu-virt-8g", "debian:trixie"), ...suites("lab-1", REL)];
  const text = renderRunReport({ results, damagedLines: 0 });
  assert.match(text, /^# rkhil run: qemu-virt-8g, lab-1 \(8 GiB\)$/m);
  assert.match(
    text,
    /^\| kernel \| release \| boot to ssh \| kernel and console \| kernel facts \| running driver vs knowledge base \| oracle memory model \| IOMMU log vs oracle \| probe \| probe \(own boots\) \|$/m,
  );
  const qemu = text.slice(text.indexOf("## qemu-virt-8g"), text.indexOf("## lab-1"));
  assert.match(
    qemu,
    /^\| debian:trixie \| 6\.12\.118\+deb13-arm64 \| 2\.50 s \| 2\/2 agree \| 19 facts, 0 missing \| agree \(11 facts\) \| agree \(9 facts\) \| no IOMMU predicted, no rk_iommu line \| 1\/2 agree \(1 FAIL\) \| 1\/1 agree \|$/m,
  );
  const lab = text.slice(text.indexOf("## lab-1"));
  assert.match(
    lab,
    /^\| 6\.12\.118\+deb13-arm64 \| 6\.12\.118\+deb13-arm64 \| 2\.50 s \| 2\/2 agree \|.* \| SKIP \| SKIP \|$/m,
  );
  // One prediction row per release, whichever targets ran it.
  assert.equal(text.match(/^\| 6\.12\.118\+deb13-arm64 \| BUS_ERROR \| OK \|$/gm)?.length, 1);
  assert.match(
    text,
    /^- SKIP lab-1 6\.12\.118\+deb13-arm64 probe: needs capability probe-module \(this target has: kernel-introspection\)$/m,
  );
  assert.match(
    text,
    /^- FAIL qemu-virt-8g debian:trixie probe\/bounce: iova 0x10000000: predicted ok$/m,
  );
  assert.match(text, /16 PASS, 2 DONE, 1 FAIL, 0 ERROR, 0 MISS, 2 SKIP$/);
});

Deno.test("run report: records of older runs (no suite field) still fill the columns", () => {
  const text = renderRunReport({ results: goodKernel, damagedLines: 0 });
  assert.match(text, /^# rkhil run: qemu-virt-8g \(8 GiB\)$/m);
  assert.match(
    text,
    /^\| debian:trixie \| 6\.12\.118\+deb13-arm64 \| 2\.17 s \| - \| 19 facts, 0 missing \| agree \(11 facts\) \| agree \(9 facts\) \| - \| 2\/2 agree \| - \|$/m,
  );
  assert.match(text, /^## What each release's driver does on rock-3b-8g/m);
  assert.match(text, /^\| 6\.12\.118\+deb13-arm64 \| BUS_ERROR \| OK \|$/m);
  assert.doesNotMatch(text, /Not passed|damaged|interrupted|skipped/);
  assert.match(text, /6 PASS, 1 DONE, 0 FAIL, 0 ERROR, 0 MISS, 0 SKIP$/);
});

Deno.test("run report: a lost target, an interrupt and a boot panic are shown as recorded", () => {
  const results: TestResult[] = [
    res("debian:bookworm", "boot", "FAIL", {
      reason: "boot 6.1.0-56-arm64: kernel panic: Kernel panic - not syncing: Requested init " +
        "/nonexistent failed (error -2).\n  what to do: ...",
    }),
    res("debian:trixie", "boot", "PASS", {
      measurements: [{ name: "boot to ssh", value: 3, unit: "s" }],
      details: { release: "6.12.118+deb13-arm64", memory: "8G" },
    }),
    // A step that saw half its facts before the target went: MISS, and its summary not shown.
    res("debian:trixie", "facts", "MISS", {
      reason: "target lost: QEMU exited (status 137)",
      details: { summary: "16 facts, 2 missing" },
    }),
    res("debian:trixie", "oracle/driver", "MISS", {
      reason: "not run: target lost in facts (QEMU exited (status 137))",
    }),
    res("debian:trixie", "validate/v1", "MISS", { reason: "not run: target lost in facts" }),
    res("debian:trixie", "validate/bounce", "PASS"),
    res("debian:sid", "boot", "MISS", { reason: "interrupted (SIGINT)" }),
  ];
  const text = renderRunReport({ results, damagedLines: 1 });
  assert.match(text, /^\*\*interrupted \(SIGINT\)\*\* during qemu-virt-8g debian:sid `boot`/m);
  assert.match(text, /^\| debian:bookworm \| - \| FAIL \| - \| - \| - \| - \| - \| - \| - \|$/m);
  assert.match(
    text,
    /^\| debian:trixie \| [^|]+ \| 3\.00 s \| - \| MISS \| MISS \| - \| - \| 1\/2 agree \(1 MISS\) \| - \|$/m,
  );
  assert.match(text, /^\| debian:sid \| - \| MISS \|/m);
  // Only the first line of a reason goes into the list.
  assert.match(
    text,
    /^- FAIL qemu-virt-8g debian:bookworm boot: boot 6\.1\.0-56-arm64: kernel panic: Kernel panic - not syncing: Requested init \/nonexistent failed \(error -2\)\.$/m,
  );
  assert.match(text, /^1 damaged line of results\.jsonl skipped/m);
  assert.match(text, /2 PASS, 0 DONE, 1 FAIL, 0 ERROR, 4 MISS, 0 SKIP$/);
});

Deno.test("run report: hostile details (wrong types, odd names) render without throwing", () => {
  const results: TestResult[] = [
    res("k|1", "boot", "PASS", {
      measurements: [{ name: "boot to ssh", value: NaN, unit: "s" }],
      details: { release: 42, memory: ["8G"] },
    }),
    res("k|1", "facts", "PASS", { details: { summary: { x: 1 } } }),
    res("k|1", "oracle/predict b", "DONE", { details: { outcomes: "BUS_ERROR" } }),
    res("k|1", "oracle/predict ", "DONE", { details: { outcomes: null } }),
    { ...res("k|1", "x", "SKIP"), target: "t|\nx", suite: "x" },
  ];
  const text = renderRunReport({ results, damagedLines: 0 });
  assert.match(text, /^# rkhil run: qemu-virt-8g, t\\\| x$/m);
  assert.match(text, /^\| k\\\|1 \| - \| PASS \| - \| PASS \| - \| - \| - \| - \| - \|$/m);
  assert.match(text, /^## t\\\| x$/m);
  assert.doesNotMatch(text, /## What each release/);
});

Deno.test("rkhil report: rewrites report.md from results.jsonl, a torn last line is reported", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = await RunStore.open(dir);
    for (const r of goodKernel) await s.record(r);
    s.close();
    // A kill in the middle of a write leaves the last line torn.
    await Deno.writeTextFile(`${dir}/results.jsonl`, '{"test":"oracle/mem', { append: true });
    const text = await writeRunReport(dir);
    assert.equal(await Deno.readTextFile(`${dir}/report.md`), text + "\n");
    assert.match(text, /2\/2 agree/);
    assert.match(text, /^1 damaged line of results\.jsonl skipped/m);
    // A resumed run starts its results on a new line: the torn one stays the only damage.
    const s2 = await RunStore.open(dir);
    await s2.record(res("debian:sid", "boot", "MISS", { reason: "interrupted (SIGTERM)" }));
    s2.close();
    const again = await writeRunReport(dir);
    assert.match(again, /^1 damaged line of results\.jsonl skipped/m);
    assert.match(again, /^\*\*interrupted \(SIGTERM\)\*\* during qemu-virt-8g debian:sid `boot`/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rkhil report: a directory without results is bad input, not a crash", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => writeRunReport(`${dir}/nope`),
      (e) => e instanceof UserInputError && /results\.jsonl: does not exist/.test(e.message),
    );
    await Deno.mkdir(`${dir}/results.jsonl`);
    await assert.rejects(() => writeRunReport(dir), UserInputError);
    // Another program's JSON lines are not a torn rkhil record: refused, report.md not written.
    await Deno.mkdir(`${dir}/other`);
    await Deno.writeTextFile(`${dir}/other/results.jsonl`, '{"a":1}\nnot json\n');
    await assert.rejects(
      () => writeRunReport(`${dir}/other`),
      (e) => e instanceof UserInputError && /holds no rkhil result \(2 lines/.test(e.message),
    );
    await assert.rejects(() => Deno.stat(`${dir}/other/report.md`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rkhil report on the command line: 0 with a run, 2 for a missing or empty directory", async () => {
  const { main } = await import("../../main.ts");
  const dir = await Deno.makeTempDir();
  const log = console.log, error = console.error;
  const out: string[] = [];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => out.push(a.join(" "));
  try {
    assert.equal(await main(["report", `${dir}/nope`]), 2);
    assert.equal(await main(["report", dir]), 2);
    assert.match(out.join("\n"), /results\.jsonl: does not exist/);
    const s = await RunStore.open(dir);
    for (const r of goodKernel) await s.record(r);
    s.close();
    out.length = 0;
    assert.equal(await main(["report", dir]), 0);
    assert.match(out.join("\n"), /^\| debian:trixie \| 6\.12\.118\+deb13-arm64 \| 2\.17 s \|/m);
    assert.equal(await Deno.readTextFile(`${dir}/report.md`), out.join("\n") + "\n");
  } finally {
    console.log = log;
    console.error = error;
    await Deno.remove(dir, { recursive: true });
  }
});
