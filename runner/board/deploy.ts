/**
 * Kernel deployment on a board through U-Boot, with the known-good kernel as the fallback
 * (board file `deploy:`, `boards/deploy_schema.ts`; issue 10).
 *
 * Everything goes over the target's own protocols, as on a ROCK 3B: the kernel image, its
 * initramfs, its DTB (when the board has one) and its modules (when the board file names a
 * modules directory) are uploaded with FileTransfer (size and SHA-256 checked) into
 * `<boot_dir>/rkhil/`; U-Boot's `extlinux.conf` gets one rkhil label while its `default` stays
 * the known-good label (`runner/board/extlinux.ts`). The target is then power-cycled through
 * its adapter and rkhil answers U-Boot's `Enter choice:` on the console with the label's
 * number, once. Whatever goes wrong after that ends in the known-good kernel, because no boot
 * other than that one is steered:
 *
 * - a kernel that hangs (no `Booting Linux` line within `kernel_start_s` of the choice) is
 *   power-cycled through the adapter; U-Boot's menu times out to the known-good label;
 * - a kernel that panics is a boot FAIL at once (the strategy switches the target off); rkhil
 *   switches it on again, and the known-good label boots;
 * - an image U-Boot cannot start (a synchronous abort, a bad magic) resets or falls through
 *   to the known-good label by itself;
 * - a kernel that boots but never reaches a shell is power-cycled by the strategy's own
 *   bounded retry, into the known-good label.
 *
 * The outcome is PASS (the target runs the release under test) or FAIL, blamed on the kernel,
 * with the console of the failed boot; the target is healthy again (the known-good kernel
 * answers). When not even the known-good kernel comes back, the deployment throws an
 * InfraError: the target is taken out (MISS), never silently reused.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import type { DeploySpec } from "../../boards/deploy_schema.ts";
import { InfraError, RkhilError, UserInputError } from "../errors.ts";
import type { Target } from "../protocol/target.ts";
import { shellQuote } from "../ssh/client.ts";
import { KERNEL_BANNER } from "../target/strategy.ts";
import { run } from "../debian/proc.ts";
import { parseExtlinux, withOneShotEntry } from "./extlinux.ts";
import type { StepOutcome } from "../suite/types.ts";
import { BOOT_FILE_NAME, checkDtbName } from "./deploy_kernel.ts";

/** The kernel to deploy: host files. */
export interface DeployKernel {
  /** Its release (`uname -r` once it runs), e.g. `6.12.118+deb13-arm64`. */
  release: string;
  /** The kernel image U-Boot boots (an arm64 `Image`; Debian's `vmlinuz` is one). */
  image: string;
  /** Its initramfs, when it needs one. */
  initrd?: string;
  /** The board's DTB built for this kernel, when the board boots with one. */
  dtb?: string;
  /** The kernel's `lib/modules/<release>` directory, installed when `deploy.modules_dir` is set. */
  modulesDir?: string;
  /** Kernel command line (default: the known-good entry's `append`). */
  append?: string;
}

