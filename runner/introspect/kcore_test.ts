import assert from "node:assert/strict";
import fc from "fast-check";
import type { RunCommand } from "../facts/collect.ts";
import { buildCore, localRun } from "./testutil.ts";
import { ensureHostTools, hostCommand } from "../debian/host_tools.ts";
import {
  cString,
  ddCommand,
  Kcore,
  KcoreError,
  parseKcoreHeader,
  scanKcoreStrings,
  segmentFor,
  sshKcoreReader,
  uintLe,
  vaddrToOffset,
} from "./kcore.ts";

const TD = new URL("./testdata/", import.meta.url).pathname;

Deno.test("kcore: real program headers of Debian arm64 6.1, 6.12 and 7.3 guests", async () => {
  for (
    const [rel, textSize] of [
      ["6.1.0-56-arm64", 0x2010000n],
      ["6.12.118+deb13-arm64", 0x2510000n],
      ["7.3.4+deb13-arm64", 0x3240000n],
    ] as const
  ) {
    const h = parseKcoreHeader(await Deno.readFile(`${TD}kcore-header-${rel}.bin`));
    assert.equal(h.machine, 183, rel);
    assert.equal(h.littleEndian, true);
    assert.equal(h.headerBytes, 64 + 6 * 56);
    assert.equal(h.segments.length, 5, rel); // the PT_NOTE is not a segment
    // The first PT_LOAD is the kernel image (KCORE_TEXT): _text.._end at physical 0x40200000.
    const text = h.segments[0];
    assert.equal(text.paddr, 0x40200000n);
    assert.equal(text.size, textSize);
    assert.equal(vaddrToOffset(h.segments, text.vaddr + 0x10n), text.offset + 0x10n);
    assert.equal(segmentFor(h.segments, text.vaddr + text.size - 8n, 8), text);
    // The image also lies inside the vmalloc segment (KCORE_VMALLOC): the first segment wins,
    // and a range running past _end falls to the vmalloc one.
    const vm = segmentFor(h.segments, text.vaddr + text.size - 4n, 8);
    assert.ok(vm && vm !== text && vm.vaddr <= text.vaddr, rel);
    assert.throws(() => vaddrToOffset(h.segments, 0x1000n), KcoreError);
    // Offsets stay below 2^53 (dd's skip= is printed from a bigint anyway).
    for (const s of h.segments) assert.ok(s.offset + s.size < 1n << 53n);
  }
});

Deno.test("kcore: hostile headers are KcoreError", async () => {
  const good = await Deno.readFile(`${TD}kcore-header-6.1.0-56-arm64.bin`);
  const edit = (i: number, v: number) => {
    const c = good.slice();
    c[i] = v;
    return c;
  };
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array()],
    ["short", good.slice(0, 63)],
    ["magic", edit(1, 0)],
    ["ELF32", edit(4, 1)],
    ["data", edit(5, 9)],
    ["not core", edit(16, 2)],
    ["phentsize", edit(54, 8)],
    [
      "no phdrs",
      (() => {
        const c = good.slice();
        c[56] = 0;
        c[57] = 0;
        return c;
      })(),
    ],
    ["phdrs cut", good.slice(0, 300)],
    ["phoff huge", edit(39, 0x7f)],
  ];
  for (const [what, b] of cases) assert.throws(() => parseKcoreHeader(b), KcoreError, what);
  assert.match(
    (() => {
      try {
        parseKcoreHeader(good.slice(0, 300));
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })(),
    /need 400$/,
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), {
        maxLength: 6,
      }),
      fc.nat(good.length),
      (edits, cut) => {
        const c = good.slice(0, cut);
        for (const [i, v] of edits) if (i < c.length) c[i] = v;
        try {
          parseKcoreHeader(c);
        } catch (e) {
          if (!(e instanceof KcoreError)) throw e;
        }
      },
    ),
    { numRuns: 3000 },
  );
});

