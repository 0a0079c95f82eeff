/**
 * Real SSH servers on loopback for the tests of runner/ssh: dropbear (no SFTP subsystem,
 * like the QEMU initramfs and many board images) and OpenSSH's sshd (SFTP, TCP forwarding
 * for jump-host tests). Each server gets its own temporary directory with a fresh host key
 * and authorized_keys, and every process a test starts is stopped by `stop()`.
 *
 * dropbear 2022.83 has no option for the authorized_keys path: it reads
 * `~user/.ssh/authorized_keys`. So the server runs in a private mount namespace
 * (`unshare -m`) where a temporary home is bind-mounted over the real one: the host's
 * ~/.ssh is never touched. That needs root (or CAP_SYS_ADMIN); `serverSkipReason()` says
 * why the tests cannot run elsewhere.
 *
 * @module
 */
import { userInfo } from "node:os";
import { type ClientKey, ensureClientKey } from "./keys.ts";
import { fingerprintOfPublicKeyLine } from "./fingerprint.ts";
import { freePort } from "../qemu/machine.ts";
import { ensureHostTools, hostCommand } from "../debian/host_tools.ts";
import { run } from "../debian/proc.ts";
export { freePort };

/** A running test server. */
export interface TestServer {
  readonly kind: "dropbear" | "sshd";
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Pinned fingerprint of the server's host key. */
  readonly hostKeyFingerprint: string;
  /** PID of the listening server process. */
  readonly pid: number;
  /** Restart on the same port with the same host key (after `kill()`). */
  restart(): Promise<void>;
  /** SIGKILL the listener and every session process it forked (a "power cut"). */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT the whole server tree (a hung target: TCP stays up, nothing answers). */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Stop everything and remove the temporary directory. Idempotent. */
  stop(): Promise<void>;
  /** `stop()` for an unload handler: SIGKILL the tree, remove the directory, synchronously. */
  stopSync(): void;
  /** Server stderr so far (for failing-test diagnostics). */
  log(): string;
}

/**
 * Why real-server tests cannot run on this machine, or null when they can: they need root. A
 * missing server program is not a reason: {@linkcode startDropbear} and {@linkcode startSshd}
 * install it (runner/debian/host_tools.ts).
 */
export function serverSkipReason(_kind: "dropbear" | "sshd"): string | null {
  if (Deno.uid() !== 0) return "needs root (private mount namespace / sshd privilege separation)";
  return null;
}

/** The shared client key for tests (generated once per test process in a temp dir). */
let testKey: Promise<ClientKey> | null = null;
export function testClientKey(): Promise<ClientKey> {
  if (!testKey) {
    testKey = Deno.makeTempDir({ prefix: "rkhil-ssh-key-" }).then((d) => {
      globalThis.addEventListener("unload", () => {
        try {
          Deno.removeSync(d, { recursive: true });
        } catch { /* already gone */ }
      });
      return ensureClientKey(d);
    });
  }
  return testKey;
}

/** All descendants of `pid` (children first-level and below), from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e.name));
      children.set(ppid, list);
    } catch { /* process gone */ }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** PIDs in the mount namespace `ns` (e.g. "mnt:[4026532301]"). */
function inNamespace(ns: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readLinkSync(`/proc/${e.name}/ns/mnt`) === ns) out.push(Number(e.name));
    } catch { /* gone */ }
  }
  return out;
}

/**
 * Signal the server and everything it started: its process tree, and (when it runs in a
 * private mount namespace) every process in that namespace. Session shells that were
 * re-parented to init after their connection died are caught by the second rule.
 */
function signalTree(pid: number, sig: Deno.Signal, ns: string | null = null): void {
  const pids = new Set([pid, ...descendants(pid), ...(ns ? inNamespace(ns) : [])]);
  for (const p of pids) {
    try {
      Deno.kill(p, sig);
    } catch { /* already gone */ }
  }
}

