/**
 * Suite `driver`: the kernel's facts, the running `rockchip-iommu` driver read from the kernel
 * itself (BTF, kallsyms, /proc/kcore) against the driver knowledge base, and the oracle's memory
 * model (zones, SWIOTLB, CMA) against what the kernel printed. Needs `kernel-introspection`.
 *
 * @module
 */
import { isKnownRelease, mainlineFacts, parseRelease } from "../oracle/releases.ts";
import { InfraError } from "../runner/errors.ts";
import { compareWithModel, predictMemory } from "../runner/facts/collect.ts";
import { compareDriverWithKb, introspectDriver } from "../runner/introspect/driver.ts";
import { commandOf } from "../runner/suite/target_io.ts";
import type { StepOutcome, Suite } from "../runner/suite/types.ts";

function notInKb(release: string): StepOutcome {
  return { verdict: "SKIP", reason: `release ${release} is not in the driver knowledge base` };
}

/** The `driver` suite. */
export const suite: Suite = {
  name: "driver",
  description:
    "kernel facts; the running rockchip-iommu driver vs the knowledge base; the oracle's memory model vs the kernel",
  requires: ["kernel-introspection"],
  predict({ release }) {
    const rel = parseRelease(release);
    if (!rel || !isKnownRelease(rel)) {
      return { release, knowledgeBase: null, note: "release not in the driver knowledge base" };
    }
    return { release, knowledgeBase: mainlineFacts(rel) as unknown as Record<string, unknown> };
  },
  steps: () => [
    {
      name: "facts",
      run: async (ctx) => {
        const facts = await ctx.facts();
        const have =
          Object.entries(facts).filter(([, v]) => v && typeof v === "object" && "provenance" in v)
            .length;
        return {
          verdict: facts.release ? "PASS" : "ERROR",
          reason: facts.release ? undefined : "the kernel release could not be read",
          details: {
            summary: `${have} facts, ${facts.missing.length} missing`,
            missing: facts.missing,
            problems: facts.problems,
            zones: facts.zones?.value,
            swiotlb: facts.swiotlb?.value,
            cmdline: facts.cmdline?.value.raw,
          },
        };
      },
    },
    {
      name: "oracle/driver",
      run: async (ctx) => {
        const rel = parseRelease(ctx.release);
        if (!rel || !isKnownRelease(rel)) return notInKb(ctx.release);
        const intro = await introspectDriver(commandOf(ctx.target));
        const c = compareDriverWithKb(intro, mainlineFacts(rel));
        return {
          verdict: c.findings.length ? "FAIL" : "PASS",
          reason: c.findings.length
            ? `the running driver differs from the knowledge base: ${
              c.findings.map((f) =>
                `${f.compatible ? `${f.compatible} ` : ""}${f.fact}: kernel ${
                  JSON.stringify(f.measured)
                }, knowledge base ${JSON.stringify(f.kb)}`
              ).join("; ")
            }`
            : undefined,
          details: {
            summary: c.findings.length
              ? `DISAGREE: ${c.findings.map((f) => f.fact).join(", ")}`
              : `agree (${c.agreed.length} facts)`,
            agreed: c.agreed,
            findings: c.findings,
          },
        };
      },
    },
    {
      name: "oracle/memory",
      run: async (ctx) => {
        const facts = await ctx.facts().catch((err) => {
          throw new InfraError(
            `no kernel facts: ${(err as Error).message}`,
            "see the facts result",
          );
        });
        const p = predictMemory(facts);
        if (!p.ok) {
          return { verdict: "SKIP", reason: p.reason, details: { summary: "inconclusive" } };
        }
        const c = compareWithModel(facts, p.summary);
        return {
          verdict: c.findings.length ? "FAIL" : "PASS",
          reason: c.findings.length
            ? `the oracle's memory model disagrees with the kernel: ${
              c.findings.map((f) =>
                `${f.fact} predicted ${JSON.stringify(f.predicted)}, measured ${
                  JSON.stringify(f.measured)
                }`
              ).join("; ")
            }`
            : undefined,
          details: {
            summary: c.findings.length
              ? `DISAGREE: ${c.findings.map((f) => f.fact).join(", ")}`
              : `agree (${c.agreed.length} facts)`,
            ...c,
            assumptions: p.assumptions,
          },
        };
      },
    },
  ],
};
