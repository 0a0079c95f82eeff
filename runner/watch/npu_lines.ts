/**
 * The one definition of the NPU stack's line formats, read by the console watchers
 * (runner/watch/watchers.ts) and the RKNN output parser (runner/workload/rknn_output.ts):
 * the downstream `rknpu` driver's `RKNPU:` kernel messages, the `[drm] Initialized rknpu|rocket`
 * and DMA-heap probe lines, and librknnrt's `I/W/E RKNN:` log lines and `rknn_*fail! ret=`.
 * Formats: ../shared/research/npu-workloads.md §1.5, §1.6, §4 (vendor `drivers/rknpu`
 * 0.8.x–0.9.8 `rknpu_job.c`, `rknpu_reset.c`, `rknpu_drv.c`). Input is a kernel message after
 * its printk prefix (oracle/kline.ts) or a program's output line. Pure.
 *
 * @module
 */

/** What an `RKNPU:` message is. */
export type RknpuKind =
  | "job-timeout"
  | "timeout-core"
  | "wait-failed"
  | "job-wait-info"
  | "job-abort"
  | "soft-reset"
  | "commit-failed"
  | "invalid-irq-status"
  | "probe-iommu"
  | "devfreq"
  | "other";

/** One `RKNPU:` kernel message. */
export interface RknpuMessage {
  /** The device of `RKNPU fde40000.npu: RKNPU: ...`, when the message names one. */
  device?: string;
  /** The text after `RKNPU: `. */
  body: string;
  /** What it is. */
  kind: RknpuKind;
  /**
   * Its fields: statuses, masks and flags as printed (`0x300`), counts and times as numbers
   * (`elapsedUs`). job-timeout: `flags` (and the 0.8.x one-line fields); timeout-core: `core`,
   * `irqStatus`, `rawStatus`, `requireMask`, `taskCounter`, `elapsedUs`; wait-failed:
   * `taskCounter`, `flags`, `ret`, `elapsedUs`; job-wait-info: `job`, `iommuDomainId`,
   * `waitCount`, `continueWait`, `commitElapseUs`, `waitUs`, `timeoutUs`; job-abort: `flags`,
   * `ret`, `elapsedUs`; soft-reset: `num` (newer drivers); commit-failed, invalid-irq-status:
   * `message`; probe-iommu: `iommu` (`enabled`, `disabled`, `not_found`); devfreq: `freqHz`,
   * `voltUv`.
   */
  fields: Record<string, string | number>;
  /** job-timeout of drivers ≥ 0.9 (`flags: %#x:`): per-core `timeout-core` lines follow. */
  continued?: boolean;
}

const RE_RKNPU = /^(?:RKNPU (\S+?): )?RKNPU: (.*)$/;
const RE_TIMEOUT = /^job timeout(?:, flags: (0x[0-9a-fA-F]+|0))?(.*)$/;
const RE_CORE =
  /^core (\d+) irq status: (\S+?), raw status: (\S+?), require mask: (\S+?), task counter: (\S+?), elapsed time: (-?\d+)us/;
const RE_OLD_TIMEOUT_FIELDS =
  /irq status: (\S+?), raw status: (\S+?), require mask: (\S+?), task counter: (\S+?), elapsed time: (-?\d+)us/;
const RE_WAIT =
  /^failed to wait job, task counter: (-?\d+), flags: (\S+?), ret = (-?\d+), elapsed time: (-?\d+)us/;
const RE_JOB =
  /^job: (\S+?), iommu domain id: (-?\d+), wait_count: (-?\d+), continue wait: (-?\d+), commit elapse time: (-?\d+)us, wait time: (-?\d+)us, timeout: (\d+)us/;
const RE_ABORT = /^job abort, flags: (\S+?), ret: (-?\d+), elapsed time: (-?\d+)us/;
const RE_RESET = /^soft reset(?:, num: (\d+))?/;
const RE_DEVFREQ = /devfreq enabled, initial freq: ([0-9]{1,15}) Hz, volt: ([0-9]{1,12}) uV/;
const RE_DRM_INIT =
  /^\[drm\] Initialized (rknpu|rocket) (\S+)(?: (\d{8}))? for (\S+) on minor (\d+)/;
const RE_HEAP_INIT = /^Initialized RKNPU driver: v(\S+) for (\S+)/;

/**
 * Classify an `RKNPU:` kernel message (after the printk prefix); null when it is not one.
 * The second line of a ≥ 0.9 timeout report (`\tcore %d irq status: ...`) is `timeout-core`
 * whether its tab is real or printed as `\t` / `\x09` by a log viewer.
 */
