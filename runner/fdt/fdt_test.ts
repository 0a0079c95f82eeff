import assert from "node:assert/strict";
import fc from "fast-check";
import { FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_NOP, FdtError, parseFdt } from "./fdt.ts";
import type { FdtTree } from "./fdt.ts";
import { formatDts } from "./dts.ts";
import { buildFdt, cells, empty, strings } from "./build.ts";
import type { NodeSpec } from "./build.ts";
import { iommuMasters, iommuNodes, memoryBanks } from "./iommus.ts";
import { ensureHostTools, hostCommand } from "../debian/host_tools.ts";

const TESTDATA = new URL("./testdata/", import.meta.url);
const FIXTURES = [
  "6.1.0-56-arm64/rk3568-rock-3a.dtb",
  "6.1.0-56-arm64/rk3566-quartz64-a.dtb",
  "6.12.118+deb13-arm64/rk3568-rock-3b.dtb",
  "6.12.118+deb13-arm64/rk3588-rock-5b.dtb",
  "6.12.118+deb13-arm64/rk3566-rock-3c.dtb",
  "7.3.4+deb13-arm64/rk3568-rock-3b.dtb",
  "7.3.4+deb13-arm64/rk3588-rock-5b.dtb",
];
const read = (name: string) => Deno.readFileSync(new URL(name, TESTDATA));

// dtc is the reference the parser is held against: installed when missing, never skipped.
await ensureHostTools(["dtc"]);

Deno.test("fixtures match the sha256 recorded in testdata/README.md", async () => {
  const readme = Deno.readTextFileSync(new URL("README.md", TESTDATA));
  for (const f of FIXTURES) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", read(f)));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    const row = readme.split("\n").find((l) => l.startsWith(`| \`${f}\``));
    assert.ok(row, `README row for ${f}`);
    assert.ok(row.includes(hex), `${f}: sha256 ${hex} not in its README row`);
  }
});

Deno.test({
  name: "parser agrees with dtc -I dtb -O dts byte for byte on every fixture",
  async fn() {
    for (const f of FIXTURES) {
      const out = await (await hostCommand("dtc", {
        args: ["-q", "-I", "dtb", "-O", "dts", new URL(f, TESTDATA).pathname],
        stdout: "piped",
        stderr: "null",
      })).output();
      assert.ok(out.success, `dtc failed on ${f}`);
      const ref = new TextDecoder().decode(out.stdout);
      const mine = formatDts(parseFdt(read(f)));
      if (mine !== ref) {
        const a = mine.split("\n"), b = ref.split("\n");
        const i = a.findIndex((l, k) => l !== b[k]);
        assert.fail(`${f}: first difference at line ${i + 1}: ${a[i]} | dtc: ${b[i]}`);
      }
    }
  },
});

Deno.test("real DTB: header, nodes, typed property helpers, aliases, phandles", () => {
  const t = parseFdt(read("6.12.118+deb13-arm64/rk3568-rock-3b.dtb"));
  assert.equal(t.header.version, 17);
  assert.equal(t.header.lastCompVersion, 16);
  assert.equal(t.header.totalsize, 62900);
  assert.deepEqual(t.reservations, []);
  assert.deepEqual(t.warnings, []);
  assert.equal(t.nodes.length, 506);
  assert.equal(t.root.path, "/");
  assert.equal(t.root.prop("model")?.asString(), "Radxa ROCK 3B");
  assert.deepEqual(t.root.compatible, ["radxa,rock-3b", "rockchip,rk3568"]);
  assert.equal(t.root.prop("#address-cells")?.asU32(), 2);
  const vop = t.find("/iommu@fe043e00");
  assert.ok(vop);
  assert.equal(vop.baseName, "iommu");
  assert.equal(vop.unitAddress, "fe043e00");
  assert.deepEqual(t.reg(vop), [
    { address: 0xfe043e00n, size: 0x100n },
    { address: 0xfe043f00n, size: 0x100n },
  ]);
  assert.deepEqual(vop.prop("clock-names")?.asStringList(), ["aclk", "iface"]);
  assert.equal(vop.prop("#iommu-cells")?.asU32(), 0);
  assert.equal(vop.phandle, 0x5b);
  assert.equal(t.byPhandleValue(0x5b), vop);
  // Alias resolution, alias-relative paths and base-name matching.
  assert.equal(t.aliases.get("serial2"), "/serial@fe660000");
  assert.equal(t.find("serial2")?.path, "/serial@fe660000");
  assert.equal(t.find("/chosen")?.prop("stdout-path")?.asString(), "serial2:1500000n8");
  assert.equal(t.find("/iommu")?.path, "/iommu@fdea0800");
  assert.equal(t.find("/no-such-node"), undefined);
  assert.equal(t.find("nosuchalias"), undefined);
  // No __symbols__ in Debian's 6.12 DTBs: labels fall back to node names.
  assert.equal(t.hasSymbols, false);
  assert.equal(t.labelOrName(vop), "iommu@fe043e00");
  // Helpers reject the wrong shape with an FdtError that names the property.
  assert.throws(() => vop.prop("reg")?.asString(), FdtError);
  assert.throws(() => vop.prop("reg")?.asU32(), /reg: length 32, expected 4/);
  assert.throws(() => t.root.prop("model")?.asU32Array(), FdtError);
  const u64 = t.find("/cpus/cpu@0")?.prop("reg");
  assert.equal(u64?.asU64(), 0n);
});

