/**
 * Serial benchmarks on real pseudo terminals.
 *
 * - Framed command round trip (`run("true")`) against dash on a pty: the framed shell on
 *   the pty master directly, and through the Deno serialport binding (the shell's pty and
 *   the binding's pty joined by an in-process relay, the QEMU console path).
 * - Raw throughput through the binding and `SerialPortStream`, both directions, with a
 *   checksum (zero loss required). Pseudo terminals ignore the baud rate, so the unpaced
 *   rate is what the software path can carry; a paced run at 150 000 B/s (1 500 000 baud
 *   8N1 on the wire) checks for loss at the ROCK 3B UART's rate.
 *
 * `deno run -A bench/serial_bench.ts` writes bench/results/serial.json;
 * `deno bench -A bench/serial_bench.ts` runs the round trips as Deno benchmarks.
 *
 * @module
 */

import { stats } from "./stats.ts";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { SerialPortStream } from "@serialport/stream";
import { DenoSerialBinding, HANGUP, openPty, type TtyFd } from "../runner/serial/deno_binding.ts";
import { openSerialConsole, TtyConsole } from "../runner/serial/port.ts";
import { FramedShell } from "../runner/shell/framed.ts";
import { ensureHostTool, hostCommand } from "../runner/debian/host_tools.ts";

interface ShellRig {
  shell: FramedShell;
  done(): Promise<void>;
}

async function spawnOnPty(slavePath: string): Promise<Deno.ChildProcess> {
  await ensureHostTool("dash");
  return (await hostCommand("sh", {
    args: [
      "-c",
      'p="$1"; shift; exec setsid -c "$@" <>"$p" >&0 2>&1',
      "sh",
      slavePath,
      "dash",
      "-i",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  })).spawn();
}

/** dash on a pty, the framed shell on its master. */
async function directRig(): Promise<ShellRig> {
  const pty = openPty();
  const child = await spawnOnPty(pty.slavePath);
  await pty.slave.close();
  const shell = await FramedShell.start(new TtyConsole(pty.master), { quietMs: 150 });
  return {
    shell,
    async done() {
      await shell.close();
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

async function pipe(from: TtyFd, to: TtyFd): Promise<void> {
  const buf = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === HANGUP) return;
      await to.write(buf.subarray(0, n));
    }
  } catch { /* closed */ }
}

/** dash on pty A; pty A master <-> pty B master relay; the binding opens pty B's slave. */
async function bindingRig(): Promise<ShellRig> {
  const a = openPty(), b = openPty();
  const child = await spawnOnPty(a.slavePath);
  await a.slave.close();
  const relays = [pipe(a.master, b.master), pipe(b.master, a.master)];
  const con = await openSerialConsole({ path: b.slavePath, baudRate: 1_500_000 });
  const shell = await FramedShell.start(con, { quietMs: 150 });
  return {
    shell,
    async done() {
      await shell.close();
      child.kill("SIGKILL");
      await child.status;
      await a.master.close();
      await b.master.close();
      await b.slave.close();
      await Promise.all(relays);
    },
  };
}

async function roundTrips(rig: ShellRig, n: number): Promise<number[]> {
  for (let i = 0; i < 10; i++) await rig.shell.run("true");
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await rig.shell.run("true");
    out.push(performance.now() - t0);
    if (r.exitStatus !== 0) throw new Error("bench: true failed");
  }
  return out;
}

function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * Sends `n` bytes master -> binding and binding -> master at once; `paceBytesPerSec`
 * limits each direction's sender. Returns per-direction rates and loss.
 */
