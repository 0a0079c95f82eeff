/**
 * The workload program on a target, through the Target protocols only (Command and
 * FileTransfer): install the bundle and the model files once, run `rkwl` with the bundle's own
 * loader, parse what it printed. A workload suite is a thin layer over these: it picks the
 * model, image and delegate, then judges (judge.ts) and records.
 *
 * @module
 */

import { InfraError } from "../errors.ts";
import type { CommandProtocol } from "../protocol/command.ts";
import type { FileTransferProtocol } from "../protocol/file_transfer.ts";
import { shellQuote } from "../ssh/client.ts";
import { BUNDLE_LOADER, bundleCommand, type WorkloadBundle } from "./build.ts";
import { modelFile, MODELS_DIR, readManifest } from "./models.ts";
import { parseRkwlOutput, type RkwlRun } from "./rkwl_output.ts";

/** The parts of a target the workload needs. */
export interface WorkloadTarget {
  /** Runs the program. */
  command: CommandProtocol;
  /** Uploads the bundle and the models; undefined on a target without SSH. */
  files: FileTransferProtocol | undefined;
}

/** Where the bundle and the models go on the target by default. */
export const REMOTE_DIR = "/tmp/rkhil-workload";

const MARKER = ".bundle-key";

function filesOf(target: WorkloadTarget): FileTransferProtocol {
  if (!target.files) {
    throw new InfraError(
      "the target has no file transfer (SSH): the workload bundle cannot be installed",
      "give the board file an ssh section",
    );
  }
  return target.files;
}

async function sh(target: WorkloadTarget, cmd: string, timeoutMs = 60_000): Promise<string> {
  const r = await target.command.run(cmd, { timeoutMs });
  if (r.exitStatus !== 0) {
    throw new InfraError(
      `\`${cmd}\` on the target exited ${r.exitStatus}: ${r.stdout.trim().slice(0, 300)}`,
      "check the target's free space and /tmp",
    );
  }
  return r.stdout;
}

/** SHA-256 of files on the target (`sha256sum`), missing ones left out. */
async function remoteSums(target: WorkloadTarget, paths: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (paths.length === 0) return out;
  const r = await target.command.run(`sha256sum ${paths.map(shellQuote).join(" ")} 2>/dev/null`, {
    timeoutMs: 120_000,
  });
  for (const line of r.stdout.split("\n")) {
    const m = line.match(/^([0-9a-f]{64})\s+(.+)$/);
    if (m) out.set(m[2], m[1]);
  }
  return out;
}

/**
 * Install the bundle under `dir/bundle-<key>` unless that exact bundle is already there (its
 * key file is written last). Returns the remote bundle directory.
 *
 * @throws {InfraError} (MISS) no file transfer, a failed upload or a checksum mismatch.
 */
export async function installBundle(
  target: WorkloadTarget,
  bundle: WorkloadBundle,
  dir: string = REMOTE_DIR,
): Promise<string> {
  const files = filesOf(target);
  const root = `${dir}/bundle-${bundle.key.slice(0, 16)}`;
  const have = await target.command.run(`cat ${shellQuote(`${root}/${MARKER}`)} 2>/dev/null`);
  if (have.exitStatus === 0 && have.stdout.trim() === bundle.key) return root;
  const dirs = [...new Set(bundle.files.map((f) => f.path.split("/").slice(0, -1).join("/")))];
  await sh(target, `mkdir -p ${dirs.map((d) => shellQuote(d ? `${root}/${d}` : root)).join(" ")}`);
  for (const f of bundle.files) {
    await files.upload(`${bundle.dir}/${f.path}`, `${root}/${f.path}`, {
      mode: f.path === "rkwl" || f.path === `lib/${BUNDLE_LOADER}` ? 0o755 : 0o644,
      timeoutMs: 300_000,
    });
  }
  await files.upload(new TextEncoder().encode(`${bundle.key}\n`), `${root}/${MARKER}`);
  return root;
}

/**
 * Upload vendored model files (manifest paths, checked on the host first) to `dir/models/`,
 * skipping those whose SHA-256 on the target already matches. Returns manifest path → remote
 * path.
 */
export async function installModels(
  target: WorkloadTarget,
  paths: string[],
  dir: string = REMOTE_DIR,
): Promise<Map<string, string>> {
  const files = filesOf(target);
  const remote = new Map(paths.map((p) => [p, `${dir}/models/${p}`]));
  const sums = await remoteSums(target, [...remote.values()]);
  const manifest = new Map((await readManifest()).map((e) => [e.path, e.sha256]));
  const dirs = [...new Set([...remote.values()].map((r) => r.slice(0, r.lastIndexOf("/"))))];
  await sh(target, `mkdir -p ${dirs.map(shellQuote).join(" ")}`);
  for (const [p, r] of remote) {
    const host = await modelFile(p, MODELS_DIR);
    if (sums.get(r) === manifest.get(p)) continue;
    await files.upload(host, r, { timeoutMs: 300_000 });
  }
  return remote;
}

/** One run of rkwl on a target. */
export interface TargetRun {
  /** The parsed output. */
  run: RkwlRun;
  /** The command's exit status. */
  exitStatus: number;
  /** Its whole output (stdout and stderr merged, as the Command protocol gives it). */
  output: string;
  /** The command line that ran. */
  command: string;
  /** Wall time of the command in milliseconds. */
  durationMs: number;
  /** Kernel console lines that arrived meanwhile (evidence for the oracle's verdict). */
  kernelLines: string[];
}

/**
 * Run rkwl from an installed bundle with `args` (paths on the target).
 *
 * @throws what the Command protocol throws (MISS on a lost target, FAIL on a kernel fault).
 */
export async function runOnTarget(
  target: WorkloadTarget,
  remoteBundle: string,
  args: readonly string[],
  timeoutMs = 600_000,
): Promise<TargetRun> {
  const command = bundleCommand(remoteBundle, args).map(shellQuote).join(" ");
  const r = await target.command.run(command, { timeoutMs });
  return {
    run: parseRkwlOutput(r.stdout),
    exitStatus: r.exitStatus,
    output: r.stdout,
    command,
    durationMs: r.durationMs,
    kernelLines: r.kernelLines,
  };
}
