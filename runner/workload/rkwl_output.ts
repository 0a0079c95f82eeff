/**
 * Parser of what the workload program `rkwl` (target/workload) prints: the line format is in
 * target/workload/README.md. Every rkwl line starts with `rkwl `; other lines (kernel messages
 * on a console, a library's prints) are counted and skipped. A malformed rkwl line is a
 * `problem` (with its line number), never an exception: the caller decides what a torn or
 * hostile output means.
 *
 * @module
 */

/** One tensor as rkwl describes it. */
export interface RkwlTensor {
  /** Index of the model in the chain (0 = first). */
  model: number;
  /** Input or output of that model. */
  kind: "input" | "output";
  /** `uint8`, `int8`, `float32`, `int32`, `int16` or `other`. */
  type: string;
  /** Dimensions, e.g. [1, 224, 224, 3]. */
  dims: number[];
  /** Quantisation scale (0 for float tensors). */
  scale: number;
  /** Quantisation zero point. */
  zeroPoint: number;
}

/** One timed pass through the model chain. */
export interface RkwlInvoke {
  /** Warm-up passes come first; `run` passes are the samples to judge. */
  phase: "warmup" | "run";
  /** Pass number within its phase, from 0. */
  index: number;
  /** Wall time of the pass in milliseconds (monotonic clock on the target). */
  ms: number;
}

/** One of the top-k classes. */
export interface RkwlTop {
  /** 1 = best. */
  rank: number;
  /** Output index (ImageNet with background: 0 = background). */
  classIndex: number;
  /** Dequantised score (a probability for a softmax output). */
  score: number;
}

/** One raw row of a YOLOv5 output that passed the program's confidence filter. */
export interface RkwlBox {
  /** Row index in the output (anchor × cell). */
  row: number;
  /** Box centre and size as the model gives them (fractions of the input for YOLOv5 TFLite). */
  cx: number;
  /** Box centre y. */
  cy: number;
  /** Box width. */
  w: number;
  /** Box height. */
  h: number;
  /** Objectness. */
  objectness: number;
  /** Best class index (COCO 80: 0 = person). */
  classIndex: number;
  /** That class's score (the detection score is objectness × class score). */
  classScore: number;
}

/** How the image was fitted to the model input: input pixel = image pixel × scale + pad. */
export interface RkwlFit {
  /** Stretch (`resize`) or keep aspect and pad (`letterbox`). */
  mode: "resize" | "letterbox";
  /** Model input width in pixels. */
  inputWidth: number;
  /** Model input height in pixels. */
  inputHeight: number;
  /** Scale factor (for `resize`, the horizontal one). */
  scale: number;
  /** Horizontal padding in input pixels. */
  padX: number;
  /** Vertical padding in input pixels. */
  padY: number;
  /** How pixels became input values: raw bytes or pixel/255 quantised. */
  range: "raw" | "unit";
}

/** What one run of rkwl printed. */
export type RkwlOutcome =
  | "done"
  | "no-device"
  | "delegate-load-failed"
  | "bad-input"
  | "failed"
  | "truncated";

/** A parsed rkwl output. */
export interface RkwlRun {
  /** Line format version (`rkwl version N`). */
  format?: number;
  /** The TFLite library's version. */
  tflite?: string;
  /** `null`: no delegate (cpu); a path: the delegate loaded; undefined: not reached. */
  delegate?: string | null;
  /** The models of the chain, in order. */
  models: string[];
  /** Input and output tensors of every model. */
  tensors: RkwlTensor[];
  /** The decoded image. */
  image?: { path: string; width: number; height: number; channels: number };
  /** How it was fitted to the input. */
  fit?: RkwlFit;
  /** Every timed pass, in order. */
  invokes: RkwlInvoke[];
  /** Top-k (classification), by rank. */
  top: RkwlTop[];
  /** Raw detection rows (detection). */
  boxes: RkwlBox[];
  /** The `boxes` summary line. */
  boxesSummary?: { printed: number; rows: number; conf: number; dropped: number };
  /** The delegate had no device: its text (Teflon: `Couldn't open kernel device`). */
  noDevice?: { delegate: string; reason: string };
  /** `rkwl error` lines. */
  errors: { stage: string; message: string }[];
  /** TFLite and delegate error-reporter messages. */
  messages: { source: "tflite" | "delegate"; text: string }[];
  /** Status from the `end` line (absent: the output stopped early). */
  exitStatus?: number;
  /** What happened, from the end line (or `truncated`). */
  outcome: RkwlOutcome;
  /** Malformed or inconsistent rkwl lines, each with its 1-based line number. */
  problems: string[];
  /** Lines that are not rkwl's. */
  foreignLines: number;
}