Deno.test("real DTB with /__symbols__ (7.3 rk3588-rock-5b): labels recovered", () => {
  const t = parseFdt(read("7.3.4+deb13-arm64/rk3588-rock-5b.dtb"));
  assert.equal(t.hasSymbols, true);
  const n = t.byLabelName("rknn_mmu_0");
  assert.equal(n?.path, "/iommu@fdab9000");
  assert.ok(n);
  assert.deepEqual(t.labels(n), ["rknn_mmu_0"]);
  assert.equal(t.labelOrName(n), "rknn_mmu_0");
  assert.equal(t.find("/npu@fdab0000") && t.labelOrName(t.find("/npu@fdab0000")!), "rknn_core_0");
});

// ---------------------------------------------------------------------------------------
// Synthetic trees.

const SAMPLE: NodeSpec = {
  name: "",
  props: [
    ["#address-cells", cells(1)],
    ["#size-cells", cells(1)],
    ["compatible", strings("test,board", "test,soc")],
  ],
  children: [
    { name: "aliases", props: [["serial0", strings("/soc/serial@1000")]] },
    {
      name: "memory@0",
      props: [["device_type", strings("memory")], [
        "reg",
        cells(0, 0x8000_0000, 0xf000_0000, 0x1000_0000),
      ]],
    },
    {
      name: "memory@100000000",
      props: [["device_type", strings("memory")], ["status", strings("disabled")], [
        "reg",
        cells(1, 2),
      ]],
    },
    {
      name: "soc",
      props: [["#address-cells", cells(2)], ["#size-cells", cells(2)]],
      children: [
        {
          name: "serial@1000",
          props: [["reg", cells(0, 0x1000, 0, 0x100)], ["status", strings("ok")]],
        },
        {
          name: "iommu@fde4b000",
          props: [
            ["compatible", strings("rockchip,iommu")],
            ["reg", cells(0, 0xfde4b000, 0, 0x40)],
            ["#iommu-cells", cells(0)],
            ["rockchip,disable-mmu-reset", empty],
            ["phandle", cells(7)],
          ],
        },
        {
          name: "npu@fde40000",
          props: [["compatible", strings("rockchip,rk3568-rknn-core")], ["iommus", cells(7)]],
        },
        {
          name: "bus",
          props: [["#address-cells", cells(3)], ["#size-cells", cells(0)]],
          children: [{ name: "dev@1,2,3", props: [["reg", cells(1, 2, 3)]] }],
        },
      ],
    },
    {
      name: "__symbols__",
      props: [["npu_mmu", strings("/soc/iommu@fde4b000")], ["ghost", strings("/nowhere")]],
    },
  ],
};

