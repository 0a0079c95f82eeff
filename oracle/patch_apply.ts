/**
 * Apply what a patch series changes (patch_model.ts) to one release's driver facts and one
 * board's IOMMU nodes the way `git am` would: a patch whose removed or context lines do not match
 * the knowledge base of that release does not apply (and the series stops there, saying why); a
 * patch whose change the release already has is skipped as already applied.
 *
 * Pure: no I/O.
 *
 * @module
 */
import type { OpsField, PatchEffect } from "./patch_model.ts";
import { compareRelease, type DriverFacts, type OpsSpec, parseRelease } from "./releases.ts";
import type { DtIommuNode } from "./scenario.ts";
import { type EntryFormat, fact, type GfpZone } from "./types.ts";

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
  /** Driver facts after the series (the release's when nothing applied). */
  driver: DriverFacts;
  /** IOMMU nodes of the board's devicetree after the series. */
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
