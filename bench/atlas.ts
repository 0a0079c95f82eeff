/**
 * Atlas rebuild benchmark: `buildAtlas()` over every default Debian suite with the kernel
 * packages already cached (the first round fetches what is missing and is reported apart), then
 * `rounds` timed rebuilds, each also rendering Markdown, HTML and JSON. Goal: under 5 minutes.
 * Written to `bench/results/atlas.json`.
 *
 * Run: deno run -A bench/atlas.ts [rounds=3]
 * (A script rather than Deno.bench: one rebuild takes tens of seconds.)
 */
import { stats } from "./stats.ts";
import { buildAtlas } from "../runner/atlas.ts";
import { renderAtlasHtml, renderAtlasMarkdown } from "../runner/report/atlas_report.ts";

const rounds = Number(Deno.args[0] ?? 3);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) {
  console.error("bench/atlas.ts: rounds must be a whole number from 1 to 100");
  Deno.exit(2);
}

async function once(): Promise<{ ms: number; dtbs: number; suites: string[] }> {
  const t0 = performance.now();
  const a = await buildAtlas();
  renderAtlasMarkdown(a);
  renderAtlasHtml(a);
  JSON.stringify(a);
  return {
    ms: performance.now() - t0,
    dtbs: a.releases.reduce((n, r) => n + r.dtbs.length, 0),
    suites: a.releases.map((r) => `${r.suite} ${r.version}`),
  };
}

const warm = await once();
const times: number[] = [];
for (let i = 0; i < rounds; i++) times.push((await once()).ms / 1000);
const s = stats(times);
const out = {
  date: new Date().toISOString(),
  host: { cpus: navigator.hardwareConcurrency, loadavg: Deno.loadavg() },
  suites: warm.suites,
  dtbsPerRebuild: warm.dtbs,
  firstRoundSeconds: Math.round(warm.ms) / 1000,
  rebuildSeconds: s,
  goalSeconds: 300,
  meetsGoal: s.max < 300,
};
await Deno.mkdir("bench/results", { recursive: true });
await Deno.writeTextFile("bench/results/atlas.json", JSON.stringify(out, null, 2) + "\n");
console.log(JSON.stringify(out, null, 2));
