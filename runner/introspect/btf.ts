/**
 * A parser of BTF, the kernel's BPF Type Format (`/sys/kernel/btf/vmlinux`,
 * Documentation/bpf/btf.rst): header, type section and string section, every kind the kernel
 * defines (INT … ENUM64), bitfield member offsets with `kind_flag`, lookups by name, and struct
 * layouts with member offsets and sizes resolved through typedefs and modifiers.
 *
 * Pure: bytes in, values out. Any malformed blob (truncated, lying lengths, unknown kind, type
 * ids out of range, reference cycles, unterminated strings) raises {@link BtfError}; nothing
 * loops without bound (every record consumes at least 12 bytes; resolution depth is capped).
 *
 * @module
 */

/** A malformed BTF blob, or a lookup that does not resolve. */
export class BtfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BtfError";
  }
}

/** `BTF_MAGIC` as a little-endian u16 reads it. */
export const BTF_MAGIC = 0xeb9f;

/** BTF kinds (`BTF_KIND_*`). */
export const BTF_KINDS = [
  "UNKN",
  "INT",
  "PTR",
  "ARRAY",
  "STRUCT",
  "UNION",
  "ENUM",
  "FWD",
  "TYPEDEF",
  "VOLATILE",
  "CONST",
  "RESTRICT",
  "FUNC",
  "FUNC_PROTO",
  "VAR",
  "DATASEC",
  "FLOAT",
  "DECL_TAG",
  "TYPE_TAG",
  "ENUM64",
] as const;

/** A BTF kind name. */
export type BtfKindName = (typeof BTF_KINDS)[number];

/** A struct or union member. */
export interface BtfMember {
  name: string;
  type: number;
  /** Offset from the start of the struct, in bits. */
  bitOffset: number;
  /** Bitfield width in bits (kind_flag set and non-zero), else 0. */
  bitfieldSize: number;
}

/** An enumerator; ENUM values are widened to bigint so ENUM and ENUM64 read alike. */
export interface BtfEnumerator {
  name: string;
  value: bigint;
}

/** Fields every type has. */
interface Base {
  id: number;
  name: string;
}

/** One BTF type. `type` fields are type ids (0 is void). */
export type BtfType =
  | Base & { kind: "INT"; size: number; encoding: number; bitOffset: number; bits: number }
  | Base & {
    kind: "PTR" | "TYPEDEF" | "VOLATILE" | "CONST" | "RESTRICT" | "TYPE_TAG";
    type: number;
  }
  | Base & { kind: "ARRAY"; type: number; indexType: number; nelems: number }
  | Base & { kind: "STRUCT" | "UNION"; size: number; members: BtfMember[] }
  | Base & { kind: "ENUM" | "ENUM64"; size: number; signed: boolean; values: BtfEnumerator[] }
  | Base & { kind: "FWD"; union: boolean }
  | Base & { kind: "FUNC"; type: number; linkage: number }
  | Base & { kind: "FUNC_PROTO"; type: number; params: { name: string; type: number }[] }
  | Base & { kind: "VAR"; type: number; linkage: number }
  | Base & {
    kind: "DATASEC";
    size: number;
    vars: { type: number; offset: number; size: number }[];
  }
  | Base & { kind: "FLOAT"; size: number }
  | Base & { kind: "DECL_TAG"; type: number; componentIdx: number };

/** The BTF header. */
export interface BtfHeader {
  version: number;
  flags: number;
  hdrLen: number;
  typeOff: number;
  typeLen: number;
  strOff: number;
  strLen: number;
  littleEndian: boolean;
}

/** A parsed BTF blob. `types[id]`; `types[0]` is void (undefined). */
export interface Btf {
  header: BtfHeader;
  types: (BtfType | undefined)[];
  /** Size of a pointer in bytes: the size of `long` when BTF has it, else 8. */
  pointerSize: number;
  /** Types by name (every kind), in id order. */
  byName(name: string, kind?: BtfKindName): BtfType[];
  /** The type with this id; throws BtfError when out of range or void. */
  get(id: number): BtfType;
}

const MAX_DEPTH = 64;

