import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { IDEMPOTENCY_WINDOW_MS } from "../core/lifecycle.js";
import type { RetentionStatements } from "../db/retention.js";
import type { RedisConnection } from "../infra/redis.js";
import type { Clock } from "../shared/clock.js";
import { runPeriodically } from "./periodic.js";

const BATCH = 1_000;
/** At most this many requests per run, so one run never holds the database for long. */
const MAX_PER_RUN = 100_000;

/**
 * Retention: every `intervalMs`, one worker (a Redis lock, as for the sweeper) deletes the
 * requests that finished more than `retentionMs` ago, with their callback attempts, and the
 * idempotency keys past their 24 h window. `retentionMs` 0 keeps everything. Redis needs no
 * purge: BullMQ removes finished jobs itself (KEEP_FINISHED_JOBS in src/infra/queues.ts).
 */
export function createRetention(deps: {
  statements: RetentionStatements;
  redis: RedisConnection;
  prefix: string;
  clock: Clock;
  logger: Logger;
  retentionMs: number;
  intervalMs: number;
  onPurged?: (requests: number) => void;
}) {
  const lockKey = `${deps.prefix}:retention-lock`;

  async function purgeOnce(): Promise<{ requests: number; idempotencyKeys: number }> {
    const now = deps.clock.now().getTime();
    let requests = 0;
    if (deps.retentionMs > 0) {
      const before = new Date(now - deps.retentionMs);
      for (let batch = BATCH; batch === BATCH && requests < MAX_PER_RUN; ) {
        batch = await deps.statements.purgeRequests(before, BATCH);
        requests += batch;
      }
    }
    const idempotencyKeys = await deps.statements.purgeIdempotencyKeys(new Date(now - IDEMPOTENCY_WINDOW_MS));
    deps.onPurged?.(requests);
    return { requests, idempotencyKeys };
  }

  async function tick() {
    try {
      // One run per interval across all workers; the lock outlives the run (no renewal needed:
      // a run is bounded by MAX_PER_RUN and a second one meanwhile would only find less to do).
      if ((await deps.redis.set(lockKey, randomUUID(), "PX", deps.intervalMs, "NX")) !== "OK") return;
      const purged = await purgeOnce();
      if (purged.requests || purged.idempotencyKeys) deps.logger.info({ ...purged, retentionMs: deps.retentionMs }, "retention purged old data");
    } catch (error) {
      deps.logger.warn({ err: error }, "retention run failed; will try again");
    }
  }

  const periodic = runPeriodically(tick, { intervalMs: deps.intervalMs, firstDelayMs: Math.min(deps.intervalMs, 60_000) });
  return { purgeOnce, start: periodic.start, stop: periodic.stop };
}

export type Retention = ReturnType<typeof createRetention>;
