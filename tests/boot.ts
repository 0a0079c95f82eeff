/**
 * Suite `boot`: the one strategy brings the target to ready (the runner's `boot` step, run for
 * every suite: boot to shell, to SSH, attempts), then the running kernel's identity
 * (`boot/kernel`: release and `uname -srvm`, checked against what the target reported when it
 * became ready) and its console since power-on (`boot/console`: no panic, Oops, BUG, SError or
 * WARNING, read by the console watchers of runner/watch/). Needs nothing.
 *
 * @module
 */
import { ConsoleWatcher, type WatchEvent } from "../runner/watch/watchers.ts";
import { splitConsoleText } from "../runner/watch/console_lines.ts";
import type { Suite } from "../runner/suite/types.ts";

/** Event kinds that fail `boot/console`: crashes and WARNINGs. */
export const BAD_CONSOLE_KINDS: ReadonlySet<string> = new Set([
  "panic",
  "oops",
  "bug",
  "serror",
  "warning",
]);

/**
 * The events the console watchers find in a console transcript (read from its start: the
 * console of this power-on). Command output of the framed shell (lines ending in a bare LF) is
 * not taken for kernel lines.
 */
export function consoleEvents(transcript: string): readonly WatchEvent[] {
  const w = new ConsoleWatcher({ commandOutputLf: true });
  w.feedLines(splitConsoleText(transcript));
  w.flush();
  return w.events;
}

/** The `boot` suite. */
export const suite: Suite = {
  name: "boot",
  description:
    "the target boots to a ready shell; kernel identity; no crash or WARNING on the console since power-on",
  requires: [],
  steps: () => [
    {
      name: "boot/kernel",
      run: async (ctx) => {
        const r = await ctx.target.command.run("uname -r; uname -srvm", { timeoutMs: 20_000 });
        const [release = "", uname = ""] = r.stdout.trim().split("\n").map((l) => l.trim());
        const ok = r.exitStatus === 0 && release === ctx.release;
        return {
          verdict: ok ? "PASS" : "FAIL",
          reason: ok
            ? undefined
            : `uname -r says ${JSON.stringify(release)}, the target became ready on ${ctx.release}`,
          details: { summary: release, release, uname },
        };
      },
    },
    {
      name: "boot/console",
      run: (ctx) => {
        const c = ctx.target.console;
        if (!c) {
          return Promise.resolve({
            verdict: "SKIP" as const,
            reason: `${ctx.target.name} has no console: nothing to watch since power-on`,
          });
        }
        const text = c.recorder.text;
        const events = consoleEvents(text);
        const bad = events.filter((e) => BAD_CONSOLE_KINDS.has(e.kind));
        const counts: Record<string, number> = {};
        for (const e of events) counts[e.kind] = (counts[e.kind] ?? 0) + 1;
        const lines = text.split("\n").length;
        return Promise.resolve({
          verdict: bad.length ? "FAIL" as const : "PASS" as const,
          reason: bad.length
            ? `${bad.length} crash/WARNING event${bad.length === 1 ? "" : "s"} on the console: ${
              bad[0].kind
            }: ${bad[0].reason}`
            : undefined,
          measurements: [{ name: "console lines", value: lines, unit: "lines" }],
          details: {
            summary: bad.length ? `${bad.length} crash/WARNING` : "no crash, no WARNING",
            events: counts,
            ...(bad.length ? { first: bad.slice(0, 5).map((e) => `${e.kind}: ${e.reason}`) } : {}),
          },
        });
      },
    },
  ],
};
