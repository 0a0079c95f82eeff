/**
 * The probe module on real Debian arm64 kernels in 8 GiB QEMU `-M virt` guests (RAM
 * 0x4000_0000-0x2_4000_0000, so ZONE_DMA ends at 4 GiB and ZONE_NORMAL is above it, like an
 * 8 GB RK3568): the seed's failure modes, reproduced on each kernel's real allocator, DMA API
 * and SWIOTLB. Every entry the module wrote is checked against oracle/entries.ts.
 */
import assert from "node:assert/strict";
import { mkDte, mkPte, ptAddress } from "../../oracle/entries.ts";
import { withQemuTarget } from "../qemu/target.ts";
import { probeShellOf } from "../suite/target_io.ts";
import { buildProbeModule } from "./build.ts";
import { directoryTable, pageTableOf, type ProbeReport, walkOf } from "./report.ts";
import { type ProbeParams, runProbe, type Shell } from "./run.ts";
import { testRunRoot } from "../test_dirs.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const runRoot = await testRunRoot("rkhil-probe-test-");
const FOUR_GIB = 2 ** 32;

/** Encoding vectors (research §1.4 worked vectors and edge cases). */
const VECTORS = [
  0x1_0172_2000,
  0x1_02c0_1000,
  0xab_cdef_1000,
  0xff_ffff_f000,
  0x100_0000_0000, // bit 40: dropped by v2
  0xffff_f000,
  0x4000_0000,
  0x0,
  0x1_0000_0fff, // low bits ignored
];

/** Every DTE/PTE the module wrote must be what the oracle computes. */
function checkAgainstOracle(r: ProbeReport): void {
  const f = r.params.format;
  for (const t of r.tables) {
    if (t.kind !== "pt" || t.dma === null) continue;
    assert.equal(t.dteValue, mkDte(f, t.dma), `DTE of PT ${t.dte}`);
    assert.equal(t.cpu, ptAddress(f, t.dteValue!), `derived CPU address of PT ${t.dte}`);
  }
  for (const w of r.walks) {
    if (w.dteValue !== undefined) {
      assert.equal(ptAddress(f, w.dteValue), pageTableOf(r, w.iova)!.dma, "walker's PT address");
    }
    if (w.pteValue) assert.equal(w.pteValue, mkPte(f, w.expected, r.params.perm), "PTE");
  }
  for (const e of r.encodings) {
    assert.equal(e.v1Dte, mkDte("v1", e.addr), `v1 DTE of 0x${e.addr.toString(16)}`);
    assert.equal(e.v2Dte, mkDte("v2", e.addr), `v2 DTE of 0x${e.addr.toString(16)}`);
    assert.equal(e.v1Pte, mkPte("v1", e.addr, r.params.perm));
    assert.equal(e.v2Pte, mkPte("v2", e.addr, r.params.perm));
    assert.equal(e.v1Addr, ptAddress("v1", e.v1Pte));
    assert.equal(e.v2Addr, ptAddress("v2", e.v2Pte));
    assert.equal(e.v2Decode, ptAddress("v2", e.addr % FOUR_GIB));
  }
}

function summary(name: string, r: ProbeReport): string {
  const t = r.tables.map((x) =>
    `${x.kind}${x.dte ?? ""}@0x${x.phys.toString(16)}${
      x.bounced ? `->0x${x.dma!.toString(16)}` : ""
    }`
  ).join(" ");
  const w = r.walks.map((x) =>
    `${x.result}${x.level ? `/${x.level}` : ""}${x.pteValue === 0 ? "(pte=0)" : ""}`
  ).join(" ");
  return `  ${name}: tables ${t} | walks ${w}`;
}

const MAPS: ProbeParams["mappings"] = [
  { iova: 0x1000_0000, where: "high", pages: 2 },
  { iova: 0x1040_0000, where: "low" },
];

async function withProbeGuest(
  spec: string,
  append: string | undefined,
  body: (shell: Shell, ko: Uint8Array, release: string) => Promise<void>,
): Promise<void> {
  const mod = await buildProbeModule(spec);
  const ko = await Deno.readFile(mod.ko);
  const runDir = `${runRoot}/${spec.replace(":", "_")}${
    append ? "-" + append.replace(/\W/g, "_") : ""
  }`;
  await withQemuTarget({ kernel: spec, runDir, memory: "8G", extraAppend: append }, async (g) => {
    assert.equal(g.release, mod.release, "the guest runs the kernel the module is for");
    const shell = probeShellOf(g);
    const u = await shell.exec("dmesg | grep 'software IO TLB: mapped'");
    console.log(
      `${spec}${append ? ` (${append})` : ""}: ${mod.release}, ssh after ${
        g.lastBoot?.ssh?.toFixed(1)
      } s; ${u.stdout.replace(/^\[[^\]]*\] /, "").trim()}`,
    );
    await body(shell, ko, mod.release);
    // The guest survived every run (no oops, no warning splat) and still answers.
    const alive = await shell.exec(
      "echo alive; dmesg | grep -c -E 'Oops|BUG:|Unable to handle|WARNING:' || true",
    );
    assert.match(alive.stdout, /^alive\n0$/m, alive.stdout);
    assert.deepEqual(g.faults, [], "no kernel fault on the console");
  });
}

