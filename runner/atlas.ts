/**
 * `rkhil atlas`: every Rockchip RK356x and RK3588 DTB that each Debian kernel suite ships
 * (bookworm, bookworm-backports, trixie, trixie-backports, sid), fetched through rkhil's private
 * apt (cached), read with rkhil's DTB parser, and predicted by the oracle per IOMMU node and RAM
 * size; releases are ordered by kernel version and each is compared with the one before it.
 * A suite the mirror does not serve is reported, not fatal.
 *
 * @module
 */
import { listBoards } from "../boards/load.ts";
import {
  ATLAS_SIZES_GB,
  atlasChanges,
  type AtlasDtb,
  type AtlasLayout,
  atlasLayout,
  type DtbChange,
  type DtbOutcomes,
  nodeLabel,
  predictDtb,
  type ReferenceLayout,
  socFamily,
} from "../oracle/atlas.ts";
import { isKnownRelease, parseRelease, releaseKey } from "../oracle/releases.ts";
import { dtbIommuNodes } from "./dtb.ts";
import { UserInputError } from "./errors.ts";
import { fetchKernel, KERNEL_SUITES } from "./debian/kernel.ts";
import { compareDebVersions } from "./debian/version.ts";

/** The suites the atlas covers by default. */
export const ATLAS_SUITES: readonly string[] = [
  "bookworm",
  "bookworm-backports",
  "trixie",
  "trixie-backports",
  "sid",
];

/** DTB file names the atlas reads: RK3566, RK3568, RK3588 and RK3588S boards. */
export const ATLAS_DTB_RE = /^rk(3566|3568|3588s?)-[\w.+-]+\.dtb$/;

/** One release of the atlas. */
export interface AtlasRelease {
  /** Debian suite (`bookworm`, `trixie-backports`). */
  suite: string;
  /** The kernel image package the DTBs come from. */
  package: string;
  /** Debian version of that package. */
  version: string;
  /** `uname -r` of the kernel. */
  kernelRelease: string;
  /** The knowledge-base release its driver facts come from (`6.12`). */
  kb: string;
  /** Every Rockchip RK356x/RK3588 DTB of the package, read. */
  dtbs: AtlasDtb[];
  /** DTB name → size (GiB) → unit → outcome. */
  outcomes: Record<string, DtbOutcomes>;
  /** Suite of the previous release (by kernel version), or null for the oldest. */
  previous: string | null;
  /** What changed from the previous release. */
  changes: DtbChange[];
  /** DTBs that could not be read, with why. */
  unreadable: { dtb: string; why: string }[];
}

/** The whole atlas (the JSON of `rkhil atlas --json`). */
export interface Atlas {
  /** Version of this JSON shape. */
  schema: 1;
  /** Memory sizes (GiB) every DTB is predicted at. */
  sizesGb: number[];
  /** Memory banks used per SoC family and size. */
  layouts: AtlasLayout[];
  /** One entry per usable suite, oldest kernel first. */
  releases: AtlasRelease[];
  /** Suites that could not be used (not served by the mirror, no kernel, unknown release). */
  missing: { suite: string; why: string }[];
}

/** The board files' banks per SoC family and size: the reference layouts. */
export async function referenceLayouts(): Promise<ReferenceLayout[]> {
  const out: ReferenceLayout[] = [];
  for (const { board } of await listBoards()) {
    const family = socFamily(board.soc);
    if (!family) continue;
    out.push({
      boardId: board.id,
      family,
      sizeGb: Math.round(board.ram.size / 0x4000_0000),
      banks: board.ram.banks.map((b) => ({ start: b.start, end: b.end })),
    });
  }
  return out;
}

function socOf(compatible: string[]): string | undefined {
  for (const c of compatible) {
    const m = /^rockchip,(rk3566|rk3568|rk3588s?)$/.exec(c);
    if (m) return m[1];
  }
  return undefined;
}

