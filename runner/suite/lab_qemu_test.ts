/**
 * The proof: the same suites (boot, driver, iommu, probe) on the embedded target (a
 * QEMU guest rkhil boots on debian:trixie) and on a board target of the lab (a QEMU guest on the
 * same kernel reached ONLY through its board file: SSH to 127.0.0.1:PORT with the pinned host
 * key, the console through ser2net's telnet port, power by command lines; run as a user runs it,
 * `rkhil run --board ID --boards-dir DIR`) give the same result
 * records apart from the target's name: the same tests of the same suites with the same
 * verdicts, reasons and details; only the kernel's name (the spec vs the running release),
 * timings and measurements differ.
 */
import assert from "node:assert/strict";
import { selectSuites } from "../../tests/mod.ts";
import { startLab } from "../lab/lab.ts";
import { parseResults, type TestResult } from "../results/store.ts";
import { testRunRoot } from "../test_dirs.ts";
import { waitNoneUnder } from "../jobs/_qemu_procs.ts";
import { qemuPlans, shutdownQemu } from "./plans.ts";
import { runJob } from "./run_job.ts";

const KERNEL = "debian:trixie";

/** What must be equal between two targets: everything but names, timings and measurements. */
function comparable(r: TestResult): Record<string, unknown> {
  const text = JSON.stringify({
    test: r.test,
    suite: r.suite,
    verdict: r.verdict,
    reason: r.reason,
    release: r.release,
    details: r.details,
  });
  return JSON.parse(text.replaceAll(r.target, "<target>"));
}

Deno.test("the suites on the embedded target and on a lab board (ser2net telnet console): the same records", async () => {
  const root = await testRunRoot("rkhil-lab-compare-");
  const suites = selectSuites(["boot", "driver", "iommu", "probe"]);
  const embedded = await runJob({
    plans: qemuPlans([KERNEL]),
    suites,
    predictBoards: ["rock-3b-8g"],
    runsRoot: root,
    shutdown: shutdownQemu,
    log: () => {},
  });
  const lab = await startLab({
    n: 1,
    console: "ser2net-telnet",
    kernel: KERNEL,
    dir: `${root}/lab`,
  });
  let cli: Deno.CommandOutput;
  try {
    // The board side exactly as a user runs it: `rkhil run --board ID --boards-dir DIR`.
    cli = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../main.ts", import.meta.url).pathname,
        "run",
        "--board",
        lab.boards[0],
        "--boards-dir",
        lab.boardsDir,
        ...suites.flatMap((s) => ["--suite", s.name]),
        "--runs-dir",
        `${root}/board`,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } finally {
    await lab.stop();
  }
  const stdout = new TextDecoder().decode(cli.stdout);
  assert.equal(cli.code, 0, `${stdout}\n${new TextDecoder().decode(cli.stderr)}`);
  const dir = /^rkhil run: results in (\S+)$/m.exec(stdout)?.[1];
  assert.ok(dir, stdout);
  const stored = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`));
  assert.equal(stored.damagedLines, 0);
  const board = { exitCode: cli.code, dir, results: stored.results };
  // Both ran everything, and everything passed.
  assert.equal(embedded.exitCode, 0, JSON.stringify(embedded.results.filter((r) => r.reason)));
  assert.equal(board.exitCode, 0, JSON.stringify(board.results.filter((r) => r.reason)));
  assert.equal(board.results.length, 13);
  for (const r of embedded.results) assert.equal(r.target, "qemu-virt-8g");
  for (const r of embedded.results) assert.equal(r.kernel, KERNEL);
  const release = embedded.results[0].release;
  assert.match(release ?? "", /^6\.12\.\d+\+deb13-arm64$/);
  for (const r of board.results) {
    assert.equal(r.target, lab.boards[0]);
    // A board runs its own kernel: results name it by its running release.
    assert.equal(r.kernel, release);
  }
  // The same records apart from the target's name (and kernel spec vs release, timings).
  assert.deepEqual(board.results.map(comparable), embedded.results.map(comparable));
  // The board's report is the embedded one's under another heading.
  const report = await Deno.readTextFile(`${board.dir}/report.md`);
  assert.match(report, new RegExp(`^## ${lab.boards[0]}$`, "m"));
  assert.match(report, /\| 5\/5 agree \| - \|$/m);
  assert.deepEqual(await waitNoneUnder(root), []);
});
