/**
 * 6. Redis bytes per pending callback: a private redis-server (nothing else in it), a receiver
 *    that always fails and a 1 h retry delay; BENCH_PENDING submits with a callback, then wait
 *    until every callback waits for its retry (delayed in the `callbacks` queue). used_memory
 *    after minus before, divided by the number pending: everything Redis keeps for them,
 *    including what the finished `jobs` entries still hold. The per-key breakdown says where.
 */
import { config } from "../lib/config.js";
import { waitFor } from "../lib/http.js";
import { memoryByKeyGroup, startPrivateRedis, usedMemory } from "../lib/infra.js";
import { submitAll } from "../lib/load.js";
import { log, sleep } from "../lib/procs.js";
import type { Receiver } from "../lib/receiver-client.js";
import { startRicochet, submitBody } from "../lib/ricochet.js";
import { round } from "../lib/stats.js";

type Counts = Record<string, number>;

export async function redisBytesPerPending(receiver: Receiver) {
  const redis = await startPrivateRedis();
  try {
    const stack = await startRicochet("redis-memory", { topology: config.e2eMode, redisUrl: redis.url, env: { CALLBACK_RETRY_DELAYS: "1h" } });
    try {
      await receiver.reset();
      await receiver.mode("fail", { failAttempts: 99 });
      await sleep(1_000);
      const before = await usedMemory(redis.redis);
      const submit = await submitAll({ url: stack.submitUrl, headers: stack.authHeaders, body: submitBody(receiver.hookUrl) }, config.pending);
      const queues = () => stack.admin<{ jobs: Counts; callbacks: Counts }>("GET", "/admin/v1/queues");
      const settled = (q: { jobs: Counts; callbacks: Counts }) =>
        (q.callbacks.delayed ?? 0) >= submit.ok && !q.jobs.waiting && !q.jobs.active && !q.callbacks.waiting && !q.callbacks.active;
      const { value: counts, met } = await waitFor(queues, settled, config.maxWait * 1000, 500);
      await sleep(1_000);
      const after = await usedMemory(redis.redis);
      const pending = counts.callbacks.delayed ?? 0;
      const byKey = await memoryByKeyGroup(redis.redis);
      const result = {
        submitted: submit.ok,
        pending,
        complete: met && submit.complete,
        usedMemoryBefore: before,
        usedMemoryAfter: after,
        bytesPerPending: pending ? Math.round((after - before) / pending) : NaN,
        queues: counts,
        /** MEMORY USAGE summed per key kind, bytes per pending callback. */
        byKeyPerPending: Object.fromEntries(
          Object.entries(byKey)
            .sort(([, a], [, b]) => b.bytes - a.bytes)
            .map(([group, { keys, bytes }]) => [group, { keys, bytesPerPending: pending ? round(bytes / pending) : NaN }]),
        ),
      };
      log(`redis: ${result.bytesPerPending} bytes per pending callback (${pending} pending, used_memory ${before} → ${after})${met ? "" : " (INCOMPLETE)"}`);
      return result;
    } finally {
      await stack.stop();
    }
  } finally {
    await redis.stop();
  }
}
