/**
 * The farm's command line: `rkhil run --farm FILE [--jobs N]`, `rkhil run --resume RUN_DIR`
 * (the run command's farm branch), `rkhil farm status --farm FILE` and
 * `rkhil farm release ID --farm FILE [--force]`.
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import { loadFarm } from "../../boards/farm_load.ts";
import { UserInputError } from "../errors.ts";
import { Interrupt } from "../jobs/interrupt.ts";
import * as opt from "../cli/options.ts";
import { CliExit } from "../target/cli.ts";
import { terminalSafe } from "../safe_text.ts";
import { type Lease, LeaseDir, type LeaseStore, staleReason } from "./lease.ts";
import type { Farm } from "../../boards/farm_load.ts";
import type { RunQueueState } from "./pg_store.ts";

/**
 * The farm's lease store (its database, else its lease directory), where it is shown, and how
 * a lease's staleness is judged (the database's clock there); `close` when done.
 */
async function leaseStoreOf(f: Farm): Promise<{
  store: LeaseStore;
  where: string;
  stale: (l: Lease) => Promise<string | undefined>;
  close: () => Promise<void>;
  queue?: () => Promise<RunQueueState[]>;
}> {
  if (f.database) {
    const { PgFarmStore } = await import("./pg_store.ts");
    const pg = await PgFarmStore.open(f.database, f.name);
    return {
      store: pg,
      where: pg.where,
      stale: (l) => pg.stale(l),
      close: () => pg.close(),
      queue: () => pg.queueState(),
    };
  }
  return {
    store: new LeaseDir(f.leaseDir),
    where: f.leaseDir,
    stale: (l) => Promise.resolve(staleReason(l)),
    close: () => Promise.resolve(),
  };
}

/**
 * One run's queue for `rkhil farm status`: `run R (hosts: lab-a, lab-b): 2 queued, 1 running,
 * 3 ended — lab-a/R: 1 running 2 ended; ...`.
 */
export function queueLine(q: RunQueueState): string {
  const hosts = [...new Set(q.hosts.map((h) => h.host))];
  const state = q.queued + q.running === 0 ? "done" : "not done";
  return `run ${q.run}${hosts.length ? ` (hosts: ${hosts.join(", ")})` : ""}: ${state}, ` +
    `${q.queued} queued, ${q.running} running, ${q.ended} ended${
      q.byRunner.length
        ? " — " +
          q.byRunner.map((b) =>
            `${b.runner}: ${b.running ? `${b.running} running ` : ""}${b.ended} ended`
          ).join("; ")
        : ""
    }`;
}

/** `--jobs N`: 1 to 64. */
export function jobsOption(value: string): number {
  if (!/^[1-9][0-9]?$/.test(value) || Number(value) > 64) {
    throw new InvalidArgumentError("expected a whole number of jobs from 1 to 64, e.g. --jobs 2");
  }
  return Number(value);
}

/** `--join RUN`: a run id (a run directory's name: letters, digits, `.`, `_`, `-`). */
export function joinRunOption(value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(value)) {
    throw new InvalidArgumentError(
      "expected the run id another lab host printed, e.g. --join 2026-01-01T00-00-00Z-farm-lab-1a2b",
    );
  }
  return value;
}

/** The options of `rkhil run` the farm branch reads. */
export interface FarmRunCliOptions {
  farm?: string;
  resume?: string;
  /** `--join RUN`: work the queue of run RUN another lab host started. */
  join?: string;
  jobs?: number;
  kernel: string[];
  suite: string[];
  predictBoard: string[];
  board: string[];
  /** `--db`: the results history (a file or a `postgres://` URL). */
  db?: string;
  /** false with `--no-history`. */
  history?: boolean;
}

/**
 * `rkhil run --farm` / `--resume`: check everything, then run the farm.
 *
 * @throws {UserInputError} (exit 2) for options that do not go together, a bad farm file, a
 *   board of it that cannot run as a board target, a run directory that is not a farm run.
 * @throws {CliExit} with the run's exit status when it is not 0.
 */
