/**
 * Real tests: boot Debian 6.1, 6.12 and 7.3 arm64 kernels in QEMU, introspect the running
 * rockchip-iommu driver, and hold it against the knowledge base. Also parses the guest's real
 * arm64 BTF, and runs `rkhil facts --kernel debian:trixie --json` end to end.
 */
import assert from "node:assert/strict";
import { mainlineFacts, parseRelease } from "../../oracle/releases.ts";
import { parseBtf, structLayout, typeName, typeSize } from "./btf.ts";
import { compareDriverWithKb, fetchTargetFile, introspectDriver } from "./driver.ts";
import type { FactsResult } from "./facts_cmd.ts";
import { withQemuTarget } from "../qemu/target.ts";
import { commandOf } from "../suite/target_io.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

interface Expect {
  spec: string;
  release: RegExp;
  gfpField: boolean;
  v1Gfp: number | null;
  v2Gfp: number | null;
  foundBy: "kallsyms" | "kcore-scan";
  perDeviceOps: boolean;
  dmaDev: "global-first-probed" | "per-domain";
  /** Also locate the table by scanning and check it against the kallsyms symbol. */
  crossCheckScan: boolean;
}

const CASES: Expect[] = [
  {
    spec: "debian:bookworm",
    release: /^6\.1\./,
    gfpField: false,
    v1Gfp: null,
    v2Gfp: null,
    foundBy: "kcore-scan", // no CONFIG_KALLSYMS_ALL: the table has no symbol
    perDeviceOps: false,
    dmaDev: "global-first-probed",
    crossCheckScan: false,
  },
  {
    spec: "debian:trixie",
    release: /^6\.12\./,
    gfpField: true,
    v1Gfp: 4, // GFP_DMA32
    v2Gfp: 0,
    foundBy: "kallsyms",
    perDeviceOps: false,
    dmaDev: "global-first-probed",
    crossCheckScan: true,
  },
  {
    spec: "debian:trixie-backports",
    release: /^7\.3\./,
    gfpField: true,
    v1Gfp: 4,
    v2Gfp: 0,
    foundBy: "kallsyms",
    perDeviceOps: true, // 414cb6f3ac62 is in 7.3
    dmaDev: "per-domain",
    crossCheckScan: false,
  },
];