for (const spec of ["debian:bookworm", "debian:trixie", "debian:trixie-backports"]) {
  Deno.test(`${spec}: seed failure modes on the real kernel (8 GiB guest)`, opts, async () => {
    await withProbeGuest(spec, undefined, async (shell, ko) => {
      // Failure mode 2: v2 ops >= 6.6 (gfp 0) with a 32-bit mask: tables land above 4 GiB,
      // dma_map_single bounces them, the PTEs written through phys_to_virt(bounce) are erased
      // by the next flush; every PTE reads as zero.
      const none32 = (await runProbe(shell, ko, {
        gfp: "none",
        maskBits: 32,
        format: "v2",
        mappings: MAPS,
        encode: VECTORS,
      })).report;
      console.log(summary("gfp none, mask 32", none32));
      checkAgainstOracle(none32);
      assert.equal(none32.tables.length, 3);
      for (const t of none32.tables) {
        assert.ok(t.phys >= FOUR_GIB, "table above 4 GiB");
        assert.ok(t.bounced && t.dma! < FOUR_GIB, "bounced below 4 GiB");
      }
      for (const w of none32.walks) {
        assert.equal(w.result, "PAGE_FAULT");
        assert.equal(w.level, "pte");
        assert.equal(w.pteValue, 0);
      }
      assert.equal(
        none32.leaks.length,
        2,
        "the driver would free the bounce pages, leak the originals",
      );
      assert.equal(none32.encodings.length, VECTORS.length);

      // The fix: GFP_DMA32 + 32-bit mask: no bounce, tables below 4 GiB, v2 maps pages above.
      const dma32 =
        (await runProbe(shell, ko, { gfp: "dma32", maskBits: 32, format: "v2", mappings: MAPS }))
          .report;
      console.log(summary("gfp dma32, mask 32", dma32));
      checkAgainstOracle(dma32);
      for (const t of dma32.tables) assert.ok(!t.bounced && t.phys < FOUR_GIB);
      for (const w of dma32.walks) assert.equal(w.result, "ok");
      assert.ok(dma32.walks.some((w) => w.expected >= FOUR_GIB), "a page above 4 GiB translates");

      // Failure mode 1: gfp 0 + 40-bit mask (mainline v2 ops >= 6.6): no bounce, the DT is above
      // 4 GiB, and a walker with a 32-bit reach (v1.0 IOMMU) raises a bus error on it...
      const none40 =
        (await runProbe(shell, ko, { gfp: "none", maskBits: 40, format: "v2", mappings: MAPS }))
          .report;
      console.log(summary("gfp none, mask 40, reach 32", none40));
      checkAgainstOracle(none40);
      assert.equal(directoryTable(none40)!.bounced, false);
      assert.ok(directoryTable(none40)!.phys >= FOUR_GIB);
      for (const w of none40.walks) {
        assert.equal(w.result, "BUS_ERROR");
        assert.equal(w.level, "dt");
        assert.equal(w.reason, "reach");
      }
      // ... a walker reaching the DT but not the page tables faults one level later ...
      const dt40 = (await runProbe(shell, ko, {
        gfp: "none",
        maskBits: 40,
        format: "v2",
        dtReach: 40,
        mappings: MAPS,
      })).report;
      for (const w of dt40.walks) assert.equal(`${w.result}/${w.level}`, "BUS_ERROR/pt");
      // ... and a 40-bit walker (VOP2-style v2.0 IOMMU) translates everything.
      const all40 = (await runProbe(shell, ko, {
        gfp: "none",
        maskBits: 40,
        format: "v2",
        dtReach: 40,
        ptReach: 40,
        mappings: MAPS,
      })).report;
      console.log(summary("gfp none, mask 40, reach 40", all40));
      checkAgainstOracle(all40);
      for (const w of all40.walks) assert.equal(w.result, "ok");

      // v1 format: a page above 4 GiB is silently truncated: the walker lands on another page.
      const v1 = (await runProbe(shell, ko, {
        gfp: "dma32",
        maskBits: 32,
        format: "v1",
        mappings: [{ iova: 0x1000_0000, where: "high" }, { iova: 0x1000_1000, where: "low" }],
      })).report;
      console.log(summary("v1, gfp dma32, mask 32", v1));
      checkAgainstOracle(v1);
      const hi = walkOf(v1, 0x1000_0000)!;
      assert.equal(hi.result, "WRONG_PAGE");
      assert.equal(hi.page, hi.expected % FOUR_GIB);
      assert.equal(walkOf(v1, 0x1000_1000)!.result, "ok");

      // A bad parameter makes insmod fail with a complete error report.
      const bad = await runProbe(shell, ko, {
        gfp: "none",
        maskBits: 32,
        format: "v2",
        mappings: [{ iova: 0x1000_0000, where: "low" }],
        encode: [2 ** 53 - 1],
      });
      assert.equal(bad.report.status, "ok", "2^53-1 is a valid u64 to encode");
    });
  });
}

Deno.test(
  "debian:trixie with swiotlb=force: every table is bounced, even GFP_DMA32 ones",
  opts,
  async () => {
    await withProbeGuest("debian:trixie", "swiotlb=force", async (shell, ko) => {
      for (const gfp of ["dma32", "none"] as const) {
        const r =
          (await runProbe(shell, ko, { gfp, maskBits: 32, format: "v2", mappings: MAPS })).report;
        console.log(summary(`swiotlb=force, gfp ${gfp}, mask 32`, r));
        checkAgainstOracle(r);
        for (const t of r.tables) assert.ok(t.bounced, `${t.kind} bounced`);
        if (gfp === "dma32") { for (const t of r.tables) assert.ok(t.phys < FOUR_GIB); }
        for (const w of r.walks) {
          assert.equal(w.result, "PAGE_FAULT");
          assert.equal(w.pteValue, 0);
        }
      }
      // Even a 40-bit mask is bounced when SWIOTLB is forced.
      const r40 =
        (await runProbe(shell, ko, { gfp: "none", maskBits: 40, format: "v2", mappings: MAPS }))
          .report;
      for (const t of r40.tables) assert.ok(t.bounced);
    });
  },
);
