/**
 * What a parsed patch changes in the oracle's model: `rk_iommu_ops` initializer fields
 * (`gfp_flags`, `dma_bit_mask`, the entry functions that decide the entry format), new ops
 * initializers, `rk_iommu_dt_ids` entries (compatible → ops), the switch from the global `rk_ops`
 * to per-device ops, and in Rockchip `.dts`/`.dtsi` files the `compatible` and `status` of IOMMU
 * nodes. Every other changed line is kept as "not modelled", never dropped.
 *
 * `applyPatchSeries` (patch_apply.ts) applies the result to a release and a board.
 *
 * Pure: no I/O.
 *
 * @module
 */
import type { ParsedPatch } from "./patch_text.ts";

/** An `rk_iommu_ops` field the model knows. */
export type OpsField =
  | "gfp_flags"
  | "dma_bit_mask"
  | "pt_address"
  | "mk_dtentries"
  | "mk_ptentries";

const OPS_FIELDS: readonly OpsField[] = [
  "gfp_flags",
  "dma_bit_mask",
  "pt_address",
  "mk_dtentries",
  "mk_ptentries",
];

/** One change (or expectation, for context lines) the model understands. */
export type ModelChange =
  | {
    kind: "ops-field";
    ops: string;
    field: OpsField;
    /** Value the patch removes (or shows as context); absent when the field is only added. */
    before?: string;
    /** Value after the patch; absent when the field is removed; equal to before for context. */
    after?: string;
  }
  | { kind: "ops-new"; ops: string; fields: Partial<Record<OpsField, string>> }
  | { kind: "compatible"; compatible: string; before?: string; after?: string }
  | { kind: "per-device-ops" }
  | {
    kind: "dt-node";
    file: string;
    /** Unit address (`fde4b000`) or, for a `&label { … }` override, undefined. */
    unit?: string;
    label?: string;
    property: "compatible" | "status";
    before?: string[];
    after?: string[];
  };

/** Changed lines the model does not represent. */
export interface NotModelled {
  /** Path of the touched file. */
  file: string;
  /** The hunk's `@@ … @@` header. */
  hunk: string;
  /** The changed lines not modelled, without their `+`/`-` prefix. */
  lines: string[];
  /** Why the model cannot represent them, in one sentence. */
  reason: string;
}

/** What one patch changes, as the model sees it. */
export interface PatchEffect {
  /** `Subject:` of the patch mail, or `(no subject)`. */
  subject: string;
  /** Where the text came from (a file name). */
  source: string;
  /** Changes the model represents, in patch order. */
  changes: ModelChange[];
  /** Changed lines the model does not represent. */
  notModelled: NotModelled[];
  /** Files touched, with whether any of their hunks were modelled. */
  files: { path: string; modelled: boolean }[];
  /** What normalising the patch text had to do (from the parsed patch). */
  notes: string[];
}

