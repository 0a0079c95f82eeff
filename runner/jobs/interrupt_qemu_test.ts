/**
 * Interrupts of a real `rkhil run` (main.ts in a child process, the suite runner) on a Debian
 * kernel in QEMU:
 * SIGINT and SIGTERM record the running step MISS "interrupted", power the guest off, write
 * `report.md` and exit 130; after SIGKILL, `rkhil report RUN_DIR` reads the record (a torn last
 * line included) and writes the report.
 */
import assert from "node:assert/strict";
import { parseResults, type TestResult } from "../results/store.ts";
import { testRunRoot } from "../test_dirs.ts";
import { qemuUnder, waitNoneUnder } from "./_qemu_procs.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const KERNEL = "debian:trixie";

/**
 * A child `rkhil run` (or the rkhil command `args`), the lines of its stdout (or stderr) as
 * they come, and how it ended.
 */
function startRun(
  root: string,
  args = ["run", "--kernel", KERNEL, "--runs-dir", root],
  watch: "stdout" | "stderr" = "stdout",
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const watched = watch === "stdout" ? child.stdout : child.stderr;
  const other = new Response(watch === "stdout" ? child.stderr : child.stdout).text();
  const reading = (async () => {
    let buf = "";
    for await (const chunk of watched.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        for (const w of [...waiters]) {
          if (w.re.test(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    }
  })();

  /** The first stdout line matching `re` (bounded). */
  const line = (re: RegExp, ms = 600_000) => {
    const seen = lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no line ${re} in ${ms} ms`)), ms);
      waiters.push({
        re,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
    });
  };
  const end = async () => {
    const status = await child.status;
    await reading;
    const text = lines.join("\n");
    return watch === "stdout"
      ? { status, stdout: text, stderr: await other }
      : { status, stdout: await other, stderr: text };
  };
  return { child, line, end };
}

async function runDirOf(line: Promise<string>): Promise<string> {
  const m = /results in (\S+)$/.exec(await line);
  assert.ok(m, "the run prints its directory");
  return m[1];
}

async function results(dir: string): Promise<TestResult[]> {
  const r = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`));
  assert.equal(r.damagedLines, 0);
  return r.results;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("SIGINT while the guest boots: boot MISS interrupted, report written, exit 130, no QEMU", async () => {
  const root = await testRunRoot("rkhil-sigint-");
  const run = startRun(root);
  const dir = await runDirOf(run.line(/^rkhil run: results in /));
  await run.line(/^qemu-virt-8g debian:trixie$/);
  // Signal once QEMU runs: the guest is booting (a boot takes 10 s or more here).
  while (!(await qemuUnder(root)).length) await sleep(100);
  await sleep(500);
  run.child.kill("SIGINT");
  const { status, stdout, stderr } = await run.end();
  assert.equal(status.code, 130, stderr);
  const rs = await results(dir);
  assert.deepEqual(rs.map((r) => [r.test, r.verdict, r.reason]), [
    ["boot", "MISS", "interrupted (SIGINT)"],
  ]);
  const report = await Deno.readTextFile(`${dir}/report.md`);
  assert.match(report, /^\*\*interrupted \(SIGINT\)\*\* during qemu-virt-8g debian:trixie `boot`/m);
  assert.match(stdout, /0 PASS, 0 DONE, 0 FAIL, 0 ERROR, 1 MISS, 0 SKIP/);
  assert.match(stderr, /SIGINT: stopping/);
  assert.deepEqual(await waitNoneUnder(root), []);
});

Deno.test("SIGTERM during a step: that step MISS interrupted, the rest kept, exit 130, no QEMU", async () => {
  const root = await testRunRoot("rkhil-sigterm-");
  const run = startRun(root);
  const dir = await runDirOf(run.line(/^rkhil run: results in /));
  await run.line(/^ {2}PASS {2}facts/);
  await sleep(1_500); // oracle/driver reads /proc/kcore for about ten seconds
  run.child.kill("SIGTERM");
  const { status, stderr } = await run.end();
  assert.equal(status.code, 130, stderr);
  const rs = await results(dir);
  assert.deepEqual(rs.map((r) => [r.test, r.verdict]), [
    ["boot", "PASS"],
    ["boot/kernel", "PASS"],
    ["boot/console", "PASS"],
    ["facts", "PASS"],
    ["oracle/driver", "MISS"],
  ]);
  assert.equal(rs[4].reason, "interrupted (SIGTERM)");
  const report = await Deno.readTextFile(`${dir}/report.md`);
  assert.match(
    report,
    /^\*\*interrupted \(SIGTERM\)\*\* during qemu-virt-8g debian:trixie `oracle\/driver`/m,
  );
  assert.match(
    report,
    /^\| debian:trixie \| \S+-arm64 \| [\d.]+ s \| 2\/2 agree \| \d+ facts, 0 missing \| MISS \|/m,
  );
  assert.deepEqual(await waitNoneUnder(root), []);
});

Deno.test("SIGKILL during a step: no QEMU left, and `rkhil report` reads the record", async () => {
  const root = await testRunRoot("rkhil-sigkill-");
  const run = startRun(root);
  const dir = await runDirOf(run.line(/^rkhil run: results in /));
  await run.line(/^ {2}PASS {2}facts/);
  await sleep(1_500);
  run.child.kill("SIGKILL");
  const { status } = await run.end();
  assert.equal(status.signal, "SIGKILL");
  // QEMU's watchdog sees its pipe close and kills QEMU.
  assert.deepEqual(await waitNoneUnder(root, 15_000), []);
  await assert.rejects(Deno.stat(`${dir}/report.md`), Deno.errors.NotFound);
  // As if the kill had torn a write in half.
  await Deno.writeTextFile(`${dir}/results.jsonl`, '{"test":"oracle/driver","tar', {
    append: true,
  });
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "report", dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(await Deno.readTextFile(`${dir}/report.md`), text);
  assert.match(
    text,
    /^\| debian:trixie \| \S+-arm64 \| [\d.]+ s \| 2\/2 agree \| \d+ facts, 0 missing \| - \|/m,
  );
  assert.match(text, /^1 damaged line of results\.jsonl skipped/m);
  assert.match(text, /4 PASS, 0 DONE, 0 FAIL, 0 ERROR, 0 MISS, 0 SKIP$/m);
});

Deno.test("rkhil validate (the probe suites): SIGINT while its guest boots is a boot MISS, exit 130, no QEMU", async () => {
  const root = await testRunRoot("rkhil-validate-sigint-");
  const run = startRun(root, ["validate", "--kernel", KERNEL, "--runs-dir", root]);
  const dir = await runDirOf(run.line(/^rkhil run: results in /));
  while (!(await qemuUnder(root)).length) await sleep(100);
  await sleep(500);
  run.child.kill("SIGINT");
  const { status, stderr } = await run.end();
  assert.equal(status.code, 130, stderr);
  const rs = await results(dir);
  assert.deepEqual(rs.map((r) => [r.test, r.suite, r.verdict, r.reason]), [
    ["boot", "boot", "MISS", "interrupted (SIGINT)"],
  ]);
  assert.deepEqual(await waitNoneUnder(root), []);
});
