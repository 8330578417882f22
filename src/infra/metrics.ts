import type { Logger } from "pino";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Queues } from "./queues.js";
import { QUEUE_DEPTH_STATES } from "../shared/queues.js";
import { readQueueStats, type QueueStats } from "./queue-stats.js";

/**
 * prom-client's default metrics under the service's own prefix: every series of the service is
 * `ricochet_*`, and a host process that embeds Ricochet (createRicochet) and exports its own
 * defaults never sees the same name twice. (The prefix used to be `ricochet_process_`, which made
 * `ricochet_process_process_cpu_seconds_total`.)
 */
const DEFAULT_METRICS_PREFIX = "ricochet_";

/**
 * prom-client also exports these three as gauges ending in `_total`, which Prometheus reserves for
 * counters (promtool rejects them). Each is the sum of the gauge without the suffix, which has a
 * `type` label, so nothing is lost.
 */
const MISNAMED_DEFAULTS = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

/** A scrape does not wait longer than this for the queues; past it, their gauges are left out. */
const QUEUE_READ_TIMEOUT_MS = 2_000;

const SECONDS_FAST = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const SECONDS_SLOW = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600];

export type MetricsOptions = {
  /** When given, queue depth and the oldest waiting job are read from Redis at each scrape. */
  queues?: Pick<Queues, "jobs" | "callbacks"> | undefined;
  logger?: Logger | undefined;
};

/** Prometheus metrics of one process, on its own registry (served at /metrics). */
export function createMetrics(options: MetricsOptions = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: DEFAULT_METRICS_PREFIX });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(DEFAULT_METRICS_PREFIX + name);
  const registers = [registry];

  const queueStats = options.queues ? queueStatsOnScrape(options.queues, options.logger) : undefined;
  const queueJobs = new Gauge({
    name: "ricochet_queue_jobs",
    help: "Jobs in each BullMQ queue by state, read from Redis at scrape time (the same in every process: aggregate with max)",
    labelNames: ["queue", "state"] as const,
    registers,
    async collect() {
      this.reset();
      for (const [queue, stats] of await (queueStats?.() ?? [])) {
        for (const state of QUEUE_DEPTH_STATES) this.set({ queue, state }, stats.counts[state]);
      }
    },
  });
  const queueOldestWaiting = new Gauge({
    name: "ricochet_queue_oldest_waiting_seconds",
    help: "Seconds the oldest due job of each queue has waited for a worker (0 when none waits)",
    labelNames: ["queue"] as const,
    registers,
    async collect() {
      this.reset();
      for (const [queue, stats] of await (queueStats?.() ?? [])) this.set({ queue }, stats.oldestWaitingSeconds);
    },
  });

  return {
    registry,
    queueJobs,
    queueOldestWaiting,
    requestsFinished: new Counter({
      name: "ricochet_requests_finished_total",
      help: "Requests that reached a final status (COMPLETED, FAILED, CANCELLED), counted by the process that finished them",
      labelNames: ["action", "status"] as const,
      registers,
    }),
    actionDuration: new Histogram({
      name: "ricochet_action_duration_seconds",
      help: "Duration of action runs, whatever their outcome (a retried action is observed once per run)",
      labelNames: ["action"] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    }),
    callbackAttempts: new Counter({
      name: "ricochet_callback_attempts_total",
      help: "Callback delivery attempts by outcome class: 200, 2xx, 3xx, 4xx, 5xx, timeout, network, blocked (refused by the address policy)",
      labelNames: ["outcome"] as const,
      registers,
    }),
    callbackDuration: new Histogram({
      name: "ricochet_callback_attempt_seconds",
      help: "Duration of callback attempts",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
      registers,
    }),
    callbackDeliveryLag: new Histogram({
      name: "ricochet_callback_delivery_lag_seconds",
      help: "Seconds from a request's finish to its callback's delivery (the 200), retries included; redeliveries are not observed",
      buckets: SECONDS_SLOW,
      registers,
    }),
    callbacksExhausted: new Counter({
      name: "ricochet_callbacks_exhausted_total",
      help: "Callback series that failed every attempt",
      registers,
    }),
    httpRequests: new Counter({
      name: "ricochet_http_requests_total",
      help: "HTTP requests answered, by method, route template (unmatched: no route) and status code",
      labelNames: ["method", "route", "status"] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: "ricochet_http_request_duration_seconds",
      help: "Time to the response's headers, by method and route template (GET with ?wait includes the wait; SSE only its start)",
      labelNames: ["method", "route"] as const,
      buckets: SECONDS_FAST,
      registers,
    }),
    submitBatchRows: new Histogram({
      name: "ricochet_submit_batch_rows",
      help: "Submits written together by one group commit (one INSERT and one addBulk)",
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers,
    }),
    catalogMismatches: new Gauge({
      name: "ricochet_catalog_mismatched_processes",
      help: "Live processes of this deployment whose action catalog differs from this process's",
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Both queue gauges are collected by one read per scrape: the first collect starts it, the
 * second (called in the same tick by the registry) shares it. A failed or slow read leaves the
 * gauges out of that scrape instead of failing it.
 */
function queueStatsOnScrape(queues: Pick<Queues, "jobs" | "callbacks">, logger: Logger | undefined) {
  let inflight: Promise<[string, QueueStats][]> | undefined;
  const readAll = async (): Promise<[string, QueueStats][]> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const read = Promise.all([queues.jobs, queues.callbacks].map(async (queue) => [queue.name, await readQueueStats(queue)] as [string, QueueStats]));
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${QUEUE_READ_TIMEOUT_MS} ms`)), QUEUE_READ_TIMEOUT_MS);
      });
      return await Promise.race([read, timeout]);
    } catch (error) {
      logger?.warn({ err: error }, "queue metrics could not be read from Redis; this scrape leaves them out");
      return [];
    } finally {
      clearTimeout(timer);
    }
  };
  return () => {
    inflight ??= readAll().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };
}
