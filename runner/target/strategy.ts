/**
 * The one strategy that brings any target to a shell (`off → booting → shell`), written once
 * over {@linkcode TargetDriver}: the console is opened before every power on (it captures from
 * the first byte), power goes on (or is cycled), and the driver waits for the shell prompt
 * within `bounds.bootTimeoutMs`. A boot that hangs (no prompt in time, the console or the
 * target lost on the way) is power-cycled at most `bounds.retries` times, then the last error
 * ends it (MISS). A kernel panic while booting is a {@linkcode KernelFaultError} (FAIL) at once,
 * never retried. The SSH part (`shell → ready`) is in runner/target/target.ts.
 *
 * Also here: {@linkcode waitBootStage}, the Boot protocol's wait for a stage on the console.
 *
 * @module
 */
import { InfraError, RkhilError, TimeoutError } from "../errors.ts";
import type { BootStage } from "../protocol/boot.ts";
import type { BootTimes, TargetState } from "../protocol/target.ts";
import type { ConsoleRecorder } from "../qemu/console.ts";
import type { OpenConsole, TargetDriver } from "./driver.ts";
import { detectKernelFault, KernelFaultError } from "./faults.ts";

/** The kernel's first console line of a boot (arm64 `smp_setup_processor_id`). */
export const KERNEL_BANNER = /Booting Linux on physical CPU/;
/** U-Boot's banner (`U-Boot SPL 2017.09-...`, `U-Boot 2024.01 ...`). */
export const BOOTLOADER_BANNER = /U-Boot /;

/** What the strategy needs from the target it runs on. */
export interface StrategyHost {
  /** The kind-specific part of the target. */
  readonly driver: TargetDriver;
  /** Record a state change (a new boot when `to` is `booting`). */
  transition(to: TargetState, why: string): void;
  /** The console of this boot was opened (or is the same one): attach watchers to it. */
  attachConsole(con: OpenConsole | undefined): void;
  /** A power on or cycle is about to happen (watchers expect banners). */
  expectBoot(): void;
  /** Progress line (also noted in the console log). */
  log(line: string): void;
  /** This boot's console transcript mark (`from`) and when it was taken (performance.now()). */
  bootStarted(from: number, t0: number): void;
}

/**
 * How the first attempt switches the target on: power on, power cycle, or a function that
 * makes the target boot itself (a `reboot` typed in its shell when the adapter is `none`).
 * Later attempts always power-cycle.
 */
export type FirstPower = "on" | "cycle" | (() => Promise<void>);

/**
 * Reject with a KernelFaultError when the kernel of this boot panics on `recorder`: only lines
 * after this boot's {@linkcode KERNEL_BANNER} count (the tail of an earlier panic, its
 * `---[ end Kernel panic` line, may still arrive after a reset); a target whose console shows
 * no banner (a board already up) counts every line. Call `off()` when done.
 */
export function watchBootPanic(
  recorder: ConsoleRecorder,
  what: string,
  requireBanner: boolean,
): { panicked: Promise<never>; off: () => void } {
  let off = () => {};
  let thisBoot = !requireBanner;
  const panicked = new Promise<never>((_, reject) => {
    off = recorder.onLine((line) => {
      if (KERNEL_BANNER.test(line.text)) thisBoot = true;
      if (!thisBoot || line.text.includes("---[ end ")) return;
      const fault = detectKernelFault(line.text, line.crlf, Date.now());
      if (fault?.kind === "panic") reject(new KernelFaultError(fault, what));
    });
  });
  panicked.catch(() => {});
  return { panicked, off };
}

/** A promise that rejects with an InfraError when the driver reports the target gone. */
function goneRejection(driver: TargetDriver, what: string): Promise<never> {
  const p = driver.goneSignal.then(async (reason) => {
    // A panic just seen wins over the exit it caused (QEMU with -no-reboot).
    await new Promise((r) => setTimeout(r, 50));
    throw new InfraError(`${what}: ${reason}`, "see the console log of the run directory");
  });
  p.catch(() => {});
  return p;
}

/**
 * Bring the target from power off (or from a state to be cycled) to a shell on its console;
 * returns the boot's timings (`shell`, `firstByte`, `kernel`, `attempts`). On failure the
 * target is switched off (best effort) and left `off`.
 *
 * @throws {KernelFaultError} (FAIL) when the kernel panics while booting (not retried).
 * @throws {TimeoutError} (MISS) when no attempt reached a shell in time.
 * @throws {InfraError} (MISS) when power or console fail on the last attempt.
 * @throws {RkhilError} (ERROR) a user error (bad key file, refused adapter) at once.
 */
