import { afterEach, describe, expect, it } from "vitest";
import { cleanupStack, describeMap, KNOBS } from "./harness.js";
import { startHoldingProxy, until } from "./infra.js";
import { finishScenario, setUpScenario } from "./scenario.js";
import { startTraffic } from "./traffic.js";

describe("fault: the API killed with SIGKILL under load", () => {
  const cleanup = cleanupStack();
  afterEach(() => cleanup.run());

  it("4. API kill -9 under load, a new API on the same port: every accepted request completes; rows written without a 202 finish too", async () => {
    const startedAt = Date.now();
    const ctx = await setUpScenario(cleanup);
    const { cluster, receiver, pool } = ctx;
    // The API reaches Redis through a proxy that can hold its commands (the worker goes direct).
    const redisUrl = new URL(ctx.redisUrl);
    const proxy = await startHoldingProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    cleanup.add("close the Redis proxy", () => proxy.close());
    const apiEnv = { REDIS_URL: proxy.url };
    let api = await cluster.spawn("api", apiEnv);
    const worker = await cluster.spawn("worker");
    const client = await cluster.createClient();
    receiver.useSecret(client.webhookSecret);

    const rate = Math.round(KNOBS.rate * 1.6); // more submits in flight when the API dies
    const traffic = startTraffic({
      url: () => cluster.apiUrl,
      token: client.token,
      ratePerSecond: rate,
      body: (n) => ({ action: "echo", input: { data: n, delayMs: 50 }, callbackUrl: receiver.url() }),
    });
    cleanup.add("stop the traffic", () => traffic.stop());

    const kills: { killedAt: number; upAt: number }[] = [];
    let writtenAtHeldKill = 0;
    for (let kill = 0; kill < KNOBS.apiKills; kill++) {
      const since = Date.now();
      await traffic.waitFor("60 accepted since the API started", () => traffic.acceptedSince(since) >= 60);
      const killedAt = Date.now();
      expect((await cluster.kill(api, "SIGKILL")).signal).toBe("SIGKILL");
      api = await cluster.spawn("api", apiEnv);
      kills.push({ killedAt, upAt: Date.now() });
    }

    // The crash between the database write and the enqueue, made certain: hold the API's Redis
    // link so a batch's rows are committed while its enqueue hangs, then kill the API there.
    // Those rows were never acknowledged (no 202) and have no job: only the sweeper can run them.
    {
      const since = Date.now();
      await traffic.waitFor("60 accepted since the API started", () => traffic.acceptedSince(since) >= 60);
      const heldAt = Date.now();
      proxy.hold();
      const stuck = async () => {
        const { rows } = await pool.query<{ id: string }>("SELECT id FROM async_requests WHERE created_at >= $1", [new Date(heldAt - 2_000)]);
        return rows.filter((row) => !traffic.accepted.has(row.id)).length;
      };
      await until("rows written whose enqueue hangs", async () => (await stuck()) >= 2, 20_000);
      expect((await cluster.kill(api, "SIGKILL")).signal).toBe("SIGKILL");
      proxy.drop();
      writtenAtHeldKill = await stuck();
      api = await cluster.spawn("api", apiEnv);
      kills.push({ killedAt: heldAt, upAt: Date.now() }); // submits hang from the hold on
    }
    const since = Date.now();
    await traffic.waitFor("60 accepted after the last restart", () => traffic.acceptedSince(since) >= 60);
    await traffic.stop();

    // Without an API, submits fail in transport (refused connections, a connection cut mid-request);
    // a 503 is allowed only around a kill (a batch the dying process could not finish).
    const failures = [...traffic.errors(), ...traffic.refused()];
    const outside = failures.filter((f) => !kills.some((k) => f.at >= k.killedAt && f.sentAt <= k.upAt + KNOBS.recoverySlackMs));
    const { counts } = await finishScenario({
      order: 4,
      scenario: `4. API kill -9 under load ×${KNOBS.apiKills + 1} (the last between INSERT and enqueue)`,
      startedAt,
      ctx,
      traffic: [traffic],
      notes: () => [
        `${rate}/s; API down ${kills.map((k) => ((k.upAt - k.killedAt) / 1000).toFixed(1)).join("/")} s (respawn); the last kill held between INSERT and enqueue with ${writtenAtHeldKill} rows written`,
        `sweeper re-enqueued ${cluster.countInOutput("sweeper enqueued a request")} requests`,
      ],
    });
    expect(failures.length, "the kills landed under load").toBeGreaterThan(0);
    expect(outside.map((f) => (f.kind === "error" ? f.message : `${f.status}`)), "submits fail only around a kill").toEqual([]);
    expect(describeMap(new Map(traffic.refused().map((r) => [String(r.status), 0]))), "the only refusals are 503s").toMatch(/^(503×0)?$/);
    // The rows written but never enqueued were found and run by the sweeper.
    expect(counts.extraRows).toBeGreaterThanOrEqual(writtenAtHeldKill);
    expect(writtenAtHeldKill).toBeGreaterThanOrEqual(2);
    expect(cluster.countInOutput("sweeper enqueued a request with no live job", "worker")).toBeGreaterThanOrEqual(writtenAtHeldKill);
    // The worker served throughout.
    expect(cluster.alive("worker").map((t) => t.pid)).toEqual([worker.child.pid]);
  });
});
