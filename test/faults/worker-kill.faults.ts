import { afterEach, describe, expect, it } from "vitest";
import { cleanupStack, KNOBS } from "./harness.js";
import { until } from "./infra.js";
import { finishScenario, runningSince, setUpScenario, startServiceWithTraffic } from "./scenario.js";

describe("fault: a worker killed with SIGKILL under load", () => {
  const cleanup = cleanupStack();
  afterEach(() => cleanup.run());

  it("1. worker kill -9 mid-action, repeated, a new worker after each kill: nothing accepted is lost", async () => {
    const startedAt = Date.now();
    const ctx = await setUpScenario(cleanup);
    const { cluster, pool } = ctx;
    const started = await startServiceWithTraffic(ctx, cleanup, { delayMs: 500 });
    const { traffic } = started;
    let { worker } = started;

    const runningAtKill: number[] = [];
    for (let kill = 0; kill < KNOBS.kills; kill++) {
      const since = Date.now();
      await traffic.waitFor("40 accepted since the worker started", () => traffic.acceptedSince(since) >= 40);
      // Kill only when this worker is in the middle of actions (claimed RUNNING since it started).
      let running = 0;
      await until("this worker runs at least 3 actions", async () => (running = await runningSince(pool, since)) >= 3);
      runningAtKill.push(running);
      expect((await cluster.kill(worker, "SIGKILL")).signal).toBe("SIGKILL");
      worker = await cluster.spawn("worker");
    }
    const since = Date.now();
    await traffic.waitFor("40 accepted after the last restart", () => traffic.acceptedSince(since) >= 40);
    await traffic.stop();

    const { counts } = await finishScenario({
      order: 1,
      scenario: `1. worker kill -9 mid-action ×${KNOBS.kills}`,
      startedAt,
      ctx,
      traffic: [traffic],
      notes: () => [`RUNNING at each kill: ${runningAtKill.join("/")}`, `${KNOBS.rate}/s echo delayMs 500`],
    });
    // The kills landed mid-action: those requests ran again on the next worker.
    expect(counts.reruns).toBeGreaterThanOrEqual(KNOBS.kills);
  });

  it("2. worker kill -9 mid-delivery (receiver holds each answer 300 ms), repeated: nothing accepted is lost", async () => {
    const startedAt = Date.now();
    const ctx = await setUpScenario(cleanup, { holdMs: 300 });
    const { cluster, receiver } = ctx;
    const started = await startServiceWithTraffic(ctx, cleanup);
    const { traffic } = started;
    let { worker } = started;

    const holdingAtKill: number[] = [];
    for (let kill = 0; kill < KNOBS.kills; kill++) {
      const since = Date.now();
      await traffic.waitFor("40 accepted since the worker started", () => traffic.acceptedSince(since) >= 40);
      // Kill only while the receiver holds POSTs of this worker (the previous one's are cut already).
      await until("the receiver holds at least 3 POSTs", () => receiver.holding >= 3, 30_000, 10);
      holdingAtKill.push(receiver.holding);
      expect((await cluster.kill(worker, "SIGKILL")).signal).toBe("SIGKILL");
      worker = await cluster.spawn("worker");
    }
    const since = Date.now();
    await traffic.waitFor("40 accepted after the last restart", () => traffic.acceptedSince(since) >= 40);
    await traffic.stop();

    await finishScenario({
      order: 2,
      scenario: `2. worker kill -9 mid-delivery ×${KNOBS.kills}`,
      startedAt,
      ctx,
      traffic: [traffic],
      notes: () => [`POSTs held at each kill: ${holdingAtKill.join("/")}, cut mid-POST: ${receiver.cut}`, `${KNOBS.rate}/s echo, receiver holds 300 ms`],
    });
    // The kills landed mid-POST: the receiver saw senders vanish before it answered.
    expect(receiver.cut).toBeGreaterThanOrEqual(KNOBS.kills);
  });
});