Deno.test("synthetic tree: reservations, cells, memory banks, labels, iommus", () => {
  const blob = buildFdt(SAMPLE, { reservations: [{ address: 0x1000n, size: 0x2000n }] });
  const t = parseFdt(blob);
  assert.deepEqual(t.reservations, [{ address: 0x1000n, size: 0x2000n }]);
  assert.deepEqual(memoryBanks(t), [
    { path: "/memory@0", address: 0n, size: 0x8000_0000n },
    { path: "/memory@0", address: 0xf000_0000n, size: 0x1000_0000n },
  ]);
  assert.equal(t.find("serial0")?.available, true);
  assert.deepEqual(t.reg(t.find("/soc/bus/dev@1,2,3")!), [
    { address: (1n << 64n) | (2n << 32n) | 3n, size: 0n },
  ]);
  // A dangling __symbols__ entry is a warning, not a failure.
  assert.equal(t.warnings.length, 1);
  assert.match(t.warnings[0].what, /ghost/);
  assert.deepEqual(iommuNodes(t, "synthetic"), [{
    unit: "fde4b000",
    label: "npu_mmu",
    compatible: ["rockchip,iommu"],
    status: "okay",
    properties: ["rockchip,disable-mmu-reset"],
    source: "synthetic:/soc/iommu@fde4b000",
    confidence: "verified",
  }]);
  assert.deepEqual(iommuMasters(t), [{
    path: "/soc/iommu@fde4b000",
    unit: "fde4b000",
    label: "npu_mmu",
    masters: [{
      path: "/soc/npu@fde40000",
      label: "npu@fde40000",
      compatible: ["rockchip,rk3568-rknn-core"],
      status: "okay",
      args: [],
    }],
  }]);
  assert.match(formatDts(t), /\/memreserve\/\t0x0000000000001000 0x0000000000002000;/);
});

