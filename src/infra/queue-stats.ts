import type { Queue } from "bullmq";

import { QUEUE_DEPTH_STATES } from "../shared/queues.js";

type QueueState = (typeof QUEUE_DEPTH_STATES)[number];

export type QueueStats = { counts: Record<QueueState, number>; oldestWaitingSeconds: number };

/** How many jobs at the consuming end of the wait list are looked at for the oldest one. */
const OLDEST_SAMPLE = 20;

/**
 * One queue's depth by state and the age of its oldest waiting job: the counts script and two
 * reads side by side, then at most 20 HMGETs side by side (pipelined by the client).
 *
 * "Waiting" means due and not yet taken by a worker:
 * - a job in the wait list counts from when it was added (plus the delay it was added with).
 *   BullMQ keeps no record of when a re-delayed job (a retry, a job put back for its tenant's
 *   limit) went back to the wait list, so such jobs are skipped rather than reported as old;
 * - a delayed job whose time has passed counts from that time. Workers move due jobs to the
 *   wait list whenever they fetch, so with no worker running they stay here, and this is the
 *   number that grows.
 * Times are BullMQ's own (this process's wall clock), not the injected clock.
 */
export async function readQueueStats(queue: Queue, now = Date.now()): Promise<QueueStats> {
  const client = await queue.client;
  const [counts, waitIds, [, firstDelayedScore]] = await Promise.all([
    queue.getJobCounts(...QUEUE_DEPTH_STATES),
    client.lrange(queue.keys.wait!, -OLDEST_SAMPLE, -1),
    client.zrange(queue.keys.delayed!, 0, 0, { WITHSCORES: true }),
  ]);

  let oldestDue = Number.POSITIVE_INFINITY;
  if (firstDelayedScore !== undefined) {
    // BullMQ's delayed score is the due timestamp (ms) times 4096 plus a counter.
    const dueAt = Math.floor(Number(firstDelayedScore) / 0x1000);
    if (dueAt <= now) oldestDue = dueAt;
  }
  const jobs = await Promise.all(waitIds.map((id) => client.hmget(queue.toKey(id), "timestamp", "processedOn", "opts")));
  for (const [timestamp, processedOn, opts] of jobs) {
    if (!timestamp || processedOn) continue; // gone meanwhile, or re-delayed (see above)
    const delay = opts ? Number((JSON.parse(opts) as { delay?: number }).delay ?? 0) : 0;
    oldestDue = Math.min(oldestDue, Number(timestamp) + delay);
  }
  const oldestWaitingSeconds = Number.isFinite(oldestDue) ? Math.max(0, now - oldestDue) / 1000 : 0;
  return { counts: Object.fromEntries(QUEUE_DEPTH_STATES.map((state) => [state, counts[state] ?? 0])) as QueueStats["counts"], oldestWaitingSeconds };
}
