/**
 * `/proc/kcore`: the running kernel's memory as an ELF64 core file. {@link parseKcoreHeader}
 * reads the ELF header and the PT_LOAD program headers (pure, from bytes);
 * {@link Kcore} maps kernel virtual addresses to file offsets and reads them through a
 * {@link ReadRanges} function. {@link sshKcoreReader} is that function over any command channel:
 * `dd` with byte-exact skip and count (`iflag=skip_bytes,count_bytes`, busybox ≥ 1.23 and GNU
 * coreutils), several ranges per command, bytes back as base64 — one round trip per batch.
 * {@link scanKcoreStrings} finds NUL-terminated strings in a range without copying it to the
 * host (`strings -t d` in the target).
 *
 * Kernel virtual addresses are 64-bit (`0xffff…`) and do not fit a JavaScript number: they are
 * bigints here. File offsets of kcore stay below 2^52 on arm64 and x86-64 but are bigints too.
 *
 * @module
 */
import type { RunCommand } from "../facts/collect.ts";

/** A malformed kcore, an address outside every segment, or a read that came back short. */
export class KcoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KcoreError";
  }
}

/** One PT_LOAD segment. */
export interface KcoreSegment {
  vaddr: bigint;
  paddr: bigint;
  /** File offset of `vaddr`. */
  offset: bigint;
  /** Bytes in the file (p_filesz). */
  size: bigint;
  flags: number;
}

/** What the ELF header says. */
export interface KcoreHeader {
  /** e_machine: 183 = AArch64, 62 = x86-64. */
  machine: number;
  littleEndian: boolean;
  segments: KcoreSegment[];
  /** Bytes of the file the program headers need (ELF header + phdrs). */
  headerBytes: number;
}

const PT_LOAD = 1;
const ET_CORE = 4;
/** Program headers refused beyond this many (a real kcore has under a hundred). */
const MAX_PHDRS = 4096;

/** Bytes needed from the start of kcore to parse the ELF header. */
export const ELF_HEADER_BYTES = 64;

/**
 * Parse the ELF64 header and PT_LOAD program headers. `bytes` must start at file offset 0 and
 * hold the program header table; when it is too short the error says how many bytes it needs.
 */
export function parseKcoreHeader(bytes: Uint8Array): KcoreHeader {
  if (bytes.length < ELF_HEADER_BYTES) {
    throw new KcoreError(`kcore header: ${bytes.length} bytes, need ${ELF_HEADER_BYTES}`);
  }
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new KcoreError("kcore is not an ELF file (bad magic)");
  }
  if (bytes[4] !== 2) throw new KcoreError(`kcore is ELF class ${bytes[4]}, not ELF64`);
  if (bytes[5] !== 1 && bytes[5] !== 2) throw new KcoreError(`kcore: bad ELF data ${bytes[5]}`);
  const le = bytes[5] === 1;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = dv.getUint16(16, le);
  if (type !== ET_CORE) throw new KcoreError(`kcore: ELF type ${type}, not ET_CORE`);
  const machine = dv.getUint16(18, le);
  const phoff = dv.getBigUint64(32, le);
  const phentsize = dv.getUint16(54, le);
  const phnum = dv.getUint16(56, le);
  if (phentsize < 56) throw new KcoreError(`kcore: program header size ${phentsize} < 56`);
  if (phnum === 0 || phnum > MAX_PHDRS) throw new KcoreError(`kcore: ${phnum} program headers`);
  const end = phoff + BigInt(phentsize) * BigInt(phnum);
  if (end > 1n << 24n) throw new KcoreError(`kcore: program headers end at ${end}, implausible`);
  const headerBytes = Number(end);
  if (bytes.length < headerBytes) {
    throw new KcoreError(
      `kcore header: ${bytes.length} bytes, the program headers need ${headerBytes}`,
    );
  }
  const segments: KcoreSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = Number(phoff) + i * phentsize;
    if (dv.getUint32(o, le) !== PT_LOAD) continue;
    segments.push({
      flags: dv.getUint32(o + 4, le),
      offset: dv.getBigUint64(o + 8, le),
      vaddr: dv.getBigUint64(o + 16, le),
      paddr: dv.getBigUint64(o + 24, le),
      size: dv.getBigUint64(o + 32, le),
    });
  }
  if (!segments.length) throw new KcoreError("kcore has no PT_LOAD segments");
  return { machine, littleEndian: le, segments, headerBytes };
}

