import { Worker } from "bullmq";
import type { RedisConnection } from "../infra/redis.js";
import type { CallbackSchedule } from "../core/callback-schedule.js";
import type { PubSub } from "../infra/pubsub.js";
import { KEEP_FINISHED_JOBS } from "../infra/queues.js";
import type { DeliverCallbackJob } from "../shared/callbacks.js";
import { QUEUE_NAMES, type RunActionJob } from "../shared/queues.js";
import type { CallbackDelivery } from "./deliver-callback.js";
import { createRunAction, CancelledByClient, WorkerShutdown, type RunActionDeps } from "./run-action.js";
import { createSweeper, type SweeperDeps } from "./sweeper.js";

export type WorkerDeps = RunActionDeps &
  Omit<SweeperDeps, "intervalMs" | "graceMs"> & {
    delivery: CallbackDelivery;
    schedule: CallbackSchedule;
    callbackConcurrency: number;
    events: PubSub;
    /** A connection BullMQ may block on; it duplicates it as needed. */
    workerRedis: RedisConnection;
    concurrency: number;
    lockDurationMs: number;
    sweeperIntervalMs: number;
    sweeperGraceMs: number;
    shutdownTimeoutMs: number;
  };

/** Starts the `jobs` worker, its cancellation listener and the sweeper. */
export async function startWorkers(deps: WorkerDeps) {
  const running = new Map<string, AbortController>();
  const stopListening = deps.events.onCancel((id) => running.get(id)?.abort(new CancelledByClient(`request ${id} cancelled`)));

  const worker = new Worker<RunActionJob>(QUEUE_NAMES.jobs, createRunAction(deps, running), {
    connection: deps.workerRedis,
    prefix: deps.prefix,
    concurrency: deps.concurrency,
    lockDuration: deps.lockDurationMs,
    stalledInterval: Math.max(500, Math.floor(deps.lockDurationMs / 2)),
    maxStalledCount: 3,
    autorun: false,
    ...KEEP_FINISHED_JOBS,
  });
  worker.on("error", (error) => deps.logger.warn({ err: error }, "jobs worker error"));
  worker.on("failed", (job, error) =>
    deps.logger.warn({ err: error, asyncRequestId: job?.data.requestId, attempt: job?.attemptsMade }, "run attempt failed"),
  );
  void worker.run().catch((error) => deps.logger.error({ err: error }, "jobs worker stopped"));

  const callbackWorker = new Worker<DeliverCallbackJob>(QUEUE_NAMES.callbacks, deps.delivery.processJob, {
    connection: deps.workerRedis,
    prefix: deps.prefix,
    // More jobs than slots: jobs for busy receivers wait in process for their origin's turn while
    // jobs for other receivers take the free slots (src/worker/delivery-slots.ts).
    concurrency: deps.callbackConcurrency * 2,
    // BullMQ renews an active job's lock every lockDuration / 2, so an attempt may outlast it;
    // a crashed worker's attempt is taken over within about lockDuration + stalledInterval.
    lockDuration: deps.lockDurationMs,
    stalledInterval: Math.max(500, Math.floor(deps.lockDurationMs / 2)),
    maxStalledCount: 3,
    autorun: false,
    ...KEEP_FINISHED_JOBS,
    settings: { backoffStrategy: deps.schedule.backoffStrategy },
  });
  callbackWorker.on("error", (error) => deps.logger.warn({ err: error }, "callbacks worker error"));
  void callbackWorker.run().catch((error) => deps.logger.error({ err: error }, "callbacks worker stopped"));
  await Promise.all([worker.waitUntilReady(), callbackWorker.waitUntilReady()]);

  const sweeper = createSweeper({ ...deps, intervalMs: deps.sweeperIntervalMs, graceMs: deps.sweeperGraceMs });
  sweeper.start();

  return {
    worker,
    callbackWorker,
    sweeper,
    running,
    /** Stops taking jobs, lets active ones finish for up to the shutdown timeout, then aborts them. */
    async close(): Promise<void> {
      stopListening();
      // Attempts waiting for a delivery slot go back to the queue now, so the active jobs left are
      // the ones making an attempt; they finish within the timeout.
      deps.delivery.refuseWaiting();
      await sweeper.stop();
      let timer: NodeJS.Timeout | undefined;
      const graceful = Promise.all([worker.close(), callbackWorker.close()]).then(() => "closed" as const);
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), deps.shutdownTimeoutMs);
      });
      const outcome = await Promise.race([graceful, timedOut]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        deps.logger.warn({ active: running.size }, "shutdown timeout: aborting active jobs; they run again elsewhere");
        for (const controller of running.values()) controller.abort(new WorkerShutdown("worker shutting down"));
        await Promise.all([worker.close(true), callbackWorker.close(true)]);
      }
      await deps.delivery.drain();
    },
  };
}

export type Workers = Awaited<ReturnType<typeof startWorkers>>;
