import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import {
  BoardFileError,
  BUILTIN_BOARDS_DIR,
  closest,
  findBoard,
  formatBoardIssue,
  formatFieldPath,
  listBoards,
  loadBoardFile,
  MAX_BOARD_FILE_BYTES,
  parseBoard,
  UnknownBoardError,
} from "./load.ts";
import { parseAddress, parseSize } from "./schema.ts";

const SHIPPED = ["qemu-virt-8g", "rk3568-2g", "rk3568-4g", "rk3588-16g", "rock-3b-8g"];
const BUILTIN = BUILTIN_BOARDS_DIR ?? "";
const ROCK3B = await Deno.readTextFile(join(BUILTIN, "rock-3b-8g.yaml"));

/** 1-based line of the first line containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split("\n").findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `test setup: ${needle} not in text`);
  return i + 1;
}

/** Replace exactly one occurrence of `from`. */
function edit(text: string, from: string, to: string): string {
  assert.equal(text.split(from).length, 2, `test setup: ${from} must occur once`);
  return text.replace(from, to);
}

/** Parse, expect a BoardFileError, return it. */
function refuse(text: string, fileName = "boards/rock-3b-8g.yaml"): BoardFileError {
  try {
    parseBoard(text, fileName);
  } catch (err) {
    if (err instanceof BoardFileError) return err;
    throw new Error(`expected BoardFileError, got ${String(err)}`, { cause: err });
  }
  throw new Error("expected BoardFileError, but the board parsed");
}

function issueFor(err: BoardFileError, field: string) {
  const issue = err.issues.find((i) => i.field === field);
  assert.ok(issue, `no issue for ${field}; got:\n${err.message}`);
  return issue;
}

// ---------------------------------------------------------------------------------------------
// Shipped boards

Deno.test("every shipped board loads and its id equals its file name", async () => {
  const boards = await listBoards();
  assert.deepEqual(boards.map((b) => b.id), SHIPPED);
  for (const { id, board } of boards) assert.equal(board.id, id);
});

Deno.test("rock-3b-8g: RAM banks, console and IOMMU nodes as the research says", async () => {
  const { board } = await findBoard("rock-3b-8g");
  assert.equal(board.soc, "rk3568");
  assert.equal(board.ram.size, 8 * 2 ** 30);
  assert.deepEqual(board.ram.banks, [
    { start: 0x200000, end: 0xf000_0000 },
    { start: 0x1_0000_0000, end: 0x2_0000_0000 },
  ]);
  assert.ok(board.ram.size_note?.includes("not verified"));
  assert.deepEqual(board.console, { type: "serial", device: "/dev/ttyUSB0", baud: 1500000 });
  const byLabel = new Map(board.devicetree.iommus.map((n) => [n.label, n]));
  assert.deepEqual([...byLabel.keys()], [
    "rknpu_mmu",
    "vdpu_mmu",
    "vepu_mmu",
    "vicap_mmu",
    "vop_mmu",
  ]);
  for (const node of byLabel.values()) assert.deepEqual(node.compatible, ["rockchip,rk3568-iommu"]);
  assert.equal(byLabel.get("rknpu_mmu")?.unit, "fde4b000");
  assert.equal(byLabel.get("rknpu_mmu")?.master, "npu@fde40000");
  assert.equal(byLabel.get("rknpu_mmu")?.confidence, "reported");
  assert.equal(byLabel.get("vicap_mmu")?.status, "disabled");
  assert.deepEqual(byLabel.get("vicap_mmu")?.properties, ["rockchip,disable-mmu-reset"]);
  assert.equal(byLabel.get("vop_mmu")?.status, "okay");
  assert.deepEqual(byLabel.get("vop_mmu")?.banks, ["fe043f00"]);
  assert.deepEqual(board.capabilities, [
    "rk-iommu",
    "npu",
    "rknn",
    "rocket",
    "kernel-introspection",
    "probe-module",
    "cpu-workload",
  ]);
  assert.equal(board.ssh?.port, 22);
});

