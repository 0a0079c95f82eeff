/**
 * A small DTB writer (version 17, last compatible 16, the layout dtc emits: header,
 * memory reservation block, structure block, strings block). Used by tests to build
 * synthetic and hostile trees, and available to anything that must hand a guest a DTB.
 *
 * @module
 */

import { FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_MAGIC, FDT_PROP } from "./fdt.ts";
import type { MemReserve } from "./fdt.ts";

/** A node to write. Property values are raw bytes; see {@link cells} and {@link strings}. */
export interface NodeSpec {
  name: string;
  props?: [string, Uint8Array][];
  children?: NodeSpec[];
}

/** Big-endian 32-bit cells. */
export function cells(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => dv.setUint32(i * 4, v >>> 0));
  return out;
}

/** A NUL-separated string list (one string is a list of one), Latin-1 encoded. */
export function strings(...values: string[]): Uint8Array {
  const bytes: number[] = [];
  for (const s of values) {
    for (let i = 0; i < s.length; i++) bytes.push(s.charCodeAt(i) & 0xff);
    bytes.push(0);
  }
  return new Uint8Array(bytes);
}

/** An empty (boolean) property value. */
export const empty: Uint8Array = new Uint8Array(0);

/** Serialise `root` (its name is ignored: the root's name is empty). Iterative. */
export function buildFdt(
  root: NodeSpec,
  options: { reservations?: MemReserve[]; bootCpuidPhys?: number } = {},
): Uint8Array {
  const struct: number[] = [];
  const u32 = (v: number) =>
    struct.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  const pad = () => {
    while (struct.length % 4 !== 0) struct.push(0);
  };
  const stringsBytes: number[] = [];
  const nameOffsets = new Map<string, number>();
  const nameOff = (name: string): number => {
    let o = nameOffsets.get(name);
    if (o === undefined) {
      o = stringsBytes.length;
      for (let i = 0; i < name.length; i++) stringsBytes.push(name.charCodeAt(i) & 0xff);
      stringsBytes.push(0);
      nameOffsets.set(name, o);
    }
    return o;
  };
  type Frame = { node: NodeSpec; next: number };
  const open = (node: NodeSpec, isRoot: boolean) => {
    u32(FDT_BEGIN_NODE);
    const name = isRoot ? "" : node.name;
    for (let i = 0; i < name.length; i++) struct.push(name.charCodeAt(i) & 0xff);
    struct.push(0);
    pad();
    for (const [pname, value] of node.props ?? []) {
      u32(FDT_PROP);
      u32(value.length);
      u32(nameOff(pname));
      for (const b of value) struct.push(b);
      pad();
    }
  };
  open(root, true);
  const stack: Frame[] = [{ node: root, next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const kids = top.node.children ?? [];
    if (top.next < kids.length) {
      const child = kids[top.next++];
      open(child, false);
      stack.push({ node: child, next: 0 });
    } else {
      u32(FDT_END_NODE);
      stack.pop();
    }
  }
  u32(FDT_END);

  const reservations = options.reservations ?? [];
  const offMemRsvmap = 40;
  const offDtStruct = offMemRsvmap + (reservations.length + 1) * 16;
  const offDtStrings = offDtStruct + struct.length;
  const totalsize = offDtStrings + stringsBytes.length;
  const out = new Uint8Array(totalsize);
  const dv = new DataView(out.buffer);
  const header = [
    FDT_MAGIC,
    totalsize,
    offDtStruct,
    offDtStrings,
    offMemRsvmap,
    17,
    16,
    options.bootCpuidPhys ?? 0,
    stringsBytes.length,
    struct.length,
  ];
  header.forEach((v, i) => dv.setUint32(i * 4, v));
  reservations.forEach((r, i) => {
    dv.setBigUint64(offMemRsvmap + i * 16, r.address);
    dv.setBigUint64(offMemRsvmap + i * 16 + 8, r.size);
  });
  out.set(struct, offDtStruct);
  out.set(stringsBytes, offDtStrings);
  return out;
}
