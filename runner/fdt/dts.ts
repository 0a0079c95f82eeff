/**
 * Render a parsed tree as device tree source the way `dtc -I dtb -O dts` (DTC 1.6.1)
 * does: the same guess of each value's type (string list, cells, bytes), the same escapes,
 * the same layout. Tests compare it byte for byte with dtc's output; people read it in
 * reports.
 *
 * @module
 */

import type { FdtNode, FdtProperty, FdtTree } from "./fdt.ts";

const hex2 = (n: number) => n.toString(16).padStart(2, "0");

/** C `isprint` in the "C" locale. */
const isPrint = (c: number) => c >= 0x20 && c < 0x7f;
const ESCAPES: Record<number, string> = {
  0x07: "\\a",
  0x08: "\\b",
  0x09: "\\t",
  0x0a: "\\n",
  0x0b: "\\v",
  0x0c: "\\f",
  0x0d: "\\r",
  0x5c: "\\\\",
  0x22: '\\"',
  0x00: "\\0",
};

/** dtc's `guess_value_type` for a value without markers. */
export function guessValueType(v: Uint8Array): "string" | "cells" | "bytes" {
  let notString = 0;
  let nul = 0;
  for (const c of v) {
    if (!(isPrint(c) || c === 0 || (c >= 0x07 && c <= 0x0d))) notString++;
    if (c === 0) nul++;
  }
  if (v[v.length - 1] === 0 && notString === 0 && nul <= v.length - nul) return "string";
  if (v.length % 4 === 0) return "cells";
  return "bytes";
}

/** The text after the property name: `;` or ` = ...;`. */
export function formatValue(p: FdtProperty): string {
  const v = p.value;
  if (v.length === 0) return ";";
  switch (guessValueType(v)) {
    case "string": {
      let s = '"';
      for (let i = 0; i < v.length - 1; i++) {
        const c = v[i];
        s += ESCAPES[c] ?? (isPrint(c) ? String.fromCharCode(c) : `\\x${hex2(c)}`);
      }
      return ` = ${s}";`;
    }
    case "cells":
      return ` = <${p.asU32Array().map((c) => `0x${hex2(c)}`).join(" ")}>;`;
    case "bytes":
      return ` = [${Array.from(v, hex2).join(" ")}];`;
  }
}

/** `dtc -I dtb -O dts` output for the whole tree. */
export function formatDts(tree: FdtTree): string {
  const out: string[] = ["/dts-v1/;\n\n"];
  for (const r of tree.reservations) {
    out.push(
      `/memreserve/\t0x${r.address.toString(16).padStart(16, "0")} ` +
        `0x${r.size.toString(16).padStart(16, "0")};\n`,
    );
  }
  // Iterative depth-first walk: a 10 000-deep tree must not overflow the stack.
  type Frame = { node: FdtNode; next: number };
  const tabs = (n: number) => "\t".repeat(n);
  const open = (node: FdtNode) => {
    out.push(`${tabs(node.depth)}${node.depth === 0 ? "/" : node.name} {\n`);
    for (const p of node.properties) {
      out.push(`${tabs(node.depth + 1)}${p.name}${formatValue(p)}\n`);
    }
  };
  const stack: Frame[] = [{ node: tree.root, next: 0 }];
  open(tree.root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next < top.node.children.length) {
      const child = top.node.children[top.next++];
      out.push("\n");
      open(child);
      stack.push({ node: child, next: 0 });
    } else {
      out.push(`${tabs(top.node.depth)}};\n`);
      stack.pop();
    }
  }
  return out.join("");
}
