/**
 * Console watchers: recognise kernel crashes, rk_iommu faults, NPU driver and runtime errors,
 * and silent resets in console lines, classify each one, and attach it to the test that was
 * running (research/hil-anchors.md §5 item 8, §3 D and F; DESIGN.md boundaries 3 and 5).
 *
 * ## What is recognised (formats checked against kernel source, see `watchers_test.ts`)
 *
 * Kernel lines (after the prefixes of oracle/kline.ts, the one grammar every kernel-line reader
 * uses: host stamps, syslog / journald / RFC 3339, `/dev/kmsg`, `dmesg -x`/`-T`, `<N>`,
 * `[ssss.uuuuuu]`, caller ids; a printk prefix may also start in the middle of a line of
 * command output):
 * - `panic`: `Kernel panic - not syncing: %s` (kernel/panic.c), block until the
 *   `---[ end Kernel panic - not syncing: %s ]---` trailer.
 * - `oops`: `Unable to handle kernel %s at virtual address %016lx` (arch/arm64/mm/fault.c) and
 *   `Internal error: %s: %016lx [#%d] ...` (arch/arm64/kernel/traps.c `__die`); a fault line
 *   and the `Internal error` line that follows it are one event. Block until `---[ end trace`.
 * - `bug`: `BUG: ...` (KASAN `BUG: KASAN: %s in %pS`, `watchdog: BUG: soft lockup - CPU#%d stuck
 *   for %us! [%s:%d]` (kernel/watchdog.c, pr_fmt `watchdog: `), `BUG: scheduling while atomic: %s/%d/0x%08x`, others) and
 *   `kernel BUG at %s:%u!` (lib/bug.c); the `Internal error: Oops - BUG` after it is merged.
 * - `warning`: `WARNING: CPU: %d PID: %d at %s:%d %pS` (kernel/panic.c `__warn`, up to 6.16)
 *   and `WARNING: %s:%d at %pS, CPU#%d: %s/%d` (6.17+), with or without file:line and an
 *   optional `[condition]`; file, line, function, module, CPU, PID (and comm) are captured,
 *   the `Call trace:` lines are collected until `---[ end trace %016llx ]---`.
 * - `serror`: `SError Interrupt on CPU%d, code 0x%016lx -- %s` (arch/arm64/kernel/traps.c)
 *   and the 4.x `Bad mode in %s handler detected on CPU%d, code 0x%08x -- %s`.
 * - `rcu_stall`: `rcu: INFO: %s detected stalls on CPUs/tasks:` / `self-detected stall`.
 * - `hung_task`: `INFO: task %s:%d blocked for more than %ld seconds.` (kernel/hung_task.c).
 * - `oom`: `%s invoked oom-killer: gfp_mask=...` and `%s: Killed process %d (%s) ...`
 *   (mm/oom_kill.c), one event.
 * - `rk_iommu_fault` / `rk_iommu`: every line `oracle/klog.ts` `parseLine` recognises; a
 *   `Page fault at` line and the `iova =`, `mmu_dte_addr:`, `not attached` and `BUS_ERROR`
 *   lines that follow it for the same device are grouped by klog's own `parseLog` (run on the
 *   group's lines when it closes), so the event carries klog's `FaultReport`.
 * - `npu`: RKNPU (`RKNPU: job timeout, flags: %#x:` with its `\tcore %d irq status:` lines,
 *   `failed to wait job`, `job: %p, iommu domain id:`, `job abort`, `soft reset[, num: %d]`,
 *   `job commit failed`, `invalid irq status`, the probe lines with the IOMMU mode,
 *   `[drm] Initialized rknpu ...`), Rocket (`rocket <dev>: NPU job timed out`,
 *   `rocket <dev>: Rockchip NPU core %d version: %d`, `[drm] Initialized rocket ...`), and
 *   librknnrt output lines (`E RKNN: ...failed to submit...`, `rknn_run fail! ret=%d`).
 * - `boot_banner` / `unexpected_boot`: bootloader banners anywhere in a line (Rockchip DDR
 *   blob `DDR Version V1.xx` / `DDR V1.xx`, `U-Boot TPL`, `U-Boot SPL`, TF-A
 *   `NOTICE:  BL31: v`, `U-Boot 20xx.xx`) and kernel banners (`Booting Linux on physical
 *   CPU`, `Linux version <digit>`, only without a timestamp or below 1 s).
 * - `console_lost`: the console ended and rkhil did not close it.
 *
 * ## Classification rules
 *
 * 1. `panic`, `oops`, `bug`, `serror` → verdict FAIL (the kernel is wrong); the reason is the
 *    event's first line (without the printk prefix). These are "fatal" events.
 * 2. A silent reset (a banner while the boot state is `up`, i.e. after {@link
 *    ConsoleWatcher.declareBooted} and before {@link ConsoleWatcher.expectBoot}) or the
 *    console closing unexpectedly → MISS (target or infrastructure lost; never a kernel
 *    regression), unless a fatal event was seen at most `panicResetWindowMs` (default 120 s)
 *    before it: then FAIL, with the fatal event's reason and `causedBy` its id.
 * 3. `warning` → recorded, no verdict, unless `warningsFail` is set (then FAIL).
 * 4. `rcu_stall`, `hung_task`, `oom` → recorded with severity "error", no verdict, unless
 *    named in `failKinds`.
 * 5. `rk_iommu_fault`, `rk_iommu`, `npu` → observations for the oracle (no verdict).
 * 6. `boot_banner` (a banner while a boot is expected) → information.
 * 7. A test's verdict from its events: FAIL if any event says FAIL, else MISS if any says
 *    MISS, else none (the test's own checks decide). The reason is that of the first event
 *    with the winning verdict.
 *
 * With `commandOutputLf` (set it when the console's shell runs with `stty -opost`, as the
 * framed shell does), lines that end in a bare LF are command output: kernel rules are not
 * applied to them (so `dmesg` or `cat /proc/version` output is never taken for a crash or a
 * reboot); librknnrt and bootloader rules still are.
 *
 * Multi-line events are reported when their first line arrives (phase "open", with the
 * verdict already decided) and again when they close (phase "done", `complete: true`): on
 * their end marker, on the first line of another event of the same channel, after
 * `blockIdleMs` of silence (judged from line timestamps: the watcher has no clock), after
 * `maxBlockLines` lines, or on {@link ConsoleWatcher.flush}.
 *
 * @module
 */

