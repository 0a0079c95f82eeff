import assert from "node:assert/strict";
import fc from "fast-check";
import { buildFdt, cells, strings } from "../fdt/mod.ts";
import {
  collectKernelFacts,
  COMMANDS,
  compareWithModel,
  type KernelFacts,
  predictMemory,
  type RunCommand,
} from "./collect.ts";
import { ensureHostTool, hostCommand } from "../debian/host_tools.ts";

const dir = new URL("./testdata/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, dir));
const GiB = 2 ** 30;
const td = new TextDecoder();
/**
 * A real x86 host's kernel log (`dmesg -r` up to the `Memory:` line): the host tests read the
 * kernel log from it instead of the live ring buffer, which needs root or CAP_SYSLOG (with
 * kernel.dmesg_restrict=1) and may have lost the boot lines.
 */
const HOST_DMESG = new URL("dmesg-x86-host-raw.txt", dir).pathname;
const DMESG_CMD = COMMANDS.find((c) => c.id === "dmesg")!.cmd;

/**
 * A real local shell: `sh -c cmd` (or another shell), bounded by the timeout. What a command
 * runs is installed first when missing (hostCommand).
 */
function localShell(
  shell: string[] = ["sh", "-c"],
  env?: Record<string, string>,
  rewrite: (cmd: string) => string = (c) => c,
): RunCommand {
  return async (cmd, { timeoutMs }) => {
    const out = await (await hostCommand(shell[0], {
      args: [...shell.slice(1), rewrite(cmd)],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      signal: AbortSignal.timeout(timeoutMs),
      ...(env ? { env, clearEnv: true } : {}),
    })).output();
    return {
      stdout: td.decode(out.stdout),
      stderr: td.decode(out.stderr),
      exitStatus: out.code, // 128 + the signal number after a signal, as CommandResult
    };
  };
}

async function sh(cmd: string): Promise<string> {
  const out = await (await hostCommand("sh", { args: ["-c", cmd], stdout: "piped" })).output();
  return td.decode(out.stdout);
}

function missingNames(f: KernelFacts): string[] {
  return f.missing.map((m) => m.name);
}

Deno.test("collect from this host through a real sh -c", async () => {
  // util-linux dmesg prints the recorded log (-F FILE) as it prints the live one.
  const hostDmesg = (c: string) => c === DMESG_CMD ? `dmesg -F '${HOST_DMESG}' 2>/dev/null` : c;
  const f = await collectKernelFacts(localShell(["sh", "-c"], undefined, hostDmesg), {
    target: "host",
  });
  assert.equal(f.target, "host");
  assert.equal(f.release?.value.text, (await sh("uname -r")).trim());
  assert.equal(f.release?.provenance.source, "host: uname -r");
  assert.equal(f.release?.provenance.confidence, "measured");
  assert.equal(f.cmdline?.value.raw, Deno.readTextFileSync("/proc/cmdline").trimEnd());
  assert.ok(f.iomem && !f.iomem.value.addressesHidden);
  assert.ok(f.zoneinfo && f.zoneinfo.value.length > 0);
  assert.ok(f.meminfo?.value.memTotalKb);
  assert.ok(f.memoryBanks && f.memoryBanks.value.length > 0);
  assert.deepEqual(f.zones?.value.map((z) => z.name), ["DMA", "DMA32", "Normal", "Device"]);
  assert.equal(f.linuxVersion?.value.release, "6.18.44-fc-v782");
  assert.ok(f.rkIommu);
  // This x86 host has no /sys/firmware/fdt: a missing fact with its reason, not a crash.
  let hasFdt = true;
  try {
    Deno.statSync("/sys/firmware/fdt");
  } catch {
    hasFdt = false;
  }
  if (!hasFdt) {
    const m = f.missing.find((x) => x.name === "deviceTree");
    assert.ok(m && /not readable/.test(m.reason), JSON.stringify(f.missing));
    assert.equal(f.commands.filter((c) => c.id.startsWith("fdt-")).length, 1);
  }
  let hasConfig = true;
  try {
    Deno.statSync("/proc/config.gz");
  } catch {
    hasConfig = false;
  }
  if (hasConfig) {
    assert.equal(f.config?.provenance.source, "host: /proc/config.gz");
    assert.ok(f.config.value.total > 500);
    assert.ok("CONFIG_ZONE_DMA" in f.config.value.options);
  }
  for (const c of f.commands) assert.ok(c.durationMs >= 0 && c.cmd.length > 0);
  // Model comparison runs on the measured facts (x86 zones differ from the arm64 model).
  const p = predictMemory(f);
  assert.ok(p.ok, p.ok ? "" : p.reason);
  const cmp = compareWithModel(f, p.summary);
  for (const x of cmp.findings) assert.ok(x.fact && x.source.includes("host: "));
  assert.ok(cmp.findings.length + cmp.agreed.length > 0);
});

Deno.test("collect through busybox sh with only busybox applets on PATH", async () => {
  const bb = await ensureHostTool("busybox"); // package busybox, installed when missing
  const bin = await Deno.makeTempDir({ prefix: "rkhil-bb-" });
  try {
    for (const a of ["sh", "cat", "uname", "dmesg", "zcat", "gzip", "base64", "od", "["]) {
      await Deno.symlink(bb, `${bin}/${a}`);
    }
    const dtb = new URL("../fdt/testdata/6.12.118+deb13-arm64/rk3568-rock-3b.dtb", import.meta.url)
      .pathname;
    // busybox dmesg has no -F: the recorded log comes through busybox cat.
    const run = localShell(
      [`${bin}/sh`, "-c"],
      { PATH: bin },
      (c) =>
        c === DMESG_CMD
          ? `cat '${HOST_DMESG}' 2>/dev/null`
          : c.replaceAll("/sys/firmware/fdt", dtb),
    );
    const f = await collectKernelFacts(run, { target: "bb" });
    assert.equal(f.release?.value.text, (await sh("uname -r")).trim());
    assert.ok(f.zones && f.iomem && f.zoneinfo && f.meminfo && f.cmdline);
    // The DTB crossed as gzip + base64 through busybox and parsed.
    assert.equal(f.deviceTree?.value.transfer, "gzip+base64");
    assert.equal(f.deviceTree?.value.model, "Radxa ROCK 3B");
    assert.deepEqual(f.dtIommus?.value.map((n) => n.unit), ["fdea0800", "fdee0800", "fe043e00"]);
    assert.ok(f.dtIommus.value.every((n) => n.confidence === "measured"));
    assert.ok(f.dtIommus.value[0].source.startsWith("bb: /sys/firmware/fdt:"));
    // Debian's DTB has no /memory node: banks come from /proc/iomem.
    assert.equal(f.memoryBanks?.provenance.source, "bb: /proc/iomem System RAM");
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("FDT fallbacks: base64 alone, then od; memory banks from /memory nodes", async () => {
  const blob = buildFdt({
    name: "",
    props: [
      ["#address-cells", cells(2)],
      ["#size-cells", cells(2)],
      ["model", strings("rkhil test board")],
      ["compatible", strings("radxa,rock-3b", "rockchip,rk3568")],
    ],
    children: [
      {
        name: "memory@200000",
        props: [
          ["device_type", strings("memory")],
          ["reg", cells(0, 0x20_0000, 0, 0xefe0_0000, 1, 0, 1, 0)],
        ],
      },
      {
        name: "iommu@fdd90000",
        props: [
          ["compatible", strings("rockchip,rk3568-iommu")],
          ["reg", cells(0, 0xfdd9_0000, 0, 0x40)],
        ],
      },
    ],
  });
  const tmp = await Deno.makeTempFile({ suffix: ".dtb" });
  try {
    await Deno.writeFile(tmp, blob);
    for (const broken of [["gzip"], ["gzip", "base64"]]) {
      const real = localShell(
        ["sh", "-c"],
        undefined,
        (c) => c.replaceAll("/sys/firmware/fdt", tmp),
      );
      const run: RunCommand = (cmd, o) => {
        const id = COMMANDS.find((c) => c.cmd === cmd)?.id ?? "";
        if (id === "fdt-gzip-base64" && broken.includes("gzip")) {
          return Promise.resolve({ stdout: "", exitStatus: 0 }); // gzip missing: empty pipe
        }
        if (id === "fdt-base64" && broken.includes("base64")) {
          return Promise.resolve({ stdout: "sh: base64: not found\n", exitStatus: 127 });
        }
        return real(cmd, o);
      };
      const f = await collectKernelFacts(run, { target: "t" });
      assert.equal(f.deviceTree?.value.transfer, broken.length === 1 ? "base64" : "od");
      assert.deepEqual(f.deviceTree?.value.compatible, ["radxa,rock-3b", "rockchip,rk3568"]);
      assert.deepEqual(f.memoryBanks?.value, [
        { start: 0x20_0000, end: 0xf000_0000 },
        { start: 4 * GiB, end: 8 * GiB },
      ]);
      assert.equal(f.memoryBanks?.provenance.source, "t: /sys/firmware/fdt /memory nodes");
      assert.deepEqual(f.dtIommus?.value.map((n) => n.unit), ["fdd90000"]);
    }
  } finally {
    await Deno.remove(tmp);
  }
});

Deno.test("every command fails: every fact missing with a reason, no throw", async () => {
  const run: RunCommand = () => Promise.resolve({ stdout: "", exitStatus: 1 });
  const f = await collectKernelFacts(run, { target: "dead" });
  for (const n of ["release", "uname", "cmdline", "config", "dmesg", "iomem", "zoneinfo"]) {
    assert.ok(missingNames(f).includes(n), n);
  }
  assert.ok(missingNames(f).includes("memoryBanks"));
  assert.ok(missingNames(f).includes("deviceTree"));
  assert.ok(f.missing.every((m) => m.reason.length > 0 && m.source.startsWith("dead: ")));
  assert.equal(f.release, undefined);
  const p = predictMemory(f);
  assert.equal(p.ok, false);
});

Deno.test("channel throws or hangs: error and timeout records, no throw", async () => {
  const throwing: RunCommand = () => Promise.reject(new Error("transport lost"));
  const f = await collectKernelFacts(throwing, { target: "x" });
  assert.ok(f.commands.every((c) => c.outcome === "error"));
  assert.ok(f.missing.some((m) => m.reason.includes("transport lost")));
  const syncThrow: RunCommand = () => {
    throw new TypeError("not connected");
  };
  const g = await collectKernelFacts(syncThrow, { target: "x" });
  assert.ok(g.commands.every((c) => c.outcome === "error"));

  const hanging: RunCommand = () => new Promise<never>(() => {});
  const t0 = performance.now();
  const h = await collectKernelFacts(hanging, {
    target: "slow",
    timeoutMs: 5,
    fdtTimeoutMs: 5,
    graceMs: 5,
  });
  assert.ok(performance.now() - t0 < 5000);
  assert.ok(h.commands.every((c) => c.outcome === "timeout"));
  assert.ok(
    h.missing.find((m) => m.name === "release")?.reason.includes("owner: collectKernelFacts"),
  );
  // A timed-out fdt transfer is not retried with slower methods.
  assert.equal(h.commands.filter((c) => c.id.startsWith("fdt-")).length, 1);
});

Deno.test("property: hostile output from every command never throws", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          stdout: fc.oneof(
            fc.string({ maxLength: 300 }),
            fc.constantFrom(
              "Zone ranges:\n  DMA      [mem 0x0-0xfffffffffffffff]",
              "00000000-00000000 : System RAM\n00000000-00000000 : reserved",
              "0\n",
              "# rkhil-config-source: /x\nCONFIG_=",
              "////",
              "AAAA",
              "H4sI",
              "0d 00 fe ed",
            ),
          ),
          exitStatus: fc.oneof(fc.constant(0), fc.constant(137), fc.integer()),
        }),
        { minLength: 1, maxLength: 12 },
      ),
      async (answers) => {
        let i = 0;
        const run: RunCommand = () => Promise.resolve(answers[i++ % answers.length]);
        const f = await collectKernelFacts(run, { target: "h", consoleLog: answers[0].stdout });
        assert.equal(f.target, "h");
        const p = predictMemory(f);
        if (p.ok) compareWithModel(f, p.summary, { config: { dmaBounceUnalignedKmalloc: true } });
      },
    ),
    { numRuns: 60 },
  );
});

