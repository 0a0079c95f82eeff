/**
 * Reuse of booted QEMU guests within one runner process: the same kernel, memory, CPUs and
 * kernel arguments give the same guest (and session) instead of a new boot. A guest whose
 * QEMU died is replaced by a fresh boot. {@linkcode releaseQemuSessions} powers them all off.
 *
 * @module
 */

import type { QemuTargetOptions } from "../qemu/target.ts";
import { TargetSession, type TargetSessionOptions } from "./session.ts";

const pool = new Map<string, Promise<TargetSession>>();

/** The reuse key of a guest: what makes two guests the same. */
export function qemuGuestKey(o: QemuTargetOptions): string {
  return JSON.stringify([o.kernel, o.memory ?? "8G", o.cpus ?? 2, o.extraAppend ?? ""]);
}

/**
 * A session on a booted guest for `targetOpts`: the running one with the same key, or a new
 * boot (whose run directory is `targetOpts.runDir`). `sessionOpts` apply to a new boot only.
 */
export async function acquireQemuSession(
  targetOpts: QemuTargetOptions,
  sessionOpts: TargetSessionOptions = {},
): Promise<TargetSession> {
  const key = qemuGuestKey(targetOpts);
  const cur = pool.get(key);
  if (cur) {
    const s = await cur.catch(() => undefined);
    if (s?.usable) return s;
    if (pool.get(key) === cur) pool.delete(key);
    await s?.powerOff().catch(() => {});
  }
  const booting = TargetSession.boot(targetOpts, sessionOpts);
  pool.set(key, booting);
  booting.catch(() => {
    if (pool.get(key) === booting) pool.delete(key);
  });
  return await booting;
}

/** Power off every pooled guest. */
export async function releaseQemuSessions(): Promise<void> {
  const all = [...pool.values()];
  pool.clear();
  await Promise.all(all.map((p) => p.then((s) => s.powerOff(), () => {})));
}
