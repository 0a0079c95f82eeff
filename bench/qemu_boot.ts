/**
 * Boot-to-shell benchmark of QEMU targets (TCG, `-M virt -cpu cortex-a53 -smp 2 -m 8G`):
 * for each Debian kernel, power on N times and record seconds from QMP `cont` to the first
 * console byte, to the kernel's first line, to the shell prompt and to SSH; with the kernel's full
 * console output and with `quiet`. Writes `bench/results/qemu_boot.json`.
 *
 * Run: deno run -A bench/qemu_boot.ts [runs=3] [kernel specs...]
 * (A script rather than Deno.bench: one sample is a whole boot of several seconds.)
 */
import { stats } from "./stats.ts";
import { QemuTarget } from "../runner/qemu/target.ts";
import { hostCommand } from "../runner/debian/host_tools.ts";

const runs = Number(Deno.args[0] ?? 3);
const specs = Deno.args.length > 1
  ? Deno.args.slice(1)
  : ["debian:bookworm", "debian:trixie", "debian:trixie-backports", "debian:sid"];
const variants = [{ name: "verbose", append: "" }, { name: "quiet", append: "quiet" }];
const runRoot = await Deno.makeTempDir({ prefix: "rkhil-bench-" });

const results = [];
for (const spec of specs) {
  for (const v of variants) {
    const samples: { firstByte?: number; kernel?: number; shell?: number; ssh?: number }[] = [];
    let info = {};
    for (let i = 0; i < runs; i++) {
      const t = await QemuTarget.prepare({
        kernel: spec,
        runDir: `${runRoot}/${spec.replace(":", "_")}-${v.name}-${i}`,
        extraAppend: v.append,
      });
      info = {
        release: t.kernel.release,
        package: t.kernel.package,
        version: t.kernel.version,
        suite: t.kernel.suite,
        kernelDownloadBytes: t.kernel.debSize,
        vmlinuzBytes: (await Deno.stat(t.kernel.vmlinuz)).size,
        initramfsBytes: t.image.size,
      };
      try {
        const times = await t.ready();
        samples.push(times);
      } finally {
        await t.close();
      }
    }
    const r = {
      spec,
      variant: v.name,
      ...info,
      runs,
      shell: stats(samples.map((s) => s.shell!)),
      ssh: stats(samples.map((s) => s.ssh!)),
      kernel: stats(samples.map((s) => s.kernel!)),
      firstByte: stats(samples.map((s) => s.firstByte!)),
    };
    console.log(
      `${spec} ${v.name}: shell median ${r.shell.median.toFixed(2)} s ` +
        `(min ${r.shell.min.toFixed(2)}, max ${r.shell.max.toFixed(2)}), ssh ${
          r.ssh.median.toFixed(2)
        } s`,
    );
    results.push(r);
  }
}

const qemu = new TextDecoder().decode(
  (await (await hostCommand("qemu-system-aarch64", { args: ["--version"] })).output()).stdout,
).split("\n")[0];
await Deno.mkdir(new URL("./results", import.meta.url), { recursive: true });
const out = new URL("./results/qemu_boot.json", import.meta.url);
await Deno.writeTextFile(
  out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      host: { cpus: navigator.hardwareConcurrency, qemu, accel: "tcg" },
      machine: "-M virt -cpu cortex-a53 -smp 2 -m 8G",
      unit: "seconds from QMP cont",
      results,
    },
    null,
    2,
  ) + "\n",
);
console.log(`wrote ${out.pathname}`);
await Deno.remove(runRoot, { recursive: true }).catch(() => {});