// ---------------------------------------------------------------------------------------------
// An arm64 target played back from fixtures in the exact formats (ROCK 3B 8 GB, Debian 6.12).

function playback(files: Record<string, string | null>): RunCommand {
  return (cmd) => {
    const id = COMMANDS.find((c) => c.cmd === cmd)?.id ?? "?";
    const text = files[id];
    return Promise.resolve(
      text == null ? { stdout: "", exitStatus: 1 } : { stdout: text, exitStatus: 0 },
    );
  };
}

const ROCK3B = {
  release: "6.12.118+deb13-arm64\n",
  uname:
    "Linux rock-3b 6.12.118+deb13-arm64 #1 SMP Debian 6.12.118-1 (2026-01-01) aarch64 GNU/Linux\n",
  cmdline: "console=ttyS2,1500000n8 root=/dev/mmcblk0p2 rw rootwait\n",
  config: `# rkhil-config-source: /boot/config-6.12.118+deb13-arm64\n${
    fixture("config-6.12.118+deb13-arm64.subset")
  }`,
  dmesg: fixture("dmesg-arm64-rock3b-8g-6.12-written.txt"),
  iomem: fixture("iomem-arm64-rock3b-8g-written.txt"),
  zoneinfo: fixture("zoneinfo-arm64-rock3b-8g-written.txt"),
  meminfo:
    "MemTotal:        8010000 kB\nMemFree:         7000000 kB\nCmaTotal:          65536 kB\nCmaFree:           60000 kB\n",
};

