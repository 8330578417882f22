import type { Queue } from "bullmq";
import type { Logger } from "pino";
import type { Queues } from "../infra/queues.js";
import { QUEUE_NAMES, QUEUE_STATES } from "../shared/queues.js";
import { AppError } from "../shared/errors.js";


export type QueueName = keyof typeof QUEUE_NAMES;
export type QueueCounts = Record<(typeof QUEUE_STATES)[number], number>;
export type QueueView = { name: QueueName; paused: boolean; counts: QueueCounts };

const NAMES = Object.keys(QUEUE_NAMES) as QueueName[];

/**
 * Looking at and steering the `jobs` and `callbacks` queues: counts, pause, resume, retrying
 * failed jobs. The admin API, the CLI and the bull-board dashboard all act on the same queues
 * (those of the deployment's QUEUE_PREFIX) through here.
 */
export function queueControlService(deps: { queues: Pick<Queues, QueueName>; logger: Logger }) {
  const queues: Record<QueueName, Queue> = { jobs: deps.queues.jobs, callbacks: deps.queues.callbacks };

  function queueNamed(name: string): Queue {
    if (!(NAMES as string[]).includes(name)) throw new AppError("not_found", `No queue named ${name}; the queues are ${NAMES.join(" and ")}`);
    return queues[name as QueueName];
  }

  async function countsOf(queue: Queue): Promise<QueueCounts> {
    const counts = await queue.getJobCounts(...QUEUE_STATES);
    return Object.fromEntries(QUEUE_STATES.map((state) => [state, counts[state] ?? 0])) as QueueCounts;
  }

  async function view(name: QueueName): Promise<QueueView> {
    const queue = queues[name];
    const [paused, counts] = await Promise.all([queue.isPaused(), countsOf(queue)]);
    return { name, paused, counts };
  }

  return {
    /** The queues themselves, for the dashboard. */
    queues,

    /** Counts by state of every queue, keyed by queue name. */
    async counts(): Promise<Record<QueueName, QueueCounts>> {
      const all = await Promise.all(NAMES.map(async (name) => [name, await countsOf(queues[name])] as const));
      return Object.fromEntries(all) as Record<QueueName, QueueCounts>;
    },

    /** Every queue with its counts and whether it is paused. */
    list: () => Promise.all(NAMES.map(view)),

    /** Workers of every process stop taking new jobs of the queue; active ones finish. */
    async pause(name: string): Promise<QueueView> {
      await queueNamed(name).pause();
      deps.logger.warn({ queue: name }, "queue paused by an operator");
      return view(name as QueueName);
    },

    async resume(name: string): Promise<QueueView> {
      await queueNamed(name).resume();
      deps.logger.info({ queue: name }, "queue resumed by an operator");
      return view(name as QueueName);
    },

    /**
     * Moves every job that failed until now back to waiting, where it gets one more attempt.
     * `retried` is the failed count read just before (a job failing in between is counted, not moved).
     */
    async retryFailed(name: string): Promise<QueueView & { retried: number }> {
      const queue = queueNamed(name);
      const until = Date.now();
      const retried = await queue.getFailedCount();
      await queue.retryJobs({ state: "failed", timestamp: until });
      deps.logger.info({ queue: name, retried }, "failed jobs retried by an operator");
      return { ...(await view(name as QueueName)), retried };
    },
  };
}

export type QueueControl = ReturnType<typeof queueControlService>;