import type { Verdict } from "../errors.ts";
import type { InfraError } from "../errors.ts";
import type { ConsoleStream } from "../serial/port.ts";
import { CloseGate } from "../close_gate.ts";
import { findConsoleStamp } from "../../oracle/kline.ts";
import {
  parseNpuDriverInit,
  parseRknnApiFail,
  parseRknnLog,
  parseRknpuMessage,
} from "./npu_lines.ts";
import {
  type FaultReport,
  isFaultLike,
  type ParsedLine,
  parseLine,
  parseLog,
  type RkIommuEvent,
} from "../../oracle/klog.ts";
import type { EntryFormat } from "../../oracle/types.ts";
import {
  type ConsoleLine,
  ConsoleLineSplitter,
  type LineSplitterOptions,
  makeLine,
} from "./console_lines.ts";

/** Event kinds. */
export type WatchKind =
  | "panic"
  | "oops"
  | "bug"
  | "warning"
  | "serror"
  | "rcu_stall"
  | "hung_task"
  | "oom"
  | "rk_iommu_fault"
  | "rk_iommu"
  | "npu"
  | "boot_banner"
  | "unexpected_boot"
  | "console_lost";

/** How bad an event is (independent of the verdict it leads to). */
export type Severity = "fatal" | "error" | "warning" | "info";

/** The verdicts a watcher event can carry: the kernel is wrong, or the target was lost. */
export type WatchVerdict = Extract<Verdict, "FAIL" | "MISS">;

/** One line of an event, as it was seen. */
export interface EventLine {
  /** Arrival time of the line (epoch ms). */
  atMs: number;
  /** The matching text (escapes and control characters removed). */
  text: string;
  /** The raw line, only when it differs from `text`. */
  raw?: string;
}

/** Boot stages a banner belongs to. */
export type BootBannerStage = "ddr" | "tpl" | "spl" | "tf-a" | "u-boot" | "linux";

/** NPU event subjects. */
export type NpuWhat =
  | "job_timeout"
  | "job_wait_info"
  | "wait_failed"
  | "job_abort"
  | "soft_reset"
  | "commit_failed"
  | "invalid_irq_status"
  | "probe_iommu"
  | "probe"
  | "submit_failed"
  | "run_failed"
  | "runtime_error";

/** Kind-specific fields. */
export type EventDetail =
  | { kind: "panic"; message: string }
  | {
    kind: "oops";
    /** From `Unable to handle kernel %s at virtual address %016lx`. */
    fault?: { what: string; address: string };
    /** From `Internal error: %s: %016lx [#%d] ...`. */
    internalError?: { reason: string; esr: string; dieCounter: number; flags: string };
    callTrace: string[];
  }
  | {
    kind: "bug";
    category: "kasan" | "soft_lockup" | "scheduling_while_atomic" | "kernel_bug_at" | "other";
    title: string;
    file?: string;
    line?: number;
    internalError?: { reason: string; esr: string; dieCounter: number; flags: string };
    callTrace: string[];
  }
  | {
    kind: "warning";
    file?: string;
    line?: number;
    function: string;
    module?: string;
    condition?: string;
    cpu: number;
    pid: number;
    comm?: string;
    callTrace: string[];
  }
  | { kind: "serror"; cpu: number; esr: string; description: string }
  | { kind: "rcu_stall"; flavor: string; what: string }
  | { kind: "hung_task"; task: string; pid: number; seconds: number }
  | { kind: "oom"; invoker?: string; victim?: { pid: number; name: string } }
  | {
    kind: "rk_iommu_fault";
    device: string;
    /** Every rk_iommu line of the group, parsed by `oracle/klog.ts` `parseLine`. */
    parsed: ParsedLine[];
    /** klog's `parseLog` grouping of those lines (set when the group closes). */
    report?: FaultReport;
  }
  | { kind: "rk_iommu"; parsed: ParsedLine; event: RkIommuEvent }
  | {
    kind: "npu";
    driver: "rknpu" | "rocket" | "librknnrt";
    what: NpuWhat;
    device?: string;
    fields: Record<string, string | number>;
  }
  | { kind: "boot_banner"; stage: BootBannerStage }
  | { kind: "unexpected_boot"; stage: BootBannerStage; causedBy?: number }
  | { kind: "console_lost"; message: string; causedBy?: number };

/** A recognised event. */
export interface WatchEvent {
  /** 1-based, in order of first line. */
  id: number;
  /** What was recognised (panic, oops, IOMMU fault, NPU, ...). */
  kind: WatchKind;
  /** How bad it is. */
  severity: Severity;
  /** FAIL or MISS when the event decides a verdict on its own, else null. */
  verdict: WatchVerdict | null;
  /** One line for a human: the first line's message, or what happened. */
  reason: string;
  /** Arrival time of the first line (epoch ms). */
  atMs: number;
  /** printk timestamp of the first line, seconds since boot, when it had one. */
  kernelTimeSec?: number;
  /** The test running when the first line arrived, or null (boot, between tests). */
  test: string | null;
  /** The event's lines, in order. */
  lines: EventLine[];
  /** False while a multi-line event may still collect lines. */
  complete: boolean;
  /** Kind-specific fields (discriminated on `kind`). */
  detail: EventDetail;
}

/** Phase of an event notification. */
export type EventPhase = "open" | "done";

/** Where the target is in its boot cycle, as far as the watcher was told. */
export type BootState = "booting" | "up" | "lost";

/** A test's events and the verdict they imply. */
export interface TestWatchResult {
  /** Test name given to `beginTest`. */
  name: string;
  /** Index of this test run (0-based, in beginTest order). */
  index: number;
  /** When the test began (epoch ms), when given. */
  beganAtMs?: number;
  /** When the test ended (epoch ms), when given. */
  endedAtMs?: number;
  /** Events whose first line arrived during the test. */
  events: WatchEvent[];
  /** FAIL, MISS, or null when the events do not decide. */
  verdict: WatchVerdict | null;
  /** Why, when a verdict was decided (the deciding event's reason). */
  reason?: string;
  /** The event that decided the verdict. */
  eventId?: number;
}

