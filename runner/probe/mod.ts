/**
 * The probe kernel module: cross build per Debian arm64 kernel ABI, guest runs, report parser.
 * Module sources and the report format: target/probe/ (README.md).
 *
 * @module
 */
export {
  type BuildOptions,
  buildProbeModule,
  type ProbeModule,
  probeSourceHash,
  vermagicOf,
} from "./build.ts";
export {
  type CrossToolchain,
  type KernelCompiler,
  kernelCompiler,
  prepareToolchain,
} from "./toolchain.ts";
export { hostArchApt, hostDebArch } from "./host_apt.ts";
export {
  insmodArgs,
  type ProbeMapping,
  type ProbeParams,
  type ProbeRun,
  runProbe,
  type Shell,
  sshShell,
} from "./run.ts";
export {
  directoryTable,
  pageTableOf,
  parseProbeReport,
  parseProbeReports,
  type Placement,
  PROBE_REPORT_VERSION,
  type ProbeDevice,
  type ProbeEncoding,
  type ProbeLeak,
  type ProbeMap,
  type ProbePage,
  type ProbeReport,
  ProbeReportError,
  type ProbeTable,
  type ProbeWalk,
  walkOf,
  type WalkResult,
} from "./report.ts";
