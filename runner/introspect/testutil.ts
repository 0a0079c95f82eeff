/**
 * Test helpers of runner/introspect (not a test file): a BTF writer, an ELF core writer, and a
 * command channel running the host's `sh`.
 *
 * @module
 */
import type { RunCommand } from "../facts/collect.ts";
import { BTF_KINDS } from "./btf.ts";
import { hostCommand } from "../debian/host_tools.ts";

export type Rec = {
  name?: string;
  kind: number;
  vlen?: number;
  kflag?: boolean;
  st: number;
  extra?: number[];
};

/** Build a blob with a fixed string table so that member/param names can be referenced. */
export function blobWithStrings(
  names: string[],
  build: (n: (x: string) => number) => Rec[],
  opts: { bigEndian?: boolean } = {},
): Uint8Array {
  const table = ["", ...names];
  const offs = new Map<string, number>();
  let o = 0;
  for (const x of table) {
    offs.set(x, o);
    o += new TextEncoder().encode(x).length + 1;
  }
  const n = (x: string) => {
    const v = offs.get(x);
    if (v === undefined) throw new Error(`test bug: ${x} not in table`);
    return v;
  };
  const recs = build(n);
  const words: number[] = [];
  for (const r of recs) {
    const info = ((r.kflag ? 1 : 0) << 31) | (r.kind << 24) | ((r.vlen ?? 0) & 0xffff);
    words.push(r.name ? n(r.name) : 0, info >>> 0, r.st >>> 0, ...(r.extra ?? []));
  }
  const strBytes = new TextEncoder().encode(table.join("\0") + "\0");
  const typeLen = words.length * 4;
  const out = new Uint8Array(24 + typeLen + strBytes.length);
  const dv = new DataView(out.buffer);
  const le = !opts.bigEndian;
  dv.setUint16(0, 0xeb9f, le);
  dv.setUint8(2, 1);
  dv.setUint32(4, 24, le);
  dv.setUint32(8, 0, le);
  dv.setUint32(12, typeLen, le);
  dv.setUint32(16, typeLen, le);
  dv.setUint32(20, strBytes.length, le);
  words.forEach((w, i) => dv.setUint32(24 + i * 4, w >>> 0, le));
  out.set(strBytes, 24 + typeLen);
  return out;
}

export const K = Object.fromEntries(BTF_KINDS.map((k, i) => [k, i])) as Record<string, number>;

/** A small ELF64 core file: one PT_NOTE, then one PT_LOAD per segment, data after the headers. */
export function buildCore(segs: { vaddr: bigint; data: Uint8Array }[]): Uint8Array {
  const phnum = segs.length + 1;
  const hdr = 64 + 56 * phnum;
  const base = Math.ceil(hdr / 4096) * 4096;
  let size = base;
  const offs = segs.map((s) => {
    const o = size;
    size += Math.ceil(s.data.length / 4096) * 4096;
    return o;
  });
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, 4, true); // ET_CORE
  dv.setUint16(18, 183, true); // AArch64
  dv.setUint32(20, 1, true);
  dv.setBigUint64(32, 64n, true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, phnum, true);
  dv.setUint32(64, 4, true); // PT_NOTE first, as the kernel writes it
  segs.forEach((s, i) => {
    const o = 64 + 56 * (i + 1);
    dv.setUint32(o, 1, true);
    dv.setUint32(o + 4, 7, true);
    dv.setBigUint64(o + 8, BigInt(offs[i]), true);
    dv.setBigUint64(o + 16, s.vaddr, true);
    dv.setBigUint64(o + 24, 0x40000000n, true);
    dv.setBigUint64(o + 32, BigInt(s.data.length), true);
    dv.setBigUint64(o + 40, BigInt(s.data.length), true);
    out.set(s.data, offs[i]);
  });
  return out;
}

/**
 * Runs commands with the host's sh; what a command runs (dd, base64 from coreutils, strings
 * from binutils, grep) is installed first when missing (hostCommand).
 */
export const localRun: RunCommand = async (cmd) => {
  const r = await (await hostCommand("sh", { args: ["-c", cmd], stdout: "piped", stderr: "piped" }))
    .output();
  return {
    stdout: new TextDecoder().decode(r.stdout),
    stderr: new TextDecoder().decode(r.stderr),
    exitStatus: r.code,
  };
};