/** Options of {@link ConsoleWatcher}. */
export interface WatcherOptions {
  /** Boot state at start. Default "booting" (the console is opened before power-on). */
  initialBootState?: BootState;
  /** WARNING fails the test. Default false. */
  warningsFail?: boolean;
  /** More kinds that fail on their own, e.g. `["rcu_stall", "hung_task"]`. */
  failKinds?: readonly WatchKind[];
  /** A reset this soon after a fatal event is that event's consequence (FAIL). Default 120 s. */
  panicResetWindowMs?: number;
  /** A multi-line event closes after this much silence. Default 2000 ms. */
  blockIdleMs?: number;
  /** A multi-line event closes after this many lines. Default 400. */
  maxBlockLines?: number;
  /** Lines ending in a bare LF are command output (shell with `stty -opost`). Default false. */
  commandOutputLf?: boolean;
  /** rk_iommu entry format, for klog's walk decoding in fault reports. */
  iommuFormat?: EntryFormat;
  /** Forwarded to klog (v2 PTE permission bits before 6.2). */
  v2PermSwapped?: boolean;
}

const FATAL_KINDS: ReadonlySet<WatchKind> = new Set(["panic", "oops", "bug", "serror"]);

// ---------------------------------------------------------------------------------------------
// Line prefixes
// ---------------------------------------------------------------------------------------------

const RE_PRIO = /^<\d{1,3}>/;

/** A console line split into the kernel message and its printk timestamp. */
interface KernelText {
  /** The message after any `<N>` and `[ t ]` prefix (the whole text when there is none). */
  msg: string;
  /** The text from the printk prefix on (what klog's parseLine is given). */
  fromPrefix: string;
  ts?: number;
}

