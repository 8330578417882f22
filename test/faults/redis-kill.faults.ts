import { afterEach, describe, expect, it } from "vitest";
import { cleanupStack, describeMap, KNOBS } from "./harness.js";
import { startPersistentRedis, until } from "./infra.js";
import { finishScenario, setUpScenario, startServiceWithTraffic } from "./scenario.js";

describe("fault: Redis killed with SIGKILL under load and restarted", () => {
  const cleanup = cleanupStack();
  afterEach(() => cleanup.run());

  it("3. Redis (AOF, fsync every second) kill -9 and restart on the same port: 503 + Retry-After while it is down, nothing accepted lost", async () => {
    const startedAt = Date.now();
    const redis = await startPersistentRedis();
    cleanup.add("stop the private Redis and remove its directory", () => redis.destroy());
    const ctx = await setUpScenario(cleanup, { redisUrl: redis.url });
    const { cluster } = ctx;
    const { api, worker, traffic } = await startServiceWithTraffic(ctx, cleanup, { delayMs: 100 });
    await traffic.waitFor("60 accepted before the fault", () => traffic.accepted.size >= 60);

    const outages: { killedAt: number; upAt: number }[] = [];
    for (let round = 0; round < KNOBS.redisKills; round++) {
      const killedAt = Date.now();
      await redis.kill();
      // Down for the configured time; submits meanwhile must be refused (observed, not assumed).
      await traffic.waitFor("submits refused while Redis is down", () => traffic.refusedSince(killedAt) >= 5);
      await until("the outage has lasted its time", () => Date.now() - killedAt >= KNOBS.redisDownMs, KNOBS.redisDownMs + 1_000);
      await redis.start();
      const upAt = Date.now();
      outages.push({ killedAt, upAt });
      await traffic.waitFor("60 accepted after Redis came back", () => traffic.acceptedSince(upAt) >= 60);
    }
    await traffic.stop();

    // 503 only while Redis was away (or while the connections came back), always with Retry-After.
    const refusals = traffic.refused();
    const outside = refusals.filter((r) => !outages.some((o) => r.at >= o.killedAt && r.sentAt <= o.upAt + KNOBS.recoverySlackMs));
    // Per outage: how long after the restart its last 503 was answered (refusals up to the next kill).
    const lastAfter = outages.map((o, i) =>
      Math.max(0, ...refusals.filter((r) => r.at >= o.killedAt && r.at < (outages[i + 1]?.killedAt ?? Infinity)).map((r) => r.at - o.upAt)),
    );
    const { counts } = await finishScenario({
      order: 3,
      scenario: `3. Redis kill -9 + restart (AOF everysec) ×${KNOBS.redisKills}`,
      startedAt,
      ctx,
      traffic: [traffic],
      notes: () => [
        `${outages.length} kills, down ${outages.map((o) => ((o.upAt - o.killedAt) / 1000).toFixed(1)).join("/")} s; last 503 ${lastAfter.map((ms) => (ms / 1000).toFixed(1)).join("/")} s after each restart`,
        `sweeper re-enqueued ${cluster.countInOutput("sweeper enqueued a request")} requests, ${cluster.countInOutput("sweeper enqueued a callback")} callbacks`,
      ],
    });
    expect(refusals.length).toBeGreaterThan(0);
    // A refused submit leaves nothing: its batch's rows were taken back when the enqueue failed.
    expect(counts.extraRows, "a 503 leaves no row behind").toBe(0);
    expect(describeMap(new Map(refusals.map((r) => [String(r.status), 0]))), "every refusal is a 503").toBe("503×0");
    expect(traffic.errors(), "the API never dropped a connection").toEqual([]);
    expect(outside.map((r) => `${r.status} at ${new Date(r.at).toISOString()}`), "503 only while Redis is away or coming back").toEqual([]);
    // The same processes served throughout.
    expect(cluster.alive("api").map((t) => t.pid)).toEqual([api.child.pid]);
    expect(cluster.alive("worker").map((t) => t.pid)).toEqual([worker.child.pid]);
  });
});
