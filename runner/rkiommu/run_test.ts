/** The emulator module's insmod arguments: defaults, every parameter, and values out of range. */
import assert from "node:assert/strict";
import { UserInputError } from "../errors.ts";
import { emuInsmodArgs } from "./run.ts";

Deno.test("emuInsmodArgs: defaults are the module's; each parameter maps to its name", () => {
  assert.deepEqual(emuInsmodArgs(), []);
  assert.deepEqual(
    emuInsmodArgs({
      npages: 16,
      dtReachV1: 40,
      ptReachV1: 32,
      dteAddrV1: 1,
      unmapped: true,
      pageBusError: true,
    }),
    [
      "npages=16",
      "dt_reach_v1=40",
      "pt_reach_v1=32",
      "dte_addr_v1=1",
      "unmapped=1",
      "page_bus_error=1",
    ],
  );
});

Deno.test("emuInsmodArgs: out-of-range or non-integer values are refused before any upload", () => {
  for (
    const p of [
      { npages: 0 },
      { npages: 17 },
      { npages: 1.5 },
      { dtReachV1: 65 },
      {
        ptReachV1: 8,
      },
      { dteAddrV1: 3 as 1 },
      { npages: Number.NaN },
    ]
  ) {
    assert.throws(() => emuInsmodArgs(p), UserInputError, JSON.stringify(p));
  }
});
