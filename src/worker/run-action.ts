import { DelayedError, type Job } from "bullmq";
import type { Logger } from "pino";
import { z } from "zod";
import type { RequestsRepository } from "../db/requests.js";
import type { TenantsRepository } from "../db/tenants.js";
import type { PubSub } from "../infra/pubsub.js";
import type { Metrics } from "../infra/metrics.js";
import type { Queues } from "../infra/queues.js";
import type { Clock } from "../shared/clock.js";
import type { RunActionJob } from "../shared/queues.js";
import type { AsyncRequestStatus } from "../shared/status.js";
import { isFinal } from "../shared/status.js";
import type { ActionCatalog } from "../core/actions/catalog.js";
import { ActionError, type ActionHelpers } from "../core/actions/types.js";

export type RunActionDeps = {
  metrics: Metrics;
  actionHttp: ActionHelpers["http"];
  repo: RequestsRepository;
  queues: Queues;
  tenants: TenantsRepository;
  defaults: { maxConcurrent: number };
  /** How long a job at its tenant's concurrency limit waits before trying again. */
  tenantSlotRetryMs: number;
  events: PubSub;
  catalog: ActionCatalog;
  clock: Clock;
  logger: Logger;
};

/** Why an action's signal fired: the request was cancelled, or this worker is going away. */
export class CancelledByClient extends Error {
  override name = "CancelledByClient";
}
export class WorkerShutdown extends Error {
  override name = "WorkerShutdown";
}

/**
 * Runs one request. Every state change is a conditional update, so a request cancelled (or
 * finished) by someone else is left alone. Errors thrown from here are infrastructure errors
 * (the database unreachable): BullMQ retries the job and the action runs again.
 */
export function createRunAction(deps: RunActionDeps, running: Map<string, AbortController>) {
  const { repo, events, catalog, clock } = deps;

  async function finish(id: string, status: AsyncRequestStatus, fields: Parameters<RequestsRepository["transition"]>[3]) {
    const row = await repo.transition(id, status, clock.now(), fields);
    if (!row) return;
    deps.metrics.requestsFinished.inc({ action: row.action, status });
    await events.publishStatus({ id, status });
    if (row.callbackStatus === "PENDING") {
      // If this fails (or we crash first), the sweeper finds the PENDING series and enqueues it.
      await deps.queues.enqueueCallback(id, row.callbackSeries).catch((error: unknown) =>
        deps.logger.warn({ err: error, asyncRequestId: id }, "could not enqueue the callback; the sweeper will"),
      );
    }
  }

  return async function runAction(job: Job<RunActionJob>, token?: string): Promise<void> {
    const id = job.data.requestId;
    const logger = deps.logger.child({ asyncRequestId: id, jobId: job.id });
    const row = await repo.getById(id);
    if (!row || isFinal(row.status)) return;

    const action = catalog.get(row.action);
    if (!action) {
      await finish(id, "FAILED", { errorCode: "UNKNOWN_ACTION", errorDesc: `This deployment has no action "${row.action}"` });
      return;
    }
    const input = action.input.safeParse(row.input);
    if (!input.success) {
      await finish(id, "FAILED", {
        errorCode: "INVALID_INPUT",
        errorDesc: "The stored input no longer matches the action's schema",
        errorDetails: z.treeifyError(input.error).errors,
      });
      return;
    }

    // Registered before RUNNING is written, so a cancel that races the start still aborts us.
    const controller = new AbortController();
    running.set(id, controller);
    try {
      const tenant = await deps.tenants.get(row.tenantId);
      const maxConcurrent = tenant?.maxConcurrent ?? deps.defaults.maxConcurrent;
      const started = await repo.startWithinLimit(id, row.tenantId, maxConcurrent, clock.now());
      if (started === "at-limit") {
        // The tenant's limit is reached: wait in the queue (delayed) without using an attempt.
        await job.moveToDelayed(Date.now() + deps.tenantSlotRetryMs, token);
        throw new DelayedError();
      }
      if (!started) return;
      await events.publishStatus({ id, status: "RUNNING" });
      if (started.runs > 1) logger.warn({ run: started.runs }, "running again after a crashed or stalled worker");

      let result: unknown;
      try {
        result = await action.run(input.data, {
          logger,
          signal: controller.signal,
          clock,
          http: deps.actionHttp,
          progress: (percent) => repo.setProgress(id, Math.max(0, Math.min(100, Math.round(percent))), clock.now()),
        });
      } catch (error) {
        const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
        if (reason instanceof WorkerShutdown) throw reason;
        if (reason instanceof CancelledByClient) {
          await finish(id, "CANCELLED", { errorCode: "CANCELLED", errorDesc: "Cancelled while running" });
          return;
        }
        if (error instanceof ActionError) {
          await finish(id, "FAILED", { errorCode: error.code, errorDesc: error.message, errorDetails: error.details });
          return;
        }
        logger.error({ err: error }, "action threw an unexpected error");
        await finish(id, "FAILED", { errorCode: "ACTION_ERROR", errorDesc: "The action failed unexpectedly" });
        return;
      }
      await finish(id, "COMPLETED", { result: result ?? null, progress: 100 });
    } finally {
      running.delete(id);
    }
  };
}