/** Parse a BTF blob. Throws {@link BtfError} on anything malformed. */
export function parseBtf(bytes: Uint8Array): Btf {
  if (bytes.length < 24) throw new BtfError(`BTF blob too short (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le: boolean;
  if (dv.getUint16(0, true) === BTF_MAGIC) le = true;
  else if (dv.getUint16(0, false) === BTF_MAGIC) le = false;
  else {
    throw new BtfError(`not BTF: magic 0x${dv.getUint16(0, true).toString(16)}, want 0xeb9f`);
  }
  const header: BtfHeader = {
    version: dv.getUint8(2),
    flags: dv.getUint8(3),
    hdrLen: dv.getUint32(4, le),
    typeOff: dv.getUint32(8, le),
    typeLen: dv.getUint32(12, le),
    strOff: dv.getUint32(16, le),
    strLen: dv.getUint32(20, le),
    littleEndian: le,
  };
  if (header.version !== 1) throw new BtfError(`unsupported BTF version ${header.version}`);
  if (header.hdrLen < 24 || header.hdrLen > bytes.length) {
    throw new BtfError(`bad BTF header length ${header.hdrLen}`);
  }
  const sec = (what: string, off: number, len: number): [number, number] => {
    const start = header.hdrLen + off;
    if (start > bytes.length || len > bytes.length - start) {
      throw new BtfError(
        `${what} section [${off}, +${len}) runs past the end of the blob (${bytes.length} bytes)`,
      );
    }
    return [start, start + len];
  };
  const [tStart, tEnd] = sec("type", header.typeOff, header.typeLen);
  const [sStart, sEnd] = sec("string", header.strOff, header.strLen);
  if (header.strLen > 0 && bytes[sStart] !== 0) {
    throw new BtfError("string section does not start with an empty string");
  }
  const decoder = new TextDecoder("utf-8", { fatal: false });
  const strCache = new Map<number, string>();
  const str = (off: number): string => {
    if (off === 0) return "";
    const hit = strCache.get(off);
    if (hit !== undefined) return hit;
    if (off >= header.strLen) throw new BtfError(`string offset ${off} past the string section`);
    const end = bytes.indexOf(0, sStart + off);
    if (end < 0 || end >= sEnd) throw new BtfError(`unterminated string at offset ${off}`);
    const s = decoder.decode(bytes.subarray(sStart + off, end));
    strCache.set(off, s);
    return s;
  };

  const types: (BtfType | undefined)[] = [undefined];
  let p = tStart;
  const need = (n: number, what: string) => {
    if (p + n > tEnd) {
      throw new BtfError(
        `type ${types.length} (${what}) truncated at type section offset ${p - tStart}`,
      );
    }
  };
  const u32 = (o: number) => dv.getUint32(o, le);
  while (p < tEnd) {
    const id = types.length;
    need(12, "header");
    const nameOff = u32(p), info = u32(p + 4), sizeOrType = u32(p + 8);
    p += 12;
    const vlen = info & 0xffff;
    const kindNum = (info >>> 24) & 0x1f;
    const kindFlag = (info >>> 31) === 1;
    const kind = BTF_KINDS[kindNum];
    if (kind === undefined || kind === "UNKN") {
      throw new BtfError(`type ${id}: unknown kind ${kindNum}`);
    }
    const name = str(nameOff);
    let t: BtfType;
    switch (kind) {
      case "INT": {
        need(4, kind);
        const v = u32(p);
        p += 4;
        t = {
          id,
          name,
          kind,
          size: sizeOrType,
          encoding: (v >>> 24) & 0x0f,
          bitOffset: (v >>> 16) & 0xff,
          bits: v & 0xff,
        };
        break;
      }
      case "PTR":
      case "TYPEDEF":
      case "VOLATILE":
      case "CONST":
      case "RESTRICT":
      case "TYPE_TAG":
        t = { id, name, kind, type: sizeOrType };
        break;
      case "ARRAY":
        need(12, kind);
        t = { id, name, kind, type: u32(p), indexType: u32(p + 4), nelems: u32(p + 8) };
        p += 12;
        break;
      case "STRUCT":
      case "UNION": {
        need(12 * vlen, kind);
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          const off = u32(p + 8);
          members.push({
            name: str(u32(p)),
            type: u32(p + 4),
            bitOffset: kindFlag ? off & 0xffffff : off,
            bitfieldSize: kindFlag ? off >>> 24 : 0,
          });
        }
        t = { id, name, kind, size: sizeOrType, members };
        break;
      }
      case "ENUM": {
        need(8 * vlen, kind);
        const values: BtfEnumerator[] = [];
        for (let i = 0; i < vlen; i++, p += 8) {
          const raw = kindFlag ? dv.getInt32(p + 4, le) : u32(p + 4);
          values.push({ name: str(u32(p)), value: BigInt(raw) });
        }
        t = { id, name, kind, size: sizeOrType, signed: kindFlag, values };
        break;
      }
      case "ENUM64": {
        need(12 * vlen, kind);
        const values: BtfEnumerator[] = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          const v = (BigInt(u32(p + 8)) << 32n) | BigInt(u32(p + 4));
          values.push({ name: str(u32(p)), value: kindFlag ? BigInt.asIntN(64, v) : v });
        }
        t = { id, name, kind, size: sizeOrType, signed: kindFlag, values };
        break;
      }
      case "FWD":
        t = { id, name, kind, union: kindFlag };
        break;
      case "FUNC":
        t = { id, name, kind, type: sizeOrType, linkage: vlen };
        break;
      case "FUNC_PROTO": {
        need(8 * vlen, kind);
        const params: { name: string; type: number }[] = [];
        for (let i = 0; i < vlen; i++, p += 8) params.push({ name: str(u32(p)), type: u32(p + 4) });
        t = { id, name, kind, type: sizeOrType, params };
        break;
      }
      case "VAR":
        need(4, kind);
        t = { id, name, kind, type: sizeOrType, linkage: u32(p) };
        p += 4;
        break;
      case "DATASEC": {
        need(12 * vlen, kind);
        const vars: { type: number; offset: number; size: number }[] = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          vars.push({ type: u32(p), offset: u32(p + 4), size: u32(p + 8) });
        }
        t = { id, name, kind, size: sizeOrType, vars };
        break;
      }
      case "FLOAT":
        t = { id, name, kind, size: sizeOrType };
        break;
      case "DECL_TAG":
        need(4, kind);
        t = { id, name, kind, type: sizeOrType, componentIdx: dv.getInt32(p, le) };
        p += 4;
        break;
    }
    types.push(t);
  }

  let index: Map<string, BtfType[]> | undefined;
  const byName = (n: string, kind?: BtfKindName): BtfType[] => {
    if (!index) {
      index = new Map();
      for (const t of types) {
        if (!t || !t.name) continue;
        const l = index.get(t.name);
        if (l) l.push(t);
        else index.set(t.name, [t]);
      }
    }
    const all = index.get(n) ?? [];
    return kind ? all.filter((t) => t.kind === kind) : all;
  };
  const get = (id: number): BtfType => {
    const t = Number.isInteger(id) && id > 0 ? types[id] : undefined;
    if (!t) throw new BtfError(`type id ${id} is ${id === 0 ? "void" : "out of range"}`);
    return t;
  };
  const longT = byName("long int", "INT")[0] ?? byName("long unsigned int", "INT")[0];
  const pointerSize = longT && longT.kind === "INT" && (longT.size === 4 || longT.size === 8)
    ? longT.size
    : 8;
  return { header, types, pointerSize, byName, get };
}

/** Follow TYPEDEF, VOLATILE, CONST, RESTRICT and TYPE_TAG to the underlying type (0 = void). */
export function resolveModifiers(btf: Btf, id: number): BtfType | undefined {
  let cur = id;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (cur === 0) return undefined;
    const t = btf.get(cur);
    switch (t.kind) {
      case "TYPEDEF":
      case "VOLATILE":
      case "CONST":
      case "RESTRICT":
      case "TYPE_TAG":
        cur = t.type;
        continue;
      default:
        return t;
    }
  }
  throw new BtfError(`type ${id}: modifier chain longer than ${MAX_DEPTH} (a cycle?)`);
}

/** Size in bytes of a type, through typedefs and modifiers. Throws for void, functions, FWD. */
export function typeSize(btf: Btf, id: number, depth = 0): number {
  if (depth > MAX_DEPTH) throw new BtfError(`type ${id}: nesting deeper than ${MAX_DEPTH}`);
  const t = resolveModifiers(btf, id);
  if (!t) throw new BtfError(`type ${id} is void and has no size`);
  switch (t.kind) {
    case "INT":
    case "STRUCT":
    case "UNION":
    case "ENUM":
    case "ENUM64":
    case "FLOAT":
    case "DATASEC":
      return t.size;
    case "PTR":
      return btf.pointerSize;
    case "ARRAY":
      return t.nelems * typeSize(btf, t.type, depth + 1);
    case "VAR":
      return typeSize(btf, t.type, depth + 1);
    default:
      throw new BtfError(`type ${id} (${t.kind} ${t.name}) has no size`);
  }
}

/** A C-like spelling of a type: `struct rk_iommu_ops`, `u32 (*)(dma_addr_t)`, `char[128]`. */
export function typeName(btf: Btf, id: number, depth = 0): string {
  if (id === 0) return "void";
  if (depth > MAX_DEPTH) return "…";
  const t = btf.types[id];
  if (!t) return `<bad type ${id}>`;
  switch (t.kind) {
    case "STRUCT":
    case "UNION":
      return `${t.kind.toLowerCase()} ${t.name || "(anon)"}`;
    case "ENUM":
    case "ENUM64":
      return `enum ${t.name || "(anon)"}`;
    case "FWD":
      return `${t.union ? "union" : "struct"} ${t.name}`;
    case "CONST":
    case "VOLATILE":
    case "RESTRICT":
      return `${t.kind.toLowerCase()} ${typeName(btf, t.type, depth + 1)}`;
    case "TYPE_TAG":
      return typeName(btf, t.type, depth + 1);
    case "PTR": {
      const to = btf.types[t.type];
      if (to?.kind === "FUNC_PROTO") {
        const args = to.params.map((a) => a.type === 0 ? "..." : typeName(btf, a.type, depth + 1));
        return `${typeName(btf, to.type, depth + 1)} (*)(${args.join(", ")})`;
      }
      return `${typeName(btf, t.type, depth + 1)} *`;
    }
    case "ARRAY":
      return `${typeName(btf, t.type, depth + 1)}[${t.nelems}]`;
    case "FUNC_PROTO":
      return `${typeName(btf, t.type, depth + 1)} (${
        t.params.map((a) => typeName(btf, a.type, depth + 1)).join(", ")
      })`;
    default:
      return t.name || `(anon ${t.kind})`;
  }
}

/** One member of a {@link StructLayout}. */
export interface LayoutMember {
  name: string;
  /** Byte offset (bit offset / 8, rounded down for bitfields). */
  offset: number;
  bitOffset: number;
  /** Size in bytes of the member's type (the storage unit for bitfields). */
  size: number;
  /** Bitfield width, 0 when not a bitfield. */
  bitfieldSize: number;
  typeId: number;
  /** C-like type spelling. */
  type: string;
  /** Kind of the type after typedefs and modifiers (`PTR`, `INT`, ...). */
  kind: BtfKindName | "VOID";
}

/** A struct's layout. */
export interface StructLayout {
  id: number;
  name: string;
  size: number;
  members: LayoutMember[];
}

/**
 * The layout of `struct <name>` (or a union): the complete definition, not a FWD. When several
 * definitions share the name, the first one with members wins. Throws when there is none.
 */
export function structLayout(
  btf: Btf,
  name: string,
  kind: "STRUCT" | "UNION" = "STRUCT",
): StructLayout {
  const defs = btf.byName(name, kind);
  const t = defs.find((d) => d.kind === kind && d.members.length > 0) ?? defs[0];
  if (!t || (t.kind !== "STRUCT" && t.kind !== "UNION")) {
    throw new BtfError(`no ${kind.toLowerCase()} ${name} in BTF`);
  }
  return layoutOf(btf, t.id);
}

/** The layout of the struct or union with this id. */
export function layoutOf(btf: Btf, id: number): StructLayout {
  const t = btf.get(id);
  if (t.kind !== "STRUCT" && t.kind !== "UNION") {
    throw new BtfError(`type ${id} is ${t.kind}, not a struct or union`);
  }
  const members = t.members.map((m): LayoutMember => {
    const r = m.type === 0 ? undefined : resolveModifiers(btf, m.type);
    let size = 0;
    try {
      size = typeSize(btf, m.type);
    } catch (e) {
      if (!(e instanceof BtfError)) throw e;
    }
    return {
      name: m.name,
      offset: Math.floor(m.bitOffset / 8),
      bitOffset: m.bitOffset,
      size,
      bitfieldSize: m.bitfieldSize,
      typeId: m.type,
      type: typeName(btf, m.type),
      kind: r ? r.kind : "VOID",
    };
  });
  return { id, name: t.name, size: t.size, members };
}

/** Every enumerator with this name, with the enum it belongs to. */
export function findEnumerator(
  btf: Btf,
  name: string,
): { enumId: number; enumName: string; value: bigint }[] {
  const out: { enumId: number; enumName: string; value: bigint }[] = [];
  for (const t of btf.types) {
    if (!t || (t.kind !== "ENUM" && t.kind !== "ENUM64")) continue;
    for (const v of t.values) {
      if (v.name === name) out.push({ enumId: t.id, enumName: t.name, value: v.value });
    }
  }
  return out;
}
