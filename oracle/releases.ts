/**
 * Knowledge base of `drivers/iommu/rockchip-iommu.c` behaviour per mainline kernel release
 * (research/rockchip-iommu.md §1.5, §1.6, §1.9). This is the fallback and offline mode: facts
 * read from the kernel under test take precedence (DESIGN.md boundary 2).
 *
 * A release key such as `6.1` means that release's stable series as distributions ship it, so
 * the stable backports research names (7eb99841f340 and 6df63b7ebdaf into 6.1.y) apply. The exact
 * stable point of each backport is not modelled.
 *
 * @module
 */
import { type EntryFormat, type Fact, fact, type GfpZone } from "./types.ts";

/** A mainline release series, e.g. `{major: 6, minor: 12}`. */
export interface Release {
  /** Major version (`6`). */
  major: number;
  /** Minor version (`12`). */
  minor: number;
}

/** Every release the knowledge base covers, oldest first: 5.14 … 5.19, 6.0 … 6.19, 7.0 … 7.3. */
export const RELEASES: readonly string[] = [
  ...range(14, 19).map((m) => `5.${m}`),
  ...range(0, 19).map((m) => `6.${m}`),
  ...range(0, 3).map((m) => `7.${m}`),
];

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

/** Parse `6.12`, `6.12.57` or `v6.12`; `undefined` when it is not a release string. */
export function parseRelease(text: string): Release | undefined {
  const m = /^v?(\d{1,2})\.(\d{1,3})(?:\.\d{1,4})?(?:[-+~][\w.+~-]*)?$/.exec(text.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** `6.12` for `{6, 12}`. */
export function releaseKey(r: Release): string {
  return `${r.major}.${r.minor}`;
}

/** Negative when a is older than b. */
export function compareRelease(a: Release, b: Release): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}

/** True when the release is in the knowledge base. */
export function isKnownRelease(r: Release): boolean {
  return RELEASES.includes(releaseKey(r));
}

/** The ops a compatible string selects, as the kernel defines them. */
export interface OpsSpec {
  /** Name of the ops instance (`iommu_data_ops_v1`, `iommu_data_ops_v2`, or a patch's). */
  name: string;
  /** Page-table entry format the ops write (`v1`/`v2`). */
  format: EntryFormat;
  /** Address bits of `dma_bit_mask`, applied to the IOMMU device at probe. */
  dmaMaskBits: Fact<number>;
  /** Zone modifier of the table allocations (`gfp_flags`, or the hard-coded GFP_DMA32). */
  gfpZone: Fact<GfpZone>;
}

/** Driver facts of one kernel: what the oracle needs to know about the driver under test. */
export interface DriverFacts {
  /** The release these facts describe (`6.12`), or a caller-supplied label. */
  release: string;
  /** Compatible string → ops, in the order of the driver's `of_device_id` table. */
  compatibles: Record<string, OpsSpec>;
  /** v2 PTEs carry R in bit 2 and W in bit 1 (before 7eb99841f340). */
  v2PermSwapped: Fact<boolean>;
  /** How DTE_ADDR is written: `vendor` (phys 39:32 in bits 11:4) or `dte` (6df63b7ebdaf). */
  dteAddrLayout: Fact<"vendor" | "dte">;
  /** One global `rk_ops` (a second kind fails to probe) or per-device ops (414cb6f3ac62). */
  perDeviceOps: Fact<boolean>;
  /** Which device maps the tables: the first-probed IOMMU, or the domain's own IOMMU. */
  dmaDev: Fact<"global-first-probed" | "per-domain">;
  /** The page allocator call used for tables (all return zeroed pages). */
  allocCall: Fact<string>;
  /** `AUTO_GATING` bit 31 set at enable (8d4346ecd495). */
  autoGatingBit31: Fact<boolean>;
  /** Names of downstream patch sets applied on top (see patches.ts). */
  patches: string[];
}

const R19 = "research/rockchip-iommu.md §1.9";
const R15 = "research/rockchip-iommu.md §1.5";
const R16 = "research/rockchip-iommu.md §1.6";

function atLeast(r: Release, major: number, minor: number): boolean {
  return compareRelease(r, { major, minor }) >= 0;
}

/** The mainline v1 ops (`rockchip,iommu`) for a release. */
function opsV1(r: Release): OpsSpec {
  const gfpSrc = atLeast(r, 6, 6)
    ? `${R15}: iommu_data_ops_v1.gfp_flags = GFP_DMA32 (2a7e6400f72b, v6.6)`
    : `${R16}: GFP_DMA32 hard-coded in both table allocations before v6.6`;
  return {
    name: "iommu_data_ops_v1",
    format: "v1",
    dmaMaskBits: fact("dma_bit_mask", 32, `${R15}: iommu_data_ops_v1`, "verified"),
    gfpZone: fact("table gfp zone", "GFP_DMA32", gfpSrc, "verified"),
  };
}

/** The mainline v2 ops (`rockchip,rk3568-iommu`) for a release. */
function opsV2(r: Release): OpsSpec {
  const lifted = atLeast(r, 6, 6);
  return {
    name: "iommu_data_ops_v2",
    format: "v2",
    dmaMaskBits: fact("dma_bit_mask", 40, `${R15}: iommu_data_ops_v2`, "verified"),
    gfpZone: lifted
      ? fact(
        "table gfp zone",
        "none",
        `${R19}: 2a7e6400f72b "Allocate tables from all available memory for IOMMU v2" (v6.6)`,
        "reported",
      )
      : fact("table gfp zone", "GFP_DMA32", `${R16}: GFP_DMA32 hard-coded before v6.6`, "verified"),
  };
}

/**
 * Mainline driver facts for a release (no downstream patches). The caller checks
 * `isKnownRelease` first; releases outside the table are refused by `kernelFactsFor`.
 */
export function mainlineFacts(r: Release): DriverFacts {
  const key = releaseKey(r);
  const is61 = r.major === 6 && r.minor === 1;
  const is515 = r.major === 5 && r.minor === 15;
  return {
    release: key,
    compatibles: {
      "rockchip,iommu": opsV1(r),
      "rockchip,rk3568-iommu": opsV2(r),
    },
    v2PermSwapped: atLeast(r, 6, 2)
      ? fact("v2 R/W bits swapped", false, `${R19}: 7eb99841f340 (v6.2)`, "verified")
      : is61
      ? fact("v2 R/W bits swapped", false, `${R19}: 7eb99841f340 backported to 6.1.y`, "reported")
      : fact(
        "v2 R/W bits swapped",
        true,
        `${R19}: 7eb99841f340 first in v6.2`,
        is515 ? "unknown" : "reported",
        is515 ? "whether 5.15.y carries the backport is not known" : undefined,
      ),
    dteAddrLayout: atLeast(r, 6, 6)
      ? fact("DTE_ADDR layout", "dte", `${R19}: 6df63b7ebdaf (v6.6)`, "reported")
      : is61 || is515
      ? fact(
        "DTE_ADDR layout",
        "dte",
        `${R19}: 6df63b7ebdaf stable backport; research §0 S-515 carries it`,
        "reported",
      )
      : fact("DTE_ADDR layout", "vendor", `${R19}: before 6df63b7ebdaf (v6.6)`, "reported"),
    perDeviceOps: atLeast(r, 7, 3)
      ? fact(
        "per-device ops",
        true,
        `${R19}: 414cb6f3ac62 queued in iommu next 2026-07-26; rkhil facts on Debian ` +
          "7.3.4+deb13-arm64: BTF struct rk_iommu has rk_ops (runner/introspect/README.md)",
        "measured",
        "research could not confirm the release; the running 7.3 kernel shows it",
      )
      : fact("per-device ops", false, `${R15}: global rk_ops until 414cb6f3ac62`, "verified"),
    dmaDev: atLeast(r, 6, 15)
      ? fact("table dma_dev", "per-domain", `${R19}: dcde1c4aa7ce (v6.15)`, "verified")
      : fact(
        "table dma_dev",
        "global-first-probed",
        `${R16}: global dma_dev before v6.15`,
        "verified",
      ),
    allocCall: atLeast(r, 6, 16)
      ? fact("table allocation call", "iommu_alloc_pages_sz", `${R16} (v6.16+)`, "reported")
      : atLeast(r, 6, 10)
      ? fact(
        "table allocation call",
        "iommu_alloc_page",
        `${R16}: 5404ccaaff35 (v6.10)`,
        "reported",
      )
      : fact("table allocation call", "get_zeroed_page", `${R16} (up to v6.9)`, "verified"),
    autoGatingBit31: atLeast(r, 7, 2)
      ? fact("AUTO_GATING bit 31", true, `${R19}: 8d4346ecd495 merged for 7.2-rc1`, "reported")
      : fact(
        "AUTO_GATING bit 31",
        false,
        `${R19}: 8d4346ecd495 first in 7.2`,
        "reported",
        "stable queues 5.10…7.2 took it in Sep 2026; older stable points lack it",
      ),
    patches: [],
  };
}
