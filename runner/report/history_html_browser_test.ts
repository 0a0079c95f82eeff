/**
 * The HTML report in a real browser: headless Chromium (Debian package `chromium`, installed
 * through runner/debian/host_tools.ts) opens the file over the DevTools protocol; the test fails
 * on any console error, uncaught exception or request that is not the file itself or inline
 * data, checks that every chart drew as many points as its data has, and keeps the page and a
 * screenshot in `runs/tests/rkhil-html-*`.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { RELEASES } from "../../oracle/releases.ts";
import { hostCommand } from "../debian/host_tools.ts";
import { recordPredictions } from "../history/predictions.ts";
import { openHistory } from "../history/schema.ts";
import { HistoryWriter, importRunDir } from "../history/writer.ts";
import { parseResults } from "../results/store.ts";
import { testRunRoot } from "../test_dirs.ts";
import { buildHistoryReport } from "./history_report.ts";
import { renderHistoryHtml } from "./history_html.ts";

const RUNS = fileURLToPath(new URL("../history/testdata/runs", import.meta.url));

/** A minimal DevTools protocol session over the browser's WebSocket. */
class Cdp {
  private id = 0;
  private readonly pending = new Map<number, (m: Record<string, unknown>) => void>();
  readonly events: { method: string; params: Record<string, unknown> }[] = [];
  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data));
      if (typeof m.id === "number") this.pending.get(m.id)?.(m);
      else this.events.push({ method: m.method, params: m.params ?? {} });
    };
  }
  static open(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    return new Promise((res, rej) => {
      ws.onopen = () => res(new Cdp(ws));
      ws.onerror = () => rej(new Error(`cannot connect to ${url}`));
    });
  }
  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    const id = ++this.id;
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`CDP ${method}: no answer in 20 s`)), 20_000);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        this.pending.delete(id);
        if (m.error) rej(new Error(`CDP ${method}: ${JSON.stringify(m.error)}`));
        else res((m.result ?? {}) as Record<string, unknown>);
      });
      this.ws.send(
        JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }),
      );
    });
  }
  close(): void {
    this.ws.close();
  }
}

async function devtoolsUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(text);
    if (m) {
      // Keep draining stderr so the browser never blocks on a full pipe.
      (async () => {
        try {
          while (!(await reader.read()).done) { /* drain */ }
        } catch { /* closed */ }
      })();
      return m[1];
    }
  }
  throw new Error(`chromium printed no DevTools URL:\n${text.slice(-2000)}`);
}

/** Console errors, exceptions, failed requests and requests to anything but `url` or data. */
function pageProblems(
  events: readonly { method: string; params: Record<string, unknown> }[],
  url: string,
): string[] {
  const problems: string[] = [];
  for (const e of events) {
    const p = e.params;
    if (e.method === "Runtime.exceptionThrown") {
      problems.push(`exception: ${JSON.stringify(p.exceptionDetails).slice(0, 300)}`);
    } else if (
      e.method === "Runtime.consoleAPICalled" && ["error", "assert"].includes(String(p.type))
    ) {
      problems.push(`console.${p.type}: ${JSON.stringify(p.args).slice(0, 300)}`);
    } else if (e.method === "Log.entryAdded") {
      const entry = p.entry as { level: string; text: string };
      if (entry.level === "error") problems.push(`log error: ${entry.text}`);
    } else if (e.method === "Network.loadingFailed") {
      problems.push(`request failed: ${JSON.stringify(p).slice(0, 300)}`);
    } else if (e.method === "Network.requestWillBeSent") {
      const u = String((p.request as { url: string }).url);
      if (u !== url && !u.startsWith("data:")) problems.push(`request: ${u}`);
    }
  }
  return problems;
}

