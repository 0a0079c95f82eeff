/**
 * SSH transport costs against a local dropbear on loopback (runner/ssh on ssh2):
 * connect (TCP + handshake + auth), an exec channel round trip (`true`), and round trips
 * over one persistent shell channel (a shell `echo`, and raw echo-through `cat`).
 *
 *   deno run -A bench/ssh_bench.ts [iterations]   # writes bench/results/ssh.json
 *   deno bench -A bench/ssh_bench.ts              # Deno.bench view of the same cases
 *
 * Needs root and dropbear (see runner/ssh/test_servers.ts); otherwise it says why and
 * does nothing.
 *
 * @module
 */
import { stats } from "./stats.ts";
import { connect, type ConnectOptions, type SshSession } from "../runner/ssh/client.ts";
import type { ByteDuplex } from "../runner/protocol/byte_duplex.ts";
import {
  serverSkipReason,
  startDropbear,
  testClientKey,
  type TestServer,
} from "../runner/ssh/test_servers.ts";
import { hostCommand } from "../runner/debian/host_tools.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function options(server: TestServer): Promise<ConnectOptions> {
  const key = await testClientKey();
  return {
    host: server.host,
    port: server.port,
    user: server.user,
    hostKeyFingerprint: server.hostKeyFingerprint,
    privateKey: key.privateKey,
    connectTimeoutMs: 10_000,
  };
}

/** Write `line`, read until `expect` has arrived. */
async function roundTrip(ch: ByteDuplex, line: string, expect: string): Promise<void> {
  await ch.write(enc.encode(line));
  let acc = "";
  while (!acc.includes(expect)) {
    const chunk = await ch.read();
    if (chunk === null) throw new Error("shell channel closed");
    acc += dec.decode(chunk);
  }
}

async function time(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function toolVersion(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await (await hostCommand(cmd, { args, stdout: "piped", stderr: "piped" })).output();
    return (dec.decode(out.stdout) + dec.decode(out.stderr)).split("\n")[0].trim();
  } catch {
    return "unknown";
  }
}

async function runScript(iterations: number): Promise<void> {
  const skip = serverSkipReason("dropbear");
  if (skip) {
    console.error(`ssh bench skipped: ${skip}`);
    return;
  }
  const server = await startDropbear();
  const sessions: SshSession[] = [];
  try {
    const opts = await options(server);
    // Warm-up (JIT, ssh2 crypto init).
    const warm = await connect(opts);
    await warm.exec("true");
    await warm.close();

    const connectMs: number[] = [];
    for (let i = 0; i < iterations; i++) {
      let s: SshSession | null = null;
      connectMs.push(
        await time(async () => {
          s = await connect(opts);
        }),
      );
      await (s as SshSession | null)?.close();
    }

    const s = await connect(opts);
    sessions.push(s);
    const execMs: number[] = [];
    for (let i = 0; i < iterations; i++) {
      execMs.push(
        await time(async () => {
          const r = await s.exec("true");
          if (r.exitStatus !== 0) throw new Error("true failed");
        }),
      );
    }

    const sh = await s.shellChannel();
    await roundTrip(sh, "echo ready\n", "ready\n");
    const shellEchoMs: number[] = [];
    for (let i = 0; i < iterations; i++) {
      shellEchoMs.push(await time(() => roundTrip(sh, `echo r${i}\n`, `r${i}\n`)));
    }
    await sh.close();

    const cat = await s.shellChannel();
    await roundTrip(cat, "exec cat\n", "");
    await roundTrip(cat, "ping\n", "ping\n");
    const catMs: number[] = [];
    for (let i = 0; i < iterations; i++) {
      catMs.push(await time(() => roundTrip(cat, `c${i}\n`, `c${i}\n`)));
    }
    await cat.close();

    const result = {
      benchmark: "ssh",
      when: new Date().toISOString(),
      target: "dropbear on 127.0.0.1 (host key ed25519, client key ed25519)",
      environment: {
        deno: Deno.version.deno,
        ssh2: "1.17.0",
        server: await toolVersion("/usr/sbin/dropbear", ["-V"]),
        cpus: navigator.hardwareConcurrency,
        note: "shared host: other jobs run concurrently, so tails are noisy",
      },
      iterations,
      unit: "ms",
      connect: stats(connectMs),
      execRoundTrip: stats(execMs),
      shellEchoRoundTrip: stats(shellEchoMs),
      shellCatEchoThrough: stats(catMs),
    };
    await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
    const out = new URL("./results/ssh.json", import.meta.url);
    await Deno.writeTextFile(out, JSON.stringify(result, null, 2) + "\n");
    console.log(JSON.stringify(result, null, 2));
    console.log(`written to ${out.pathname}`);
  } finally {
    for (const s of sessions) await s.close();
    await server.stop();
  }
}

if (import.meta.main) {
  await runScript(Number(Deno.args[0] ?? 50));
} else if (serverSkipReason("dropbear") === null) {
  // `deno bench`: one server and one session for all cases; stopped when the process ends.
  const server = await startDropbear();
  globalThis.addEventListener("unload", () => server.stopSync());
  const opts = await options(server);
  const s = await connect(opts);
  const sh = await s.shellChannel();
  await roundTrip(sh, "echo ready\n", "ready\n");
  let i = 0;
  Deno.bench("ssh connect + close (dropbear, loopback)", async () => {
    await (await connect(opts)).close();
  });
  Deno.bench("ssh exec round trip `true`", async () => {
    await s.exec("true");
  });
  Deno.bench("ssh shell channel `echo` round trip", async () => {
    i++;
    await roundTrip(sh, `echo r${i}\n`, `r${i}\n`);
  });
}
