/**
 * Open a board's console as its board file says: a serial device (a USB UART, or a QEMU
 * guest's pty a lab runs) through serialport on rkhil's Deno binding, or a TCP console as
 * ser2net serves it, `raw` or `telnet`. Each failure a lab meets is one line that says what
 * to do: the device does not exist, another process holds it (an exclusive advisory lock, as
 * `screen`, `minicom` and serialport take), the console server refuses, or says the device is
 * in use.
 *
 * @module
 */

import type { LoadedBoard } from "../../boards/load.ts";
import { InfraError, RkhilError, UserInputError } from "../errors.ts";
import { type ConsoleStream, openSerialConsole, openTcpConsole } from "../serial/port.ts";
import { openTelnetConsole } from "../serial/telnet.ts";
import { shown } from "../safe_text.ts";

/** Options of {@linkcode openBoardConsole}. */
export interface BoardConsoleOptions {
  /** Capture every received byte here (plus `<logPath>.idx.jsonl`). */
  logPath?: string;
  /** Bound of the open (serial) or connect (TCP), ms. Default 5000. */
  timeoutMs?: number;
  /**
   * TCP consoles: how long to watch a fresh connection for the server hanging up at once
   * (ser2net does when the device is in use). Default 300 ms.
   */
  settleMs?: number;
  /**
   * Called with each console stream as soon as it exists, before anything else listens (a TCP
   * retry makes a new one): to keep what arrives before the caller's own listeners attach.
   */
  onOpen?: (stream: ConsoleStream) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The serial console of a board: missing and busy devices said in one line each. */
async function openSerial(
  loaded: LoadedBoard,
  device: string,
  baud: number,
  opts: BoardConsoleOptions,
): Promise<ConsoleStream> {
  const where = `serial console ${shown(device)} of board ${loaded.id}`;
  try {
    const info = await Deno.stat(device);
    if (info.isFile || info.isDirectory) {
      throw new UserInputError(
        `${where} is a ${info.isFile ? "regular file" : "directory"}, not a serial device`,
        `set console.device in ${loaded.path} to the UART (ls -l /dev/serial/by-id)`,
      );
    }
  } catch (err) {
    if (err instanceof RkhilError) throw err;
    if (err instanceof Deno.errors.NotFound) {
      throw new InfraError(
        `${where} does not exist`,
        `plug in the USB UART and check console.device in ${loaded.path} ` +
          "(ls -l /dev/serial/by-id names adapters stably)",
      );
    }
    throw new InfraError(
      `${where}: ${(err as Error).message}`,
      `check console.device in ${loaded.path} and its permissions (group dialout)`,
    );
  }
  try {
    const con = await openSerialConsole({
      path: device,
      baudRate: baud,
      logPath: opts.logPath,
      lock: true,
      openTimeoutMs: opts.timeoutMs,
    });
    opts.onOpen?.(con);
    return con;
  } catch (err) {
    const text = `${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? "")}`;
    if (/EAGAIN|locked|EBUSY|Resource temporarily unavailable/i.test(text)) {
      throw new InfraError(
        `${where} is busy: another process holds it`,
        `close the other program on ${device} (find it with: fuser -v ${device}); only one ` +
          "reader can own a console",
        { cause: err },
      );
    }
    if (err instanceof InfraError) {
      throw new InfraError(`${where}: ${err.message.split("\n")[0]}`, err.hint, { cause: err });
    }
    throw err;
  }
}

/** The TCP console of a board; a server that hangs up at once is retried, then said. */
async function openTcp(
  loaded: LoadedBoard,
  host: string,
  port: number,
  protocol: "raw" | "telnet",
  opts: BoardConsoleOptions,
): Promise<ConsoleStream> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const settleMs = opts.settleMs ?? 300;
  const deadline = Date.now() + timeoutMs;
  const label = `${protocol} console ${host}:${port} of board ${loaded.id}`;
  for (;;) {
    let con: ConsoleStream;
    try {
      const o = {
        host,
        port,
        logPath: opts.logPath, // a retry truncates it: the capture is the connection that stays
        connectTimeoutMs: Math.max(1, deadline - Date.now()),
      };
      con = protocol === "telnet" ? await openTelnetConsole(o) : await openTcpConsole(o);
      opts.onOpen?.(con);
    } catch (err) {
      if (!(err instanceof InfraError)) throw err;
      throw new InfraError(
        `${label}: ${err.message.split("\n")[0]}`,
        `check that the console server (ser2net) runs and serves port ${port} (console.host, ` +
          `console.port in ${loaded.path})`,
        { cause: err },
      );
    }
    let said = "";
    const off = con.onData((c) => (said += new TextDecoder().decode(c)));
    const closed = new Promise<void>((r) => con.onClose(() => r()));
    await Promise.race([closed, sleep(settleMs)]);
    off();
    if (!con.closed) return con;
    const why = said.trim().split("\n")[0] || "closed the connection";
    if (Date.now() + settleMs >= deadline) {
      throw new InfraError(
        `${label}: the server ${/in use/i.test(why) ? "says the device is busy" : "hung up"}: ` +
          shown(why),
        "another client or program holds the board's console on the console server; close it " +
          "(ser2net's kickolduser option lets a new client take over)",
      );
    }
    await sleep(settleMs);
  }
}

/**
 * Open the console of a board file (`console` block), capturing from the first byte into
 * `opts.logPath`.
 *
 * @throws {UserInputError} for the embedded target's `qemu-pty` (rkhil opens that itself), or a
 *   device path that is a regular file or directory.
 * @throws {InfraError} (MISS) when the device does not exist or is busy, or the console server
 *   refuses or hangs up; one line each.
 */
export async function openBoardConsole(
  loaded: LoadedBoard,
  opts: BoardConsoleOptions = {},
): Promise<ConsoleStream> {
  const c = loaded.board.console;
  switch (c.type) {
    case "serial":
      return await openSerial(loaded, c.device!, c.baud!, opts);
    case "tcp":
      return await openTcp(loaded, c.host!, c.port!, c.protocol ?? "raw", opts);
    case "qemu-pty":
      throw new UserInputError(
        `board ${loaded.id} has console.type qemu-pty: the embedded QEMU target's console`,
        "run the embedded target with rkhil run (no --board), or give the board file a " +
          "serial or tcp console",
      );
  }
}
