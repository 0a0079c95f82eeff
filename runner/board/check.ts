/**
 * `rkhil boards --check ID`: reach a board through its board file and report each protocol's
 * health in one line: console (opened, bytes seen), power (adapter kind, whether it answered),
 * SSH (connected, pinned host key matched, `uname -r`), command (over SSH exec and over the
 * serial console), file transfer (a round trip of random bytes checked by SHA-256 both ways).
 * The board is powered on if it is off (a lab guest, a board on a relay) but never
 * power-cycled unless asked (`powerCycle`).
 *
 * @module
 */

import { join } from "node:path";
import type { LoadedBoard } from "../../boards/load.ts";
import { RkhilError, UserInputError } from "../errors.ts";
import type { PowerProtocol } from "../protocol/power.ts";
import { DriverTarget } from "../target/target.ts";
import { escapeControls } from "../safe_text.ts";
import { HostKeyError } from "../ssh/classify.ts";
import { BoardDriver, checkBoardTarget } from "./target.ts";

/** Protocols `boards --check` reports, in order. */
export const CHECKED_PROTOCOLS = ["console", "power", "ssh", "command", "files"] as const;
/** A protocol `boards --check` reports. */
export type CheckedProtocol = typeof CHECKED_PROTOCOLS[number];

/** One protocol's health. */
export interface ProtocolHealth {
  /** The protocol. */
  protocol: CheckedProtocol;
  /** `ok`, `failed`, or `skipped` (not in the board file, or not reached). */
  status: "ok" | "failed" | "skipped";
  /** One line: what was seen, or why it failed. */
  detail: string;
}

/** Options of {@linkcode checkBoard}. */
export interface CheckOptions {
  /** Where the check's console logs go. */
  runDir: string;
  /** Power-cycle the board through its adapter and watch the boot on the console. */
  powerCycle?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Environment (login password). */
  env?: { get(name: string): string | undefined };
}

/** What a power adapter did, recorded by {@linkcode recordPower}. */
interface PowerRecord {
  action: string;
  ms: number;
  error?: string;
}

/** Wrap `p` so every action is recorded (timing, error) into `log`. */
function recordPower(p: PowerProtocol, log: PowerRecord[]): void {
  for (const action of ["on", "off", "cycle"] as const) {
    const orig = p[action].bind(p);
    p[action] = async () => {
      const t0 = performance.now();
      try {
        await orig();
        log.push({ action, ms: performance.now() - t0 });
      } catch (err) {
        log.push({ action, ms: performance.now() - t0, error: (err as Error).message });
        throw err;
      }
    };
  }
}

const firstLine = (err: unknown) =>
  escapeControls(String((err as Error)?.message ?? err).split("\n")[0], false);

/**
 * Reach `loaded` and report each protocol's health.
 *
 * @throws {UserInputError} before anything starts when the board file cannot run as a board
 *   target (see `checkBoardTarget`).
 */
