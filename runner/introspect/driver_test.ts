/**
 * introspectDriver end to end without QEMU: a fake kernel (BTF written here, an ELF core file
 * holding an of_device_id table and two ops structs, a kallsyms text, 6.1's real tracefs gfp
 * format) read through the host's sh with the same dd/base64/strings commands a target runs.
 */
import assert from "node:assert/strict";
import { mainlineFacts } from "../../oracle/releases.ts";
import { compareDriverWithKb, introspectDriver, IntrospectError } from "./driver.ts";
import { blobWithStrings, buildCore, K, localRun } from "./testutil.ts";

const TD = new URL("./testdata/", import.meta.url).pathname;
const IMG = 0xffff800010000000n;
const FN = {
  rk_dte_pt_address: 0x1000n,
  rk_dte_pt_address_v2: 0x1010n,
  rk_mk_dte: 0x1020n,
  rk_mk_dte_v2: 0x1040n,
  rk_mk_pte: 0x1060n,
  rk_mk_pte_v2: 0x1080n,
};
const TABLE = 0x5008n, OPS1 = 0xd040n, OPS2 = 0xd000n;

/** BTF with rk_iommu_ops (with or without gfp_flags), of_device_id, rk_iommu, rk_iommu_domain. */
function btf(gfpField: boolean): Uint8Array {
  const names = [
    "u32",
    "long unsigned int",
    "u64",
    "gfp_t",
    "char",
    "rk_iommu_ops",
    "pt_address",
    "mk_dtentries",
    "mk_ptentries",
    "dma_bit_mask",
    "gfp_flags",
    "of_device_id",
    "name",
    "type",
    "compatible",
    "data",
    "rk_iommu",
    "dev",
    "rk_iommu_domain",
    "dt",
  ];
  return blobWithStrings(names, (n) => [
    /* 1 */ { name: "u32", kind: K.INT, st: 4, extra: [32] },
    /* 2 */ { name: "long unsigned int", kind: K.INT, st: 8, extra: [64] },
    /* 3 */ { name: "u64", kind: K.TYPEDEF, st: 2 },
    /* 4 */ { name: "gfp_t", kind: K.TYPEDEF, st: 1 },
    /* 5 */ { kind: K.FUNC_PROTO, vlen: 1, st: 3, extra: [0, 1] },
    /* 6 */ { kind: K.PTR, st: 5 },
    /* 7 */ {
      name: "rk_iommu_ops",
      kind: K.STRUCT,
      vlen: gfpField ? 5 : 4,
      st: gfpField ? 40 : 32,
      extra: [
        n("pt_address"),
        6,
        0,
        n("mk_dtentries"),
        6,
        64,
        n("mk_ptentries"),
        6,
        128,
        n("dma_bit_mask"),
        3,
        192,
        ...(gfpField ? [n("gfp_flags"), 4, 256] : []),
      ],
    },
    /* 8 */ { name: "char", kind: K.INT, st: 1, extra: [(2 << 24) | 8] },
    /* 9 */ { kind: K.ARRAY, st: 0, extra: [8, 1, 32] },
    /* 10 */ { kind: K.ARRAY, st: 0, extra: [8, 1, 128] },
    /* 11 */ { kind: K.CONST, st: 0 },
    /* 12 */ { kind: K.PTR, st: 11 },
    /* 13 */ {
      name: "of_device_id",
      kind: K.STRUCT,
      vlen: 4,
      st: 200,
      extra: [n("name"), 9, 0, n("type"), 9, 256, n("compatible"), 10, 512, n("data"), 12, 1536],
    },
    /* 14 */ { name: "rk_iommu", kind: K.STRUCT, vlen: 1, st: 8, extra: [n("dev"), 12, 0] },
    /* 15 */ { name: "rk_iommu_domain", kind: K.STRUCT, vlen: 1, st: 8, extra: [n("dt"), 12, 0] },
  ]);
}

interface FakeOps {
  fns: [bigint, bigint, bigint];
  mask: bigint;
  gfp: number;
}

