import assert from "node:assert/strict";
import { Interrupt, InterruptedError } from "./interrupt.ts";

Deno.test("interrupt: race ends pending work with InterruptedError (MISS); check throws after", async () => {
  const it = new Interrupt();
  it.check();
  let finish!: (v: string) => void;
  const work = new Promise<string>((r) => finish = r);
  const raced = it.race(work);
  it.trigger("SIGTERM");
  it.trigger("SIGINT"); // the first signal counts
  await assert.rejects(
    raced,
    (e) => e instanceof InterruptedError && e.verdict === "MISS" && e.signal === "SIGTERM",
  );
  assert.throws(() => it.check(), /interrupted \(SIGTERM\)/);
  assert.equal(it.signal, "SIGTERM");
  finish("late"); // work that ends after the interrupt is ignored
  // Work started after the interrupt is refused at once.
  await assert.rejects(it.race(new Promise(() => {})), InterruptedError);
});

Deno.test("interrupt: finished work wins when no signal came; its failure passes through", async () => {
  const it = new Interrupt();
  assert.equal(await it.race(Promise.resolve(7)), 7);
  await assert.rejects(it.race(Promise.reject(new Error("boom"))), /boom/);
});

Deno.test("interrupt: a real SIGTERM to this process triggers it instead of ending the process", async () => {
  const it = Interrupt.listen();
  try {
    // The signal arrives asynchronously: a bound keeps the event loop alive until it does.
    let bound: ReturnType<typeof setTimeout> | undefined;
    const raced = it.race(
      new Promise((_, reject) => bound = setTimeout(() => reject(new Error("no signal")), 10_000)),
    ).finally(() => clearTimeout(bound));
    Deno.kill(Deno.pid, "SIGTERM");
    await assert.rejects(raced, (e) => e instanceof InterruptedError && e.signal === "SIGTERM");
  } finally {
    it.dispose();
  }
});