Deno.test("the HTML report renders in headless Chromium: no console error, no request, every chart's points drawn", async () => {
  const dir = await testRunRoot("rkhil-html-");
  const db = openHistory(":memory:");
  for (const d of Deno.readDirSync(RUNS)) importRunDir(db, `${RUNS}/${d.name}`);
  // Two more runs of the real main run's records, so latency has several samples per release.
  const main = parseResults(
    Deno.readTextFileSync(`${RUNS}/2026-11-30T02-49-14Z-main-50fb/results.jsonl`),
  ).results;
  for (const [i, f] of [[1, 1.04], [2, 0.97]] as const) {
    const w = HistoryWriter.on(db, `2026-11-30T1${i}-00-00Z-main-000${i}`, "import");
    for (const r of main) {
      w.record({
        ...r,
        measurements: r.measurements?.map((m) => ({ ...m, value: m.value * f })),
      });
    }
  }
  await recordPredictions(
    db,
    "2026-11-30T00-00-00Z-kb-0000",
    "rock-3b-8g",
    RELEASES.slice(RELEASES.indexOf("6.1")),
  );
  const report = await buildHistoryReport(db);
  db.close();
  const html = renderHistoryHtml(report);
  const page = `${dir}/report.html`;
  await Deno.writeTextFile(page, html);
  assert.ok(report.latency.length >= 3, "the real runs carry boot latency");

  const chromium = await hostCommand("chromium", {
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-extensions",
      "--disable-background-networking",
      "--remote-debugging-port=0",
      "--remote-debugging-address=127.0.0.1",
      `--user-data-dir=${dir}/profile`,
      "--window-size=1280,900",
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  });
  const proc = chromium.spawn();
  let cdp: Cdp | undefined;
  try {
    cdp = await Cdp.open(await devtoolsUrl(proc.stderr));
    const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
    const s = sessionId as string;
    for (const d of ["Runtime", "Log", "Network", "Page"]) await cdp.send(`${d}.enable`, {}, s);
    const url = `file://${page}`;
    await cdp.send("Page.navigate", { url }, s);
    const expected = report.latency.map((l) => l.releases.length);
    let state: {
      charts: string | undefined;
      canvases: { expected: string; points: string | undefined }[];
    } | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const r = await cdp.send("Runtime.evaluate", {
        expression: `JSON.stringify({ charts: document.body?.dataset.charts,
          canvases: [...document.querySelectorAll("canvas")].map((c) => ({
            expected: c.dataset.expected, points: c.dataset.points })) })`,
        returnByValue: true,
      }, s);
      const v = (r.result as { value?: string }).value;
      state = v ? JSON.parse(v) : undefined;
      if (state?.charts !== undefined && state.canvases.every((c) => c.points !== undefined)) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    const shot = await cdp.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
    }, s);
    await Deno.writeFile(
      `${dir}/report.png`,
      Uint8Array.from(atob(String(shot.data)), (c) => c.charCodeAt(0)),
    );

    const problems = pageProblems(cdp.events, url);
    assert.deepEqual(problems, [], `the page at ${page} had problems`);
    assert.ok(state, "the page never answered");
    assert.equal(state.charts, String(report.latency.length), "every chart was set up");
    assert.deepEqual(
      state.canvases.map((c) => Number(c.expected)),
      expected,
      "each canvas declares its data's points",
    );
    assert.deepEqual(
      state.canvases.map((c) => Number(c.points)),
      expected,
      "each chart drew every point of its data inside the chart area",
    );
    assert.ok((await Deno.stat(`${dir}/report.png`)).size > 10_000, "a screenshot was kept");

    // The check itself catches what it must: a console error and a request off the machine's
    // file (to a closed loopback port).
    const bad = `${dir}/bad.html`;
    await Deno.writeTextFile(
      bad,
      '<!DOCTYPE html><body><img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body>',
    );
    const seen = cdp.events.length;
    await cdp.send("Page.navigate", { url: `file://${bad}` }, s);
    await new Promise((res) => setTimeout(res, 1500));
    const caught = pageProblems(cdp.events.slice(seen), `file://${bad}`);
    assert.ok(caught.some((p) => p.startsWith("console.error")), caught.join("\n"));
    assert.ok(caught.some((p) => p.includes("127.0.0.1:9")), caught.join("\n"));
  } finally {
    cdp?.close();
    try {
      proc.kill("SIGTERM");
    } catch { /* already gone */ }
    await proc.status;
    // The browser profile is scratch; the page and the screenshot stay.
    await Deno.remove(`${dir}/profile`, { recursive: true }).catch(() => {});
    await proc.stderr.cancel().catch(() => {});
  }
});
