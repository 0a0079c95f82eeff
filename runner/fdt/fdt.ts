/**
 * A flattened device tree (DTB) parser: devicetree specification v0.4, dtc/libfdt format
 * versions 16 and 17. Pure: it takes bytes and returns a tree, with no I/O. The same code
 * reads a DTB from a kernel package and the live tree a running kernel exposes as
 * `/sys/firmware/fdt` (the bytes the bootloader handed over).
 *
 * Hostile input (truncated files, wrong magic, offsets or lengths past the end, unterminated
 * strings, absurd nesting) always ends in an {@link FdtError} that names the byte offset and
 * what is wrong; the parser is iterative, linear in the input size and never recurses, so it
 * cannot overflow the stack or loop.
 *
 * Strings (node names, property names, string values) are decoded byte for byte (Latin-1),
 * so a value always round-trips to the same bytes.
 *
 * @module
 */

import { RkhilError } from "../errors.ts";

/** `0xd00dfeed`, big-endian, at offset 0. */
export const FDT_MAGIC = 0xd00dfeed;
/** Structure block tokens. */
export const FDT_BEGIN_NODE = 0x1;
export const FDT_END_NODE = 0x2;
export const FDT_PROP = 0x3;
export const FDT_NOP = 0x4;
export const FDT_END = 0x9;
/** Size of a version 17 header (a version 16 header lacks `size_dt_struct`: 36 bytes). */
export const FDT_HEADER_SIZE = 40;
/** Default nesting limit. Real trees are under 10 deep; libfdt's own limit is 32. */
export const DEFAULT_MAX_DEPTH = 1024;
/**
 * Default limit on a node's full path. Real paths are under 100 characters; the limit keeps
 * a small hostile blob (deep nesting of long names) from costing quadratic memory.
 */
export const DEFAULT_MAX_PATH_LENGTH = 4096;

/** A malformed device tree blob: `offset` is the byte offset in the blob, `what` the fault. */
export class FdtError extends RkhilError {
  constructor(readonly offset: number, readonly what: string, options?: { cause?: unknown }) {
    super(
      `device tree blob: ${what} (at byte offset ${offset} = 0x${offset.toString(16)})`,
      "check that the file is a complete DTB (dtc -I dtb -O dts FILE shows what dtc makes of " +
        "it); a live /sys/firmware/fdt must be read whole",
      "ERROR",
      options,
    );
  }
}

/** The header fields (all big-endian u32). */
export interface FdtHeader {
  magic: number;
  totalsize: number;
  offDtStruct: number;
  offDtStrings: number;
  offMemRsvmap: number;
  version: number;
  lastCompVersion: number;
  bootCpuidPhys: number;
  sizeDtStrings: number;
  /** Absent in version 16: then the rest of the blob after `offDtStruct`. */
  sizeDtStruct: number;
}

/** One memory reservation block entry. */
export interface MemReserve {
  address: bigint;
  size: bigint;
}

/** One `reg` bank decoded with the parent's `#address-cells` / `#size-cells`. */
export interface RegBank {
  address: bigint;
  size: bigint;
}

/** A non-fatal oddity (duplicate phandle, dangling alias or symbol). */
export interface FdtWarning {
  offset: number;
  what: string;
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, Math.min(end, i + 4096)));
  }
  return s;
}

/** A property: its name, raw value, and typed views of it. */
export class FdtProperty {
  constructor(
    readonly name: string,
    readonly value: Uint8Array,
    /** Byte offset of the property's FDT_PROP token in the blob. */
    readonly offset: number,
    /** Path of the node holding the property. */
    readonly nodePath: string,
  ) {}

  /** Byte offset of the value in the blob. */
  get valueOffset(): number {
    return this.offset + 12;
  }

  get length(): number {
    return this.value.length;
  }

  /** A property with no value (a boolean property such as `dma-coherent`). */
  get isEmpty(): boolean {
    return this.value.length === 0;
  }

  private fail(what: string): never {
    throw new FdtError(this.valueOffset, `${this.nodePath}: property ${this.name}: ${what}`);
  }

