/**
 * Peer (d), worker side: graphile-worker running a `deliver` task that POSTs a callback-shaped
 * body with undici `request` to RECEIVER_URL (only a 200 counts). Configured as its performance
 * guide suggests for many short jobs: a local queue (jobs fetched and locked in batches) and
 * batched completions.
 *   MODE=drain  add JOBS jobs first (addJobs), then run until all are done; prints one JSON line
 *               with jobs/s from the runner's start (like baseline (c)).
 *   MODE=serve  run until SIGTERM, delivering what graphile-api.ts enqueues; prints "ready".
 * Env: DATABASE_URL, RECEIVER_URL, CONCURRENCY, JOBS, MODE.
 */
import { Logger, makeWorkerUtils, run, type Task } from "graphile-worker";
import { Agent, request } from "undici";
import { callbackBody } from "./callback-body.js";

const connectionString = process.env.DATABASE_URL;
const receiver = process.env.RECEIVER_URL!;
const concurrency = Number(process.env.CONCURRENCY ?? 100);
const jobs = Number(process.env.JOBS ?? 5_000);
const mode = process.env.MODE ?? "serve";

// Warnings and errors only: its default logs a line per job, which would cost it CPU here.
const logger = new Logger((scope) => (level, message) => {
  if (level === "error" || level === "warning") console.error(level, scope.label ?? "", message);
});
const agent = new Agent({ connections: concurrency, keepAliveTimeout: 60_000 });
const deliver: Task = async (_payload, helpers) => {
  const id = String(helpers.job.id);
  const response = await request(receiver, {
    method: "POST",
    headers: { "content-type": "application/json", "x-bench-id": id },
    body: callbackBody(id),
    dispatcher: agent,
  });
  await response.body.dump();
  if (response.statusCode !== 200) throw new Error(`receiver answered ${response.statusCode}`);
};

const utils = await makeWorkerUtils({ connectionString, logger });
await utils.migrate();
if (mode === "drain") {
  for (let i = 0; i < jobs; i += 1_000) {
    await utils.addJobs(Array.from({ length: Math.min(1_000, jobs - i) }, () => ({ identifier: "deliver", payload: {}, maxAttempts: 11 })));
  }
}
await utils.release();

if (mode === "drain") console.log("draining");
const started = performance.now();
const runner = await run({
  connectionString,
  concurrency,
  maxPoolSize: 20,
  noHandleSignals: true,
  taskList: { deliver },
  preset: { worker: { localQueue: { size: 2 * concurrency }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  logger,
});
process.once("SIGTERM", () => void runner.stop().finally(() => process.exit(0)));

if (mode === "serve") {
  console.log("ready");
} else {
  let completed = 0;
  let failed = 0;
  await new Promise<void>((resolve) => {
    runner.events.on("job:success", () => ++completed + failed >= jobs && resolve());
    runner.events.on("job:failed", () => completed + ++failed >= jobs && resolve());
  });
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ jobs, concurrency, completed, failed, seconds: Math.round(seconds * 100) / 100, perSecond: Math.round((completed / seconds) * 10) / 10 }));
  await runner.stop();
  process.exit(0);
}
