/**
 * `rkhil run --farm lab.yaml`: suites × kernels × the farm's targets in one run directory.
 *
 * - **Jobs**: an embedded QEMU target has one job per kernel; a board one job (it runs its own
 *   kernel), or, when its board file has `deploy:`, one job per kernel whose first step after
 *   `boot` is `deploy` (runner/board/deploy.ts: PASS, FAIL with the failed boot's console and
 *   the suites not run, MISS when not even the known-good kernel came back: taken out). A job
 *   boots the target once and runs every suite on it (the suite runner).
 * - **Scheduling**: each target runs its jobs one at a time, targets in parallel; a job starts
 *   only when it fits `--jobs N` and the host's cores and memory ({@linkcode HostGate}).
 * - **Health**: a target whose boot does not come up (MISS or ERROR), or that is lost during a
 *   job, is taken out: each later job of it is one MISS `target taken out: <why>`; the rest go
 *   on. A kernel that panics (FAIL) is the kernel's failure, not the target's.
 * - **Leases**: a target is leased (runner/farm/lease.ts) before its first job and renewed
 *   until its last; a target someone else holds is MISS `leased by ...` for every job; a stale
 *   lease (a crashed runner's) is taken back and said so.
 * - **One record**: every result goes through `runStep` into the run's one `results.jsonl`;
 *   `jobs.jsonl` says which jobs ended; `farm.json` what the run was asked to do, so that
 *   `rkhil run --resume RUN_DIR` after a SIGKILL runs the jobs that did not end, skipping the
 *   steps they recorded (the interrupted step, never recorded, runs again).
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { type Farm, type FarmTarget, type HostCost, loadFarm } from "../../boards/farm_load.ts";
import { checkBoardTarget } from "../board/target.ts";
import { isDirKernelSpec, readDirKernel } from "../board/deploy_kernel.ts";
import { UserInputError } from "../errors.ts";
import { type Interrupt, INTERRUPT_EXIT, InterruptedError } from "../jobs/interrupt.ts";
import { QemuTarget } from "../qemu/target.ts";
import { renderRunReport } from "../report/run_report.ts";
import { parseResults, RunStore, tally, type TestResult } from "../results/store.ts";
import { closeOpenTargets, runSuites, type TargetPlan } from "../suite/runner.ts";
import { boardPlan } from "../suite/plans.ts";
import { openRunHistory } from "../suite/run_job.ts";
import { baselineSamples } from "../history/baseline.ts";
import { runStep } from "../suite/run_step.ts";
import type { Suite } from "../suite/types.ts";
import { costText, hostCapacity, HostGate } from "./capacity.ts";
import { LeaseDir, LeaseHeldError, LeaseKeeper, type LeaseStore } from "./lease.ts";
import { leaseHost, PgFarmStore } from "./pg_store.ts";
import { type FarmProgress, PlainProgress, TerminalProgress } from "./progress.ts";

/** What `farm.json` of a farm run holds (what `--resume` runs again). */
export interface FarmRunSpec {
  /** Format version (1). */
  version: 1;
  /** The farm file, absolute. */
  farm: string;
  /** Kernel specs of the embedded targets. */
  kernels: string[];
  /** Suite names, in order. */
  suites: string[];
  /** Boards of the iommu suite's predictions. */
  predictBoards: string[];
  /** `--jobs`. */
  jobs: number;
  /** The run this host joined (`--join RUN`): its jobs come from that run's queue. */
  join?: string;
}

/** One job: a target on a kernel (a board without `deploy:`: its own kernel). */
export interface FarmJob {
  /** `rock-1` or `qemu-1 debian:trixie`. */
  key: string;
  /** The target it runs on. */
  target: FarmTarget;
  /** Kernel spec (embedded targets and boards with `deploy:`). */
  kernel?: string;
}

/** A target that runs each kernel of the run: an embedded one, or a board with `deploy:`. */
export function runsKernels(t: FarmTarget): boolean {
  return t.kind === "qemu" || t.board.board.deploy !== undefined;
}

