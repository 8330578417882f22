/**
 * The whole loop on the Redis deployments teams run: a three-master Cluster reached through a node
 * that does not own the queue prefix's slot, a Sentinel-managed primary, and TLS with a private
 * CA. Each starts its own redis-server processes (test/helpers/redis-topologies.ts).
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReceiver, type Receiver } from "./helpers/receiver.js";
import { uniquePrefix } from "./helpers/redis.js";
import { startPrivateCluster, startPrivateSentinel, startPrivateTlsRedis, type PrivateCluster } from "./helpers/redis-topologies.js";
import { startTestRuntime, startupError, submit, waitForCallback, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

type SseEvent = { event: string; data: { asyncRequest?: { status: string } } };

async function readEvents(response: Response): Promise<SseEvent[]> {
  const text = await response.text();
  return text
    .split("\n\n")
    .map((block) => Object.fromEntries(block.split("\n").filter((l) => l && !l.startsWith(":")).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trimStart()])))
    .filter((fields) => fields.event)
    .map((fields) => ({ event: fields.event, data: JSON.parse(fields.data ?? "null") }) as SseEvent);
}

/** Submit, poll, long-poll, list, SSE, cancel, a callback that needs retries, a redelivery. */
async function exerciseTheLoop(rt: TestRuntime, receiver: Receiver, hookPath: string) {
  // A callback answered 503 twice, then 200: three attempts, spaced by CALLBACK_RETRY_DELAYS.
  receiver.on(hookPath, (_req, res, count) => res.writeHead(count < 3 ? 503 : 200).end());
  const withCallback = await submit(rt, { action: "echo", input: { data: { hello: "world" }, delayMs: 100, steps: 2 }, callbackUrl: receiver.url(hookPath) });
  expect(withCallback.status).toBe("QUEUED");
  const events = readEvents(await rt.request(`/api/v1/async/${withCallback.id}/events`));
  const done = await waitForStatus(rt, withCallback.id, "COMPLETED");
  expect(done.progress).toBe(100);
  expect((await events).at(-1)?.data.asyncRequest?.status).toBe("COMPLETED");
  const delivered = await waitForCallback(rt, rt, withCallback.id, "DELIVERED");
  expect(delivered.callback.attempts).toBe(3);
  const arrivals = receiver.requestsTo(hookPath).map((r) => r.at);
  expect(arrivals).toHaveLength(3);
  expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(50);
  expect(arrivals[2]! - arrivals[1]!).toBeGreaterThanOrEqual(100);

  const redeliver = await rt.request(`/api/v1/async/${withCallback.id}/callback/redeliver`, { method: "POST" });
  expect(redeliver.status).toBe(202);
  await receiver.waitFor(hookPath, 4);
  await waitForCallback(rt, rt, withCallback.id, "DELIVERED");

  // Cancel a RUNNING request: the cancellation reaches the worker over pub/sub.
  const slow = await submit(rt, { action: "echo", input: { delayMs: 60_000 } });
  await waitForStatus(rt, slow.id, "RUNNING");
  expect((await rt.request(`/api/v1/async/${slow.id}`, { method: "DELETE" })).status).toBe(200);
  await waitForStatus(rt, slow.id, "CANCELLED");

  const list = (await (await rt.request("/api/v1/async?limit=10")).json()) as { asyncRequests: { id: string; status: string }[] };
  expect(new Set(list.asyncRequests.map((r) => r.id))).toEqual(new Set([withCallback.id, slow.id]));
}