Deno.test("kcore: byte helpers refuse reads past the end", () => {
  const b = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 0x61, 0x62, 0]);
  assert.equal(uintLe(b, 0, 8), 0x0807060504030201n);
  assert.equal(uintLe(b, 4, 4), 0x08070605n);
  assert.throws(() => uintLe(b, 8, 8), KcoreError);
  assert.equal(cString(b, 8, 3), "ab");
  assert.equal(cString(b, 8, 2), undefined);
  assert.throws(() => ddCommand("/proc/kcore", { offset: -1n, length: 1 }), KcoreError);
});

Deno.test("kcore: dd reader and in-target string scan on an ELF core file, through sh", async () => {
  const vaddr = 0xffff800010000000n;
  const data = new Uint8Array(3 * 4096 + 123);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  // Two NUL-terminated strings to find, one lookalike that is longer.
  const put = (at: number, s: string) => {
    data[at - 1] = 0;
    data.set(new TextEncoder().encode(s + "\0"), at);
  };
  put(5000, "rockchip,iommu");
  put(9000, "rockchip,rk3568-iommu");
  put(11000, "rockchip,iommu-v9");
  const core = buildCore([{ vaddr, data }, {
    vaddr: 0xffff000000000000n,
    data: new Uint8Array(8192),
  }]);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/kcore`;
    await Deno.writeFile(path, core);
    let calls = 0;
    const counted: RunCommand = (cmd, o) => {
      calls++;
      return localRun(cmd, o);
    };
    const k = await Kcore.open(sshKcoreReader(counted, { path }));
    assert.equal(k.segments.length, 2);
    const [a, b, c] = await k.readVirt([
      { vaddr: vaddr + 1n, length: 10 },
      { vaddr: vaddr + 4095n, length: 4098 },
      { vaddr: vaddr + BigInt(data.length - 5), length: 5 },
    ]);
    assert.deepEqual(a, data.slice(1, 11));
    assert.deepEqual(b, data.slice(4095, 4095 + 4098));
    assert.deepEqual(c, data.slice(data.length - 5));
    assert.equal(calls, 2, "one round trip for the header, one for three ranges");
    await assert.rejects(() => k.readOne(vaddr + BigInt(data.length - 2), 4), KcoreError);
    // A reader that cannot read (wrong path) is a short read, not garbage.
    await assert.rejects(
      () => Kcore.open(sshKcoreReader(localRun, { path: `${dir}/missing` })),
      KcoreError,
    );
    const hits = await scanKcoreStrings(
      localRun,
      k,
      vaddr,
      vaddr + BigInt(data.length),
      ["rockchip,iommu", "rockchip,rk3568-iommu"],
      { path },
    );
    assert.deepEqual(hits, [
      { vaddr: vaddr + 5000n, text: "rockchip,iommu" },
      { vaddr: vaddr + 9000n, text: "rockchip,rk3568-iommu" },
    ]);
    // Within a sub-range, offsets are relative to its start.
    const sub = await scanKcoreStrings(localRun, k, vaddr + 8000n, vaddr + 10000n, [
      "rockchip,rk3568-iommu",
    ], { path });
    assert.deepEqual(sub.map((h) => h.vaddr), [vaddr + 9000n]);
    await assert.rejects(
      () => scanKcoreStrings(localRun, k, vaddr, vaddr + 10n, ["a'; rm -rf /"], { path }),
      KcoreError,
    );
    // A target without `strings` (PATH without it) is an error that says so, not 0 hits.
    const bin = `${dir}/bin`;
    await Deno.mkdir(bin);
    const { paths } = await ensureHostTools(["dd", "grep"]);
    for (const t of ["dd", "grep"]) await Deno.symlink(paths[t], `${bin}/${t}`);
    const noStrings: RunCommand = async (cmd) => {
      const r = await (await hostCommand("sh", {
        args: ["-c", cmd],
        env: { PATH: bin },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      })).output();
      return { stdout: new TextDecoder().decode(r.stdout), exitStatus: r.code };
    };
    await assert.rejects(
      () =>
        scanKcoreStrings(noStrings, k, vaddr, vaddr + BigInt(data.length), ["rockchip,iommu"], {
          path,
        }),
      (e: unknown) => e instanceof KcoreError && /no `strings` command/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
