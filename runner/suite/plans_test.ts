/**
 * The main job's planning of the emulated IOMMUs (issue 15), without booting: `rkhil run`'s
 * default suites carry `iommu-emulated`, whose steps are one variant boot per scenario with the
 * scenario's emulated IOMMUs; the embedded target's plan refuses (SKIP, with the reason) a
 * variant whose guest is too small to hold the register windows, before fetching anything; a
 * board target lacks `boot-config` and gets the suite SKIPped.
 */
import assert from "node:assert/strict";
import { RkhilError } from "../errors.ts";
import { emuRamRefusal, resolveEmuIommus, ROCK3B_IOMMUS } from "../qemu/iommu_dtb.ts";
import { selectSuites, SUITES } from "../../tests/mod.ts";
import { EMU_SCENARIOS } from "../../tests/_iommu_emulated.ts";
import { qemuPlans } from "./plans.ts";
import { missingCapability } from "./runner.ts";
import type { StepContext } from "./types.ts";

Deno.test("rkhil run's suites include iommu-emulated after iommu: a variant boot per scenario with its IOMMUs", () => {
  const names = SUITES.map((s) => s.name);
  assert.equal(names.indexOf("iommu-emulated"), names.indexOf("iommu") + 1);
  const [suite] = selectSuites(["iommu-emulated"]);
  assert.deepEqual(suite.requires, ["boot-config"]);
  const steps = suite.steps({} as StepContext);
  assert.deepEqual(steps.map((s) => [s.name, s.variant]), [
    ["iommu/emulated/dtsi", { iommus: ["npu", "vop"] }],
    ["iommu/emulated/swiotlb-force", { append: "swiotlb=force", iommus: ["npu", "vop"] }],
    ["iommu/emulated/npu-rockchip-iommu", { iommus: ["npu-rfc", "vop"] }],
  ]);
  // Every scenario's IOMMUs resolve; the Rocket RFC's NPU MMU comes first (probes first).
  for (const s of EMU_SCENARIOS) resolveEmuIommus(s.variant.iommus!);
  assert.deepEqual(ROCK3B_IOMMUS["npu-rfc"].compatible, ["rockchip,iommu"]);
  assert.equal(ROCK3B_IOMMUS["npu-rfc"].base, ROCK3B_IOMMUS.npu.base);
  // A target without boot-config (a board file's) gets the suite SKIPped with the reason.
  assert.match(
    missingCapability(suite, { capabilities: new Set(["kernel-introspection", "rk-iommu"]) })!,
    /needs capability boot-config/,
  );
  assert.equal(missingCapability(suite, { capabilities: new Set(["boot-config"]) }), undefined);
});

Deno.test("the register windows need guest RAM at the board's addresses: 3G and up hold them, 2G is refused with the reason", () => {
  const both = resolveEmuIommus(["npu", "vop"]);
  assert.equal(emuRamRefusal(8 * 2 ** 30, both), undefined);
  assert.equal(emuRamRefusal(4 * 2 ** 30, both), undefined);
  // 0x4000_0000 + 3 GiB = 0x1_0000_0000 covers fe040000..fe050000.
  assert.equal(emuRamRefusal(3 * 2 ** 30, both), undefined);
  assert.match(
    emuRamRefusal(2 * 2 ** 30, both)!,
    /registers of npu \(0xfde4b000\) are outside guest RAM 0x40000000\.\.0xc0000000: .*3G or more/,
  );
  // The last byte counts: a guest ending inside VOP2's window is refused for vop only.
  assert.match(emuRamRefusal(0xfe048000 - 0x4000_0000, both)!, /registers of vop/);
});

Deno.test("the embedded target's plan: a 2G variant with emulated IOMMUs is SKIP with the reason before any fetch", async () => {
  const [plan] = qemuPlans(["debian:no-such-suite"], "2G");
  await assert.rejects(plan.open("/nonexistent", { iommus: ["npu", "vop"] }), (e: Error) => {
    assert.ok(e instanceof RkhilError);
    assert.equal(e.verdict, "SKIP");
    assert.match(e.message, /outside guest RAM/);
    assert.match(e.hint, /--mem 3G or more/);
    return true;
  });
  // An unknown id is bad input, also before any fetch.
  const [big] = qemuPlans(["debian:no-such-suite"]);
  await assert.rejects(
    big.open("/nonexistent", { iommus: ["gpu"] }),
    /unknown emulated IOMMU "gpu"/,
  );
});

Deno.test("rkhil run --board ID --kernel SPEC: one plan per kernel that deploys it, only for boards with deploy:", async () => {
  const { labBoardYaml } = await import("../lab/board_file.ts");
  const { boardPlans } = await import("./plans.ts");
  const { UserInputError } = await import("../errors.ts");
  const dir = await Deno.makeTempDir({ prefix: "rkhil-board-plans-" });
  try {
    await Deno.writeTextFile(`${dir}/key`, "not read before a boot\n", { mode: 0o600 });
    const yaml = (id: string) =>
      labBoardYaml({
        id,
        sshPort: 2222,
        fingerprint: "SHA256:3b1Y2bGq0m0y2mH9sYb8l8p3VwV4cQzF1mUoT9lZ0aE",
        keyFile: `${dir}/key`,
        console: { type: "serial", device: "/dev/null" },
        power: { type: "command", on: "true", off: "true" },
      });
    await Deno.writeTextFile(`${dir}/plain-1.yaml`, yaml("plain-1"));
    await Deno.writeTextFile(
      `${dir}/deploy-1.yaml`,
      yaml("deploy-1") + "deploy:\n  method: extlinux-menu\n  boot_dir: /boot\n  known_good: l0\n",
    );
    await Deno.mkdir(`${dir}/k`);
    await Deno.writeTextFile(`${dir}/k/vmlinuz-6.12.9-arm64`, "x");
    const plans = await boardPlans(["deploy-1"], [dir], ["debian:trixie", `dir:${dir}/k`]);
    assert.deepEqual(plans.map((p) => [p.name, p.kernel, typeof p.deploy]), [
      ["deploy-1", "debian:trixie", "function"],
      ["deploy-1", `dir:${dir}/k`, "function"],
    ]);
    // Without --kernel a board runs its own kernel: one plan, nothing deployed.
    const own = await boardPlans(["deploy-1", "plain-1"], [dir]);
    assert.deepEqual(own.map((p) => [p.name, p.kernel, p.deploy]), [
      ["deploy-1", undefined, undefined],
      ["plain-1", undefined, undefined],
    ]);
    await assert.rejects(
      boardPlans(["deploy-1", "plain-1"], [dir], ["debian:trixie"]),
      (e: Error) => e instanceof UserInputError && /--board plain-1: .* no deploy:/.test(e.message),
    );
    await assert.rejects(
      boardPlans(["deploy-1"], [dir], [`dir:${dir}/nope`]),
      (e: Error) => e instanceof UserInputError && /is not a readable directory/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
