/**
 * The rkhil command line. Run it through `./rkhil` (which finds or installs Deno first).
 *
 * @module
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { fileURLToPath } from "node:url";
import { findBoard, listBoards } from "./boards/load.ts";
import { boardFacts } from "./boards/facts.ts";
import { getPatch, patchNames } from "./oracle/patches.ts";
import { predict } from "./oracle/predict.ts";
import {
  compareRelease,
  isKnownRelease,
  parseRelease,
  releaseKey,
  RELEASES,
} from "./oracle/releases.ts";
import { releaseTimeline } from "./oracle/changes.ts";
import {
  buildScenario,
  type DtIommuNode,
  OracleInputError,
  resolveRelease,
  type Workload,
} from "./oracle/scenario.ts";
import { describeError, UserInputError } from "./runner/errors.ts";
import {
  addHistoryCommand,
  addReportCommand,
  dbOption as historyDbOption,
} from "./runner/history/cli.ts";
import { addLabCommand } from "./runner/board/cli.ts";
import { addFarmCommand, farmRunAction, jobsOption, joinRunOption } from "./runner/farm/cli.ts";
import { renderPrediction } from "./runner/report/prediction_text.ts";
import { renderReleaseReport } from "./runner/report/release_report.ts";
import { dtbIommuNodes } from "./runner/dtb.ts";
import { CliExit, qemuExec, qemuShell } from "./runner/target/cli.ts";
import * as opt from "./runner/cli/options.ts";
import { escapeControls, terminalJson, terminalSafe } from "./runner/safe_text.ts";
import { Interrupt } from "./runner/jobs/interrupt.ts";

const WORKLOADS = ["mobilenet_v1", "yolov5s"];

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Where run directories go unless --runs-dir says otherwise: `runs/` of this checkout. */
const DEFAULT_RUNS_DIR = fileURLToPath(new URL("./runs", import.meta.url));
const RUNS_DIR_HELP = "where run directories go (default: runs/ in the rkhil checkout)";

/** The run directory root: the option's (checked by its parser) or the checked default. */
function runsRoot(given: string | undefined): string {
  return given ?? opt.checkOption("--runs-dir", DEFAULT_RUNS_DIR, opt.outputDir);
}

/**
 * For `--kernel debian:<suite or version>`: fetch that kernel package, map its release onto the
 * driver knowledge base, and read the board's DTB from the package when it ships one.
 */
async function debianKernelInputs(
  spec: string,
  dtbName: string | undefined,
  soc: string,
): Promise<{ release: string; devicetree?: DtIommuNode[]; notes: string[] }> {
  const { fetchKernel } = await import("./runner/debian/kernel.ts");
  const k = await fetchKernel(spec);
  const rel = parseRelease(k.release);
  const pkg = `${k.package} ${k.version} (${k.suite})`;
  if (!rel || !isKnownRelease(rel)) {
    throw new UserInputError(
      `${spec} is ${pkg}, release ${k.release}, which the driver knowledge base does not cover`,
      `use a kernel from ${RELEASES[0]} to ${RELEASES[RELEASES.length - 1]}`,
    );
  }
  const notes = [`kernel: ${pkg}; driver facts of ${releaseKey(rel)} from the knowledge base`];
  if (!dtbName) {
    notes.push("device tree: the board file's (the board names no DTB)");
    return { release: releaseKey(rel), notes };
  }
  const path = k.dtbDir ? `${k.dtbDir}/${dtbName}` : undefined;
  const found = path ? await Deno.stat(path).then(() => true, () => false) : false;
  if (!path || !found) {
    notes.push(`device tree: the board file's (${k.package} ships no ${dtbName})`);
    return { release: releaseKey(rel), notes };
  }
  notes.push(`device tree: ${dtbName} from ${k.package}`);
  return { release: releaseKey(rel), devicetree: (await dtbIommuNodes(path, soc)).nodes, notes };
}