/** The segment holding `[vaddr, vaddr+length)`, or undefined. */
export function segmentFor(
  segs: readonly KcoreSegment[],
  vaddr: bigint,
  length = 1,
): KcoreSegment | undefined {
  const len = BigInt(Math.max(length, 1));
  return segs.find((s) => vaddr >= s.vaddr && vaddr + len <= s.vaddr + s.size);
}

/** File offset of `[vaddr, vaddr+length)`; throws when no one segment holds it all. */
export function vaddrToOffset(segs: readonly KcoreSegment[], vaddr: bigint, length = 1): bigint {
  const s = segmentFor(segs, vaddr, length);
  if (!s) {
    throw new KcoreError(`0x${hex(vaddr)} (+${length}) is in no kcore PT_LOAD segment`);
  }
  return s.offset + (vaddr - s.vaddr);
}

/** One range of the file. */
export interface FileRange {
  offset: bigint;
  length: number;
}

/** Reads ranges of kcore (file offsets); returns one buffer per range, each exactly as long. */
export type ReadRanges = (ranges: readonly FileRange[]) => Promise<Uint8Array[]>;

/** Lower-case hex without 0x. */
export function hex(v: bigint | number): string {
  return v.toString(16);
}

/** kcore opened through a reader: segments known, reads by virtual address. */
export class Kcore {
  /** Round trips made through the reader so far. */
  reads = 0;
  private constructor(readonly header: KcoreHeader, private readonly read: ReadRanges) {}

  /** Read the ELF header (two reads when the program headers do not fit the first 4 KiB). */
  static async open(read: ReadRanges): Promise<Kcore> {
    const first = (await read([{ offset: 0n, length: 4096 }]))[0];
    let reads = 1;
    let bytes = first;
    try {
      parseKcoreHeader(bytes);
    } catch (e) {
      const m = e instanceof KcoreError ? /need (\d+)$/.exec(e.message) : null;
      if (!m) throw e;
      bytes = (await read([{ offset: 0n, length: Number(m[1]) }]))[0];
      reads++;
    }
    const k = new Kcore(parseKcoreHeader(bytes), read);
    k.reads = reads;
    return k;
  }

  get segments(): readonly KcoreSegment[] {
    return this.header.segments;
  }

  /** File offset of a virtual address range. */
  offsetOf(vaddr: bigint, length = 1): bigint {
    return vaddrToOffset(this.header.segments, vaddr, length);
  }

  /** Read several virtual ranges in one round trip. */
  async readVirt(ranges: readonly { vaddr: bigint; length: number }[]): Promise<Uint8Array[]> {
    if (!ranges.length) return [];
    const file = ranges.map((r) => ({
      offset: this.offsetOf(r.vaddr, r.length),
      length: r.length,
    }));
    this.reads++;
    const out = await this.read(file);
    if (out.length !== ranges.length || out.some((b, i) => b.length !== ranges[i].length)) {
      throw new KcoreError("kcore reader returned the wrong number or size of ranges");
    }
    return out;
  }

  /** Read one virtual range. */
  async readOne(vaddr: bigint, length: number): Promise<Uint8Array> {
    return (await this.readVirt([{ vaddr, length }]))[0];
  }
}

/** Decode base64 that may hold line breaks. Throws KcoreError on garbage. */
export function decodeBase64Lines(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) {
    throw new KcoreError("reader output is not base64");
  }
  const bin = atob(clean);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Most bytes one batch may ask for (the answer comes back as base64 in memory). */
export const MAX_BATCH_BYTES = 16 << 20;

/** The `dd` command reading one range (byte-exact skip and count). */
export function ddCommand(path: string, r: FileRange): string {
  if (r.offset < 0n || r.length < 0 || !Number.isSafeInteger(r.length)) {
    throw new KcoreError(`bad range ${r.offset} +${r.length}`);
  }
  return `dd if=${path} bs=65536 iflag=skip_bytes,count_bytes skip=${r.offset} count=${r.length}`;
}

/**
 * A {@link ReadRanges} over a command channel: one command per batch, `dd` per range, output
 * base64. The sum of the lengths is checked; a short read (dd refused, lockdown, a range the
 * kernel does not back) is a {@link KcoreError}.
 */