export function parseRknpuMessage(msg: string): RknpuMessage | null {
  const m = RE_RKNPU.exec(msg);
  if (!m) return null;
  const device = m[1];
  const body = m[2];
  const out = (kind: RknpuKind, fields: Record<string, string | number> = {}): RknpuMessage => ({
    ...(device !== undefined ? { device } : {}),
    body,
    kind,
    fields,
  });
  const trimmed = body.replace(/^(?:\s|\\t|\\x09)+/, "");
  let b: RegExpExecArray | null;
  if ((b = RE_CORE.exec(trimmed))) {
    return out("timeout-core", {
      core: Number(b[1]),
      irqStatus: b[2],
      rawStatus: b[3],
      requireMask: b[4],
      taskCounter: b[5],
      elapsedUs: Number(b[6]),
    });
  }
  if ((b = RE_TIMEOUT.exec(body))) {
    const fields: Record<string, string | number> = {};
    if (b[1] !== undefined) fields.flags = b[1];
    const old = RE_OLD_TIMEOUT_FIELDS.exec(b[2]);
    if (old) {
      Object.assign(fields, {
        irqStatus: old[1],
        rawStatus: old[2],
        requireMask: old[3],
        taskCounter: old[4],
        elapsedUs: Number(old[5]),
      });
      return out("job-timeout", fields);
    }
    return { ...out("job-timeout", fields), continued: true };
  }
  if ((b = RE_WAIT.exec(body))) {
    return out("wait-failed", {
      taskCounter: Number(b[1]),
      flags: b[2],
      ret: Number(b[3]),
      elapsedUs: Number(b[4]),
    });
  }
  if ((b = RE_JOB.exec(body))) {
    return out("job-wait-info", {
      job: b[1],
      iommuDomainId: Number(b[2]),
      waitCount: Number(b[3]),
      continueWait: Number(b[4]),
      commitElapseUs: Number(b[5]),
      waitUs: Number(b[6]),
      timeoutUs: Number(b[7]),
    });
  }
  if ((b = RE_ABORT.exec(body))) {
    return out("job-abort", { flags: b[1], ret: Number(b[2]), elapsedUs: Number(b[3]) });
  }
  if ((b = RE_RESET.exec(body))) {
    return out("soft-reset", b[1] !== undefined ? { num: Number(b[1]) } : {});
  }
  if (/job commit failed/.test(body)) return out("commit-failed", { message: body });
  if (/^invalid irq status/.test(trimmed)) return out("invalid-irq-status", { message: body });
  const iommu = /iommu is enabled, using iommu mode/.test(body)
    ? "enabled"
    : /iommu is disabled, using non-iommu mode/.test(body)
    ? "disabled"
    : /iommu device-tree entry not found!?, using non-iommu mode/.test(body)
    ? "not_found"
    : null;
  if (iommu) return out("probe-iommu", { iommu });
  if ((b = RE_DEVFREQ.exec(body))) {
    return out("devfreq", { freqHz: Number(b[1]), voltUv: Number(b[2]) });
  }
  return out("other");
}

/** An NPU driver's probe line: `[drm] Initialized rknpu|rocket ...` or the DMA-heap build's. */
export interface NpuDriverInit {
  /** `rknpu` (vendor) or `rocket` (mainline). */
  driver: "rknpu" | "rocket";
  /** Driver version as printed (`0.9.8`, `0.0.0`). */
  version: string;
  /** The build date (`20240828`), when printed. */
  date?: string;
  /** The device (`fde40000.npu`, `rknn`), for the DRM line. */
  device?: string;
  /** The DRM minor, for the DRM line. */
  minor?: number;
}

/** Parse an NPU driver's probe line (after the printk prefix); null when it is not one. */
export function parseNpuDriverInit(msg: string): NpuDriverInit | null {
  let m = RE_DRM_INIT.exec(msg);
  if (m) {
    return {
      driver: m[1] as "rknpu" | "rocket",
      version: m[2],
      ...(m[3] ? { date: m[3] } : {}),
      device: m[4],
      minor: Number(m[5]),
    };
  }
  m = RE_HEAP_INIT.exec(msg);
  return m ? { driver: "rknpu", version: m[1], date: m[2] } : null;
}

/** One librknnrt log line: `E RKNN: [10:21:14.186] failed to submit!, ...`. */
export interface RknnLogLine {
  /** Log level letter: I, W, E, D or V. */
  level: "I" | "W" | "E" | "D" | "V";
  /** The message after the level and the optional `[HH:MM:SS.mmm]` stamp. */
  message: string;
}

const RE_RKNN_LOG = /^([IWEDV]) RKNN: (?:\[[^\]]{0,40}\] ?)?(.*)$/;
const RE_API_FAIL = /^\s*(rknn_[a-z_]{1,40}) fail! ret=(-?[0-9]{1,12})/;

/** Parse a librknnrt log line; null when it is not one. */
export function parseRknnLog(line: string): RknnLogLine | null {
  const m = RE_RKNN_LOG.exec(line);
  return m ? { level: m[1] as RknnLogLine["level"], message: m[2] } : null;
}

/** Parse an RKNN program's `rknn_run fail! ret=-1` (any `rknn_*` API); null otherwise. */
export function parseRknnApiFail(line: string): { api: string; ret: number } | null {
  const m = RE_API_FAIL.exec(line);
  return m ? { api: m[1], ret: Number(m[2]) } : null;
}