Deno.test("arm64 ROCK 3B 8 GB playback: facts with provenance; model agrees", async () => {
  const f = await collectKernelFacts(playback(ROCK3B), { target: "rock3b" });
  assert.deepEqual(f.release?.value.parsed, { major: 6, minor: 12 });
  assert.equal(f.uname?.value.machine, "aarch64");
  assert.equal(f.config?.provenance.source, "rock3b: /boot/config-6.12.118+deb13-arm64");
  assert.equal(f.config?.value.options.CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC, "y");
  assert.equal(f.config?.value.options.CONFIG_ROCKCHIP_IOMMU, "y");
  assert.equal(f.machineModel?.value, "Radxa ROCK 3B");
  assert.equal(f.meminfo?.value.cmaTotalKb, 65536);
  assert.equal(f.memoryBanks?.provenance.source, "rock3b: /proc/iomem System RAM");
  assert.equal(f.rkIommu?.value.faults.length, 1);
  assert.equal(f.cma?.value.length, 1);
  const p = predictMemory(f);
  assert.ok(p.ok, p.ok ? "" : p.reason);
  assert.deepEqual(p.assumptions, []);
  const cmp = compareWithModel(f, p.summary, { config: { dmaBounceUnalignedKmalloc: true } });
  assert.deepEqual(cmp.findings, []);
  for (
    const name of [
      "ZONE_DMA span",
      "ZONE_DMA32 span",
      "ZONE_NORMAL span",
      "SWIOTLB present",
      "SWIOTLB size",
      "SWIOTLB window below",
      "memory banks (early memory node ranges)",
      "CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC",
    ]
  ) assert.ok(cmp.agreed.includes(name), name);
});