export function sshKcoreReader(
  run: RunCommand,
  opts: { path?: string; timeoutMs?: number } = {},
): ReadRanges {
  const path = opts.path ?? "/proc/kcore";
  return async (ranges) => {
    const total = ranges.reduce((a, r) => a + r.length, 0);
    if (total > MAX_BATCH_BYTES) {
      throw new KcoreError(`batch of ${total} bytes exceeds ${MAX_BATCH_BYTES}`);
    }
    if (total === 0) return ranges.map(() => new Uint8Array(0));
    const cmd = `{ ${ranges.map((r) => ddCommand(path, r)).join("; ")}; } 2>/dev/null | base64`;
    const res = await run(cmd, { timeoutMs: opts.timeoutMs ?? 60_000 });
    const bytes = decodeBase64Lines(res.stdout);
    if (bytes.length !== total) {
      throw new KcoreError(
        `reading ${path}: got ${bytes.length} of ${total} bytes (${ranges.length} ranges; ` +
          `is ${path} readable by this user and not locked down?)`,
      );
    }
    const out: Uint8Array[] = [];
    let at = 0;
    for (const r of ranges) {
      out.push(bytes.subarray(at, at + r.length));
      at += r.length;
    }
    return out;
  };
}

/** Exit status of the scan command when the target has no `strings`. */
const NO_STRINGS = 46;

/**
 * Find NUL-terminated strings equal to one of `wanted` in `[start, end)` of kcore, without
 * copying the range to the host: `dd | strings -t d` runs in the target and only matching lines
 * come back. Returns the virtual address of each match. `wanted` must be printable ASCII
 * without regex metacharacters other than `.`, `,` and `-` (they are escaped).
 */
export async function scanKcoreStrings(
  run: RunCommand,
  kcore: Kcore,
  start: bigint,
  end: bigint,
  wanted: readonly string[],
  opts: { path?: string; timeoutMs?: number } = {},
): Promise<{ vaddr: bigint; text: string }[]> {
  // Throws KcoreError for bad `wanted`, a too large range, or a target without `strings`.
  if (!wanted.length || end <= start) return [];
  for (const w of wanted) {
    if (!/^[A-Za-z0-9,._-]+$/.test(w)) throw new KcoreError(`cannot scan for ${JSON.stringify(w)}`);
  }
  const length = end - start;
  if (length > 1n << 32n) throw new KcoreError(`scan range of ${length} bytes is too large`);
  const offset = kcore.offsetOf(start, Number(length));
  const min = Math.min(...wanted.map((w) => w.length));
  const alt = wanted.map((w) => w.replace(/[.]/g, "\\.")).join("|");
  // Without `strings` the pipe would print nothing: "no hits" must not stand for "no tool".
  const cmd = `command -v strings >/dev/null 2>&1 || exit ${NO_STRINGS}; ` +
    `${ddCommand(opts.path ?? "/proc/kcore", { offset, length: Number(length) })} ` +
    `2>/dev/null | strings -t d -n ${min} | grep -E '^ *[0-9]+ (${alt})$'; ` +
    `exit 0`;
  kcore.reads++;
  const res = await run(cmd, { timeoutMs: opts.timeoutMs ?? 180_000 });
  if (res.exitStatus === NO_STRINGS) {
    throw new KcoreError(
      "the target has no `strings` command (busybox or binutils): cannot scan kcore for strings",
    );
  }
  const out: { vaddr: bigint; text: string }[] = [];
  for (const line of res.stdout.split("\n")) {
    const m = /^\s*(\d+) (.*)$/.exec(line);
    if (!m || !wanted.includes(m[2])) continue;
    const at = BigInt(m[1]);
    if (at >= length) continue;
    out.push({ vaddr: start + at, text: m[2] });
  }
  return out;
}

/** Read a little-endian unsigned integer of 1, 2, 4 or 8 bytes as bigint. */
export function uintLe(b: Uint8Array, at: number, size: number): bigint {
  if (at < 0 || at + size > b.length) {
    throw new KcoreError(`${size}-byte value at ${at} is past ${b.length} bytes`);
  }
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[at + i]);
  return v;
}

/** A NUL-terminated C string from a fixed-size char array (undefined if not terminated). */
export function cString(b: Uint8Array, at: number, size: number): string | undefined {
  const s = b.subarray(at, Math.min(at + size, b.length));
  const nul = s.indexOf(0);
  if (nul < 0) return undefined;
  return new TextDecoder().decode(s.subarray(0, nul));
}