/** Options of {@linkcode runFarm}. */
export interface FarmRunOptions {
  /** The farm (loaded). */
  farm: Farm;
  /** Kernel specs for the embedded targets. */
  kernels: readonly string[];
  /** Suites, in order. */
  suites: readonly Suite[];
  /** Boards for the `iommu` suite's predictions. */
  predictBoards: readonly string[];
  /** Most jobs at once (`--jobs`, >= 1). */
  jobs: number;
  /** Root of run directories (a new run), ignored with `resume`. */
  runsRoot: string;
  /** The run directory of a run to resume. */
  resume?: string;
  /**
   * `--join RUN`: work the queue of run `RUN` another lab host started (the farm's database),
   * on the targets of this farm; `kernels`, `suites`, `predictBoards` must be the run's. This
   * host's steps go to its own run directory and history run.
   */
  join?: string;
  /** The host's cores and memory (default: {@linkcode hostCapacity}). */
  capacity?: HostCost;
  /** SIGINT/SIGTERM. */
  interrupt?: Interrupt;
  /** Progress (default: live lines on a terminal, plain timestamped lines otherwise). */
  progress?: FarmProgress;
  /** Summary lines (default stdout). */
  log?: (line: string) => void;
  /**
   * The results history the run writes as it goes, as `rkhil run`'s: a file or a `postgres://`
   * URL; `false` for none. Default: the farm's `database` when it has one, else
   * `history.sqlite` beside the run directory.
   */
  history?: string | false;
}

/** What {@linkcode runFarm} did. */
export interface FarmRunResult {
  /** The run directory. */
  dir: string;
  /** Every result of the run (earlier sessions of a resumed run included). */
  results: TestResult[];
  /**
   * 0 when nothing failed, errored or went missing (a step interrupted and run again on resume
   * counts by its last record); 130 when interrupted; else 1.
   */
  exitCode: number;
  /** Wall time of this session in ms. */
  wallMs: number;
  /** Per job of this session: how long it held its target, in ms, and how it ended. */
  jobTimes: { key: string; ms: number; state: string }[];
  /** Most jobs that ran at once. */
  peak: number;
}

/** The jobs of a farm for `kernels`, target by target. */
export function farmJobs(farm: Farm, kernels: readonly string[]): FarmJob[] {
  return farm.targets.flatMap((t): FarmJob[] =>
    runsKernels(t)
      ? kernels.map((kernel) => ({ key: `${t.id} ${kernel}`, target: t, kernel }))
      : [{ key: t.id, target: t }]
  );
}

/**
 * Check, before any work, that every board of the farm can run as a board target and that the
 * lease directory is writable.
 *
 * @throws {UserInputError} (exit 2) naming the board or the directory and what to do.
 */