export async function farmRunAction(
  o: FarmRunCliOptions,
  cmd: Command,
  runsRoot: () => string,
  defaultKernels: readonly string[],
): Promise<void> {
  const given = (name: string) => cmd.getOptionValueSource(name) === "cli";
  if (o.db && o.history === false) {
    throw new UserInputError(
      "--db cannot be used with --no-history",
      "drop one of them: --db writes the history there, --no-history writes none",
    );
  }
  if (o.join && !o.farm) {
    throw new UserInputError(
      "--join needs --farm FILE",
      "give this lab host's farm file: rkhil run --farm lab.yaml --join RUN",
    );
  }
  if (o.join && o.resume) {
    throw new UserInputError(
      "--join cannot be used with --resume",
      "resume a joined run with rkhil run --resume RUN_DIR (this host's run directory)",
    );
  }
  if (o.farm && o.resume) {
    throw new UserInputError(
      "--farm cannot be used with --resume",
      "the run directory names its farm",
    );
  }
  for (const other of ["board", "mem", "boardsDir"]) {
    if (given(other)) {
      throw new UserInputError(
        `--${other.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())} cannot be used with ${
          o.farm ? "--farm" : "--resume"
        }: the farm file names the targets`,
        "put the targets, their memory and board directories in the farm file",
      );
    }
  }
  const { selectSuites } = await import("../../tests/mod.ts");
  const { checkFarm, checkFarmKernels, loadResume, runFarm } = await import("./run_farm.ts");
  let farm, kernels, suites, predictBoards, jobs, join;
  if (o.join) {
    farm = await loadFarm(opt.userPath(o.farm!));
    const run = await sharedRunOf(farm, o.join);
    const asked: [string, string[], string[]][] = [
      ["kernel", o.kernel, run.spec.kernels],
      ["suite", o.suite, run.spec.suites],
      ["predictBoard", o.predictBoard, run.spec.predictBoards],
    ];
    for (const [name, mine, theirs] of asked) {
      if (given(name) && mine.join("\n") !== theirs.join("\n")) {
        const flag = "--" + name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
        throw new UserInputError(
          `${flag} ${mine.join(" ")} contradicts run ${o.join}, which runs ${flag} ${
            theirs.join(" ")
          }`.slice(0, 400),
          `drop ${flag}: a joining lab host runs what the run was started with`,
        );
      }
    }
    kernels = run.spec.kernels;
    suites = selectSuites(run.spec.suites);
    predictBoards = run.spec.predictBoards;
    jobs = o.jobs ?? 2;
    join = o.join;
  } else if (o.resume) {
    for (const other of ["kernel", "suite", "predictBoard", "runsDir"]) {
      if (given(other)) {
        throw new UserInputError(
          `--resume runs the rest of the run as it was asked; --${
            other.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())
          } does not go with it`,
          "drop it (only --jobs may change)",
        );
      }
    }
    const r = await loadResume(o.resume);
    farm = r.farm;
    join = r.spec.join;
    kernels = r.spec.kernels;
    suites = selectSuites(r.spec.suites);
    predictBoards = r.spec.predictBoards;
    jobs = o.jobs ?? r.spec.jobs;
  } else {
    farm = await loadFarm(opt.userPath(o.farm!));
    kernels = o.kernel.length ? o.kernel : [...defaultKernels];
    suites = selectSuites(o.suite);
    predictBoards = o.predictBoard.length ? o.predictBoard : ["rock-3b-8g"];
    jobs = o.jobs ?? 2;
  }
  await checkFarm(farm);
  await checkFarmKernels(farm, kernels, join);
  const interrupt = Interrupt.listen();
  const r = await runFarm({
    farm,
    kernels,
    suites,
    predictBoards,
    jobs,
    runsRoot: o.resume ? "" : runsRoot(),
    resume: o.resume,
    join,
    interrupt,
    history: o.history === false ? false : o.db,
  }).finally(() => interrupt.dispose());
  if (r.exitCode !== 0) throw new CliExit(r.exitCode);
}

