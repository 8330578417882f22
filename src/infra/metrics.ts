import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** Prometheus metrics of one process, on its own registry (served at /metrics). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "ricochet_process_" });
  return {
    registry,
    requestsFinished: new Counter({
      name: "ricochet_requests_finished_total",
      help: "Requests that reached a final status",
      labelNames: ["action", "status"] as const,
      registers: [registry],
    }),
    callbackAttempts: new Counter({
      name: "ricochet_callback_attempts_total",
      help: "Callback delivery attempts, by outcome (delivered, or the error class)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    submitBatchRows: new Histogram({
      name: "ricochet_submit_batch_rows",
      help: "Submits written together by one group commit (one INSERT and one addBulk)",
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    callbacksExhausted: new Counter({
      name: "ricochet_callbacks_exhausted_total",
      help: "Callback series that failed every attempt",
      registers: [registry],
    }),
    catalogMismatches: new Gauge({
      name: "ricochet_catalog_mismatched_processes",
      help: "Live processes of this deployment whose action catalog differs from this process's",
      registers: [registry],
    }),
    callbackDuration: new Histogram({
      name: "ricochet_callback_attempt_seconds",
      help: "Duration of callback attempts",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
