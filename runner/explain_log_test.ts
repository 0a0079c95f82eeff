import assert from "node:assert/strict";
import {
  explainLog,
  explainLogText,
  MAX_LOG_BYTES,
  readLogFile,
  renderExplanation,
} from "./explain_log.ts";
import { UserInputError } from "./errors.ts";
import { main } from "../main.ts";

const LOGS = new URL("../oracle/testdata/logs/", import.meta.url).pathname;
const WATCH = new URL("./watch/testdata/", import.meta.url).pathname;

Deno.test("real RK3576 pager capture: three faults decoded, SoC named, tables below 4 GiB", async () => {
  const e = await explainLog(`${LOGS}rk3576-rga-mpp736.log`);
  assert.equal(e.faults.length, 3);
  for (const f of e.faults) {
    assert.equal(f.soc.soc, "rk3576");
    assert.equal(f.soc.catalogued, false);
    assert.equal(f.truncated, true);
    assert.equal(f.format.format, null);
    assert.match(f.format.why, /invalid DTE/);
    assert.deepEqual(f.tables.directory, { address: 0x434c3000, above4G: false });
    assert.equal(f.decoded?.invalidAt, "dte");
    assert.match(f.reached, /never mapped/);
  }
  assert.deepEqual(e.faults.map((f) => f.decoded?.dteIndex), [8, 8, 0x3e5]);
  assert.ok(e.notes.some((n) => /RK3576 is not in the oracle's catalogue/.test(n)));
  const text = renderExplanation(e);
  assert.match(
    text,
    /Fault 3 \(line 13\): 27920f00\.iommu read at IOVA 0xf960c830 \[lines cut short\]/,
  );
});

Deno.test("real RK3288 (32-bit) and RK3399 logs decode to their directory tables", async () => {
  const a = await explainLog(`${LOGS}rk3288-vpu-mpp206.log`);
  assert.equal(a.faults[0].soc.soc, "rk3288");
  assert.equal(a.faults[0].iova, 0xee0);
  assert.deepEqual(a.faults[0].tables.directory, { address: 0x2d17b000, above4G: false });
  const b = await explainLog(`${LOGS}rk3399-vepu-mirrors12.log`);
  assert.equal(b.faults[0].soc.soc, "rk3399");
  assert.equal(b.faults[0].access, "write");
  assert.equal(b.faults[0].timestampSec, 42.2138);
  assert.deepEqual(b.faults[0].tables.directory, { address: 0x3da7c000, above4G: false });
  // The file's 5 newline-ended lines are 5 lines, not 6.
  const lf = (await Deno.readTextFile(`${LOGS}rk3399-vepu-mirrors12.log`)).split("\n").length - 1;
  assert.equal(b.lineCount, lf);
  assert.equal(explainLogText("one line\n").lineCount, 1);
  assert.equal(explainLogText("no final newline").lineCount, 1);
  assert.equal(explainLogText("a\r\nb\r\n").lineCount, 2);
});

Deno.test("the v1 reading of a v2 walk is inconsistent and says why", () => {
  const P = "rk_iommu fe043e00.iommu: ";
  const e = explainLogText([
    `[   12.000001] ${P}Page fault at 0x0000000002010040 of type write`,
    `[   12.000002] ${P}iova = 0x0000000002010040: dte_index: 0x8 pte_index: 0x10 page_offset: 0x40`,
    `[   12.000003] ${P}mmu_dte_addr: 0x0000000100000000 dte@0x0000000100000020: 0x1722101 valid: 1 pte@0x0000000101722040: 0x2c01107 valid: 1 page@0x0000000102c01040 flags: 0x106`,
  ].join("\n"));
  const f = e.faults[0];
  assert.equal(f.format.format, "v2");
  assert.match(f.format.why, /only the v2 reading is consistent: the v1 reading fails because/);
  assert.match(f.format.why, /pte@ is not pt_address\(dte\)/);
  assert.equal(f.soc.label, "vop_mmu");
  assert.deepEqual(f.tables.pageTable, { address: 0x1_0172_2000, above4G: true });
  assert.deepEqual(f.tables.page, { address: 0x1_02c0_1000, above4G: true });
});

Deno.test("with a board and kernel: the oracle's outcome beside the log, NPU lines around", async () => {
  const e = await explainLog(`${WATCH}rk_iommu_warning.log`, {
    board: "rock-3b-8g",
    kernel: "6.12",
  });
  const f = e.faults[0];
  assert.equal(f.format.format, "v2");
  assert.equal(f.format.given, true);
  assert.deepEqual(f.nearby, [2, 20, 21, 22, 24]);
  assert.ok(e.npu.some((n) => n.detail.what === "wait_failed"));
  assert.equal(e.crashes[0].kind, "warning");
  const v = e.prediction?.verdicts[0];
  assert.equal(v?.predicted?.outcome, "BUS_ERROR");
  assert.equal(v?.verdict, "disagree");
  assert.match(
    v!.why,
    /the log shows PAGE_FAULT; the directory table lies above 4 GiB as predicted/,
  );
});

Deno.test("bad input: missing, empty, binary and huge files are one clear error each", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string, (p: string) => Promise<void>, RegExp][] = [
      ["missing.log", async () => {}, /no such file/],
      ["empty.log", (p) => Deno.writeFile(p, new Uint8Array()), /is empty/],
      ["bin.log", (p) => Deno.writeFile(p, new Uint8Array([0x7f, 0x45, 0, 1])), /binary/],
      ["huge.log", async (p) => {
        const f = await Deno.open(p, { create: true, write: true });
        await f.truncate(MAX_LOG_BYTES + 1);
        f.close();
      }, /more than explain-log reads/],
    ];
    for (const [name, make, re] of cases) {
      const p = `${dir}/${name}`;
      await make(p);
      await assert.rejects(() => readLogFile(p), (e: unknown) => {
        assert.ok(e instanceof UserInputError);
        assert.match((e as Error).message, re);
        assert.ok(!(e as Error).message.includes("\n"));
        return true;
      });
    }
    await Deno.writeTextFile(`${dir}/empty2.log`, "");
    assert.equal(await main(["explain-log", `${dir}/empty2.log`]), 2);
    assert.equal(await main(["explain-log", `${dir}/nope.log`]), 2);
    assert.equal(
      await main(["explain-log", `${LOGS}rk3288-vpu-mpp206.log`, "--board", "rk3568-4g"]),
      2,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: text and JSON on a real log, exit 0", async () => {
  const out: string[] = [];
  const log = console.log;
  console.log = (s: string) => out.push(s);
  try {
    assert.equal(await main(["explain-log", `${LOGS}rk3399-vepu-mirrors12.log`, "--json"]), 0);
    assert.equal(await main(["explain-log", `${LOGS}rk3399-vepu-mirrors12.log`]), 0);
  } finally {
    console.log = log;
  }
  const j = JSON.parse(out[0]);
  assert.equal(j.faults[0].iova, 0x4382010);
  assert.match(out[1], /ff650800\.iommu on Rockchip RK3399/);
});
