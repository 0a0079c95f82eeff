/**
 * Target sessions: run commands on a booted target over the serial console, SSH exec
 * channels or a framed SSH shell, upload, reboot, kernel fault classification, and reuse of
 * booted QEMU guests within a process.
 *
 * @module
 */
export {
  isInfraFailure,
  type TargetRunOptions,
  type TargetRunResult,
  TargetSession,
  type TargetSessionOptions,
  type Via,
  VIAS,
} from "./session.ts";
export { detectKernelFault, type KernelFault, KernelFaultError } from "./faults.ts";
export { acquireQemuSession, qemuGuestKey, releaseQemuSessions } from "./pool.ts";