async function throughput(n: number, paceBytesPerSec?: number) {
  const pty = openPty();
  const port = await new Promise<SerialPortStream>((resolve, reject) => {
    const s = new SerialPortStream(
      { binding: DenoSerialBinding, path: pty.slavePath, baudRate: 1_500_000 },
      (e) => e ? reject(e) : resolve(s),
    );
  });
  const down = pattern(n), up = pattern(n).reverse();
  const chunk = 4096;
  const paced = async (send: (b: Uint8Array) => Promise<void>, data: Uint8Array) => {
    const t0 = performance.now();
    for (let off = 0; off < data.length; off += chunk) {
      await send(data.subarray(off, off + chunk));
      if (paceBytesPerSec) {
        const due = t0 + ((off + chunk) / paceBytesPerSec) * 1000;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
  };
  const t0 = performance.now();
  const received: Buffer[] = [];
  let got = 0;
  let tDown = 0;
  const allDown = new Promise<void>((resolve) =>
    port.on("data", (b: Buffer) => {
      received.push(b);
      got += b.length;
      if (got >= n) {
        tDown = performance.now() - t0;
        resolve();
      }
    })
  );
  const atMaster = new Uint8Array(n);
  let tUp = 0;
  const upRead = (async () => {
    let g = 0;
    while (g < n) {
      const r = await pty.master.read(atMaster, g, Math.min(65536, n - g));
      if (r === HANGUP) break;
      g += r;
    }
    tUp = performance.now() - t0;
    return g;
  })();
  const sendUp = (b: Uint8Array) =>
    new Promise<void>((resolve, reject) =>
      port.write(Buffer.from(b), (e) => e ? reject(e) : resolve())
    );
  await Promise.all([
    paced((b) => pty.master.write(b), down),
    paced(sendUp, up),
    allDown,
    upRead,
  ]);
  const rx = Buffer.concat(received);
  await new Promise<void>((r) => port.close(() => r()));
  await pty.master.close();
  await pty.slave.close();
  return {
    bytesEachWay: n,
    paceBytesPerSec: paceBytesPerSec ?? null,
    toHostBytesPerSec: Math.round(n / (tDown / 1000)),
    toDeviceBytesPerSec: Math.round(n / (tUp / 1000)),
    lostToHost: n - rx.length,
    lostToDevice: n - (await upRead),
    checksumEqualToHost: sha(rx) === sha(down),
    checksumEqualToDevice: sha(atMaster) === sha(up),
  };
}

if (import.meta.main) {
  const N = 200;
  const direct = await directRig();
  const directMs = await roundTrips(direct, N);
  await direct.done();
  const viaBinding = await bindingRig();
  const bindingMs = await roundTrips(viaBinding, N);
  await viaBinding.done();
  const raw = await throughput(16 << 20);
  const paced = await throughput(1_500_000, 150_000);
  const dash = await (await hostCommand("dpkg-query", { args: ["-W", "-f", "${Version}", "dash"] }))
    .output();
  const result = {
    benchmark: "serial",
    when: new Date().toISOString(),
    target: "dash -i under setsid -c on a Linux pseudo terminal (local)",
    environment: {
      deno: Deno.version.deno,
      serialport: "13.0.0 (@serialport/stream) with rkhil's Deno binding",
      dash: new TextDecoder().decode(dash.stdout) || "unknown",
      kernel: Deno.osRelease(),
      cpus: navigator.hardwareConcurrency,
      note: "shared host: other jobs run concurrently, so tails are noisy; pseudo terminals " +
        "ignore the baud rate (1 500 000 baud 8N1 is 150 000 B/s on a real wire)",
    },
    unit: "ms",
    framedRoundTripTrue: {
      direct: stats(directMs),
      viaSerialBindingAndRelay: stats(bindingMs),
    },
    rawThroughputUnpaced: raw,
    rawThroughputPacedAt1500000Baud: paced,
  };
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(
    new URL("./results/serial.json", import.meta.url),
    JSON.stringify(result, null, 2) + "\n",
  );
  console.log(JSON.stringify(result, null, 2));
} else {
  let direct: ShellRig | undefined;
  Deno.bench({
    name: "framed run('true') on a pty master (dash)",
    group: "framed",
    baseline: true,
    async fn(b) {
      direct ??= await directRig();
      b.start();
      await direct.shell.run("true");
      b.end();
    },
  });
  let via: ShellRig | undefined;
  Deno.bench({
    name: "framed run('true') through the serial binding + relay",
    group: "framed",
    async fn(b) {
      via ??= await bindingRig();
      b.start();
      await via.shell.run("true");
      b.end();
    },
  });
  Deno.bench({
    name: "raw 1 MiB each way through SerialPortStream (zero loss)",
    n: 5,
    async fn() {
      const r = await throughput(1 << 20);
      if (r.lostToHost || r.lostToDevice || !r.checksumEqualToHost) throw new Error("loss");
    },
  });
  globalThis.addEventListener("unload", () => {
    void direct?.done();
    void via?.done();
  });
}
