/**
 * Progress of a farm run. On a terminal: one live line per target (its kernel, suite and step,
 * the job's elapsed time, its counts so far) and an overall bar of jobs with an estimate of the
 * time left, drawn by `cli-progress`. Not a terminal (CI, a pipe): plain lines, each with an
 * ISO time stamp, one per job start and end and per recorded result.
 *
 * @module
 */
import cliProgress from "cli-progress";
import process from "node:process";
import type { Verdict } from "../errors.ts";

/** What the farm scheduler reports as it goes. */
export interface FarmProgress {
  /** A job starts on `target`. */
  jobStart(target: string, kernel: string): void;
  /** A step starts. */
  step(target: string, suite: string, test: string): void;
  /** A result was recorded (the `  PASS  test: reason` line of runStep). */
  result(target: string, line: string): void;
  /** A job ended (`state`: done, or why the target was taken out). */
  jobEnd(target: string, state: string): void;
  /** A line about the run as a whole. */
  note(line: string): void;
  /** The run ended: finish drawing. */
  stop(): void;
}

const RESULT_LINE = /^\s*(PASS|FAIL|ERROR|MISS|SKIP|DONE)\s+(.*)$/;

/** Split a runStep line into its verdict and the rest, or undefined for another line. */
export function parseResultLine(line: string): { verdict: Verdict; text: string } | undefined {
  const m = RESULT_LINE.exec(line);
  return m ? { verdict: m[1] as Verdict, text: m[2] } : undefined;
}

/** Plain timestamped lines (not a terminal). */
export class PlainProgress implements FarmProgress {
  /**
   * Plain lines through `write`.
   *
   * @param write where lines go (default stdout)
   * @param now the clock of the time stamps
   */
  constructor(
    private readonly write: (line: string) => void = (l) => console.log(l),
    private readonly now: () => Date = () => new Date(),
  ) {}

  #line(text: string): void {
    this.write(`${this.now().toISOString()} ${text}`);
  }
  jobStart(target: string, kernel: string): void {
    this.#line(`${target} ${kernel}: start`);
  }
  step(): void {}
  result(target: string, line: string): void {
    const r = parseResultLine(line);
    if (r) this.#line(`${target} ${r.verdict} ${r.text}`);
  }
  jobEnd(target: string, state: string): void {
    this.#line(`${target}: ${state}`);
  }
  note(line: string): void {
    this.#line(line);
  }
  stop(): void {}
}

interface Row {
  bar: cliProgress.SingleBar;
  kernel: string;
  step: string;
  since: number;
  counts: Partial<Record<Verdict, number>>;
}

/** Live lines on a terminal (see the module documentation). */
export class TerminalProgress implements FarmProgress {
  #multi: cliProgress.MultiBar;
  #overall: cliProgress.SingleBar;
  #rows = new Map<string, Row>();
  #done = 0;
  #tick: ReturnType<typeof setInterval>;

  /**
   * Start drawing: one line per target of `jobs`, and the overall bar.
   *
   * @param jobs jobs per target (each target's line counts its own)
   * @param stream the terminal (default stderr, so stdout keeps the report)
   */
  constructor(jobs: ReadonlyMap<string, number>, stream: NodeJS.WriteStream = process.stderr) {
    this.#multi = new cliProgress.MultiBar({
      stream,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 20,
      barsize: 20,
      format: (_opts, params, payload) => {
        const bar = "█".repeat(Math.round(params.progress * 20)).padEnd(20, "░");
        if (payload.overall) {
          const eta = params.value > 0 && params.value < params.total
            ? `, about ${Math.max(1, Math.round(params.eta / 60))} min left`
            : "";
          return `farm ${bar} ${params.value}/${params.total} jobs${eta}`;
        }
        return `${String(payload.target).padEnd(14)} ${bar} ${params.value}/${params.total} ` +
          `${payload.text}`;
      },
    });
    const total = [...jobs.values()].reduce((a, b) => a + b, 0);
    this.#overall = this.#multi.create(total, 0, { overall: true });
    for (const [target, n] of jobs) {
      this.#rows.set(target, {
        bar: this.#multi.create(n, 0, { target, text: "waiting" }),
        kernel: "",
        step: "waiting",
        since: 0,
        counts: {},
      });
    }
    this.#tick = setInterval(() => this.#redraw(), 1000);
  }

  #text(r: Row): string {
    const counts = Object.entries(r.counts).map(([v, n]) => `${n} ${v}`).join(" ");
    const el = r.since ? `${Math.round((Date.now() - r.since) / 1000)} s` : "";
    return [r.kernel, r.step, el, counts].filter(Boolean).join("  ");
  }

  #redraw(): void {
    for (const [target, r] of this.#rows) r.bar.update({ target, text: this.#text(r) });
  }

  jobStart(target: string, kernel: string): void {
    const r = this.#rows.get(target);
    if (!r) return;
    Object.assign(r, { kernel, step: "boot", since: Date.now() });
    this.#redraw();
  }
  step(target: string, suite: string, test: string): void {
    const r = this.#rows.get(target);
    if (!r) return;
    r.step = test === suite || test.startsWith(`${suite}/`) ? test : `${suite}: ${test}`;
    this.#redraw();
  }
  result(target: string, line: string): void {
    const r = this.#rows.get(target);
    const v = parseResultLine(line);
    if (!r || !v) return;
    r.counts[v.verdict] = (r.counts[v.verdict] ?? 0) + 1;
    this.#redraw();
  }
  jobEnd(target: string, state: string): void {
    const r = this.#rows.get(target);
    if (!r) return;
    r.bar.increment();
    this.#overall.update(++this.#done);
    Object.assign(r, { step: state, since: 0 });
    this.#redraw();
  }
  note(line: string): void {
    this.#multi.log(line + "\n");
  }
  stop(): void {
    clearInterval(this.#tick);
    this.#redraw();
    this.#multi.stop();
  }
}