for (const c of CASES) {
  Deno.test(
    `introspect ${c.spec}: masks, gfp, formats, fields match the knowledge base`,
    opts,
    async () => {
      const runDir = await Deno.makeTempDir({ prefix: "rkhil-introspect-" });
      try {
        await withQemuTarget({ kernel: c.spec, runDir }, async (g) => {
          assert.match(g.release!, c.release);
          const d = await introspectDriver(commandOf(g));
          assert.equal(d.release, g.release);
          assert.deepEqual(d.problems, []);
          assert.equal(d.table.value.foundBy, c.foundBy);
          assert.equal(d.kallsymsAll, c.foundBy === "kallsyms");
          assert.ok(d.kcoreReads <= 4, `${d.kcoreReads} kcore round trips`);
          assert.deepEqual(d.compatibles.map((x) => x.compatible), [
            "rockchip,iommu",
            "rockchip,rk3568-iommu",
          ]);
          const [v1, v2] = d.compatibles;
          const fields = ["pt_address", "mk_dtentries", "mk_ptentries", "dma_bit_mask"];
          if (c.gfpField) fields.push("gfp_flags");
          for (const o of [v1, v2]) {
            assert.deepEqual(o.fields.value, fields);
            assert.equal(o.fields.provenance.source, `${g.release}: BTF struct rk_iommu_ops`);
            assert.equal(o.dmaMaskBits.provenance.confidence, "measured");
            assert.match(o.dmaMaskBits.provenance.source, /^\S+: kcore @0xffff[0-9a-f]+ \+24 /);
          }
          assert.equal(v1.dmaMaskBits.value, 32);
          assert.equal(v2.dmaMaskBits.value, 40);
          assert.equal(v1.format.value, "v1");
          assert.equal(v2.format.value, "v2");
          assert.equal(v1.functions.pt_address.value, "rk_dte_pt_address");
          assert.equal(v2.functions.pt_address.value, "rk_dte_pt_address_v2");
          assert.equal(v1.gfpFlags.value, c.v1Gfp);
          assert.equal(v2.gfpFlags.value, c.v2Gfp);
          assert.equal(v1.gfpZone.value, c.gfpField ? "GFP_DMA32" : "hard-coded");
          assert.equal(v2.gfpZone.value, c.gfpField ? "none" : "hard-coded");
          assert.ok(d.gfpBits, "gfp bit values found");
          assert.equal(d.gfpBits.value.GFP_DMA32 ?? d.gfpBits.value.__GFP_DMA32, 4);
          assert.match(
            d.gfpBits.provenance.source,
            c.gfpField ? /BTF enum ___GFP_\*_BIT/ : /tracefs/,
          );
          assert.equal(d.dteAddrLayout.value, "dte");
          assert.equal(d.perDeviceOps?.value, c.perDeviceOps);
          assert.equal(d.dmaDev?.value, c.dmaDev);
          if (c.foundBy === "kallsyms") {
            assert.equal(v1.opsSymbol?.value, "iommu_data_ops_v1");
            assert.equal(v2.opsSymbol?.value, "iommu_data_ops_v2");
          }

          const cmp = compareDriverWithKb(d, mainlineFacts(parseRelease(g.release!)!));
          assert.deepEqual(cmp.findings, [], JSON.stringify(cmp.findings, null, 2));
          assert.ok(cmp.agreed.length >= 9);

          if (c.crossCheckScan) {
            const s = await introspectDriver(commandOf(g), { tableBy: "scan" });
            assert.equal(s.table.value.foundBy, "kcore-scan");
            assert.equal(s.table.value.address, d.table.value.address);
            assert.deepEqual(
              s.compatibles.map((x) => [x.opsAddress.value, x.dmaMaskBits.value, x.gfpFlags.value]),
              d.compatibles.map((x) => [x.opsAddress.value, x.dmaMaskBits.value, x.gfpFlags.value]),
            );
          }

          // The guest's real arm64 BTF, whole: every type names and sizes or refuses cleanly.
          const btf = parseBtf(await fetchTargetFile(commandOf(g), "/sys/kernel/btf/vmlinux"));
          assert.ok(btf.types.length > 100_000, `${btf.types.length} types`);
          for (const t of btf.types) {
            if (!t) continue;
            typeName(btf, t.id);
            if (t.kind === "STRUCT") typeSize(btf, t.id);
          }
          const od = structLayout(btf, "of_device_id");
          assert.deepEqual(od.members.map((m) => [m.name, m.offset, m.size]), [
            ["name", 0, 32],
            ["type", 32, 32],
            ["compatible", 64, 128],
            ["data", 192, 8],
          ]);
          assert.equal(structLayout(btf, "rk_iommu_ops").size, c.gfpField ? 40 : 32);
        });
      } finally {
        await Deno.remove(runDir, { recursive: true }).catch(() => {});
      }
    },
  );
}

Deno.test("rkhil facts --kernel debian:trixie --json", opts, async () => {
  const runs = await Deno.makeTempDir({ prefix: "rkhil-facts-" });
  try {
    const main = new URL("../../main.ts", import.meta.url).pathname;
    const p = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "facts", "--kernel", "debian:trixie", "--json", "--runs-dir", runs],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(p.stderr);
    assert.equal(p.code, 0, stderr);
    const r = JSON.parse(new TextDecoder().decode(p.stdout)) as FactsResult;
    assert.match(r.release, /^6\.12\./);
    assert.ok(r.facts.release && r.facts.zones && r.facts.cmdline);
    assert.equal(r.driver?.compatibles.length, 2);
    assert.deepEqual(r.driver?.compatibles.map((c) => c.dmaMaskBits.value), [32, 40]);
    assert.deepEqual(r.driver?.compatibles.map((c) => c.gfpZone.value), ["GFP_DMA32", "none"]);
    assert.equal(r.comparison?.release, "6.12");
    assert.deepEqual(r.comparison?.findings, []);
    assert.ok(!stderr.includes("    at "), "no stack trace");
    // The run directory keeps the same JSON.
    const saved = JSON.parse(await Deno.readTextFile(`${r.runDir}/facts.json`)) as FactsResult;
    assert.equal(saved.driver?.table.value.address, r.driver?.table.value.address);
  } finally {
    await Deno.remove(runs, { recursive: true }).catch(() => {});
  }
});

Deno.test(
  "rkhil facts with an unknown kernel: a classified error, exit 2, no stack trace",
  opts,
  async () => {
    const main = new URL("../../main.ts", import.meta.url).pathname;
    const p = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "facts", "--kernel", "debian:no-such-suite"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(p.stderr);
    assert.equal(p.code, 2, stderr);
    assert.match(stderr, /^error: /m);
    // Refused by the option's parser before anything starts: one line with the valid suites.
    assert.match(stderr, /unknown Debian suite "no-such-suite"; use one of debian:bookworm/);
    assert.ok(!stderr.includes("    at "), stderr);
  },
);
