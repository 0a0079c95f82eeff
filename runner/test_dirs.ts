/**
 * Where tests that boot targets keep their run directories: under the repository's
 * `runs/tests/` (ignored by git), so console logs and QEMU logs stay readable after a failing
 * run, and `./rkhil test` clears them at the start of the next run instead of letting them pile
 * up in the system's temporary directory.
 *
 * @module
 */

/** A fresh directory `runs/tests/<prefix>XXXX` for one test module's targets. */
export async function testRunRoot(prefix: string): Promise<string> {
  const root = new URL("../runs/tests/", import.meta.url).pathname;
  await Deno.mkdir(root, { recursive: true });
  return await Deno.makeTempDir({ dir: root, prefix });
}
