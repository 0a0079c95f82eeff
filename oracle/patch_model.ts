/**
 * What a parsed patch changes in the oracle's model: `rk_iommu_ops` initializer fields
 * (`gfp_flags`, `dma_bit_mask`, the entry functions that decide the entry format), new ops
 * initializers, `rk_iommu_dt_ids` entries (compatible → ops), the switch from the global `rk_ops`
 * to per-device ops, and in Rockchip `.dts`/`.dtsi` files the `compatible` and `status` of IOMMU
 * nodes. Every other changed line is kept as "not modelled", never dropped.
 *
 * `applyPatchSeries` then applies a series to one release's driver facts and one board's IOMMU
 * nodes the way `git am` would: a patch whose removed or context lines do not match the
 * knowledge base of that release does not apply (and the series stops there, saying why); a patch
 * whose change the release already has is skipped as already applied.
 *
 * Pure: no I/O.
 *
 * @module
 */
import type { ParsedPatch } from "./patch_text.ts";
import { compareRelease, type DriverFacts, type OpsSpec, parseRelease } from "./releases.ts";
import type { DtIommuNode } from "./scenario.ts";
import { type EntryFormat, fact, type GfpZone } from "./types.ts";

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
  file: string;
  hunk: string;
  lines: string[];
  reason: string;
}