const NUM = String.raw`-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?`;
const INT = String.raw`-?\d+`;
const re = (s: string) => new RegExp(`^${s}$`);

const LINE = {
  version: re(String.raw`version (\d+) tflite=(\S+)`),
  delegate: re(String.raw`delegate (.+)`),
  noDevice: re(String.raw`no-device (.+?): (.*)`),
  model: re(String.raw`model (\d+) (.+)`),
  tensor: re(String.raw`(input|output) (\d+) (\S+) (\d+(?:x\d+)*|) (${NUM}|nan|inf) (${INT})`),
  image: re(String.raw`image (.+) (\d+) (\d+) (\d+)`),
  fit: re(
    String
      .raw`fit (resize|letterbox) (\d+) (\d+) scale=(${NUM}) pad=(${INT}),(${INT}) range=(raw|unit)`,
  ),
  invoke: re(String.raw`invoke (warmup|run) (\d+) (${NUM})`),
  top: re(String.raw`top (\d+) (\d+) (${NUM})`),
  box: re(
    String.raw`box (\d+) (${NUM}) (${NUM}) (${NUM}) (${NUM}) (${NUM}) (\d+) (${NUM})`,
  ),
  boxes: re(String.raw`boxes (\d+) rows=(\d+) conf=(${NUM}) dropped=(\d+)`),
  error: re(String.raw`error ([a-z-]+): (.*)`),
  tflite: re(String.raw`tflite (.*)`),
  delegateError: re(String.raw`delegate-error (.*)`),
  end: re(String.raw`end (\d+)`),
};

const OUTCOME_BY_STATUS: Record<number, RkwlOutcome> = {
  0: "done",
  1: "failed",
  2: "bad-input",
  3: "no-device",
  4: "delegate-load-failed",
};

/** Largest number of lines parsed (and of problems kept); the rest is counted as a problem. */
const MAX_LINES = 200_000;
const MAX_PROBLEMS = 50;