function image(
  opts: { entries?: { compat: string; data: bigint }[]; sentinel?: boolean; ops?: FakeOps[] } = {},
): Uint8Array {
  const data = new Uint8Array(0x10000);
  const dv = new DataView(data.buffer);
  const enc = (s: string) => new TextEncoder().encode(s);
  // A lone lookalike string in rodata, not in a table.
  data.set(enc("rockchip,iommu\0"), 0x4100);
  const entries = opts.entries ?? [
    { compat: "rockchip,iommu", data: IMG + OPS1 },
    { compat: "rockchip,rk3568-iommu", data: IMG + OPS2 },
  ];
  // A preceding table's last entry (another driver), then ours.
  data.set(enc("other,thing\0"), Number(TABLE) - 200 + 64);
  dv.setBigUint64(Number(TABLE) - 200 + 192, IMG + 0x9000n, true);
  // NB: that neighbour is not separated by a sentinel, so the walk back takes it in: the table
  // reported has 3 entries and the unknown compatible is a finding, as it would be on a kernel
  // with a third compatible.
  entries.forEach((e, i) => {
    const at = Number(TABLE) + 200 * i;
    data.set(enc(e.compat + "\0"), at + 64);
    dv.setBigUint64(at + 192, e.data, true);
  });
  if (opts.sentinel === false) {
    for (let i = entries.length; i < 20; i++) {
      const at = Number(TABLE) + 200 * i;
      data.set(enc(`x,y${i}\0`), at + 64);
    }
  }
  const ops = opts.ops ?? [
    { fns: [FN.rk_dte_pt_address, FN.rk_mk_dte, FN.rk_mk_pte], mask: 0xffffffffn, gfp: 4 },
    {
      fns: [FN.rk_dte_pt_address_v2, FN.rk_mk_dte_v2, FN.rk_mk_pte_v2],
      mask: 0xffffffffffn,
      gfp: 0,
    },
  ];
  [OPS1, OPS2].forEach((o, i) => {
    const x = ops[i];
    x.fns.forEach((f, j) => dv.setBigUint64(Number(o) + 8 * j, IMG + f, true));
    dv.setBigUint64(Number(o) + 24, x.mask, true);
    dv.setUint32(Number(o) + 32, x.gfp, true);
  });
  return data;
}

function kallsyms(): string {
  const h = (o: bigint) => (IMG + o).toString(16);
  return [
    `${h(0n)} T _stext`,
    ...Object.entries(FN).map(([n, o]) => `${h(o)} t ${n}`),
    `${h(0x2000n)} T other_function`,
    `${h(0x4000n)} D _etext`,
    `${h(0xc000n)} T _sinittext`,
    "",
  ].join("\n");
}

async function fake(
  dir: string,
  o: { gfpField?: boolean; img?: Uint8Array } = {},
): Promise<Record<string, string>> {
  const paths = {
    btf: `${dir}/btf`,
    kallsyms: `${dir}/kallsyms`,
    kcore: `${dir}/kcore`,
    traceFormat: `${TD}mm_page_alloc-format-6.1.0-56-arm64.txt`,
  };
  await Deno.writeFile(paths.btf, btf(o.gfpField ?? true));
  await Deno.writeTextFile(paths.kallsyms, kallsyms());
  await Deno.writeFile(paths.kcore, buildCore([{ vaddr: IMG, data: o.img ?? image() }]));
  return paths;
}