/** Build the CLI. Exposed for tests. */
export function cli(): Command {
  const program = new Command("rkhil")
    .description(
      "Hardware-in-the-loop test runner for Rockchip NPU boards, with an IOMMU oracle",
    )
    // One line per error; a value commander quotes is escaped and cut (runner/cli/options.ts).
    .configureOutput({
      outputError: (str, write) =>
        write(
          / is invalid|not specified|missing required/.test(str)
            ? opt.safeCommanderError(str)
            : opt.safeCommanderError(str).replace(/\n?$/, " (run with --help for usage)\n"),
        ),
    })
    .exitOverride();

  program.command("run")
    .description(
      "Run the suites of tests/ (boot, driver, iommu, iommu-emulated, probe, probe-boot, npu/...) " +
        "on targets: by default " +
        "the embedded target (QEMU aarch64, 8 GiB) on real Debian kernels; with --board, boards " +
        "reached through their board files. Report per target, kernel and suite",
    )
    .option(
      "--kernel <spec>",
      "kernel to run, repeatable (default: debian:bookworm, debian:trixie, debian:trixie-backports;" +
        " dir:/DIR a local kernel for farm boards with deploy:)",
      opt.repeatable(opt.runKernelSpec),
      [],
    )
    .option("--mem <size>", "guest memory (8G, 512M: 256M to 255G)", opt.guestMemory, "8G")
    .option(
      "--board <id>",
      "run on this board (board file), repeatable; its own kernel, or each --kernel deployed " +
        "when its board file has deploy:",
      opt.repeatable(opt.boardId),
      [],
    )
    .option(
      "--boards-dir <dir>",
      "extra directory of board files (searched first)",
      opt.repeatable(opt.inputDir),
      [],
    )
    .option("--suite <name>", "run only this suite, repeatable (default: all)", collect, [])
    .option(
      "--predict-board <id>",
      "board to predict each release's driver for, repeatable (default: rock-3b-8g)",
      opt.repeatable(opt.builtinBoardId),
      [],
    )
    .option("--runs-dir <dir>", RUNS_DIR_HELP, opt.outputDir)
    .option(
      "--db <path>",
      "results history written as the run goes (default: history.sqlite in the runs directory; " +
        "postgres://USER@HOST[:PORT]/DB for the history on PostgreSQL)",
      historyDbOption,
    )
    .option("--no-history", "write no results history (results.jsonl only)")
    .option(
      "--farm <file>",
      "run on the targets of this farm file (README: The board farm)",
      opt.inputFile,
    )
    .option("--jobs <n>", "with --farm or --resume: most jobs at once (default 2)", jobsOption)
    .option("--resume <run-dir>", "resume a farm run killed before it ended", opt.inputDir)
    .option(
      "--join <run>",
      "with --farm: work the job queue of this run another lab host started (its run id)",
      joinRunOption,
    )
    .action(
      async (
        o: {
          farm?: string;
          resume?: string;
          join?: string;
          jobs?: number;
          kernel: string[];
          mem: string;
          board: string[];
          boardsDir: string[];
          suite: string[];
          predictBoard: string[];
          runsDir?: string;
          db?: string;
          history: boolean;
        },
        cmd: Command,
      ) => {
        // Everything is checked before the first boot: a mistake is exit 2 with one line.
        if (o.farm || o.resume || o.join) {
          const { DEFAULT_KERNELS } = await import("./runner/suite/plans.ts");
          return await farmRunAction(o, cmd, () => runsRoot(o.runsDir), DEFAULT_KERNELS);
        }
        if (o.jobs !== undefined) {
          throw new UserInputError("--jobs goes with --farm or --resume", "add --farm FILE");
        }
        const dirKernel = o.kernel.find((k) => k.startsWith("dir:"));
        if (dirKernel && !o.board.length) {
          throw new UserInputError(
            `--kernel ${dirKernel.slice(0, 200)}: a dir: kernel is deployed on boards with ` +
              "deploy:, the embedded target boots Debian kernels",
            "add --board ID (or --farm FILE) of boards with deploy:, or use --kernel debian:<suite>",
          );
        }
        if (o.db && !o.history) {
          throw new UserInputError(
            "--db cannot be used with --no-history",
            "drop one of them: --db PATH writes the history there, --no-history writes none",
          );
        }
        if (o.board.length && cmd.getOptionValueSource("mem") === "cli") {
          throw new UserInputError(
            "--mem cannot be used with --board: a board has the memory it has",
            "drop --mem",
          );
        }
        const { selectSuites } = await import("./tests/mod.ts");
        const suites = selectSuites(o.suite);
        const root = runsRoot(o.runsDir);
        for (const id of o.predictBoard) await findBoard(id);
        const { boardPlans, DEFAULT_KERNELS, qemuPlans, shutdownQemu } = await import(
          "./runner/suite/plans.ts"
        );
        const plans = o.board.length
          ? await boardPlans(o.board, o.boardsDir, o.kernel)
          : qemuPlans(o.kernel.length ? o.kernel : DEFAULT_KERNELS, o.mem);
        const { runJob } = await import("./runner/suite/run_job.ts");
        const interrupt = Interrupt.listen();
        const r = await runJob({
          plans,
          suites,
          predictBoards: o.predictBoard.length ? o.predictBoard : ["rock-3b-8g"],
          runsRoot: root,
          shutdown: shutdownQemu,
          interrupt,
          history: o.history ? o.db ?? `${root}/history.sqlite` : false,
        }).finally(() => interrupt.dispose());
        if (r.exitCode !== 0) throw new CliExit(r.exitCode);
      },
    );

  program.command("validate")
    .description(
      "Shorthand for `rkhil run --suite probe --suite probe-boot --kernel SPEC`: reproduce the " +
        "IOMMU table failure modes on a real kernel with the probe module, oracle against each",
    )
    .requiredOption("--kernel <spec>", "Debian kernel: debian:<suite or version>", opt.kernelSpec)
    .option("--mem <size>", "guest memory (8G, 512M: 256M to 255G)", opt.guestMemory, "8G")
    .option("--runs-dir <dir>", RUNS_DIR_HELP, opt.outputDir)
    .action(async (o: { kernel: string; mem: string; runsDir?: string }) => {
      const root = runsRoot(o.runsDir);
      const { selectSuites } = await import("./tests/mod.ts");
      const { qemuPlans, shutdownQemu } = await import("./runner/suite/plans.ts");
      const { runJob } = await import("./runner/suite/run_job.ts");
      const interrupt = Interrupt.listen();
      const r = await runJob({
        plans: qemuPlans([o.kernel], o.mem),
        suites: selectSuites(["probe", "probe-boot"]),
        predictBoards: [],
        runsRoot: root,
        shutdown: shutdownQemu,
        interrupt,
      }).finally(() => interrupt.dispose());
      const { renderValidateRows, rowOfResult } = await import("./runner/probe/scenarios.ts");
      console.log("");
      console.log(
        renderValidateRows(r.results.filter((x) => x.test.startsWith("probe/")).map(rowOfResult)),
      );
      if (r.exitCode !== 0) throw new CliExit(r.exitCode);
    });

  program.command("predict")
    .description(
      "Predict, per IOMMU instance, where page tables land and what happens " +
        "(OK, BUS_ERROR, PAGE_FAULT, WRONG_PAGE, PROBE_FAILED, UNCERTAIN, DISABLED)",
    )
    .option(
      "--board <id>",
      "board id (see `rkhil boards`); required without --all-boards",
      opt.boardId,
    )
    .option(
      "--kernel <release>",
      "kernel release, e.g. 6.1, 6.12, 7.1 (see `rkhil releases`); required without --all-boards",
      opt.releaseOrKernelSpec,
    )
    .option(
      "--all-boards",
      "with --patch: the patch set's blast radius on every board file and release (narrow " +
        "with --board, --kernel); --markdown or --json for those formats",
    )
    .option("--markdown", "with --all-boards: print Markdown")
    .option(
      "--dtb <file>",
      "read the IOMMU nodes from this device-tree blob instead of the board's",
      opt.inputFile,
    )
    .option(
      "--patch <name>",
      "apply a downstream patch set (repeatable; see `rkhil patches`)",
      opt.repeatable(opt.patchName),
      [],
    )
    .option(
      "--bootargs <cmdline>",
      "kernel command line (mem=, swiotlb=, cma= move memory)",
      opt.bootArgs,
      "",
    )
    .addOption(new Option("--workload <name>", "NPU workload to predict for").choices(WORKLOADS))
    .option(
      "--boards-dir <dir>",
      "extra directory of board files (searched first)",
      opt.repeatable(opt.inputDir),
      [],
    )
    .option("--json", "print the prediction as JSON (schema in README)")
    .option("--explain", "list the facts behind every explanation step, with their sources")
    .action(async (o: {
      board?: string;
      kernel?: string;
      allBoards?: boolean;
      markdown?: boolean;
      dtb?: string;
      patch: string[];
      bootargs: string;
      workload?: string;
      boardsDir: string[];
      json?: boolean;
      explain?: boolean;
    }) => {
      if (o.allBoards) {
        const { blastOfPatchSets } = await import("./runner/blast.ts");
        const { renderBlastReport } = await import("./runner/report/blast_report.ts");
        const r = await blastOfPatchSets(o.patch, {
          boards: o.board ? [o.board] : undefined,
          kernels: o.kernel ? [o.kernel] : undefined,
          boardsDirs: o.boardsDir,
          bootargs: o.bootargs,
        });
        console.log(
          o.json ? JSON.stringify(r, null, 2) : renderBlastReport(r, { markdown: o.markdown }),
        );
        return;
      }
      if (!o.board || !o.kernel) {
        throw new UserInputError(
          `predict needs --board and --kernel (missing: ${
            [o.board ? "" : "--board", o.kernel ? "" : "--kernel"].filter(Boolean).join(", ")
          })`,
          "e.g. rkhil predict --board rock-3b-8g --kernel 6.12, or --patch NAME --all-boards",
        );
      }
      const loaded = await findBoard(o.board, o.boardsDir);
      const board = boardFacts(loaded.board, loaded.path);
      let devicetree = o.dtb ? (await dtbIommuNodes(o.dtb, board.soc)).nodes : undefined;
      let kernel = o.kernel;
      const notes: string[] = [];
      if (kernel.startsWith("debian:")) {
        // That exact Debian kernel: its release's driver facts, and its own DTB for the board.
        const pkg = await debianKernelInputs(kernel, loaded.board.devicetree.dtb, board.soc);
        kernel = pkg.release;
        notes.push(...pkg.notes);
        if (!devicetree && pkg.devicetree) devicetree = pkg.devicetree;
      }
      const workload: Workload | undefined = o.workload
        ? { name: o.workload, buffers: "all-memory" }
        : undefined;
      const scenario = buildScenario({
        board,
        kernel,
        notes,
        patches: o.patch,
        devicetree,
        bootargs: o.bootargs,
        workload,
      });
      const p = predict(scenario);
      console.log(
        o.json ? terminalJson(p) : escapeControls(renderPrediction(p, { explain: o.explain })),
      );
    });

  program.command("changes")
    .description(
      "What each kernel release changes for a board: outcome regressions and fixes per IOMMU, " +
        "with the driver facts (commits) behind them",
    )
    .requiredOption("--board <id>", "board id (see `rkhil boards`)", opt.boardId)
    .option("--from <release>", "first release", opt.knownRelease, RELEASES[0])
    .option("--to <release>", "last release", opt.knownRelease, RELEASES[RELEASES.length - 1])
    .option(
      "--patch <name>",
      "apply a downstream patch set (repeatable)",
      opt.repeatable(opt.patchName),
      [],
    )
    .option("--bootargs <cmdline>", "kernel command line", opt.bootArgs, "")
    .option(
      "--boards-dir <dir>",
      "extra directory of board files (searched first)",
      opt.repeatable(opt.inputDir),
      [],
    )
    .option("--markdown", "print a Markdown report")
    .option("--json", "print the timeline as JSON")
    .action(async (o: {
      board: string;
      from: string;
      to: string;
      patch: string[];
      bootargs: string;
      boardsDir: string[];
      markdown?: boolean;
      json?: boolean;
    }) => {
      const loaded = await findBoard(o.board, o.boardsDir);
      const from = resolveRelease(o.from), to = resolveRelease(o.to);
      if (compareRelease(from, to) > 0) {
        throw new UserInputError(
          `--from ${o.from} comes after --to ${o.to}`,
          "give the older release as --from and the newer one as --to",
        );
      }
      const releases = RELEASES.filter((r) => {
        const x = parseRelease(r)!;
        return compareRelease(x, from) >= 0 && compareRelease(x, to) <= 0;
      });
      const steps = releaseTimeline(
        { board: boardFacts(loaded.board, loaded.path), patches: o.patch, bootargs: o.bootargs },
        releases,
      );
      const title = `What each kernel release changes on ${loaded.board.name} (${o.board})` +
        (o.patch.length ? ` with ${o.patch.join(", ")}` : "");
      console.log(
        o.json
          ? terminalJson(steps)
          : escapeControls(renderReleaseReport(title, steps, { markdown: o.markdown })),
      );
    });

  program.command("blast-radius")
    .description(
      "What a patch (rockchip-iommu.c and/or Rockchip device trees; format-patch mail, mailbox " +
        "or a quoted reply) changes on every board file x release x IOMMU: outcome before -> " +
        "after (FIXED, BROKEN, CONSTRAINED, RELAXED, CHANGED) and every changed fact",
    )
    .argument(
      "<patch...>",
      "patch files, applied in order as one series",
      opt.repeatable(opt.inputFile),
    )
    .option(
      "--board <id>",
      "only this board (repeatable; default: every board file)",
      opt.repeatable(opt.boardId),
      [],
    )
    .option(
      "--kernel <release>",
      "only this release (repeatable; default: all)",
      opt.repeatable(opt.knownRelease),
      [],
    )
    .option("--bootargs <cmdline>", "kernel command line", opt.bootArgs, "")
    .option(
      "--boards-dir <dir>",
      "extra directory of board files (searched first)",
      opt.repeatable(opt.inputDir),
      [],
    )
    .option("--markdown", "print Markdown")
    .option("--json", "print JSON (schema in README)")
    .action(async (patches: string[], o: {
      board: string[];
      kernel: string[];
      bootargs: string;
      boardsDir: string[];
      markdown?: boolean;
      json?: boolean;
    }) => {
      const { blastOfPatchFiles } = await import("./runner/blast.ts");
      const { renderBlastReport } = await import("./runner/report/blast_report.ts");
      const r = await blastOfPatchFiles(patches, {
        boards: o.board,
        kernels: o.kernel,
        boardsDirs: o.boardsDir,
        bootargs: o.bootargs,
      });
      // Patches are user files: their text reaches the terminal escaped.
      console.log(
        o.json ? terminalJson(r) : escapeControls(renderBlastReport(r, { markdown: o.markdown })),
      );
    });

  program.command("atlas")
    .description(
      "Every Rockchip RK356x and RK3588 DTB each Debian kernel suite ships, with each IOMMU " +
        "node's predicted outcome per RAM size (2-32 GB) and what changed from the previous " +
        "release; kernel packages come through the private apt and are cached",
    )
    .option(
      "--suite <suite>",
      "only this suite (repeatable; default: bookworm, bookworm-backports, trixie, " +
        "trixie-backports, sid)",
      opt.repeatable(opt.debianSuite),
      [],
    )
    .option(
      "--out <dir>",
      "write atlas.md, atlas.html and atlas.json into this directory",
      opt.outputDir,
    )
    .option("--json", "print JSON instead of Markdown")
    .option("--html", "print the self-contained HTML instead of Markdown")
    .action(async (o: { suite: string[]; out?: string; json?: boolean; html?: boolean }) => {
      const { buildAtlas } = await import("./runner/atlas.ts");
      const { renderAtlasHtml, renderAtlasMarkdown } = await import(
        "./runner/report/atlas_report.ts"
      );
      const a = await buildAtlas({ suites: o.suite, log: (l) => console.error(l) });
      if (o.out) {
        await Deno.mkdir(o.out, { recursive: true });
        await Deno.writeTextFile(`${o.out}/atlas.md`, renderAtlasMarkdown(a));
        await Deno.writeTextFile(`${o.out}/atlas.html`, renderAtlasHtml(a));
        await Deno.writeTextFile(`${o.out}/atlas.json`, JSON.stringify(a, null, 2) + "\n");
        console.error(`atlas: wrote ${o.out}/atlas.md, atlas.html, atlas.json`);
        return;
      }
      console.log(
        o.json ? JSON.stringify(a, null, 2) : o.html ? renderAtlasHtml(a) : renderAtlasMarkdown(a),
      );
    });

  program.command("boards")
    .description(
      "List the board definitions; with --check ID, reach that board through its board file " +
        "and report each protocol's health (exit 0 healthy, 1 not)",
    )
    .option(
      "--boards-dir <dir>",
      "a directory of board files to list instead of the built-in ones (with --check: " +
        "searched before them)",
      opt.inputDir,
    )
    .option(
      "--check <id>",
      "reach this board and report console, power, ssh, command, files",
      opt.boardId,
    )
    .option("--power-cycle", "with --check: power-cycle the board through its adapter")
    .option("--runs-dir <dir>", RUNS_DIR_HELP, opt.outputDir)
    .action(
      async (o: { boardsDir?: string; check?: string; powerCycle?: boolean; runsDir?: string }) => {
        if (o.check !== undefined) {
          const { boardsCheck } = await import("./runner/board/cli.ts");
          const code = await boardsCheck(o.check, {
            boardsDirs: o.boardsDir ? [o.boardsDir] : [],
            powerCycle: o.powerCycle,
            runsDir: runsRoot(o.runsDir),
          });
          if (code !== 0) throw new CliExit(code);
          return;
        }
        if (o.powerCycle) {
          throw new UserInputError("--power-cycle applies to --check only", "add --check ID");
        }
        const boards = await listBoards(o.boardsDir);
        for (const { board } of boards) {
          // Board files are user input: their text reaches the terminal escaped.
          console.log(
            escapeControls(`${board.id.padEnd(14)} ${board.soc.padEnd(10)} ${board.name}`),
          );
        }
      },
    );

  program.command("facts")
    .description(
      "Boot a QEMU guest on a Debian kernel and print its kernel facts and its rockchip-iommu " +
        "driver's parameters read from the running kernel (BTF, kallsyms, /proc/kcore), held " +
        "against the knowledge base of that release",
    )
    .requiredOption("--kernel <spec>", "Debian kernel: debian:<suite or version>", opt.kernelSpec)
    .option("--mem <size>", "guest memory (8G, 512M: 256M to 255G)", opt.guestMemory, "8G")
    .option("--json", "print the facts, the driver introspection and the comparison as JSON")
    .option("--runs-dir <dir>", RUNS_DIR_HELP, opt.outputDir)
    .action(async (o: { kernel: string; mem: string; json?: boolean; runsDir?: string }) => {
      const runsDir = runsRoot(o.runsDir);
      const { factsCommand } = await import("./runner/introspect/facts_cmd.ts");
      const interrupt = Interrupt.listen();
      const code = await factsCommand({ ...o, runsDir, interrupt }).finally(() =>
        interrupt.dispose()
      );
      if (code !== 0) throw new CliExit(code);
    });

  // `rkhil report` (one run, or --history) and `rkhil history import` (runner/history/cli.ts).
  addReportCommand(program);
  addHistoryCommand(program);
  addLabCommand(program);
  addFarmCommand(program);

  program.command("explain-log")
    .description(
      "Explain the rk_iommu faults of a kernel log (dmesg, journalctl, kern.log, console " +
        "capture): SoC, entry format, where the tables lie, what reached the walker, NPU lines " +
        "and crashes around it; with --board and --kernel, the oracle's prediction beside it",
    )
    .argument("<file>", "the kernel log", opt.inputFile)
    .option("--board <id>", "board id (see `rkhil boards`), with --kernel", opt.boardId)
    .option("--kernel <release>", "kernel release, e.g. 6.12 (with --board)", opt.knownRelease)
    .option(
      "--boards-dir <dir>",
      "extra directory of board files (searched first)",
      opt.repeatable(opt.inputDir),
      [],
    )
    .option("--json", "print the explanation as JSON")
    .action(async (
      file: string,
      o: { board?: string; kernel?: string; boardsDir: string[]; json?: boolean },
    ) => {
      const { explainLog, renderExplanation } = await import("./runner/explain_log.ts");
      const e = await explainLog(file, o);
      console.log(o.json ? terminalJson(e) : escapeControls(renderExplanation(e)));
    });

  program.command("releases")
    .description("List the kernel releases the driver knowledge base covers")
    .action(() => console.log(RELEASES.join(" ")));

  program.command("patches")
    .description("List the downstream patch sets --patch accepts")
    .action(() => {
      for (const name of patchNames()) {
        const p = getPatch(name)!;
        const req = p.requires.length ? ` (on top of ${p.requires.join(", ")})` : "";
        console.log(`${name.padEnd(20)} ${p.title}${req}\n${"".padEnd(21)}source: ${p.source}`);
      }
    });

  const qemu = program.command("qemu")
    .description("QEMU aarch64 guests booting real Debian arm64 kernels");
  const qemuCommon = (c: Command) =>
    c.requiredOption(
      "--kernel <spec>",
      "kernel: debian:bookworm, debian:trixie, debian:trixie-backports, debian:sid, " +
        "debian:<package version>",
      opt.kernelSpec,
    )
      .option("--mem <size>", "guest memory (8G, 512M: 256M to 255G)", opt.guestMemory, "8G")
      .option("--cpus <n>", "guest CPUs (1-8)", (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 8) {
          throw new InvalidArgumentError("expected a whole number of CPUs from 1 to 8");
        }
        return n;
      }, 2)
      .option("--append <args>", "extra kernel command line arguments", opt.guestAppend)
      .option(
        "--run-dir <dir>",
        "run directory (console capture, QEMU log; default: runs/qemu/<time>-<kernel> in the " +
          "rkhil checkout)",
        opt.outputDir,
      );
  qemuCommon(
    qemu.command("exec")
      .description(
        "Boot a guest, run CMD (one argument: shell text; several: a command and its " +
          "arguments), print its output (stdout and stderr) and exit with its status " +
          "(3: infrastructure failure, 4: the kernel crashed)",
      )
      .argument("<cmd...>", "the command, after --", opt.commandWords),
  )
    .addOption(
      new Option("--via <transport>", "serial console, SSH exec channel or framed SSH shell")
        .choices(["serial", "ssh", "ssh-shell"]).default("ssh"),
    )
    .option("--timeout <s>", "command timeout in seconds (0 < s <= 86400)", opt.timeoutSeconds, 300)
    .option("--verbose", "progress on stderr")
    .action(async (cmd: string[], o: Parameters<typeof qemuExec>[0]) => {
      const code = await qemuExec(o, cmd);
      if (code !== 0) throw new CliExit(code);
    });
  qemuCommon(
    qemu.command("shell")
      .description(
        "Boot a guest and attach this terminal to its serial console (Ctrl-] quits); " +
          "with stdin not a terminal, send stdin and print the console until it is quiet",
      ),
  )
    .action(async (o: Parameters<typeof qemuShell>[0]) => {
      const code = await qemuShell(o);
      if (code !== 0) throw new CliExit(code);
    });

  return program;
}

/** Run the CLI; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  try {
    await cli().parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CliExit) return err.code;
    if (err instanceof CommanderError) {
      // Commander already printed its message (and help where asked).
      return err.exitCode === 0 ? 0 : 2;
    }
    // Messages quote user input and user files: escaped and cut for the terminal.
    if (err instanceof OracleInputError) {
      console.error(terminalSafe(describeError(new UserInputError(err.message, err.hint))));
      return 2;
    }
    console.error(terminalSafe(describeError(err, Deno.env.get("RKHIL_DEBUG") === "1")));
    return err instanceof UserInputError ? 2 : 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