const arbName = fc.stringMatching(/^[a-z][a-z0-9,._+-]{0,12}(@[0-9a-f]{1,8})?$/);
const arbProps = fc.uniqueArray(
  fc.tuple(fc.stringMatching(/^[a-z#][a-z0-9,._+-]{0,15}$/), fc.uint8Array({ maxLength: 24 })),
  { selector: (p) => p[0], maxLength: 5 },
);
const arbNodeAt = (depth: number): fc.Arbitrary<NodeSpec> =>
  fc.record({
    name: arbName,
    props: arbProps,
    children: depth === 0
      ? fc.constant([])
      : fc.uniqueArray(arbNodeAt(depth - 1), { selector: (n) => n.name, maxLength: 3 }),
  });
const arbNode = arbNodeAt(4);

Deno.test("round trip: random trees built then parsed give back the same names and bytes", () => {
  fc.assert(
    fc.property(arbNode, (spec) => {
      const t = parseFdt(buildFdt(spec));
      const walk = (s: NodeSpec, path: string) => {
        const n = t.find(path);
        assert.ok(n, path);
        assert.deepEqual(
          n.properties.map((p) => [p.name, Array.from(p.value)]),
          (s.props ?? []).map(([k, v]) => [k, Array.from(v)]),
        );
        assert.deepEqual(n.children.map((c) => c.name), (s.children ?? []).map((c) => c.name));
        for (const c of s.children ?? []) {
          walk(c, path === "/" ? `/${c.name}` : `${path}/${c.name}`);
        }
      };
      walk(spec, "/");
      formatDts(t);
    }),
    { numRuns: 200 },
  );
});

// ---------------------------------------------------------------------------------------
// Hostile input.

function expectFdtError(bytes: Uint8Array, what: RegExp, offset?: number): FdtError {
  try {
    parseFdt(bytes);
  } catch (e) {
    assert.ok(e instanceof FdtError, `not an FdtError: ${e}`);
    assert.match(e.what, what);
    if (offset !== undefined) assert.equal(e.offset, offset);
    assert.match(e.message, /at byte offset \d+/);
    return e;
  }
  assert.fail(`no FdtError (expected ${what})`);
}

function setU32(b: Uint8Array, off: number, v: number): Uint8Array {
  const c = b.slice();
  if (off + 4 <= c.length) new DataView(c.buffer).setUint32(off, v);
  return c;
}
const getU32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getUint32(off);

Deno.test("hostile: header faults", () => {
  const real = read("6.12.118+deb13-arm64/rk3568-rock-3b.dtb");
  expectFdtError(new Uint8Array(0), /too short for the magic/, 0);
  expectFdtError(new Uint8Array(64), /bad magic 0x00000000/, 0);
  expectFdtError(real.subarray(0, 20), /shorter than a header/);
  expectFdtError(real.subarray(0, real.length - 1), /totalsize 62900 but only 62899 bytes/, 4);
  expectFdtError(setU32(real, 4, 10), /totalsize 10 smaller/, 4);
  expectFdtError(setU32(real, 20, 15), /version 15 unsupported/, 20);
  expectFdtError(setU32(real, 24, 18), /last_comp_version 18/, 24);
  expectFdtError(setU32(real, 8, 0x7fff_fff0), /structure block .* outside the blob/);
  expectFdtError(setU32(real, 8, 41), /not 4-aligned/, 8);
  expectFdtError(setU32(real, 36, getU32(real, 36) + 10_000), /structure block .* outside/, 36);
  expectFdtError(setU32(real, 32, 0xffff_ffff), /strings block .* outside/, 32);
  expectFdtError(setU32(real, 16, 0xffff_fff8), /memory reservation block .* outside/, 16);
  expectFdtError(setU32(real, 16, 12), /not 8-aligned/, 16);
  // A trailing tail past totalsize is ignored (a buffer may be bigger than the blob).
  const padded = new Uint8Array(real.length + 100);
  padded.set(real);
  assert.equal(parseFdt(padded).nodes.length, 506);
});

Deno.test("hostile: truncation at every 97th byte is always an FdtError", () => {
  const real = read("6.1.0-56-arm64/rk3568-rock-3a.dtb");
  for (let n = 0; n < real.length; n += 97) {
    // Keep the header's totalsize honest so the parser reaches the cut in the blocks.
    const cut = real.length >= 8 && n >= 8
      ? setU32(real.subarray(0, n), 4, n)
      : real.subarray(0, n);
    assert.throws(() => parseFdt(cut), FdtError, `cut at ${n}`);
  }
});

/** A hand-made blob around a raw structure block. */
function rawBlob(
  struct: number[],
  stringsBlock: number[] = [],
  rsv: bigint[] = [0n, 0n],
): Uint8Array {
  const offStruct = 40 + rsv.length * 8;
  const structBytes = new Uint8Array(struct.length * 4);
  struct.forEach((w, i) => new DataView(structBytes.buffer).setUint32(i * 4, w));
  const offStrings = offStruct + structBytes.length;
  const total = offStrings + stringsBlock.length;
  const b = new Uint8Array(total);
  const dv = new DataView(b.buffer);
  [0xd00dfeed, total, offStruct, offStrings, 40, 17, 16, 0, stringsBlock.length, structBytes.length]
    .forEach((v, i) => dv.setUint32(i * 4, v));
  rsv.forEach((v, i) => dv.setBigUint64(40 + i * 8, v));
  b.set(structBytes, offStruct);
  b.set(stringsBlock, offStrings);
  return b;
}
const ROOT = [FDT_BEGIN_NODE, 0];
const name4 = (s: string) => {
  // Name "abc" + NUL in one word (the tests only use names of 1..3 characters).
  const bytes = [...s].map((c) => c.charCodeAt(0));
  while (bytes.length < 4) bytes.push(0);
  return (bytes[0] << 24 | bytes[1] << 16 | bytes[2] << 8 | bytes[3]) >>> 0;
};

Deno.test("hostile: structure and strings block faults", () => {
  assert.equal(parseFdt(rawBlob([...ROOT, FDT_END_NODE, FDT_END])).nodes.length, 1);
  assert.equal(
    parseFdt(rawBlob([FDT_NOP, ...ROOT, FDT_NOP, FDT_END_NODE, FDT_NOP, FDT_END])).nodes.length,
    1,
  );
  expectFdtError(rawBlob([...ROOT, FDT_END_NODE]), /structure block token \(no FDT_END\?\)/, 68);
  expectFdtError(rawBlob([...ROOT, FDT_END]), /FDT_END inside node \//, 64);
  expectFdtError(rawBlob([FDT_END]), /FDT_END before any node/, 56);
  expectFdtError(rawBlob([FDT_END_NODE, FDT_END]), /FDT_END_NODE outside any node/, 56);
  expectFdtError(
    rawBlob([FDT_BEGIN_NODE, name4("x"), FDT_END_NODE, FDT_END]),
    /root node has a name "x"/,
  );
  expectFdtError(rawBlob([...ROOT, 0x77, FDT_END]), /unknown structure token 0x77/, 64);
  expectFdtError(
    rawBlob([...ROOT, FDT_END_NODE, ...ROOT, FDT_END_NODE, FDT_END]),
    /second top-level node/,
  );
  expectFdtError(
    rawBlob([...ROOT, FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END_NODE, FDT_END]),
    /empty name/,
  );
  expectFdtError(
    rawBlob([...ROOT, FDT_BEGIN_NODE, name4("a/b"), FDT_END_NODE, FDT_END_NODE, FDT_END]),
    /contains '\/'/,
  );
  expectFdtError(
    rawBlob([
      ...ROOT,
      FDT_BEGIN_NODE,
      name4("a"),
      FDT_END_NODE,
      FDT_BEGIN_NODE,
      name4("a"),
      FDT_END_NODE,
      FDT_END_NODE,
      FDT_END,
    ]),
    /duplicate node \/a/,
  );
  // Unterminated node name: runs to the end of the structure block.
  expectFdtError(
    rawBlob([...ROOT, FDT_BEGIN_NODE, 0x61616161, 0x61616161]),
    /node name runs past/,
    68,
  );
  // Property length past the block, name offset past the strings, unterminated name.
  const nameX = [0x78, 0];
  expectFdtError(
    rawBlob([...ROOT, 3, 1000, 0, FDT_END_NODE, FDT_END], nameX),
    /property length 1000 runs past/,
    68,
  );
  expectFdtError(
    rawBlob([...ROOT, 3, 0, 99, FDT_END_NODE, FDT_END], nameX),
    /name offset 99 past the strings/,
  );
  expectFdtError(
    rawBlob([...ROOT, 3, 0, 0, FDT_END_NODE, FDT_END], [0x78, 0x79]),
    /not NUL-terminated/,
  );
  expectFdtError(rawBlob([...ROOT, 3, 0, 0, FDT_END_NODE, FDT_END], [0]), /empty property name/);
  expectFdtError(
    rawBlob([...ROOT, 3, 0, 0, 3, 0, 0, FDT_END_NODE, FDT_END], nameX),
    /duplicate property x/,
  );
  // Memory reservation block without its terminator.
  expectFdtError(
    rawBlob([...ROOT, FDT_END_NODE, FDT_END], [], [1n, 1n]),
    /memory reservation entry/,
  );
});

Deno.test("hostile: 10 000-deep nesting is an FdtError; 2 000 deep parses when allowed", () => {
  const deep = (n: number) => {
    const s = [...ROOT];
    for (let i = 0; i < n; i++) s.push(FDT_BEGIN_NODE, name4("n"));
    for (let i = 0; i <= n; i++) s.push(FDT_END_NODE);
    s.push(FDT_END);
    return rawBlob(s);
  };
  const e = expectFdtError(deep(10_000), /nesting deeper than 1024 levels/);
  assert.equal(e.offset, 56 + 8 + 1024 * 8);
  const t = parseFdt(deep(2000), { maxDepth: 2000, maxPathLength: 5000 });
  assert.equal(parseFdt(deep(1000)).nodes.length, 1001);

  assert.equal(t.nodes.length, 2001);
  assert.equal(t.nodes[2000].depth, 2000);
  assert.equal(formatDts(t).split("\n").length, 2 + 2001 * 2 + 2000 + 1);
});

Deno.test("hostile: deep nesting of long names stops at the path length limit", () => {
  let spec: NodeSpec = { name: "x".repeat(60) };
  for (let i = 0; i < 100; i++) spec = { name: "y".repeat(60), children: [spec] };
  const blob = buildFdt({ name: "", children: [spec] });
  expectFdtError(blob, /longer than 4096/);
  assert.equal(parseFdt(blob, { maxPathLength: 10_000 }).nodes.length, 102);
});

Deno.test("hostile: bad phandles and references give warnings or FdtError, never a crash", () => {
  const t = parseFdt(buildFdt({
    name: "",
    children: [
      { name: "a", props: [["phandle", cells(5)], ["compatible", strings("rockchip,iommu")]] },
      { name: "b", props: [["phandle", cells(5)]] },
      { name: "c", props: [["phandle", cells(0)]] },
      { name: "d", props: [["iommus", cells(9)]] },
    ],
  }));
  assert.equal(t.byPhandleValue(5)?.path, "/a");
  assert.deepEqual(t.warnings.map((w) => w.what), [
    "/b: phandle 0x5 already used by /a",
    "/c: property phandle: invalid phandle 0x0",
  ]);
  assert.throws(() => iommuNodes(t, "x"), /Rockchip IOMMU node without reg/);
  assert.throws(() => iommuMasters(t), /iommus names phandle 0x9, which no node has/);
});

/** Everything a consumer does with a tree; only FdtError may escape. */
function useTree(t: FdtTree): void {
  formatDts(t);
  for (const n of t.nodes) t.find(n.path);
  for (const a of t.aliases.keys()) t.find(a);
  for (const f of [() => iommuNodes(t, "fuzz"), () => iommuMasters(t), () => memoryBanks(t)]) {
    try {
      f();
    } catch (e) {
      if (!(e instanceof FdtError)) throw e;
    }
  }
}

function onlyFdtError(bytes: Uint8Array): void {
  try {
    useTree(parseFdt(bytes));
  } catch (e) {
    if (!(e instanceof FdtError)) throw e;
    assert.ok(Number.isInteger(e.offset) && e.offset >= 0, `offset ${e.offset}`);
  }
}

Deno.test("fuzz: random mutations of a real DTB never crash, only FdtError", () => {
  const real = read("6.12.118+deb13-arm64/rk3568-rock-3b.dtb");
  const h = parseFdt(real).header;
  const structWords = h.sizeDtStruct / 4;
  const mutation = fc.oneof(
    // Flip random bytes anywhere.
    fc.array(fc.tuple(fc.nat(real.length - 1), fc.integer({ min: 1, max: 255 })), {
      minLength: 1,
      maxLength: 8,
    }).map((flips) => (b: Uint8Array) => {
      for (const [i, x] of flips) b[i] ^= x;
      return b;
    }),
    // Overwrite a header field with a random u32.
    fc.tuple(fc.nat(9), fc.nat()).map(([f, v]) => (b: Uint8Array) => setU32(b, f * 4, v)),
    // Overwrite a structure word with a token, a length or a random value.
    fc.tuple(
      fc.nat(structWords - 1),
      fc.oneof(fc.constantFrom(1, 2, 3, 4, 9, 0, 0xffffffff, 0x7fffffff), fc.nat()),
    ).map(([w, v]) => (b: Uint8Array) => setU32(b, h.offDtStruct + w * 4, v)),
    // Truncate, keeping totalsize consistent or not.
    fc.tuple(fc.nat(real.length), fc.boolean()).map(([n, fix]) => (b: Uint8Array) =>
      fix && n >= 8 ? setU32(b.subarray(0, n), 4, n) : b.subarray(0, n)
    ),
    // Delete or insert a run of bytes inside the structure block.
    fc.tuple(fc.nat(h.sizeDtStruct - 1), fc.integer({ min: 1, max: 64 }), fc.boolean()).map(
      ([at, len, insert]) => (b: Uint8Array) => {
        const p = h.offDtStruct + at;
        const out = insert
          ? new Uint8Array([
            ...b.subarray(0, p),
            ...new Uint8Array(len).fill(0x41),
            ...b.subarray(p),
          ])
          : new Uint8Array([...b.subarray(0, p), ...b.subarray(Math.min(b.length, p + len))]);
        return out;
      },
    ),
  );
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
      let b: Uint8Array = real.slice();
      for (const m of ms) b = m(b);
      onlyFdtError(b);
    }),
    { numRuns: Number(Deno.env.get("FDT_FUZZ_RUNS") ?? 400) },
  );
});

Deno.test("fuzz: random bytes behind a valid header never crash, only FdtError", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 512 }),
      fc.nat(600),
      fc.nat(600),
      fc.nat(600),
      (body, offStruct, offStrings, offRsv) => {
        const total = 40 + body.length;
        const b = new Uint8Array(total);
        const dv = new DataView(b.buffer);
        const sizeStruct = Math.max(0, total - offStruct);
        [
          0xd00dfeed,
          total,
          offStruct & ~3,
          offStrings,
          offRsv & ~7,
          17,
          16,
          0,
          Math.max(0, total - offStrings),
          sizeStruct,
        ]
          .forEach((v, i) => dv.setUint32(i * 4, v >>> 0));
        b.set(body, 40);
        onlyFdtError(b);
      },
    ),
    { numRuns: 500 },
  );
});
