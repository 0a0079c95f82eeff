/**
 * The farm's parallel speed-up on this host: a farm of two embedded QEMU targets (2 GiB, one
 * kernel, suite `boot`) run N times with `--jobs 2` (in parallel) and N times with `--jobs 1`
 * (the same jobs one by one), alternating. Records each parallel run's wall time beside the sum
 * of its own jobs' times and beside the one-by-one run's wall time, and the speed-up
 * (one-by-one wall / parallel wall) as a median with its 95 % bootstrap interval. Writes
 * `bench/results/farm.json`.
 *
 * Run: deno run -A bench/farm.ts [runs=3] [kernel spec]
 * (A script rather than Deno.bench: one sample is a whole farm run of a minute.)
 */
import { selectSuites } from "../tests/mod.ts";
import { loadFarm } from "../boards/farm_load.ts";
import { PlainProgress } from "../runner/farm/progress.ts";
import { runFarm } from "../runner/farm/run_farm.ts";
import { bootstrapMedian } from "../runner/report/latency.ts";
import { stats } from "./stats.ts";

const runs = Number(Deno.args[0] ?? 3);
const kernel = Deno.args[1] ?? "debian:trixie";
const root = await Deno.makeTempDir({ prefix: "rkhil-bench-farm-" });
await Deno.writeTextFile(
  `${root}/farm.yaml`,
  "name: bench\nleases: { dir: leases }\nqemu:\n  - { id: qemu-1, memory: 2G }\n" +
    "  - { id: qemu-2, memory: 2G }\n",
);
const farm = await loadFarm(`${root}/farm.yaml`);
const one = async (jobs: number) => {
  const r = await runFarm({
    farm,
    kernels: [kernel],
    suites: selectSuites(["boot"]),
    predictBoards: ["rock-3b-8g"],
    jobs,
    runsRoot: `${root}/runs`,
    progress: new PlainProgress(() => {}),
    log: () => {},
  });
  const miss = r.results.find((x) => x.verdict !== "PASS");
  return {
    wall: r.wallMs / 1000,
    sum: r.jobTimes.reduce((a, j) => a + j.ms, 0) / 1000,
    failed: miss ? `${miss.target} ${miss.test} ${miss.verdict}: ${miss.reason}` : undefined,
  };
};
/** Runs that did not PASS (a QEMU that did not start under load): recorded, not measured. */
const failures: string[] = [];

const parallel: { wall: number; sum: number }[] = [];
const serial: { wall: number; sum: number }[] = [];
for (let i = 0, tries = 0; i < runs && tries < runs * 2; tries++) {
  const p = await one(2);
  const s = await one(1);
  if (p.failed || s.failed) {
    failures.push(...[p.failed, s.failed].filter((f): f is string => !!f));
    console.log(`pair ${tries + 1} not measured: ${failures.at(-1)}`);
    continue;
  }
  i++;
  parallel.push(p);
  serial.push(s);
  console.log(
    `run ${i}: --jobs 2 wall ${p.wall.toFixed(1)} s (its jobs sum ${p.sum.toFixed(1)} s) | ` +
      `--jobs 1 wall ${s.wall.toFixed(1)} s | speed-up ${(s.wall / p.wall).toFixed(2)}`,
  );
}
const speedup = bootstrapMedian(parallel.map((p, i) => serial[i].wall / p.wall));
const overlap = bootstrapMedian(parallel.map((p) => p.sum / p.wall));
const result = {
  recordedAt: new Date().toISOString(),
  machine: { cpus: navigator.hardwareConcurrency, loadavg: Deno.loadavg() },
  farm: "2 embedded QEMU targets (2 GiB, -smp 2), 1 job each: suite boot",
  kernel,
  runs,
  parallelWallS: stats(parallel.map((p) => p.wall)),
  parallelJobsSumS: stats(parallel.map((p) => p.sum)),
  oneByOneWallS: stats(serial.map((s) => s.wall)),
  speedup,
  jobsSumOverWall: overlap,
  failures,
};
console.log(
  `speed-up (one by one / parallel): median ${speedup.median.toFixed(2)} ` +
    `[${speedup.low.toFixed(2)}, ${speedup.high.toFixed(2)}] 95 %; parallel jobs' sum / wall ` +
    `${overlap.median.toFixed(2)}`,
);
await Deno.mkdir(new URL("./results", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL("./results/farm.json", import.meta.url),
  JSON.stringify(result, null, 2) + "\n",
);
await Deno.remove(root, { recursive: true });
