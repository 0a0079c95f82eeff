/**
 * What the rkhil host can carry, and the gate that starts a farm job only when it fits: at most
 * `--jobs N` jobs at once, and the host cores and memory of the running jobs (each target's
 * `limits`, see boards/farm_schema.ts) within the host's CPU count and the memory available
 * when the run started (`MemAvailable` of /proc/meminfo, less a reserve for rkhil itself).
 * Jobs wait in the order they asked.
 *
 * @module
 */
import type { HostCost } from "../../boards/farm_load.ts";

/** Memory kept back for rkhil and the system: 512 MiB. */
export const MEMORY_RESERVE = 512 * 2 ** 20;

/**
 * Parse /proc/meminfo: the `kB` fields by name, in bytes.
 *
 * @throws {Error} when `MemAvailable` or `MemTotal` is missing (not a meminfo text).
 */
export function parseMeminfo(text: string): { total: number; available: number } {
  const fields = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9_()]+):\s+([0-9]{1,15})(?: kB)?\s*$/.exec(line);
    if (m) fields.set(m[1], Number(m[2]) * 1024);
  }
  const total = fields.get("MemTotal");
  const available = fields.get("MemAvailable") ?? fields.get("MemFree");
  if (total === undefined || available === undefined) {
    throw new Error("not a /proc/meminfo text (no MemTotal or MemAvailable)");
  }
  return { total, available };
}

/** What this host can carry now: its CPU count and available memory less the reserve. */
export function hostCapacity(): HostCost {
  const { available } = parseMeminfo(Deno.readTextFileSync("/proc/meminfo"));
  return {
    cpus: navigator.hardwareConcurrency || 1,
    memory: Math.max(0, available - MEMORY_RESERVE),
  };
}

/** `1.5 cores, 1.0 GiB`. */
export function costText(c: HostCost): string {
  return `${Number(c.cpus.toFixed(2))} core${c.cpus === 1 ? "" : "s"}, ${
    (c.memory / 2 ** 30).toFixed(1)
  } GiB`;
}

/** Starts jobs within `--jobs N` and the host's capacity (see the module documentation). */
export class HostGate {
  #running = 0;
  #used: HostCost = { cpus: 0, memory: 0 };
  #waiting: { cost: HostCost; go: () => void }[] = [];
  /** Most jobs that ran at once so far. */
  peak = 0;

  /** Most jobs at once. */
  readonly jobs: number;
  /** The host's cores and memory. */
  readonly capacity: HostCost;

  /**
   * A gate for `jobs` jobs on a host of `capacity`.
   *
   * @param jobs most jobs at once (>= 1)
   * @param capacity the host's cores and memory
   */
  constructor(jobs: number, capacity: HostCost) {
    this.jobs = jobs;
    this.capacity = capacity;
  }

  /** Why a job of `cost` can never run here (it does not fit an idle host), or undefined. */
  neverFits(cost: HostCost): string | undefined {
    if (cost.cpus <= this.capacity.cpus && cost.memory <= this.capacity.memory) return undefined;
    return `one job needs ${costText(cost)}; this host has ${costText(this.capacity)}`;
  }

  #fits(cost: HostCost): boolean {
    return this.#running < this.jobs &&
      this.#used.cpus + cost.cpus <= this.capacity.cpus + 1e-9 &&
      this.#used.memory + cost.memory <= this.capacity.memory;
  }

  #start(cost: HostCost): () => void {
    this.#running++;
    this.peak = Math.max(this.peak, this.#running);
    this.#used = { cpus: this.#used.cpus + cost.cpus, memory: this.#used.memory + cost.memory };
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#running--;
      this.#used = { cpus: this.#used.cpus - cost.cpus, memory: this.#used.memory - cost.memory };
      this.#pump();
    };
  }

  #pump(): void {
    // In order: the first waiting job that fits starts; a big job is not starved by small ones
    // behind it because only the head may start while it does not fit.
    while (this.#waiting.length && this.#fits(this.#waiting[0].cost)) {
      this.#waiting.shift()!.go();
    }
  }

  /**
   * Wait until a job of `cost` fits, then hold its share. Call the returned function when the
   * job ends (idempotent).
   *
   * @throws {Error} when the job can never fit (check {@linkcode neverFits} first).
   */
  acquire(cost: HostCost): Promise<() => void> {
    const never = this.neverFits(cost);
    if (never) return Promise.reject(new Error(never));
    if (!this.#waiting.length && this.#fits(cost)) return Promise.resolve(this.#start(cost));
    return new Promise((resolve) => {
      this.#waiting.push({ cost, go: () => resolve(this.#start(cost)) });
    });
  }
}
