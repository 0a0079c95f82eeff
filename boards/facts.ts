/**
 * Turn a validated board file into the `BoardFacts` the oracle takes.
 *
 * @module
 */
import type { BoardFacts } from "../oracle/scenario.ts";
import type { BoardSpec } from "./schema.ts";

/** The oracle's view of a board: memory map and default IOMMU nodes, with provenance. */
export function boardFacts(board: BoardSpec, path: string): BoardFacts {
  return {
    id: board.id,
    name: board.name,
    soc: board.soc,
    banks: board.ram.banks.map((b) => ({ start: b.start, end: b.end })),
    ramSource: `${path}: ${board.ram.source}`,
    ramConfidence: board.ram.confidence,
    iommus: board.devicetree.iommus.map((n) => ({
      unit: n.unit,
      label: n.label,
      compatible: [...n.compatible],
      status: n.status,
      properties: [...(n.properties ?? [])],
      source: `${path}: ${board.devicetree.source}` + (n.note ? ` (${n.note})` : ""),
      confidence: n.confidence ?? board.devicetree.confidence,
    })),
  };
}
