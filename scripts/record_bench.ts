/**
 * Record benchmark results: runs `deno bench --json` on each `bench/*_bench.ts` (or the files
 * given) and writes `bench/results/<name>.json` with the machine it ran on, so results can be
 * compared across commits. `deno task bench` compares the cases of one file side by side.
 */
const files = Deno.args.length
  ? Deno.args
  : [...Deno.readDirSync("bench")].filter((e) => e.isFile && e.name.endsWith("_bench.ts"))
    .map((e) => `bench/${e.name}`).sort();
await Deno.mkdir("bench/results", { recursive: true });
const deno = Deno.env.get("RKHIL_DENO") ?? Deno.execPath();
let failed = false;
for (const file of files) {
  const out = await new Deno.Command(deno, {
    args: ["bench", "-A", "--json", file],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) {
    console.error(`record_bench: ${file} failed`);
    failed = true;
    continue;
  }
  const name = file.replace(/^.*\//, "").replace(/_bench\.ts$/, "");
  const report = {
    file,
    recordedAt: new Date().toISOString(),
    machine: { cpus: navigator.hardwareConcurrency, os: Deno.build.os, arch: Deno.build.arch },
    deno: Deno.version.deno,
    results: JSON.parse(new TextDecoder().decode(out.stdout)),
  };
  const path = `bench/results/${name}.json`;
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
  console.log(`recorded ${path}`);
}
Deno.exit(failed ? 1 : 0);