/** What one patch changes, as the model sees it. */
export interface PatchEffect {
  subject: string;
  source: string;
  changes: ModelChange[];
  notModelled: NotModelled[];
  /** Files touched, with whether any of their hunks were modelled. */
  files: { path: string; modelled: boolean }[];
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

/** Which boards a device-tree file reaches: a `.dtsi` every board of its SoCs, a `.dts` one. */
export function dtFileReaches(file: string, soc: string, dtb?: string): boolean {
  const base = file.replace(/^.*\//, "");
  if (base.endsWith(".dts")) {
    return dtb !== undefined && dtb.replace(/^.*\//, "").replace(/\.dtb$/, "") ===
        base.replace(/\.dts$/, "");
  }
  if (/^rk356[68x]/.test(base)) return soc === "rk3568" || soc === "rk3566";
  if (/^rk3588/.test(base)) return soc === "rk3588";
  return false;
}

/** The result of applying a series to one release and board. */
export interface SeriesApplication {
  /** True when every patch applied (or was already in the release). */
  applied: boolean;
  driver: DriverFacts;
  devicetree: DtIommuNode[];
  /** Per patch: `applied`, `already` (the release has the change), or why it does not apply. */
  patches: {
    subject: string;
    result: "applied" | "already" | "no effect" | "does not apply";
    why: string[];
  }[];
}

function parseGfp(v: string): GfpZone | undefined {
  const t = v.replace(/\s+/g, "");
  if (t === "0") return "none";
  if (t === "GFP_DMA32") return "GFP_DMA32";
  if (t === "GFP_DMA") return "GFP_DMA";
  return undefined;
}

function parseMask(v: string): number | undefined {
  const m = /^DMA_BIT_MASK\(\s*(\d+)\s*\)$/.exec(v.trim());
  return m ? Number(m[1]) : undefined;
}

function parseFormat(v: string): EntryFormat {
  return /_v2\b/.test(v) ? "v2" : "v1";
}

function hasGfpField(release: string): boolean {
  const r = parseRelease(release);
  return r !== undefined && compareRelease(r, { major: 6, minor: 6 }) >= 0;
}

function findOps(f: DriverFacts, name: string): OpsSpec | undefined {
  return Object.values(f.compatibles).find((o) => o.name === name);
}

/**
 * Apply a series (in order) to driver facts of one release and one board's IOMMU nodes.
 * `soc` and `dtb` decide which device-tree files reach the board.
 */
export function applyPatchSeries(
  series: PatchEffect[],
  driver: DriverFacts,
  devicetree: DtIommuNode[],
  soc: string,
  dtb?: string,
): SeriesApplication {
  let f = driver;
  let dt = devicetree;
  const out: SeriesApplication["patches"] = [];
  for (const p of series) {
    const r = applyOne(p, f, dt, soc, dtb);
    out.push({ subject: p.subject, result: r.result, why: r.why });
    if (r.result === "does not apply") {
      return { applied: false, driver: f, devicetree: dt, patches: out };
    }
    f = r.driver;
    dt = r.devicetree;
  }
  return {
    applied: true,
    driver: { ...f, patches: [...f.patches, ...series.map((p) => p.subject)] },
    devicetree: dt,
    patches: out,
  };
}

function applyOne(
  p: PatchEffect,
  driver: DriverFacts,
  devicetree: DtIommuNode[],
  soc: string,
  dtb?: string,
): {
  result: "applied" | "already" | "no effect" | "does not apply";
  why: string[];
  driver: DriverFacts;
  devicetree: DtIommuNode[];
} {
  const src = `patch "${p.subject}" (${p.source})`;
  const problems: string[] = [];
  const already: string[] = [];
  let applied = 0;
  const rel = driver.release;
  let f: DriverFacts = { ...driver, compatibles: { ...driver.compatibles } };
  const added = new Map<string, OpsSpec>();
  // Ops instances by name, after edits: edits replace the spec under every compatible using it.
  const replaceOps = (name: string, next: OpsSpec) => {
    for (const [c, o] of Object.entries(f.compatibles)) {
      if (o.name === name) f.compatibles[c] = next;
    }
    if (added.has(name)) added.set(name, next);
  };
  const opsByName = (name: string) => added.get(name) ?? findOps(f, name);

  for (const c of p.changes) {
    if (c.kind === "per-device-ops") {
      if (f.perDeviceOps.value) {
        already.push(`${rel} already has per-device ops`);
      } else {
        f = { ...f, perDeviceOps: fact("per-device ops", true, src, "input") };
        applied++;
      }
    } else if (c.kind === "ops-new") {
      if (opsByName(c.ops)) {
        problems.push(`${rel} already defines ${c.ops}`);
        continue;
      }
      if (c.fields.gfp_flags !== undefined && !hasGfpField(rel)) {
        problems.push(
          `struct rk_iommu_ops has no gfp_flags field in ${rel} (added in 6.6 by 2a7e6400f72b)`,
        );
        continue;
      }
      const mask = parseMask(c.fields.dma_bit_mask ?? "");
      const gfp = c.fields.gfp_flags !== undefined
        ? parseGfp(c.fields.gfp_flags)
        : hasGfpField(rel)
        ? "none"
        : "GFP_DMA32";
      if (mask === undefined || gfp === undefined) {
        problems.push(
          `${c.ops}: dma_bit_mask "${c.fields.dma_bit_mask ?? "(none)"}" or gfp_flags ` +
            `"${c.fields.gfp_flags ?? "(none)"}" is not a value the model reads`,
        );
        continue;
      }
      added.set(c.ops, {
        name: c.ops,
        format: parseFormat(c.fields.pt_address ?? c.fields.mk_ptentries ?? ""),
        dmaMaskBits: fact("dma_bit_mask", mask, src, "input"),
        gfpZone: fact("table gfp zone", gfp, src, "input"),
      });
      applied++;
    } else if (c.kind === "ops-field") {
      const ops = opsByName(c.ops);
      if (!ops) {
        problems.push(`${rel} has no ops instance ${c.ops}`);
        continue;
      }
      const r = fieldEdit(ops, c.field, c.before, c.after, rel, src);
      if (r.problem) problems.push(`${c.ops}: ${r.problem}`);
      else if (r.next) {
        if (c.before === c.after) continue; // context only: checked, nothing to change
        replaceOps(c.ops, r.next);
        applied++;
      }
    } else if (c.kind === "compatible") {
      const cur = f.compatibles[c.compatible];
      if (c.before !== undefined) {
        if (!cur || cur.name !== c.before) {
          problems.push(
            `${rel}'s match table has no "${c.compatible}" → ${c.before} entry to remove`,
          );
          continue;
        }
        delete f.compatibles[c.compatible];
        applied++;
      }
      if (c.after !== undefined) {
        const ops = opsByName(c.after);
        if (!ops) {
          problems.push(`"${c.compatible}" selects ${c.after}, which ${rel} does not define`);
          continue;
        }
        if (cur && cur.name === c.after && c.before === undefined) {
          already.push(`${rel} already matches "${c.compatible}" to ${c.after}`);
          continue;
        }
        f.compatibles[c.compatible] = ops;
        applied++;
      }
    }
  }

  // Device tree: only files that reach this board.
  let dt = devicetree;
  for (const c of p.changes) {
    if (c.kind !== "dt-node" || !dtFileReaches(c.file, soc, dtb)) continue;
    const idx = dt.findIndex((n) =>
      (c.unit !== undefined && n.unit === c.unit) || (c.label !== undefined && n.label === c.label)
    );
    const name = c.unit ? `iommu@${c.unit}` : `&${c.label}`;
    if (idx < 0) {
      problems.push(`${c.file}: the board's device tree has no node ${name}`);
      continue;
    }
    const n = dt[idx];
    const cur = c.property === "compatible" ? n.compatible : [n.status];
    if (c.before && c.before.join("\0") !== cur.join("\0")) {
      if (c.after && c.after.join("\0") === cur.join("\0")) {
        already.push(`${name} already has ${c.property} ${c.after.join(", ")}`);
      } else {
        problems.push(
          `${c.file}: ${name} has ${c.property} "${cur.join('", "')}", the hunk expects "${
            c.before.join('", "')
          }"`,
        );
      }
      continue;
    }
    if (!c.after) continue;
    const next: DtIommuNode = c.property === "compatible"
      ? { ...n, compatible: c.after, source: `${n.source}; ${src}`, confidence: "input" }
      : {
        ...n,
        status: c.after[0] === "okay" || c.after[0] === "ok" ? "okay" : "disabled",
        source: `${n.source}; ${src}`,
        confidence: "input",
      };
    dt = dt.map((x, i) => (i === idx ? next : x));
    applied++;
  }

  if (problems.length) return { result: "does not apply", why: problems, driver, devicetree };
  if (applied === 0 && already.length) {
    return { result: "already", why: already, driver, devicetree };
  }
  if (applied === 0) {
    return {
      result: "no effect",
      why: ["no modelled change of this patch reaches this release and board"],
      driver,
      devicetree,
    };
  }
  return { result: "applied", why: already, driver: f, devicetree: dt };
}

function fieldEdit(
  ops: OpsSpec,
  field: OpsField,
  before: string | undefined,
  after: string | undefined,
  rel: string,
  src: string,
): { next?: OpsSpec; problem?: string } {
  if (field === "gfp_flags") {
    if (!hasGfpField(rel)) {
      return {
        problem: `struct rk_iommu_ops has no gfp_flags field in ${rel} (GFP_DMA32 is hard-coded ` +
          "in the allocations until 2a7e6400f72b, 6.6)",
      };
    }
    if (before !== undefined && parseGfp(before) !== ops.gfpZone.value) {
      return {
        problem: `gfp_flags is ${
          ops.gfpZone.value === "none" ? "0" : ops.gfpZone.value
        } in ${rel}, the hunk expects ${before}`,
      };
    }
    if (after === undefined) {
      return { next: { ...ops, gfpZone: fact("table gfp zone", "none", src, "input") } };
    }
    const g = parseGfp(after);
    if (!g) return { problem: `gfp_flags value "${after}" is not one the model reads` };
    return { next: { ...ops, gfpZone: fact("table gfp zone", g, src, "input") } };
  }
  if (field === "dma_bit_mask") {
    if (before !== undefined && parseMask(before) !== ops.dmaMaskBits.value) {
      return {
        problem: `dma_bit_mask is DMA_BIT_MASK(${ops.dmaMaskBits.value}) in ${rel}, the hunk ` +
          `expects ${before}`,
      };
    }
    if (after === undefined) return { problem: "dma_bit_mask removed: the model needs one" };
    const m = parseMask(after);
    if (m === undefined) {
      return { problem: `dma_bit_mask value "${after}" is not one the model reads` };
    }
    return { next: { ...ops, dmaMaskBits: fact("dma_bit_mask", m, src, "input") } };
  }
  if (before !== undefined && parseFormat(before) !== ops.format) {
    return {
      problem: `${field} is a ${ops.format} function in ${rel}, the hunk expects ${before}`,
    };
  }
  if (after === undefined) return { problem: `${field} removed: the model needs the entry format` };
  return { next: { ...ops, format: parseFormat(after) } };
}