Deno.test("qemu-virt-8g: RAM at QEMU virt's base, no Rockchip IOMMU", async () => {
  const { board } = await findBoard("qemu-virt-8g");
  assert.deepEqual(board.ram.banks, [{ start: 0x4000_0000, end: 0x2_4000_0000 }]);
  assert.deepEqual(board.devicetree.iommus, []);
  assert.equal(board.console.type, "qemu-pty");
  assert.equal(board.power?.type, "qmp");
  assert.deepEqual(board.qemu, { mem: 8 * 2 ** 30, cpu: "cortex-a53", smp: 2 });
  assert.ok(!board.capabilities.includes("rk-iommu"));
});

Deno.test("rk3588-16g: every IOMMU is rk3588 + rk3568 compatible", async () => {
  const { board } = await findBoard("rk3588-16g");
  assert.ok(board.devicetree.iommus.length >= 10);
  for (const node of board.devicetree.iommus) {
    assert.deepEqual(node.compatible, ["rockchip,rk3588-iommu", "rockchip,rk3568-iommu"]);
  }
  assert.equal(board.ram.banks.at(-1)?.end, 0x5_0000_0000);
});

Deno.test("findBoard: unknown id lists the known ids and suggests the closest", async () => {
  await assert.rejects(() => findBoard("rock-3b-8"), (err: unknown) => {
    assert.ok(err instanceof UnknownBoardError);
    for (const id of SHIPPED) assert.ok(err.message.includes(id), err.message);
    assert.match(err.hint, /did you mean "rock-3b-8g"\?/);
    return true;
  });
  await assert.rejects(() => findBoard("../../etc/passwd"), UnknownBoardError);
});

Deno.test("findBoard: a user directory overrides a built-in board and adds its own", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "rock-3b-8g.yaml"),
      edit(ROCK3B, "name: Radxa ROCK 3B 8 GB", "name: Lab ROCK 3B"),
    );
    await Deno.writeTextFile(
      join(dir, "lab-board.yaml"),
      edit(ROCK3B, "id: rock-3b-8g", "id: lab-board"),
    );
    await Deno.writeTextFile(join(dir, "broken.yaml"), "id: [");
    assert.equal((await findBoard("rock-3b-8g", [dir])).board.name, "Lab ROCK 3B");
    assert.equal((await findBoard("rock-3b-8g")).board.name, "Radxa ROCK 3B 8 GB");
    assert.equal((await findBoard("lab-board", [dir])).path, join(dir, "lab-board.yaml"));
    // listBoards of that directory reports the broken file, by name and line.
    await assert.rejects(() => listBoards(dir), (err: unknown) => {
      assert.ok(err instanceof BoardFileError);
      assert.equal(err.file, join(dir, "broken.yaml"));
      assert.equal(err.line, 1);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(() => findBoard("rock-3b-8g", [join(dir, "gone")]), BoardFileError);
});

// ---------------------------------------------------------------------------------------------
// One broken file per class of error: right line, right field.

Deno.test("YAML syntax error: line and column", () => {
  const text = edit(ROCK3B, "name: Radxa ROCK 3B 8 GB", 'name: "Radxa ROCK 3B 8 GB');
  const err = refuse(text);
  assert.ok(err.line >= lineOf(text, "name: "), err.message);
  assert.ok(err.column > 0);
  assert.match(err.message, /^boards\/rock-3b-8g\.yaml:\d+:\d+: YAML syntax: /);
  assert.match(err.hint, /fix the YAML/);
});

Deno.test("YAML syntax error: a duplicate key names its line", () => {
  const text = edit(ROCK3B, "  baud: 1500000\n", "  baud: 1500000\n  baud: 115200\n");
  const err = refuse(text);
  assert.equal(err.line, lineOf(text, "baud: 115200"));
  assert.match(err.hint, /repeated key/);
});

Deno.test("wrong type: console.baud", () => {
  const text = edit(ROCK3B, "baud: 1500000", 'baud: "fast"');
  const err = refuse(text);
  const issue = issueFor(err, "console.baud");
  assert.equal(issue.line, lineOf(text, 'baud: "fast"'));
  assert.equal(issue.column, 9);
  assert.equal(issue.message, 'expected a number (got "fast")');
});

