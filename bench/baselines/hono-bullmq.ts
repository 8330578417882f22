/**
 * Baseline (b), the bare stack under Ricochet's submit: a Hono POST handler on
 * @hono/node-server that parses the JSON body, does one BullMQ `queue.add` and answers 202
 * JSON. No auth, no validation, no database: what Ricochet's submit costs on top of this is
 * its own work. Env: PORT, REDIS_URL, QUEUE_PREFIX. GET /readyz answers 200 once Redis is up.
 */
import { randomUUID } from "node:crypto";
import { serve } from "@hono/node-server";
import { Queue } from "bullmq";
import { Hono } from "hono";
import { Redis } from "ioredis";

const connection = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: null });
const queue = new Queue("jobs", { connection, prefix: process.env.QUEUE_PREFIX ?? "{bench}" });
await queue.waitUntilReady();

const app = new Hono();
app.get("/readyz", (c) => c.json({ status: "ready" }));
app.post("/api/v1/async", async (c) => {
  const body = await c.req.json<Record<string, unknown>>();
  // The same job options Ricochet gives a run job (its own id, bounded retention), so the
  // difference measured is Ricochet's work, not BullMQ settings.
  const id = randomUUID();
  await queue.add("run", body, { jobId: id, attempts: 8, backoff: { type: "exponential", delay: 1_000 }, removeOnComplete: { age: 86_400, count: 10_000 }, removeOnFail: { age: 604_800 } });
  return c.json({ asyncRequest: { id, status: "QUEUED" } }, 202);
});

serve({ fetch: app.fetch, port: Number(process.env.PORT), hostname: "127.0.0.1" });
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => void queue.close().finally(() => process.exit(0)));
}