export async function checkFarm(farm: Farm): Promise<void> {
  for (const t of farm.targets) if (t.kind === "board") await checkBoardTarget(t.board);
  if (farm.database) return; // leases in the database: PgFarmStore.open checks it
  try {
    await Deno.mkdir(farm.leaseDir, { recursive: true });
    const probe = `${farm.leaseDir}/.probe-${Deno.pid}`;
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (err) {
    throw new UserInputError(
      `the farm's lease directory ${farm.leaseDir} is not writable: ${
        (err as Error).message.split("\n")[0]
      }`,
      "set leases.dir in the farm file to a directory every runner of this host can write",
    );
  }
}

/**
 * Check, before any work, that every kernel can run where the farm puts it: a `dir:` kernel
 * (runner/board/deploy_kernel.ts) only on a farm of boards some of which have `deploy:`, not
 * in a run several lab hosts share (`join`: the run joined, or resumed as joined; each host
 * would read its own files at that path under one key), its directory readable and holding
 * one kernel.
 *
 * @throws {UserInputError} (exit 2) naming the kernel and what to do.
 */
export async function checkFarmKernels(
  farm: Farm,
  kernels: readonly string[],
  join?: string,
): Promise<void> {
  for (const k of kernels.filter(isDirKernelSpec)) {
    const qemu = farm.targets.find((t) => t.kind === "qemu");
    if (qemu) {
      throw new UserInputError(
        `--kernel ${k.slice(0, 200)}: the farm's embedded target ${qemu.id} boots Debian ` +
          "kernels only; a dir: kernel is deployed on boards with deploy:",
        "run dir: kernels with a farm file of boards with deploy:",
      );
    }
    if (!farm.targets.some(runsKernels)) {
      throw new UserInputError(
        `--kernel ${k.slice(0, 200)}: no board of ${farm.path} has deploy:, so no job would ` +
          "deploy it",
        "add deploy: to the board files (README: Kernel deployment on boards) or drop --kernel",
      );
    }
    if (join) {
      throw new UserInputError(
        `--kernel ${k.slice(0, 200)}: run ${join} is shared by lab hosts and a dir: kernel is ` +
          "a directory on one host",
        "run dir: kernels on one lab host (without --join), or use debian: kernels",
      );
    }
    await readDirKernel(k);
  }
}

let prepareChain: Promise<unknown> = Promise.resolve();

/** The plan of one job. QEMU targets are prepared one at a time (apt, initramfs builds). */
function planOf(job: FarmJob): TargetPlan {
  const t = job.target;
  if (t.kind === "qemu") {
    const kernel = job.kernel!;
    return {
      name: t.id,
      kernel,
      bootDetails: { memory: t.memory },
      open: (dir, variant) => {
        const p = prepareChain.then(() =>
          QemuTarget.prepare({
            kernel,
            runDir: dir,
            memory: variant?.memory ?? t.memory,
            cpus: t.cpus,
            extraAppend: variant?.append,
            // The iommu-emulated suite's scenarios (issue 15).
            iommus: variant?.iommus,
          })
        );
        prepareChain = p.catch(() => {});
        return p;
      },
    };
  }
  return boardPlan(t.id, t.board, job.kernel, { group: t.group });
}

/** Appends job ends to `jobs.jsonl`, flushed. */
class JobLog {
  private constructor(private readonly file: Deno.FsFile) {}
  static async open(dir: string): Promise<JobLog> {
    return new JobLog(await Deno.open(`${dir}/jobs.jsonl`, { append: true, create: true }));
  }
  static async read(dir: string): Promise<Map<string, string>> {
    const ended = new Map<string, string>();
    let text = "";
    try {
      text = await Deno.readTextFile(`${dir}/jobs.jsonl`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    for (const line of text.split("\n")) {
      try {
        const j = JSON.parse(line);
        if (typeof j?.job === "string" && typeof j?.state === "string") ended.set(j.job, j.state);
      } catch { /* a line torn by a kill: that job did not end */ }
    }
    return ended;
  }
  async ended(job: string, state: string): Promise<void> {
    const line = JSON.stringify({ job, state, at: new Date().toISOString() }) + "\n";
    await this.file.write(new TextEncoder().encode("\n" + line));
    await this.file.syncData();
  }
  close(): void {
    try {
      this.file.close();
    } catch { /* closed */ }
  }
}

/**
 * Read `farm.json` of a run directory to resume it.
 *
 * @throws {UserInputError} when `dir` is not a farm run directory.
 */
export async function readFarmRunSpec(dir: string): Promise<FarmRunSpec> {
  let spec: FarmRunSpec;
  try {
    spec = JSON.parse(await Deno.readTextFile(`${dir}/farm.json`));
  } catch (err) {
    throw new UserInputError(
      `${dir} is not a farm run directory (${
        err instanceof Deno.errors.NotFound ? "no farm.json" : "farm.json is damaged"
      })`,
      "give --resume the run directory a `rkhil run --farm` printed (runs/<time>-farm-<name>-...)",
    );
  }
  if (
    spec?.version !== 1 || typeof spec.farm !== "string" || !Array.isArray(spec.kernels) ||
    !Array.isArray(spec.suites) || !Array.isArray(spec.predictBoards) ||
    !Number.isInteger(spec.jobs)
  ) {
    throw new UserInputError(`${dir}/farm.json is not a farm run`, "check the run directory");
  }
  return spec;
}

/** Load what a resumed run needs: its spec and its farm. */
export async function loadResume(dir: string): Promise<{ spec: FarmRunSpec; farm: Farm }> {
  const spec = await readFarmRunSpec(dir);
  return { spec, farm: await loadFarm(spec.farm) };
}

/**
 * A step key of the done set: suite, test, target, kernel spec (boards without `deploy:`: any
 * kernel, they run their own).
 */
function stepKey(target: string, kernel: string | undefined, suite: string, test: string) {
  return JSON.stringify([target, kernel ?? "", suite, test]);
}

/** The kernel part of a result's step key on `farm` (see {@linkcode stepKey}). */
function keyKernel(farm: Farm, r: TestResult): string | undefined {
  const t = farm.targets.find((x) => x.id === r.target);
  return t && !runsKernels(t) ? undefined : r.kernel;
}

/**
 * Run the farm (see the module documentation). Returns when every job ended; `report.md` is
 * written from `results.jsonl` at the end, also when interrupted.
 */
export async function runFarm(opts: FarmRunOptions): Promise<FarmRunResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const jobs = farmJobs(opts.farm, opts.kernels);
  // Several lab hosts: leases and the job queue in the farm's database (reached before any work).
  const pgStore = opts.farm.database
    ? await PgFarmStore.open(opts.farm.database, opts.farm.name)
    : undefined;
  // Closed however runFarm ends, a throw before its try/finally included (else 10 s to exit).
  await using _pgStore = pgStore;
  const dir = opts.resume ?? RunStore.newDir(opts.runsRoot, `farm-${opts.farm.name}`);
  // The queue's run: the starting host's run directory name (`--join` names another host's).
  const hostRun = basename(dir);
  const runId = opts.join ?? hostRun;
  /** Who takes a job from the queue (its `runner`): this lab host and its run directory. */
  const runnerTag = `${leaseHost()}/${hostRun}`;
  const store = await RunStore.open(dir);
  const jobLog = await JobLog.open(dir);
  const ended = opts.resume ? await JobLog.read(dir) : new Map<string, string>();
  if (!opts.resume) {
    const spec: FarmRunSpec = {
      version: 1,
      farm: opts.farm.path,
      kernels: [...opts.kernels],
      suites: opts.suites.map((s) => s.name),
      predictBoards: [...opts.predictBoards],
      jobs: opts.jobs,
      ...(opts.join ? { join: opts.join } : {}),
    };
    await Deno.writeTextFile(`${dir}/farm.json`, JSON.stringify(spec, null, 2) + "\n");
  }
  // Steps recorded before (a resumed run): not run again. An interrupted step runs again.
  const done = new Map<string, TestResult>();
  if (opts.resume) {
    const before = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`)).results;
    for (const r of before) {
      if (r.verdict === "MISS" && /^interrupted \(/.test(r.reason ?? "")) continue;
      done.set(stepKey(r.target, keyKernel(opts.farm, r), r.suite ?? "", r.test), r);
    }
  }
  const perTarget = new Map<string, number>();
  for (const j of jobs) perTarget.set(j.target.id, (perTarget.get(j.target.id) ?? 0) + 1);
  const progress = opts.progress ??
    (Deno.stderr.isTerminal() ? new TerminalProgress(perTarget) : new PlainProgress(log));
  progress.note(
    `rkhil run --farm ${opts.farm.name}: results in ${dir}${
      opts.resume ? ` (resumed: ${ended.size} of ${jobs.length} jobs had ended)` : ""
    }`,
  );
  const gate = new HostGate(opts.jobs, opts.capacity ?? hostCapacity());
  const leases: LeaseStore = pgStore ?? new LeaseDir(opts.farm.leaseDir);
  // The results history, written as the run goes (as rkhil run's; never fails a result).
  const history = openRunHistory(
    opts.history ?? opts.farm.database ?? `${dirname(dir)}/history.sqlite`,
    dir,
    (l) => progress.note(l),
  );
  const jobTimes: FarmRunResult["jobTimes"] = [];
  const t0 = performance.now();
  let interrupted: InterruptedError | undefined;

  const resultsSoFar = async () =>
    parseResults(await Deno.readTextFile(`${dir}/results.jsonl`)).results;

  /** Record one MISS for a job that cannot run on its target. */
  const missJob = async (job: FarmJob, reason: string) => {
    await runStep(
      {
        store,
        suite: "boot",
        targetName: job.target.id,
        kernel: job.kernel ?? "(not booted)",
        state: {},
        log: (l) => progress.result(job.target.id, l),
        history: history?.writer,
      },
      "boot",
      () => Promise.resolve({ verdict: "MISS", reason }),
    );
    await jobLog.ended(job.key, `out: ${reason}`);
    await pgStore?.end(runId, job.key, `out: ${reason}`, runnerTag);
    progress.jobEnd(job.target.id, `out: ${reason}`);
  };

  const worker = async (target: FarmTarget, mine: FarmJob[]) => {
    let out = gate.neverFits(target.cost);
    let keeper: LeaseKeeper | undefined;
    // With the queue in the database, a target is leased only when this host has room for its
    // job, so that the lab hosts sharing the run share its targets.
    let slot = pgStore && !out ? await gate.acquire(target.cost) : undefined;
    if (!out) {
      try {
        const { lease, recovered } = await leases.take(target.id, {
          ttlS: opts.farm.leaseTtlS,
          run: pgStore ? runId : dir,
        });
        if (recovered) progress.note(`${target.id}: lease taken back from ${recovered}`);
        keeper = new LeaseKeeper(leases, lease, opts.farm.leaseTtlS);
      } catch (err) {
        if (!(err instanceof LeaseHeldError)) {
          slot?.(); // else the other targets' workers wait for it for good
          throw err;
        }
        if (pgStore && err.lease.run === runId) {
          // Another lab host (or runner) works this run's jobs of the target: they are its.
          slot?.();
          progress.note(`${target.id}: worked by ${err.lease.owner} for this run`);
          return;
        }
        out = err.message;
      }
    }
    if (out) {
      slot?.();
      slot = undefined;
    }
    // The target's next job: from the farm's queue while this runner holds the target (FOR
    // UPDATE SKIP LOCKED), else (lease files, or the target out) the jobs left in order.
    const pending = [...mine];
    const nextJob = async (): Promise<FarmJob | undefined> => {
      // With the queue, every job is taken from it (also the MISS of a target out), so each
      // job is recorded once whichever lab host takes it.
      while (pgStore) {
        // Under the target's lease while this runner holds it; without it (the target out, or
        // its lease lost) only while no runner of the run holds the target.
        const q = await pgStore.next(
          runId,
          target.id,
          runnerTag,
          keeper && !keeper.lost ? keeper.lease : undefined,
        );
        if (!q) return undefined;
        const i = pending.findIndex((j) => j.key === q.key);
        if (i >= 0) return pending.splice(i, 1)[0];
        if (ended.has(q.key)) {
          await pgStore.end(runId, q.key, "done (jobs.jsonl)", runnerTag); // ended before a kill
          continue;
        }
        return { key: q.key, target, ...(q.kernel ? { kernel: q.kernel } : {}) };
      }
      return pending.shift();
    };
    try {
      for (let job = await nextJob(); job; job = await nextJob()) {
        opts.interrupt?.check();
        out ??= keeper?.lost;
        if (out) {
          await missJob(job, `target taken out: ${out}`);
          continue;
        }
        const release = slot ?? await gate.acquire(target.cost);
        slot = undefined;
        const start = performance.now();
        let state = "done";
        try {
          opts.interrupt?.check();
          const before = (await resultsSoFar()).length;
          progress.jobStart(target.id, job.kernel ?? "own kernel");
          await runSuites({
            store,
            dir,
            suites: opts.suites,
            plans: [planOf(job)],
            predictBoards: opts.predictBoards,
            interrupt: opts.interrupt,
            log: (l) => progress.result(target.id, l),
            history: history?.writer,
            baseline: history
              ? (q) => baselineSamples(history.db, { ...q, runId: history.writer.run.id })
              : undefined,
            onStart: (suite, test) => progress.step(target.id, suite, test),
            done: opts.resume
              ? (suite, test) => done.get(stepKey(target.id, job.kernel, suite, test))
              : undefined,
          });
          const mineNow = (await resultsSoFar()).slice(before).filter((r) =>
            r.target === target.id
          );
          // A boot, or a deployment whose known-good kernel did not come back (MISS) or that
          // cannot work on this board (ERROR): the target is out. A FAIL is the kernel's.
          const health = mineNow.find((r) =>
            r.suite === "boot" && (r.test === "boot" || r.test === "deploy") &&
            (r.verdict === "MISS" || r.verdict === "ERROR")
          );
          const lost = mineNow.find((r) => /^target lost: /.test(r.reason ?? ""));
          if (health) {
            out = `health check failed: ${health.test} ${health.verdict}: ${health.reason ?? ""}`
              .slice(0, 300);
          } else if (lost) {
            out = `${lost.reason} (in ${lost.test})`.slice(0, 300);
          }
          if (out) state = `taken out: ${out}`;
        } catch (err) {
          state = err instanceof InterruptedError ? "interrupted" : `failed: ${err}`;
          throw err;
        } finally {
          release();
          jobTimes.push({ key: job.key, ms: performance.now() - start, state });
        }
        await jobLog.ended(job.key, state);
        await pgStore?.end(runId, job.key, state, runnerTag);
        progress.jobEnd(target.id, state);
      }
    } finally {
      slot?.();
      await keeper?.stop();
    }
  };

  try {
    const byTarget = new Map<string, FarmJob[]>();
    for (const j of jobs) {
      if (ended.has(j.key)) continue;
      byTarget.set(j.target.id, [...(byTarget.get(j.target.id) ?? []), j]);
    }
    if (pgStore && opts.join) {
      // The run's queue is there: this host works the jobs of the targets it has.
      await pgStore.joinRun(runId, hostRun);
      const queued = await pgStore.jobs(runId);
      for (const id of [...byTarget.keys()]) {
        if (!queued.some((q) => q.target === id)) byTarget.delete(id);
      }
      const away = [...new Set(queued.map((q) => q.target))].filter((id) =>
        !opts.farm.targets.some((t) => t.id === id)
      );
      progress.note(
        `joined run ${runId}: ${queued.length} jobs${
          away.length
            ? `; not reachable from here (left to the other hosts): ${away.join(", ")}`
            : ""
        }`,
      );
    } else if (pgStore) {
      await pgStore.startRun(runId, {
        kernels: [...opts.kernels],
        suites: opts.suites.map((s) => s.name),
        predictBoards: [...opts.predictBoards],
      });
      // The run's jobs in the farm's queue (a resumed run's are there already: kept as they are).
      await pgStore.enqueue(
        runId,
        jobs.map((j) => ({ key: j.key, target: j.target.id, kernel: j.kernel })),
      );
    }
    const settled = await Promise.allSettled(
      [...byTarget.values()].map((mine) => worker(mine[0].target, mine)),
    );
    const failures = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
    interrupted = failures.map((f) => f.reason).find((e) => e instanceof InterruptedError);
    const bug = failures.map((f) => f.reason).find((e) => !(e instanceof InterruptedError));
    if (interrupted || bug) {
      await QemuTarget.powerOffAll().catch(() => {});
      await closeOpenTargets();
    }
    if (bug && !interrupted) throw bug;
    if (pgStore) {
      // Lab hosts share the run: it is done when its queue is, not when this host is.
      const left = (await pgStore.jobs(runId)).filter((j) =>
        j.state === "queued" || j.state === "running"
      );
      const hostRuns = await pgStore.hostRuns(runId);
      log(
        `run ${runId}: ${
          left.length
            ? `not done: ${left.length} jobs queued or running on other lab hosts`
            : "its queue is empty"
        }; ${dir}/report.md holds this host's steps, the whole run's: rkhil report --history ` +
          `--db ${pgStore.where} ${hostRuns.map((r) => `--run ${r}`).join(" ")}`,
      );
    }
  } finally {
    progress.stop();
    store.close();
    jobLog.close();
    try {
      history?.db.close();
    } catch { /* closed already */ }
    await pgStore?.close();
    const record = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`));
    await Deno.writeTextFile(`${dir}/report.md`, renderRunReport(record) + "\n").catch(() => {});
  }
  const wallMs = performance.now() - t0;
  const results = await resultsSoFar();
  // A step interrupted in an earlier session and run again on resume counts once: its last record.
  const last = new Map<string, TestResult>();
  for (const r of results) {
    last.set(stepKey(r.target, keyKernel(opts.farm, r), r.suite ?? "", r.test), r);
  }
  const t = tally([...last.values()]);
  const sum = jobTimes.reduce((a, j) => a + j.ms, 0);
  log(
    `farm ${opts.farm.name}: ${jobTimes.length} jobs in ${(wallMs / 1000).toFixed(1)} s ` +
      `(jobs summed ${(sum / 1000).toFixed(1)} s, at most ${gate.peak} at once, host ` +
      `${costText(gate.capacity)})`,
  );
  log(
    `${t.PASS} PASS, ${t.DONE} DONE, ${t.FAIL} FAIL, ${t.ERROR} ERROR, ${t.MISS} MISS, ` +
      `${t.SKIP} SKIP — report: ${dir}/report.md${
        interrupted ? ` (interrupted: rkhil run --resume ${dir})` : ""
      }`,
  );
  return {
    dir,
    results,
    exitCode: interrupted ? INTERRUPT_EXIT : t.FAIL + t.ERROR + t.MISS > 0 ? 1 : 0,
    wallMs,
    jobTimes,
    peak: gate.peak,
  };
}
