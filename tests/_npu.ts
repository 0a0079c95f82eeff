/**
 * What the two workload suites (`npu/mobilenet_v1`, `npu/yolov5`) share: the steps of one
 * backend on one target. A target may have several backends (capability `cpu-workload` for
 * cpu, `rocket` for Mesa Teflon, `rknn` for the vendor stack); the suite runs each it has, the
 * cpu first (NPU runs are held against it), and records one SKIP for each it lacks.
 *
 * Per backend: one step per image (`<model>/<backend>/<image>`: correctness against the
 * published reference, against the cpu result of the same image for NPU backends, and the
 * oracle's workload verdict for this board and kernel against what happened, console lines as
 * evidence), then `<model>/<backend>/latency` (every timed sample a measurement `invoke` in ms,
 * warm-up left out and kept in the details; judged by runner/workload/assess.ts against the
 * oracle's band for NPU backends and against this target's own baseline from the history).
 *
 * cpu and rocket run rkhil's workload program (runner/workload/on_target.ts: bundle and models
 * installed once per target); rknn runs the RKNN SDK's programs from the board file's
 * `firmware_dir` (`bin/rknn_mobilenet_demo`, `bin/rknn_yolov5_demo`, `bin/rknn_benchmark`,
 * `lib/librknnrt.so`, `model/mobilenet_v1.rknn`, `model/yolov5s-640-640.rknn` and the YOLOv5
 * demo's `model/coco_80_labels_list.txt`), read with
 * runner/workload/rknn_output.ts.
 *
 * @module
 */
import { InfraError, TimeoutError, UserInputError } from "../runner/errors.ts";
import { missingCapability } from "../runner/suite/runner.ts";
import type { Measurement, StepContext, StepOutcome, SuiteStep } from "../runner/suite/types.ts";
import { shellQuote } from "../runner/ssh/client.ts";
import {
  assessLatency,
  type Backend,
  BACKEND_CAPABILITY,
  BACKENDS,
  compareWithOracle,
  type Expectation,
  judgeDetectionsAgainstCpu,
  type Observation,
  observeRknn,
  observeRkwl,
  oracleExpectation,
  rknnDetections,
  rknnTop,
} from "../runner/workload/assess.ts";
import { buildWorkload } from "../runner/workload/build.ts";
import {
  judgeAgainstCpu,
  judgeClassification,
  judgeDetection,
  type Judgement,
} from "../runner/workload/judge.ts";
import { readLabels, type WorkloadModel } from "../runner/workload/models.ts";
import { installBundle, installModels, runOnTarget } from "../runner/workload/on_target.ts";
import type { ClassificationReference, DetectionReference } from "../runner/workload/references.ts";
import { parseRknnOutput } from "../runner/workload/rknn_output.ts";
import { parseRkwlOutput, type RkwlRun, runTimes } from "../runner/workload/rkwl_output.ts";
import { type Detection, matchDetections } from "../runner/workload/yolo.ts";

/** Warm-up and timed passes of one run. */
export interface Passes {
  /** Untimed-for-judgement passes first. */
  warmup: number;
  /** Timed passes: the latency samples. */
  loops: number;
}

/** One workload suite's definition. */
export interface NpuSuiteSpec {
  /** Test id prefix (`mobilenet_v1`, `yolov5`). */
  prefix: string;
  /** The model rkwl runs (cpu, rocket). */
  model: WorkloadModel;
  /** The workload's name for the oracle per backend (`mobilenet_v1`, `yolov5s`, `yolov5n`). */
  oracleName: (backend: Backend) => string;
  /** Classification references (one step each) or one detection reference. */
  references: readonly ClassificationReference[] | readonly DetectionReference[];
  /** Passes per backend: few on the cpu (QEMU under TCG), more on an NPU. */
  passes: Readonly<Record<Backend, Passes>>;
  /**
   * The RKNN SDK program and model (in `firmware_dir`) for the rknn backend, and other files the
   * demo reads relative to it (`model/coco_80_labels_list.txt` for the YOLOv5 demo).
   */
  rknn: { demo: string; model: string; files?: readonly string[] };
}

