import assert from "node:assert/strict";
import { hostCapacity, HostGate, parseMeminfo } from "./capacity.ts";

Deno.test("parseMeminfo reads this host's /proc/meminfo and refuses what is not one", () => {
  const real = parseMeminfo(Deno.readTextFileSync("/proc/meminfo"));
  assert.ok(real.total > 64 * 2 ** 20 && real.available > 0 && real.available <= real.total);
  const cap = hostCapacity();
  assert.equal(cap.cpus, navigator.hardwareConcurrency);
  assert.ok(cap.memory < real.total);

  const kernel61 = "MemTotal:        8131180 kB\nMemFree:         7900000 kB\n" +
    "MemAvailable:    7950000 kB\nBuffers:            1234 kB\nHugePages_Total:       0\n";
  assert.deepEqual(parseMeminfo(kernel61), { total: 8131180 * 1024, available: 7950000 * 1024 });
  // Kernels before 3.14 have no MemAvailable: MemFree stands in.
  assert.equal(parseMeminfo("MemTotal: 100 kB\nMemFree: 40 kB\n").available, 40 * 1024);
  for (const bad of ["", "garbage", "MemTotal: lots kB\n", "\u0000".repeat(1000)]) {
    assert.throws(() => parseMeminfo(bad), /not a \/proc\/meminfo text/);
  }
});

Deno.test("HostGate: --jobs, cores and memory bound the jobs at once; in order; never-fits", async () => {
  const G = 2 ** 30;
  const gate = new HostGate(3, { cpus: 2, memory: 3 * G });
  const order: string[] = [];
  const start = (name: string, cpus: number, memory: number) =>
    gate.acquire({ cpus, memory }).then((release) => {
      order.push(name);
      return release;
    });
  const a = await start("a", 1, G);
  const b = await start("b", 1, G);
  // c needs a core: it waits although --jobs would allow a third job.
  const c = start("c", 1, G);
  const d = start("d", 0, 0);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(order, ["a", "b"], "c waits for a core; d waits behind c (in order)");
  a();
  a(); // idempotent
  const rc = await c;
  const rd = await d;
  assert.deepEqual(order, ["a", "b", "c", "d"]);
  assert.equal(gate.peak, 3);
  // A fourth job waits for --jobs 3 although it costs nothing.
  const e = start("e", 0, 0);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(order.length, 4);
  rd();
  (await e)();
  b();
  rc();
  assert.match(
    gate.neverFits({ cpus: 1, memory: 4 * G }) ?? "",
    /one job needs 1 core, 4\.0 GiB; this host has 2 cores, 3\.0 GiB/,
  );
  await assert.rejects(gate.acquire({ cpus: 3, memory: 0 }), /one job needs 3 cores/);
});