Deno.test("arm64 playback: a kernel that disagrees with the model yields findings", async () => {
  const dmesg = ROCK3B.dmesg
    .replace(
      "DMA      [mem 0x0000000000200000-0x00000000ffffffff]",
      "DMA      [mem 0x0000000000200000-0x000000003fffffff]",
    )
    .replace("DMA32    empty", "DMA32    [mem 0x0000000040000000-0x00000000ffffffff]")
    .replace(/\(64MB\)/, "(32MB)")
    .replace("0x00000000e8000000-0x00000000ec000000", "0x00000000ea000000-0x00000000ec000000");
  const f = await collectKernelFacts(playback({ ...ROCK3B, dmesg }), { target: "odd" });
  const p = predictMemory(f);
  assert.ok(p.ok);
  const cmp = compareWithModel(f, p.summary, { config: { dmaBounceUnalignedKmalloc: false } });
  const byFact = Object.fromEntries(cmp.findings.map((x) => [x.fact, x]));
  assert.deepEqual(byFact["ZONE_DMA span"], {
    fact: "ZONE_DMA span",
    predicted: "[0x200000, 0x100000000)",
    measured: "[0x200000, 0x40000000)",
    source: "odd: dmesg vs oracle/memview.ts memoryView",
  });
  assert.ok(byFact["ZONE_DMA32 span"]);
  assert.equal(byFact["SWIOTLB size"].measured, 32 * 2 ** 20);
  assert.ok(byFact["CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC"]);
  // CMA is held against the predicted ZONE_DMA, which still holds it.
  assert.ok(cmp.agreed.includes("CMA at 0xec000000 inside the lowest zone"));
});

Deno.test("wrapped dmesg: console log fills the early lines; zoneinfo backs zone spans", async () => {
  const late = "[  100.000000] something late\n[  101.000000] and later\n";
  const f = await collectKernelFacts(playback({ ...ROCK3B, dmesg: late }), {
    target: "w",
    consoleLog: ROCK3B.dmesg,
  });
  assert.equal(f.zones?.provenance.source, "w: console log");
  assert.ok(f.problems.some((p) => p.includes("console log captured from power-on")));

  const g = await collectKernelFacts(playback({ ...ROCK3B, dmesg: late }), { target: "w" });
  assert.equal(g.zones, undefined);
  assert.ok(g.missing.find((m) => m.name === "zones")?.reason.includes("ring buffer"));
  const p = predictMemory(g);
  assert.ok(p.ok);
  const cmp = compareWithModel(g, p.summary);
  // Without the boot log, zone spans come from /proc/zoneinfo (start_pfn + spanned).
  assert.ok(cmp.agreed.includes("ZONE_DMA span"), JSON.stringify(cmp));
  assert.ok(cmp.agreed.includes("ZONE_NORMAL span"));
  assert.ok(cmp.inconclusive.some((i) => i.fact === "SWIOTLB"));
});

Deno.test("non-root target: hidden iomem is reported and not used for banks", async () => {
  const f = await collectKernelFacts(
    playback({ ...ROCK3B, iomem: fixture("iomem-x86-nonroot-host.txt") }),
    { target: "user" },
  );
  assert.equal(f.iomem?.value.addressesHidden, true);
  assert.ok(f.problems.some((p) => p.includes("CAP_SYS_ADMIN")));
  assert.equal(f.memoryBanks?.provenance.source, "user: dmesg Early memory node ranges");
});
