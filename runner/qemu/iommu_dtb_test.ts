/**
 * The boot DTB with emulated IOMMUs, built from QEMU's own virt tree (real `dumpdtb`, no guest
 * boots), and the instance option's validation.
 */
import assert from "node:assert/strict";
import { UserInputError } from "../errors.ts";
import { parseFdt } from "../fdt/fdt.ts";
import { iommuMasters } from "../fdt/iommus.ts";
import { addEmuIommus, resolveEmuIommus, ROCK3B_IOMMUS, writeEmuIommuDtb } from "./iommu_dtb.ts";

const dir = await Deno.makeTempDir({ prefix: "rkhil-iommu-dtb-" });

Deno.test("QEMU's virt tree plus the NPU and VOP2 MMUs: reserved windows, nodes, clocks, IRQs, masters", async () => {
  const path = `${dir}/8g.dtb`;
  await writeEmuIommuDtb(path, { memory: "8G", cpus: 2 }, resolveEmuIommus(["npu", "vop"]));
  const tree = parseFdt(await Deno.readFile(path));
  assert.deepEqual(tree.warnings, []);
  // QEMU's own nodes are all still there.
  assert.ok(tree.root.child("pl011@9000000"));
  assert.ok(tree.root.child("intc@8000000"));
  assert.equal(
    tree.root.child("memory@40000000")?.prop("reg")?.asU32Array().join(","),
    "0,1073741824,2,0",
  );
  const resv = tree.root.child("reserved-memory")!;
  assert.deepEqual(resv.children.map((c) => c.name), [
    "rkhil-iommu-regs@fde40000",
    "rkhil-iommu-regs@fe040000",
  ]);
  assert.ok(resv.children.every((c) => c.has("no-map")));
  const npu = tree.root.child("iommu@fde4b000")!;
  assert.deepEqual(npu.prop("compatible")!.asStringList(), ["rockchip,rk3568-iommu"]);
  assert.deepEqual(npu.prop("interrupts")!.asU32Array(), [0, 151, 4]);
  assert.deepEqual(npu.prop("clock-names")!.asStringList(), ["aclk", "iface"]);
  const clk = tree.byPhandleValue(npu.prop("clocks")!.asU32Array()[0]);
  assert.equal(clk?.prop("compatible")?.asString(), "fixed-clock");
  const vop = tree.root.child("iommu@fe043e00")!;
  assert.deepEqual(vop.prop("reg")!.asU32Array(), [
    0,
    0xfe043e00,
    0,
    0x100,
    0,
    0xfe043f00,
    0,
    0x100,
  ]);
  assert.equal(vop.prop("rkhil,revision")!.asString(), "2.0");
  // Each master points at its IOMMU (as the oracle's device-tree reader sees it).
  const masters = iommuMasters(tree).map((m) => [m.unit, m.masters.map((x) => x.path)]);
  assert.deepEqual(masters, [
    ["fde4b000", ["/rkhil-npu-master"]],
    ["fe043e00", ["/rkhil-vop-master"]],
  ]);
  // The dump QEMU wrote is not left behind.
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["8g.dtb"]);
});

Deno.test("a 2 GiB guest has no RAM at fde4b000: refused with what to do", async () => {
  await assert.rejects(
    writeEmuIommuDtb(`${dir}/2g.dtb`, { memory: "2G" }, [ROCK3B_IOMMUS.npu]),
    (e: Error) => {
      assert.ok(e instanceof UserInputError);
      assert.match(
        e.message,
        /registers of npu \(0xfde4b000\) are outside guest RAM 0x40000000\.\.0xc0000000/,
      );
      assert.match((e as UserInputError).hint ?? "", /at least 4G/);
      return true;
    },
  );
});

Deno.test("instance option: unknown ids, overlaps and bad instances are refused", () => {
  const npu = ROCK3B_IOMMUS.npu;
  const cases: [Parameters<typeof resolveEmuIommus>[0], RegExp][] = [
    [["gpu"], /unknown emulated IOMMU "gpu".*/],
    [["npu", "npu"], /name "npu" given twice/],
    [[npu, { ...npu, name: "other" }], /npu and other overlap/],
    [[{ ...npu, base: 0xfde4b010 }], /not a 256-byte aligned/],
    [[{ ...npu, base: 0x1_0000_0000 }], /not a 256-byte aligned 32-bit address/],
    [[{ ...npu, base: 0xfde4ff00, banks: 2 }], /cross a 64 KiB boundary/],
    [[{ ...npu, spi: 300 }], /SPI 300/],
    [[{ ...npu, compatible: [] }], /has no compatible/],
    [[{ ...npu, name: "a b" }], /name "a b"/],
    [[{ ...npu, revision: "3.0" as "1.0" }], /revision of npu/],
  ];
  for (const [spec, re] of cases) {
    assert.throws(() => resolveEmuIommus(spec), (e: Error) => {
      assert.ok(e instanceof UserInputError, e.message);
      assert.match(e.message, re);
      return true;
    });
  }
  assert.deepEqual(resolveEmuIommus(["vop"]), [ROCK3B_IOMMUS.vop]);
});

Deno.test("addEmuIommus keeps an existing reserved-memory node and refuses a tree without an interrupt parent", async () => {
  const path = `${dir}/base.dtb`;
  await writeEmuIommuDtb(path, {}, []);
  const once = await Deno.readFile(path);
  const twice = addEmuIommus(once, [ROCK3B_IOMMUS.npu]);
  const again = parseFdt(addEmuIommus(twice, [{ ...ROCK3B_IOMMUS.vop }]));
  const resv = again.root.children.filter((c) => c.name === "reserved-memory");
  assert.equal(resv.length, 1);
  assert.equal(resv[0].children.length, 2);
  assert.deepEqual(again.warnings, []);
  assert.equal(again.root.children.filter((c) => c.name === "rkhil-iommu-clk").length, 1);
  assert.throws(() => addEmuIommus(twice, [ROCK3B_IOMMUS.npu]), /already has iommu@fde4b000/);
  const { buildFdt } = await import("../fdt/build.ts");
  assert.throws(() => addEmuIommus(buildFdt({ name: "" }), [ROCK3B_IOMMUS.npu]), UserInputError);
});
