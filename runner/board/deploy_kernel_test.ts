import assert from "node:assert/strict";
import { UserInputError } from "../errors.ts";
import { isDirKernelSpec, parseDirKernelSpec, readDirKernel } from "./deploy_kernel.ts";

Deno.test("dir: kernel spec: the directory, absolute; hostile forms refused", () => {
  assert.equal(parseDirKernelSpec("dir:/srv/k/6.12"), "/srv/k/6.12");
  assert.equal(parseDirKernelSpec("dir:/srv/k/"), "/srv/k");
  assert.equal(parseDirKernelSpec("dir:/"), "/");
  assert.ok(isDirKernelSpec("dir:/x") && !isDirKernelSpec("debian:trixie"));
  for (
    const bad of ["dir:", "dir:relative/k", "dir:/a\nb", "dir:/a\0b", "dir:/" + "a".repeat(5000)]
  ) {
    assert.throws(() => parseDirKernelSpec(bad), UserInputError, JSON.stringify(bad));
  }
});

Deno.test("dir: kernel: vmlinuz-<release>, its initrd and one DTB; everything else refused", async () => {
  const root = await Deno.makeTempDir({ prefix: "rkhil-dirkernel-" });
  try {
    const mk = async (name: string, files: string[]) => {
      await Deno.mkdir(`${root}/${name}`);
      for (const f of files) await Deno.writeTextFile(`${root}/${name}/${f}`, "x");
      return `dir:${root}/${name}`;
    };
    const full = await mk("full", [
      "vmlinuz-6.12.48+deb13-arm64",
      "initrd.img-6.12.48+deb13-arm64",
      "rk3568-rock-3b.dtb",
      "config-6.12.48+deb13-arm64",
      "initrd.img-6.1.0-41-arm64", // another release's initrd is not this kernel's
    ]);
    assert.deepEqual(await readDirKernel(full), {
      release: "6.12.48+deb13-arm64",
      image: `${root}/full/vmlinuz-6.12.48+deb13-arm64`,
      initrd: `${root}/full/initrd.img-6.12.48+deb13-arm64`,
      dtb: `${root}/full/rk3568-rock-3b.dtb`,
    });
    // A symlinked image counts (a kernel in rkhil's cache linked into the directory).
    await Deno.mkdir(`${root}/link`);
    await Deno.symlink(`${root}/full/vmlinuz-6.12.48+deb13-arm64`, `${root}/link/vmlinuz-7.0-x`);
    assert.deepEqual(await readDirKernel(`dir:${root}/link`), {
      release: "7.0-x",
      image: `${root}/link/vmlinuz-7.0-x`,
    });
    const refused: [string, RegExp][] = [
      [await mk("none", ["Image", "initrd.img-1"]), /exactly one vmlinuz-<release>.*found none/],
      [await mk("two", ["vmlinuz-1", "vmlinuz-2"]), /found vmlinuz-1, vmlinuz-2/],
      [await mk("bad", ["vmlinuz-6.1 $(reboot)"]), /characters uname -r does not print/],
      [await mk("empty-release", ["vmlinuz-"]), /characters uname -r does not print/],
      [await mk("dtbs", ["vmlinuz-1", "a.dtb", "b.dtb"]), /several device trees/],
      // Refused here, before any work, not after the board's /boot/rkhil was cleared.
      [await mk("dtb-space", ["vmlinuz-1", "rock 3b.dtb"]), /device tree "rock 3b\.dtb" has/],
      [await mk("dtb-quote", ["vmlinuz-1", "a'b.dtb"]), /device tree "a'b\.dtb" has/],
      [`dir:${root}/missing`, /is not a readable directory/],
      [`dir:${root}/full/rk3568-rock-3b.dtb`, /is not a readable directory/],
    ];
    for (const [spec, re] of refused) {
      await assert.rejects(readDirKernel(spec), (e: Error) => {
        assert.ok(e instanceof UserInputError, String(e));
        assert.match(e.message, re);
        return true;
      });
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
