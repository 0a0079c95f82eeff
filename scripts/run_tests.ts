/**
 * The project's test command (`./rkhil test`): runs every `*_test.ts` with Deno's test runner,
 * writes a JUnit report to `runs/tests/junit.xml`, and ends with the plain summary line
 * `N passed, N failed, N skipped` that CI reads. Exits non-zero on any failure.
 *
 * The first argument may name a part: `unit` (every test that does not boot QEMU) or `qemu` (the
 * `*_qemu_test.ts` files, which boot real Debian kernels). Other arguments are passed to
 * `deno test` (e.g. a path or `--filter`).
 */
const junitDir = "runs/tests";
// The previous run's test logs (runner/test_dirs.ts) are dropped here, so they never pile up.
await Deno.remove(junitDir, { recursive: true }).catch(() => {});
await Deno.mkdir(junitDir, { recursive: true });
const junitPath = `${junitDir}/junit.xml`;

/** The `*_test.ts` files under `dir`, sorted, skipping dependencies and caches. */
async function testFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".") || e.name === "node_modules" || e.name === "runs") continue;
    const p = dir === "." ? e.name : `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await testFiles(p));
    else if (e.isFile && e.name.endsWith("_test.ts")) out.push(p);
  }
  return out.sort();
}

const PARTS: Record<string, (f: string) => boolean> = {
  unit: (f) => !f.endsWith("_qemu_test.ts"),
  qemu: (f) => f.endsWith("_qemu_test.ts"),
};
let rest = Deno.args;
let files: string[] = [];
if (rest[0] !== undefined && rest[0] in PARTS) {
  const keep = PARTS[rest[0]];
  files = (await testFiles(".")).filter(keep);
  rest = rest.slice(1);
}

const deno = Deno.env.get("RKHIL_DENO") ?? Deno.execPath();
const args = ["test", "-A", "--no-prompt", `--junit-path=${junitPath}`, ...rest, ...files];
const child = new Deno.Command(deno, { args, stdin: "null", stdout: "inherit", stderr: "inherit" })
  .spawn();
const status = await child.status;

let passed = 0, failed = 0, skipped = 0;
try {
  const xml = await Deno.readTextFile(junitPath);
  // Deno writes one <testcase> per test and per step; a failed one holds <failure>, an ignored
  // one <skipped>. Counting elements is all this needs.
  for (const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const body = m[2] ?? "";
    if (/<failure\b/.test(body) || /<error\b/.test(body)) failed++;
    else if (/<skipped\b/.test(body)) skipped++;
    else passed++;
  }
} catch (err) {
  console.error(`run_tests: no JUnit report at ${junitPath}: ${(err as Error).message}`);
}
// A test runner that crashed or failed to type-check exits non-zero without failed cases.
if (!status.success && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
Deno.exit(failed > 0 || !status.success ? 1 : 0);
