import assert from "node:assert/strict";
import { noStackTrace, rkhil, withTempDir } from "../cli/testutil.ts";
import { joinRunOption, queueLine } from "./cli.ts";
import { LeaseDir } from "./lease.ts";

const FARM = "name: cli-farm\nleases: { dir: leases }\nqemu:\n  - { id: qemu-1, memory: 2G }\n";

Deno.test("rkhil run --farm/--resume: bad input is exit 2 with one line, before any work", async () => {
  await withTempDir(async (dir) => {
    const farm = `${dir}/farm.yaml`;
    await Deno.writeTextFile(farm, FARM);
    await Deno.writeTextFile(`${dir}/bad.yaml`, "name: cli-farm\nqemu:\n  - { id: q, cpu: 2 }\n");
    await Deno.writeTextFile(
      `${dir}/ro.yaml`,
      FARM.replace("dir: leases", "dir: /proc/rkhil-leases"),
    );
    const cases: [string[], RegExp][] = [
      [["run", "--farm", `${dir}/none.yaml`], /--farm <file>.* is invalid\. no such file/],
      [["run", "--farm", farm, "--jobs", "0"], /expected a whole number of jobs from 1 to 64/],
      [["run", "--farm", farm, "--jobs", "many"], /expected a whole number of jobs/],
      [["run", "--farm", farm, "--join", "../x"], /expected the run id another lab host printed/],
      [
        ["run", "--farm", farm, "--join", "r1"],
        /--join needs a farm whose job queue is in a database/,
      ],
      [["run", "--join", "r1"], /--join needs --farm FILE/],
      [["run", "--farm", farm, "--board", "rock-3b-8g"], /--board cannot be used with --farm/],
      [["run", "--farm", farm, "--mem", "2G"], /--mem cannot be used with --farm/],
      [["run", "--farm", farm, "--resume", dir], /--farm cannot be used with --resume/],
      [["run", "--resume", dir], /is not a farm run directory \(no farm\.json\)/],
      [["run", "--resume", dir, "--kernel", "debian:trixie"], /--kernel does not go with it/],
      [["run", "--jobs", "2"], /--jobs goes with --farm or --resume/],
      [["run", "--farm", `${dir}/bad.yaml`], /bad\.yaml:3:\d+: qemu\[0\]\.cpu: unknown key "cpu"/],
      [["run", "--farm", farm, "--suite", "nope"], /unknown suite "nope"/],
      [["farm", "release", "qemu-9", "--farm", farm], /farm cli-farm has no target "qemu-9"/],
      [["run", "--farm", `${dir}/ro.yaml`], /lease directory \/proc\/rkhil-leases is not writable/],
    ];
    for (const [args, message] of cases) {
      const r = await rkhil(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
      noStackTrace(r);
    }
  });
});

Deno.test("rkhil farm status and release: who holds what; release a stale lease, --force a live one", async () => {
  await withTempDir(async (dir) => {
    const farm = `${dir}/farm.yaml`;
    await Deno.writeTextFile(farm, FARM);
    let r = await rkhil("farm", "status", "--farm", farm);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /farm cli-farm: leases in .*\/leases\n {2}qemu-1 +free\n/);

    const leases = new LeaseDir(`${dir}/leases`);
    const { lease } = await leases.take("qemu-1", { ttlS: 600, run: "runs/x" });
    r = await rkhil("farm", "status", "--farm", farm);
    assert.match(
      r.stdout,
      new RegExp(
        `qemu-1 +\\S+@\\S+ pid ${Deno.pid} since ${lease.start} until ${lease.expires} \\(runs/x\\)\\n`,
      ),
    );
    r = await rkhil("farm", "release", "qemu-1", "--farm", farm);
    assert.equal(r.code, 1, "a live holder's lease is not freed without --force");
    assert.match(r.stderr, /target qemu-1 is leased by \S+ \(pid \d+\)/);
    assert.match(r.stderr, /--force if its holder is alive/);
    r = await rkhil("farm", "release", "qemu-1", "--farm", farm, "--force");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`qemu-1: released \\(was \\S+ pid ${Deno.pid} since `));
    assert.equal(await leases.read("qemu-1"), undefined);

    // A stale one (expired) goes without --force, and status says it is stale.
    await Deno.writeTextFile(
      leases.path("qemu-1"),
      JSON.stringify({ ...lease, expires: new Date(Date.now() - 1000).toISOString() }),
    );
    r = await rkhil("farm", "status", "--farm", farm);
    assert.match(r.stdout, /qemu-1 .* — stale: expired at /);
    r = await rkhil("farm", "release", "qemu-1", "--farm", farm);
    assert.equal(r.code, 0, r.stderr);
    r = await rkhil("farm", "release", "qemu-1", "--farm", farm);
    assert.match(r.stdout, /qemu-1: no lease/);
  });
});

Deno.test("--join RUN: a run directory's name; anything else is refused with an example", () => {
  for (const ok of ["2026-11-30T03-50-53Z-farm-rock-lab-fd06", "run_1.a"]) {
    assert.equal(joinRunOption(ok), ok);
  }
  const hostile = [
    "",
    "../runs/x",
    "/abs",
    "-x",
    "a b",
    "a\nb",
    "run;drop",
    "x".repeat(201),
    "r\u202e",
  ];
  for (const bad of hostile) {
    assert.throws(() => joinRunOption(bad), /expected the run id another lab host printed, e\.g\./);
  }
});

Deno.test("farm status's queue line: state, counts, hosts and each runner's share", () => {
  assert.equal(
    queueLine({
      run: "R",
      queued: 2,
      running: 1,
      ended: 3,
      byRunner: [{ runner: "lab-a/R", running: 1, ended: 1 }, {
        runner: "lab-b/R2",
        running: 0,
        ended: 2,
      }],
      hosts: [{ host: "lab-a", hostRun: "R" }, { host: "lab-b", hostRun: "R2" }],
    }),
    "run R (hosts: lab-a, lab-b): not done, 2 queued, 1 running, 3 ended — lab-a/R: 1 running 1 " +
      "ended; lab-b/R2: 2 ended",
  );
  assert.equal(
    queueLine({ run: "R", queued: 0, running: 0, ended: 0, byRunner: [], hosts: [] }),
    "run R: done, 0 queued, 0 running, 0 ended",
  );
});
