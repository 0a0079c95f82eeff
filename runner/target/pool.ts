/**
 * Reuse of booted QEMU guests within one runner process: the same kernel, memory, CPUs and
 * kernel arguments give the same ready {@linkcode QemuTarget} instead of a new boot. A guest
 * whose QEMU died (or that was closed) is replaced by a fresh boot.
 * {@linkcode releaseQemuTargets} closes them all.
 *
 * @module
 */

import { QemuTarget, type QemuTargetOptions } from "../qemu/target.ts";
import type { DriverTargetOptions } from "./target.ts";

const pool = new Map<string, Promise<QemuTarget>>();

/** The reuse key of a guest: what makes two guests the same. */
export function qemuGuestKey(o: QemuTargetOptions): string {
  return JSON.stringify([o.kernel, o.memory ?? "8G", o.cpus ?? 2, o.extraAppend ?? ""]);
}

/**
 * A ready QEMU target for `opts`: the running one with the same key, or a new boot (whose run
 * directory is `opts.runDir`). `targetOpts` apply to a new boot only.
 *
 * @throws what {@linkcode QemuTarget.prepare} and `ready()` throw, for a new boot.
 */
export async function acquireQemuTarget(
  opts: QemuTargetOptions,
  targetOpts: DriverTargetOptions = {},
): Promise<QemuTarget> {
  const key = qemuGuestKey(opts);
  const cur = pool.get(key);
  if (cur) {
    const t = await cur.catch(() => undefined);
    if (t?.usable) return t;
    if (pool.get(key) === cur) pool.delete(key);
    await t?.close();
  }
  const booting = (async () => {
    const t = await QemuTarget.prepare(opts, targetOpts);
    try {
      await t.ready();
      return t;
    } catch (err) {
      await t.close();
      throw err;
    }
  })();
  pool.set(key, booting);
  booting.catch(() => {
    if (pool.get(key) === booting) pool.delete(key);
  });
  return await booting;
}

/** Close (power off) every pooled guest. Never throws. */
export async function releaseQemuTargets(): Promise<void> {
  const all = [...pool.values()];
  pool.clear();
  await Promise.all(all.map((p) => p.then((t) => t.close(), () => {})));
}
