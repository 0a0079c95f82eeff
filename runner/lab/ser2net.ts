/**
 * ser2net (Debian package `ser2net`, 4.x YAML configuration) serving serial devices as TCP
 * consoles, the way a lab serves its boards' UARTs: one `connection` per device, accepter
 * `tcp,127.0.0.1,PORT` (raw) or `telnet,127.0.0.1,PORT`, connector
 * `serialdev,DEVICE,BAUDn81,local`, `kickolduser` (a new client replaces an old one).
 * ser2net opens a device only while a client is connected.
 *
 * ser2net runs in the foreground under a small `sh` watchdog whose stdin is a pipe only this
 * process holds: when this process ends for any reason (SIGKILL included), the pipe closes and
 * the watchdog kills ser2net, so no server outlives its lab.
 *
 * @module
 */

import { InfraError, TimeoutError } from "../errors.ts";
import { ensureHostTool, hostCommand } from "../debian/host_tools.ts";

/** One console ser2net serves. */
export interface Ser2netPort {
  /** TCP port on 127.0.0.1. */
  port: number;
  /** Serial device (a USB UART, or a QEMU guest's pty `/dev/pts/N`). */
  device: string;
  /** Line speed (ignored by a pty). */
  baud: number;
  /** `raw` (bytes unchanged) or `telnet` (RFC 854, as ser2net's telnet accepter). */
  protocol: "raw" | "telnet";
}

/** A running ser2net. */
export interface Ser2net {
  /** The configuration file it runs with. */
  readonly configPath: string;
  /** Stop ser2net (and its watchdog) and wait for it. Idempotent; never throws. */
  stop(): Promise<void>;
}

/** The ser2net 4 YAML configuration for `ports`. */
export function ser2netConfig(ports: readonly Ser2netPort[]): string {
  const lines = ["%YAML 1.1", "---"];
  for (const p of ports) {
    if (!/^\/[^\s,]+$/.test(p.device)) {
      throw new InfraError(
        `ser2net cannot serve ${JSON.stringify(p.device)}`,
        "use a device path without spaces or commas",
      );
    }
    lines.push(
      `connection: &con${p.port}`,
      `  accepter: ${p.protocol === "telnet" ? "telnet" : "tcp"},127.0.0.1,${p.port}`,
      `  connector: serialdev,${p.device},${p.baud}n81,local`,
      "  options:",
      "    kickolduser: true",
    );
  }
  return lines.join("\n") + "\n";
}

/** The watchdog: $1 = config file; ser2net dies when our end of stdin closes. */
const WATCHDOG = [
  "exec 3<&0",
  'ser2net -n -c "$1" -P "$1.pid" </dev/null 3<&- &',
  "s=$!",
  "( while read -r _ <&3; do :; done; kill $s 2>/dev/null ) &",
  "w=$!",
  "exec 3<&-",
  "wait $s; rc=$?",
  "kill $w 2>/dev/null",
  "exit $rc",
].join("\n");

async function accepts(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Start ser2net serving `ports`, writing its configuration and log into `dir`, and wait (at
 * most `timeoutMs`, default 10 s) until every port accepts connections. Installs ser2net with
 * apt-get when it is missing (runner/debian/host_tools.ts).
 *
 * @throws {InfraError} when ser2net exits early (its log's last lines in the message).
 * @throws {TimeoutError} when a port does not accept within the bound.
 */
export async function startSer2net(
  dir: string,
  ports: readonly Ser2netPort[],
  timeoutMs = 10_000,
): Promise<Ser2net> {
  await ensureHostTool("ser2net");
  await Deno.mkdir(dir, { recursive: true });
  const configPath = `${dir}/ser2net.yaml`;
  await Deno.writeTextFile(configPath, ser2netConfig(ports));
  const logPath = `${dir}/ser2net.log`;
  const log = await Deno.open(logPath, { write: true, create: true, truncate: true });
  const child = (await hostCommand("sh", {
    args: ["-c", WATCHDOG, "rkhil-ser2net-watchdog", configPath],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  })).spawn();
  const copy = (s: ReadableStream<Uint8Array>) =>
    s.pipeTo(
      new WritableStream({ write: (c) => void log.write(c).catch(() => {}) }),
    ).catch(() => {});
  const copied = Promise.all([copy(child.stdout), copy(child.stderr)]);
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => (exited = s));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await child.stdin.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 3_000);
    await status;
    clearTimeout(timer);
    await copied;
    try {
      log.close();
    } catch { /* closed */ }
  };
  const deadline = Date.now() + timeoutMs;
  for (const p of ports) {
    while (!(await accepts(p.port))) {
      if (exited || Date.now() > deadline) {
        await stop();
        const text = await Deno.readTextFile(logPath).catch(() => "");
        const last = text.trim().split("\n").slice(-3).join(" | ");
        if (exited) {
          throw new InfraError(
            `ser2net exited with status ${exited.code}: ${last}`,
            `check ${configPath} and ${logPath}`,
          );
        }
        throw new TimeoutError(
          `ser2net port ${p.port}`,
          timeoutMs,
          `ser2net did not listen on 127.0.0.1:${p.port}; see ${logPath} (${last})`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { configPath, stop };
}
