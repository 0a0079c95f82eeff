import assert from "node:assert/strict";
import fc from "fast-check";
import {
  configEnabled,
  iomemFlat,
  iomemRamBanks,
  parseCmdline,
  parseDmesg,
  parseIomem,
  parseKernelConfig,
  parseMeminfo,
  parseUnameA,
  parseUnameR,
  parseZoneinfo,
  stripPrintkPrefix,
  zoneinfoSpans,
} from "./parsers.ts";
import { hostCommand } from "../debian/host_tools.ts";

const dir = new URL("./testdata/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, dir));
const GiB = 2 ** 30;

/** `sh -c cmd` on this host; what cmd runs is installed first when missing. */
async function sh(cmd: string): Promise<{ stdout: string; code: number }> {
  const o = await (await hostCommand("sh", { args: ["-c", cmd], stdout: "piped", stderr: "null" }))
    .output();
  return { stdout: new TextDecoder().decode(o.stdout), code: o.code };
}

// ---------------------------------------------------------------------------------------------
// This host's own files (x86, but the same kernel code prints them).

Deno.test("host /proc/iomem parses with nesting and RAM banks", () => {
  const p = parseIomem(Deno.readTextFileSync("/proc/iomem"));
  assert.deepEqual(p.problems, []);
  assert.equal(p.addressesHidden, false);
  assert.ok(p.count > 3);
  const ram = iomemRamBanks(p);
  assert.ok(ram.length > 0);
  const flat = iomemFlat(p);
  assert.ok(flat.some((r) => r.depth > 0), "some resource is nested");
  // "Kernel code" nests inside a System RAM resource.
  const kc = flat.find((r) => r.name === "Kernel code");
  if (kc) {
    assert.ok(p.roots.some((r) => r.name === "System RAM" && r.children.includes(kc)));
  }
  const meminfo = parseMeminfo(Deno.readTextFileSync("/proc/meminfo"));
  const ramBytes = ram.reduce((s, r) => s + r.end - r.start, 0);
  assert.ok(meminfo.memTotalKb !== null && ramBytes >= meminfo.memTotalKb * 1024);
});

Deno.test("host /proc/iomem read as nobody: addresses hidden, detected", async () => {
  const live = await sh("command -v su >/dev/null && su nobody -s /bin/sh -c 'cat /proc/iomem'");
  for (
    const text of [fixture("iomem-x86-nonroot-host.txt"), ...(live.code === 0 ? [live.stdout] : [])]
  ) {
    const p = parseIomem(text);
    assert.equal(p.addressesHidden, true);
    assert.deepEqual(iomemRamBanks(p), []);
    assert.ok(p.problems.some((x) => x.includes("CAP_SYS_ADMIN")));
    assert.ok(iomemFlat(p).some((r) => r.name === "System RAM"));
  }
});

Deno.test("host /proc/zoneinfo: watermarks, protection, start_pfn; pageset high: ignored", () => {
  const text = Deno.readTextFileSync("/proc/zoneinfo");
  const p = parseZoneinfo(text);
  assert.deepEqual(p.problems, []);
  const populated = p.zones.filter((z) => (z.present ?? 0) > 0);
  assert.ok(populated.length > 0);
  for (const z of p.zones) {
    assert.ok(z.min !== undefined && z.low !== undefined && z.high !== undefined, z.zone);
    assert.ok(z.min <= z.low && z.low <= z.high, `${z.zone} watermarks ordered`);
    assert.ok(z.protection && z.protection.length > 0);
    assert.ok(z.spanned !== undefined && z.present !== undefined && z.managed !== undefined);
    assert.ok(z.present <= z.spanned && z.managed <= z.present);
  }
  for (const z of populated) assert.ok(z.startPfn !== undefined, `${z.zone} start_pfn`);
  // The first zone's watermark `high` is the watermark, not the per-CPU pageset `high:`.
  const m = /^Node 0, zone\s+\S+\n(?:.*\n)*?\s+high\s+(\d+)$/m.exec(text);
  assert.ok(m);
  assert.equal(p.zones[0].high, Number(m[1]));
});

Deno.test("host /proc/meminfo, /proc/cmdline, uname", async () => {
  const mi = parseMeminfo(Deno.readTextFileSync("/proc/meminfo"));
  assert.deepEqual(mi.problems, []);
  assert.ok(mi.memTotalKb! > 0);
  assert.equal(mi.fields.MemTotal, mi.memTotalKb);
  const cl = parseCmdline(Deno.readTextFileSync("/proc/cmdline"));
  assert.ok(cl.args);
  assert.equal(cl.raw, Deno.readTextFileSync("/proc/cmdline").trimEnd());
  const r = parseUnameR((await sh("uname -r")).stdout);
  assert.ok(r.release?.parsed, "uname -r parses");
  const a = parseUnameA((await sh("uname -a")).stdout);
  assert.equal(a.uname?.release, r.release?.text);
  assert.ok(a.uname?.machine);
});

// A real x86 host's kernel log (`dmesg -r`, boot to the `Memory:` line, the command line
// left out), printed by util-linux dmesg from the file (`-F`): the same program and formats as
// the live log, without depending on root, CAP_SYSLOG or kernel.dmesg_restrict, nor on the
// ring buffer still holding the boot lines.
Deno.test("host dmesg (util-linux dmesg -F, real x86 log): banner, zones, nodes, Memory:", async () => {
  const file = new URL("dmesg-x86-host-raw.txt", dir).pathname;
  const d = await sh(`dmesg -F '${file}'`);
  assert.equal(d.code, 0);
  const p = parseDmesg(d.stdout);
  assert.deepEqual(p.problems, []);
  assert.equal(p.linuxVersion?.release, "6.18.44-fc-v782");
  assert.deepEqual(p.memory.zones.map((z) => z.name), ["DMA", "DMA32", "Normal", "Device"]);
  assert.ok(p.memory.nodes.length > 0);
  assert.equal(p.memoryLine?.totalKb, 25165432);
  assert.equal(p.memoryLine?.availableKb, 3218112);
  assert.ok("kernel code" in p.memoryLine.parts);
  // The raw form (`dmesg -r`: <level>[time] prefixes) parses the same.
  const x = await sh(`dmesg -r -F '${file}'`);
  assert.equal(x.code, 0);
  assert.match(x.stdout, /^<5>\[ +0\.000000\] Linux version /);
  const q = parseDmesg(x.stdout);
  assert.deepEqual(q.memory.zones, p.memory.zones);
  assert.deepEqual(q.memory.nodes, p.memory.nodes);
  assert.deepEqual(q.linuxVersion, p.linuxVersion);
});

Deno.test("host /proc/config.gz (when present) parses", async () => {
  const c = await sh("zcat /proc/config.gz 2>/dev/null");
  if (c.code !== 0) return; // Not every kernel has CONFIG_IKCONFIG_PROC; fixtures below cover it.
  const p = parseKernelConfig(c.stdout);
  assert.deepEqual(p.problems, []);
  assert.ok(Object.keys(p.values).length > 500);
  assert.ok(p.header);
});

// ---------------------------------------------------------------------------------------------
// arm64 formats.

Deno.test("Debian arm64 configs 6.1 / 6.12 / 7.3: relevant options", () => {
  const c61 = parseKernelConfig(fixture("config-6.1.0-56-arm64.subset"));
  const c612 = parseKernelConfig(fixture("config-6.12.118+deb13-arm64.subset"));
  const c73 = parseKernelConfig(fixture("config-7.3.4+deb13-arm64.subset"));
  for (const c of [c61, c612, c73]) {
    assert.deepEqual(c.problems, []);
    assert.equal(c.header?.arch, "arm64");
    assert.equal(c.values.CONFIG_ROCKCHIP_IOMMU, "y");
    assert.equal(c.values.CONFIG_ZONE_DMA, "y");
    assert.equal(c.values.CONFIG_ZONE_DMA32, "y");
    assert.equal(c.values.CONFIG_CMA_SIZE_MBYTES, "64");
    assert.equal(c.values.CONFIG_IOMMU_DEFAULT_DMA_STRICT, "y");
    assert.equal(c.values.CONFIG_IOMMU_DEFAULT_PASSTHROUGH, "n");
    assert.equal(c.values.CONFIG_IKCONFIG, "n");
  }
  assert.equal(c61.header?.version, "6.1.192");
  // arm64 selects DMA_BOUNCE_UNALIGNED_KMALLOC from v6.5: absent in 6.1, set later.
  assert.equal(configEnabled(c61.values, "CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC"), undefined);
  assert.equal(configEnabled(c612.values, "CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC"), true);
  assert.equal(configEnabled(c61.values, "CONFIG_KALLSYMS_ALL"), false);
  assert.equal(configEnabled(c73.values, "CONFIG_KALLSYMS_ALL"), true);
  assert.equal(c73.values.CONFIG_LOCALVERSION, "");
  assert.equal(c73.values.CONFIG_DEFAULT_HOSTNAME, "(none)");
});

Deno.test("config: string escapes, numbers, bad lines reported", () => {
  const p = parseKernelConfig(
    [
      'CONFIG_A="a \\"q\\" \\\\ b"',
      "CONFIG_B=0x1000",
      "CONFIG_C=-3",
      "CONFIG_D=m",
      "CONFIG_E=maybe",
      'CONFIG_F="unterminated',
      "# CONFIG_G is not set",
      "# random comment",
    ].join("\n"),
  );
  assert.equal(p.values.CONFIG_A, 'a "q" \\ b');
  assert.equal(p.values.CONFIG_B, "0x1000");
  assert.equal(p.values.CONFIG_C, "-3");
  assert.equal(configEnabled(p.values, "CONFIG_D"), true);
  assert.equal(p.values.CONFIG_G, "n");
  assert.equal(p.problems.length, 2);
});

Deno.test("dmesg arm64 QEMU virt 6.11 (real syzbot log): zones, node, CMA 'on node -1'", () => {
  const p = parseDmesg(fixture("dmesg-arm64-qemu-virt-6.11-syzbot.txt"));
  assert.deepEqual(p.problems, []);
  assert.equal(p.machineModel, "linux,dummy-virt");
  assert.equal(p.linuxVersion?.release, "6.11.0-rc5-syzkaller-g33faa93bc856");
  assert.deepEqual(p.memory.zones, [
    { name: "DMA", span: { start: 0x4000_0000, end: 0xc000_0000 } },
    { name: "DMA32", span: null },
    { name: "Normal", span: null },
    { name: "Device", span: null },
  ]);
  assert.deepEqual(p.memory.nodes, [{ node: 0, range: { start: 0x4000_0000, end: 0xc000_0000 } }]);
  assert.deepEqual(p.cma, [{
    kind: "reserved",
    sizeMiB: 32,
    base: 0xbba0_0000,
    node: -1,
    baseUnknown: false,
    line: "cma: Reserved 32 MiB at 0x00000000bba00000 on node -1",
  }]);
  assert.equal(p.swiotlb, null);
});

Deno.test("dmesg arm64 QEMU virt 6.5 (real syzbot log): CMA line without node", () => {
  const p = parseDmesg(fixture("dmesg-arm64-qemu-virt-6.5-syzbot.txt"));
  assert.equal(p.cma.length, 1);
  const c = p.cma[0];
  assert.ok(c.kind === "reserved" && c.node === undefined && c.base === 0xbb80_0000);
});

Deno.test("dmesg arm64 i.MX8MM 6.6 excerpt: DT CMA pool and OF reserved mem", () => {
  const p = parseDmesg(fixture("dmesg-arm64-imx8mm-6.6-excerpt.txt"));
  assert.deepEqual(p.problems, []);
  assert.equal(p.machineModel, "FSL i.MX8MM EVK board");
  assert.deepEqual(p.cma.map((c) => c.kind), ["dt-pool"]);
  const pool = p.cma[0];
  assert.ok(pool.kind === "dt-pool" && pool.base === 0x9600_0000 && pool.sizeMiB === 640);
  assert.deepEqual(p.reservedMem.map((r) => r.kind), ["initialized", "region"]);
  const region = p.reservedMem[1];
  assert.ok(region.kind === "region");
  assert.deepEqual(region.range, { start: 0x9600_0000, end: 0xbe00_0000 });
  assert.equal(region.sizeKiB, (region.range.end - region.range.start) / 1024);
  assert.equal(region.reusable, true);
  assert.equal(region.nomap, false);
  assert.equal(region.dump, undefined);
  assert.equal(region.name, "linux,cma");
});

Deno.test("dmesg ROCK 3B 8 GB 6.12 (written from source formats, <N>[ts] prefixes)", () => {
  const p = parseDmesg(fixture("dmesg-arm64-rock3b-8g-6.12-written.txt"));
  assert.deepEqual(p.problems, []);
  assert.equal(p.machineModel, "Radxa ROCK 3B");
  assert.equal(p.linuxVersion?.release, "6.12.118+deb13-arm64");
  assert.equal(p.bootCommandLine, "console=ttyS2,1500000n8 root=/dev/mmcblk0p2 rw rootwait");
  assert.deepEqual(p.memory.zones, [
    { name: "DMA", span: { start: 0x20_0000, end: 4 * GiB } },
    { name: "DMA32", span: null },
    { name: "Normal", span: { start: 4 * GiB, end: 8 * GiB } },
  ]);
  assert.equal(p.memory.nodes.length, 2);
  assert.deepEqual(p.swiotlb, {
    kind: "mapped",
    window: { start: 0xe800_0000, end: 0xec00_0000 },
    mb: 64,
  });
  assert.equal(p.memoryLine?.parts["cma-reserved"], 65536);
  assert.equal(p.memoryLine?.totalKb, 8124416);
  const rm = p.reservedMem[0];
  assert.ok(rm.kind === "region" && rm.nomap && !rm.reusable && rm.name === "shmem@110000");
  assert.equal(p.rkIommu.faults.length, 1);
  assert.equal(p.rkIommu.faults[0].device, "fdd90000.iommu");
  assert.equal(p.rkIommu.faults[0].access, "write");
  assert.equal(p.rkIommu.faults[0].complete, true);
});

Deno.test("CMA formats across releases, including the base-0 print bug and multi-range", () => {
  const p = parseDmesg(
    [
      "[    0.000000] cma: Reserved 64 MiB at 0x00000000fc000000",
      "[    0.000000] cma: Reserved 64 MiB at 0x00000000fc000000 on node -1",
      "[    0.000000] cma: Reserved 64 MiB at 0x0000000000000000",
      "[    0.000000] cma: Reserved 1024 MiB in 2 ranges",
      "[    0.000000] cma: Reserved 512 MiB in 1 range",
      "[    0.000000] cma: Failed to reserve 64 MiB on node 0",
      "[    0.000000] cma: Failed to reserve 64 MiB",
      "[    0.000000] cma: Reserved lots",
    ].join("\n"),
  );
  assert.deepEqual(
    p.cma.map((c) => c.kind),
    ["reserved", "reserved", "reserved", "reserved-ranges", "reserved-ranges", "failed", "failed"],
  );
  const zero = p.cma[2];
  assert.ok(zero.kind === "reserved" && zero.baseUnknown);
  assert.equal(p.problems.length, 1);
});

Deno.test("newer OF reserved mem line with the dump word", () => {
  const p = parseDmesg(
    "OF: reserved mem: 0x00000000be000000..0x00000000bfdfffff (30720 KiB) map non-reusable no-dump ramoops@be000000",
  );
  const r = p.reservedMem[0];
  assert.ok(r.kind === "region" && r.dump === false && r.name === "ramoops@be000000");
});

Deno.test("iomem arm64 (written from kernel/resource.c r_show): >32-bit addresses, nomap RAM", () => {
  const p = parseIomem(fixture("iomem-arm64-rock3b-8g-written.txt"));
  assert.deepEqual(p.problems, []);
  assert.deepEqual(iomemRamBanks(p), [
    { start: 0x20_0000, end: 0xf000_0000 },
    { start: 4 * GiB, end: 8 * GiB },
  ]);
  const ram = p.roots.find((r) => r.name === "System RAM");
  assert.deepEqual(ram?.children.map((c) => c.name), [
    "Kernel code",
    "reserved",
    "Kernel data",
    "reserved",
    "reserved",
  ]);
  assert.ok(p.roots.some((r) => r.name === "fdd90000.iommu iommu@fdd90000"));
});

Deno.test("iomem: bad indentation and junk are problems, not crashes", () => {
  const p = parseIomem("00000000-0000ffff : a\n      00001000-00001fff : b\n zz\n ffff-0000 : rev");
  assert.equal(p.count, 2);
  assert.equal(p.roots[0].children[0].name, "b");
  assert.ok(p.problems.length >= 3);
});

Deno.test("zoneinfo arm64 8 GB (written from mm/vmstat.c): spans from start_pfn", () => {
  const p = parseZoneinfo(fixture("zoneinfo-arm64-rock3b-8g-written.txt"));
  assert.deepEqual(p.problems, []);
  assert.deepEqual(p.zones.map((z) => z.zone), ["DMA", "DMA32", "Normal"]);
  assert.equal(p.zones[0].high, 8444);
  assert.equal(p.zones[0].cma, 16384);
  assert.deepEqual(p.zones[0].protection, [0, 0, 6890, 6890, 6890]);
  assert.equal(p.zones[1].startPfn, undefined);
  assert.deepEqual(zoneinfoSpans(p).map((s) => s.span), [
    { start: 0x20_0000, end: 4 * GiB },
    null,
    { start: 4 * GiB, end: 8 * GiB },
  ]);
});

Deno.test("printk prefixes are stripped", () => {
  const want = "Machine model: X";
  for (
    const l of [
      want,
      `[    0.000000] ${want}`,
      `<6>[    0.000000] ${want}`,
      `<6>${want}`,
      `[    0.000000] [    T0] ${want}`,
      `[    0.000000][    T0] ${want}`,
      `kern  :info  : [    0.000000] ${want}`,
      `Nov 24 20:28:01 board kernel: [    0.000000] ${want}`,
      `[Mon Nov 24 20:28:01 2025] ${want}\r`,
    ]
  ) {
    assert.equal(stripPrintkPrefix(l).text, want, l);
  }
  assert.equal(stripPrintkPrefix("[   12.500000] x").timestampSec, 12.5);
});

Deno.test("truncated inputs: partial lines are skipped", () => {
  const full = fixture("dmesg-arm64-rock3b-8g-6.12-written.txt");
  for (let cut = 0; cut < full.length; cut += 97) {
    const p = parseDmesg(full.slice(0, cut));
    assert.ok(Array.isArray(p.cma));
  }
  const zi = Deno.readTextFileSync("/proc/zoneinfo");
  assert.ok(parseZoneinfo(zi.slice(0, zi.length / 2)).zones.length >= 1);
});

// ---------------------------------------------------------------------------------------------
// Hostile input.

const hostile = fc.oneof(
  fc.string({ maxLength: 400 }),
  fc.string({ unit: "binary", maxLength: 400 }),
  fc.array(
    fc.constantFrom(
      "Zone ranges:",
      "  DMA      [mem 0x0000000040000000-0x00000000bfffffff]",
      "  DMA32    empty",
      "  node   0: [mem 0xffffffffffffffff-0x0000000000000000]",
      "cma: Reserved 99999999999999 MiB at 0xffffffffffffffff on node -99",
      "cma: Reserved 64 MiB in 0 ranges",
      "OF: reserved mem: 0xffffffffffffffff..0x0 (1 KiB) map reusable x",
      "Memory: 1K/2K available (oops)",
      "software IO TLB: mapped [mem 0x2-0x1] (1MB)",
      "Node 0, zone      DMA",
      "        protection: (1, x)",
      "        high     99999999999999999999999",
      "  start_pfn:           1",
      "ffffffffffffffff-ffffffffffffffff : System RAM",
      "      00000000-ffffffff : deep",
      'CONFIG_X="\\',
      "# CONFIG_ is not set",
      "MemTotal: 99999999999999999999 kB",
      "rk_iommu fdd90000.iommu: Page fault at 0x of type read",
      "<999>[ 1.1] [T1] Linux version",
      "\r",
      "",
    ),
    { maxLength: 40 },
  ).map((ls) => ls.join("\n")),
);

Deno.test("property: no parser throws on hostile input", () => {
  fc.assert(
    fc.property(hostile, (text) => {
      parseIomem(text);
      parseZoneinfo(text);
      parseMeminfo(text);
      parseKernelConfig(text);
      parseCmdline(text);
      parseUnameR(text);
      parseUnameA(text);
      const d = parseDmesg(text);
      for (const c of d.cma) {
        if ("base" in c) assert.ok(Number.isSafeInteger(c.base));
      }
      const io = parseIomem(text);
      for (const r of iomemFlat(io)) assert.ok(r.range.end > r.range.start);
    }),
    { numRuns: 400 },
  );
});

Deno.test("property: iomem round trip of generated trees", () => {
  const node = fc.record({
    start: fc.integer({ min: 0, max: 2 ** 40 }),
    len: fc.integer({ min: 1, max: 2 ** 30 }),
    name: fc.stringMatching(/^[A-Za-z][A-Za-z0-9 :@.,_-]{0,20}$/),
    depth: fc.integer({ min: 0, max: 3 }),
  });
  fc.assert(
    fc.property(fc.array(node, { maxLength: 20 }), (rows) => {
      let prev = -1;
      const text = rows.map((r) => {
        const d = Math.min(r.depth, prev + 1);
        prev = d;
        const w = (n: number) => n.toString(16).padStart(8, "0");
        return `${"  ".repeat(d)}${w(r.start)}-${w(r.start + r.len - 1)} : ${r.name}`;
      }).join("\n");
      const p = parseIomem(text);
      assert.deepEqual(p.problems.filter((x) => !x.includes("CAP_SYS_ADMIN")), []);
      assert.equal(p.count, rows.length);
      assert.deepEqual(iomemFlat(p).map((r) => r.name), rows.map((r) => r.name));
    }),
  );
});