/** Parse the standard output of one rkwl run (a console capture with other lines is fine). */
export function parseRkwlOutput(text: string): RkwlRun {
  const run: RkwlRun = {
    models: [],
    tensors: [],
    invokes: [],
    top: [],
    boxes: [],
    errors: [],
    messages: [],
    outcome: "truncated",
    problems: [],
    foreignLines: 0,
  };
  const problem = (n: number, what: string) => {
    if (run.problems.length < MAX_PROBLEMS) run.problems.push(`line ${n}: ${what}`);
  };
  const lines = text.split("\n");
  if (lines.length > MAX_LINES) problem(MAX_LINES, `output cut after ${MAX_LINES} lines`);
  let ended = false;
  for (let i = 0; i < Math.min(lines.length, MAX_LINES); i++) {
    const n = i + 1;
    const line = lines[i].replace(/\r$/, "");
    if (!line.startsWith("rkwl ")) {
      if (line.trim() !== "") run.foreignLines++;
      continue;
    }
    const body = line.slice(5);
    if (ended) {
      problem(n, "rkwl line after the end line");
      continue;
    }
    let m: RegExpMatchArray | null;
    if ((m = body.match(LINE.version))) {
      if (run.format !== undefined) problem(n, "second version line");
      run.format = Number(m[1]);
      run.tflite = m[2];
      if (run.format !== 1) problem(n, `line format ${run.format} is not 1`);
    } else if ((m = body.match(LINE.noDevice))) {
      run.noDevice = { delegate: m[1], reason: m[2].trim() || "no reason given" };
    } else if ((m = body.match(LINE.delegateError))) {
      run.messages.push({ source: "delegate", text: m[1] });
    } else if ((m = body.match(LINE.delegate))) {
      run.delegate = m[1] === "none" ? null : m[1];
    } else if ((m = body.match(LINE.model))) {
      if (Number(m[1]) !== run.models.length) problem(n, `model ${m[1]} out of order`);
      run.models.push(m[2]);
    } else if ((m = body.match(LINE.tensor))) {
      run.tensors.push({
        model: Number(m[2]),
        kind: m[1] as "input" | "output",
        type: m[3],
        dims: m[4] === "" ? [] : m[4].split("x").map(Number),
        scale: Number(m[5]),
        zeroPoint: Number(m[6]),
      });
    } else if ((m = body.match(LINE.image))) {
      run.image = { path: m[1], width: +m[2], height: +m[3], channels: +m[4] };
    } else if ((m = body.match(LINE.fit))) {
      const f: RkwlFit = {
        mode: m[1] as "resize" | "letterbox",
        inputWidth: +m[2],
        inputHeight: +m[3],
        scale: +m[4],
        padX: +m[5],
        padY: +m[6],
        range: m[7] as "raw" | "unit",
      };
      if (!(f.scale > 0) || f.inputWidth === 0 || f.inputHeight === 0) {
        problem(n, "fit with a zero size or scale");
      } else run.fit = f;
    } else if ((m = body.match(LINE.invoke))) {
      const inv: RkwlInvoke = { phase: m[1] as "warmup" | "run", index: +m[2], ms: +m[3] };
      const before = run.invokes.filter((v) => v.phase === inv.phase).length;
      if (!(inv.ms >= 0) || !Number.isFinite(inv.ms)) problem(n, `invoke time ${m[3]} ms`);
      else if (inv.index !== before) problem(n, `${inv.phase} pass ${inv.index} out of order`);
      else if (inv.phase === "warmup" && run.invokes.some((v) => v.phase === "run")) {
        problem(n, "warm-up pass after a timed pass");
      } else run.invokes.push(inv);
    } else if ((m = body.match(LINE.top))) {
      const t: RkwlTop = { rank: +m[1], classIndex: +m[2], score: +m[3] };
      if (t.rank !== run.top.length + 1) problem(n, `top rank ${t.rank} out of order`);
      else if (!Number.isFinite(t.score)) problem(n, `top score ${m[3]}`);
      else if (run.top.length && t.score > run.top[run.top.length - 1].score) {
        problem(n, `top rank ${t.rank} scores above rank ${t.rank - 1}`);
      } else run.top.push(t);
    } else if ((m = body.match(LINE.box))) {
      const b: RkwlBox = {
        row: +m[1],
        cx: +m[2],
        cy: +m[3],
        w: +m[4],
        h: +m[5],
        objectness: +m[6],
        classIndex: +m[7],
        classScore: +m[8],
      };
      if (![b.cx, b.cy, b.w, b.h, b.objectness, b.classScore].every(Number.isFinite)) {
        problem(n, "box with a value that is not a number");
      } else run.boxes.push(b);
    } else if ((m = body.match(LINE.boxes))) {
      run.boxesSummary = { printed: +m[1], rows: +m[2], conf: +m[3], dropped: +m[4] };
      if (run.boxesSummary.printed !== run.boxes.length) {
        problem(n, `boxes says ${m[1]} rows, ${run.boxes.length} were read`);
      }
    } else if ((m = body.match(LINE.error))) {
      run.errors.push({ stage: m[1], message: m[2] });
    } else if ((m = body.match(LINE.tflite))) {
      run.messages.push({ source: "tflite", text: m[1] });
    } else if ((m = body.match(LINE.end))) {
      run.exitStatus = Number(m[1]);
      ended = true;
    } else {
      problem(n, `not an rkwl line of format 1: ${JSON.stringify(body.slice(0, 80))}`);
    }
  }
  if (run.exitStatus !== undefined) {
    run.outcome = OUTCOME_BY_STATUS[run.exitStatus] ?? "failed";
    if (!(run.exitStatus in OUTCOME_BY_STATUS)) {
      problem(lines.length, `exit status ${run.exitStatus}`);
    }
  }
  if (run.outcome === "done") {
    if (!run.invokes.some((v) => v.phase === "run")) {
      problem(lines.length, "done without a timed pass");
    }
    if (run.top.length === 0 && !run.boxesSummary) {
      problem(lines.length, "done without top-k or a boxes line");
    }
    if (run.errors.length) problem(lines.length, "done with error lines");
  }
  if (run.outcome === "no-device" && !run.noDevice) {
    problem(lines.length, "exit 3 without no-device");
  }
  return run;
}

/**
 * The reason a backend is skipped, when the run says its delegate found no device (exit 3):
 * e.g. `Couldn't open kernel device (libteflon.so)`; undefined otherwise.
 */
export function noDeviceReason(run: RkwlRun): string | undefined {
  if (run.outcome !== "no-device" || !run.noDevice) return undefined;
  const lib = run.noDevice.delegate.slice(run.noDevice.delegate.lastIndexOf("/") + 1);
  return `${run.noDevice.reason} (${lib})`;
}

/** The timed (non-warm-up) pass times in milliseconds, in order. */
export function runTimes(run: RkwlRun): number[] {
  return run.invokes.filter((v) => v.phase === "run").map((v) => v.ms);
}
