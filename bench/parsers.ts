/**
 * Every parser on 10 MB inputs (issue 13): the time the fuzz tests bound only by size. Each
 * parser gets real captures repeated to 10 MB and the degenerate inputs of its fuzz test (one
 * 10 MB line, ten million line ends, random bytes); 3 runs each, the median wall time and the
 * throughput are recorded.
 *
 * `deno run -A bench/parsers.ts` writes bench/results/parsers.json and prints a table.
 *
 * @module
 */
import { parseLog } from "../oracle/klog.ts";
import { MAX_PATCH_CHARS, parsePatchText } from "../oracle/patch_text.ts";
import { MAX_BOARD_FILE_BYTES, parseBoard } from "../boards/load.ts";
import {
  parseDmesg,
  parseIomem,
  parseKernelConfig,
  parseMeminfo,
  parseZoneinfo,
} from "../runner/facts/parsers.ts";
import { buildFdt, cells, parseFdt, strings } from "../runner/fdt/mod.ts";
import { parseBtf } from "../runner/introspect/btf.ts";
import { decodeBase64Lines } from "../runner/introspect/kcore.ts";
import { parseProbeReports } from "../runner/probe/report.ts";
import { renderJUnit } from "../runner/report/junit.ts";
import { renderKcidb } from "../runner/report/kcidb.ts";
import type { HistoryRow } from "../runner/history/query.ts";
import { TelnetCodec } from "../runner/serial/telnet.ts";
import { splitConsoleText } from "../runner/watch/console_lines.ts";
import { parseRknnOutput } from "../runner/workload/rknn_output.ts";
import { parseRkwlOutput } from "../runner/workload/rkwl_output.ts";
import { stats } from "./stats.ts";

const MB10 = 10 << 20;
const root = new URL("../", import.meta.url);
const text = (p: string) => Deno.readTextFileSync(new URL(p, root));
const to10MB = (s: string) => s.repeat(Math.ceil(MB10 / s.length));
const rnd = (() => {
  const b = new Uint8Array(MB10);
  for (let i = 0; i < b.length; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
})();
const rndText = new TextDecoder().decode(rnd);

function btf10MB(): Uint8Array {
  const n = MB10 / 16;
  const out = new Uint8Array(24 + n * 16 + 5);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, 0xeb9f, true);
  dv.setUint8(2, 1);
  dv.setUint32(4, 24, true);
  dv.setUint32(12, n * 16, true);
  dv.setUint32(16, n * 16, true);
  dv.setUint32(20, 5, true);
  for (let i = 0; i < n; i++) {
    const o = 24 + i * 16;
    dv.setUint32(o, 1, true); // name "u32"
    dv.setUint32(o + 4, 1 << 24, true); // INT
    dv.setUint32(o + 8, 4, true);
    dv.setUint32(o + 12, 32, true);
  }
  out.set(new TextEncoder().encode("\0u32\0"), 24 + n * 16);
  return out;
}

function fdt10MB(): Uint8Array {
  const blob = new Uint8Array(400).fill(0xa5);
  return buildFdt({
    name: "",
    children: Array.from({ length: Math.ceil(MB10 / 460) }, (_, i) => ({
      name: `node@${i.toString(16)}`,
      props: [["compatible", strings("rkhil,fuzz")], ["reg", cells(0, i, 0, 4096)], [
        "blob",
        blob,
      ]],
    })),
  });
}

function rows10MB(): HistoryRow[] {
  return Array.from({ length: Math.ceil(MB10 / 1000) }, (_, i) => ({
    runId: "run",
    seq: i,
    test: `t${i}`,
    suite: "s",
    target: "qemu-virt-8g",
    kernel: "debian:trixie",
    release: null,
    releaseOrder: null,
    verdict: i % 2 ? "FAIL" : "PASS",
    reason: "r".repeat(1000),
    startedAt: new Date(0).toISOString(),
    durationMs: i,
  }));
}

const b64 = (() => {
  // 65 535 bytes (a multiple of 3): its base64 has no padding, so copies can follow each other.
  const s = btoa(String.fromCharCode(...rnd.subarray(0, 65535))).repeat(
    Math.ceil(MB10 / 87380),
  );
  return s.replace(/.{76}/g, "$&\n");
})();

/** name, input description, bytes, and the work. */
const CASES: [string, string, () => number, () => unknown][] = [];
function add(
  parser: string,
  input: string,
  make: () => string | Uint8Array,
  f: (x: never) => unknown,
) {
  let x: string | Uint8Array | undefined;
  CASES.push([parser, input, () => (x ??= make()).length, () => f(x as never)]);
}
const klog = "oracle/testdata/logs";
const logFile =
  [...Deno.readDirSync(new URL(klog + "/", root))].find((e) => e.isFile && e.name.endsWith(".log"))!
    .name;