/** `images/dog_224x224.jpg` → `dog_224x224`. */
export function imageName(path: string): string {
  return path.replace(/^.*\//, "").replace(/\.\w+$/, "");
}

/** First name of a label (`Shih-Tzu`, `military uniform`), for messages. */
const shortLabel = (l: string) => l.split(",")[0].trim();

/** What one target's run of a suite keeps between its steps. */
interface TargetState {
  /** The installed bundle and models (once per target). */
  installed?: Promise<{ root: string; teflon?: string; remote: Map<string, string> }>;
  /** `/proc/cmdline` (once). */
  bootargs?: Promise<string>;
  /** The cpu's result per image, to hold the NPU backends against. */
  cpu: Map<string, { top?: RkwlRun["top"]; detections?: Detection[] }>;
  /** Timed samples and warm-ups per backend. */
  samples: Map<Backend, { run: number[]; warmup: number[] }>;
  /** A backend that found no device: later steps SKIP with the same reason without running. */
  noDevice: Map<Backend, string>;
}

/** The steps of a workload suite on one target (see the module documentation). */
export function npuSteps(spec: NpuSuiteSpec, ctx: StepContext): SuiteStep[] {
  const state: TargetState = { cpu: new Map(), samples: new Map(), noDevice: new Map() };
  const steps: SuiteStep[] = [];
  for (const backend of BACKENDS) {
    const missing = missingCapability(
      { requires: [BACKEND_CAPABILITY[backend]] },
      ctx.target,
    );
    if (missing) {
      steps.push({
        name: `${spec.prefix}/${backend}`,
        run: async (c) => ({
          verdict: "SKIP",
          reason: missing,
          details: {
            backend,
            expectation: await expectationFor(spec, backend, c, state),
          },
        }),
      });
      continue;
    }
    for (const ref of spec.references) {
      steps.push({
        name: `${spec.prefix}/${backend}/${imageName(ref.image)}`,
        run: (c) => imageStep(spec, backend, ref, c, state),
      });
    }
    steps.push({
      name: `${spec.prefix}/${backend}/latency`,
      run: (c) => latencyStep(spec, backend, c, state),
    });
  }
  return steps;
}

async function expectationFor(
  spec: NpuSuiteSpec,
  backend: Backend,
  ctx: StepContext,
  state: TargetState,
): Promise<Expectation> {
  state.bootargs ??= ctx.target.command.run("cat /proc/cmdline", { timeoutMs: 20_000 }).then(
    (r) => r.exitStatus === 0 ? r.stdout.trim() : "",
  );
  const bootargs = await state.bootargs;
  return oracleExpectation(
    {
      board: ctx.target.board.board,
      boardPath: ctx.target.board.path,
      release: ctx.release,
      bootargs,
    },
    spec.oracleName(backend),
    backend,
  );
}

function install(spec: NpuSuiteSpec, ctx: StepContext, state: TargetState) {
  state.installed ??= (async () => {
    const bundle = await ctx.once("workload-bundle", () => buildWorkload());
    const root = await installBundle(ctx.target, bundle);
    const remote = await installModels(ctx.target, [
      ...spec.model.files,
      ...spec.references.map((r) => r.image),
    ]);
    return { root, teflon: bundle.teflon && `${root}/${bundle.teflon}`, remote };
  })();
  return state.installed;
}

/** Console text that arrived since `mark` (the console's length when the run started). */
function consoleSince(ctx: StepContext, mark: number): string[] {
  const text = ctx.target.console?.recorder.text ?? "";
  return text.slice(mark).split("\n");
}

/** Correctness and the cpu comparison of a finished run. */
export interface Verdicts {
  /** Against the published reference. */
  correctness: Judgement;
  /** Against the cpu result of the same image (NPU backends, when the cpu ran). */
  againstCpu?: Judgement;
  /** The report's cell: `156 Shih-Tzu 0.99`, `3 person, bus`. */
  summary: string;
  /** What the details keep of the output (top-k, detections). */
  result: Record<string, unknown>;
}

async function judgeRkwl(
  spec: NpuSuiteSpec,
  backend: Backend,
  ref: ClassificationReference | DetectionReference,
  run: RkwlRun,
  state: TargetState,
): Promise<Verdicts> {
  const labels = (await readLabels(spec.model.labels)).map(shortLabel);
  const cpu = state.cpu.get(ref.image);
  if ("objects" in ref) {
    const j = judgeDetection(run, ref, labels);
    if (backend === "cpu") state.cpu.set(ref.image, { detections: j.detections });
    const againstCpu = backend !== "cpu" && cpu?.detections
      ? judgeDetectionsAgainstCpu(j.detections, cpu.detections, 0.5, labels)
      : undefined;
    return {
      correctness: j,
      againstCpu,
      summary: detectionSummary(j.detections, labels),
      result: {
        detections: j.detections.slice(0, 50),
        matched: j.match.matched.length,
        expected: ref.objects.length,
      },
    };
  }
  const j = judgeClassification(run, ref, labels);
  if (backend === "cpu") state.cpu.set(ref.image, { top: run.top });
  const againstCpu = backend !== "cpu" && cpu?.top
    ? judgeAgainstCpu(run, { ...run, top: cpu.top }, 0.1, labels)
    : undefined;
  return {
    correctness: j,
    againstCpu,
    summary: `${j.top1} ${labels[j.top1] ?? ""} ${j.score.toFixed(2)}`.replace("  ", " "),
    result: { top: run.top },
  };
}

/** `3 person, bus` from decoded detections at ≥ 0.5. */
export function detectionSummary(ds: readonly Detection[], labels: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const d of ds.filter((x) => x.score >= 0.5)) {
    const name = labels[d.classIndex] ?? String(d.classIndex);
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  if (!counts.size) return "nothing at ≥ 0.5";
  return [...counts].map(([n, k]) => k > 1 ? `${k} ${n}` : n).join(", ");
}

/**
 * Turn a judged run into the step's outcome: PASS when the output is correct (and agrees with
 * the cpu's) and the oracle does not disagree; FAIL otherwise, every reason in one line. The
 * oracle comparison goes into `details.predicted`, `observed`, `verdict` (AGREE, DISAGREE,
 * UNCERTAIN) and `scenario`, which the history records as an observation.
 *
 * @param v the judgements; undefined when the run gave no output to judge
 */
export function workloadOutcome(
  backend: Backend,
  expectation: Expectation,
  observation: Observation,
  v: Verdicts | undefined,
  details: Record<string, unknown>,
): StepOutcome {
  const oracle = compareWithOracle(expectation, observation);
  const problems: string[] = [];
  if (v && v.correctness.verdict === "FAIL") problems.push(v.correctness.reason);
  if (v?.againstCpu?.verdict === "FAIL") problems.push(`against the cpu: ${v.againstCpu.reason}`);
  if (!v && observation.verdict) problems.push(`${observation.verdict}: ${observation.why}`);
  if (oracle.verdict === "DISAGREE") problems.push(oracle.summary);
  const oracleDetails = {
    scenario: `workload ${backend}`,
    predicted: expectation.verdict,
    observed: observation.verdict ?? null,
    verdict: oracle.verdict,
    oracle: { summary: oracle.summary, why: expectation.why, evidence: observation.evidence },
  };
  return {
    verdict: problems.length ? "FAIL" : "PASS",
    reason: problems.length ? problems.join("; ") : undefined,
    details: {
      summary: `${
        v?.summary ?? observation.verdict ?? "-"
      }; oracle ${oracle.verdict.toLowerCase()}`,
      backend,
      ...details,
      ...(v
        ? {
          correctness: v.correctness.reason,
          ...(v.againstCpu ? { againstCpu: v.againstCpu.reason } : {}),
          ...v.result,
        }
        : {}),
      ...oracleDetails,
    },
  };
}

async function imageStep(
  spec: NpuSuiteSpec,
  backend: Backend,
  ref: ClassificationReference | DetectionReference,
  ctx: StepContext,
  state: TargetState,
): Promise<StepOutcome> {
  const expectation = await expectationFor(spec, backend, ctx, state);
  const skipped = state.noDevice.get(backend);
  if (skipped) {
    return {
      verdict: "SKIP",
      reason: skipped,
      details: { backend, image: ref.image, expectation, predicted: expectation.verdict },
    };
  }
  if (backend === "rknn") return await rknnImageStep(spec, ref, ctx, state, expectation);
  const { root, teflon, remote } = await install(spec, ctx, state);
  if (backend === "rocket" && !teflon) {
    throw new InfraError(
      "the workload bundle has no Teflon delegate: the rocket backend cannot run",
      "rebuild the bundle (runner/workload/build.ts bundles mesa-teflon-delegate)",
    );
  }
  const p = spec.passes[backend];
  const args = [
    ...spec.model.files.flatMap((f) => ["--model", remote.get(f)!]),
    "--image",
    remote.get(ref.image)!,
    ...(spec.model.task === "detect" ? ["--task", "detect"] : []),
    "--warmup",
    String(p.warmup),
    "--loops",
    String(p.loops),
    ...(backend === "rocket" ? ["--delegate", teflon!] : []),
  ];
  const mark = ctx.target.console?.recorder.text.length ?? 0;
  let tr;
  try {
    tr = await runOnTarget(ctx.target, root, args);
  } catch (err) {
    // An NPU run that hangs while the kernel reports failed jobs is the workload's failure.
    const lines = consoleSince(ctx, mark);
    if (!(err instanceof TimeoutError) || backend === "cpu") throw err;
    const obs = observeRkwl(parseRkwlOutput(""), undefined, lines, true);
    if (!obs.evidence.length) throw err;
    return workloadOutcome(backend, expectation, obs, undefined, { image: ref.image });
  }
  const run = tr.run;
  const kernelLines = [...tr.kernelLines, ...consoleSince(ctx, mark)];
  const base = {
    image: ref.image,
    command: tr.command,
    exitStatus: tr.exitStatus,
    warmupMs: run.invokes.filter((v) => v.phase === "warmup").map((v) => v.ms),
    runMs: runTimes(run),
  };
  if (run.outcome === "no-device") {
    const obs = observeRkwl(run, undefined, kernelLines);
    const reason = `${obs.why}${
      run.noDevice ? ` (${run.noDevice.delegate.replace(/^.*\//, "")})` : ""
    }`;
    state.noDevice.set(backend, reason);
    const o = workloadOutcome(backend, expectation, obs, undefined, base);
    return { ...o, verdict: "SKIP", reason };
  }
  if (run.outcome === "bad-input" || run.outcome === "delegate-load-failed") {
    const e = run.errors[0];
    return {
      verdict: "ERROR",
      reason: `rkwl ${run.outcome}: ${e ? `${e.stage}: ${e.message}` : tr.output.slice(-200)}`,
      details: { backend, ...base },
    };
  }
  const v = run.outcome === "done" ? await judgeRkwl(spec, backend, ref, run, state) : undefined;
  const obs = observeRkwl(run, v?.correctness, kernelLines);
  if (run.outcome === "done") {
    const s = state.samples.get(backend) ?? { run: [], warmup: [] };
    s.run.push(...base.runMs);
    s.warmup.push(...base.warmupMs);
    state.samples.set(backend, s);
  }
  return workloadOutcome(backend, expectation, obs, v, base);
}

/** The files the rknn backend needs in `firmware_dir`, relative to it. */
export function rknnFiles(spec: NpuSuiteSpec): string[] {
  return [
    `bin/${spec.rknn.demo}`,
    "bin/rknn_benchmark",
    "lib/librknnrt.so",
    `model/${spec.rknn.model}`,
    ...spec.rknn.files ?? [],
  ];
}

/** The board file's `firmware_dir`, checked to hold the rknn backend's files. */
async function firmwareDir(spec: NpuSuiteSpec, ctx: StepContext): Promise<string> {
  const fw = ctx.target.board.board.firmware_dir;
  if (!fw) {
    throw new UserInputError(
      `${ctx.target.board.path} claims rknn but has no firmware_dir`,
      "add firmware_dir: the directory on the board holding the RKNN SDK's bin/, lib/ and model/",
    );
  }
  const files = rknnFiles(spec);
  const r = await ctx.target.command.run(
    files.map((f) => `test -e ${shellQuote(`${fw}/${f}`)} || echo ${shellQuote(f)}`).join("; "),
    { timeoutMs: 20_000 },
  );
  const absent = r.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
  if (absent.length) {
    throw new UserInputError(
      `firmware_dir ${fw} on ${ctx.target.name} lacks ${absent.join(", ")}`,
      "copy the RKNN SDK's programs to bin/, librknnrt.so to lib/ and the .rknn models to model/",
    );
  }
  return fw;
}

/** `cd FW && LD_LIBRARY_PATH=FW/lib ./bin/PROGRAM ARGS` (the demos read files relative to FW). */
function rknnCommand(fw: string, program: string, args: readonly string[]): string {
  return `cd ${shellQuote(fw)} && LD_LIBRARY_PATH=${shellQuote(`${fw}/lib`)} ${
    [`./bin/${program}`, ...args].map(shellQuote).join(" ")
  } 2>&1`;
}

async function rknnImageStep(
  spec: NpuSuiteSpec,
  ref: ClassificationReference | DetectionReference,
  ctx: StepContext,
  state: TargetState,
  expectation: Expectation,
): Promise<StepOutcome> {
  const fw = await firmwareDir(spec, ctx);
  const { remote } = await install(spec, ctx, state);
  const command = rknnCommand(fw, spec.rknn.demo, [
    `model/${spec.rknn.model}`,
    remote.get(ref.image)!,
  ]);
  const mark = ctx.target.console?.recorder.text.length ?? 0;
  const r = await ctx.target.command.run(command, { timeoutMs: 300_000 });
  const kernelLines = [...r.kernelLines, ...consoleSince(ctx, mark)];
  const out = parseRknnOutput([r.stdout, ...kernelLines].join("\n"));
  const labels = (await readLabels(spec.model.labels)).map(shortLabel);
  let v: Verdicts | undefined;
  if ("objects" in ref && out.detections.length) {
    const { detections } = rknnDetections(out, await readLabels(spec.model.labels));
    const match = matchDetections(ref.objects, detections);
    const missing = match.missing.filter((o) => o.required);
    const correctness: Judgement = missing.length
      ? { verdict: "FAIL", reason: `${missing.length} required objects not found` }
      : { verdict: "PASS", reason: `${match.matched.length} of ${ref.objects.length} found` };
    const cpu = state.cpu.get(ref.image)?.detections;
    v = {
      correctness,
      againstCpu: cpu ? judgeDetectionsAgainstCpu(detections, cpu, 0.5, labels) : undefined,
      summary: detectionSummary(detections, labels),
      result: { detections, matched: match.matched.length, expected: ref.objects.length },
    };
  } else if (!("objects" in ref) && out.topK.length) {
    const run = { ...parseRkwlOutput(""), ...rknnTop(out) };
    const j = judgeClassification(run, ref, labels);
    const cpu = state.cpu.get(ref.image)?.top;
    v = {
      correctness: j,
      againstCpu: cpu ? judgeAgainstCpu(run, { ...run, top: cpu }, 0.1, labels) : undefined,
      summary: `${j.top1} ${labels[j.top1] ?? ""} ${j.score.toFixed(2)}`,
      result: { top: run.top },
    };
  }
  const obs = observeRknn(out, v?.correctness, kernelLines);
  const base = {
    image: ref.image,
    command,
    exitStatus: r.exitStatus,
    runtime: out.runtimeVersion?.raw,
    driver: out.driverVersion,
  };
  if (obs.verdict === "no-device") {
    state.noDevice.set("rknn", obs.why);
    return {
      ...workloadOutcome("rknn", expectation, obs, undefined, base),
      verdict: "SKIP",
      reason: obs.why,
    };
  }
  if (!obs.verdict) {
    return {
      verdict: "ERROR",
      reason: `${spec.rknn.demo}: ${obs.why}`,
      details: { backend: "rknn", ...base },
    };
  }
  return workloadOutcome("rknn", expectation, obs, v, base);
}

async function latencyStep(
  spec: NpuSuiteSpec,
  backend: Backend,
  ctx: StepContext,
  state: TargetState,
): Promise<StepOutcome> {
  const skipped = state.noDevice.get(backend);
  if (skipped) return { verdict: "SKIP", reason: skipped, details: { backend } };
  let samples = state.samples.get(backend);
  let extra: Record<string, unknown> = {};
  if (backend === "rknn") {
    const fw = await firmwareDir(spec, ctx);
    const { remote } = await install(spec, ctx, state);
    const p = spec.passes.rknn;
    const command = rknnCommand(fw, "rknn_benchmark", [
      `model/${spec.rknn.model}`,
      remote.get(spec.references[0].image)!,
      String(p.loops),
    ]);
    const r = await ctx.target.command.run(command, { timeoutMs: 600_000 });
    const out = parseRknnOutput(r.stdout);
    samples = {
      run: out.perfRuns.map((x) => x.elapsedMs),
      warmup: out.warmupRuns.map((x) => x.elapsedMs),
    };
    extra = { command, avgTimeMs: out.avgTimeMs };
  }
  if (!samples?.run.length) {
    return {
      verdict: "SKIP",
      reason: `no timed run of the ${backend} backend (see its steps above)`,
      details: { backend },
    };
  }
  const expectation = await expectationFor(spec, backend, ctx, state);
  const band = backend === "cpu" ? undefined : expectation.latency;
  const test = `${spec.prefix}/${backend}/latency`;
  const baseline = ctx.baseline?.(test, "invoke") ?? [];
  const a = assessLatency(samples.run, { band, baseline });
  const measurements: Measurement[] = samples.run.map((value) => ({
    name: "invoke",
    value,
    unit: "ms",
  }));
  const slower = [
    ...(a.expectation?.judgement === "slower" ? ["than the oracle expects"] : []),
    ...(a.baseline?.judgement === "slower" ? ["than this target's baseline"] : []),
  ];
  const judged = Boolean(
    a.expectation || (a.baseline && a.baseline.judgement !== "too few samples"),
  );
  // The cpu's latency is reported, never failed: on a shared machine under TCG it is load.
  const verdict = backend !== "cpu" && slower.length
    ? "FAIL"
    : backend !== "cpu" && judged
    ? "PASS"
    : "DONE";
  return {
    verdict,
    reason: verdict === "FAIL" ? `slower ${slower.join(" and ")}: ${a.summary}` : undefined,
    measurements,
    details: {
      summary: a.summary,
      backend,
      samplesMs: samples.run,
      warmupMs: samples.warmup,
      interval: a.interval,
      ...(a.expectation ? { expectation: a.expectation } : {}),
      ...(a.baseline ? { baseline: a.baseline } : {}),
      ...extra,
    },
  };
}
