/**
 * The workload program inside a real QEMU guest booting a real Debian arm64 kernel (trixie,
 * 6.12), reached only through the Target protocols: the bundle and the models are uploaded
 * (SHA-256 checked in the guest), rkwl runs with the bundle's own loader, and its output is
 * judged against the published references. The cpu backend classifies all four images with
 * MobileNetV1 1.0/224 (31 chained slices) and detects on bus.jpg with YOLOv5n; the rocket
 * backend (Mesa Teflon) finds no NPU and says why. Under TCG: MobileNetV1 about 1.3–1.7 s per
 * pass, YOLOv5n about 7–9 s.
 */
import assert from "node:assert/strict";
import { ensureHostTools } from "../debian/host_tools.ts";
import { QEMU_HOST_TOOLS, withQemuTarget } from "../qemu/target.ts";
import { testRunRoot } from "../test_dirs.ts";
import { buildWorkload } from "./build.ts";
import { judgeClassification, judgeDetection } from "./judge.ts";
import { MOBILENET_V1, YOLOV5N } from "./models.ts";
import { installBundle, installModels, runOnTarget } from "./on_target.ts";
import { MOBILENET_V1_REFERENCES, YOLOV5_BUS_REFERENCE } from "./references.ts";
import { noDeviceReason, runTimes } from "./rkwl_output.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const runRoot = await testRunRoot("rkhil-workload-test-");
await ensureHostTools([...QEMU_HOST_TOOLS]);

Deno.test({
  name:
    "workload in a QEMU guest (debian:trixie): MobileNetV1 on four images, YOLOv5n on bus.jpg, Teflon SKIP",
  ...opts,
  fn: async () => {
    const bundle = await buildWorkload();
    const images = MOBILENET_V1_REFERENCES.map((r) => r.image);
    await withQemuTarget({
      kernel: "debian:trixie",
      runDir: `${runRoot}/trixie`,
      bootTimeoutMs: 180_000,
      sshTimeoutMs: 120_000,
    }, async (target) => {
      const root = await installBundle(target, bundle);
      const remote = await installModels(target, [
        ...MOBILENET_V1.files,
        ...YOLOV5N.files,
        ...images,
      ]);
      const chain = MOBILENET_V1.files.flatMap((f) => ["--model", remote.get(f)!]);
      const times: string[] = [];
      for (const ref of MOBILENET_V1_REFERENCES) {
        const r = await runOnTarget(target, root, [
          ...chain,
          "--image",
          remote.get(ref.image)!,
          "--warmup",
          "1",
          "--loops",
          "2",
        ]);
        await Deno.writeTextFile(
          `${runRoot}/trixie/${ref.image.replace(/^images\/|\.\w+$/g, "")}.rkwl.txt`,
          r.output,
        );
        assert.equal(r.exitStatus, 0, r.output);
        assert.deepEqual(r.run.problems, []);
        assert.equal(r.run.models.length, 31);
        const j = judgeClassification(r.run, ref);
        assert.equal(j.verdict, "PASS", `${ref.image}: ${j.reason}`);
        times.push(`${ref.image}: ${runTimes(r.run).map((t) => t.toFixed(0)).join(", ")} ms`);
      }
      const det = await runOnTarget(target, root, [
        "--model",
        remote.get(YOLOV5N.files[0])!,
        "--image",
        remote.get(YOLOV5_BUS_REFERENCE.image)!,
        "--task",
        "detect",
      ]);
      await Deno.writeTextFile(`${runRoot}/trixie/yolov5n-bus.rkwl.txt`, det.output);
      assert.equal(det.exitStatus, 0, det.output);
      const j = judgeDetection(det.run, YOLOV5_BUS_REFERENCE);
      assert.equal(j.verdict, "PASS", j.reason);
      times.push(`yolov5n bus.jpg: ${runTimes(det.run).map((t) => t.toFixed(0)).join(", ")} ms`);
      const rocket = await runOnTarget(target, root, [
        ...chain,
        "--image",
        remote.get("images/dog_224x224.jpg")!,
        "--delegate",
        `${root}/${bundle.teflon}`,
      ]);
      await Deno.writeTextFile(`${runRoot}/trixie/teflon.rkwl.txt`, rocket.output);
      assert.equal(rocket.exitStatus, 3, rocket.output);
      assert.equal(noDeviceReason(rocket.run), "Couldn't open kernel device (libteflon.so)");
      // Installed once: a second install finds the key and uploads nothing.
      assert.equal(await installBundle(target, bundle), root);
      console.log(`  invoke times in the guest (TCG):\n    ${times.join("\n    ")}`);
    });
  },
});