export async function checkBoard(
  loaded: LoadedBoard,
  opts: CheckOptions,
): Promise<ProtocolHealth[]> {
  await checkBoardTarget(loaded, { env: opts.env });
  const driver = await BoardDriver.create(loaded, { runDir: opts.runDir, env: opts.env });
  const powerLog: PowerRecord[] = [];
  recordPower(driver.power, powerLog);
  const target = new DriverTarget(driver, { log: opts.log });
  const out = new Map<CheckedProtocol, ProtocolHealth>();
  const set = (protocol: CheckedProtocol, status: ProtocolHealth["status"], detail: string) =>
    out.set(protocol, { protocol, status, detail });
  const b = loaded.board;
  try {
    // Console first: it must be open before power on to see the boot.
    let con;
    try {
      con = await driver.openConsole();
    } catch (err) {
      set("console", "failed", firstLine(err));
    }
    let readyErr: unknown;
    if (con) {
      try {
        await target.ready();
        if (opts.powerCycle) await target.reboot();
      } catch (err) {
        readyErr = err;
      }
      const seen = con.stream.bytesReceived;
      const banner = /Booting Linux on physical CPU/.test(con.recorder.text);
      // Never switched on: every on (or cycle) failed.
      const powerFailed = powerLog.some((r) => r.error) &&
        !powerLog.some((r) => !r.error && r.action !== "off");
      set(
        "console",
        seen > 0 ? "ok" : powerFailed ? "skipped" : "failed",
        `${b.console.type === "tcp" ? `tcp ${b.console.protocol}` : "serial"} ` +
          `${con.stream.name} opened, ` +
          `${seen} bytes seen${banner ? ", kernel boot seen from its first line" : ""}` +
          (target.state === "off" ? "" : ", shell prompt reached") +
          (seen === 0 && powerFailed ? " (the board was not switched on)" : ""),
      );
    }
    const kind = driver.power.kind;
    const failed = powerLog.find((r) => r.error);
    if (failed) set("power", "failed", `${kind}: ${failed.action} failed: ${failed.error}`);
    else if (powerLog.length > 0) {
      set(
        "power",
        "ok",
        `${kind}: ` + powerLog.map((r) => `${r.action} answered in ${(r.ms / 1000).toFixed(1)} s`)
          .join(", ") +
          (opts.powerCycle ? "" : " (not cycled: --power-cycle to cycle)"),
      );
    } else set("power", con ? "failed" : "skipped", `${kind}: not used`);

    if (!b.ssh) set("ssh", "skipped", "no ssh in the board file");
    else if (target.state === "ready") {
      set(
        "ssh",
        "ok",
        `${b.ssh.user}@${b.ssh.host}:${b.ssh.port} connected, host key ` +
          `${b.ssh.host_key_fingerprint} matched, uname -r ${target.release}`,
      );
    } else {
      const refused = readyErr instanceof HostKeyError ? "host key REFUSED: " : "";
      const powerBroke = powerLog.some((r) => r.error);
      set(
        "ssh",
        con && !powerBroke ? "failed" : "skipped",
        !con
          ? "not reached: the console did not open, so the board was not switched on"
          : powerBroke && !(readyErr instanceof HostKeyError)
          ? "not reached: power failed"
          : readyErr === undefined
          ? "not reached"
          : `${refused}${firstLine(readyErr)}`,
      );
    }

    if (target.state === "ready") {
      const parts: string[] = [];
      let ok = true;
      for (const via of ["ssh-exec", "serial"] as const) {
        try {
          const r = await target.command.run("echo rkhil-check; uname -m", {
            via,
            timeoutMs: 30_000,
          });
          const good = r.exitStatus === 0 && r.stdout.startsWith("rkhil-check\n");
          ok &&= good;
          parts.push(
            `${via}: exit ${r.exitStatus} in ${Math.round(r.durationMs)} ms` +
              (good
                ? ` (${r.stdout.split("\n")[1]})`
                : `, output ${JSON.stringify(r.stdout.slice(0, 40))}`),
          );
        } catch (err) {
          ok = false;
          parts.push(`${via}: ${firstLine(err)}`);
        }
      }
      set("command", ok ? "ok" : "failed", parts.join("; "));
      const files = target.files;
      if (!files) set("files", "skipped", "no file transfer (no ssh)");
      else {
        const data = crypto.getRandomValues(new Uint8Array(64 * 1024));
        const remote = `/tmp/rkhil-check-${crypto.randomUUID().slice(0, 8)}`;
        const local = join(opts.runDir, "files-check.bin");
        try {
          const up = await files.upload(data, remote);
          const down = await files.download(remote, local);
          const back = await Deno.readFile(local);
          const same = back.length === data.length && back.every((v, i) => v === data[i]);
          await target.command.run(`rm -f ${remote}`).catch(() => {});
          set(
            "files",
            same && up.sha256 === down.sha256 ? "ok" : "failed",
            `upload + download of ${data.length} bytes, sha256 ${up.sha256.slice(0, 16)}… ` +
              (same ? "equal both ways" : "DIFFERS") +
              ` (${Math.round(up.durationMs)} + ${Math.round(down.durationMs)} ms)`,
          );
        } catch (err) {
          set("files", "failed", firstLine(err));
        }
      }
    } else {
      // What kept the shell away is reported on its own line above.
      set("command", "skipped", "not reached (no shell)");
      set("files", "skipped", "not reached (no shell)");
    }
    if (readyErr instanceof UserInputError) throw readyErr;
    if (readyErr !== undefined && !(readyErr instanceof RkhilError)) throw readyErr;
  } finally {
    await target.close();
  }
  return CHECKED_PROTOCOLS.map((p) => out.get(p)!);
}

/** The report lines of a check: one per protocol, then a summary line. */
export function formatHealth(board: LoadedBoard, health: readonly ProtocolHealth[]): string[] {
  const ok = health.filter((h) => h.status === "ok").length;
  const failed = health.filter((h) => h.status === "failed").length;
  return [
    `board ${board.id} (${board.path})`,
    ...health.map((h) =>
      `${h.protocol.padEnd(8)} ${h.status.padEnd(7)} ${escapeControls(h.detail, false)}`
    ),
    failed === 0
      ? `healthy: ${ok} ok, ${health.length - ok} skipped`
      : `NOT healthy: ${failed} failed, ${ok} ok`,
  ];
}