export async function bootToShell(
  host: StrategyHost,
  first: FirstPower,
): Promise<BootTimes> {
  const d = host.driver;
  const retries = Math.max(0, d.bounds.retries);
  const times: BootTimes = { attempts: 0 };
  let lastErr: unknown;
  for (let attempt = 0; attempt <= retries; attempt++) {
    times.attempts = attempt + 1;
    delete times.firstByte;
    delete times.kernel;
    delete times.shell;
    const con = await d.openConsole();
    host.attachConsole(con);
    const rec = con?.recorder;
    const from = rec?.mark() ?? 0;
    const how = attempt > 0 ? "cycle" : first;
    host.transition(
      "booting",
      attempt > 0
        ? `power cycle ${attempt} after a hung boot`
        : how === "on"
        ? "power on"
        : how === "cycle"
        ? "power cycle"
        : "reboot from its shell",
    );
    host.expectBoot();
    const t0 = performance.now();
    host.bootStarted(from, t0);
    const what = `boot ${d.name} to a shell`;
    const watch = rec ? watchBootPanic(rec, `boot ${d.name}`, true) : undefined;
    try {
      if (how === "cycle") await d.power.cycle();
      else if (how === "on") await d.power.on();
      else await how();
      if (!rec) {
        throw new RkhilError(
          `${d.name} has no console: the strategy cannot see it boot`,
          "give the board file a console (serial device or TCP console)",
        );
      }
      const timeoutMs = d.bounds.bootTimeoutMs;
      rec.waitFor(/[\s\S]/, { timeoutMs, owner: what, from }).then(
        () => times.firstByte ??= (performance.now() - t0) / 1000,
        () => {},
      );
      rec.waitFor(KERNEL_BANNER, { timeoutMs, owner: what, from }).then(
        () => times.kernel ??= (performance.now() - t0) / 1000,
        () => {},
      );
      await Promise.race([
        d.waitShell(rec, from, timeoutMs),
        watch!.panicked,
        goneRejection(d, what),
      ]);
      times.shell = (performance.now() - t0) / 1000;
      host.transition("shell", "console prompt seen");
      return times;
    } catch (err) {
      lastErr = err;
      const line = (err as Error).message?.split("\n")[0] ?? String(err);
      const retryable = err instanceof InfraError && !(err instanceof KernelFaultError);
      if (!retryable || attempt === retries) {
        host.log(`boot failed (attempt ${attempt + 1}): ${line}`);
        await d.power.off().catch(() => {});
        host.transition("off", `boot failed: ${line}`);
        throw err;
      }
      host.log(`attempt ${attempt + 1} failed: ${line}`);
    } finally {
      watch?.off();
    }
  }
  throw lastErr; // not reached: the loop throws on its last attempt
}

/**
 * Wait on `recorder` (from mark `from`) for a boot stage: `bootloader` (U-Boot's banner),
 * `kernel` (the kernel's first line) or `shell` (the driver's prompt wait). A panic of the
 * booting kernel ends the wait as a KernelFaultError. Resolves with the seconds the wait took.
 *
 * @throws {KernelFaultError} (FAIL) on a kernel panic meanwhile.
 * @throws {TimeoutError} (MISS) when the stage does not show within `timeoutMs`.
 */
export async function waitBootStage(
  driver: TargetDriver,
  recorder: ConsoleRecorder,
  stage: BootStage,
  from: number,
  timeoutMs: number,
): Promise<number> {
  const t0 = performance.now();
  const owner = `${driver.name}: wait for the ${stage}`;
  const watch = watchBootPanic(recorder, `boot ${driver.name}`, stage !== "bootloader");
  try {
    const wait = stage === "shell"
      ? driver.waitShell(recorder, from, timeoutMs)
      : recorder.waitFor(stage === "kernel" ? KERNEL_BANNER : BOOTLOADER_BANNER, {
        timeoutMs,
        owner,
        from,
        hint: stage === "kernel"
          ? "the kernel did not start (bootloader stuck, wrong image?)"
          : "no U-Boot banner (a board without U-Boot on its console, or no power?)",
      });
    await Promise.race([wait, watch.panicked, goneRejection(driver, owner)]);
    return (performance.now() - t0) / 1000;
  } catch (err) {
    if (err instanceof TimeoutError || err instanceof RkhilError) throw err;
    throw new InfraError(`${owner}: ${(err as Error).message}`, "see the console log", {
      cause: err,
    });
  } finally {
    watch.off();
  }
}