/** Split with the one prefix grammar (oracle/kline.ts), at the line start or mid-line. */
function kernelText(text: string): KernelText {
  const s = findConsoleStamp(text);
  if (!s) return { msg: text.replace(RE_PRIO, ""), fromPrefix: text };
  const out: KernelText = { msg: s.rest, fromPrefix: s.text };
  if (s.prefix.timestampSec !== undefined) out.ts = s.prefix.timestampSec;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Kernel crash rules
// ---------------------------------------------------------------------------------------------

const RE_PANIC = /^Kernel panic - not syncing: ?(.*)$/;
const RE_PANIC_END = /^---\[ end Kernel panic - not syncing: ?(.*?) \]---/;
const RE_FAULT = /^Unable to handle kernel (.+?) at virtual address ([0-9a-fA-F]+)/;
const RE_INTERNAL = /^Internal error: (.+?): ([0-9a-fA-F]+) \[#(\d+)\] ?(.*)$/;
const RE_KERNEL_BUG_AT = /^kernel BUG at (.+?):(\d+)!/;
const RE_BUG = /^(?:watchdog: )?BUG: (.+)$/;
const RE_KASAN = /^KASAN: (\S+) in (.+)$/;
const RE_SOFT_LOCKUP = /^soft lockup - CPU#(\d+) stuck for (\d+)s! \[(.*):(\d+)\]/;
const RE_SCHED_ATOMIC = /^scheduling while atomic: (.+)\/(\d+)\/(0x[0-9a-f]+)/;
/** `WARNING: CPU: %d PID: %d at %s:%d %pS` (up to 6.16). */
const RE_WARN_OLD =
  /^WARNING: CPU: (?<cpu>\d+) PID: (?<pid>\d+) at (?:\[(?<cond>.*)\] )?(?:(?<file>\S+?):(?<line>\d+) )?(?<fn>\S+)(?: \[(?<mod>\S+)\])?\s*$/;
/** `WARNING: %s:%d at %pS, CPU#%d: %s/%d` (6.17 on). */
const RE_WARN_NEW =
  /^WARNING: (?:\[(?<cond>.*)\] )?(?:(?<file>\S+?):(?<line>\d+) )?at (?<fn>\S+)(?: \[(?<mod>\S+)\])?, CPU#(?<cpu>\d+): (?<comm>.*)\/(?<pid>\d+)\s*$/;
const RE_END_TRACE = /^---\[ end trace [0-9a-f]+(?::\d+)? \]---/;
const RE_CUT_HERE = /^-+\[ cut here \]-+$/;
const RE_CALL_TRACE = /^Call [Tt]race:\s*$/;
const RE_SERROR = /^SError Interrupt on CPU(\d+), code (0x[0-9a-fA-F]+)(?: -- (.*))?$/;
const RE_BAD_MODE =
  /^Bad mode in (.+) handler detected on CPU(\d+), code (0x[0-9a-fA-F]+)(?: -- (.*))?$/;
const RE_RCU =
  /^(?:rcu: )?INFO: (\S+) (detected stalls on CPUs\/tasks|self-detected stall on CPU|detected expedited stalls on CPUs\/tasks)/;
const RE_HUNG = /^INFO: task (.+):(\d+) blocked for more than (\d+) seconds\./;
const RE_OOM_INVOKED = /^(.+) invoked oom-killer: gfp_mask=/;
const RE_OOM_KILLED =
  /^(?:(?:Out of memory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): )?Kill(?:ed)? process (\d+) \((.*?)\)/;
const RE_OOM_KILLED_STRICT =
  /^(?:Out of memory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): Kill(?:ed)? process (\d+) \((.*?)\)/;

// ---------------------------------------------------------------------------------------------
// NPU rules
// ---------------------------------------------------------------------------------------------

const RE_ROCKET = /^rocket (\S+?): (.*)$/;
const RE_ROCKET_CORE = /^Rockchip NPU core (\d+) version: (\d+)/;

// ---------------------------------------------------------------------------------------------
// Banners
// ---------------------------------------------------------------------------------------------

const BOOTLOADER_BANNERS: readonly { stage: BootBannerStage; re: RegExp }[] = [
  { stage: "ddr", re: /(?:^|[^A-Za-z0-9])DDR (?:Version )?V\d+\.\d+/ },
  { stage: "tpl", re: /U-Boot TPL (?:board init|\d{4}\.\d{2})/ },
  { stage: "spl", re: /U-Boot SPL (?:board init|\d{4}\.\d{2})/ },
  { stage: "tf-a", re: /NOTICE: {1,2}(?:BL31: v\d|Booting Trusted Firmware)/ },
  { stage: "u-boot", re: /(?:^|[^-\w])U-Boot \d{4}\.\d{2}/ },
];
const RE_LINUX_BANNER = /^(?:Booting Linux on physical CPU|Linux version \d)/;

// ---------------------------------------------------------------------------------------------
// The watcher
// ---------------------------------------------------------------------------------------------

interface Ctx {
  line: ConsoleLine;
  kt: KernelText;
  /** Kernel rules apply to this line. */
  kernel: boolean;
}

type Channel = "crash" | "npu" | `iommu:${string}`;

interface Block {
  ev: WatchEvent;
  channel: Channel;
  lastAtMs: number;
  /** Lines seen since the last one this block took. */
  idle: number;
  /** Lines (of any kind) this block may let pass before it closes, for non-crash channels. */
  maxIdle: number;
  /** Line texts for klog's parseLog (rk_iommu groups). */
  klogLines?: string[];
  inCallTrace: boolean;
}

/** A detected first line. */
interface Start {
  kind: WatchKind;
  severity: Severity;
  detail: EventDetail;
  /** Multi-line: the channel of the block. */
  channel?: Channel;
  /** Prepend the previous line (a `cut here` line). */
  withCutHere?: boolean;
}

/** Recognises events in console lines; see the module documentation. */
export class ConsoleWatcher {
  /** The options in force, defaults filled in. */
  readonly options: Readonly<Required<Omit<WatcherOptions, "iommuFormat">>> & {
    iommuFormat?: EntryFormat;
  };
  #events: WatchEvent[] = [];
  #tests: TestWatchResult[] = [];
  #current: TestWatchResult | null = null;
  #blocks = new Map<Channel, Block>();
  #boot: BootState;
  #lastFatal: WatchEvent | null = null;
  #prev: Ctx | null = null;
  #eventCbs = new Set<(ev: WatchEvent, phase: EventPhase) => void>();
  #testCbs = new Set<(t: TestWatchResult, phase: "begin" | "end") => void>();
  #failKinds: ReadonlySet<WatchKind>;

  /** A watcher with `opts` (see {@linkcode WatcherOptions} for the defaults). */
  constructor(opts: WatcherOptions = {}) {
    this.options = {
      initialBootState: opts.initialBootState ?? "booting",
      warningsFail: opts.warningsFail ?? false,
      failKinds: opts.failKinds ?? [],
      panicResetWindowMs: opts.panicResetWindowMs ?? 120_000,
      blockIdleMs: opts.blockIdleMs ?? 2000,
      maxBlockLines: opts.maxBlockLines ?? 400,
      commandOutputLf: opts.commandOutputLf ?? false,
      v2PermSwapped: opts.v2PermSwapped ?? false,
      ...(opts.iommuFormat ? { iommuFormat: opts.iommuFormat } : {}),
    };
    this.#boot = this.options.initialBootState;
    this.#failKinds = new Set(this.options.failKinds);
  }

  // ---- subscriptions -------------------------------------------------------------------------

  /**
   * Calls `cb` when an event opens (multi-line events, first line seen, verdict decided) and
   * when it is done (every event, `complete: true`). Returns an unsubscribe function.
   */
  onEvent(cb: (ev: WatchEvent, phase: EventPhase) => void): () => void {
    this.#eventCbs.add(cb);
    return () => this.#eventCbs.delete(cb);
  }

  /** Calls `cb` when a test begins and when it ends (with its events and verdict). */
  onTest(cb: (t: TestWatchResult, phase: "begin" | "end") => void): () => void {
    this.#testCbs.add(cb);
    return () => this.#testCbs.delete(cb);
  }

  #notify(ev: WatchEvent, phase: EventPhase): void {
    for (const cb of this.#eventCbs) {
      try {
        cb(ev, phase);
      } catch { /* a subscriber's bug must not stop the watcher */ }
    }
  }

  #notifyTest(t: TestWatchResult, phase: "begin" | "end"): void {
    for (const cb of this.#testCbs) {
      try {
        cb(t, phase);
      } catch { /* ignore */ }
    }
  }

  // ---- state ---------------------------------------------------------------------------------

  /** Every event so far, in order. */
  get events(): readonly WatchEvent[] {
    return this.#events;
  }

  /** Events not attached to a test (boot, between tests). */
  runEvents(): WatchEvent[] {
    return this.#events.filter((e) => e.test === null);
  }

  /** Events attached to tests named `name` (all runs of that name). */
  eventsForTest(name: string): WatchEvent[] {
    return this.#events.filter((e) => e.test === name);
  }

  /** Every test run so far (the running one included), in order. */
  testResults(): TestWatchResult[] {
    return this.#tests.map((t) => this.#result(t));
  }

  /** The running test's name, or null. */
  get currentTest(): string | null {
    return this.#current?.name ?? null;
  }

  /** Boot state: `booting` (a boot is expected), `up` (booted), `lost` (reset or console gone). */
  get bootState(): BootState {
    return this.#boot;
  }

  /** Worst verdict over all events, as for a test (rule 7). */
  runVerdict(): { verdict: WatchVerdict | null; reason?: string; eventId?: number } {
    return summarize(this.#events);
  }

  // ---- control -------------------------------------------------------------------------------

  /** A power-on or reboot was issued: banners until {@link declareBooted} are expected. */
  expectBoot(): void {
    this.#boot = "booting";
  }

  /** The target is up (a shell answered): a banner from now on is a silent reset. */
  declareBooted(): void {
    this.#boot = "up";
  }

  /** Start attributing events to test `name` (ends a running test first). */
  beginTest(name: string, atMs?: number): void {
    if (this.#current) this.endTest(atMs);
    const t: TestWatchResult = {
      name,
      index: this.#tests.length,
      events: [],
      verdict: null,
      ...(atMs !== undefined ? { beganAtMs: atMs } : {}),
    };
    this.#tests.push(t);
    this.#current = t;
    this.#notifyTest(this.#result(t), "begin");
  }

  /**
   * Stop attributing events to the running test; returns its events and verdict. Events still
   * collecting lines stay attached to it and keep collecting.
   */
  endTest(atMs?: number): TestWatchResult {
    const t = this.#current;
    if (!t) throw new Error("endTest: no test is running");
    if (atMs !== undefined) t.endedAtMs = atMs;
    this.#current = null;
    const r = this.#result(t);
    this.#notifyTest(r, "end");
    return r;
  }

  #result(t: TestWatchResult): TestWatchResult {
    const s = summarize(t.events);
    const r: TestWatchResult = { ...t, events: [...t.events], verdict: s.verdict };
    if (s.reason !== undefined) r.reason = s.reason;
    if (s.eventId !== undefined) r.eventId = s.eventId;
    return r;
  }

  /**
   * The console ended at `atMs`. `message` is why (an unexpected end) or null when rkhil
   * closed it; only an unexpected end is an event (`console_lost`, rule 2).
   */
  consoleClosed(atMs: number, message: string | null): void {
    this.flush();
    if (message === null) return;
    const causedBy = this.#fatalWithin(atMs);
    const detail: EventDetail = { kind: "console_lost", message };
    if (causedBy) detail.causedBy = causedBy.id;
    this.#boot = "lost";
    this.#single({
      kind: "console_lost",
      severity: "error",
      detail,
      verdict: causedBy ? "FAIL" : "MISS",
      reason: causedBy
        ? `console lost ${seconds(atMs - causedBy.atMs)} after: ${causedBy.reason}`
        : `console lost: ${message}`,
      atMs,
      lines: [],
    });
  }

  /** Close every open multi-line event (end of stream, or before reading results). */
  flush(): void {
    for (const b of [...this.#blocks.values()]) this.#close(b);
  }

  /** Feed lines in order. */
  feedLines(lines: Iterable<ConsoleLine>): void {
    for (const l of lines) this.feed(l);
  }

  /** Feed one line. */
  feed(line: ConsoleLine): void {
    if (line.text.trim() === "") return;
    for (const b of [...this.#blocks.values()]) {
      if (line.atMs - b.lastAtMs > this.options.blockIdleMs) this.#close(b);
    }
    const kernel = !(this.options.commandOutputLf && line.end === "lf");
    const ctx: Ctx = { line, kt: kernelText(line.text), kernel };
    try {
      this.#classify(ctx);
    } finally {
      this.#prev = ctx;
    }
  }

  // ---- classification ------------------------------------------------------------------------

  #classify(ctx: Ctx): void {
    const { kt } = ctx;
    // Bootloader banners: any line, anywhere in it (a reset often leaves garbage before).
    for (const { stage, re } of BOOTLOADER_BANNERS) {
      if (re.test(ctx.line.text)) {
        this.#banner(ctx, stage);
        return;
      }
    }
    // librknnrt output.
    if (this.#rknnRuntime(ctx)) return;
    if (!ctx.kernel) return;
    if (RE_LINUX_BANNER.test(kt.msg) && (kt.ts === undefined || kt.ts < 1)) {
      this.#banner(ctx, "linux");
      return;
    }
    // rk_iommu: klog's parser decides.
    const parsed = parseLine(kt.fromPrefix);
    if (parsed) {
      this.#iommu(ctx, parsed);
      return;
    }
    if (this.#npu(ctx)) return;
    if (this.#crash(ctx)) return;
    // Not a first line: give it to the open blocks.
    this.#continue(ctx);
  }

  #continue(ctx: Ctx): void {
    const crash = this.#blocks.get("crash");
    for (const b of [...this.#blocks.values()]) {
      if (b === crash) continue;
      b.idle++;
      if (b.idle > b.maxIdle) this.#close(b);
    }
    if (!crash) return;
    this.#append(crash, ctx);
    const d = crash.ev.detail;
    if (d.kind === "oops" || d.kind === "bug" || d.kind === "warning") {
      if (RE_CALL_TRACE.test(ctx.kt.msg)) crash.inCallTrace = true;
      else if (crash.inCallTrace) {
        // Trace entries are indented; the first line that is not ends the trace (`Code:`).
        if (/^\s/.test(ctx.kt.msg)) d.callTrace.push(ctx.kt.msg);
        else crash.inCallTrace = false;
      }
    }
    if (crash.ev.lines.length >= this.options.maxBlockLines) this.#close(crash);
  }

  #banner(ctx: Ctx, stage: BootBannerStage): void {
    const text = ctx.kt.msg.trim() || ctx.line.text.trim();
    // Whatever was being collected ended with the boot.
    this.flush();
    if (this.#boot !== "up") {
      this.#single({
        kind: "boot_banner",
        severity: "info",
        verdict: null,
        reason: `boot: ${text}`,
        detail: { kind: "boot_banner", stage },
        ...this.#lineFields(ctx),
      });
      return;
    }
    const atMs = ctx.line.atMs;
    const causedBy = this.#fatalWithin(atMs);
    const detail: EventDetail = { kind: "unexpected_boot", stage };
    if (causedBy) detail.causedBy = causedBy.id;
    this.#boot = "lost";
    this.#single({
      kind: "unexpected_boot",
      severity: "error",
      verdict: causedBy ? "FAIL" : "MISS",
      reason: causedBy
        ? `target reset ${seconds(atMs - causedBy.atMs)} after: ${causedBy.reason}`
        : `unexpected boot (silent reset): ${text}`,
      detail,
      ...this.#lineFields(ctx),
    });
  }

  #fatalWithin(atMs: number): WatchEvent | null {
    const f = this.#lastFatal;
    if (!f) return null;
    const dt = atMs - f.atMs;
    return dt >= 0 && dt <= this.options.panicResetWindowMs ? f : null;
  }

  #rknnRuntime(ctx: Ctx): boolean {
    const text = ctx.line.text;
    const log = parseRknnLog(text);
    if (log?.level === "E") {
      const body = log.message;
      const what: NpuWhat = /failed to submit/.test(body) ? "submit_failed" : "runtime_error";
      const fields: Record<string, string | number> = { message: body };
      const op = /op id: (\d+)/.exec(body);
      if (op) fields.opId = Number(op[1]);
      this.#npuEvent(ctx, "librknnrt", what, undefined, fields, "error");
      return true;
    }
    const fail = parseRknnApiFail(text);
    if (fail?.api === "rknn_run") {
      this.#npuEvent(ctx, "librknnrt", "run_failed", undefined, { ret: fail.ret }, "error");
      return true;
    }
    return false;
  }

  #npu(ctx: Ctx): boolean {
    const msg = ctx.kt.msg;
    const k = parseRknpuMessage(msg);
    if (k) {
      const { device, fields } = k;
      switch (k.kind) {
        case "timeout-core": {
          const open = this.#blocks.get("npu");
          const d = open?.ev.detail;
          if (open && d?.kind === "npu" && d.what === "job_timeout") {
            this.#append(open, ctx);
            open.idle = 0;
            d.fields[`core${fields.core}`] =
              `irq status: ${fields.irqStatus}, raw status: ${fields.rawStatus}, ` +
              `require mask: ${fields.requireMask}, task counter: ${fields.taskCounter}, ` +
              `elapsed time: ${fields.elapsedUs}us`;
            return true;
          }
          this.#npuEvent(ctx, "rknpu", "job_timeout", device, fields, "error");
          return true;
        }
        case "job-timeout":
          this.#npuEvent(ctx, "rknpu", "job_timeout", device, fields, "error", k.continued);
          return true;
        case "wait-failed":
          this.#npuEvent(ctx, "rknpu", "wait_failed", device, fields, "error");
          return true;
        case "job-wait-info":
          this.#npuEvent(ctx, "rknpu", "job_wait_info", device, fields, "error");
          return true;
        case "job-abort":
          this.#npuEvent(ctx, "rknpu", "job_abort", device, fields, "error");
          return true;
        case "soft-reset":
          this.#npuEvent(ctx, "rknpu", "soft_reset", device, fields, "error");
          return true;
        case "commit-failed":
          this.#npuEvent(ctx, "rknpu", "commit_failed", device, fields, "error");
          return true;
        case "invalid-irq-status":
          this.#npuEvent(ctx, "rknpu", "invalid_irq_status", device, fields, "error");
          return true;
        case "probe-iommu":
          this.#npuEvent(ctx, "rknpu", "probe_iommu", device, fields, "info");
          return true;
        default:
          return false;
      }
    }
    const init = parseNpuDriverInit(msg);
    if (init) {
      const fields: Record<string, string | number> = { version: init.version };
      if (init.minor !== undefined) fields.minor = init.minor;
      if (init.date) fields.date = init.date;
      this.#npuEvent(ctx, init.driver, "probe", init.device, fields, "info");
      return true;
    }
    let m: RegExpExecArray | null;
    if ((m = RE_ROCKET.exec(msg))) {
      const device = m[1];
      const body = m[2];
      let b: RegExpExecArray | null;
      if ((b = RE_ROCKET_CORE.exec(body))) {
        this.#npuEvent(ctx, "rocket", "probe", device, {
          core: Number(b[1]),
          version: Number(b[2]),
        }, "info");
        return true;
      }
      if (/^NPU job timed out/.test(body)) {
        this.#npuEvent(ctx, "rocket", "job_timeout", device, { message: body }, "error");
        return true;
      }
    }
    return false;
  }

  #npuEvent(
    ctx: Ctx,
    driver: "rknpu" | "rocket" | "librknnrt",
    what: NpuWhat,
    device: string | undefined,
    fields: Record<string, string | number>,
    severity: Severity,
    multi = false,
  ): void {
    const detail: EventDetail = { kind: "npu", driver, what, fields };
    if (device !== undefined) detail.device = device;
    const start: Start = { kind: "npu", severity, detail };
    if (multi) start.channel = "npu";
    this.#start(ctx, start);
  }

  #iommu(ctx: Ctx, parsed: ParsedLine): void {
    const ev = parsed.event;
    const device = ev.kind === "unknown" || ev.kind === "already_mapped" ? null : ev.device;
    if (device !== null) {
      const channel: Channel = `iommu:${device}`;
      if (ev.kind === "page_fault") {
        const open = this.#blocks.get(channel);
        if (open) this.#close(open);
        const block = this.#start(ctx, {
          kind: "rk_iommu_fault",
          severity: "error",
          channel,
          detail: { kind: "rk_iommu_fault", device, parsed: [parsed] },
        });
        if (block) block.klogLines = [ctx.kt.fromPrefix];
        return;
      }
      const open = this.#blocks.get(channel);
      const cont = ev.kind === "iova_split" || ev.kind === "walk" || ev.kind === "not_attached" ||
        ev.kind === "bus_error" || ev.kind === "unexpected_int_status";
      if (open && cont && open.ev.detail.kind === "rk_iommu_fault") {
        this.#append(open, ctx);
        open.idle = 0;
        open.ev.detail.parsed.push(parsed);
        open.klogLines?.push(ctx.kt.fromPrefix);
        if (ev.kind === "bus_error" || ev.kind === "unexpected_int_status") this.#close(open);
        return;
      }
    }
    // A line whose format drifted but speaks of a fault is never filed as information.
    const severity: Severity = isFaultLike(ev) ? "error" : "info";
    this.#start(ctx, {
      kind: "rk_iommu",
      severity,
      detail: { kind: "rk_iommu", parsed, event: ev },
    });
  }

  #crash(ctx: Ctx): boolean {
    const msg = ctx.kt.msg;
    const open = this.#blocks.get("crash");
    const od = open?.ev.detail;
    let m: RegExpExecArray | null;

    if ((m = RE_PANIC_END.exec(msg))) {
      if (open && od?.kind === "panic") {
        this.#append(open, ctx);
        this.#close(open);
        return true;
      }
      this.#start(ctx, {
        kind: "panic",
        severity: "fatal",
        detail: { kind: "panic", message: m[1] },
      });
      return true;
    }
    if (RE_END_TRACE.test(msg)) {
      if (open && (od?.kind === "warning" || od?.kind === "oops" || od?.kind === "bug")) {
        this.#append(open, ctx);
        this.#close(open);
        return true;
      }
      return false;
    }
    if ((m = RE_PANIC.exec(msg))) {
      this.#start(ctx, {
        kind: "panic",
        severity: "fatal",
        channel: "crash",
        detail: { kind: "panic", message: m[1] },
      });
      return true;
    }
    if ((m = RE_INTERNAL.exec(msg))) {
      const ie = { reason: m[1], esr: m[2], dieCounter: Number(m[3]), flags: m[4].trim() };
      if (
        open && !open.ev.complete &&
        ((od?.kind === "oops" && !od.internalError) ||
          (od?.kind === "bug" && od.category === "kernel_bug_at" && !od.internalError))
      ) {
        this.#append(open, ctx);
        od.internalError = ie;
        return true;
      }
      this.#start(ctx, {
        kind: "oops",
        severity: "fatal",
        channel: "crash",
        detail: { kind: "oops", internalError: ie, callTrace: [] },
      });
      return true;
    }
    if ((m = RE_FAULT.exec(msg))) {
      this.#start(ctx, {
        kind: "oops",
        severity: "fatal",
        channel: "crash",
        detail: { kind: "oops", fault: { what: m[1], address: m[2] }, callTrace: [] },
      });
      return true;
    }
    if ((m = RE_KERNEL_BUG_AT.exec(msg))) {
      this.#start(ctx, {
        kind: "bug",
        severity: "fatal",
        channel: "crash",
        withCutHere: true,
        detail: {
          kind: "bug",
          category: "kernel_bug_at",
          title: msg,
          file: m[1],
          line: Number(m[2]),
          callTrace: [],
        },
      });
      return true;
    }
    if ((m = RE_BUG.exec(msg))) {
      const title = m[1];
      const category = RE_KASAN.test(title)
        ? "kasan"
        : RE_SOFT_LOCKUP.test(title)
        ? "soft_lockup"
        : RE_SCHED_ATOMIC.test(title)
        ? "scheduling_while_atomic"
        : "other";
      this.#start(ctx, {
        kind: "bug",
        severity: "fatal",
        channel: "crash",
        withCutHere: true,
        detail: { kind: "bug", category, title, callTrace: [] },
      });
      return true;
    }
    if ((m = RE_WARN_OLD.exec(msg) ?? RE_WARN_NEW.exec(msg))) {
      const g = m.groups!;
      const detail: EventDetail = {
        kind: "warning",
        function: g.fn,
        cpu: Number(g.cpu),
        pid: Number(g.pid),
        callTrace: [],
      };
      if (g.comm !== undefined) detail.comm = g.comm;
      if (g.cond !== undefined) detail.condition = g.cond;
      if (g.file !== undefined) detail.file = g.file;
      if (g.line !== undefined) detail.line = Number(g.line);
      if (g.mod !== undefined) detail.module = g.mod;
      this.#start(ctx, {
        kind: "warning",
        severity: "warning",
        channel: "crash",
        withCutHere: true,
        detail,
      });
      return true;
    }
    if ((m = RE_SERROR.exec(msg))) {
      this.#start(ctx, {
        kind: "serror",
        severity: "fatal",
        channel: "crash",
        detail: { kind: "serror", cpu: Number(m[1]), esr: m[2], description: m[3] ?? "" },
      });
      return true;
    }
    if ((m = RE_BAD_MODE.exec(msg)) && /SError/.test(m[4] ?? m[1])) {
      this.#start(ctx, {
        kind: "serror",
        severity: "fatal",
        channel: "crash",
        detail: { kind: "serror", cpu: Number(m[2]), esr: m[3], description: m[4] ?? m[1] },
      });
      return true;
    }
    if ((m = RE_RCU.exec(msg))) {
      this.#start(ctx, {
        kind: "rcu_stall",
        severity: "error",
        channel: "crash",
        detail: { kind: "rcu_stall", flavor: m[1], what: m[2] },
      });
      return true;
    }
    if ((m = RE_HUNG.exec(msg))) {
      this.#start(ctx, {
        kind: "hung_task",
        severity: "error",
        channel: "crash",
        detail: { kind: "hung_task", task: m[1], pid: Number(m[2]), seconds: Number(m[3]) },
      });
      return true;
    }
    if ((m = RE_OOM_INVOKED.exec(msg))) {
      this.#start(ctx, {
        kind: "oom",
        severity: "error",
        channel: "crash",
        detail: { kind: "oom", invoker: m[1] },
      });
      return true;
    }
    if ((m = RE_OOM_KILLED.exec(msg))) {
      const victim = { pid: Number(m[1]), name: m[2] };
      if (open && od?.kind === "oom" && !od.victim) {
        this.#append(open, ctx);
        od.victim = victim;
        this.#close(open);
        return true;
      }
      if (RE_OOM_KILLED_STRICT.test(msg)) {
        this.#start(ctx, { kind: "oom", severity: "error", detail: { kind: "oom", victim } });
        return true;
      }
    }
    return false;
  }

  // ---- event plumbing ------------------------------------------------------------------------

  #lineFields(ctx: Ctx): { atMs: number; kernelTimeSec?: number; lines: EventLine[] } {
    const f: { atMs: number; kernelTimeSec?: number; lines: EventLine[] } = {
      atMs: ctx.line.atMs,
      lines: [eventLine(ctx.line)],
    };
    if (ctx.kt.ts !== undefined) f.kernelTimeSec = ctx.kt.ts;
    return f;
  }

  #verdictFor(kind: WatchKind): WatchVerdict | null {
    if (FATAL_KINDS.has(kind)) return "FAIL";
    if (kind === "warning" && this.options.warningsFail) return "FAIL";
    if (this.#failKinds.has(kind)) return "FAIL";
    return null;
  }

  /** Record a new event from its first line; returns its block when it is multi-line. */
  #start(ctx: Ctx, s: Start): Block | null {
    const verdict = this.#verdictFor(s.kind);
    const fields = this.#lineFields(ctx);
    if (s.withCutHere && this.#prev && RE_CUT_HERE.test(this.#prev.kt.msg)) {
      fields.lines.unshift(eventLine(this.#prev.line));
    }
    const reason = ctx.kt.msg.trim();
    if (!s.channel) {
      this.#single({
        kind: s.kind,
        severity: s.severity,
        verdict,
        reason,
        detail: s.detail,
        ...fields,
      });
      return null;
    }
    const open = this.#blocks.get(s.channel);
    if (open) this.#close(open);
    const ev = this.#record({
      kind: s.kind,
      severity: s.severity,
      verdict,
      reason,
      detail: s.detail,
      ...fields,
    }, false);
    const block: Block = {
      ev,
      channel: s.channel,
      lastAtMs: ctx.line.atMs,
      idle: 0,
      maxIdle: s.channel === "crash" ? Infinity : s.channel === "npu" ? 8 : 50,
      inCallTrace: false,
    };
    this.#blocks.set(s.channel, block);
    this.#notify(ev, "open");
    return block;
  }

  #single(e: Omit<WatchEvent, "id" | "test" | "complete">): void {
    const ev = this.#record(e, true);
    this.#notify(ev, "done");
  }

  #record(e: Omit<WatchEvent, "id" | "test" | "complete">, complete: boolean): WatchEvent {
    const ev: WatchEvent = {
      id: this.#events.length + 1,
      kind: e.kind,
      severity: e.severity,
      verdict: e.verdict,
      reason: e.reason,
      atMs: e.atMs,
      ...(e.kernelTimeSec !== undefined ? { kernelTimeSec: e.kernelTimeSec } : {}),
      test: this.#current?.name ?? null,
      lines: e.lines,
      complete,
      detail: e.detail,
    };
    this.#events.push(ev);
    this.#current?.events.push(ev);
    if (FATAL_KINDS.has(ev.kind)) this.#lastFatal = ev;
    return ev;
  }

  #append(b: Block, ctx: Ctx): void {
    b.ev.lines.push(eventLine(ctx.line));
    b.lastAtMs = ctx.line.atMs;
  }

  #close(b: Block): void {
    if (this.#blocks.get(b.channel) !== b) return;
    this.#blocks.delete(b.channel);
    const d = b.ev.detail;
    if (d.kind === "rk_iommu_fault" && b.klogLines) {
      const opts = this.options.iommuFormat
        ? { format: this.options.iommuFormat, v2PermSwapped: this.options.v2PermSwapped }
        : { v2PermSwapped: this.options.v2PermSwapped };
      const report = parseLog(b.klogLines.join("\n"), opts).faults[0];
      if (report) d.report = report;
    }
    b.ev.complete = true;
    this.#notify(b.ev, "done");
  }
}

