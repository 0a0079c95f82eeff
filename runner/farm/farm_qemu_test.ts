/**
 * The farm's proof on real QEMU guests: a farm of two lab boards (QEMU guests reached only
 * through their board files, runner/lab) and the embedded target on two kernels runs the
 * `boot` and `iommu` suites in parallel, as a user runs it (`rkhil run --farm`, a child
 * process); a stale lease is taken back; the runner is SIGKILLed mid-job and `--resume`d (no
 * step recorded twice, none lost, the interrupted job finished); then one board is killed
 * mid-job (its steps MISS, the other board finishes) and an unreachable board fails its health
 * check (MISS with the reason) while the rest go on.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadFarm } from "../../boards/farm_load.ts";
import { selectSuites } from "../../tests/mod.ts";
import { startLab } from "../lab/lab.ts";
import { parseResults, type TestResult } from "../results/store.ts";
import { testRunRoot } from "../test_dirs.ts";
import { type Lease, LeaseDir, processStart } from "./lease.ts";
import { PlainProgress } from "./progress.ts";
import { runFarm } from "./run_farm.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const SUITES = ["boot", "iommu"];

function rkhil(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { CI: "true" },
  }).spawn();
}

/** Lines of a child's stream, as they come. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

const key = (r: TestResult) =>
  JSON.stringify([r.target, r.target.startsWith("qemu") ? r.kernel : "", r.suite, r.test]);

const span = (rs: TestResult[], target: string) => {
  const mine = rs.filter((r) => r.target === target);
  return {
    start: Math.min(...mine.map((r) => Date.parse(r.startedAt))),
    end: Math.max(...mine.map((r) => Date.parse(r.startedAt) + r.durationMs)),
  };
};

Deno.test("farm: 2 lab boards + the embedded target on 2 kernels in parallel; stale lease taken back; SIGKILL and --resume; a board killed mid-job; an unreachable board", async (t) => {
  const root = await testRunRoot("rkhil-farm-");
  const lab = await startLab({ n: 2, kernel: "debian:trixie", dir: `${root}/lab` });
  try {
    const farmFile = `${root}/lab.yaml`;
    await Deno.writeTextFile(
      farmFile,
      [
        "name: test-lab",
        "leases: { dir: leases, ttl_s: 30 }",
        `boards_dirs: [${JSON.stringify(lab.boardsDir)}]`,
        "qemu:",
        "  - id: qemu-1",
        "    memory: 2G",
        "groups:",
        "  - name: desk",
        "    boards:",
        "      - id: lab-1",
        "      - id: lab-2",
        "",
      ].join("\n"),
    );
    const farm = await loadFarm(farmFile);
    const leases = new LeaseDir(farm.leaseDir);

    await t.step("run, SIGKILL mid-job, resume: nothing lost, nothing redone", async () => {
      // A stale lease on lab-2: its holder (a runner of this host) is gone, unexpired.
      const dead = new Deno.Command(Deno.execPath(), { args: ["eval", "0"] }).spawn();
      await dead.status;
      const stale: Lease = {
        target: "lab-2",
        owner: "ci@" + Deno.hostname(),
        host: Deno.hostname(),
        pid: dead.pid,
        token: "stale",
        start: new Date().toISOString(),
        renewed: new Date().toISOString(),
        expires: new Date(Date.now() + 3_600_000).toISOString(),
      };
      assert.equal(processStart(dead.pid), undefined);
      await Deno.mkdir(farm.leaseDir, { recursive: true });
      await Deno.writeTextFile(leases.path("lab-2"), JSON.stringify(stale));

      const runs = `${root}/runs`;
      const child = rkhil([
        "run",
        "--farm",
        farmFile,
        "--kernel",
        "debian:trixie",
        "--kernel",
        "debian:bookworm",
        ...SUITES.flatMap((s) => ["--suite", s]),
        "--jobs",
        "3",
        "--runs-dir",
        runs,
        "--no-history",
      ]);
      const errText = new Response(child.stderr).text();
      const seen: string[] = [];
      let dir = "";
      let qemuBoots = 0;
      let qemuDone = 0;
      const labsDone = new Set<string>();
      for await (const line of lines(child.stdout)) {
        seen.push(line);
        dir ||= /results in (\S+)/.exec(line)?.[1] ?? "";
        if (/ qemu-1 PASS boot$/.test(line)) qemuBoots++;
        if (/ qemu-1: done$/.test(line)) qemuDone++;
        const lab = / (lab-\d): done$/.exec(line);
        if (lab) labsDone.add(lab[1]);
        if (qemuBoots === 2 && labsDone.size === 2) {
          assert.equal(qemuDone, 1, `the second kernel's job ended before the kill:\n${seen}`);
          child.kill("SIGKILL");
          break;
        }
      }
      assert.equal((await child.status).signal, "SIGKILL", seen.join("\n") + (await errText));
      assert.ok(dir, seen.join("\n"));
      assert.ok(
        seen.some((l) => /lab-2: lease taken back from ci@\S+ \(pid \d+\): its holder/.test(l)),
        seen.join("\n"),
      );
      const before = await Deno.readTextFile(`${dir}/results.jsonl`);
      const first = parseResults(before).results;
      // In parallel: the boards' jobs and the embedded target's first job overlap in time.
      const [l1, l2, q] = ["lab-1", "lab-2", "qemu-1"].map((id) => span(first, id));
      assert.ok(l1.start < q.end && q.start < l1.end, "lab-1 and qemu-1 ran at the same time");
      assert.ok(l2.start < q.end && q.start < l2.end, "lab-2 and qemu-1 ran at the same time");
      // The boards' jobs ended and gave their leases back; the killed job's lease is still there.
      assert.deepEqual((await leases.list()).map((l) => l.target), ["qemu-1"]);

      const resumed = rkhil(["run", "--resume", dir]);
      const [out, status, err] = await Promise.all([
        new Response(resumed.stdout).text(),
        resumed.status,
        new Response(resumed.stderr).text(),
      ]);
      assert.equal(status.code, 0, out + err);
      assert.match(out, /resumed: 3 of 4 jobs had ended/);
      assert.match(out, /qemu-1: lease taken back from \S+ \(pid \d+\): its holder/);
      const after = await Deno.readTextFile(`${dir}/results.jsonl`);
      assert.ok(after.startsWith(before.replace(/[^\n]*$/, "")), "nothing recorded was lost");
      const all = parseResults(after).results;
      const keys = all.map(key);
      assert.equal(new Set(keys).size, keys.length, `a step recorded twice:\n${keys.join("\n")}`);
      // Every job has the same steps: the complete first job's.
      const steps = (target: string, kernel?: string) =>
        all.filter((r) => r.target === target && (!kernel || r.kernel === kernel))
          .map((r) => `${r.suite}/${r.test}`).sort();
      const full = steps("qemu-1", "debian:trixie");
      assert.ok(full.includes("boot/boot") && full.includes("iommu/iommu/log"), String(full));
      assert.deepEqual(steps("qemu-1", "debian:bookworm"), full);
      assert.deepEqual(steps("lab-1"), full);
      assert.deepEqual(steps("lab-2"), full);
      assert.deepEqual(all.filter((r) => r.verdict === "MISS"), []);
      // The interrupted job's later steps came in the resumed session.
      assert.ok(all.length > first.length);
      assert.deepEqual(await leases.list(), [], "every lease given back");
      const report = await Deno.readTextFile(`${dir}/report.md`);
      assert.match(report, /qemu-1/);
    });

    await t.step(
      "a board killed mid-job is MISS, an unreachable one fails its health check; the other board finishes",
      async () => {
        // An unreachable board: lab-1's file with a console port nothing listens on.
        const gone = (await Deno.readTextFile(`${lab.boardsDir}/lab-1.yaml`))
          .replace("id: lab-1", "id: lab-9")
          .replace(
            /console:\n(?: {2}.*\n)+/,
            "console:\n  type: tcp\n  host: 127.0.0.1\n  port: 9\n  protocol: raw\n",
          );
        await Deno.writeTextFile(`${lab.boardsDir}/lab-9.yaml`, gone);
        const farm2File = `${root}/lab2.yaml`;
        await Deno.writeTextFile(
          farm2File,
          (await Deno.readTextFile(farmFile)).replace(/qemu:\n(?: {2}.*\n)+/, "") +
            "      - id: lab-9\n",
        );
        const farm2 = await loadFarm(farm2File);
        assert.deepEqual(farm2.targets.map((x) => x.id), ["lab-1", "lab-2", "lab-9"]);
        const lines2: string[] = [];
        let killed = false;
        const plain = new PlainProgress((l) => lines2.push(l));
        const r = await runFarm({
          farm: farm2,
          kernels: [],
          suites: selectSuites(SUITES),
          predictBoards: ["rock-3b-8g"],
          jobs: 3,
          runsRoot: `${root}/runs2`,
          log: (l) => lines2.push(l),
          progress: {
            ...plain,
            jobStart: (a, b) => plain.jobStart(a, b),
            result: (a, b) => plain.result(a, b),
            jobEnd: (a, b) => plain.jobEnd(a, b),
            note: (a) => plain.note(a),
            stop: () => {},
            step(target, _suite, test) {
              if (target === "lab-2" && test === "iommu/log" && !killed) {
                killed = true;
                lab.guests[1].machine.kill();
              }
            },
          },
        });
        assert.ok(killed, lines2.join("\n"));
        const rs = r.results;
        const of = (id: string) => rs.filter((x) => x.target === id);
        assert.ok(of("lab-1").length >= 4 && of("lab-1").every((x) => x.verdict !== "MISS"));
        const lost = of("lab-2").find((x) => x.test === "iommu/log");
        assert.equal(lost?.verdict, "MISS", JSON.stringify(of("lab-2")));
        assert.match(lost?.reason ?? "", /^target lost: /);
        assert.ok(of("lab-2").filter((x) => x.verdict === "MISS").length >= 2);
        const nine = of("lab-9");
        assert.equal(nine.length, 1);
        assert.equal(nine[0].verdict, "MISS");
        const jobs = await Deno.readTextFile(`${r.dir}/jobs.jsonl`);
        assert.match(jobs, /"job":"lab-9","state":"taken out: health check failed: boot MISS: /);
        assert.match(jobs, /"job":"lab-2","state":"taken out: target lost: /);
        assert.match(jobs, /"job":"lab-1","state":"done"/);
        assert.equal(r.exitCode, 1);
        assert.deepEqual(await leases.list(), []);
      },
    );
  } finally {
    await lab.stop();
  }
});