/** Read the atlas DTBs of one kernel's DTB directory. */
export async function readAtlasDtbs(
  dtbDir: string,
): Promise<{ dtbs: AtlasDtb[]; unreadable: { dtb: string; why: string }[] }> {
  const dir = `${dtbDir}/rockchip`;
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && ATLAS_DTB_RE.test(e.name)) names.push(e.name);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  names.sort();
  const dtbs: AtlasDtb[] = [];
  const unreadable: { dtb: string; why: string }[] = [];
  for (const name of names) {
    try {
      const r = await dtbIommuNodes(`${dir}/${name}`);
      const soc = socOf(r.compatible);
      if (!soc) {
        unreadable.push({ dtb: name, why: `root compatible ${r.compatible.join(", ")}` });
        continue;
      }
      dtbs.push({
        name,
        model: r.model,
        soc,
        nodes: r.nodes.map((n) => ({ ...n, label: nodeLabel(soc, n) })),
        others: r.others.map((n) => `${n.unit} ${n.label} (${n.compatible.join(", ")})`),
      });
    } catch (err) {
      if (!(err instanceof UserInputError)) throw err;
      unreadable.push({ dtb: name, why: err.message });
    }
  }
  return { dtbs, unreadable };
}

/** Options of {@linkcode buildAtlas}. */
export interface AtlasOptions {
  /** Debian suites to read (default: every suite of `ATLAS_SUITES`). */
  suites?: readonly string[];
  /** Progress lines (to stderr in the CLI). */
  log?: (line: string) => void;
}

/** Fetch (cached), read and predict every suite's Rockchip DTBs. */
export async function buildAtlas(o: AtlasOptions = {}): Promise<Atlas> {
  const suites = o.suites?.length ? o.suites : ATLAS_SUITES;
  for (const s of suites) {
    if (!(s in KERNEL_SUITES)) {
      throw new UserInputError(
        `unknown Debian suite "${s}"`,
        `use one of ${ATLAS_SUITES.join(", ")}`,
      );
    }
  }
  const refs = await referenceLayouts();
  const layouts = ["rk356x", "rk3588"].flatMap((f) =>
    ATLAS_SIZES_GB.map((g) => atlasLayout(f, g, refs))
  );
  const missing: Atlas["missing"] = [];
  const got: Omit<AtlasRelease, "previous" | "changes">[] = [];
  for (const suite of suites) {
    let k;
    try {
      k = await fetchKernel(`debian:${suite}`);
    } catch (err) {
      if (!(err instanceof UserInputError)) throw err;
      missing.push({ suite, why: `${err.message}${err.hint ? ` (${err.hint})` : ""}` });
      o.log?.(`atlas: ${suite}: ${err.message}`);
      continue;
    }
    const rel = parseRelease(k.release);
    if (!rel || !isKnownRelease(rel)) {
      missing.push({
        suite,
        why: `${k.package} ${k.version}: release ${k.release} is not in the knowledge base`,
      });
      continue;
    }
    if (!k.dtbDir) {
      missing.push({ suite, why: `${k.package} ${k.version} ships no DTBs` });
      continue;
    }
    const kb = releaseKey(rel);
    const { dtbs, unreadable } = await readAtlasDtbs(k.dtbDir);
    const outcomes: Record<string, DtbOutcomes> = {};
    for (const d of dtbs) outcomes[d.name] = predictDtb(d, kb, layouts);
    o.log?.(`atlas: ${suite}: ${k.package} ${k.version}: ${dtbs.length} DTBs`);
    got.push({
      suite,
      package: k.package,
      version: k.version,
      kernelRelease: k.release,
      kb,
      dtbs,
      outcomes,
      unreadable,
    });
  }
  got.sort((a, b) => compareDebVersions(a.version, b.version));
  const releases: AtlasRelease[] = got.map((r, i) => ({
    ...r,
    previous: i ? got[i - 1].suite : null,
    changes: i ? atlasChanges(got[i - 1], r) : [],
  }));
  return { schema: 1, sizesGb: [...ATLAS_SIZES_GB], layouts, releases, missing };
}
