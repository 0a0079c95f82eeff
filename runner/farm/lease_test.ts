import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Lease, LeaseDir, LeaseHeldError, LeaseKeeper, processStart } from "./lease.ts";

const LEASE_TS = fileURLToPath(new URL("./lease.ts", import.meta.url));

/** A runner process that tries to take `target` and holds it for `holdMs`, then exits. */
function racer(dir: string, target: string, holdMs: number): Deno.ChildProcess {
  const code = `
    import { LeaseDir } from ${JSON.stringify(LEASE_TS)};
    const d = new LeaseDir(${JSON.stringify(dir)});
    try {
      const { lease } = await d.take(${JSON.stringify(target)}, { ttlS: 60 });
      console.log("took " + lease.pid);
      await new Promise((r) => setTimeout(r, ${holdMs}));
      await d.release(lease);
    } catch (e) {
      console.log("held " + e.constructor.name);
    }`;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-prompt", "-q", code],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

Deno.test("eight runner processes race for one target: exactly one holds it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-lease-" });
  try {
    const kids = Array.from({ length: 8 }, () => racer(dir, "rock-1", 1500));
    const outs = await Promise.all(
      kids.map(async (k) => new TextDecoder().decode((await k.output()).stdout).trim()),
    );
    assert.equal(outs.filter((o) => o.startsWith("took")).length, 1, outs.join("; "));
    assert.equal(outs.filter((o) => o === "held LeaseHeldError").length, 7, outs.join("; "));
    assert.equal(await new LeaseDir(dir).read("rock-1"), undefined, "released at the end");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a SIGKILLed holder's lease is taken back at once on its host; an expired one too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-lease-" });
  const d = new LeaseDir(dir);
  try {
    const kid = racer(dir, "rock-1", 60_000);
    const reader = kid.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const first = await reader.read();
    assert.match(first.value ?? "", /^took \d+/);
    await assert.rejects(d.take("rock-1", { ttlS: 60 }), LeaseHeldError);
    kid.kill("SIGKILL");
    await kid.status;
    reader.releaseLock();
    await kid.stdout.cancel().catch(() => {});
    const { lease, recovered } = await d.take("rock-1", { ttlS: 60 });
    assert.match(recovered ?? "", /^\S+@\S+ \(pid \d+\): its holder \(pid \d+\) is gone$/);
    assert.equal(lease.pid, Deno.pid);
    assert.equal(lease.pidStart, processStart(Deno.pid));

    // A lease of another host is trusted until it expires: then it is taken back.
    const foreign: Lease = {
      ...lease,
      host: "lab-b",
      owner: "ci@lab-b",
      pid: 1,
      token: "x",
      expires: new Date(Date.now() + 60_000).toISOString(),
    };
    await Deno.writeTextFile(d.path("rock-2"), JSON.stringify(foreign));
    await assert.rejects(d.take("rock-2", { ttlS: 60 }), /leased by ci@lab-b \(pid 1\)/);
    await Deno.writeTextFile(
      d.path("rock-2"),
      JSON.stringify({ ...foreign, expires: new Date(Date.now() - 1000).toISOString() }),
    );
    const back = await d.take("rock-2", { ttlS: 60 });
    assert.match(back.recovered ?? "", /^ci@lab-b \(pid 1\): expired at /);

    // A damaged file (torn by hand) is taken back too, never fatal.
    await Deno.writeTextFile(d.path("rock-3"), '{"target": "rock-3", "own');
    assert.equal((await d.take("rock-3", { ttlS: 60 })).recovered, "a damaged lease file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renewal extends the lease; release --force makes the holder's renewal find it lost", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-lease-" });
  const d = new LeaseDir(dir);
  try {
    const { lease } = await d.take("qemu-1", { ttlS: 10 });
    await new Promise((r) => setTimeout(r, 20));
    const renewed = await d.renew(lease, 10);
    assert.ok(renewed && Date.parse(renewed.expires) > Date.parse(lease.expires));
    assert.equal(renewed.start, lease.start);

    await assert.rejects(d.free("qemu-1"), LeaseHeldError, "a live holder needs --force");
    const keeper = new LeaseKeeper(d, renewed, 3); // renews every second
    const freed = await d.free("qemu-1", true);
    assert.ok(freed && freed !== "damaged" && freed.token === lease.token);
    await new Promise((r) => setTimeout(r, 1300));
    assert.match(keeper.lost ?? "", /lease of qemu-1 lost/);
    await keeper.stop();

    const list = await d.list();
    assert.deepEqual(list, []);
    const again = await d.take("qemu-1", { ttlS: 10 });
    assert.deepEqual((await d.list()).map((l) => l.target), ["qemu-1"]);
    await d.release(again.lease);
    assert.throws(() => d.path("../etc/passwd"), /not a target id/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
