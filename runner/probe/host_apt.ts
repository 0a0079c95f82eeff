/**
 * A private apt for the HOST's architecture (amd64 on a usual x86 machine), next to rkhil's
 * private arm64 apt: the cross build of the probe module needs host-arch packages of the
 * kernel's own suite (the `linux-kbuild-*` helper binaries, and the cross compiler when the host
 * release does not have the one the kernel was built with), and the host's own apt may not
 * serve that suite (a bookworm host has no trixie).
 *
 * It reuses {@linkcode PrivateApt} (same mirrors, read from the machine's apt sources; same
 * content store) in its own root, with every `arm64` architecture option and `arch=arm64`
 * source restriction swapped for the host architecture.
 *
 * @module
 */

import { InfraError } from "../errors.ts";
import { cacheDir } from "../debian/cache.ts";
import { PrivateApt, type UpdateReport } from "../debian/apt.ts";
import { run } from "../debian/proc.ts";

/** The host's Debian architecture (`dpkg --print-architecture`). */
export async function hostDebArch(): Promise<string> {
  const res = await run("dpkg", ["--print-architecture"], { owner: "dpkg --print-architecture" });
  const arch = res.stdout.trim();
  if (!/^[a-z0-9]+$/.test(arch)) {
    throw new InfraError(`dpkg reports an odd architecture "${arch}"`, "check dpkg on this host");
  }
  return arch;
}

/** Retarget a PrivateApt instance from arm64 to `arch` (options and sources list). */
export function retarget(apt: PrivateApt, arch: string): PrivateApt {
  const opts = apt.aptOptions.bind(apt);
  const list = apt.sourcesList.bind(apt);
  apt.aptOptions = () =>
    opts().map((o) => o.replace(/^(APT::Architectures?)=arm64$/, `$1=${arch}`));
  apt.sourcesList = () =>
    list().replaceAll("arch=arm64", `arch=${arch}`).replace(
      "private to rkhil (arm64)",
      `private to rkhil (${arch})`,
    );
  return apt;
}

let shared: Promise<{ apt: PrivateApt; arch: string; report: UpdateReport }> | undefined;

/** The process-wide private apt for the host architecture, updated once. */
export function hostArchApt(): Promise<{ apt: PrivateApt; arch: string; report: UpdateReport }> {
  shared ??= (async () => {
    const arch = await hostDebArch();
    const root = await cacheDir(`apt-${arch}`);
    const apt = retarget(await PrivateApt.open({ root }), arch);
    await Deno.writeTextFile(`${root}/etc/sources.list`, apt.sourcesList());
    const report = await apt.update();
    return { apt, arch, report };
  })();
  shared.catch(() => (shared = undefined));
  return shared;
}