Deno.test("unknown key: did-you-mean hint, at the key", () => {
  const text = edit(
    ROCK3B,
    '      properties: ["rockchip,disable-mmu-reset"]',
    '      propertes: ["rockchip,disable-mmu-reset"]',
  );
  const err = refuse(text);
  const issue = issueFor(err, "devicetree.iommus[3].propertes");
  assert.equal(issue.line, lineOf(text, "propertes:"));
  assert.equal(issue.column, 7);
  assert.equal(issue.message, 'unknown key "propertes"');
  assert.equal(issue.hint, 'did you mean "properties"?');
});

Deno.test("unknown key far from any known key lists the allowed keys", () => {
  const err = refuse(edit(ROCK3B, "  type: manual\n", "  type: manual\n  xyzzy: 1\n"));
  assert.match(
    issueFor(err, "power.xyzzy").hint,
    /allowed here are: type, on, off, cycle, socket, min_off_ms/,
  );
});

Deno.test("overlapping banks", () => {
  const text = edit(ROCK3B, "start: 0x1_0000_0000", "start: 0xE000_0000");
  const err = refuse(text);
  const issue = issueFor(err, "ram.banks[1].start");
  assert.equal(issue.line, lineOf(text, "start: 0xE000_0000"));
  assert.match(issue.message, /overlaps bank 0/);
});

Deno.test("banks out of order, unaligned, empty, and not adding up", () => {
  const unsorted = refuse(
    edit(
      ROCK3B,
      "    - { start: 0x0020_0000, end: 0xF000_0000 }\n    - { start: 0x1_0000_0000, end: 0x2_0000_0000 }",
      "    - { start: 0x1_0000_0000, end: 0x2_0000_0000 }\n    - { start: 0x0020_0000, end: 0xF000_0000 }",
    ),
  );
  assert.match(issueFor(unsorted, "ram.banks[1].start").hint, /ascending/);
  const unaligned = refuse(edit(ROCK3B, "end: 0xF000_0000", "end: 0xF000_0800"));
  assert.match(issueFor(unaligned, "ram.banks[0].end").message, /not 4 KiB aligned/);
  const empty = refuse(edit(ROCK3B, "end: 0xF000_0000", "end: 0x0020_0000"));
  assert.match(issueFor(empty, "ram.banks[0].end").message, /not above start/);
  const text = ROCK3B.replace(/ {2}size_note: >-\n( {4}.*\n)+/, "");
  const total = refuse(text);
  const issue = issueFor(total, "ram.size");
  assert.equal(issue.line, lineOf(text, "size: 8G"));
  assert.match(issue.message, /add up to .* but size is 8G/);
  assert.match(issue.hint, /size_note/);
});

Deno.test("id differs from the file name", () => {
  const err = refuse(ROCK3B, "boards/rock-3b.yaml");
  assert.equal(err.field, "id");
  assert.equal(err.line, lineOf(ROCK3B, "id: rock-3b-8g"));
  assert.equal(err.column, 5);
  assert.match(err.hint, /rename the file to rock-3b-8g\.yaml, or set id: rock-3b/);
});

Deno.test("bad unit address", () => {
  const text = edit(ROCK3B, "unit: fdee0800", "unit: FDEE0800");
  const err = refuse(text);
  const issue = issueFor(err, "devicetree.iommus[2].unit");
  assert.equal(issue.line, lineOf(text, "unit: FDEE0800"));
  assert.equal(issue.column, 13);
  assert.match(issue.message, /8 lower-case hex digits like fde4b000 \(got "FDEE0800"\)/);
  const asNumber = refuse(edit(ROCK3B, "unit: fdee0800", "unit: 0xfdee0800"));
  assert.match(
    issueFor(asNumber, "devicetree.iommus[2].unit").message,
    /got the number 4260235264 = 0xfdee0800: YAML read it as a number/,
  );
  const dup = refuse(edit(ROCK3B, "banks: [fe043f00]", "banks: [fdee0800]"));
  assert.match(issueFor(dup, "devicetree.iommus[4].banks[0]").message, /already used/);
});

