import { randomUUID } from "node:crypto";
import type { RedisConnection } from "../infra/redis.js";
import type { Logger } from "pino";
import type { CallbacksRepository } from "../db/callbacks.js";
import type { RequestsRepository } from "../db/requests.js";
import { callbackJobId } from "../shared/callbacks.js";
import type { Lifecycle } from "../core/lifecycle.js";
import type { LifecycleStatements } from "../db/lifecycle.js";
import type { Queues } from "../infra/queues.js";
import type { AttemptLeases } from "./attempt-leases.js";
import type { Clock } from "../shared/clock.js";
import { runPeriodically } from "./periodic.js";

export type SweeperDeps = {
  repo: RequestsRepository;
  callbacks: CallbacksRepository;
  lifecycle: Lifecycle;
  statements: LifecycleStatements;
  queues: Queues;
  redis: RedisConnection;
  clock: Clock;
  logger: Logger;
  prefix: string;
  intervalMs: number;
  graceMs: number;
  leases: AttemptLeases;
};

const PAGE = 200;
/** How long the sweeper's lock lives without renewal: a crashed sweeper blocks others this long. */
const LOCK_LEASE_MS = 15_000;
const MAX_PER_SWEEP = 10_000;

/**
 * Postgres is the source of truth: an unfinished request with no live job (the API crashed
 * between the insert and the enqueue, or Redis lost its data) is enqueued again. A job that
 * BullMQ gave up on ends its request FAILED. One sweeper runs at a time across all workers.
 */
export function createSweeper(deps: SweeperDeps) {
  const { repo, queues, redis, clock, logger } = deps;
  const lockKey = `${deps.prefix}:sweeper-lock`;

  /**
   * A callback series in flight with no live job (we crashed between finishing the request and
   * enqueueing, or Redis lost the job) is enqueued again, resuming at its next attempt.
   */
  async function sweepCallbacks(before: Date): Promise<number> {
    let enqueued = 0;
    let checked = 0;
    let afterId: string | undefined;
    while (checked < MAX_PER_SWEEP) {
      const rows = await deps.callbacks.findInFlightSince(before, afterId, PAGE);
      for (const row of rows) {
        checked++;
        const job = await queues.callbacks.getJob(callbackJobId(row.id, row.series));
        const state = job ? await job.getState() : "missing";
        if (state !== "missing" && state !== "unknown" && state !== "completed" && state !== "failed") continue;
        if (await deps.leases.held(row.id, row.series)) continue; // a first attempt in flight in a live worker
        if (job) await job.remove().catch(() => {});
        const delayMs = Math.max(0, (row.nextAttemptAt?.getTime() ?? 0) - clock.now().getTime());
        await queues.enqueueCallback(row.id, row.series, { offset: row.attempts, delayMs });
        enqueued++;
        logger.warn({ asyncRequestId: row.id, series: row.series, attempts: row.attempts, jobState: state }, "sweeper enqueued a callback with no live job");
      }
      if (rows.length < PAGE) break;
      afterId = rows.at(-1)!.id;
    }
    return enqueued;
  }

  async function sweepOnce(): Promise<{ checked: number; enqueued: number; failed: number; callbacks: number; countersFixed: number }> {
    const stats = { checked: 0, enqueued: 0, failed: 0, callbacks: 0, countersFixed: 0 };
    const before = new Date(clock.now().getTime() - deps.graceMs);
    // RUNNING first (bounded by the running limits), then QUEUED (a backlog may be large); each
    // oldest first, in pages read from where the last one ended.
    for (const status of ["RUNNING", "QUEUED"] as const) {
      let after: { updatedAt: Date; id: string } | undefined;
      while (stats.checked < MAX_PER_SWEEP) {
        const rows = await repo.findUnfinishedSince(status, before, after, PAGE);
        for (const row of rows) {
          stats.checked++;
          const job = await queues.jobs.getJob(row.id);
          const state = job ? await job.getState() : "missing";
          if (state === "missing" || state === "unknown" || state === "completed") {
            if (job) await job.remove().catch(() => {});
            await queues.enqueueRun(row.id, row.action);
            stats.enqueued++;
            logger.warn({ asyncRequestId: row.id, status: row.status, jobState: state }, "sweeper enqueued a request with no live job");
          } else if (state === "failed") {
            const failed = await deps.lifecycle.finish(row.id, "FAILED", {
              errorCode: "WORKER_ERROR",
              errorDesc: "The request could not be run: its job failed every attempt",
              errorDetails: job?.failedReason ? [{ reason: job.failedReason }] : [],
            });
            if (failed) stats.failed++;
          }
        }
        if (rows.length < PAGE) break;
        const last = rows.at(-1)!;
        after = { updatedAt: last.updatedAt, id: last.id };
      }
    }
    stats.callbacks = await sweepCallbacks(before);
    // The counters move with every transition in the same statement, so they only drift through
    // a bug or a hand edit; this puts them back from the table either way.
    for (const fixed of await deps.statements.reconcileCounters()) {
      stats.countersFixed++;
      logger.warn(fixed, "tenant counters differed from the table; reconciled");
    }
    return stats;
  }

  /**
   * One sweep at a time across every worker, and at most one per interval: the lock is taken for
   * LOCK_LEASE_MS and renewed while the sweep runs (however long it takes), then left to expire
   * one interval after the sweep started. Only its holder (the token) may extend it.
   */
  async function tick() {
    const token = randomUUID();
    const startedAt = Date.now();
    let renew: NodeJS.Timeout | undefined;
    try {
      const locked = await redis.set(lockKey, token, "PX", LOCK_LEASE_MS, "NX");
      if (locked !== "OK") return;
      renew = setInterval(() => void extendLock(token, LOCK_LEASE_MS).catch(() => undefined), LOCK_LEASE_MS / 3);
      const stats = await sweepOnce();
      logger.debug({ ...stats, startedAt, finishedAt: Date.now() }, "sweep");
      if (stats.enqueued || stats.failed || stats.callbacks || stats.countersFixed) logger.info(stats, "sweep done");
    } catch (error) {
      logger.warn({ err: error }, "sweep failed; will try again");
    } finally {
      clearInterval(renew);
      if (renew) await extendLock(token, Math.max(1, startedAt + deps.intervalMs - Date.now())).catch(() => undefined);
    }
  }

  /** Sets the lock's expiry, if this sweeper still holds it. */
  const extendLock = (token: string, ms: number) =>
    redis.eval('if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) end return 0', 1, lockKey, token, String(Math.ceil(ms)));

  const periodic = runPeriodically(tick, { intervalMs: deps.intervalMs });
  return { sweepOnce, start: periodic.start, stop: periodic.stop };
}
