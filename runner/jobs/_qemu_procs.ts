/**
 * Test helper: the processes of QEMU guests a test started, found in `/proc` by a path their
 * command line contains (the test's run directory: QEMU's `-pidfile` lies under it). Linux only.
 *
 * @module
 */

/** A process whose command line mentions `under`. */
export interface ProcInfo {
  pid: number;
  argv: string[];
}

/**
 * Processes (QEMU, its watchdog) whose command line contains `under`, this process excluded.
 * Zombies (empty command line) are not listed.
 */
export async function processesUnder(under: string): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    let cmdline: string;
    try {
      cmdline = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
    } catch {
      continue; // gone meanwhile
    }
    if (!cmdline.includes(under)) continue;
    out.push({ pid: Number(e.name), argv: cmdline.split("\0").filter(Boolean) });
  }
  return out;
}

/** The QEMU processes (argv[0] is qemu-system-aarch64) whose command line contains `under`. */
export async function qemuUnder(under: string): Promise<number[]> {
  return (await processesUnder(under))
    .filter((p) => p.argv[0]?.endsWith("qemu-system-aarch64"))
    .map((p) => p.pid);
}

/**
 * Wait up to `ms` until no process (QEMU or its watchdog) mentions `under`; returns what is
 * still there (empty when all are gone).
 */
export async function waitNoneUnder(under: string, ms = 10_000): Promise<ProcInfo[]> {
  const end = performance.now() + ms;
  for (;;) {
    const left = (await processesUnder(under)).filter((p) =>
      p.argv.some((a) => a.includes("qemu") || a.includes("rkhil-qemu-watchdog"))
    );
    if (!left.length || performance.now() > end) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
}