Deno.test("missing field: points at the mapping that lacks it", () => {
  const text = edit(
    ROCK3B,
    '      compatible: ["rockchip,rk3568-iommu"]\n      status: okay\n      master: vpu@fdea0400',
    '      compatible: ["rockchip,rk3568-iommu"]\n      master: vpu@fdea0400',
  );
  const err = refuse(text);
  const issue = issueFor(err, "devicetree.iommus[1].status");
  assert.equal(issue.message, "missing required field");
  assert.equal(issue.line, lineOf(text, "unit: fdea0800"));
  assert.match(issue.hint, /add status: one of okay, disabled/);
  const noSource = refuse(
    ROCK3B.replace(/ {2}source: >-\n {4}research\/rockchip-iommu.md §4\.1.*\n.*\n/, ""),
  );
  assert.equal(issueFor(noSource, "ram.source").line, lineOf(ROCK3B, "ram:"));
});

Deno.test("bad hex address: message names the field and the bad text", () => {
  const text = edit(ROCK3B, "start: 0x1_0000_0000", 'start: "0x1zz"');
  const err = refuse(text);
  assert.equal(
    err.message,
    `boards/rock-3b-8g.yaml:${lineOf(text, "0x1zz")}:16: ram.banks[1].start: ` +
      'expected a hex address like 0x100000000 (got "0x1zz")',
  );
  assert.equal(err.field, "ram.banks[1].start");
});

Deno.test("per-type rules: serial console needs a device, qemu only for qemu-virt", () => {
  const err = refuse(
    edit(ROCK3B, "  device: /dev/ttyUSB0 # example: the USB UART on the lab host\n", "") +
      "qemu: { mem: 8G, cpu: cortex-a53, smp: 2 }\n",
  );
  assert.match(issueFor(err, "console.device").message, /required when console.type is serial/);
  // The root-level rule runs once the rest is valid:
  const err2 = refuse(ROCK3B + "qemu: { mem: 8G, cpu: cortex-a53, smp: 2 }\n");
  assert.match(issueFor(err2, "qemu").message, /only applies to soc qemu-virt/);
});

Deno.test("several errors in one file are all reported, sorted by line", () => {
  const text = edit(
    edit(edit(ROCK3B, "baud: 1500000", "baud: fast"), "soc: rk3568", "soc: rk3586"),
    "status: disabled",
    "status: off",
  );
  const err = refuse(text);
  assert.deepEqual(err.issues.map((i) => i.field), [
    "soc",
    "devicetree.iommus[3].status",
    "console.baud",
  ]);
  const lines = err.issues.map((i) => i.line);
  assert.deepEqual(lines, [...lines].sort((a, b) => a - b));
  assert.equal(err.message.split("\n").length, 3);
  assert.equal(err.field, "soc");
  assert.match(err.hint, /did you mean "rk3566" or "rk3588"\?/);
});

Deno.test("a YAML syntax error is reported once, not with every error that follows from it", () => {
  const i = ROCK3B.indexOf("\nram:") + 1;
  assert.ok(i > 0);
  const text = ROCK3B.slice(0, i) + ROCK3B.slice(i).replace(/^ram:/, "ram: [");
  const err = refuse(text);
  assert.equal(err.issues.length, 1, err.message);
  assert.match(err.message, /^[^\n]*:\d+:\d+: YAML syntax: /);
  assert.equal(err.message.split("\n").length, 1);
});

// ---------------------------------------------------------------------------------------------
// Hostile input: nothing but BoardFileError ever escapes.

function onlyBoardFileError(text: string, name = "x.yaml"): BoardFileError {
  return refuse(text, name);
}

Deno.test("hostile: empty, blank and comment-only files", () => {
  for (const text of ["", "   \n\n", "# nothing\n", "---\n", "~\n"]) {
    const err = onlyBoardFileError(text);
    assert.equal(err.line, 1);
    assert.match(err.message, /file is empty/);
  }
  assert.match(onlyBoardFileError("- a\n- b\n").message, /expected a mapping \(got a list\)/);
  assert.match(onlyBoardFileError("hello").message, /expected a mapping/);
});

