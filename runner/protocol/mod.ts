/**
 * The protocols a target offers (as labgrid's, in rkhil's shape) and the Target interface:
 * Console, Command, FileTransfer, Power and Boot, one definition each.
 *
 * @module
 */
export type { ByteDuplex } from "./byte_duplex.ts";
export type { ConsoleProtocol } from "./console.ts";
export type { CommandOptions, CommandProtocol, CommandResult, Via } from "./command.ts";
export type { FileTransferProtocol, TransferOptions, TransferResult } from "./file_transfer.ts";
export type { PowerKind, PowerProtocol } from "./power.ts";
export type { BootProtocol, BootStage, BootWaitOptions } from "./boot.ts";
export type { BootTimes, ReadyOptions, Target, TargetState, Transition } from "./target.ts";