  /** The value as one NUL-terminated string. */
  asString(): string {
    const v = this.value;
    if (v.length === 0 || v[v.length - 1] !== 0) this.fail("not a NUL-terminated string");
    const nul = v.indexOf(0);
    if (nul !== v.length - 1) this.fail(`NUL inside the string at value byte ${nul}`);
    return latin1(v, 0, v.length - 1);
  }

  /** The value as a list of NUL-terminated strings (`compatible`, `clock-names`). */
  asStringList(): string[] {
    const v = this.value;
    if (v.length === 0 || v[v.length - 1] !== 0) this.fail("not a NUL-terminated string list");
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < v.length; i++) {
      if (v[i] === 0) {
        out.push(latin1(v, start, i));
        start = i + 1;
      }
    }
    return out;
  }

  /** The value as big-endian 32-bit cells. */
  asU32Array(): number[] {
    const v = this.value;
    if (v.length % 4 !== 0) this.fail(`length ${v.length} is not a multiple of 4`);
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const out: number[] = [];
    for (let i = 0; i < v.length; i += 4) out.push(dv.getUint32(i));
    return out;
  }

  /** The value as exactly one 32-bit cell. */
  asU32(): number {
    if (this.value.length !== 4) this.fail(`length ${this.value.length}, expected 4 (one cell)`);
    return this.asU32Array()[0];
  }

  /** The value as exactly one 64-bit number (two cells). */
  asU64(): bigint {
    const v = this.value;
    if (v.length !== 8) this.fail(`length ${v.length}, expected 8 (two cells)`);
    return new DataView(v.buffer, v.byteOffset, v.byteLength).getBigUint64(0);
  }

  /** The value as a phandle (one cell, neither 0 nor 0xffffffff). */
  asPhandle(): number {
    const p = this.asU32();
    if (p === 0 || p === 0xffffffff) this.fail(`invalid phandle 0x${p.toString(16)}`);
    return p;
  }
}

/** A node: name (with unit address), full path, properties in blob order, children. */
export class FdtNode {
  readonly children: FdtNode[] = [];
  readonly properties: FdtProperty[] = [];
  private readonly byName = new Map<string, FdtProperty>();
  private readonly childByName = new Map<string, FdtNode>();

  constructor(
    /** Full name, e.g. `iommu@fe043e00`; `""` for the root. */
    readonly name: string,
    readonly path: string,
    readonly parent: FdtNode | undefined,
    /** Byte offset of the node's FDT_BEGIN_NODE token. */
    readonly offset: number,
    readonly depth: number,
  ) {}

  /** The name before `@`. */
  get baseName(): string {
    const at = this.name.indexOf("@");
    return at < 0 ? this.name : this.name.slice(0, at);
  }

  /** The unit address after `@`, or undefined. */
  get unitAddress(): string | undefined {
    const at = this.name.indexOf("@");
    return at < 0 ? undefined : this.name.slice(at + 1);
  }