Deno.test("hostile: binary garbage", async () => {
  let seed = 0x2545f491;
  const bytes = new Uint8Array(64 * 1024).map(() => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed >>> 24;
  });
  onlyBoardFileError(new TextDecoder().decode(bytes));
  onlyBoardFileError("id: \u0000\u0001\u0002\u007f\ufffe");
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "garbage.yaml");
    await Deno.writeFile(path, bytes);
    await assert.rejects(() => loadBoardFile(path), (err: unknown) => {
      assert.ok(err instanceof BoardFileError);
      assert.match(err.message, /not UTF-8/);
      return true;
    });
    await assert.rejects(() => loadBoardFile(join(dir, "none.yaml")), /no such file/);
    await assert.rejects(() => loadBoardFile(dir), /is a directory, not a board file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile: a 10 MB file is refused before parsing", async () => {
  const big = "a: " + "x".repeat(10 * 1024 * 1024);
  assert.match(onlyBoardFileError(big).message, /at most/);
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "big.yaml");
    await Deno.writeTextFile(path, big);
    await assert.rejects(() => loadBoardFile(path), (err: unknown) => {
      assert.ok(err instanceof BoardFileError);
      assert.match(err.message, new RegExp(`at most ${MAX_BOARD_FILE_BYTES}`));
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile: deeply nested YAML", () => {
  onlyBoardFileError("[".repeat(100_000) + "]".repeat(100_000));
  onlyBoardFileError("a: " + "{a: ".repeat(20_000) + "1" + "}".repeat(20_000));
  onlyBoardFileError("- ".repeat(100_000) + "x");
  onlyBoardFileError(Array.from({ length: 1000 }, (_, i) => " ".repeat(i) + "a:").join("\n"));
});

Deno.test("hostile: alias bombs stop at maxAliasCount", () => {
  const bomb = [
    "a: &a [x, x, x, x, x, x, x, x, x]",
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]",
    "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]",
  ].join("\n");
  assert.match(onlyBoardFileError(bomb).message, /too many alias expansions/);
  onlyBoardFileError("a: &a [*a]\n");
  onlyBoardFileError("a: *nowhere\n");
  // A few aliases are fine: the shipped file with its compatible list shared by an anchor.
  const aliased = ROCK3B.replace(
    'compatible: ["rockchip,rk3568-iommu"]',
    'compatible: &rk ["rockchip,rk3568-iommu"]',
  ).replaceAll('compatible: ["rockchip,rk3568-iommu"]', "compatible: *rk");
  assert.equal(
    parseBoard(aliased, "rock-3b-8g.yaml").devicetree.iommus[4].compatible[0],
    "rockchip,rk3568-iommu",
  );
});

Deno.test("hostile: random text never escapes as anything but BoardFileError", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 400 }), (text) => {
      onlyBoardFileError(text);
    }),
    { numRuns: 300, seed: 42 },
  );
  // Mutations of a valid file: delete a random slice of it.
  fc.assert(
    fc.property(fc.nat(ROCK3B.length), fc.nat(40), (at, len) => {
      const text = ROCK3B.slice(0, at) + ROCK3B.slice(at + len + 1);
      try {
        parseBoard(text, "rock-3b-8g.yaml");
      } catch (err) {
        assert.ok(err instanceof BoardFileError, String(err));
        for (const i of err.issues) assert.ok(i.line >= 1 && i.column >= 1);
      }
    }),
    { numRuns: 300, seed: 7 },
  );
});

// ---------------------------------------------------------------------------------------------
// Helpers

Deno.test("parseSize, parseAddress, formatFieldPath, closest", () => {
  assert.equal(parseSize("8G"), 8 * 2 ** 30);
  assert.equal(parseSize("512M"), 512 * 2 ** 20);
  assert.equal(parseSize("4K"), 4096);
  assert.equal(parseSize("8"), undefined);
  assert.equal(parseSize("8T"), undefined);
  assert.equal(parseAddress("0x1_0000_0000"), 2 ** 32);
  assert.equal(parseAddress(0x200000), 0x200000);
  assert.equal(parseAddress("0x1zz"), undefined);
  assert.equal(parseAddress(-1), undefined);
  assert.equal(parseAddress("0x" + "f".repeat(20)), undefined);
  assert.equal(formatFieldPath(["ram", "banks", 1, "end"]), "ram.banks[1].end");
  assert.deepEqual(closest("capabilites", ["capabilities", "console"]), ["capabilities"]);
  assert.deepEqual(closest("zzz", ["capabilities"]), []);
});

