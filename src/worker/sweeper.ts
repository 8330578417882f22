import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { RequestsRepository } from "../db/requests.js";
import type { Queues } from "../infra/queues.js";
import type { PubSub } from "../infra/pubsub.js";
import type { Clock } from "../shared/clock.js";

export type SweeperDeps = {
  repo: RequestsRepository;
  queues: Queues;
  events: PubSub;
  redis: Redis;
  clock: Clock;
  logger: Logger;
  prefix: string;
  intervalMs: number;
  graceMs: number;
};

const PAGE = 200;
const MAX_PER_SWEEP = 10_000;

/**
 * Postgres is the source of truth: an unfinished request with no live job (the API crashed
 * between the insert and the enqueue, or Redis lost its data) is enqueued again. A job that
 * BullMQ gave up on ends its request FAILED. One sweeper runs at a time across all workers.
 */
export function createSweeper(deps: SweeperDeps) {
  const { repo, queues, events, redis, clock, logger } = deps;
  const lockKey = `${deps.prefix}:sweeper-lock`;

  async function sweepOnce(): Promise<{ checked: number; enqueued: number; failed: number }> {
    const stats = { checked: 0, enqueued: 0, failed: 0 };
    const before = new Date(clock.now().getTime() - deps.graceMs);
    let after: { updatedAt: Date; id: string } | undefined;
    while (stats.checked < MAX_PER_SWEEP) {
      const rows = await repo.findUnfinishedSince(before, after, PAGE);
      for (const row of rows) {
        stats.checked++;
        const job = await queues.jobs.getJob(row.id);
        const state = job ? await job.getState() : "missing";
        if (state === "missing" || state === "unknown" || state === "completed") {
          if (job) await job.remove().catch(() => {});
          await queues.enqueueRun(row.id);
          stats.enqueued++;
          logger.warn({ requestId: row.id, status: row.status, jobState: state }, "sweeper enqueued a request with no live job");
        } else if (state === "failed") {
          const failed = await repo.transition(row.id, "FAILED", clock.now(), {
            errorCode: "WORKER_ERROR",
            errorDesc: "The request could not be run: its job failed every attempt",
            errorDetails: job?.failedReason ? [{ reason: job.failedReason }] : [],
          });
          if (failed) {
            stats.failed++;
            await events.publishStatus({ id: row.id, status: "FAILED" });
          }
        }
      }
      if (rows.length < PAGE) break;
      const last = rows.at(-1)!;
      after = { updatedAt: last.updatedAt, id: last.id };
    }
    return stats;
  }

  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> = Promise.resolve();

  async function tick() {
    const token = randomUUID();
    try {
      const locked = await redis.set(lockKey, token, "PX", Math.max(deps.intervalMs, 1_000), "NX");
      if (locked !== "OK") return;
      const stats = await sweepOnce();
      if (stats.enqueued || stats.failed) logger.info(stats, "sweep done");
    } catch (error) {
      logger.warn({ err: error }, "sweep failed; will try again");
    }
  }

  return {
    sweepOnce,
    start() {
      const loop = () => {
        sweeping = tick().finally(() => {
          if (timer !== undefined) timer = setTimeout(loop, deps.intervalMs);
        });
      };
      timer = setTimeout(loop, deps.intervalMs);
    },
    async stop() {
      clearTimeout(timer);
      timer = undefined;
      await sweeping;
    },
  };
}