describe("Redis Cluster (three masters)", { timeout: 90_000 }, () => {
  let cluster: PrivateCluster;
  let rt: TestRuntime;
  let receiver: Receiver;
  const prefix = uniquePrefix();
  let seedPort: number;

  beforeAll(async () => {
    cluster = await startPrivateCluster();
    receiver = await startReceiver();
    const owner = await cluster.ownerOf(prefix);
    // The service is given only a node that does not own the prefix's slot: every queue command
    // must be routed (MOVED) to the owner, which a single-node connection cannot do.
    seedPort = cluster.ports.find((port) => port !== owner)!;
    rt = await startTestRuntime({
      env: {
        REDIS_URL: "",
        REDIS_CLUSTER_NODES: `127.0.0.1:${seedPort}`,
        QUEUE_PREFIX: prefix,
        OUTBOUND_ALLOW: "127.0.0.1/32",
        CALLBACK_RETRY_DELAYS: "50ms,100ms",
        SWEEPER_INTERVAL: "200ms",
        LOG_LEVEL: "debug",
      },
    });
  });
  afterAll(async () => {
    await rt?.stop();
    await receiver?.close();
    await cluster?.stop();
  });

  it("runs submit, poll, long-poll, list, SSE, cancel, callback retries and redelivery through a node that does not own the prefix's slot", async () => {
    expect(await cluster.ownerOf(prefix)).not.toBe(seedPort);
    await exerciseTheLoop(rt, receiver, "/hooks/cluster");
    // A wrong client secret is counted by the credential throttle, in the cluster.
    const wrong = await rt.rawRequest("/oauth/token", {
      method: "POST",
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: rt.client.clientId, client_secret: "wrong-secret-0123456789" }),
    });
    expect(wrong.status).toBe(401);
    expect((await rt.rawRequest("/readyz")).status).toBe(200);

    // Every key the service wrote is in the prefix's slot, so on its owner and nowhere else:
    // queues, the sweeper's lock, the credential throttle's counters.
    const keysOn = async (port: number) => {
      const node = new Redis({ port, host: "127.0.0.1" });
      try {
        return (await node.keys(`${prefix}*`)) as string[];
      } finally {
        node.disconnect();
      }
    };
    const owner = await cluster.ownerOf(prefix);
    const ownerKeys = await keysOn(owner);
    expect(ownerKeys.some((k) => k.startsWith(`${prefix}:jobs:`))).toBe(true);
    expect(ownerKeys.some((k) => k.startsWith(`${prefix}:callbacks:`))).toBe(true);
    expect(ownerKeys).toContain(`${prefix}:oauth-failures-client:${rt.client.clientId}`);
    for (const port of cluster.ports.filter((p) => p !== owner)) expect(await keysOn(port)).toEqual([]);
  });

  it("sweeps on the cluster: the sweeper's lock (a script on one key) and its look-ups work there", async () => {
    const swept = () => rt.logs.lines.some((line) => line.includes('"msg":"sweep"'));
    const deadline = Date.now() + 10_000;
    while (!swept() && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
    expect(swept()).toBe(true);
    expect(rt.logs.text).not.toContain("sweep failed");
  });

  it("refuses to start when REDIS_URL names a cluster node, and says what to set instead", async () => {
    expect(await startupError({ REDIS_URL: `redis://127.0.0.1:${cluster.ports[0]}` })).toMatch(/REDIS_URL points at a Redis Cluster node.*REDIS_CLUSTER_NODES/);
  });
});

/** The loop against a runtime whose Redis settings are `redisEnv`; everything it started goes after. */
async function loopOn(redisEnv: Record<string, string>, hookPath: string): Promise<void> {
  const receiver = await startReceiver();
  let rt: TestRuntime | undefined;
  try {
    rt = await startTestRuntime({ env: { ...redisEnv, OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: "50ms,100ms" } });
    await exerciseTheLoop(rt, receiver, hookPath);
  } finally {
    await rt?.stop();
    await receiver.close();
  }
}

describe("Redis Cluster over TLS", { timeout: 90_000 }, () => {
  it("runs the loop on a TLS-only cluster with REDIS_TLS=true and REDIS_TLS_CA", async () => {
    const cluster = await startPrivateCluster({ tls: true });
    try {
      await loopOn({ REDIS_URL: "", REDIS_CLUSTER_NODES: `127.0.0.1:${cluster.ports[0]}`, REDIS_TLS: "true", REDIS_TLS_CA: cluster.caFile! }, "/hooks/cluster-tls");
    } finally {
      await cluster.stop();
    }
  });
});

describe("Redis Sentinel (primary + replica, three sentinels)", { timeout: 90_000 }, () => {
  it("runs the loop against the primary the sentinels name", async () => {
    const sentinel = await startPrivateSentinel();
    try {
      await loopOn({ REDIS_URL: "", REDIS_SENTINELS: sentinel.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(","), REDIS_SENTINEL_NAME: sentinel.name }, "/hooks/sentinel");
    } finally {
      await sentinel.stop();
    }
  });
});

describe("Redis Sentinel with passwords (data nodes and sentinels)", { timeout: 90_000 }, () => {
  it("runs the loop with REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD, and does not start with a wrong one", async () => {
    const sentinel = await startPrivateSentinel({ password: "data-node-pw", sentinelPassword: "sentinel-pw" });
    const env = {
      REDIS_URL: "",
      REDIS_SENTINELS: sentinel.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(","),
      REDIS_SENTINEL_NAME: sentinel.name,
      REDIS_SENTINEL_PASSWORD: "sentinel-pw",
    };
    try {
      await loopOn({ ...env, REDIS_PASSWORD: "data-node-pw" }, "/hooks/sentinel-auth");
      expect(await startupError({ ...env, REDIS_PASSWORD: "wrong-password" })).toMatch(/^Redis \(sentinel ricochet-test via /);
    } finally {
      await sentinel.stop();
    }
  });
});

describe("Redis over TLS (rediss://, private CA)", { timeout: 60_000 }, () => {
  it("runs the loop when REDIS_TLS_CA names the CA, and fails to start, saying why, when it does not", async () => {
    const tls = await startPrivateTlsRedis();
    try {
      await loopOn({ REDIS_URL: tls.url, REDIS_TLS_CA: tls.caFile }, "/hooks/tls");
      // The server's certificate is signed by a CA the system does not trust: without
      // REDIS_TLS_CA the connection is refused, never silently unverified.
      expect(await startupError({ REDIS_URL: tls.url })).toMatch(/^Redis \(rediss:\/\/127\.0\.0\.1:\d+\)/);
    } finally {
      await tls.stop();
    }
  });
});