Deno.test("qemu-virt rules: no Rockchip IOMMU, no NPU capability, qemu.mem = ram.size", async () => {
  const text = await Deno.readTextFile(join(BUILTIN, "qemu-virt-8g.yaml"));
  const err = refuse(
    edit(edit(text, "  - cpu-workload\n", "  - cpu-workload\n  - npu\n"), "mem: 8G", "mem: 4G"),
    "qemu-virt-8g.yaml",
  );
  assert.match(issueFor(err, "capabilities[3]").message, /has no npu/);
  assert.match(issueFor(err, "qemu.mem").message, /4G differs from ram.size 8G/);
  const noQemu = refuse(text.replace(/\nqemu:\n(.*\n)+$/, "\n"), "qemu-virt-8g.yaml");
  assert.equal(issueFor(noQemu, "qemu").message, "required when soc is qemu-virt");
});

/** mkfifo(3) through libc (no program spawned). */
function mkfifo(path: string): void {
  const libc = Deno.dlopen("libc.so.6", {
    mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
  });
  try {
    const rc = libc.symbols.mkfifo(new TextEncoder().encode(path + "\0"), 0o644);
    if (rc !== 0) throw new Error(`mkfifo ${path} failed`);
  } finally {
    libc.close();
  }
}

Deno.test("a directory or FIFO named <id>.yaml is refused by name, and the FIFO is never opened", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "dir-board.yaml"));
    mkfifo(join(dir, "fifo-board.yaml"));
    for (const [id, what] of [["dir-board", "a directory"], ["fifo-board", "a FIFO"]]) {
      // Opening the FIFO would block forever; the race bounds the test if it ever does.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${id}: blocked`)), 5_000);
      });
      await assert.rejects(
        () => Promise.race([findBoard(id, [dir]), hung]),
        (err: unknown) => {
          assert.ok(err instanceof BoardFileError, String(err));
          assert.equal(err.file, join(dir, `${id}.yaml`));
          assert.match(err.message, new RegExp(`${id}\\.yaml: is ${what}, not a board file`));
          return true;
        },
      );
      clearTimeout(timer);
    }
    // Listing the directory names both.
    await assert.rejects(() => listBoards(dir), (err: unknown) => {
      assert.ok(err instanceof BoardFileError);
      assert.deepEqual(err.issues.map((i) => i.file), [
        join(dir, "dir-board.yaml"),
        join(dir, "fifo-board.yaml"),
      ]);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Reaching a board: ssh key file and pinned key, console protocols and login, power adapters,
// firmware_dir, boot-config (issue 8)

/** ROCK3B with its console/ssh/power blocks replaced by `blocks` (YAML text). */
function reach(blocks: string, caps = ""): string {
  const start = ROCK3B.indexOf("\nconsole:\n");
  const end = ROCK3B.indexOf("\ncapabilities:\n");
  assert.ok(start > 0 && end > start, "test setup: rock-3b-8g.yaml layout changed");
  const text = ROCK3B.slice(0, start + 1) + blocks.trim() + "\n" + ROCK3B.slice(end);
  return caps === "" ? text : text.replace("\ncapabilities:\n", `\ncapabilities:\n${caps}`);
}

const LAB_BLOCKS = `
console:
  type: tcp
  host: 127.0.0.1
  port: 3001
  protocol: telnet
  login: { user: root, password_env: LAB_PASSWORD }
ssh:
  host: 127.0.0.1
  port: 10022
  user: root
  key_file: keys/lab
  host_key_fingerprint: SHA256:0GUhLmdGjYYkBi6A3VZCgvQJe1Y1x8Yi2Ni3+2Xq0Uw
power:
  type: command
  on: relay 3 on
  off: relay 3 off
  cycle: relay 3 cycle
  min_off_ms: 1500
firmware_dir: /opt/rknn
`;

Deno.test("a board file with key_file, pinned key, telnet console, login, command power and firmware_dir loads", () => {
  const b = parseBoard(reach(LAB_BLOCKS), "rock-3b-8g.yaml");
  assert.deepEqual(b.console, {
    type: "tcp",
    host: "127.0.0.1",
    port: 3001,
    protocol: "telnet",
    login: { user: "root", password_env: "LAB_PASSWORD", prompt: "[#$] $" },
  });
  assert.equal(b.ssh?.key_file, "keys/lab");
  assert.equal(b.ssh?.host_key_fingerprint, "SHA256:0GUhLmdGjYYkBi6A3VZCgvQJe1Y1x8Yi2Ni3+2Xq0Uw");
  assert.deepEqual(b.power, {
    type: "command",
    on: "relay 3 on",
    off: "relay 3 off",
    cycle: "relay 3 cycle",
    min_off_ms: 1500,
  });
  assert.equal(b.firmware_dir, "/opt/rknn");
});

Deno.test("power types qmp (with socket) and none load; qmp without socket is refused on a board", () => {
  const qmp = parseBoard(
    reach(LAB_BLOCKS.replace(
      /power:[\s\S]*min_off_ms: 1500\n/,
      "power:\n  type: qmp\n  socket: /run/lab/qmp.sock\n",
    )),
    "rock-3b-8g.yaml",
  );
  assert.deepEqual(qmp.power, { type: "qmp", socket: "/run/lab/qmp.sock" });
  const none = parseBoard(
    reach(LAB_BLOCKS.replace(
      /power:[\s\S]*min_off_ms: 1500\n/,
      "power:\n  type: none\n",
    )),
    "rock-3b-8g.yaml",
  );
  assert.equal(none.power?.type, "none");
  const text = reach(
    LAB_BLOCKS.replace(/power:[\s\S]*min_off_ms: 1500\n/, "power:\n  type: qmp\n"),
  );
  const err = refuse(text);
  const issue = issueFor(err, "power.socket");
  assert.match(issue.message, /required when power.type is qmp/);
  assert.match(issue.hint, /QMP socket path/);
  assert.equal(issue.line, lineOf(text, "  type: qmp"));
});

Deno.test("boot-config in a board file is refused with a hint; file:line:field", () => {
  const text = reach(LAB_BLOCKS, "  - boot-config\n");
  const err = refuse(text);
  const issue = issueFor(err, "capabilities[0]");
  assert.match(issue.message, /cannot claim boot-config/);
  assert.match(issue.hint, /QEMU targets/);
  assert.equal(issue.line, lineOf(text, "- boot-config"));
  assert.match(formatBoardIssue(issue), /rock-3b-8g\.yaml:\d+:\d+: capabilities\[0\]: /);
});

Deno.test("tcp console: protocol is required and must be raw or telnet", () => {
  const missing = refuse(reach(LAB_BLOCKS.replace("  protocol: telnet\n", "")));
  assert.match(issueFor(missing, "console.protocol").hint, /raw or telnet/);
  const text = reach(LAB_BLOCKS.replace("protocol: telnet", "protocol: rfc2217"));
  const bad = issueFor(refuse(text), "console.protocol");
  assert.match(bad.message, /expected one of raw, telnet \(got "rfc2217"\)/);
  assert.equal(bad.line, lineOf(text, "protocol: rfc2217"));
  // protocol does not apply to a serial console
  const serial = refuse(reach(LAB_BLOCKS.replace(
    "  type: tcp\n  host: 127.0.0.1\n  port: 3001\n",
    "  type: serial\n  device: /dev/ttyUSB0\n  baud: 1500000\n",
  )));
  assert.match(
    issueFor(serial, "console.protocol").message,
    /does not apply to console.type serial/,
  );
});

Deno.test("login: password_env is an env var NAME (a password is refused, and not echoed), prompt must compile", () => {
  const text = reach(
    LAB_BLOCKS.replace("password_env: LAB_PASSWORD", 'password_env: "hunter2 secret!"'),
  );
  const err = refuse(text);
  const issue = issueFor(err, "console.login.password_env");
  assert.match(issue.message, /NAME of an environment variable/);
  assert.match(issue.hint, /environment variable/);
  assert.ok(!err.message.includes("hunter2"), err.message);
  const badPrompt = refuse(reach(LAB_BLOCKS.replace(
    "password_env: LAB_PASSWORD",
    'password_env: LAB_PASSWORD, prompt: "[#$"',
  )));
  assert.match(
    issueFor(badPrompt, "console.login.prompt").message,
    /not a valid regular expression/,
  );
  const unknown = refuse(reach(LAB_BLOCKS.replace("password_env: LAB_PASSWORD", "passwrd_env: X")));
  assert.match(issueFor(unknown, "console.login.passwrd_env").hint, /did you mean "password_env"/);
});

Deno.test("fingerprint, power fields per type, min_off_ms bound and firmware_dir are checked", () => {
  const fp = issueFor(
    refuse(reach(LAB_BLOCKS.replace(/SHA256:\S+/, "MD5:aa:bb"))),
    "ssh.host_key_fingerprint",
  );
  assert.match(fp.hint, /ssh-keyscan -t ed25519 HOST \| ssh-keygen -lf -/);
  const cycleOnQmp = refuse(reach(LAB_BLOCKS.replace(
    /power:[\s\S]*min_off_ms: 1500\n/,
    "power:\n  type: qmp\n  socket: /q.sock\n  cycle: x\n",
  )));
  assert.match(issueFor(cycleOnQmp, "power.cycle").message, /does not apply to power.type qmp/);
  const socketOnCommand = refuse(
    reach(LAB_BLOCKS.replace("  min_off_ms: 1500\n", "  socket: /q\n")),
  );
  assert.match(issueFor(socketOnCommand, "power.socket").hint, /set power.type to qmp/);
  const minOff = refuse(reach(LAB_BLOCKS.replace("min_off_ms: 1500", "min_off_ms: -1")));
  issueFor(minOff, "power.min_off_ms");
  const fw = refuse(reach(LAB_BLOCKS.replace("firmware_dir: /opt/rknn", "firmware_dir: opt/rknn")));
  assert.match(issueFor(fw, "firmware_dir").message, /absolute path on the board/);
  const onNone = refuse(reach(LAB_BLOCKS.replace("  type: command\n", "  type: none\n")));
  assert.match(issueFor(onNone, "power.on").message, /does not apply to power.type none/);
});

Deno.test("login on the embedded target's qemu-pty console is refused", () => {
  const text = edit(
    edit(ROCK3B, "soc: rk3568", "soc: qemu-virt"),
    "  type: serial\n  device: /dev/ttyUSB0 # example: the USB UART on the lab host\n  baud: 1500000\n",
    "  type: qemu-pty\n  login: { user: root }\n",
  );
  const err = refuse(text);
  assert.match(issueFor(err, "console.login").message, /does not apply to console.type qemu-pty/);
});

Deno.test("the README's ROCK 3B board file loads and carries the shipped board's facts", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = readme.slice(readme.indexOf("### Your own board"));
  const m = /```yaml\n([\s\S]*?)```/.exec(section);
  assert.ok(m, "no yaml block under ### Your own board");
  const b = parseBoard(m[1], "lab/boards/rock-3b-8g.yaml");
  const { board: shipped } = await findBoard("rock-3b-8g");
  assert.deepEqual(b.ram.banks, shipped.ram.banks);
  assert.equal(b.ram.size, shipped.ram.size);
  const facts = (bs: typeof b) =>
    bs.devicetree.iommus.map((n) => [n.unit, n.compatible, n.status, n.banks ?? []]);
  assert.deepEqual(facts(b), facts(shipped));
  assert.deepEqual(b.console, {
    type: "serial",
    device: "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10KXYZ-if00-port0",
    baud: 1500000,
    login: { user: "root", password_env: "ROCK3B_PASSWORD", prompt: "[#$] $" },
  });
  assert.equal(b.ssh?.key_file, "keys/rock-3b");
  assert.match(b.ssh?.host_key_fingerprint ?? "", /^SHA256:/);
  assert.equal(b.power?.type, "command");
  assert.deepEqual(b.capabilities, shipped.capabilities);
});