  prop(name: string): FdtProperty | undefined {
    return this.byName.get(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Child by full name, or (libfdt's rule) the first child whose base name is `name`. */
  child(name: string): FdtNode | undefined {
    const exact = this.childByName.get(name);
    if (exact || name.includes("@")) return exact;
    return this.children.find((c) => c.baseName === name);
  }

  /** `compatible` as a list; empty when absent. */
  get compatible(): string[] {
    return this.byName.get("compatible")?.asStringList() ?? [];
  }

  /**
   * `status`: absent, `okay` or `ok` mean available (Linux `__of_device_is_available`);
   * anything else (`disabled`, `reserved`, `fail`, `fail-sss`) is returned as written.
   */
  get status(): string {
    const p = this.byName.get("status");
    return p === undefined ? "okay" : p.asString();
  }

  get available(): boolean {
    const s = this.status;
    return s === "okay" || s === "ok";
  }

  /** `phandle` (or legacy `linux,phandle`), if any. */
  get phandle(): number | undefined {
    const p = this.byName.get("phandle") ?? this.byName.get("linux,phandle");
    return p?.asPhandle();
  }

  /** @internal used by the parser. */
  addProperty(p: FdtProperty): void {
    if (this.byName.has(p.name)) {
      throw new FdtError(p.offset, `${this.path}: duplicate property ${p.name}`);
    }
    this.byName.set(p.name, p);
    this.properties.push(p);
  }

  /** @internal used by the parser. */
  addChild(c: FdtNode): void {
    if (this.childByName.has(c.name)) {
      throw new FdtError(c.offset, `duplicate node ${c.path}`);
    }
    this.childByName.set(c.name, c);
    this.children.push(c);
  }
}

/** Parse options. */
export interface ParseOptions {
  /** Nesting limit below the root (default {@link DEFAULT_MAX_DEPTH}). */
  maxDepth?: number;
  /** Limit on a node's full path in characters (default {@link DEFAULT_MAX_PATH_LENGTH}). */
  maxPathLength?: number;
}

/** A parsed tree with lookups by path, alias, label and phandle. */
export class FdtTree {
  /** Every node in blob (depth-first) order, root first. */
  readonly nodes: FdtNode[] = [];
  readonly warnings: FdtWarning[] = [];
  private readonly byPath = new Map<string, FdtNode>();
  private readonly byPhandle = new Map<number, FdtNode>();
  private readonly labelsOf = new Map<FdtNode, string[]>();
  private readonly byLabel = new Map<string, FdtNode>();
  /** `/aliases`: alias name → path as written. */
  readonly aliases = new Map<string, string>();

  constructor(
    readonly header: FdtHeader,
    readonly reservations: MemReserve[],
    readonly root: FdtNode,
    nodes: FdtNode[],
  ) {
    for (const n of nodes) {
      this.nodes.push(n);
      this.byPath.set(n.path, n);
    }
    for (const n of nodes) {
      let ph: number | undefined;
      try {
        ph = n.phandle;
      } catch (e) {
        if (!(e instanceof FdtError)) throw e;
        this.warnings.push({ offset: e.offset, what: e.what });
        continue;
      }
      if (ph === undefined) continue;
      if (this.byPhandle.has(ph)) {
        this.warnings.push({
          offset: n.offset,
          what: `${n.path}: phandle 0x${ph.toString(16)} already used by ` +
            this.byPhandle.get(ph)?.path,
        });
        continue;
      }
      this.byPhandle.set(ph, n);
    }
    const aliases = root.child("aliases");
    if (aliases && aliases.name === "aliases") {
      for (const p of aliases.properties) {
        if (p.name === "phandle" || p.name === "linux,phandle" || p.name === "name") continue;
        try {
          this.aliases.set(p.name, p.asString());
        } catch (e) {
          if (!(e instanceof FdtError)) throw e;
          this.warnings.push({ offset: e.offset, what: e.what });
        }
      }
    }
    const symbols = root.child("__symbols__");
    if (symbols && symbols.name === "__symbols__") {
      for (const p of symbols.properties) {
        let target: FdtNode | undefined;
        try {
          target = this.byPath.get(p.asString());
        } catch (e) {
          if (!(e instanceof FdtError)) throw e;
          this.warnings.push({ offset: e.offset, what: e.what });
          continue;
        }
        if (!target) {
          this.warnings.push({
            offset: p.offset,
            what: `__symbols__ ${p.name} names a path that does not exist`,
          });
          continue;
        }
        const list = this.labelsOf.get(target) ?? [];
        list.push(p.name);
        this.labelsOf.set(target, list);
        if (!this.byLabel.has(p.name)) this.byLabel.set(p.name, target);
      }
    }
  }

  /** True when the blob carries `/__symbols__` (built with `dtc -@`). */
  get hasSymbols(): boolean {
    return this.root.child("__symbols__")?.name === "__symbols__";
  }

  /**
   * A node by path. Components match a child's full name, or its base name when they carry
   * no unit address (`/memory` finds `memory@0`). A path not starting with `/` begins with
   * an alias (`serial2/foo`), as in Linux `of_find_node_by_path`.
   */
  find(path: string): FdtNode | undefined {
    const exact = this.byPath.get(path);
    if (exact) return exact;
    let node: FdtNode | undefined;
    let rest: string;
    if (path.startsWith("/")) {
      node = this.root;
      rest = path.slice(1);
    } else {
      const slash = path.indexOf("/");
      const alias = slash < 0 ? path : path.slice(0, slash);
      const target = this.aliases.get(alias);
      if (target === undefined || !target.startsWith("/")) return undefined;
      node = this.find(target);
      rest = slash < 0 ? "" : path.slice(slash + 1);
    }
    for (const part of rest.split("/")) {
      if (part === "" || node === undefined) continue;
      node = node.child(part);
    }
    return node;
  }

  /** The node holding `phandle`, or undefined. */
  byPhandleValue(phandle: number): FdtNode | undefined {
    return this.byPhandle.get(phandle);
  }

  /** Labels from `/__symbols__` (empty when the blob has none). */
  labels(node: FdtNode): string[] {
    return this.labelsOf.get(node) ?? [];
  }

  /** The node's first label, or its full name when the blob has no label for it. */
  labelOrName(node: FdtNode): string {
    return this.labelsOf.get(node)?.[0] ?? node.name;
  }

  /** The node a `/__symbols__` label names. */
  byLabelName(label: string): FdtNode | undefined {
    return this.byLabel.get(label);
  }

  /**
   * `#address-cells` and `#size-cells` that apply to `node`'s `reg` (the parent's, with the
   * specification's defaults 2 and 1 when absent).
   */
  cellsFor(node: FdtNode): { addressCells: number; sizeCells: number } {
    const parent = node.parent ?? node;
    const a = parent.prop("#address-cells");
    const s = parent.prop("#size-cells");
    const addressCells = a === undefined ? 2 : a.asU32();
    const sizeCells = s === undefined ? 1 : s.asU32();
    if (addressCells > 4 || addressCells < 1) {
      throw new FdtError(
        a?.valueOffset ?? parent.offset,
        `${parent.path}: #address-cells ${addressCells} not in 1..4`,
      );
    }
    if (sizeCells > 4) {
      throw new FdtError(
        s?.valueOffset ?? parent.offset,
        `${parent.path}: #size-cells ${sizeCells} not in 0..4`,
      );
    }
    return { addressCells, sizeCells };
  }

  /** `reg` decoded into banks; empty when the node has no `reg`. */
  reg(node: FdtNode): RegBank[] {
    const p = node.prop("reg");
    if (p === undefined) return [];
    const { addressCells, sizeCells } = this.cellsFor(node);
    const per = addressCells + sizeCells;
    const cells = p.asU32Array();
    if (cells.length % per !== 0) {
      throw new FdtError(
        p.valueOffset,
        `${node.path}: reg has ${cells.length} cells, not a multiple of ` +
          `#address-cells ${addressCells} + #size-cells ${sizeCells}`,
      );
    }
    const out: RegBank[] = [];
    const num = (from: number, n: number): bigint => {
      let v = 0n;
      for (let i = 0; i < n; i++) v = (v << 32n) | BigInt(cells[from + i]);
      return v;
    };
    for (let i = 0; i < cells.length; i += per) {
      out.push({ address: num(i, addressCells), size: num(i + addressCells, sizeCells) });
    }
    return out;
  }
}

/** Big-endian reads with bounds checks that throw {@link FdtError}. */
class Reader {
  private readonly dv: DataView;
  constructor(readonly bytes: Uint8Array, readonly limit: number) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u32(off: number, what: string): number {
    if (off < 0 || off + 4 > this.limit) {
      throw new FdtError(off, `${what}: 4 bytes needed, blob ends at ${this.limit}`);
    }
    return this.dv.getUint32(off);
  }
  u64(off: number, what: string): bigint {
    if (off < 0 || off + 8 > this.limit) {
      throw new FdtError(off, `${what}: 8 bytes needed, blob ends at ${this.limit}`);
    }
    return this.dv.getBigUint64(off);
  }
}

/** Validate and decode the header. `bytes` may be longer than `totalsize` (ignored tail). */
export function parseHeader(bytes: Uint8Array): FdtHeader {
  if (bytes.length < 4) {
    throw new FdtError(0, `blob is ${bytes.length} bytes, too short for the magic`);
  }
  const r = new Reader(bytes, bytes.length);
  const magic = r.u32(0, "magic");
  if (magic !== FDT_MAGIC) {
    throw new FdtError(
      0,
      `bad magic 0x${magic.toString(16).padStart(8, "0")}, expected 0xd00dfeed`,
    );
  }
  if (bytes.length < 36) {
    throw new FdtError(bytes.length, `blob is ${bytes.length} bytes, shorter than a header`);
  }
  const totalsize = r.u32(4, "totalsize");
  const version = r.u32(20, "version");
  const lastCompVersion = r.u32(24, "last_comp_version");
  if (version < 16) {
    throw new FdtError(20, `version ${version} unsupported (16 or later needed)`);
  }
  if (lastCompVersion > 17) {
    throw new FdtError(24, `last_comp_version ${lastCompVersion}: not readable by a v17 parser`);
  }
  const headerSize = version >= 17 ? FDT_HEADER_SIZE : 36;
  if (bytes.length < headerSize) {
    throw new FdtError(bytes.length, `blob is ${bytes.length} bytes, header needs ${headerSize}`);
  }
  if (totalsize < headerSize) {
    throw new FdtError(4, `totalsize ${totalsize} smaller than the ${headerSize}-byte header`);
  }
  if (totalsize > bytes.length) {
    throw new FdtError(4, `totalsize ${totalsize} but only ${bytes.length} bytes (truncated?)`);
  }
  const offDtStruct = r.u32(8, "off_dt_struct");
  const offDtStrings = r.u32(12, "off_dt_strings");
  const offMemRsvmap = r.u32(16, "off_mem_rsvmap");
  const bootCpuidPhys = r.u32(28, "boot_cpuid_phys");
  const sizeDtStrings = r.u32(32, "size_dt_strings");
  const check = (field: string, at: number, off: number, size: number) => {
    if (off < headerSize || off > totalsize || size > totalsize - off) {
      throw new FdtError(
        at,
        `${field} block [${off}, ${off + size}) is outside the blob [${headerSize}, ${totalsize})`,
      );
    }
  };
  if (offDtStruct % 4 !== 0) throw new FdtError(8, `off_dt_struct ${offDtStruct} not 4-aligned`);
  if (offMemRsvmap % 8 !== 0) {
    throw new FdtError(16, `off_mem_rsvmap ${offMemRsvmap} not 8-aligned`);
  }
  const sizeDtStruct = version >= 17
    ? r.u32(36, "size_dt_struct")
    : Math.max(0, totalsize - offDtStruct);
  check("structure", version >= 17 ? 36 : 8, offDtStruct, sizeDtStruct);
  check("strings", 32, offDtStrings, sizeDtStrings);
  check("memory reservation", 16, offMemRsvmap, 0);
  return {
    magic,
    totalsize,
    offDtStruct,
    offDtStrings,
    offMemRsvmap,
    version,
    lastCompVersion,
    bootCpuidPhys,
    sizeDtStrings,
    sizeDtStruct,
  };
}

/** Parse a DTB (a kernel package's `.dtb` or the bytes of `/sys/firmware/fdt`). */
export function parseFdt(bytes: Uint8Array, options: ParseOptions = {}): FdtTree {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxPathLength = options.maxPathLength ?? DEFAULT_MAX_PATH_LENGTH;
  const h = parseHeader(bytes);
  const r = new Reader(bytes, h.totalsize);

  // Memory reservation block: (address, size) u64 pairs ending with (0, 0).
  const reservations: MemReserve[] = [];
  for (let off = h.offMemRsvmap;; off += 16) {
    const address = r.u64(off, "memory reservation entry (no 0,0 terminator?)");
    const size = r.u64(off + 8, "memory reservation entry (no 0,0 terminator?)");
    if (address === 0n && size === 0n) break;
    reservations.push({ address, size });
  }

  const structEnd = h.offDtStruct + h.sizeDtStruct;
  const stringsEnd = h.offDtStrings + h.sizeDtStrings;
  const sr = new Reader(bytes, structEnd);
  const nameCache = new Map<number, string>();
  const propName = (nameoff: number, at: number): string => {
    const cached = nameCache.get(nameoff);
    if (cached !== undefined) return cached;
    if (nameoff >= h.sizeDtStrings) {
      throw new FdtError(
        at + 8,
        `property name offset ${nameoff} past the strings block (${h.sizeDtStrings} bytes)`,
      );
    }
    const start = h.offDtStrings + nameoff;
    const nul = bytes.subarray(start, stringsEnd).indexOf(0);
    if (nul < 0) {
      throw new FdtError(start, `property name at strings offset ${nameoff} is not NUL-terminated`);
    }
    if (nul === 0) throw new FdtError(start, `empty property name (strings offset ${nameoff})`);
    const s = latin1(bytes, start, start + nul);
    nameCache.set(nameoff, s);
    return s;
  };

  const nodes: FdtNode[] = [];
  let root: FdtNode | undefined;
  let cur: FdtNode | undefined;
  let off = h.offDtStruct;
  let ended = false;
  while (!ended) {
    const tokenAt = off;
    const token = sr.u32(off, "structure block token (no FDT_END?)");
    off += 4;
    switch (token) {
      case FDT_BEGIN_NODE: {
        const nul = bytes.subarray(off, structEnd).indexOf(0);
        if (nul < 0) throw new FdtError(off, "node name runs past the structure block");
        const name = latin1(bytes, off, off + nul);
        off = (off + nul + 1 + 3) & ~3;
        if (off > structEnd) {
          throw new FdtError(tokenAt, "node name padding past the structure block");
        }
        if (cur === undefined) {
          if (root !== undefined) {
            throw new FdtError(tokenAt, "a second top-level node after the root ended");
          }
          if (name !== "") throw new FdtError(tokenAt, `root node has a name "${name}"`);
          root = cur = new FdtNode("", "/", undefined, tokenAt, 0);
          nodes.push(cur);
          break;
        }
        if (name === "") throw new FdtError(tokenAt, `${cur.path}: child node with an empty name`);
        if (name.includes("/")) throw new FdtError(tokenAt, `node name "${name}" contains '/'`);
        if (cur.depth + 1 > maxDepth) {
          throw new FdtError(tokenAt, `nesting deeper than ${maxDepth} levels`);
        }
        if (cur.path.length + 1 + name.length > maxPathLength) {
          throw new FdtError(
            tokenAt,
            `path of node "${name.slice(0, 40)}" longer than ${maxPathLength}`,
          );
        }
        const path = cur.path === "/" ? `/${name}` : `${cur.path}/${name}`;
        const node = new FdtNode(name, path, cur, tokenAt, cur.depth + 1);
        cur.addChild(node);
        nodes.push(node);
        cur = node;
        break;
      }
      case FDT_END_NODE:
        if (cur === undefined) throw new FdtError(tokenAt, "FDT_END_NODE outside any node");
        cur = cur.parent;
        break;
      case FDT_PROP: {
        if (cur === undefined) throw new FdtError(tokenAt, "FDT_PROP outside any node");
        const len = sr.u32(off, "property length");
        const nameoff = sr.u32(off + 4, "property name offset");
        off += 8;
        if (len > structEnd - off) {
          throw new FdtError(
            tokenAt + 4,
            `property length ${len} runs past the structure block (${structEnd - off} bytes left)`,
          );
        }
        const name = propName(nameoff, tokenAt);
        cur.addProperty(new FdtProperty(name, bytes.subarray(off, off + len), tokenAt, cur.path));
        off = (off + len + 3) & ~3;
        if (off > structEnd) {
          throw new FdtError(tokenAt, "property padding past the structure block");
        }
        break;
      }
      case FDT_NOP:
        break;
      case FDT_END:
        if (cur !== undefined) {
          throw new FdtError(tokenAt, `FDT_END inside node ${cur.path} (missing FDT_END_NODE)`);
        }
        if (root === undefined) throw new FdtError(tokenAt, "FDT_END before any node");
        ended = true;
        break;
      default:
        throw new FdtError(tokenAt, `unknown structure token 0x${token.toString(16)}`);
    }
  }
  if (root === undefined) throw new FdtError(h.offDtStruct, "no root node");
  return new FdtTree(h, reservations, root, nodes);
}