/** Options of {@linkcode deployKernel}. */
export interface DeployOptions {
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What a deployment found, in the result's details. */
export type DeployDetails = {
  /** The release deployed. */
  release: string;
  /** The release running afterwards (the deployed one, or the known-good one's). */
  runningAfter?: string;
  /** The release that ran before (the known-good kernel's, or the last deployed one's). */
  runningBefore?: string;
  /** The known-good kernel's release, as it ran after a failed deployment. */
  knownGoodRelease?: string;
  /** U-Boot's menu number rkhil chose. */
  menuNumber: number;
  /** What happened: `booted`, or how it failed and what brought the target back. */
  events: string[];
  /** The console of the boot under test (its last 4 KiB; up to the power cycle), for a FAIL. */
  console?: string;
  /** Bytes uploaded per file. */
  uploaded: Record<string, number>;
};

/** The console excerpt a FAIL carries. */
const CONSOLE_TAIL = 4096;

/** U-Boot's banner at the start of a boot (`U-Boot 2023.01...`, `U-Boot SPL 2017.09...`). */
const UBOOT_BANNER = /\n\s*U-Boot (?:SPL |TPL )?20\d\d\.\d\d/g;

/**
 * The console of the boot under test in `text` (from the power cycle on): up to the next
 * U-Boot banner after the menu choice (the reset or power cycle that ended it), its last
 * {@linkcode CONSOLE_TAIL} characters, without CRs.
 */
export function failedBootConsole(text: string): string {
  const chosen = text.indexOf("Enter choice: ");
  let end = text.length;
  if (chosen >= 0) {
    UBOOT_BANNER.lastIndex = chosen;
    const next = UBOOT_BANNER.exec(text);
    if (next) end = next.index;
  }
  return text.slice(0, end).replace(/\r/g, "").slice(-CONSOLE_TAIL);
}

function bootPaths(spec: DeploySpec) {
  const boot = spec.boot_dir.replace(/\/+$/, "") || "/";
  const prefix = (spec.uboot_prefix ?? boot).replace(/\/+$/, "");
  return {
    boot,
    dir: `${boot === "/" ? "" : boot}/rkhil`,
    uboot: `${prefix}/rkhil`,
    extlinux: spec.extlinux ?? `${boot === "/" ? "" : boot}/extlinux/extlinux.conf`,
  };
}

/**
 * Run `cmd` on the board; a non-zero status is an InfraError (MISS): a `/boot` that cannot be
 * mounted, cleared or written (read-only, full, a wrong `deploy.device`) is the board's state,
 * not the kernel's failure (FAIL) nor input rkhil refuses up front (ERROR); the target is taken
 * out either way.
 */
async function sh(target: Target, cmd: string, what: string, timeoutMs = 120_000) {
  const r = await target.command.run(cmd, { timeoutMs });
  if (r.exitStatus !== 0) {
    throw new InfraError(
      `${target.name}: ${what} failed (status ${r.exitStatus}): ${r.stdout.trim().slice(0, 300)}`,
      "check the board file's deploy block and the board's /boot",
    );
  }
  return r.stdout;
}

async function checkHostFiles(k: DeployKernel): Promise<void> {
  for (const [what, path] of Object.entries({ image: k.image, initrd: k.initrd, dtb: k.dtb })) {
    if (path === undefined) continue;
    const st = await Deno.stat(path).catch(() => undefined);
    if (!st?.isFile) {
      throw new UserInputError(
        `kernel ${k.release}: ${what} ${path} is not a file`,
        "fetch the kernel again (its files are in rkhil's cache)",
      );
    }
  }
  if (!BOOT_FILE_NAME.test(k.release)) {
    throw new UserInputError(
      `kernel release ${JSON.stringify(k.release)} has characters a boot file name cannot`,
      "a release is what uname -r prints: letters, digits and ._+-",
    );
  }
  if (k.dtb !== undefined) checkDtbName(k.dtb);
}

/**
 * Install `kernel` on the board behind `target` and boot it once through U-Boot's extlinux
 * menu (see the module documentation). The target must be a board target whose board file has
 * `deploy:`; it is brought to `ready` on its known-good kernel first.
 *
 * @returns PASS when the target then runs `kernel.release`; FAIL (the kernel's) with the
 *   console of the failed boot when it does not and the known-good kernel came back.
 * @throws {UserInputError} (ERROR) for a board file without `deploy:`, missing host files, a
 *   release or DTB name a boot file cannot have, an extlinux.conf without the known-good label.
 * @throws {InfraError} (MISS) when the target cannot be reached, its `/boot` cannot take the
 *   kernel (mount, clear, mkdir or the move of `extlinux.conf` fails: read-only, full), an
 *   upload fails, or not even the known-good kernel comes back (the target is then to be taken
 *   out). The board is broken for this test, not the kernel nor rkhil's input.
 */
export async function deployKernel(
  target: Target,
  kernel: DeployKernel,
  opts: DeployOptions = {},
): Promise<StepOutcome & { details: DeployDetails }> {
  const log = opts.log ?? (() => {});
  const spec = target.board.board.deploy;
  if (!spec) {
    throw new UserInputError(
      `board ${target.name} has no deploy block`,
      `add deploy: to ${target.board.path} (see README, "Kernel deployment on boards")`,
    );
  }
  await checkHostFiles(kernel);
  await target.ready();
  const con = target.console;
  if (!con) {
    throw new UserInputError(
      `board ${target.name} has no console: U-Boot's menu cannot be answered`,
      "give the board file a console",
    );
  }
  if (!target.files) {
    throw new UserInputError(
      `board ${target.name} has no SSH: rkhil cannot upload a kernel to it`,
      "give the board file an ssh block",
    );
  }
  const runningBefore = target.release;
  const p = bootPaths(spec);
  const events: string[] = [];
  const uploaded: Record<string, number> = {};
  // /boot: mounted (read-write) when the board file names its device.
  if (spec.device) {
    await sh(
      target,
      `mkdir -p ${shellQuote(p.boot)} && { grep -q ${
        shellQuote(` ${p.boot} `)
      } /proc/mounts || mount -o rw ${shellQuote(spec.device)} ${shellQuote(p.boot)}; }`,
      `mount ${spec.device} on ${p.boot}`,
    );
  }
  const confText = await sh(
    target,
    `cat ${shellQuote(p.extlinux)}`,
    `read ${p.extlinux}`,
    30_000,
  );
  const cfg = parseExtlinux(confText, `${target.name}:${p.extlinux}`);
  const good = cfg.labels.find((l) => l.name === spec.known_good);
  if (!good) {
    throw new UserInputError(
      `${target.name}:${p.extlinux} has no label ${spec.known_good} (deploy.known_good)` +
        (cfg.labels.length ? `; its labels: ${cfg.labels.map((l) => l.name).join(", ")}` : ""),
      "set deploy.known_good to the label of a kernel that boots on this board",
    );
  }
  // Old rkhil files go first: /boot partitions are small.
  await sh(target, `rm -rf ${shellQuote(p.dir)} && mkdir -p ${shellQuote(p.dir)}`, "clear");
  const r = kernel.release;
  const put = async (local: string, name: string) => {
    const t = await target.files!.upload(local, `${p.dir}/${name}`, { timeoutMs: 600_000 });
    uploaded[name] = t.bytes;
    log(`${target.name}: ${name} uploaded (${t.bytes} bytes, ${Math.round(t.durationMs)} ms)`);
  };
  await put(kernel.image, `vmlinuz-${r}`);
  if (kernel.initrd) await put(kernel.initrd, `initrd.img-${r}`);
  let dtbName: string | undefined;
  if (kernel.dtb) {
    dtbName = `${r}/${basename(kernel.dtb)}`;
    await sh(target, `mkdir -p ${shellQuote(`${p.dir}/${r}`)}`, "mkdir dtb");
    await put(kernel.dtb, dtbName);
  }
  if (kernel.modulesDir && spec.modules_dir) {
    const remote = `/tmp/rkhil-modules-${r}.tar`;
    const tarFile = await Deno.makeTempFile({ prefix: "rkhil-modules-", suffix: ".tar" });
    let t;
    try {
      await run("tar", [
        "-C",
        dirname(kernel.modulesDir),
        "-cf",
        tarFile,
        basename(kernel.modulesDir),
      ], { owner: `tar of ${kernel.modulesDir}` });
      t = await target.files.upload(tarFile, remote, { timeoutMs: 900_000 });
    } finally {
      await Deno.remove(tarFile).catch(() => {});
    }
    uploaded.modules = t.bytes;
    await sh(
      target,
      `mkdir -p ${shellQuote(spec.modules_dir)} && rm -rf ${
        shellQuote(`${spec.modules_dir}/${basename(kernel.modulesDir)}`)
      } && tar -xf ${shellQuote(remote)} -C ${shellQuote(spec.modules_dir)}; s=$?; rm -f ${
        shellQuote(remote)
      }; exit $s`,
      `unpack modules into ${spec.modules_dir}`,
      300_000,
    );
    log(`${target.name}: modules installed in ${spec.modules_dir}/${basename(kernel.modulesDir)}`);
  }
  const { text, number } = withOneShotEntry(cfg, {
    name: `rkhil-${r}`,
    menuLabel: `rkhil: ${r} (one boot; default stays ${spec.known_good})`,
    kernel: `${p.uboot}/vmlinuz-${r}`,
    initrd: kernel.initrd ? `${p.uboot}/initrd.img-${r}` : undefined,
    fdt: dtbName ? `${p.uboot}/${dtbName}` : undefined,
    append: kernel.append ?? good.append,
  }, {
    knownGood: spec.known_good,
    timeout: (spec.menu_timeout_s ?? 5) * 10,
    source: `${target.name}:${p.extlinux}`,
  });
  await target.files.upload(new TextEncoder().encode(text), `${p.extlinux}.rkhil-new`);
  await sh(
    target,
    `mv ${shellQuote(`${p.extlinux}.rkhil-new`)} ${shellQuote(p.extlinux)} && sync`,
    `replace ${p.extlinux}`,
  );
  log(`${target.name}: ${p.extlinux}: label rkhil-${r} is menu entry ${number}`);

  // The one steered boot.
  const rec = con.recorder;
  const from = rec.mark();
  const startMs = (spec.kernel_start_s ?? 30) * 1000;
  // Aborted once the boot ended (a shell, or a boot that failed early): the steering's waits
  // end then, not at their timeouts.
  const stopSteering = new AbortController();
  const signal = stopSteering.signal;
  let menuSeen = false;
  let hung = false;
  let failedBoot: string | undefined; // the console of the boot under test, up to the cycle
  const steer = (async () => {
    await rec.waitFor(/Enter choice: /, {
      from,
      timeoutMs: 300_000,
      owner: "U-Boot menu",
      signal,
    });
    if (signal.aborted) return;
    menuSeen = true;
    rec.note(`deploy: choosing menu entry ${number} (rkhil-${r}) once`);
    await rec.write(`${number}\r`);
    const chosen = rec.mark();
    try {
      await rec.waitFor(KERNEL_BANNER, {
        from: chosen,
        timeoutMs: startMs,
        owner: "kernel start",
        signal,
      });
    } catch {
      if (signal.aborted) return;
      hung = true;
      failedBoot = rec.since(from);
      events.push(`no kernel line within ${startMs / 1000} s of the menu choice`);
      rec.note(`deploy: kernel ${r} did not start: power cycle through the adapter`);
      await target.power.cycle();
      events.push(`power cycled through the ${target.power.kind} adapter`);
    }
  })();
  steer.catch(() => {});
  let bootErr: unknown;
  try {
    await target.reboot();
  } catch (err) {
    bootErr = err;
    events.push(`boot: ${(err as Error).message.split("\n")[0]}`);
  }
  stopSteering.abort();
  await steer.catch(() => {});
  const consoleText = failedBootConsole(failedBoot ?? rec.since(from));
  const details: DeployDetails = {
    release: r,
    runningBefore,
    menuNumber: number,
    events,
    uploaded,
  };
  if (!bootErr && target.release === r) {
    events.push("booted");
    details.runningAfter = r;
    return { verdict: "PASS", details };
  }
  // The kernel under test did not come up: bring the known-good one back.
  if (bootErr || target.state !== "ready") {
    try {
      await target.ready();
      events.push("switched on again: the known-good label booted");
    } catch (err) {
      if (err instanceof RkhilError && !(err instanceof InfraError)) throw err;
      throw new InfraError(
        `${target.name}: kernel ${r} did not come up and the known-good label ` +
          `${spec.known_good} did not either: ${(err as Error).message.split("\n")[0]}`,
        "look at the console log; the board needs a hand",
        { cause: err },
      );
    }
  }
  // Nobody steered this boot: U-Boot's default, the known-good label, is what runs now.
  details.runningAfter = target.release;
  details.knownGoodRelease = target.release;
  details.console = consoleText;
  const why = !menuSeen
    ? "U-Boot's menu (Enter choice:) did not show"
    : hung
    ? `it did not start within ${startMs / 1000} s of the menu choice`
    : bootErr
    ? (bootErr as Error).message.split("\n")[0]
    : "the boot ended in the known-good kernel (U-Boot could not start it, or it reset)";
  return {
    verdict: "FAIL",
    reason: `kernel ${r} did not come up: ${why}; the known-good ${
      target.release ?? spec.known_good
    } (label ${spec.known_good}) runs again`,
    details,
  };
}
