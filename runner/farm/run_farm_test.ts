import assert from "node:assert/strict";
import { UserInputError } from "../errors.ts";
import { loadFarm } from "../../boards/farm_load.ts";
import { checkFarmKernels, farmJobs, readFarmRunSpec } from "./run_farm.ts";

Deno.test("farmJobs: one job per QEMU target and kernel, one per board (per kernel with deploy:)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-farm-jobs-" });
  try {
    await Deno.writeTextFile(
      `${dir}/f.yaml`,
      "name: f\nqemu:\n  - { id: qemu-1 }\n  - { id: qemu-2, memory: 2G }\n",
    );
    const farm = await loadFarm(`${dir}/f.yaml`);
    assert.deepEqual(farmJobs(farm, ["debian:trixie", "debian:bookworm"]).map((j) => j.key), [
      "qemu-1 debian:trixie",
      "qemu-1 debian:bookworm",
      "qemu-2 debian:trixie",
      "qemu-2 debian:bookworm",
    ]);
    const board = {
      ...farm,
      targets: [{
        kind: "board" as const,
        id: "rock-1",
        group: "g",
        board: { board: {} } as never,
        cost: { cpus: 0, memory: 0 },
      }, {
        kind: "board" as const,
        id: "rock-2",
        group: "g",
        board: { board: { deploy: { method: "extlinux-menu" } } } as never,
        cost: { cpus: 0, memory: 0 },
      }],
    };
    // A board with deploy: gets one job per kernel, as a QEMU target; the others one.
    assert.deepEqual(
      farmJobs(board, ["debian:trixie", "dir:/k/x"]).map((j) => [j.key, j.kernel]),
      [["rock-1", undefined], ["rock-2 debian:trixie", "debian:trixie"], [
        "rock-2 dir:/k/x",
        "dir:/k/x",
      ]],
    );
    // dir: kernels: only on boards with deploy:, their directory checked before any work.
    await checkFarmKernels(board, ["debian:trixie"]);
    await assert.rejects(
      checkFarmKernels(board, [`dir:${dir}/none`]),
      (e: Error) => e instanceof UserInputError && /is not a readable directory/.test(e.message),
    );
    await Deno.mkdir(`${dir}/k`);
    await Deno.writeTextFile(`${dir}/k/vmlinuz-6.12.1-arm64`, "x");
    await checkFarmKernels(board, [`dir:${dir}/k`]);
    await assert.rejects(
      checkFarmKernels(farm, [`dir:${dir}/k`]),
      (e: Error) =>
        e instanceof UserInputError &&
        /embedded target qemu-1 boots Debian kernels only/.test(e.message),
    );
    // A farm whose boards have no deploy: would read the directory and never use it.
    const noDeploy = { ...board, targets: [board.targets[0]] };
    await checkFarmKernels(noDeploy, ["debian:trixie"]);
    await assert.rejects(
      checkFarmKernels(noDeploy, [`dir:${dir}/k`]),
      (e: Error) =>
        e instanceof UserInputError &&
        /^--kernel dir:.*: no board of .* has deploy:, so no job would deploy it$/.test(e.message),
    );
    // A run several lab hosts share: each would read its own files at that path.
    await checkFarmKernels(board, ["debian:trixie"], "run-1");
    await assert.rejects(
      checkFarmKernels(board, [`dir:${dir}/k`], "run-1"),
      (e: Error) =>
        e instanceof UserInputError &&
        /^--kernel dir:.*: run run-1 is shared by lab hosts and a dir: kernel is a directory on one host$/
          .test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--resume refuses what is not a farm run directory, with what to give", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-farm-resume-" });
  try {
    await assert.rejects(
      readFarmRunSpec(dir),
      (e: Error) =>
        e instanceof UserInputError &&
        /is not a farm run directory \(no farm\.json\)/.test(e.message),
    );
    for (
      const [text, why] of [
        ['{"version": 1, "farm": "x.yaml", "kern', /farm\.json is damaged/],
        ["\u0000\u0001", /farm\.json is damaged/],
        [
          '{"version": 2, "farm": "x", "kernels": [], "suites": [], "predictBoards": [], "jobs": 1}',
          /is not a farm run/,
        ],
        [
          '{"version": 1, "farm": 7, "kernels": [], "suites": [], "predictBoards": [], "jobs": 1}',
          /is not a farm run/,
        ],
        ["[]", /is not a farm run/],
        ["null", /is not a farm run/],
      ] as const
    ) {
      await Deno.writeTextFile(`${dir}/farm.json`, text);
      await assert.rejects(readFarmRunSpec(dir), why, text);
    }
    const ok = {
      version: 1,
      farm: "/lab/farm.yaml",
      kernels: ["debian:trixie"],
      suites: ["boot"],
      predictBoards: ["rock-3b-8g"],
      jobs: 2,
    };
    await Deno.writeTextFile(`${dir}/farm.json`, JSON.stringify(ok));
    assert.deepEqual(await readFarmRunSpec(dir), ok);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
