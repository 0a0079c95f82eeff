// Fuzzing of the FDT parser (issue 13) beyond fdt_test.ts (random trees round-trip; random
// mutations and random bodies are FdtError): 10 MB blobs, a valid tree of 10 MB parsed and
// rendered as DTS, and 10 MB of random structure behind a valid header refused or parsed.
import assert from "node:assert/strict";
import { buildFdt, cells, formatDts, type NodeSpec, parseFdt, strings } from "./mod.ts";
import { FdtError } from "./fdt.ts";

const MB10 = 10 << 20;

Deno.test("fuzz: a 10 MB device tree parses and renders as DTS; every node found again", () => {
  const blob = new Uint8Array(400).fill(0xa5);
  const n = Math.ceil(MB10 / 460);
  const root: NodeSpec = {
    name: "",
    props: [["#address-cells", cells(2)], ["#size-cells", cells(2)]],
    children: Array.from({ length: n }, (_, i) => ({
      name: `node@${i.toString(16)}`,
      props: [["compatible", strings("rkhil,fuzz")], ["reg", cells(0, i, 0, 4096)], ["blob", blob]],
    })),
  };
  const fdt = buildFdt(root);
  assert.ok(fdt.length >= MB10, `${fdt.length}`);
  const t = parseFdt(fdt);
  assert.equal(t.root.children.length, n);
  assert.deepEqual(Array.from(t.find(`/node@${(n - 1).toString(16)}`)!.properties[2].value), [
    ...blob,
  ]);
  const dts = formatDts(t);
  assert.ok(dts.length > MB10);
});

Deno.test("fuzz: 10 MB of random structure behind a valid header: an FdtError or a tree", () => {
  const body = new Uint8Array(MB10);
  for (let i = 0; i < body.length; i += 65536) crypto.getRandomValues(body.subarray(i, i + 65536));
  for (const fill of [-1, 0x01, 0x04]) {
    const b = new Uint8Array(40 + MB10);
    if (fill < 0) b.set(body, 40);
    else {
      // FDT_BEGIN_NODE or FDT_NOP tokens all the way: deep nesting, or a walk to the end.
      const dv = new DataView(b.buffer);
      for (let o = 40; o + 4 <= b.length; o += 4) dv.setUint32(o, fill);
    }
    const dv = new DataView(b.buffer);
    // magic, totalsize, off_dt_struct, off_dt_strings, off_mem_rsvmap, version, last compat,
    // boot cpu, size_dt_strings, size_dt_struct
    [0xd00dfeed, b.length, 40, b.length, 40, 17, 16, 0, 0, MB10].forEach((v, i) =>
      dv.setUint32(i * 4, v)
    );
    try {
      parseFdt(b);
    } catch (e) {
      assert.ok(e instanceof FdtError, String(e));
    }
  }
});
