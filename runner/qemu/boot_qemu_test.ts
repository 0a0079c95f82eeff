/**
 * Real QEMU tests: fetch Debian arm64 kernels through the private apt, build the initramfs,
 * boot to the console shell, run a console command, connect SSH, power-cycle over QMP, and
 * prove that QEMU never outlives a runner killed with SIGKILL. Needs the machine's Debian
 * mirror; missing host tools are installed (ensureHostTools), not skipped.
 */
import assert from "node:assert/strict";
import { ensureHostTools } from "../debian/host_tools.ts";
import { fetchKernel, resolveKernel, sharedApt } from "../debian/kernel.ts";
import { UserInputError } from "../errors.ts";
import { QEMU_HOST_TOOLS, QemuTarget } from "./target.ts";
import { testRunRoot } from "../test_dirs.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const runRoot = await testRunRoot("rkhil-qemu-test-");

/** Kernels the suite boots: 6.1, 6.12 and a 7.x (trixie-backports or sid). */
const KERNELS = ["debian:bookworm", "debian:trixie", "debian:trixie-backports", "debian:sid"];

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat); // a zombie is dead
  } catch {
    return false;
  }
}

Deno.test("host tools are installed (apt-get if missing)", opts, async () => {
  const r = await ensureHostTools(QEMU_HOST_TOOLS);
  for (const t of QEMU_HOST_TOOLS) assert.ok(r.paths[t], t);
});

Deno.test(
  "the mirror's kernel suites resolve; an unknown version lists what exists",
  opts,
  async () => {
    const { report } = await sharedApt();
    console.log(
      `mirror serves: ${report.served.map((s) => s.suite).join(", ")}; missing: ${
        report.missing.join(", ") || "none"
      }`,
    );
    for (const spec of KERNELS) {
      const k = await resolveKernel(spec);
      console.log(`${spec} -> ${k.package} ${k.version} (${k.suite})`);
      assert.match(k.release, /-arm64$/);
    }
    await assert.rejects(() => resolveKernel("debian:6.1.999-9"), (err: unknown) => {
      assert.ok(err instanceof UserInputError);
      assert.match(err.hint, /versions it has/);
      return true;
    });
    // rkhil's apt never touched the host's state: no arm64 lists in the host's lists.
    for await (const e of Deno.readDir("/var/lib/apt/lists")) {
      assert.ok(!e.name.includes("binary-arm64"), `host lists got ${e.name}`);
    }
  },
);

for (const spec of KERNELS) {
  Deno.test(`${spec}: boot to console shell, console command, SSH banner`, opts, async () => {
    const k = await fetchKernel(spec);
    assert.ok(k.dtbDir, "DTBs present");
    const runDir = `${runRoot}/${spec.replace(":", "_")}`;
    const t = await QemuTarget.prepare({ kernel: spec, runDir });
    try {
      const times = await t.ready();
      console.log(
        `${spec} (${k.release}): shell ${times.shell?.toFixed(2)} s, ssh ${
          times.ssh?.toFixed(2)
        } s, attempts ${times.attempts}`,
      );
      assert.equal(t.state, "ready");
      assert.equal(t.name, "qemu-virt-8g");
      assert.ok(t.capabilities.has("boot-config") && t.capabilities.has("probe-module"));
      assert.equal(t.release, k.release);
      assert.match(t.sshSession?.target ?? "", /^root@127\.0\.0\.1:\d+$/);
      const r = await t.command.run(
        "uname -r; test -r /sys/firmware/fdt && test -r /proc/kcore && test -r /sys/kernel/btf/vmlinux && echo introspection-ok",
        { via: "serial" },
      );
      assert.equal(r.exitStatus, 0);
      assert.equal(r.stdout.split("\n")[0], k.release);
      assert.match(r.stdout, /introspection-ok/);
      const fail = await t.command.run("false", { via: "serial" });
      assert.equal(fail.exitStatus, 1);
      const log = await Deno.readTextFile(`${runDir}/console.log`);
      assert.match(log, /^\[\+ +\d+\.\d{6}\] /m, "timestamped console log");
      // The raw capture (serialport path) has every byte from the first one, with an index.
      const raw = await Deno.readTextFile(`${runDir}/console.raw`);
      assert.match(raw, /Booting Linux|Linux version/);
      const idx = (await Deno.readTextFile(`${runDir}/console.raw.idx.jsonl`)).split("\n");
      assert.equal(JSON.parse(idx[0]).off, 0);
    } finally {
      await t.close();
    }
    assert.equal(t.state, "off");
  });
}

Deno.test(
  "QMP power cycle: a second boot reaches the shell on the same console",
  opts,
  async () => {
    const runDir = `${runRoot}/reset`;
    const t = await QemuTarget.prepare({ kernel: "debian:trixie", runDir });
    try {
      await t.ready({ consoleOnly: true });
      const m = t.machine!;
      const again = await t.reboot();
      console.log(
        `after reset: shell ${again.shell?.toFixed(2)} s, ssh ${again.ssh?.toFixed(2)} s`,
      );
      assert.equal(t.state, "ready");
      assert.equal(t.machine, m, "system_reset: the same QEMU and console");
      const boots = t.machine!.console.text.match(/rkhil-init: start/g) ?? [];
      assert.equal(boots.length, 2);
      assert.deepEqual(t.transitions.map((x) => x.to), [
        "booting",
        "shell",
        "booting",
        "shell",
        "ready",
      ]);
    } finally {
      await t.close();
    }
  },
);

Deno.test("kill -9 of the runner leaves no QEMU (bound: 5 s)", opts, async () => {
  const runDir = `${runRoot}/kill9`;
  const helper = new URL("./testdata/hold_target.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", helper, "debian:trixie", runDir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
  }
  const { qemuPid, watchdogPid } = JSON.parse(buf.split("\n")[0]) as {
    qemuPid: number;
    watchdogPid: number;
  };
  assert.ok(alive(qemuPid), "QEMU runs while the runner lives");
  const t0 = performance.now();
  child.kill("SIGKILL");
  await child.status;
  while (alive(qemuPid) && performance.now() - t0 < 5_000) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - t0;
  console.log(`QEMU pid ${qemuPid} gone ${ms.toFixed(0)} ms after SIGKILL of the runner`);
  assert.ok(!alive(qemuPid), `QEMU ${qemuPid} still alive 5 s after the runner was killed`);
  while (alive(watchdogPid) && performance.now() - t0 < 5_000) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(!alive(watchdogPid), "watchdog gone too");
  await reader.cancel();
});

Deno.test("kill -9 of the watchdog also takes QEMU down (pdeathsig)", opts, async () => {
  const runDir = `${runRoot}/kill9-watchdog`;
  const t = await QemuTarget.prepare({ kernel: "debian:trixie", runDir });
  await t.ready({ consoleOnly: true });
  const pid = t.machine!.qemuPid;
  const t0 = performance.now();
  Deno.kill(t.machine!.watchdog.pid, "SIGKILL");
  while (alive(pid) && performance.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 20));
  assert.ok(!alive(pid), "QEMU outlived its watchdog");
  await t.close();
});
