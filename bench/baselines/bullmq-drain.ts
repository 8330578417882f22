/**
 * Baseline (c), the bare stack under Ricochet's callback delivery: JOBS jobs are enqueued first
 * (addBulk), then a BullMQ Worker (concurrency CONCURRENCY) POSTs each one with undici `request`
 * to RECEIVER_URL; only a 200 counts. Prints one JSON line: jobs/s from the worker's start until
 * every job is done. Env: REDIS_URL, QUEUE_PREFIX, RECEIVER_URL, JOBS, CONCURRENCY.
 *
 * MODE=serve: enqueues nothing and POSTs, until stopped, every job baseline (b) adds to the queue
 * `jobs` under the same QUEUE_PREFIX, its body's `dateFinished` set as the job runs: the bare
 * stack's submit → worker → callback, for the finish → callback latency beside Ricochet's.
 */
import { randomUUID } from "node:crypto";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { Agent, request } from "undici";
import { callbackBody } from "./callback-body.js";

const jobs = Number(process.env.JOBS ?? 5_000);
const concurrency = Number(process.env.CONCURRENCY ?? 100);
const receiver = process.env.RECEIVER_URL!;
const prefix = process.env.QUEUE_PREFIX ?? "{bench}";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const serve = process.env.MODE === "serve";
const queueName = serve ? "jobs" : "callbacks";
const queue = new Queue(queueName, { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix });
for (let i = 0; !serve && i < jobs; i += 1_000) {
  const batch = Array.from({ length: Math.min(1_000, jobs - i) }, () => {
    const id = randomUUID();
    return { name: "deliver", data: { id }, opts: { jobId: id, removeOnComplete: { age: 86_400, count: 10_000 }, removeOnFail: { age: 604_800 } } };
  });
  await queue.addBulk(batch);
}

const agent = new Agent({ connections: concurrency, keepAliveTimeout: 60_000 });
let completed = 0;
let failed = 0;
let allDone = () => {};
const finished = new Promise<void>((resolve) => (allDone = resolve));
const check = () => completed + failed >= jobs && allDone();
if (!serve) console.log("draining");
const started = performance.now();
const worker = new Worker<{ id?: string }>(
  queueName,
  async (job) => {
    const id = job.data.id ?? job.id!;
    const response = await request(receiver, {
      method: "POST",
      headers: { "content-type": "application/json", "x-bench-id": id },
      body: callbackBody(id),
      dispatcher: agent,
    });
    await response.body.dump();
    if (response.statusCode !== 200) throw new Error(`receiver answered ${response.statusCode}`);
  },
  { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix, concurrency },
);
worker.on("completed", () => (completed++, check()));
worker.on("failed", () => (failed++, check()));
process.once("SIGTERM", () => void worker.close().finally(() => process.exit(0)));
if (serve) {
  await worker.waitUntilReady();
  console.log("ready");
  await new Promise<never>(() => {}); // until SIGTERM
}
await finished;
const seconds = (performance.now() - started) / 1000;
await worker.close(true);
console.log(JSON.stringify({ jobs, concurrency, completed, failed, seconds: Math.round(seconds * 100) / 100, perSecond: Math.round((completed / seconds) * 10) / 10 }));
await queue.close();
process.exit(0);
