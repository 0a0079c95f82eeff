/**
 * A small reader of ELF64 little-endian dynamic objects: the machine, the program
 * interpreter, `DT_NEEDED` and `DT_SONAME`. Enough to bundle a program with the shared
 * libraries it needs; it reads only headers and the dynamic section, never runs anything.
 *
 * @module
 */

/** What the bundler needs to know about one ELF file. */
export interface ElfDynamicInfo {
  /** `e_machine` (183 = AArch64, 62 = x86-64). */
  machine: number;
  /** `e_type` (2 = executable, 3 = shared object or PIE). */
  type: number;
  /** The PT_INTERP path, if the file has one (an executable). */
  interpreter?: string;
  /** `DT_NEEDED` entries, in order. */
  needed: string[];
  /** `DT_SONAME`, if any. */
  soname?: string;
}

/** The file is not an ELF64 little-endian object, or its headers point outside it. */
export class ElfFormatError extends Error {
  /** @param message what is wrong, naming the field. */
  constructor(message: string) {
    super(message);
    this.name = "ElfFormatError";
  }
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_SONAME = 14n;

/** The AArch64 `e_machine` value. */
export const EM_AARCH64 = 183;

/**
 * Parse the dynamic information of an ELF64 little-endian file.
 *
 * @param bytes the whole file.
 * @throws {ElfFormatError} not ELF64 LE, or an offset or size out of the file.
 */
export function readElfDynamic(bytes: Uint8Array): ElfDynamicInfo {
  if (bytes.length < 64) throw new ElfFormatError(`${bytes.length} bytes: too short for ELF64`);
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new ElfFormatError("no ELF magic");
  }
  if (bytes[4] !== 2) throw new ElfFormatError(`EI_CLASS ${bytes[4]}: not ELF64`);
  if (bytes[5] !== 1) throw new ElfFormatError(`EI_DATA ${bytes[5]}: not little-endian`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (off: number, what: string): number => {
    if (off < 0 || off + 8 > bytes.length) throw new ElfFormatError(`${what} beyond the file`);
    const v = dv.getBigUint64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfFormatError(`${what} too large`);
    return Number(v);
  };
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  const phoff = u64(0x20, "e_phoff");
  const phentsize = dv.getUint16(0x36, true);
  const phnum = dv.getUint16(0x38, true);
  if (phnum > 0 && phentsize < 56) throw new ElfFormatError(`e_phentsize ${phentsize} < 56`);
  if (phoff + phnum * phentsize > bytes.length) {
    throw new ElfFormatError("program headers beyond the file");
  }
  const loads: { vaddr: number; offset: number; filesz: number }[] = [];
  let dyn: { offset: number; size: number } | undefined;
  let interpreter: string | undefined;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    const ptype = dv.getUint32(ph, true);
    const offset = u64(ph + 8, "p_offset");
    const vaddr = u64(ph + 16, "p_vaddr");
    const filesz = u64(ph + 32, "p_filesz");
    if (ptype === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (ptype === PT_DYNAMIC) dyn = { offset, size: filesz };
    else if (ptype === PT_INTERP) {
      if (offset + filesz > bytes.length) throw new ElfFormatError("PT_INTERP beyond the file");
      interpreter = cString(bytes, offset, offset + filesz, "PT_INTERP");
    }
  }
  if (!dyn) return { machine, type, interpreter, needed: [] };
  if (dyn.offset + dyn.size > bytes.length) throw new ElfFormatError("PT_DYNAMIC beyond the file");
  const entries: [bigint, number][] = [];
  for (let at = dyn.offset; at + 16 <= dyn.offset + dyn.size; at += 16) {
    const tag = dv.getBigInt64(at, true);
    if (tag === DT_NULL) break;
    entries.push([tag, u64(at + 8, "d_val")]);
  }
  const strtabAddr = entries.find(([t]) => t === DT_STRTAB)?.[1];
  const strsz = entries.find(([t]) => t === DT_STRSZ)?.[1];
  const wantsStrings = entries.some(([t]) => t === DT_NEEDED || t === DT_SONAME);
  if (!wantsStrings) return { machine, type, interpreter, needed: [] };
  if (strtabAddr === undefined || strsz === undefined) {
    throw new ElfFormatError("DT_NEEDED/DT_SONAME without DT_STRTAB and DT_STRSZ");
  }
  const seg = loads.find((l) => strtabAddr >= l.vaddr && strtabAddr < l.vaddr + l.filesz);
  if (!seg) throw new ElfFormatError("DT_STRTAB is in no PT_LOAD segment");
  const strtab = seg.offset + (strtabAddr - seg.vaddr);
  const strEnd = Math.min(strtab + strsz, seg.offset + seg.filesz);
  if (strEnd > bytes.length) throw new ElfFormatError("DT_STRTAB beyond the file");
  const str = (off: number, what: string) => {
    if (off >= strEnd - strtab) {
      throw new ElfFormatError(`${what} name offset ${off} beyond DT_STRSZ`);
    }
    return cString(bytes, strtab + off, strEnd, what);
  };
  const needed = entries.filter(([t]) => t === DT_NEEDED).map(([, v]) => str(v, "DT_NEEDED"));
  const sonameOff = entries.find(([t]) => t === DT_SONAME)?.[1];
  return {
    machine,
    type,
    interpreter,
    needed,
    soname: sonameOff === undefined ? undefined : str(sonameOff, "DT_SONAME"),
  };
}

function cString(bytes: Uint8Array, start: number, end: number, what: string): string {
  let stop = start;
  while (stop < end && bytes[stop] !== 0) stop++;
  if (stop === end) throw new ElfFormatError(`${what} string is not terminated`);
  const s = new TextDecoder("utf-8", { fatal: false }).decode(bytes.subarray(start, stop));
  const plain = what === "PT_INTERP" ? s.replaceAll("/", "") : s;
  if (plain === "" || plain.includes("/") || [...plain].some((c) => c.charCodeAt(0) < 0x20)) {
    throw new ElfFormatError(`${what} name ${JSON.stringify(s)} is not a plain file name`);
  }
  return s;
}