const DRIVER = "drivers/iommu/rockchip-iommu.c";
const OPS_START = /struct\s+rk_iommu_ops\s+(\w+)\s*=\s*\{/;
const DT_IDS_START = /of_device_id\s+rk_iommu_dt_ids\s*\[\s*\]\s*=\s*\{/;
const FIELD_RE = /^\s*\.(\w+)\s*=\s*(.+?)\s*,?\s*$/;
const GLOBAL_RK_OPS = /^\s*static\s+const\s+struct\s+rk_iommu_ops\s+\*\s*rk_ops\s*;/;
const NODE_RE = /^\s*(?:([\w-]+)\s*:\s*)?[\w-]*iommu@([0-9a-fA-F]+)\s*\{/;
const REF_RE = /^\s*&([\w-]+)\s*\{/;
const ANY_NODE_RE = /^\s*(?:[\w-]+\s*:\s*)?[\w,.+-]+(?:@[0-9a-fA-F,]+)?\s*\{\s*$/;
const PROP_RE = /^\s*(compatible|status)\s*=\s*(.+?)\s*;\s*$/;

function strings(v: string): string[] {
  return [...v.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
}

/** Interpret one parsed patch. */
export function patchEffect(p: ParsedPatch): PatchEffect {
  const changes: ModelChange[] = [];
  const notModelled: NotModelled[] = [];
  const files: PatchEffect["files"] = [];
  const perDevice = p.files.some((f) =>
    f.path === DRIVER &&
    f.hunks.some((h) => h.lines.some((l) => l.kind === "del" && GLOBAL_RK_OPS.test(l.text)))
  );
  if (perDevice) changes.push({ kind: "per-device-ops" });
  for (const f of p.files) {
    let modelled = false;
    if (f.path === DRIVER) {
      for (const h of f.hunks) {
        const r = driverHunk(h.context, h.lines, perDevice);
        changes.push(...r.changes);
        if (r.changes.length || (perDevice && r.plumbing)) modelled = true;
        if (r.other.length) {
          notModelled.push({ file: f.path, hunk: h.header, lines: r.other, reason: r.reason });
        }
      }
    } else if (/^arch\/arm64\/boot\/dts\/rockchip\/.+\.dtsi?$/.test(f.path)) {
      for (const h of f.hunks) {
        const r = dtHunk(f.path, h.context, h.lines);
        changes.push(...r.changes);
        if (r.changes.length) modelled = true;
        if (r.other.length) {
          notModelled.push({ file: f.path, hunk: h.header, lines: r.other, reason: r.reason });
        }
      }
    } else {
      for (const h of f.hunks) {
        const lines = h.lines.filter((l) => l.kind !== "context").map(sign);
        if (lines.length) {
          notModelled.push({
            file: f.path,
            hunk: h.header,
            lines,
            reason: "file outside the model (rockchip-iommu.c and Rockchip device trees)",
          });
        }
      }
    }
    files.push({ path: f.path, modelled });
  }
  return { subject: p.subject, source: p.source, changes, notModelled, files, notes: p.notes };
}

function sign(l: { kind: string; text: string }): string {
  return (l.kind === "add" ? "+" : l.kind === "del" ? "-" : " ") + l.text;
}

interface HunkResult {
  changes: ModelChange[];
  other: string[];
  reason: string;
  plumbing?: boolean;
}

function driverHunk(
  context: string,
  lines: { kind: "context" | "add" | "del"; text: string }[],
  perDevice: boolean,
): HunkResult {
  const changes: ModelChange[] = [];
  const other: string[] = [];
  let plumbing = false;
  let scope: { kind: "ops"; name: string; isNew: boolean } | { kind: "ids" } | null = null;
  const start = OPS_START.exec(context);
  if (start) scope = { kind: "ops", name: start[1], isNew: false };
  else if (DT_IDS_START.test(context)) scope = { kind: "ids" };
  // Field values per ops within this hunk: removed, added, context.
  const fields = new Map<string, { del?: string; add?: string; ctx?: string }>();
  const newOps = new Map<string, Partial<Record<OpsField, string>>>();
  let lastCompat: { name: string; kind: string } | null = null;
  for (const l of lines) {
    const t = l.text;
    const os = OPS_START.exec(t);
    if (os) {
      scope = { kind: "ops", name: os[1], isNew: l.kind === "add" };
      if (l.kind === "add") newOps.set(os[1], {});
      if (l.kind === "del") other.push(sign(l));
      continue;
    }
    if (DT_IDS_START.test(t)) {
      scope = { kind: "ids" };
      continue;
    }
    if (/^\s*\};?\s*$/.test(t) && scope?.kind === "ops") {
      scope = null;
      continue;
    }
    if (scope?.kind === "ops") {
      const fm = FIELD_RE.exec(t);
      if (fm && (OPS_FIELDS as readonly string[]).includes(fm[1])) {
        const field = fm[1] as OpsField;
        if (scope.isNew) {
          if (l.kind === "add") newOps.get(scope.name)![field] = fm[2];
          continue;
        }
        const key = `${scope.name}\u0000${field}`;
        const e = fields.get(key) ?? {};
        if (l.kind === "del") e.del = fm[2];
        else if (l.kind === "add") e.add = fm[2];
        else e.ctx = fm[2];
        fields.set(key, e);
        continue;
      }
    }
    if (scope?.kind === "ids") {
      const cm = /\.compatible\s*=\s*"([^"]+)"/.exec(t);
      const dm = /\.data\s*=\s*&?\s*(\w+)/.exec(t);
      if (cm) lastCompat = { name: cm[1], kind: l.kind };
      if (dm && lastCompat) {
        // The entry's compatible stays current until the next one: a `.data` line may be
        // replaced (one removed, one added) under an unchanged `.compatible` line.
        if (l.kind === "add" || lastCompat.kind === "add") {
          changes.push({ kind: "compatible", compatible: lastCompat.name, after: dm[1] });
        } else if (l.kind === "del" || lastCompat.kind === "del") {
          changes.push({ kind: "compatible", compatible: lastCompat.name, before: dm[1] });
        }
        continue;
      }
      if (cm) continue;
      if (l.kind !== "context" && /^\s*[{}]?\s*,?\s*\}?\s*,?\s*$/.test(t)) continue;
    }
    if (l.kind === "context" || t.trim() === "") continue;
    if (
      perDevice && (GLOBAL_RK_OPS.test(t) || /\brk_ops\b|->ops\b|\bops\s*[!=]=|\bops\b/.test(t))
    ) {
      plumbing = true;
      continue;
    }
    other.push(sign(l));
  }
  for (const [ops, f] of newOps) changes.push({ kind: "ops-new", ops, fields: f });
  for (const [key, e] of fields) {
    const [ops, field] = key.split("\u0000") as [string, OpsField];
    if (e.del === undefined && e.add === undefined) {
      changes.push({ kind: "ops-field", ops, field, before: e.ctx, after: e.ctx });
    } else {
      changes.push({ kind: "ops-field", ops, field, before: e.del, after: e.add });
    }
  }
  return {
    changes,
    other,
    plumbing,
    reason: "driver code outside the ops initializers, the match table and the global rk_ops",
  };
}

function dtHunk(
  file: string,
  context: string,
  lines: { kind: "context" | "add" | "del"; text: string }[],
): HunkResult {
  const changes: ModelChange[] = [];
  const other: string[] = [];
  let node: { unit?: string; label?: string } | null = null;
  const ctxNode = NODE_RE.exec(context);
  if (ctxNode) node = { unit: ctxNode[2].toLowerCase(), label: ctxNode[1] };
  const ref = REF_RE.exec(context);
  if (!node && ref) node = { label: ref[1] };
  const props = new Map<string, { del?: string[]; add?: string[] }>();
  const flush = () => {
    for (const [prop, v] of props) {
      if (!node) continue;
      changes.push({
        kind: "dt-node",
        file,
        unit: node.unit,
        label: node.label,
        property: prop as "compatible" | "status",
        before: v.del,
        after: v.add,
      });
    }
    props.clear();
  };
  for (const l of lines) {
    const t = l.text;
    const nm = NODE_RE.exec(t);
    const rm = REF_RE.exec(t);
    if (nm || rm || ANY_NODE_RE.test(t)) {
      flush();
      node = nm
        ? { unit: nm[2].toLowerCase(), label: nm[1] }
        : rm && /mmu/.test(rm[1])
        ? { label: rm[1] }
        : null;
      if (l.kind !== "context") other.push(sign(l));
      continue;
    }
    if (/^\s*\};\s*$/.test(t)) {
      flush();
      node = null;
      if (l.kind !== "context") other.push(sign(l));
      continue;
    }
    const pm = PROP_RE.exec(t);
    if (pm && node && l.kind !== "context") {
      const e = props.get(pm[1]) ?? {};
      if (l.kind === "del") e.del = strings(pm[2]);
      else e.add = strings(pm[2]);
      props.set(pm[1], e);
      continue;
    }
    if (l.kind !== "context") other.push(sign(l));
  }
  flush();
  return {
    changes,
    other,
    reason: "device-tree lines other than the compatible and status of an IOMMU node",
  };
}
