/**
 * Soak (issue 13): 10 000 commands over the framed shell on two QEMU targets at once, the
 * framed SSH shell on one and the serial console on the other (two guests, Debian trixie),
 * every output checked byte for byte (a framing error is any command whose output or status
 * is not exactly what it printed, or that threw), the runner's RSS recorded before, every
 * 1 000 commands and after, with V8's live heap after a full collection. Not in CI: the tests run a 1 000-command version
 * (runner/target/faults_qemu_test.ts).
 *
 * `deno run -A bench/soak.ts [--count N] [--kernel debian:trixie]` writes
 * bench/results/soak.json.
 *
 * @module
 */
import { QEMU_HOST_TOOLS, QemuTarget } from "../runner/qemu/target.ts";
import { ensureHostTools } from "../runner/debian/host_tools.ts";
import type { Via } from "../runner/protocol/command.ts";
import { stats } from "./stats.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] ?? "" : fallback;
}
const count = Number(arg("--count", "10000"));
const kernel = arg("--kernel", "debian:trixie");
if (!Number.isInteger(count) || count < 1 || count > 1_000_000) {
  console.error(`error: --count must be a whole number from 1 to 1000000 (got "${count}")`);
  Deno.exit(2);
}
if (!/^debian:\S+$/.test(kernel)) {
  console.error(`error: --kernel must be debian:<suite> or debian:<version> (got "${kernel}")`);
  Deno.exit(2);
}

await ensureHostTools([...QEMU_HOST_TOOLS]);
const runDir = await Deno.makeTempDir({ prefix: "rkhil-soak-" });
const mib = () => Math.round(Deno.memoryUsage().rss / 2 ** 20 * 10) / 10;
/** V8's live heap after a full collection (with `--v8-flags=--expose-gc`), in MiB. */
const heapMiB = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round(Deno.memoryUsage().heapUsed / 2 ** 20 * 10) / 10;
};
const rss: { commands: number; mib: number; heapMiB: number }[] = [];

interface Lane {
  via: Via;
  ms: number[];
  errors: { i: number; what: string }[];
}

async function lane(t: QemuTarget, via: Via): Promise<Lane> {
  const l: Lane = { via, ms: [], errors: [] };
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    try {
      const r = await t.command.run(`echo "ok $((${i} * 3))"`, { via, timeoutMs: 30_000 });
      if (r.stdout !== `ok ${i * 3}\n` || r.exitStatus !== 0) {
        l.errors.push({ i, what: `status ${r.exitStatus}, output ${JSON.stringify(r.stdout)}` });
      }
    } catch (err) {
      l.errors.push({ i, what: String(err) });
    }
    l.ms.push(performance.now() - t0);
    if (via === "serial" && (i + 1) % 1000 === 0) {
      const heap = heapMiB();
      rss.push({ commands: i + 1, mib: mib(), heapMiB: heap });
      console.log(`${i + 1} commands, RSS ${mib()} MiB, heap after GC ${heap} MiB`);
    }
  }
  return l;
}

const targets: QemuTarget[] = [];
try {
  for (const name of ["ssh", "serial"]) {
    const t = await QemuTarget.prepare({
      kernel,
      runDir: `${runDir}/${name}`,
      memory: "1G",
      bootTimeoutMs: 300_000,
      sshTimeoutMs: 180_000,
    });
    targets.push(t);
    await t.ready();
  }
  // Warm-up: both shells started, allocations settled.
  for (let i = 0; i < 20; i++) {
    await targets[0].command.run("true", { via: "ssh-shell" });
    await targets[1].command.run("true", { via: "serial" });
  }
  const heapBefore = heapMiB();
  const before = mib();
  rss.push({ commands: 0, mib: before, heapMiB: heapBefore });
  const t0 = performance.now();
  const lanes = await Promise.all([lane(targets[0], "ssh-shell"), lane(targets[1], "serial")]);
  const wallS = (performance.now() - t0) / 1000;
  const heapAfter = heapMiB();
  const after = mib();
  const report = {
    file: "bench/soak.ts",
    recordedAt: new Date().toISOString(),
    machine: {
      cpus: navigator.hardwareConcurrency,
      os: Deno.build.os,
      arch: Deno.build.arch,
      loadavg: Deno.loadavg(),
    },
    deno: Deno.version.deno,
    kernel,
    release: targets[0].release,
    commandsPerTarget: count,
    wallSeconds: Math.round(wallS * 10) / 10,
    gcExposed: typeof (globalThis as { gc?: unknown }).gc === "function",
    rssMiB: { before, after, growth: Math.round((after - before) * 10) / 10, samples: rss },
    heapAfterGcMiB: { before: heapBefore, after: heapAfter },
    lanes: lanes.map((l) => ({
      via: l.via,
      commands: l.ms.length,
      framingErrors: l.errors.length,
      firstErrors: l.errors.slice(0, 10),
      ms: stats(l.ms, 2),
    })),
  };
  console.log(JSON.stringify(report, null, 2));
  const out = new URL("./results/soak.json", import.meta.url);
  await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`recorded ${out.pathname}`);
  if (lanes.some((l) => l.errors.length)) Deno.exitCode = 1;
} finally {
  for (const t of targets) await t.close();
  await Deno.remove(runDir, { recursive: true }).catch(() => {});
}