async function waitListening(port: number, child: Deno.ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let exited = false;
  child.status.then(() => exited = true);
  while (Date.now() < deadline) {
    if (exited) throw new Error("server exited before listening");
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(`server not listening on ${port} after ${ms} ms`);
}

interface Spawn {
  cmd: string;
  args: string[];
}

async function startServer(
  kind: "dropbear" | "sshd",
  dir: string,
  port: number,
  fingerprint: string,
  spawn: () => Spawn,
): Promise<TestServer> {
  let child: Deno.ChildProcess | null = null;
  let ns: string | null = null;
  let stderrText = "";
  let stopped = false;
  const start = async () => {
    const s = spawn();
    child = (await hostCommand(s.cmd, {
      args: s.args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    })).spawn();
    const c = child;
    (async () => {
      const dec = new TextDecoder();
      for await (const chunk of c.stderr) {
        stderrText += dec.decode(chunk, { stream: true });
        if (stderrText.length > 200_000) stderrText = stderrText.slice(-100_000);
      }
    })().catch(() => {});
    try {
      await waitListening(port, c, 5000);
      const mine = Deno.readLinkSync(`/proc/${c.pid}/ns/mnt`);
      ns = mine !== Deno.readLinkSync("/proc/self/ns/mnt") ? mine : null;
    } catch (err) {
      await kill();
      throw new Error(`${kind} did not start: ${(err as Error).message}\n${stderrText}`);
    }
  };
  const kill = async () => {
    const c = child;
    if (!c) return;
    child = null;
    signalTree(c.pid, "SIGKILL", ns);
    await c.status;
    // Session processes re-parented away from the listener are found through their
    // listener ancestry only while it lives; signalTree ran before the listener died.
  };
  await start();
  const server: TestServer = {
    kind,
    host: "127.0.0.1",
    port,
    user: userInfo().username,
    hostKeyFingerprint: fingerprint,
    get pid() {
      return child?.pid ?? -1;
    },
    restart: async () => {
      await kill();
      await start();
    },
    kill,
    freeze: () => {
      if (child) signalTree(child.pid, "SIGSTOP", ns);
      return Promise.resolve();
    },
    thaw: () => {
      if (child) signalTree(child.pid, "SIGCONT", ns);
      return Promise.resolve();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (child) signalTree(child.pid, "SIGCONT", ns);
      await kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    stopSync: () => {
      stopped = true;
      if (child) signalTree(child.pid, "SIGKILL", ns);
      child = null;
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* gone */ }
    },
    log: () => stderrText,
  };
  return server;
}

/**
 * Start dropbear in the foreground on 127.0.0.1:<free port> with a fresh ed25519 host key,
 * public-key login only, and the test client key authorized. Without `sftp: true` the
 * sftp-server binary is hidden in the server's mount namespace, as on a dropbear-only image
 * (Debian's dropbear would otherwise run OpenSSH's sftp-server when it is installed).
 */
export async function startDropbear(opts: { sftp?: boolean } = {}): Promise<TestServer> {
  const key = await testClientKey();
  const dir = await Deno.makeTempDir({ prefix: "rkhil-dropbear-" });
  const home = `${dir}/home`;
  await Deno.mkdir(`${home}/.ssh`, { recursive: true, mode: 0o700 });
  await Deno.chmod(home, 0o700);
  await Deno.writeTextFile(`${home}/.ssh/authorized_keys`, key.publicKeyLine + "\n", {
    mode: 0o600,
  });
  const hostKey = `${dir}/hostkey_ed25519`;
  // unshare starts these through its sh -c: installed here, before it runs.
  await ensureHostTools(["/usr/sbin/dropbear", "mount", "/bin/sh"]);
  await run("/usr/bin/dropbearkey", ["-t", "ed25519", "-f", hostKey]);
  const pub = (await run("/usr/bin/dropbearkey", ["-y", "-f", hostKey])).stdout;
  const fingerprint = fingerprintOfPublicKeyLine(pub);
  const port = freePort();
  const realHome = userInfo().homedir;
  return startServer("dropbear", dir, port, fingerprint, () => ({
    cmd: "/usr/bin/unshare",
    args: [
      "-m",
      "--propagation",
      "private",
      "/bin/sh",
      "-c",
      'mount --bind "$1" "$2" && { [ "$3" = yes ] || [ ! -d "$4" ] || mount -t tmpfs none "$4"; } ' +
      '&& shift 4 && exec "$@"',
      "sh",
      home,
      realHome,
      opts.sftp ? "yes" : "no",
      "/usr/lib/openssh",
      "/usr/sbin/dropbear",
      "-F", // foreground
      "-E", // log to stderr
      "-s", // no password logins
      "-m", // no motd
      "-p",
      `127.0.0.1:${port}`,
      "-r",
      hostKey,
      "-P",
      `${dir}/dropbear.pid`,
    ],
  }));
}

/**
 * Start OpenSSH's sshd in the foreground with a private config: its own host key,
 * AuthorizedKeysFile and PidFile in a temp dir, the SFTP subsystem, TCP forwarding allowed.
 */
export async function startSshd(): Promise<TestServer> {
  const key = await testClientKey();
  const dir = await Deno.makeTempDir({ prefix: "rkhil-sshd-" });
  const hostKey = `${dir}/hostkey_ed25519`;
  await ensureHostTools(["/usr/sbin/sshd"]); // started by unshare
  await run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  const fingerprint = fingerprintOfPublicKeyLine(await Deno.readTextFile(`${hostKey}.pub`));
  await Deno.writeTextFile(`${dir}/authorized_keys`, key.publicKeyLine + "\n", { mode: 0o600 });
  const port = freePort();
  const cfg = `${dir}/sshd_config`;
  await Deno.writeTextFile(
    cfg,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "AllowTcpForwarding yes",
      "PrintMotd no",
      "Subsystem sftp /usr/lib/openssh/sftp-server",
      "",
    ].join("\n"),
  );
  // sshd insists on its privilege separation directory (Debian's unit creates it at boot).
  await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  // A private mount namespace (no mounts changed) only to find every process it starts.
  return startServer("sshd", dir, port, fingerprint, () => ({
    cmd: "/usr/bin/unshare",
    args: ["-m", "--propagation", "private", "/usr/sbin/sshd", "-D", "-e", "-f", cfg],
  }));
}
