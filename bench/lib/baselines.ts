/** Starts the baseline programs of bench/baselines/, each in its own process, and collects their figures. */
import { join } from "node:path";
import { config } from "./config.js";
import { waitFor, waitReady } from "./http.js";
import { createDatabase, freePort, queuePrefix } from "./infra.js";
import { cpuMeter, infraGroups } from "./proc-stats.js";
import { log, spawnTs, tailOf, type Child } from "./procs.js";
import type { Receiver } from "./receiver-client.js";

const script = (name: string) => join(config.benchDir, "baselines", name);
const headers = { "content-type": "application/json" };

export type SubmitServer = { name: string; child: Child; submitUrl: string; headers: Record<string, string>; stop(): Promise<void> };

/** (b): Hono + BullMQ `queue.add`. */
export async function startHonoBullmq(): Promise<SubmitServer> {
  const queue = queuePrefix();
  const child = await spawnHonoBullmq(queue.prefix);
  return { ...child, stop: async () => (await child.child.stop(), await queue.release()) };
}

async function spawnHonoBullmq(prefix: string) {
  const port = await freePort();
  const child = spawnTs("baseline-b-hono-bullmq", script("hono-bullmq.ts"), [], { cwd: config.root, env: { ...process.env, PORT: String(port), REDIS_URL: config.redisUrl, QUEUE_PREFIX: prefix } });
  await waitReady(`http://127.0.0.1:${port}/readyz`, child);
  return { name: "(b) hono+bullmq", child, submitUrl: `http://127.0.0.1:${port}/api/v1/async`, headers };
}

/**
 * (b) + (c) live: the bare stack end to end. The (b) API's jobs are POSTed to the receiver by a
 * bare BullMQ worker (bullmq-drain.ts, MODE=serve) as they arrive, the body's `dateFinished` set
 * as the job runs: the stack's own submit → worker → callback, with no durable record.
 */
export async function startBareStack(receiver: Receiver): Promise<SubmitServer & { worker: Child }> {
  const queue = queuePrefix();
  const api = await spawnHonoBullmq(queue.prefix);
  const worker = spawnTs("baseline-bc-live-worker", script("bullmq-drain.ts"), [], {
    cwd: config.root,
    captureStdout: true,
    env: { ...process.env, MODE: "serve", REDIS_URL: config.redisUrl, QUEUE_PREFIX: queue.prefix, RECEIVER_URL: receiver.hookUrl, CONCURRENCY: String(config.workerConcurrency) },
  });
  const ready = await waitFor(async () => worker.stdout().includes("ready") || worker.process.exitCode !== null, Boolean, 60_000);
  if (!ready.met || worker.process.exitCode !== null) {
    await worker.stop();
    await api.child.stop();
    await queue.release();
    throw new Error(`bare BullMQ worker did not start: ${tailOf(worker.logFile)}`);
  }
  return { ...api, name: "(b)+(c) live", worker, stop: async () => (await worker.stop(), await api.child.stop(), await queue.release()) };
}

/** (d) submit: Hono + graphile-worker `addJob`, on a database of its own unless one is given. */
export async function startGraphileApi(databaseUrl?: string): Promise<SubmitServer & { databaseUrl: string }> {
  const database = databaseUrl ? undefined : await createDatabase("graphile_bench");
  const url = databaseUrl ?? database!.url;
  const port = await freePort();
  const child = spawnTs("peer-d-graphile-api", script("graphile-api.ts"), [], { cwd: config.root, env: { ...process.env, PORT: String(port), DATABASE_URL: url } });
  await waitReady(`http://127.0.0.1:${port}/readyz`, child);
  return { name: "(d) hono+graphile-worker", child, databaseUrl: url, submitUrl: `http://127.0.0.1:${port}/api/v1/async`, headers, stop: async () => (await child.stop(), await database?.drop()) };
}

/** (d) worker, MODE=serve: delivers what the graphile API enqueues until stopped. */
export async function startGraphileWorker(databaseUrl: string, receiver: Receiver): Promise<Child> {
  const child = spawnTs("peer-d-graphile-worker", script("graphile-worker.ts"), [], {
    cwd: config.root,
    captureStdout: true,
    env: { ...process.env, MODE: "serve", DATABASE_URL: databaseUrl, RECEIVER_URL: receiver.hookUrl, CONCURRENCY: String(config.workerConcurrency) },
  });
  const ready = await waitFor(async () => child.stdout().includes("ready") || child.process.exitCode !== null, Boolean, 60_000);
  if (!ready.met || child.process.exitCode !== null) throw new Error(`graphile worker did not start: ${tailOf(child.logFile)}`);
  return child;
}

export type DrainResult = { jobs: number; concurrency: number; completed: number; failed: number; seconds: number; perSecond: number; receiverGot: number; cpu: Record<string, number> };

async function drain(child: Child, receiver: Receiver): Promise<DrainResult> {
  // Measure CPU while it delivers, not while it enqueues.
  await waitFor(async () => child.stdout().includes("draining") || child.process.exitCode !== null, Boolean, 600_000, 20);
  const meter = cpuMeter({ worker: () => [child.pid], receiver: () => [receiver.child.pid], ...infraGroups });
  const code = await child.exited;
  const cpu = meter.stop();
  if (code !== 0) throw new Error(`${child.name} exited with ${code}: ${tailOf(child.logFile)}`);
  const result = JSON.parse(child.stdout().trim().split("\n").pop()!) as Omit<DrainResult, "cpu" | "receiverGot">;
  const receiverGot = (await receiver.stats()).okDistinct;
  log(`${child.name}: ${result.completed} jobs in ${result.seconds} s → ${result.perSecond}/s (receiver got ${receiverGot})`);
  return { ...result, receiverGot, cpu };
}

/** (c): addBulk N, then a bare BullMQ worker POSTs each to the receiver. */
export async function runBullmqDrain(receiver: Receiver, jobs: number): Promise<DrainResult> {
  const queue = queuePrefix();
  await receiver.mode("ok");
  await receiver.reset();
  const child = spawnTs("baseline-c-bullmq-drain", script("bullmq-drain.ts"), [], {
    cwd: config.root,
    captureStdout: true,
    env: { ...process.env, REDIS_URL: config.redisUrl, QUEUE_PREFIX: queue.prefix, RECEIVER_URL: receiver.hookUrl, JOBS: String(jobs), CONCURRENCY: String(config.workerConcurrency) },
  });
  try {
    return await drain(child, receiver);
  } finally {
    await queue.release();
  }
}

/** (d) drained like (c): addJobs N into a fresh database, then graphile-worker delivers them. */
export async function runGraphileDrain(receiver: Receiver, jobs: number): Promise<DrainResult> {
  const database = await createDatabase("graphile_bench");
  await receiver.mode("ok");
  await receiver.reset();
  const child = spawnTs("peer-d-graphile-drain", script("graphile-worker.ts"), [], {
    cwd: config.root,
    captureStdout: true,
    env: { ...process.env, MODE: "drain", DATABASE_URL: database.url, RECEIVER_URL: receiver.hookUrl, JOBS: String(jobs), CONCURRENCY: String(config.workerConcurrency) },
  });
  try {
    return await drain(child, receiver);
  } finally {
    await database.drop();
  }
}
