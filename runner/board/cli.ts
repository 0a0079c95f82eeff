/**
 * The board commands of the CLI: `rkhil boards --check ID [--power-cycle]` and `rkhil lab`
 * (`lab power on|off|cycle --qmp SOCKET`, the lab guests' power switch; `lab up`, a lab to try
 * board files on by hand).
 *
 * @module
 */

import { type Command, Option } from "commander";
import { findBoard } from "../../boards/load.ts";
import * as opt from "../cli/options.ts";
import { UserInputError } from "../errors.ts";
import { escapeControls } from "../safe_text.ts";
import { LAB_POWER_ACTIONS, labPower } from "../lab/power.ts";

/** Options of {@linkcode boardsCheck}. */
export interface BoardsCheckOptions {
  /** Board directories searched before the built-in boards. */
  boardsDirs: string[];
  /** Power-cycle the board through its adapter. */
  powerCycle?: boolean;
  /** Root of run directories (the check's console logs go to `<root>/<time>-check-<id>`). */
  runsDir: string;
}

/**
 * `rkhil boards --check ID`: print one line per protocol and a summary; returns the exit
 * status: 0 when every protocol the board file has is healthy, 1 otherwise.
 *
 * @throws {UnknownBoardError | BoardFileError | UserInputError} (exit 2) before anything starts.
 */
export async function boardsCheck(id: string, o: BoardsCheckOptions): Promise<number> {
  const loaded = await findBoard(id, o.boardsDirs);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const runDir = `${o.runsDir}/${stamp}-check-${loaded.id}`;
  const { checkBoard, formatHealth } = await import("./check.ts");
  const health = await checkBoard(loaded, {
    runDir,
    powerCycle: o.powerCycle,
    log: (l) => console.error(escapeControls(l, false)),
  });
  for (const line of formatHealth(loaded, health)) console.log(line);
  if (await Deno.stat(`${runDir}/console.log`).then(() => true, () => false)) {
    console.log(`console log: ${runDir}/console.log`);
  }
  return health.some((h) => h.status === "failed") ? 1 : 0;
}

/** Add `rkhil lab` (power, up) to `program`. */
export function addLabCommand(program: Command): void {
  const lab = program.command("lab").description(
    "The lab of QEMU guests reached only through board files (runner/lab): their power " +
      "switch, and a lab to try board files on",
  );
  lab.command("power")
    .description(
      "Switch a lab guest through its QMP socket: on = cont, off = stop + system_reset, " +
        "cycle = off then on (what a lab board file's power command lines run)",
    )
    .argument("<action>", "on, off or cycle")
    .requiredOption("--qmp <socket>", "the guest's power QMP socket (written in its board file)")
    .action(async (action: string, o: { qmp: string }) => {
      if (!(LAB_POWER_ACTIONS as readonly string[]).includes(action)) {
        throw new UserInputError(
          `unknown lab power action ${JSON.stringify(action)}`,
          `use one of ${LAB_POWER_ACTIONS.join(", ")}`,
        );
      }
      await labPower(action, o.qmp);
    });
  lab.command("up")
    .description(
      "Start a lab, print its board directory and board ids, and keep it until Ctrl-C " +
        "(try: rkhil boards --check lab-1 --boards-dir DIR)",
    )
    .addOption(
      new Option("--n <count>", "number of guests (1 to 8)").default(1).argParser((v: string) =>
        opt.checkOption("--n", v, (x) => {
          const n = Number(x);
          if (!/^[1-8]$/.test(x)) {
            throw new UserInputError(`--n must be 1 to 8 (got ${JSON.stringify(x)})`, "e.g. --n 2");
          }
          return n;
        })
      ),
    )
    .addOption(
      new Option("--console <kind>", "how the board files reach the console")
        .choices(["pty", "ser2net-raw", "ser2net-telnet"]).default("pty"),
    )
    .option("--kernel <spec>", "Debian kernel: debian:<suite or version>", opt.kernelSpec)
    .action(
      async (
        o: { n: number; console: "pty" | "ser2net-raw" | "ser2net-telnet"; kernel?: string },
      ) => {
        const { startLab } = await import("../lab/lab.ts");
        const l = await startLab({ n: o.n, console: o.console, kernel: o.kernel });
        console.log(`lab board directory: ${l.boardsDir}`);
        for (const g of l.guests) console.log(`${g.id}: ${g.boardPath} (off until powered on)`);
        console.log("Ctrl-C stops the lab");
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          Deno.addSignalListener("SIGINT", stop);
          Deno.addSignalListener("SIGTERM", stop);
        });
        await l.stop();
      },
    );
}
