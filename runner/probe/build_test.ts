/**
 * Real cross builds of the probe module for Debian arm64 kernels 6.1 (bookworm), 6.12 (trixie)
 * and 7.3 (trixie-backports): headers and host-arch kbuild through rkhil's private apts, the
 * kernel's own GCC major version (from the host, or relocated from the kernel's suite). Needs
 * the machine's Debian mirror; installs what is missing. No QEMU needed.
 */
import assert from "node:assert/strict";
import { buildProbeModule } from "./build.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Kernel specs and the release prefix each must resolve to. */
export const PROBE_KERNELS: [string, RegExp][] = [
  ["debian:bookworm", /^6\.1\.0-\d+-arm64$/],
  ["debian:trixie", /^6\.12\.\d+\+deb13-arm64$/],
  ["debian:trixie-backports", /^7\.\d+\.\d+\+deb13-arm64$/],
];

for (const [spec, release] of PROBE_KERNELS) {
  Deno.test(
    `${spec}: rkprobe.ko cross-builds for the exact kernel ABI, then comes from the cache`,
    opts,
    async () => {
      const t0 = performance.now();
      const m = await buildProbeModule(spec);
      const s1 = (performance.now() - t0) / 1000;
      assert.match(m.release, release);
      assert.equal(m.vermagic.split(" ")[0], m.release);
      // The compiler is the kernel's own major version.
      const major = m.kernelCompiler.match(/gcc(?:-\d+)? .*?(\d+)\.\d+\.\d+\s*$/)?.[1];
      assert.ok(
        major && m.compiler.includes(`gcc-${major} `),
        `${m.compiler} vs ${m.kernelCompiler}`,
      );
      const ko = await Deno.readFile(m.ko);
      const dv = new DataView(ko.buffer, ko.byteOffset);
      assert.deepEqual([...ko.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
      assert.equal(dv.getUint16(16, true), 1, "ET_REL");
      assert.equal(dv.getUint16(18, true), 183, "EM_AARCH64");
      const text = new TextDecoder("latin1").decode(ko);
      for (const p of ["gfp", "mask_bits", "format", "dt_reach", "pt_reach", "iovas", "encode"]) {
        assert.ok(text.includes(`parm=${p}:`), `module parameter ${p}`);
      }
      const again = await buildProbeModule(spec);
      assert.equal(again.built, false);
      assert.equal(again.sha256, m.sha256);
      console.log(
        `${spec}: ${m.release} ${m.built ? "built" : "cached"} in ${
          s1.toFixed(1)
        } s with ${m.compiler} (${m.ccSource}); kernel: ${m.kernelCompiler}; ${ko.length} bytes`,
      );
    },
  );
}