function eventLine(l: ConsoleLine): EventLine {
  return l.raw === l.text ? { atMs: l.atMs, text: l.text } : {
    atMs: l.atMs,
    text: l.text,
    raw: l.raw,
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The verdict a list of events implies (rule 7 of the module documentation). */
export function summarize(
  events: readonly WatchEvent[],
): { verdict: WatchVerdict | null; reason?: string; eventId?: number } {
  const fail = events.find((e) => e.verdict === "FAIL");
  if (fail) return { verdict: "FAIL", reason: fail.reason, eventId: fail.id };
  const miss = events.find((e) => e.verdict === "MISS");
  if (miss) return { verdict: "MISS", reason: miss.reason, eventId: miss.id };
  return { verdict: null };
}

// ---------------------------------------------------------------------------------------------
// Adapters
// ---------------------------------------------------------------------------------------------

/** Options of {@link attachToConsole}. */
export interface AttachOptions extends LineSplitterOptions {
  /** Clock for the close event (the console's close callback carries no time). */
  now?: () => number;
}

/** What {@link attachToConsole} returns: call it to detach; it counts what came after. */
export type DetachWatcher = (() => void) & {
  /** Chunks and close events delivered after detaching (dropped, never fed to the watcher). */
  readonly droppedAfterClose: number;
  /** Watcher errors caught while feeding it (a watcher's bug never reaches the console). */
  readonly handlerErrors: number;
};

/**
 * Feed everything `console` receives to `watcher` (split into lines), and report the console's
 * end: an unexpected end is a `console_lost` event, our own `close()` is not. Returns a
 * function that detaches (and flushes the partial last line); after it, late chunks and
 * events are dropped and counted (the close rule of `runner/close_gate.ts`).
 */
export function attachToConsole(
  watcher: ConsoleWatcher,
  console: Pick<ConsoleStream, "onData" | "onClose">,
  opts: AttachOptions = {},
): DetachWatcher {
  const splitter = new ConsoleLineSplitter(opts);
  const now = opts.now ?? (() => Date.now());
  const gate = new CloseGate();
  let lastAt = 0;
  const offData = console.onData(gate.guard((chunk: Uint8Array, atMs: number) => {
    lastAt = atMs;
    watcher.feedLines(splitter.push(chunk, atMs));
  }));
  const offClose = console.onClose(gate.guard((err: InfraError | undefined) => {
    const t = Math.max(now(), lastAt);
    watcher.feedLines(splitter.flush(t));
    watcher.consoleClosed(t, err ? err.message : null);
  }));
  const detach = () => {
    if (!gate.close()) return;
    offData();
    offClose();
    gate.call(() => watcher.feedLines(splitter.flush(Math.max(now(), lastAt))));
  };
  return Object.defineProperties(detach, {
    droppedAfterClose: { get: () => gate.droppedAfterClose },
    handlerErrors: { get: () => gate.handlerErrors },
  }) as DetachWatcher;
}

/**
 * A `FramedShellOptions.onKernelLine` callback feeding `watcher`. The framed shell hands over
 * kernel lines (CRLF removed) as binary strings, one char per byte; they are decoded as UTF-8
 * here like console lines.
 */
export function kernelLineAdapter(
  watcher: ConsoleWatcher,
): (line: string, atMs: number) => void {
  let seq = 0;
  return (line, atMs) => {
    const bytes = new Uint8Array(line.length);
    for (let i = 0; i < line.length; i++) bytes[i] = line.charCodeAt(i) & 0xff;
    watcher.feed(makeLine(bytes, atMs, "crlf", { seq: seq++ }));
  };
}