Deno.test("introspectDriver on a fake kernel: table found by scan, ops decoded, KB compared", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const d = await introspectDriver(localRun, { paths: await fake(dir) });
    assert.equal(d.table.value.foundBy, "kcore-scan");
    assert.equal(d.kallsymsAll, false);
    assert.match(d.table.provenance.source, /_etext\.\._sinittext/);
    assert.deepEqual(d.compatibles.map((c) => c.compatible), [
      "other,thing",
      "rockchip,iommu",
      "rockchip,rk3568-iommu",
    ]);
    const [, v1, v2] = d.compatibles;
    assert.equal(v1.opsAddress.value, `0x${(IMG + OPS1).toString(16)}`);
    assert.deepEqual(
      [v1.format.value, v1.dmaMaskBits.value, v1.gfpFlags.value, v1.gfpZone.value],
      ["v1", 32, 4, "GFP_DMA32"],
    );
    assert.deepEqual(
      [v2.format.value, v2.dmaMaskBits.value, v2.gfpFlags.value, v2.gfpZone.value],
      ["v2", 40, 0, "none"],
    );
    assert.match(v1.gfpZone.provenance.source, /tracefs/);
    assert.equal(d.perDeviceOps?.value, false);
    assert.equal(d.dmaDev?.value, "global-first-probed");
    // Against 6.12: the neighbour entry and the two global-vs-per-device facts agree or not as
    // the fake says; the unknown compatible is the only finding.
    const c = compareDriverWithKb(d, mainlineFacts({ major: 6, minor: 12 }));
    assert.deepEqual(c.findings.map((f) => [f.fact, f.compatible]), [[
      "compatible",
      "other,thing",
    ]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("introspectDriver on a patched fake kernel: v2 with 32 bits and GFP_DMA32 is a finding", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const img = image({
      ops: [
        { fns: [FN.rk_dte_pt_address, FN.rk_mk_dte, FN.rk_mk_pte], mask: 0xffffffffn, gfp: 4 },
        {
          fns: [FN.rk_dte_pt_address_v2, FN.rk_mk_dte, FN.rk_mk_pte_v2],
          mask: 0xffffffffn,
          gfp: 4,
        },
      ],
    });
    const d = await introspectDriver(localRun, { paths: await fake(dir, { img }) });
    const v2 = d.compatibles.find((c) => c.compatible === "rockchip,rk3568-iommu")!;
    assert.equal(v2.format.value, "mixed");
    const c = compareDriverWithKb(d, mainlineFacts({ major: 6, minor: 12 }));
    const f = (name: string) =>
      c.findings.find((x) => x.fact === name && x.compatible === v2.compatible);
    assert.deepEqual([f("dma_bit_mask")?.measured, f("dma_bit_mask")?.kb], [32, 40]);
    assert.deepEqual([f("table gfp zone")?.measured, f("table gfp zone")?.kb], [
      "GFP_DMA32",
      "none",
    ]);
    assert.deepEqual([f("entry format")?.measured, f("entry format")?.kb], ["mixed", "v2"]);
    // Without gfp_flags, against 6.1 (hard-coded): agrees.
    const d61 = await introspectDriver(localRun, { paths: await fake(dir, { gfpField: false }) });
    assert.deepEqual(d61.compatibles.map((x) => x.gfpZone.value), [
      "hard-coded",
      "hard-coded",
      "hard-coded",
    ]);
    const c61 = compareDriverWithKb(d61, mainlineFacts({ major: 6, minor: 1 }));
    assert.deepEqual(c61.findings.map((x) => x.fact), ["compatible"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("introspectDriver on hostile fakes: IntrospectError, never a crash", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // No table at all (only the lone string), no sentinel, data pointers outside the image,
    // garbage kcore, missing BTF.
    const cases: [string, Record<string, string>][] = [
      ["no table", await fake(dir, { img: image({ entries: [] }) })],
    ];
    for (const [what, paths] of cases) {
      await assert.rejects(() => introspectDriver(localRun, { paths }), IntrospectError, what);
    }
    const bad = await fake(dir, {
      img: image({ entries: [{ compat: "rockchip,iommu", data: 0x1234n }] }),
    });
    await assert.rejects(() => introspectDriver(localRun, { paths: bad }), IntrospectError);
    const nosent = await fake(dir, { img: image({ sentinel: false }) });
    await assert.rejects(() => introspectDriver(localRun, { paths: nosent }), IntrospectError);
    const p = await fake(dir);
    await Deno.writeFile(p.kcore, new Uint8Array(8192).fill(0x41));
    await assert.rejects(() => introspectDriver(localRun, { paths: p }), /kcore/);
    await assert.rejects(
      () => introspectDriver(localRun, { paths: { ...p, btf: `${dir}/none` } }),
      IntrospectError,
    );
    await Deno.writeFile(`${dir}/garbage`, new Uint8Array(100).fill(7));
    await assert.rejects(
      () => introspectDriver(localRun, { paths: { ...p, btf: `${dir}/garbage` } }),
      IntrospectError,
    );
    await Deno.writeTextFile(`${dir}/ks0`, "0000000000000000 T _stext\n");
    await assert.rejects(
      () => introspectDriver(localRun, { paths: { ...p, kallsyms: `${dir}/ks0` } }),
      /hidden/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
