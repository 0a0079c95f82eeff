// Tests of the close rule helper.
import assert from "node:assert/strict";
import { background, CloseGate } from "./close_gate.ts";
import { catchingStrays } from "./strays_testutil.ts";

Deno.test("close gate: deliveries after close are dropped and counted", () => {
  const g = new CloseGate();
  const got: number[] = [];
  const h = g.guard((n: number) => got.push(n));
  h(1);
  assert.equal(g.close(), true);
  assert.equal(g.close(), false, "close runs its sequence once");
  h(2);
  h(3);
  assert.deepEqual(got, [1]);
  assert.equal(g.droppedAfterClose, 2);
  assert.equal(g.admit(), false);
  assert.equal(g.droppedAfterClose, 3);
});

Deno.test("close gate: a throwing or rejecting handler is caught and counted", async () => {
  const g = new CloseGate();
  const strays = await catchingStrays(() => {
    g.guard(() => {
      throw new Error("sync bug");
    })();
    g.guard(() => Promise.reject(new Error("async bug")))();
    g.call(async () => {
      await Promise.resolve();
      throw new Error("later bug");
    });
    background(Promise.reject(new Error("pump")), g);
  }, { settleMs: 10, uncaughtErrors: false });
  assert.equal(strays.length, 0);
  assert.equal(g.handlerErrors, 4);
  assert.equal((g.firstHandlerError as Error).message, "sync bug");
});

Deno.test("close gate: timers are cleared on close and never fire after it", async () => {
  const g = new CloseGate();
  let fired = 0;
  g.timer(() => fired++, 1);
  g.timer(() => fired++, 30);
  await new Promise((r) => setTimeout(r, 10));
  g.close();
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(fired, 1);
  assert.deepEqual(g.stats(), { droppedAfterClose: 0, handlerErrors: 0 });
});
