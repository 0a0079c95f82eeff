/**
 * Boot-log lines about memory, rendered exactly as the kernel prints them and parsed back from
 * real `dmesg` text (with or without timestamps and syslog prefixes).
 *
 * Formats (research/rockchip-iommu.md §5.1 and §5.3, mm/mm_init.c, kernel/dma/swiotlb.c):
 * - `Zone ranges:` then per zone `  %-8s ` + `[mem %#018Lx-%#018Lx]` (INCLUSIVE end) or `empty`,
 * - `Movable zone start for each node`, `Early memory node ranges`,
 *   `  node %3d: [mem %#018Lx-%#018Lx]` (inclusive end),
 * - `software IO TLB: mapped [mem %pa-%pa] (%luMB)` (EXCLUSIVE end; MB = bytes >> 20),
 *   or `software IO TLB: No low mem`.
 * The kernel's `%#x` prints `0x` even for zero (oracle/printk.ts), and `%pa` is `0x` + 16 hex
 * digits on arm64.
 *
 * Parsers never throw: unparseable lines are skipped and reported in `problems`.
 *
 * @module
 */

import type { PhysRange } from "./types.ts";
import { fmtPa, ksprintf } from "./printk.ts";
import type { Zone, ZoneName } from "./memory.ts";

/** Render the `Zone ranges:` block (one string per line, no newlines). */
export function renderZoneRanges(zones: readonly Pick<Zone, "name" | "span">[]): string[] {
  const lines = ["Zone ranges:"];
  for (const z of zones) {
    lines.push(
      z.span
        ? ksprintf("  %-8s [mem %#018llx-%#018llx]", [z.name, z.span.start, z.span.end - 1])
        : ksprintf("  %-8s empty", [z.name]),
    );
  }
  return lines;
}

/** Render `Early memory node ranges` for banks of one node (inclusive ends). */
export function renderNodeRanges(banks: readonly PhysRange[], node = 0): string[] {
  return [
    "Early memory node ranges",
    ...banks.map((b) =>
      ksprintf("  node %3d: [mem %#018llx-%#018llx]", [node, b.start, b.end - 1])
    ),
  ];
}

/** A zone line read from a log. */
export interface ParsedZone {
  /** Zone name as printed. */
  name: ZoneName | "Movable" | "Device";
  /** Half-open span, or null for `empty`. */
  span: PhysRange | null;
}

/** What {@link parseZoneRanges} found. */
export interface ParsedMemoryLog {
  /** Zone lines after the last `Zone ranges:` heading (empty if no heading was found). */
  zones: ParsedZone[];
  /** `node N: [mem ...]` lines, half-open. */
  nodes: { node: number; range: PhysRange }[];
  /** Lines that looked relevant but could not be read. */
  problems: string[];
}

const HEX = "0x[0-9a-fA-F]{1,16}";
const ZONE_RE = new RegExp(
  `(?:^|[\\s\\]>:])(DMA32|DMA|Normal|Movable|Device)\\s+(?:\\[mem (${HEX})-(${HEX})\\]|(empty))\\s*$`,
);
const NODE_RE = new RegExp(`node\\s+(\\d{1,4}): \\[mem (${HEX})-(${HEX})\\]\\s*$`);

function hexToNumber(h: string): number {
  return Number(BigInt(h));
}

function inclusiveRange(a: string, b: string): PhysRange | null {
  const start = hexToNumber(a);
  const last = hexToNumber(b);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last) || last < start) return null;
  return { start, end: last + 1 };
}

/**
 * Read the `Zone ranges:` block and the `Early memory node ranges` lines from boot-log text.
 * Accepts any line prefix (timestamps, `<6>`, `kern  :info  : `).
 */
export function parseZoneRanges(text: string): ParsedMemoryLog {
  const out: ParsedMemoryLog = { zones: [], nodes: [], problems: [] };
  const lines = String(text).split(/\r?\n/);
  let inZones = false;
  for (const line of lines) {
    if (line.length > 4096) continue;
    if (/Zone ranges:\s*$/.test(line)) {
      inZones = true;
      out.zones = [];
      continue;
    }
    const node = NODE_RE.exec(line);
    if (node) {
      inZones = false;
      const range = inclusiveRange(node[2], node[3]);
      if (range) out.nodes.push({ node: Number(node[1]), range });
      else out.problems.push(line);
      continue;
    }
    if (!inZones) continue;
    const z = ZONE_RE.exec(line);
    if (!z) {
      inZones = false;
      continue;
    }
    const name = z[1] as ParsedZone["name"];
    if (z[4] === "empty") out.zones.push({ name, span: null });
    else {
      const span = inclusiveRange(z[2], z[3]);
      if (span) out.zones.push({ name, span });
      else out.problems.push(line);
    }
  }
  return out;
}

/** Render `software IO TLB: mapped [mem %pa-%pa] (%luMB)` for a window (end exclusive). */
export function renderSwiotlbLine(window: PhysRange): string {
  const mb = Math.floor((window.end - window.start) / (1024 * 1024));
  return `software IO TLB: mapped [mem ${fmtPa(window.start)}-${fmtPa(window.end)}] (${mb}MB)`;
}

/** What {@link parseSwiotlbLine} read. */
export type ParsedSwiotlbLine =
  | { kind: "mapped"; window: PhysRange; mb: number }
  | { kind: "no-low-mem" };

const SWIOTLB_RE = new RegExp(
  `software IO TLB: mapped \\[mem (${HEX})-(${HEX})\\] \\((\\d{1,12})MB\\)\\s*$`,
);

/** Read a SWIOTLB line from a log line or a whole log (the last match wins); null if none. */
export function parseSwiotlbLine(text: string): ParsedSwiotlbLine | null {
  let found: ParsedSwiotlbLine | null = null;
  for (const line of String(text).split(/\r?\n/)) {
    if (line.length > 4096) continue;
    const m = SWIOTLB_RE.exec(line);
    if (m) {
      const start = hexToNumber(m[1]);
      const end = hexToNumber(m[2]);
      if (Number.isSafeInteger(start) && Number.isSafeInteger(end) && end >= start) {
        found = { kind: "mapped", window: { start, end }, mb: Number(m[3]) };
      }
    } else if (/software IO TLB: No low mem\s*$/.test(line)) {
      found = { kind: "no-low-mem" };
    }
  }
  return found;
}