add(
  "klog parseLog",
  `${klog}/${logFile} ×`,
  () => to10MB(text(`${klog}/${logFile}`)),
  (s) => parseLog(s, { format: "v2" }),
);
add("klog parseLog", "10 M line ends", () => "\n".repeat(MB10), (s) => parseLog(s));
add("console lines", "random bytes", () => rnd, (b) => splitConsoleText(b));
add("console lines", "one line", () => new Uint8Array(MB10).fill(0x61), (b) => splitConsoleText(b));
add(
  "facts parseDmesg",
  "rock3b 6.12 dmesg ×",
  () => to10MB(text("runner/facts/testdata/dmesg-arm64-rock3b-8g-6.12-written.txt")),
  (s) => parseDmesg(s),
);
add("facts parseDmesg", "10 M line ends", () => "\n".repeat(MB10), (s) => parseDmesg(s));
add(
  "facts parseIomem",
  "rock3b iomem ×",
  () => to10MB(text("runner/facts/testdata/iomem-arm64-rock3b-8g-written.txt")),
  (s) => parseIomem(s),
);
add(
  "facts parseZoneinfo",
  "rock3b zoneinfo ×",
  () => to10MB(text("runner/facts/testdata/zoneinfo-arm64-rock3b-8g-written.txt")),
  (s) => parseZoneinfo(s),
);
add(
  "facts parseKernelConfig",
  "6.12 config ×",
  () => to10MB(text("runner/facts/testdata/config-6.12.118+deb13-arm64.subset")),
  (s) => parseKernelConfig(s),
);
add("facts parseMeminfo", "random text", () => rndText, (s) => parseMeminfo(s));
add("fdt parseFdt", "22 800 nodes", fdt10MB, (b) => parseFdt(b));
add("btf parseBtf", "655 360 types", btf10MB, (b) => parseBtf(b));
add("kcore base64", "76-column base64", () => b64, (s) => decodeBase64Lines(s));
// A board file is at most 1 MiB (MAX_BOARD_FILE_BYTES; 10 MB is refused before parsing): the
// real rock-3b-8g file padded with comments to the bound.
add("board YAML", "rock-3b-8g + comments, 1 MiB", () => {
  const real = text("boards/rock-3b-8g.yaml");
  const pad = "# padding to the size bound\n";
  return real + pad.repeat(Math.floor((MAX_BOARD_FILE_BYTES - real.length) / pad.length));
}, (s) => parseBoard(s, "rock-3b-8g.yaml"));
add("rknn output", "random text", () => rndText, (s) => parseRknnOutput(s));
add(
  "rknn output",
  "benchmark sdk15 ×",
  () => to10MB(text("runner/workload/testdata/format_benchmark_sdk15.txt")),
  (s) => parseRknnOutput(s),
);
add(
  "rkwl output",
  "grace_hopper run ×",
  () => to10MB(text("runner/workload/testdata/rkwl/mobilenet_v1-grace_hopper.txt")),
  (s) => parseRkwlOutput(s),
);
add(
  "probe reports",
  "bounce 6.12 ×",
  () => to10MB(text("runner/probe/testdata/bounce-6.12.probe.txt")),
  (s) => parseProbeReports(s),
);
add(
  "patch text",
  "8 MB mailbox",
  () =>
    text("oracle/testdata/patches/0001-rk3568-iommu-v1-compatible.patch").repeat(6000).slice(
      0,
      MAX_PATCH_CHARS - 1,
    ),
  (s) => {
    try {
      parsePatchText(s, "box");
    } catch { /* a cut last mail */ }
  },
);
add("telnet decode", "random bytes", () => rnd, (b) => {
  const c = new TelnetCodec();
  for (let i = 0; i < (b as Uint8Array).length; i += 65536) {
    c.decode((b as Uint8Array).subarray(i, i + 65536));
  }
});
let rows: HistoryRow[] | undefined;
CASES.push([
  "JUnit writer",
  "10 485 rows × 1 KB",
  () => MB10,
  () => renderJUnit("run", null, rows ??= rows10MB()),
]);
CASES.push([
  "KCIDB writer",
  "10 485 rows × 1 KB",
  () => MB10,
  () => renderKcidb(rows ??= rows10MB(), []),
]);

const results = [];
for (const [parser, input, size, work] of CASES) {
  const bytes = size();
  const ms: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    work();
    ms.push(performance.now() - t0);
  }
  const s = stats(ms, 1);
  const mbps = bytes / 2 ** 20 / (s.median / 1000);
  results.push({ parser, input, bytes, ms: s, mibPerSecond: Math.round(mbps * 10) / 10 });
  console.log(
    `${parser.padEnd(24)} ${input.padEnd(28)} ${(bytes / 2 ** 20).toFixed(1).padStart(5)} MiB ` +
      `${s.median.toFixed(0).padStart(7)} ms  ${mbps.toFixed(1).padStart(7)} MiB/s`,
  );
}
await Deno.mkdir(new URL("bench/results/", root), { recursive: true });
await Deno.writeTextFile(
  new URL("bench/results/parsers.json", root),
  JSON.stringify(
    {
      file: "bench/parsers.ts",
      recordedAt: new Date().toISOString(),
      machine: {
        cpus: navigator.hardwareConcurrency,
        os: Deno.build.os,
        arch: Deno.build.arch,
        loadavg: Deno.loadavg(),
      },
      deno: Deno.version.deno,
      results,
    },
    null,
    2,
  ) + "\n",
);