/**
 * The run `run` of `farm`'s database, for `--join`.
 *
 * @throws {UserInputError} (exit 2) when the farm has no database, the database has no such
 *   run, or the run is another farm's.
 */
async function sharedRunOf(farm: Farm, run: string) {
  if (!farm.database) {
    throw new UserInputError(
      `--join needs a farm whose job queue is in a database; ${farm.path} has no database`,
      "add database: postgres://USER@HOST/DB (the one the starting lab host uses) to the farm file",
    );
  }
  const { PgFarmStore } = await import("./pg_store.ts");
  const pg = await PgFarmStore.open(farm.database, farm.name);
  try {
    const r = await pg.sharedRun(run);
    if (!r) {
      throw new UserInputError(
        `the farm's database ${pg.where} has no farm run ${run}`,
        "give --join the run id the starting lab host printed (rkhil farm status lists the runs)",
      );
    }
    if (r.farm !== farm.name) {
      throw new UserInputError(
        `run ${run} is a run of farm ${r.farm}, not of ${farm.name}`,
        `join it with a farm file named ${r.farm} (the farm's name keeps the leases apart)`,
      );
    }
    return r;
  } finally {
    await pg.close();
  }
}

/** Add `rkhil farm status|release`. */
export function addFarmCommand(program: Command): void {
  const farm = program.command("farm").description(
    "The leases of a farm's targets (one file per target in the farm's lease directory, or " +
      "rows in the farm's database)",
  );
  farm.command("status")
    .description("Who holds which target of the farm, since when, until when")
    .requiredOption("--farm <file>", "the farm file", opt.inputFile)
    .action(async (o: { farm: string }) => {
      const f = await loadFarm(o.farm);
      const ls = await leaseStoreOf(f);
      try {
        const held = new Map((await ls.store.list()).map((l) => [l.target, l.lease]));
        console.log(`farm ${f.name}: leases in ${terminalSafe(ls.where)}`);
        for (const t of f.targets) {
          const l = held.get(t.id);
          const stale = l && l !== "damaged" ? await ls.stale(l) : undefined;
          const what = !l
            ? "free"
            : l === "damaged"
            ? "damaged lease file (rkhil farm release to remove it)"
            : `${l.owner} pid ${l.pid} since ${l.start} until ${l.expires}${
              l.run ? ` (${l.run})` : ""
            }${stale ? ` — stale: ${stale}` : ""}`;
          console.log(`  ${t.id.padEnd(16)} ${terminalSafe(what)}`);
        }
        for (const [id, l] of held) {
          if (!f.targets.some((t) => t.id === id)) {
            console.log(
              `  ${id.padEnd(16)} not in the farm: ${l === "damaged" ? "damaged" : l.owner}`,
            );
          }
        }
        for (const q of await ls.queue?.() ?? []) console.log(terminalSafe(queueLine(q)));
      } finally {
        await ls.close();
      }
    });
  farm.command("release")
    .description(
      "Free a target's lease: a stale one (expired, or its holder on this host gone); with " +
        "--force whoever holds it (the holder starts no further job on it)",
    )
    .argument("<id>", "the target's id")
    .requiredOption("--farm <file>", "the farm file", opt.inputFile)
    .option("--force", "free it although its holder is alive")
    .action(async (id: string, o: { farm: string; force?: boolean }) => {
      const f = await loadFarm(o.farm);
      if (!f.targets.some((t) => t.id === id)) {
        throw new UserInputError(
          `farm ${f.name} has no target ${JSON.stringify(id.slice(0, 60))}`,
          `use one of: ${f.targets.map((t) => t.id).join(", ")}`,
        );
      }
      const ls = await leaseStoreOf(f);
      const freed = await ls.store.free(id, !!o.force).finally(() => ls.close());
      console.log(
        !freed
          ? `${id}: no lease`
          : freed === "damaged"
          ? `${id}: damaged lease file removed`
          : `${id}: released (was ${freed.owner} pid ${freed.pid} since ${freed.start})`,
      );
    });
}
