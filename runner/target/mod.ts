/**
 * Targets: the one implementation of the Target interface over a kind-specific driver
 * (`DriverTarget`; commands over the serial console, SSH exec channels or a framed SSH shell;
 * file transfer; the strategy to a ready shell; kernel fault classification), and reuse of
 * booted QEMU guests within a process.
 *
 * @module
 */
export { DriverTarget, type DriverTargetOptions, isInfraFailure } from "./target.ts";
export type { DriverBounds, OpenConsole, TargetDriver } from "./driver.ts";
export { VIAS } from "./commands.ts";
export { detectKernelFault, type KernelFault, KernelFaultError } from "./faults.ts";
export { acquireQemuTarget, qemuGuestKey, releaseQemuTargets } from "./pool.ts";
