import { afterEach, describe, expect, it } from "vitest";
import { startPrivateSentinel } from "../helpers/redis-topologies.js";
import { cleanupStack, KNOBS } from "./harness.js";
import { finishScenario, setUpScenario, startServiceWithTraffic } from "./scenario.js";

describe("fault: a Redis Sentinel failover under load", () => {
  const cleanup = cleanupStack();
  afterEach(() => cleanup.run());

  it("7. the Sentinel-managed primary killed with SIGKILL, the replica promoted, repeated: the same API and worker follow the new primary, 503 + Retry-After only during the failover, nothing accepted lost", async () => {
    const startedAt = Date.now();
    // Replication is asynchronous: jobs written just before the kill may never reach the replica.
    // PostgreSQL is the record, so the sweeper finds such requests and callbacks and enqueues them again.
    const sentinel = await startPrivateSentinel({ downAfterMs: 1_000 });
    cleanup.add("stop the private Redis primary, replica and sentinels", () => sentinel.stop());
    const ctx = await setUpScenario(cleanup, {
      redisEnv: {
        REDIS_URL: "",
        REDIS_SENTINELS: sentinel.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(","),
        REDIS_SENTINEL_NAME: sentinel.name,
      },
    });
    const { cluster } = ctx;
    const { api, worker, traffic } = await startServiceWithTraffic(ctx, cleanup, { delayMs: 100 });
    await traffic.waitFor("60 accepted before the fault", () => traffic.accepted.size >= 60);

    const failovers: { killedAt: number; promotedAt: number; from: number; to: number }[] = [];
    for (let round = 0; round < KNOBS.sentinelFailovers; round++) {
      const killedAt = Date.now();
      const { oldPort, newPort } = await sentinel.killPrimaryAndWaitForFailover();
      const promotedAt = Date.now();
      failovers.push({ killedAt, promotedAt, from: oldPort, to: newPort });
      await traffic.waitFor("60 accepted after the failover", () => traffic.acceptedSince(promotedAt) >= 60);
      await sentinel.restartAsReplica(oldPort);
    }
    await traffic.stop();

    const refusals = traffic.refused();
    const outside = refusals.filter((r) => !failovers.some((f) => r.at >= f.killedAt && r.sentAt <= f.promotedAt + KNOBS.recoverySlackMs));
    const { counts } = await finishScenario({
      order: 7,
      scenario: `7. Redis Sentinel failover (primary kill -9) ×${KNOBS.sentinelFailovers}`,
      startedAt,
      ctx,
      traffic: [traffic],
      notes: () => [
        `${failovers.length} failovers, new primary elected ${failovers.map((f) => ((f.promotedAt - f.killedAt) / 1000).toFixed(1)).join("/")} s after each kill; ${refusals.length} submits answered 503`,
        `sweeper re-enqueued ${cluster.countInOutput("sweeper enqueued a request")} requests, ${cluster.countInOutput("sweeper enqueued a callback")} callbacks`,
      ],
    });
    expect(failovers.every((f) => f.from !== f.to)).toBe(true);
    expect(counts.extraRows, "a 503 leaves no row behind").toBe(0);
    expect([...new Set(refusals.map((r) => r.status))].filter((s) => s !== 503), "every refusal is a 503").toEqual([]);
    expect(traffic.errors(), "the API never dropped a connection").toEqual([]);
    expect(outside.map((r) => `${r.status} at ${new Date(r.at).toISOString()}`), "503 only during a failover").toEqual([]);
    expect(cluster.alive("api").map((t) => t.pid)).toEqual([api.child.pid]);
    expect(cluster.alive("worker").map((t) => t.pid)).toEqual([worker.child.pid]);
  });
});
