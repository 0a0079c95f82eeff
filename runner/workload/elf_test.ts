import assert from "node:assert/strict";
import fc from "fast-check";
import { run } from "../debian/proc.ts";
import { ElfFormatError, readElfDynamic } from "./elf.ts";

/** What binutils' readelf says about a file's NEEDED and SONAME. */
async function readelfDynamic(path: string): Promise<{ needed: string[]; soname?: string }> {
  const res = await run("readelf", ["-dW", path], { env: { LC_ALL: "C" } });
  const needed = [...res.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) =>
    m[1]
  );
  const soname = res.stdout.match(/\(SONAME\)\s+Library soname: \[([^\]]+)\]/)?.[1];
  return { needed, soname };
}

/** Real dynamic objects of this host (x86-64 or whatever it runs): programs and libraries. */
async function hostObjects(): Promise<string[]> {
  const out: string[] = [];
  for (const p of ["/bin/ls", "/usr/bin/git", "/usr/bin/apt-get", "/bin/sh"]) {
    try {
      out.push(await Deno.realPath(p));
    } catch { /* not on this host */ }
  }
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]) {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (/^lib(c|stdc\+\+|apt-pkg|z|zstd|ssl|crypto)\.so\.\d+$/.test(e.name)) {
          out.push(await Deno.realPath(`${dir}/${e.name}`));
        }
      }
    } catch { /* not this architecture */ }
  }
  return out;
}

Deno.test("ELF reader agrees with readelf on this host's programs and libraries", async () => {
  const files = await hostObjects();
  assert.ok(files.length >= 5, `only ${files.length} host objects found`);
  for (const f of files) {
    const ours = readElfDynamic(await Deno.readFile(f));
    const ref = await readelfDynamic(f);
    assert.deepEqual(ours.needed, ref.needed, `DT_NEEDED of ${f}`);
    assert.equal(ours.soname, ref.soname, `DT_SONAME of ${f}`);
  }
  const ls = readElfDynamic(await Deno.readFile(await Deno.realPath("/bin/ls")));
  assert.match(ls.interpreter ?? "", /^\/lib.*\/ld-linux[^/]*\.so\.\d$/);
  assert.ok(ls.needed.includes("libc.so.6"));
});

/** A minimal valid ELF64 LE shared object: one PT_LOAD, a PT_DYNAMIC, NEEDED a, SONAME b. */
function tinyElf(): Uint8Array {
  const b = new Uint8Array(512);
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  dv.setUint16(16, 3, true); // ET_DYN
  dv.setUint16(18, 183, true); // AArch64
  dv.setBigUint64(0x20, 64n, true); // e_phoff
  dv.setUint16(0x36, 56, true);
  dv.setUint16(0x38, 2, true);
  // PT_LOAD: offset 0, vaddr 0x1000, filesz 512
  dv.setUint32(64, 1, true);
  dv.setBigUint64(64 + 8, 0n, true);
  dv.setBigUint64(64 + 16, 0x1000n, true);
  dv.setBigUint64(64 + 32, 512n, true);
  // PT_DYNAMIC at 200, 5 entries
  dv.setUint32(120, 2, true);
  dv.setBigUint64(120 + 8, 200n, true);
  dv.setBigUint64(120 + 32, 80n, true);
  const dyn = [[1n, 1n], [14n, 11n], [5n, 0x1000n + 400n], [10n, 20n], [0n, 0n]];
  dyn.forEach(([t, v], i) => {
    dv.setBigInt64(200 + i * 16, t, true);
    dv.setBigUint64(200 + i * 16 + 8, v, true);
  });
  b.set(new TextEncoder().encode("\0liba.so.1\0libb.so\0"), 400);
  return b;
}

Deno.test("ELF reader: a built object gives its NEEDED and SONAME", () => {
  const info = readElfDynamic(tinyElf());
  assert.deepEqual(info, {
    machine: 183,
    type: 3,
    interpreter: undefined,
    needed: ["liba.so.1"],
    soname: "libb.so",
  });
});

Deno.test("ELF reader: hostile input is an ElfFormatError naming the field", () => {
  const cases: [string, (b: Uint8Array, dv: DataView) => Uint8Array, RegExp][] = [
    ["short", (b) => b.subarray(0, 40), /too short/],
    ["magic", (b) => (b[1] = 0x46, b), /no ELF magic/],
    ["ELF32", (b) => (b[4] = 1, b), /not ELF64/],
    ["big-endian", (b) => (b[5] = 2, b), /not little-endian/],
    ["phoff", (b, dv) => (dv.setBigUint64(0x20, 1n << 40n, true), b), /beyond the file/],
    ["phentsize", (b, dv) => (dv.setUint16(0x36, 8, true), b), /e_phentsize/],
    ["dynamic", (b, dv) => (dv.setBigUint64(120 + 8, 500n, true), b), /PT_DYNAMIC beyond/],
    ["strtab", (b, dv) => (dv.setBigUint64(200 + 2 * 16 + 8, 0x9000n, true), b), /no PT_LOAD/],
    ["name offset", (b, dv) => (dv.setBigUint64(200 + 8, 30n, true), b), /beyond DT_STRSZ/],
    ["unterminated", (b) => (b.fill(0x41, 400, 512), b), /not terminated|plain file name/],
    ["slash", (b) => (b[403] = 0x2f, b), /plain file name/],
    ["control", (b) => (b[403] = 0x0a, b), /plain file name/],
    ["no strtab", (b, dv) => (dv.setBigInt64(200 + 2 * 16, 99n, true), b), /without DT_STRTAB/],
  ];
  for (const [name, mutate, re] of cases) {
    const b = tinyElf();
    const bad = mutate(b, new DataView(b.buffer));
    assert.throws(() => readElfDynamic(bad), (e: unknown) => {
      assert.ok(e instanceof ElfFormatError, `${name}: ${e}`);
      assert.match((e as Error).message, re, name);
      return true;
    });
  }
});

Deno.test("ELF reader: random corruption gives a result or an ElfFormatError, nothing else", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(511), fc.nat(255)), { minLength: 1, maxLength: 12 }),
      fc.nat(512),
      (edits, cut) => {
        const b = tinyElf();
        for (const [at, v] of edits) b[at] = v;
        try {
          const info = readElfDynamic(b.subarray(0, Math.max(cut, 1)));
          for (const n of info.needed) assert.ok(n.length > 0 && !n.includes("/"));
        } catch (e) {
          if (!(e instanceof ElfFormatError)) throw e;
        }
      },
    ),
    { numRuns: 3000 },
  );
});
