/**
 * Live introspection of the running kernel's rockchip-iommu driver (DESIGN.md boundary 2):
 * BTF, kallsyms and /proc/kcore parsers, the driver introspection and its comparison with the
 * knowledge base, and the `rkhil facts` command. See README.md.
 *
 * @module
 */
export {
  type Btf,
  BtfError,
  type BtfType,
  findEnumerator,
  layoutOf,
  parseBtf,
  resolveModifiers,
  type StructLayout,
  structLayout,
  typeName,
  typeSize,
} from "./btf.ts";
export {
  Kcore,
  KcoreError,
  type KcoreSegment,
  parseKcoreHeader,
  type ReadRanges,
  scanKcoreStrings,
  sshKcoreReader,
  vaddrToOffset,
} from "./kcore.ts";
export { type Kallsyms, KallsymsError, type KSym, parseKallsyms } from "./kallsyms.ts";
export { decodeGfp, gfpBitsFromBtf, type GfpTable, gfpTableFromTraceFormat } from "./gfp.ts";
export {
  compareDriverWithKb,
  type DriverComparison,
  type DriverFinding,
  type DriverIntrospection,
  introspectDriver,
  type IntrospectedOps,
  IntrospectError,
  type IntrospectOptions,
} from "./driver.ts";
export { type FactsResult, renderFacts, runFacts } from "./facts_cmd.ts";
